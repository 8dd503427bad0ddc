#include "compute/synth/weight_init.h"

#include <cmath>

namespace leoam::synth {
namespace {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

TensorRng::TensorRng(uint64_t seed, std::string_view tensor_name)
    : key_(SplitMix64(SplitMix64(seed) ^ Fnv1a(tensor_name))) {}

void TensorRng::Fill(uint64_t first, int64_t n, const InitParams& params, float* out) const {
  // Sum of four 16-bit uniforms: mean 2, variance 4/12; standardize to unit variance.
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3) / 2^16
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = SplitMix64(key_ ^ ((first + static_cast<uint64_t>(i)) * 0xd1b54a32d192ed03ull));
    const uint32_t sum = static_cast<uint32_t>(h & 0xffff) + static_cast<uint32_t>((h >> 16) & 0xffff) +
                         static_cast<uint32_t>((h >> 32) & 0xffff) + static_cast<uint32_t>(h >> 48);
    const float z = (static_cast<float>(sum) - 131070.0f) * kScale;  // (sum/2^16 - 2) * sqrt(3), centred
    out[i] = params.mean + params.stddev * z;
  }
}

TokenTraits DrawTokenTraits(uint64_t seed, int64_t token, int topics, float salient_fraction) {
  const uint64_t h = SplitMix64(SplitMix64(seed ^ Fnv1a("leoam.token_traits")) ^ static_cast<uint64_t>(token));
  TokenTraits t;
  t.salient = static_cast<double>(h & 0xffffff) / static_cast<double>(1 << 24) < salient_fraction;
  t.topic = static_cast<int>((h >> 24) % static_cast<uint64_t>(topics));
  t.want = static_cast<int>((h >> 44) % static_cast<uint64_t>(topics));
  return t;
}

std::vector<float> Llama3RopeFactors(int head_dim, float rope_base, float factor, float low_freq_factor,
                                     float high_freq_factor, int original_context) {
  const float low_freq_wavelen = static_cast<float>(original_context) / low_freq_factor;
  const float high_freq_wavelen = static_cast<float>(original_context) / high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < head_dim; i += 2) {
    // freqs = 1 / base ** (arange(0, dim, 2) / dim), in float32 as the converter computes it.
    const float freq = 1.0f / std::pow(rope_base, static_cast<float>(i) / static_cast<float>(head_dim));
    const float wavelen = 2.0f * static_cast<float>(M_PI) / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(factor);
    } else {
      const float smooth = (static_cast<float>(original_context) / wavelen - low_freq_factor) /
                           (high_freq_factor - low_freq_factor);
      factors.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return factors;
}

}  // namespace leoam::synth
