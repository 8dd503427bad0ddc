// Generate: the single-sequence generation loop of the runtime — prefill, then sample and decode
// one token at a time until a stop condition.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/llama_model.h"
#include "compute/sampling/sampler.h"
#include "compute/tokenizer/tokenizer.h"

namespace leoam {

// The order the prompt runs in (LlamaModel::Forward is token-major: each chunk through every layer;
// LlamaModel::PrefillLayerMajor: each layer over every chunk).
enum class PrefillOrder {
  // Layer-major when it saves device memory traffic: a tiered paged KV with a device budget (not
  // offload-all, which refetches every page at every attention in either order), a prompt of more
  // than one prefill chunk (one chunk is the same computation in either order) whose KV over all
  // layers exceeds the device budget (otherwise token-major evicts no prompt page either). Then
  // token-major must fetch each layer's evicted pages back at every later chunk (traffic grows
  // with prompt^2 / chunk), while layer-major keeps one layer's KV resident. Token-major otherwise.
  kAuto,
  kLayerMajor,
  kTokenMajor,
};
absl::StatusOr<PrefillOrder> ParsePrefillOrder(std::string_view name);  // "auto", "layer-major", "token-major"
std::string_view PrefillOrderName(PrefillOrder order);
// PrefillOrder::kAuto's test for a prompt of `prompt_len` tokens computed into a paged KV with
// these options: tiered with a device budget (not offload-all), more than one prefill chunk, and
// the prompt's KV over all layers larger than the device budget.
bool LayerMajorPrefillPays(const LlamaModel& model, const PagedKvOptions& paged, int32_t prompt_len);

struct GenerateOptions {
  // Most tokens to generate. Default 256; 0 runs the prompt only (e.g. to read its logits).
  int32_t max_tokens = 256;
  // Positions the KV cache may hold (prompt + forwarded generated tokens); 0 means the model's
  // context_length. A prompt longer than this is OUT_OF_RANGE; generation stops with
  // kContextFull when it is reached.
  int32_t max_context = 0;
  SamplingParams sampling;
  // Token ids that end generation, besides the tokenizer's end-of-generation tokens and BOS
  // (a generated BOS starts a new document, so it ends this one). The stop token is not emitted.
  std::vector<int32_t> stop_tokens;
  // Keep the logits of every prompt position in GenerateResult::prompt_logits.
  bool keep_prompt_logits = false;
  // KV storage: unset runs the dense contiguous KvCache (mode `dense`, the reference); set runs
  // the paged LeoAM sequence with its selection mode and budget (prefill stays exact).
  std::optional<PagedKvOptions> paged_kv{};
  // Tiered paged KV (a device budget or offload-all, with a kvstore): restore the longest prompt
  // prefix whose pages the store already holds (PagedKvSequence::RestorePrefix) instead of
  // computing it. Ignored with keep_prompt_logits (restored positions have no logits). Default on.
  bool reuse_prefix = true;
  // Prompt order. Layer-major gives the last prompt token's logits only, so keep_prompt_logits
  // runs token-major under kAuto and is INVALID_ARGUMENT with kLayerMajor. Default kAuto.
  PrefillOrder prefill_order = PrefillOrder::kAuto;
};

enum class FinishReason { kLength, kStop, kContextFull };
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop", "context_full"

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids, stop token excluded
  FinishReason finish_reason = FinishReason::kLength;
  int32_t prompt_tokens = 0;
  double prefill_seconds = 0.0;  // prompt forward pass (and prefix restore), including the first token's logits
  double decode_seconds = 0.0;   // every later forward pass and sampling step
  // Paged KV: the end of the prompt's work after its logits (leoam measuring its per-layer
  // policies from the prompt's last queries); in neither prefill_seconds nor decode_seconds.
  double policy_seconds = 0.0;
  bool layer_major_prefill = false;  // the prompt ran layer-major (GenerateOptions::prefill_order)
  std::vector<float> prompt_logits;  // [prompt_tokens, vocab] when keep_prompt_logits
  PagedKvStats kv_stats;             // with paged_kv: decode-time selection and tier counters
  PagedKvStats prefill_kv_stats;     // with paged_kv: the prompt's tier counters (pages written, fetched)
  // Prefix reuse: prompt tokens restored from the kvstore instead of computed (cached_tokens), and
  // how many of those pages came from its memory / disk tier.
  PrefixRestore prefix;
};

// Runs `prompt` (token ids, BOS included if wanted) through `model`. `tokenizer` may be null (then
// only BOS/EOS from the model file are not known: only stop_tokens end generation). `on_token` is
// called for each generated token as soon as it is sampled.
absl::StatusOr<GenerateResult> Generate(LlamaModel& model, const Tokenizer* tokenizer, std::span<const int32_t> prompt,
                                        const GenerateOptions& options,
                                        const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace leoam
