// The widths every connector type shows as derived fields (set by the enclosing model).
#pragma once

#include "blocks/kinds.h"

namespace blocks {

template <class C>
void declare_connector_widths(Fields<C>& f, const char* output_doc) {
  f.add("input_width", &C::input_width,
        "Width of the features in: the encoder's (or the connector's before).", Hint::derived);
  f.add("output_width", &C::output_width, output_doc, Hint::derived);
}

}  // namespace blocks
