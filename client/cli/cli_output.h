// Output helpers of the leoam CLI: the prefill progress bar and the end-of-generation summary.
#pragma once

#include <string>

#include "leoam/v1/generation.pb.h"

namespace leoam::cli {

// "[#########...........]  1200/4096 prompt tokens (300 cached)", `width` characters of bar.
std::string ProgressBar(const leoam::v1::PrefillProgress& progress, int width = 30);

// One line: finish reason, tokens, TTFT, tokens/s, cached tokens by tier, queue time, seed.
std::string Summary(const leoam::v1::FinalResult& final);

std::string FinishReasonText(leoam::v1::FinishReason reason);

}  // namespace leoam::cli
