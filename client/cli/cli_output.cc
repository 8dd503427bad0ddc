#include "client/cli/cli_output.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace leoam::cli {

std::string ProgressBar(const leoam::v1::PrefillProgress& p, int width) {
  const double frac = p.prompt_tokens() > 0 ? static_cast<double>(p.processed_tokens()) / p.prompt_tokens() : 1.0;
  const int filled = std::clamp(static_cast<int>(frac * width + 0.5), 0, width);
  std::string bar = absl::StrFormat("[%s%s] %d/%d prompt tokens (%d cached)", std::string(filled, '#'),
                                    std::string(width - filled, '.'), p.processed_tokens(), p.prompt_tokens(),
                                    p.cached_tokens());
  if (p.layer_major()) absl::StrAppendFormat(&bar, ", layer-major: %d/%d layers", p.layers_done(), p.num_layers());
  return bar;
}

std::string FinishReasonText(leoam::v1::FinishReason reason) {
  switch (reason) {
    case leoam::v1::FINISH_REASON_LENGTH: return "length";
    case leoam::v1::FINISH_REASON_STOP: return "stop";
    case leoam::v1::FINISH_REASON_CANCELLED: return "cancelled";
    case leoam::v1::FINISH_REASON_TIME_LIMIT: return "time_limit";
    case leoam::v1::FINISH_REASON_CONTEXT_FULL: return "context_full";
    case leoam::v1::FINISH_REASON_ERROR: return "error";
    default: return "unspecified";
  }
}

std::string Summary(const leoam::v1::FinalResult& f) {
  const leoam::v1::Usage& u = f.usage();
  std::string s = absl::StrFormat(
      "finish: %s; prompt %d tokens, generated %d; TTFT %.1f ms, %.1f tokens/s; cached tokens %d (memory %d, disk %d); "
      "queue %.1f ms; seed %u",
      FinishReasonText(f.finish_reason()), u.prompt_tokens(), u.completion_tokens(), u.ttft_ms(),
      u.decode_tokens_per_second(), u.cached_tokens_memory() + u.cached_tokens_disk(), u.cached_tokens_memory(),
      u.cached_tokens_disk(), u.queue_ms(), u.seed());
  if (u.pages_fetched_memory() + u.pages_fetched_disk() > 0 || u.fetch_stall_ms() > 0) {
    s += absl::StrFormat("; pages fetched %d (memory) %d (disk), stall %.1f ms", u.pages_fetched_memory(),
                         u.pages_fetched_disk(), u.fetch_stall_ms());
  }
  if (!f.error().empty()) s += "; error: " + f.error();
  return s;
}

}  // namespace leoam::cli
