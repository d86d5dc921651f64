// What the MLP types share: the activation names they accept and how they declare their
// activation and dropout fields.
#pragma once

#include <string>
#include <vector>

#include "blocks/kinds.h"

namespace blocks {

const std::vector<std::string>& activation_names();

template <class C>
void declare_activation(Fields<C>& f) {
  f.add("activation", &C::activation, "Activation function.").choices(activation_names());
}

template <class C>
void declare_dropout(Fields<C>& f) {
  f.add("dropout", &C::dropout, "Dropout after the activation.", Hint::optional).min(0).max(0.999);
}

}  // namespace blocks
