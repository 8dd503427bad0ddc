// RequestBuilder: checks a leoam.v1.GenerateRequest against the model and the server limits and
// turns it into a PreparedRequest (prompt token ids, sampler parameters, stop conditions). Every
// problem is a status a user can act on: INVALID_ARGUMENT for a malformed request,
// RESOURCE_EXHAUSTED for one over a server limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "compute/model/model_config.h"
#include "compute/sampling/sampler.h"
#include "compute/server/chat_template.h"
#include "compute/server/server_options.h"
#include "compute/tokenizer/tokenizer.h"
#include "leoam/v1/generation.pb.h"

namespace leoam::server {

struct PreparedRequest {
  std::string request_id;  // "" until the scheduler assigns one
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 0;
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_tokens;
  bool ignore_eos = false;
  absl::Duration time_limit = absl::InfiniteDuration();
  bool report_progress = false;
  // Positions the request's KV needs: min(context limit, prompt + max_tokens - 1).
  int32_t kv_capacity = 0;
};

class RequestBuilder {
 public:
  // `chat_format` comes from DetectChatFormat of the model's template (kNone when absent);
  // `chat_error` is the detection error when the template was not recognized (OK otherwise).
  RequestBuilder(const ModelConfig& config, const Tokenizer& tokenizer, const ServerOptions& options,
                 ChatFormat chat_format, absl::Status chat_error)
      : config_(config), tokenizer_(tokenizer), options_(options), chat_format_(chat_format),
        chat_error_(std::move(chat_error)) {}

  absl::StatusOr<PreparedRequest> Build(const leoam::v1::GenerateRequest& request) const;

  // The longest prompt accepted.
  int32_t max_prompt_tokens() const;

 private:
  absl::StatusOr<std::vector<int32_t>> Prompt(const leoam::v1::GenerateRequest& request) const;

  const ModelConfig& config_;
  const Tokenizer& tokenizer_;
  const ServerOptions& options_;
  ChatFormat chat_format_;
  absl::Status chat_error_;
};

}  // namespace leoam::server
