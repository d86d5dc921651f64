// What the model commands share: a model built from --model (and --set), filled from --weights,
// the Hugging Face folder of --model, --seed or --adapters, after checking the checkpoint's
// architecture against the model's (model_commands.cpp).
#pragma once

#include <string>
#include <variant>

#include "blocks/models/model_module.h"
#include "framework/config/document.h"
#include "tools/blockc/model_commands.h"

namespace blockc {

struct Prepared {
  blocks::config::Document doc;
  blocks::Model model;
  std::string model_type;  // the Hugging Face family of --model or --weights, if any
};

// The prepared model, or the exit code (problems logged). Without --dtype the model is float32,
// or with `keep_checkpoint_dtype`, in the dtype of most of the checkpoint's bytes (export keeps
// a bfloat16 checkpoint bfloat16).
std::variant<Prepared, int> prepare(const ModelArgs& args, bool keep_checkpoint_dtype);

// --image's files as pixel_values [images, 3, height, width], prepared by --image-processor or
// the --model folder's preprocessor_config.json; or the exit code (problems logged).
std::variant<at::Tensor, int> read_images(const ModelArgs& args);

}  // namespace blockc
