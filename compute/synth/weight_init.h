// Deterministic, order-independent random weights for synthetic models, and the Llama-3 RoPE
// frequency factors.
//
// Element i of a tensor is a pure function of (seed, tensor name, i): one counter-based hash
// (splitmix64) per element, turned into an approximately normal value (Irwin-Hall sum of four
// uniforms, standardized). So any row can be generated on any thread in any order and the file
// bytes are the same for a seed regardless of the thread count.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace leoam::synth {

// How a tensor's values are drawn: value = mean + stddev * z, z ~ approx N(0, 1) in [-3.47, 3.47].
struct InitParams {
  float mean = 0.0f;
  float stddev = 1.0f;
};

class TensorRng {
 public:
  TensorRng(uint64_t seed, std::string_view tensor_name);
  // Fills out[0, n) with elements [first, first + n) of the tensor.
  void Fill(uint64_t first, int64_t n, const InitParams& params, float* out) const;

 private:
  uint64_t key_;
};

// The seeded traits of a token in the planted retrieval pattern (SyntheticModelSpec::retrieval_logit):
// whether it is salient, the topic it is (if salient) and the topic it wants, in [0, topics).
struct TokenTraits {
  bool salient = false;
  int topic = 0;
  int want = 0;
};
TokenTraits DrawTokenTraits(uint64_t seed, int64_t token, int topics, float salient_fraction);

// llama3 rope frequency factors for head_dim / 2 frequencies (rope_freqs.weight), computed as
// llama.cpp's convert_hf_to_gguf does: 1 for wavelengths below original_context / high_freq_factor,
// `factor` above original_context / low_freq_factor, smooth interpolation between.
std::vector<float> Llama3RopeFactors(int head_dim, float rope_base, float factor = 8.0f, float low_freq_factor = 1.0f,
                                     float high_freq_factor = 4.0f, int original_context = 8192);

}  // namespace leoam::synth
