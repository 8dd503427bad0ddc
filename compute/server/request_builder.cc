#include "compute/server/request_builder.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace leoam::server {

int32_t RequestBuilder::max_prompt_tokens() const {
  const int32_t context = config_.context_length > 0 ? config_.context_length : INT32_MAX;
  return options_.max_prompt_tokens > 0 ? std::min(options_.max_prompt_tokens, context) : context;
}

absl::StatusOr<std::vector<int32_t>> RequestBuilder::Prompt(const leoam::v1::GenerateRequest& r) const {
  const int given = (r.text().empty() ? 0 : 1) + (r.token_ids_size() > 0 ? 1 : 0) + (r.messages_size() > 0 ? 1 : 0);
  if (given == 0) return absl::InvalidArgumentError("the request has no prompt: set one of text, token_ids or messages");
  if (given > 1) {
    return absl::InvalidArgumentError("set exactly one of text, token_ids or messages (the request has several)");
  }
  if (r.token_ids_size() > 0) {
    std::vector<int32_t> ids(r.token_ids().begin(), r.token_ids().end());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= config_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrFormat("token_ids[%d] = %d is outside the vocabulary [0, %d)", i,
                                                          ids[i], config_.vocab_size));
      }
    }
    return ids;
  }
  EncodeOptions encode;
  encode.add_eos = false;
  if (r.messages_size() > 0) {
    if (!chat_error_.ok()) return absl::InvalidArgumentError(chat_error_.message());
    std::vector<ChatTurn> turns;
    for (const leoam::v1::ChatMessage& m : r.messages()) turns.push_back({m.role(), m.content()});
    ASSIGN_OR_RETURN(std::string rendered, RenderChat(chat_format_, turns));
    encode.parse_special = true;
    return tokenizer_.Encode(rendered, encode);
  }
  return tokenizer_.Encode(r.text(), encode);
}

absl::StatusOr<PreparedRequest> RequestBuilder::Build(const leoam::v1::GenerateRequest& r) const {
  PreparedRequest p;
  if (r.request_id().size() > 256) return absl::InvalidArgumentError("request_id is longer than 256 bytes");
  p.request_id = r.request_id();

  // Cheap checks first, so an oversized request is refused before it is tokenized.
  if (r.max_tokens() < 0) return absl::InvalidArgumentError(absl::StrFormat("max_tokens must be >= 0, got %d", r.max_tokens()));
  if (r.max_tokens() > options_.max_tokens_limit) {
    return absl::ResourceExhaustedError(absl::StrFormat("max_tokens %d is above this server's limit of %d",
                                                        r.max_tokens(), options_.max_tokens_limit));
  }
  p.max_tokens = r.max_tokens() == 0 ? options_.default_max_tokens : r.max_tokens();
  if (r.time_limit_ms() < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("time_limit_ms must be >= 0, got %d", r.time_limit_ms()));
  }
  if (r.time_limit_ms() > 0) p.time_limit = absl::Milliseconds(r.time_limit_ms());

  const leoam::v1::SamplingParams& s = r.sampling();
  if (!std::isfinite(s.temperature()) || s.temperature() < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sampling.temperature must be >= 0 and finite, got %g", s.temperature()));
  }
  if (s.top_k() < 0) return absl::InvalidArgumentError(absl::StrFormat("sampling.top_k must be >= 0, got %d", s.top_k()));
  if (!std::isfinite(s.top_p()) || s.top_p() < 0.0f || s.top_p() > 1.0f) {
    return absl::InvalidArgumentError(absl::StrFormat("sampling.top_p must be in [0, 1], got %g", s.top_p()));
  }
  if (!std::isfinite(s.min_p()) || s.min_p() < 0.0f || s.min_p() > 1.0f) {
    return absl::InvalidArgumentError(absl::StrFormat("sampling.min_p must be in [0, 1], got %g", s.min_p()));
  }
  p.sampling.temperature = s.temperature();
  p.sampling.top_k = s.top_k();
  p.sampling.top_p = s.top_p() == 0.0f ? 1.0f : s.top_p();
  // min_p = 1 keeps only the tokens as likely as the best one; the sampler takes [0, 1).
  p.sampling.min_p = s.min_p() >= 1.0f ? std::nextafter(1.0f, 0.0f) : s.min_p();
  if (s.has_seed()) {
    p.sampling.seed = s.seed();
  } else {
    // The server picks one (reported in usage, so the client can reproduce the output).
    std::random_device rd;
    p.sampling.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  RETURN_IF_ERROR(ValidateSamplingParams(p.sampling));

  for (int i = 0; i < r.stop_token_ids_size(); ++i) {
    const int32_t id = r.stop_token_ids(i);
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat("stop_token_ids[%d] = %d is outside the vocabulary [0, %d)",
                                                        i, id, config_.vocab_size));
    }
    p.stop_tokens.push_back(id);
  }
  for (int i = 0; i < r.stop_strings_size(); ++i) {
    if (r.stop_strings(i).empty()) return absl::InvalidArgumentError(absl::StrFormat("stop_strings[%d] is empty", i));
    p.stop_strings.push_back(r.stop_strings(i));
  }
  p.ignore_eos = r.ignore_eos();
  p.report_progress = r.report_progress();

  // A text prompt longer (in bytes) than 64 x the limit cannot fit: refuse before tokenizing it.
  const int32_t limit = max_prompt_tokens();
  if (static_cast<int64_t>(r.token_ids_size()) > limit ||
      static_cast<int64_t>(r.text().size()) > int64_t{64} * limit + 4096) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the prompt is longer than this server's limit of %d tokens", limit));
  }
  ASSIGN_OR_RETURN(p.prompt, Prompt(r));
  if (p.prompt.empty()) return absl::InvalidArgumentError("the prompt tokenizes to no tokens");
  const int32_t n = static_cast<int32_t>(p.prompt.size());
  if (n > limit) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the prompt has %d tokens, more than this server's limit of %d", n, limit));
  }
  const int32_t context = config_.context_length > 0 ? config_.context_length : INT32_MAX;
  p.kv_capacity = static_cast<int32_t>(
      std::min<int64_t>(context, static_cast<int64_t>(n) + std::max(p.max_tokens - 1, 0)));
  return p;
}

}  // namespace leoam::server
