#include "blocks/train/train.h"

#include <filesystem>

#include "blocks/models/early_fusion.h"
#include "blocks/models/language_model.h"
#include "framework/config/diagnostics.h"

namespace blocks {

void TrainStartConfig::declare(Fields<TrainStartConfig>& f) {
  using C = TrainStartConfig;
  f.add("weights", &C::weights,
        "A safetensors checkpoint (blocks' names) or a Hugging Face folder to start from; "
        "unset: the model's initialization from the run's seed.",
        Hint::optional);
  f.add("map", &C::map, "A name mapping file for `weights` in other names.", Hint::optional);
  f.add("adapters", &C::adapters,
        "LoRA adapters to start from, loaded after `weights`: a file of `blockc export "
        "--adapters-only` or a PEFT folder (adapter_config.json + adapter_model.safetensors; its "
        "lora_alpha / r must be the model's).",
        Hint::optional);
  f.add("model_type", &C::model_type,
        "The Hugging Face family whose names a PEFT folder in `adapters` uses, when `weights` is "
        "not a Hugging Face folder (gpt2, llama, ...).",
        Hint::optional);
}

void TrainDataConfig::declare(Fields<TrainDataConfig>& f) {
  using C = TrainDataConfig;
  f.add("train", &C::train,
        "The training token file; with format examples, a safetensors shard or a folder of "
        "them.",
        Hint::optional)
      .required();
  f.add("validation", &C::validation, "Validation data in the same format (for `eval`).",
        Hint::optional);
  f.add("format", &C::format,
        "Token file format: nanogpt (raw uint16), llmc (llm.c's 1024-byte header), or auto "
        "(llmc when the header's magic is there); examples: safetensors shards of rows "
        "(`tokens` [rows, sequence_length + 1], media placeholders expanded, and the media the "
        "rows hold, `pixel_values` [items, ...]), for early-fusion models; targets at media "
        "placeholders are ignored (label -100).",
        Hint::optional)
      .choices({"auto", "nanogpt", "llmc", "examples"});
  f.add("sequence_length", &C::sequence_length, "Tokens per row.", Hint::optional)
      .required()
      .min(1);
  f.add("micro_batch", &C::micro_batch, "Rows per forward and backward, on each process.",
        Hint::optional)
      .min(1);
  f.add("accumulation", &C::accumulation,
        "Micro-batches whose gradients are averaged into one optimizer step.", Hint::optional)
      .min(1);
  f.add("sampling", &C::sampling,
        "random: windows at seeded uniform offsets (nanoGPT's get_batch); sequential: "
        "consecutive windows through the file, wrapping.",
        Hint::optional)
      .choices({"random", "sequential"});
}

void AdamWConfig::declare(Fields<AdamWConfig>& f) {
  using C = AdamWConfig;
  f.add("lr", &C::lr, "Peak learning rate.", Hint::optional).required().above(0);
  f.add("beta1", &C::beta1, "Decay of the gradient's running mean.", Hint::optional)
      .min(0)
      .max(0.999999);
  f.add("beta2", &C::beta2, "Decay of the squared gradient's running mean.", Hint::optional)
      .min(0)
      .max(0.999999);
  f.add("eps", &C::eps, "Added to the denominator.", Hint::optional).above(0);
  f.add("weight_decay", &C::weight_decay, "Decoupled weight decay of the decayed parameters.",
        Hint::optional)
      .min(0);
  f.add("decay_min_dims", &C::decay_min_dims,
        "Parameters with at least this many dimensions decay (nanoGPT: 2, matrices and "
        "embeddings; biases and norm scales do not).",
        Hint::optional)
      .min(0);
  f.add("no_decay", &C::no_decay,
        "Regular expressions matching whole parameter names that never decay (e.g. 'embeddings\\..*').",
        Hint::optional);
}

void TrainEvalConfig::declare(Fields<TrainEvalConfig>& f) {
  using C = TrainEvalConfig;
  f.add("every", &C::every, "Evaluate every N steps and after the last; 0: never.",
        Hint::optional)
      .min(0);
  f.add("batches", &C::batches, "Micro-batches of the validation file per evaluation.",
        Hint::optional)
      .min(1);
}

void TrainCheckpointConfig::declare(Fields<TrainCheckpointConfig>& f) {
  using C = TrainCheckpointConfig;
  f.add("every", &C::every, "Save every N steps and after the last; 0: after the last only.",
        Hint::optional)
      .min(0);
  f.add("keep", &C::keep, "Checkpoints kept; older ones are removed.", Hint::optional).min(1);
}

void TrainConfig::declare(Fields<TrainConfig>& f) {
  using C = TrainConfig;
  f.add("steps", &C::steps, "Optimizer steps of the run.", Hint::optional).required().min(1);
  f.add("seed", &C::seed, "Seed of the initialization, the random windows and dropout.",
        Hint::optional)
      .min(0);
  f.add("start", &C::start, "The initial weights.", Hint::optional);
  f.add("data", &C::data, "The token files and batches.", Hint::optional).required();
  f.add("optimizer", &C::optimizer, "The optimizer (AdamW).", Hint::optional).required();
  f.add("schedule", &C::schedule, "The learning-rate schedule.", Hint::optional);
  f.add("clip_grad_norm", &C::clip_grad_norm,
        "Clip the gradients' global L2 norm to this before each step; 0: no clipping.",
        Hint::optional)
      .min(0);
  f.add("precision", &C::precision,
        "float32, or bfloat16 autocast of the forward (weights and optimizer stay float32).",
        Hint::optional)
      .choices({"float32", "bfloat16"});
  f.add("log_every", &C::log_every, "Write a log line every N steps.", Hint::optional).min(1);
  f.add("on_nonfinite", &C::on_nonfinite,
        "A NaN or infinite loss or gradient: stop (naming the step and the last checkpoint), "
        "or skip the step.",
        Hint::optional)
      .choices({"stop", "skip"});
  f.add("eval", &C::eval, "Validation.", Hint::optional);
  f.add("checkpoint", &C::checkpoint, "Checkpoints.", Hint::optional);
}

void TrainConfig::validate(const ResolveContext& ctx) const {
  if (eval.every > 0 && !data.validation)
    ctx.error(*this, "eval", "eval.every is set but data.validation names no file");
}

std::string path_field(const config::Config& owner, std::string_view field,
                       const std::string& value) {
  const std::filesystem::path path(value);
  const config::Mark& mark = owner.mark_of(field);
  if (path.is_absolute()) return value;
  const std::filesystem::path base =
      mark.file ? std::filesystem::path(*mark.file).parent_path() : std::filesystem::path();
  return std::filesystem::absolute(base / path).lexically_normal().string();
}

void check_train_section(const config::Config& section, const config::Config& model,
                         config::Diagnostics& diagnostics) {
  const auto& train = static_cast<const TrainConfig&>(section);
  const auto* lm = dynamic_cast<const LanguageModelConfig*>(&model);
  std::string positions_field = "model.embeddings.max_positions";
  if (const auto* fusion = dynamic_cast<const EarlyFusionConfig*>(&model)) {
    if (train.data.format != "examples") {
      diagnostics.error(train.data.mark_of("format"), "train.data.format",
                        "an early-fusion model trains on examples with their media: set "
                        "format: examples (token files hold no images)");
      return;
    }
    lm = fusion->decoder.as<LanguageModelConfig>();
    positions_field = "model.decoder.embeddings.max_positions";
  }
  if (!lm) {
    diagnostics.error(train.mark_of("data"), "train.data",
                      "training needs a language_model or an early_fusion model; the model is `" +
                          model.type().name + "`");
    return;
  }
  const auto& positions = lm->embeddings.max_positions;
  if (positions && train.data.sequence_length > *positions)
    diagnostics.error(train.data.mark_of("sequence_length"), "train.data.sequence_length",
                      "sequence_length " + std::to_string(train.data.sequence_length) +
                          " is past the model's " + std::to_string(*positions) + " positions (" +
                          positions_field + ")");
}

void register_train(config::Registry& registry) {
  registry.add_section<TrainConfig>(
      "train", "A training run of the file's model (`blockc train FILE`).", check_train_section);
}

}  // namespace blocks
