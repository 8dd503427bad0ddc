// Sampler: picks the next token from logits — greedy, or temperature with top-k, top-p and min-p
// filters — deterministically for a given seed.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leoam {

struct SamplingParams {
  // 0 selects greedy decoding (argmax; ties go to the lowest id). Must be >= 0.
  float temperature = 0.0f;
  // Keep only the k most likely tokens; 0 disables. Must be >= 0.
  int32_t top_k = 0;
  // Keep the smallest set of most likely tokens whose probability reaches top_p; 1 disables. In (0, 1].
  float top_p = 1.0f;
  // Drop tokens whose probability is below min_p times the most likely one's; 0 disables. In [0, 1).
  float min_p = 0.0f;
  // Seed of the sampler's random stream; the same seed and logits give the same tokens.
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the field when a value is out of range (or not finite).
absl::Status ValidateSamplingParams(const SamplingParams& params);

class Sampler {
 public:
  static absl::StatusOr<Sampler> Create(const SamplingParams& params);

  // logits: [vocab]. Returns INVALID_ARGUMENT when vocab <= 0 or every logit is NaN.
  absl::StatusOr<int32_t> Sample(const float* logits, int32_t vocab);

  const SamplingParams& params() const { return params_; }

 private:
  explicit Sampler(const SamplingParams& params);
  double NextUniform();  // [0, 1), from a xoshiro256** stream

  SamplingParams params_;
  uint64_t state_[4];
  std::vector<std::pair<float, int32_t>> candidates_;  // reused between calls
};

// Index of the largest finite logit (lowest index on ties), or -1 if none is finite.
int32_t Argmax(const float* logits, int32_t vocab);

}  // namespace leoam
