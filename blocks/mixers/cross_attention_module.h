// The cross-attention module. Its keys and values come from the step's memory of its name; with
// a decoding cache they are kept there (computed once at prefill, replaced when a step gives the
// memory again), so a decoding step with no memory uses them. A query whose mask row has no
// attendable entry attends to the whole memory instead (Hugging Face's mllama does so; the
// softmax of an empty row would be NaN), and the block decides what to do with such rows
// (gated_cross_attention's unattended_rows).
#pragma once

#include "blocks/linear/linear_module.h"
#include "blocks/mixers/cross_attention.h"
#include "blocks/modules.h"

namespace blocks {

class CrossAttention : public MixerModule {
 public:
  CrossAttention(const CrossAttentionConfig& config, Builder& builder, const std::string& path);
  at::Tensor forward(const at::Tensor& x, Step& step) override;
  // The output, and bool [batch or 1, tokens or 1, 1]: whether each query had an attendable
  // memory entry (undefined when every one had).
  std::pair<at::Tensor, at::Tensor> attend(const at::Tensor& x, Step& step);
  void pretty_print(std::ostream& s) const override;

 private:
  // Keys and values [batch, groups, memory, head_size] of the step's memory, or the cached ones.
  std::pair<at::Tensor, at::Tensor> keys_and_values(const Memory* memory, int64_t batch,
                                                    Step& step);

  int64_t heads_, groups_, head_size_, memory_width_;
  double scale_, dropout_;
  std::string memory_, path_;
  std::shared_ptr<Linear> query_, key_, value_, output_;
  std::shared_ptr<NormModule> qk_norm_;
};

}  // namespace blocks
