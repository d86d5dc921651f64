#include "framework/train/trainer.h"

#include <c10/core/GeneratorImpl.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "blocks/models/early_fusion.h"
#include "blocks/models/early_fusion_module.h"
#include "blocks/models/language_model.h"
#include "blocks/registry.h"
#include "framework/config/emit.h"
#include "framework/config/parameters.h"
#include "framework/data/batches.h"
#include "framework/data/tokens.h"
#include "framework/io/files.h"
#include "framework/nn/torch_version.h"
#include "framework/train/checkpoint.h"
#include "framework/train/data_parallel.h"
#include "framework/train/examples.h"
#include "framework/train/optimizer.h"
#include "framework/train/start.h"
#include "framework/weights/distributed.h"
#include "framework/weights/hf_folder.h"
#include "framework/weights/load.h"
#include "framework/weights/safetensors.h"

namespace blocks::train {

namespace fs = std::filesystem;

// Where batches come from: windows of a token file, or example shards with media.
struct DataSource {
  std::optional<data::TokenFile> file;
  std::optional<data::Batches> windows;
  std::optional<ExampleShards> examples;
};

// The training and validation data, and the buffers one rank's windows are read into.
struct RunData {
  DataSource train;
  std::optional<DataSource> validation;
  std::vector<int64_t> inputs, targets;
};

namespace {

at::Device device_of(const std::string& name) {
  try {
    return at::Device(name);
  } catch (const c10::Error&) {
    throw TrainError("unknown device '" + name + "' (cpu, cuda, cuda:N)");
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The inputs an early-fusion model's encoders take, for example shards; none for a language
// model.
std::vector<MediaSlot> media_slots(const ModelModule& model) {
  std::vector<MediaSlot> out;
  if (const auto* fusion = dynamic_cast<const EarlyFusionModel*>(&model))
    for (const auto& [name, part] : fusion->parts)
      out.push_back({part.input, part.placeholder, part.tokens});
  return out;
}

bool has_process_group() {
  const char* world = std::getenv("WORLD_SIZE");
  return world && std::string(world) != "1";
}

// The document as run.yaml keeps it: data paths absolute, so that the file works from the run
// folder.
config::Json run_json(const config::Document& document, const TrainConfig& train) {
  config::Json json = document.dump();
  auto& data = json["train"]["data"];
  data["train"] = path_field(train.data, "train", train.data.train);
  if (train.data.validation)
    data["validation"] = path_field(train.data, "validation", *train.data.validation);
  if (train.start.weights)
    json["train"]["start"]["weights"] = path_field(train.start, "weights", *train.start.weights);
  if (train.start.map)
    json["train"]["start"]["map"] = path_field(train.start, "map", *train.start.map);
  return json;
}

// Large blocks from the heap and kept there when freed (see TrainOptions::reuse_memory); 1 GiB
// is far above any activation, so every block qualifies.
void reuse_freed_memory() {
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);
  mallopt(M_TRIM_THRESHOLD, kLarge);
  mallopt(M_TOP_PAD, kLarge);
}

// "nan", "inf" or "-inf" (std::to_string says "-nan" for some NaNs).
std::string nonfinite_text(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

// Which trainable parameters receive a gradient during one step (hooks on the first step of a
// process): the gradient buffers are always there, so a parameter nothing reads would silently
// get zeros, here and in every rank's all-reduce alike.
class GradientWatch {
 public:
  explicit GradientWatch(AdamW* optimizer) {
    if (!optimizer) return;
    const auto& parameters = optimizer->parameters();
    seen_.assign(parameters.size(), 0);
    for (size_t i = 0; i < parameters.size(); ++i) {
      at::Tensor tensor = parameters[i].tensor;
      hooks_.push_back({tensor, tensor.register_hook([this, i](const at::Tensor&) { seen_[i] = 1; })});
      names_.push_back(parameters[i].name);
    }
  }
  GradientWatch(const GradientWatch&) = delete;
  GradientWatch& operator=(const GradientWatch&) = delete;
  ~GradientWatch() {
    for (auto& [tensor, handle] : hooks_) tensor.remove_hook(handle);
  }
  // The parameters no hook saw, as a list ("" when every one got its gradient).
  std::string missing() const {
    std::string out;
    size_t count = 0;
    for (size_t i = 0; i < seen_.size(); ++i) {
      if (seen_[i]) continue;
      if (count < 10) out += (count ? ", " : "") + names_[i];
      ++count;
    }
    if (count > 10) out += " and " + std::to_string(count - 10) + " more";
    return out;
  }

 private:
  std::vector<std::pair<at::Tensor, unsigned>> hooks_;
  std::vector<std::string> names_;
  std::vector<char> seen_;
};

}  // namespace

Trainer::Trainer(const config::Document& run, TrainOptions options)
    : document_(run),
      train_([&]() -> const TrainConfig& {
        const auto* section = run.section<TrainConfig>("train");
        if (!section) throw TrainError("the file has no `train:` section");
        return *section;
      }()),
      options_(std::move(options)),
      device_(device_of(options_.device)) {
  if (options_.reuse_memory) reuse_freed_memory();
  if (const auto* lm = dynamic_cast<const LanguageModelConfig*>(run.model.get()))
    vocab_size_ = lm->embeddings.vocab_size;
  else if (const auto* fusion = dynamic_cast<const EarlyFusionConfig*>(run.model.get()))
    vocab_size_ = fusion->decoder_vocab_size();
  else
    throw TrainError("blocks trains language models and early-fusion models; the model is `" +
                     run.model->type().name + "`");
  if (has_process_group()) {
    const auto env = weights::ProcessGroupEnv::from_env();
    auto group = weights::init_process_group(
        env, device_.is_cuda() ? weights::Backend::nccl : weights::Backend::gloo,
        options_.timeout);
    if (device_.is_cuda()) device_ = at::Device(at::kCUDA, static_cast<int8_t>(env.local_rank));
    group_ = group;
  }
  model_ = build_model(*run.model, at::TensorOptions().dtype(at::kFloat).device(device_));
  model_.module->train();

  data_ = std::make_unique<RunData>();
  const auto sampling = data::parse_sampling(train_.data.sampling);
  const auto seed = static_cast<uint64_t>(train_.seed);
  // Filled in place: the windows keep a pointer to their file.
  auto fill = [&](DataSource& out, const std::string& path, data::Sampling order) {
    if (train_.data.format == "examples") {
      out.examples.emplace(path, train_.data.sequence_length, media_slots(*model_.module),
                           vocab_size_, order, seed);
      return;
    }
    out.file.emplace(path, data::parse_token_format(train_.data.format));
    out.windows.emplace(*out.file, train_.data.sequence_length, order, seed);
  };
  fill(data_->train, path_field(train_.data, "train", train_.data.train), sampling);
  if (train_.data.validation)
    fill(data_->validation.emplace(),
         path_field(train_.data, "validation", *train_.data.validation),
         data::Sampling::sequential);
  const size_t buffer = static_cast<size_t>(train_.data.micro_batch * train_.data.sequence_length);
  data_->inputs.resize(buffer);
  data_->targets.resize(buffer);

  config::FlopContext context;
  context.context_length = train_.data.sequence_length;
  flops_per_token_ = 3 * config::count_forward_flops(*run.model, context);

  const bool resuming = options_.resume;
  if (!resuming && !list_checkpoints(options_.run_dir).empty())
    throw TrainError(options_.run_dir + " holds checkpoints of a run; continue it with --resume " +
                     options_.run_dir + ", or train into another folder");
  if (resuming) {
    resume();
  } else {
    start_fresh();
  }
}

Trainer::~Trainer() = default;

int Trainer::rank() const { return parallel_ ? parallel_->rank() : 0; }
int Trainer::world_size() const { return parallel_ ? parallel_->world_size() : 1; }

void Trainer::start_fresh() {
  // What the checkpoint lacks (a LoRA model's adapters, from a base checkpoint) starts from the
  // seed; the loads then overwrite the rest.
  nn::initialize(model_.parameters, static_cast<uint64_t>(train_.seed));
  std::string family;
  if (train_.start.weights)
    family = load_start_weights(
        document_, model_.parameters, path_field(train_.start, "weights", *train_.start.weights),
        train_.start.map ? path_field(train_.start, "map", *train_.start.map) : "");
  if (train_.start.adapters) {
    load_start_adapters(document_, model_.parameters,
                        path_field(train_.start, "adapters", *train_.start.adapters),
                        train_.start.model_type ? *train_.start.model_type : family);
  }
  at::manual_seed(static_cast<uint64_t>(train_.seed));
  optimizer_ = std::make_unique<AdamW>(model_.parameters, train_.optimizer);
  make_parallel();
  if (rank() == 0) {
    fs::create_directories(options_.run_dir);
    write_run_file();
    io::write_file(options_.run_dir + "/log.jsonl", "");
  }
  log({{"event", "start"}, {"steps", train_.steps}, {"parameters", optimizer_->trainable_numel()},
       {"world_size", world_size()}});
}

void Trainer::write_run_file() {
  io::write_file(options_.run_dir + "/run.yaml",
                 "# The resolved run, written by blockc train; `blockc train --resume` reads it.\n" +
                     config::to_yaml(run_json(document_, train_)));
}


void Trainer::make_parallel() {
  if (!group_) return;
  std::vector<std::pair<std::string, at::Tensor>> trainable;
  for (const auto& p : optimizer_->parameters()) trainable.emplace_back(p.name, p.tensor);
  parallel_ = std::make_unique<DataParallel>(group_, std::move(trainable), 25 << 20,
                                             options_.timeout);
  parallel_->broadcast_parameters();
}

void Trainer::resume() {
  std::vector<std::string> skipped;
  const std::string folder = newest_valid_checkpoint(options_.run_dir, skipped);
  for (const auto& reason : skipped) note("skipping a damaged checkpoint: " + reason);
  if (folder.empty())
    throw TrainError(options_.run_dir + " has no whole checkpoint to resume from" +
                     (skipped.empty() ? "" : " (every one is damaged)"));
  if (!skipped.empty()) note("falling back to " + folder);
  const std::string model_file = folder + "/model.safetensors";
  weights::check_architecture(document_, {model_file}, blocks::registry());
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& p : model_.parameters) targets.emplace_back(p.name, p.tensor);
  weights::load_safetensors(targets, {model_file}, true);

  const config::Json state = read_checkpoint_state(folder);
  step_ = state.at("step").get<int64_t>();
  micro_batches_ = state.at("micro_batches").get<int64_t>();
  optimizer_ = std::make_unique<AdamW>(model_.parameters, train_.optimizer);
  const auto file = weights::SafetensorsFile::open(folder + "/optimizer.safetensors");
  NamedTensors moments;
  for (const auto& info : file.tensors())
    if (info.name.rfind("rng.", 0) != 0) moments.emplace_back(info.name, file.tensor(info.name));
  optimizer_->load_state(moments, state.value("optimizer_steps", step_));
  if (file.contains("rng.cpu")) {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(file.tensor("rng.cpu").clone());
  }
  last_checkpoint_ = folder;
  make_parallel();
  if (rank() == 0) {
    write_run_file();
    truncate_log();
  }
  log({{"event", "resume"}, {"step", step_}, {"checkpoint", folder}});
}

// Drops the log lines after the resumed step: they describe steps that will run again.
void Trainer::truncate_log() {
  const std::string path = options_.run_dir + "/log.jsonl";
  std::istringstream in(read_text(path));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    config::Json json;
    try {
      json = config::Json::parse(line);
    } catch (const std::exception&) {
      break;  // a line cut by a kill: nothing after it was written
    }
    if (json.contains("step") && json["step"].is_number() && json["step"].get<int64_t>() > step_)
      break;
    kept += line + "\n";
  }
  io::write_file(path, kept);
}

void Trainer::log(config::Json line) {
  if (rank() != 0) return;
  std::ofstream out(options_.run_dir + "/log.jsonl", std::ios::app);
  out << line.dump() << "\n";
  out.flush();
  if (!out) throw io::FileError(options_.run_dir + "/log.jsonl: cannot append a line");
  if (options_.on_log) options_.on_log(line);
}

void Trainer::note(const std::string& text) {
  if (rank() == 0 && options_.on_note) options_.on_note(text);
}

// The mean next-token loss (plus a MoE's auxiliary loss) of this rank's rows of micro-batch
// `index` of `batches`.
at::Tensor Trainer::batch_loss(const DataSource& source, int64_t index) {
  const int64_t rows = train_.data.micro_batch, length = train_.data.sequence_length;
  ModelInput input;
  at::Tensor targets;
  if (source.examples) {
    ExampleBatch batch = source.examples->batch(static_cast<uint64_t>(index), rows * world_size(),
                                                rows * rank(), rows);
    input.tokens = batch.tokens.to(device_);
    targets = batch.targets.reshape({rows * length}).to(device_);
    for (auto& [name, values] : batch.media)
      input.named[name] = values.to(device_, at::kFloat);
  } else {
    source.windows->fill(static_cast<uint64_t>(index), rows * world_size(), rows * rank(), rows,
                         vocab_size_, data_->inputs.data(), data_->targets.data());
    const auto options = at::TensorOptions().dtype(at::kLong);
    input.tokens = at::from_blob(data_->inputs.data(), {rows, length}, options).to(device_);
    targets = at::from_blob(data_->targets.data(), {rows * length}, options).to(device_);
  }
  ModelOutput out;
  if (train_.precision == "bfloat16") {
    nn::AutocastGuard autocast(device_.type(), at::kBFloat16);
    out = model_.module->forward(input);
  } else {
    out = model_.module->forward(input);
  }
  // The mean over the targets that count: media placeholders are kIgnoredTarget (HF's -100).
  at::Tensor loss = at::cross_entropy_loss(out.logits.reshape({rows * length, -1}).to(at::kFloat),
                                           targets, {}, at::Reduction::Mean, kIgnoredTarget);
  if (out.aux_loss.defined()) loss = loss + out.aux_loss.to(at::kFloat);
  return loss;
}

double Trainer::micro_step(int64_t index, double scale) {
  const at::Tensor loss = batch_loss(data_->train, index);
  (loss * scale).backward();
  return loss.item<double>();
}

double Trainer::evaluate() {
  if (!data_->validation) return 0;
  model_.module->eval();
  double sum = 0;
  {
    at::NoGradGuard no_grad;
    for (int64_t i = 0; i < train_.eval.batches; ++i)
      sum += batch_loss(*data_->validation, i).item<double>();
  }
  model_.module->train();
  const double mean = sum / static_cast<double>(train_.eval.batches);
  return parallel_ ? parallel_->average(mean) : mean;
}

std::string Trainer::save(int64_t step) {
  if (rank() != 0) return last_checkpoint_;
  CheckpointContents contents;
  contents.step = step;
  contents.micro_batches = micro_batches_;
  for (const auto& p : model_.parameters) contents.model.emplace_back(p.name, p.tensor.detach());
  contents.model_metadata = {{"format", "pt"},
                             {"producer", "blockc train"},
                             {"step", std::to_string(step)},
                             {"blocks_config", run_json(document_, train_).dump()}};
  contents.optimizer = optimizer_->state();
  contents.optimizer.emplace_back("rng.cpu", at::detail::getDefaultCPUGenerator().get_state());
  contents.extra = {{"optimizer_steps", optimizer_->steps()}};
  try {
    last_checkpoint_ = save_checkpoint(options_.run_dir, contents, train_.checkpoint.keep);
  } catch (const Error& e) {
    throw TrainError("saving the checkpoint of step " + std::to_string(step) + " failed: " +
                     e.what() +
                     (last_checkpoint_.empty() ? std::string()
                                               : "; " + last_checkpoint_ + " is intact"));
  }
  log({{"event", "checkpoint"}, {"step", step}, {"path", last_checkpoint_}});
  return last_checkpoint_;
}

TrainSummary Trainer::run() {
  TrainSummary summary;
  summary.first_step = step_;
  const int64_t end =
      options_.until > 0 && options_.until < train_.steps ? options_.until : train_.steps;
  const int64_t accumulation = train_.data.accumulation;
  const double tokens_per_step = static_cast<double>(train_.data.micro_batch *
                                                     train_.data.sequence_length * accumulation *
                                                     world_size());
  while (step_ < end) {
    const auto begin = std::chrono::steady_clock::now();
    optimizer_->zero_grad();
    GradientWatch watch(step_ == summary.first_step ? optimizer_.get() : nullptr);
    double loss = 0;
    for (int64_t i = 0; i < accumulation; ++i)
      loss += micro_step(micro_batches_++, 1.0 / static_cast<double>(accumulation));
    loss /= static_cast<double>(accumulation);
    if (const auto missing = watch.missing(); !missing.empty())
      note("trainable parameters that got no gradient in step " + std::to_string(step_ + 1) +
           " (nothing the loss depends on reads them this step): " + missing);
    if (parallel_) {
      parallel_->reduce_gradients();
      loss = parallel_->average(loss);
    }
    const double lr = train_.lr_at(step_);
    const double norm = optimizer_->clip_grad_norm(train_.clip_grad_norm);
    ++step_;
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      const std::string what = !std::isfinite(loss) ? "the loss is " + nonfinite_text(loss)
                                                    : "the gradient norm is " + nonfinite_text(norm);
      if (train_.on_nonfinite == "stop")
        throw TrainError("step " + std::to_string(step_) + ": " + what + "; " +
                         (last_checkpoint_.empty() ? "no checkpoint was saved yet"
                                                   : "the last good checkpoint is " +
                                                         last_checkpoint_));
      note("step " + std::to_string(step_) + ": " + what + "; the step is skipped");
      log({{"step", step_}, {"skipped", what}});
      continue;
    }
    optimizer_->step(lr);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    summary.last_loss = loss;
    if (step_ == summary.first_step + 1 || step_ % train_.log_every == 0 || step_ == end) {
      const double tokens_per_s = tokens_per_step / seconds;
      log({{"step", step_},
           {"loss", loss},
           {"lr", lr},
           {"grad_norm", norm},
           {"tokens", static_cast<int64_t>(tokens_per_step) * step_},
           {"tokens_per_s", tokens_per_s},
           {"mfu", flops_per_token_ * tokens_per_s / options_.peak_flops},
           {"time_s", seconds}});
    }
    if (train_.eval.every > 0 && (step_ % train_.eval.every == 0 || step_ == train_.steps))
      log({{"step", step_}, {"val_loss", evaluate()}});
    const int64_t every = train_.checkpoint.every;
    if ((every > 0 && step_ % every == 0) || step_ == end) save(step_);
  }
  summary.last_step = step_;
  summary.checkpoint = last_checkpoint_;
  return summary;
}

}  // namespace blocks::train
