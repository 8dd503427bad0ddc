// SyntheticModelSpec: the shape and settings of a synthetic (random-weight) Llama-family model,
// and the named presets that leoam-synth offers (tiny test models and real-model shapes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/gguf/gguf_types.h"

namespace leoam::synth {

struct SyntheticModelSpec {
  // Label written as general.name = "synthetic <name>". Default "custom".
  std::string name = "custom";
  // Architecture: "llama", "qwen2" (adds QKV biases) or "qwen3" (adds Q/K RMSNorm). Default llama.
  std::string arch = "llama";
  int dim = 128;       // embedding_length
  int layers = 3;      // block_count
  int heads = 4;       // attention.head_count
  int kv_heads = 2;    // attention.head_count_kv (divides heads)
  int head_dim = 32;   // attention.key_length = value_length = rope.dimension_count
  int ffn = 256;       // feed_forward_length
  int vocab = 512;     // tokenizer size (exact)
  int context = 4096;  // context_length
  float rope_base = 10000.0f;
  // Llama-3 rope scaling (factor 8, low 1, high 4, original context 8192) as rope_freqs.weight.
  bool llama3_rope_scaling = false;
  // When true there is no output.weight: the output projection reuses token_embd.weight.
  bool tied_output = false;
  // Element type of the weight matrices (F32, F16, BF16 or Q8_0); norms and biases are always F32.
  gguf::TensorType weight_type = gguf::TensorType::kF32;
  // RMSNorm epsilon; 0 means the architecture default (1e-5 llama, 1e-6 qwen2/qwen3).
  float rms_norm_eps = 0.0f;
  // Seed of the weights: the same spec and seed give the same bytes.
  uint64_t seed = 0;

  float EffectiveRmsNormEps() const;
  bool is_qwen() const { return arch == "qwen2" || arch == "qwen3"; }
};

// Names of the presets, in the order leoam-synth --list-presets prints them.
std::vector<std::string> PresetNames();
// One-line description of a preset (shape and default dtype).
std::string DescribeSpec(const SyntheticModelSpec& spec);

// The spec of a named preset; NOT_FOUND (listing the presets) for an unknown name.
absl::StatusOr<SyntheticModelSpec> PresetSpec(std::string_view name);

// INVALID_ARGUMENT naming the problem when the spec cannot make a valid model (unknown arch,
// non-positive sizes, heads not a multiple of kv_heads, odd head_dim, Q8_0 with a row length
// not a multiple of 32, a vocab too small for the tokenizer, ...).
absl::Status ValidateSpec(const SyntheticModelSpec& spec);

// Number of weight elements of the model the spec describes.
uint64_t ParameterCount(const SyntheticModelSpec& spec);

// "f32" | "f16" | "bf16" | "q8_0" (case-insensitive) <-> tensor type.
absl::StatusOr<gguf::TensorType> ParseWeightType(std::string_view name);
std::string WeightTypeFlagName(gguf::TensorType type);

}  // namespace leoam::synth
