#include "compute/engine/generate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace leoam {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kContextFull: return "context_full";
  }
  return "unknown";
}

absl::StatusOr<PrefillOrder> ParsePrefillOrder(std::string_view name) {
  if (name == "auto") return PrefillOrder::kAuto;
  if (name == "layer-major") return PrefillOrder::kLayerMajor;
  if (name == "token-major") return PrefillOrder::kTokenMajor;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown prefill order '", absl::string_view(name.data(), name.size()),
                   "' (expected auto, layer-major or token-major)"));
}

std::string_view PrefillOrderName(PrefillOrder order) {
  switch (order) {
    case PrefillOrder::kAuto: return "auto";
    case PrefillOrder::kLayerMajor: return "layer-major";
    case PrefillOrder::kTokenMajor: return "token-major";
  }
  return "unknown";
}

namespace {

// GenerateOptions::prefill_order resolved for this prompt (see PrefillOrder::kAuto).
absl::StatusOr<bool> UseLayerMajor(const LlamaModel& model, const GenerateOptions& options, int32_t prompt_len) {
  if (options.prefill_order == PrefillOrder::kTokenMajor) return false;
  if (options.prefill_order == PrefillOrder::kLayerMajor) {
    if (options.keep_prompt_logits) {
      return absl::InvalidArgumentError("layer-major prefill gives the last prompt token's logits only, not "
                                        "every position's (keep_prompt_logits)");
    }
    return true;
  }
  if (options.keep_prompt_logits || !options.paged_kv.has_value()) return false;
  return LayerMajorPrefillPays(model, *options.paged_kv, prompt_len);
}

}  // namespace

bool LayerMajorPrefillPays(const LlamaModel& model, const PagedKvOptions& paged, int32_t prompt_len) {
  if (paged.device_budget_bytes <= 0 || paged.kvstore == nullptr || paged.mode == SelectionMode::kOffloadAll) {
    return false;
  }
  if (prompt_len <= model.options().prefill_chunk) return false;
  const ModelConfig& c = model.config();
  const int64_t pages = (static_cast<int64_t>(prompt_len) + paged.page_size - 1) / paged.page_size;
  const int64_t kv_bytes = pages * c.num_layers * 2 * int64_t{paged.page_size} * c.kv_dim() * int64_t{sizeof(float)};
  return kv_bytes > paged.device_budget_bytes;
}

absl::StatusOr<GenerateResult> Generate(LlamaModel& model, const Tokenizer* tokenizer, std::span<const int32_t> prompt,
                                        const GenerateOptions& options, const std::function<void(int32_t)>& on_token) {
  const ModelConfig& config = model.config();
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  if (options.max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("max_tokens must be >= 0, got %d", options.max_tokens));
  }
  if (options.max_context < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("max_context must be >= 0, got %d", options.max_context));
  }
  const int32_t limit = options.max_context > 0 ? options.max_context : config.context_length;
  const int32_t prompt_len = static_cast<int32_t>(prompt.size());
  if (prompt_len > limit) {
    return absl::OutOfRangeError(
        absl::StrFormat("the prompt has %d tokens, more than the context limit of %d", prompt_len, limit));
  }
  ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(options.sampling));
  // The last generated token is never run through the model, so the cache needs
  // prompt + max_tokens - 1 positions at most.
  const int32_t capacity =
      std::min<int64_t>(limit, static_cast<int64_t>(prompt_len) + std::max(options.max_tokens - 1, 0));
  ASSIGN_OR_RETURN(const bool layer_major, UseLayerMajor(model, options, prompt_len));
  std::unique_ptr<KvSequence> cache_owner;
  PagedKvSequence* paged = nullptr;
  if (options.paged_kv.has_value()) {
    PagedKvOptions paged_options = *options.paged_kv;
    paged_options.layer_major_prompt = layer_major;
    ASSIGN_OR_RETURN(std::unique_ptr<PagedKvSequence> seq,
                     PagedKvSequence::Create(model.backend(), config, capacity, paged_options));
    paged = seq.get();
    cache_owner = std::move(seq);
  } else {
    ASSIGN_OR_RETURN(KvCache dense, KvCache::Create(model.backend(), config, capacity));
    cache_owner = std::make_unique<KvCache>(std::move(dense));
  }
  KvSequence& cache = *cache_owner;

  auto is_stop = [&](int32_t id) {
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) != options.stop_tokens.end()) return true;
    return tokenizer != nullptr && (tokenizer->IsEndOfGeneration(id) || id == tokenizer->bos_id());
  };

  GenerateResult result;
  result.prompt_tokens = prompt_len;
  result.layer_major_prefill = layer_major;
  const size_t vocab = config.vocab_size;
  std::vector<float> logits(options.keep_prompt_logits ? prompt.size() * vocab : vocab);

  absl::Time start = absl::Now();
  int32_t cached = 0;
  if (paged != nullptr && paged->tiered() && options.reuse_prefix && !options.keep_prompt_logits) {
    ASSIGN_OR_RETURN(result.prefix, paged->RestorePrefix(prompt));
    cached = result.prefix.cached_tokens;
  }
  const std::span<const int32_t> computed = prompt.subspan(cached);
  if (paged != nullptr) paged->PushTokens(computed);
  if (layer_major) {
    RETURN_IF_ERROR(model.PrefillLayerMajor(computed, cached, cache, /*chunk=*/0, logits.data()));
  } else {
    RETURN_IF_ERROR(model.Forward(computed, cached, cache, options.keep_prompt_logits, logits.data()));
  }
  result.prefill_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (paged != nullptr) {
    start = absl::Now();
    RETURN_IF_ERROR(paged->FinishPrefill());
    result.policy_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  }
  const float* next_logits = logits.data() + (options.keep_prompt_logits ? (prompt.size() - 1) * vocab : 0);
  if (options.keep_prompt_logits) {
    result.prompt_logits = logits;
  }

  start = absl::Now();
  int32_t position = prompt_len;
  result.finish_reason = FinishReason::kLength;
  std::vector<float> step_logits(next_logits, next_logits + vocab);
  while (static_cast<int32_t>(result.tokens.size()) < options.max_tokens) {
    ASSIGN_OR_RETURN(int32_t token, sampler.Sample(step_logits.data(), config.vocab_size));
    if (is_stop(token)) {
      result.finish_reason = FinishReason::kStop;
      break;
    }
    result.tokens.push_back(token);
    if (on_token) on_token(token);
    if (static_cast<int32_t>(result.tokens.size()) == options.max_tokens) break;
    if (position >= capacity) {
      result.finish_reason = FinishReason::kContextFull;
      break;
    }
    const int32_t one[1] = {token};
    if (paged != nullptr) paged->PushTokens(one);
    RETURN_IF_ERROR(model.Forward(one, position, cache, /*all_logits=*/false, step_logits.data()));
    ++position;
  }
  result.decode_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (paged != nullptr) {
    result.kv_stats = paged->stats();
    result.prefill_kv_stats = paged->prefill_stats();
  }
  return result;
}

}  // namespace leoam
