#include "compute/sampling/sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace leoam {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return absl::InvalidArgumentError(absl::StrFormat("temperature must be >= 0, got %g", p.temperature));
  }
  if (p.top_k < 0) return absl::InvalidArgumentError(absl::StrFormat("top_k must be >= 0, got %d", p.top_k));
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f) {
    return absl::InvalidArgumentError(absl::StrFormat("top_p must be in (0, 1], got %g", p.top_p));
  }
  if (!std::isfinite(p.min_p) || p.min_p < 0.0f || p.min_p >= 1.0f) {
    return absl::InvalidArgumentError(absl::StrFormat("min_p must be in [0, 1), got %g", p.min_p));
  }
  return absl::OkStatus();
}

int32_t Argmax(const float* logits, int32_t vocab) {
  int32_t best = -1;
  float best_value = 0.0f;
  for (int32_t i = 0; i < vocab; ++i) {
    const float v = logits[i];
    if (std::isnan(v)) continue;
    if (best < 0 || v > best_value) {
      best = i;
      best_value = v;
    }
  }
  return best;
}

absl::StatusOr<Sampler> Sampler::Create(const SamplingParams& params) {
  if (absl::Status s = ValidateSamplingParams(params); !s.ok()) return s;
  return Sampler(params);
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  uint64_t x = params.seed;
  for (uint64_t& s : state_) s = SplitMix64(x);
}

double Sampler::NextUniform() {
  // xoshiro256**: portable, so a seed gives the same stream on every platform.
  const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

absl::StatusOr<int32_t> Sampler::Sample(const float* logits, int32_t vocab) {
  if (vocab <= 0) return absl::InvalidArgumentError("Sample: empty vocabulary");
  if (params_.temperature == 0.0f) {
    int32_t id = Argmax(logits, vocab);
    if (id < 0) return absl::InvalidArgumentError("Sample: every logit is NaN");
    return id;
  }
  // Candidates sorted by logit, most likely first (ties by id, for determinism).
  candidates_.clear();
  for (int32_t i = 0; i < vocab; ++i) {
    if (!std::isnan(logits[i])) candidates_.emplace_back(logits[i], i);
  }
  if (candidates_.empty()) return absl::InvalidArgumentError("Sample: every logit is NaN");
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = params_.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), better);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), better);
  }
  candidates_.resize(keep);

  // Softmax at the temperature, in double for a stable cumulative sum.
  const double inv_t = 1.0 / params_.temperature;
  const double max_logit = candidates_[0].first;
  std::vector<double> probs(keep);
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((candidates_[i].first - max_logit) * inv_t);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;

  // min-p relative to the top token, then top-p over what is left.
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= floor) ++n;
    keep = n;
  }
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    size_t n = 0;
    while (n < keep) {
      cumulative += probs[n++];
      if (cumulative >= params_.top_p) break;
    }
    keep = n;
  }
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += probs[i];
  const double r = NextUniform() * total;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (r < acc) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace leoam
