// ModelConfig: the shape and hyper-parameters of a Llama-family model, read from GGUF metadata.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "compute/gguf/gguf_file.h"
#include "kernels/backend.h"

namespace leoam {

enum class Architecture { kLlama, kQwen2, kQwen3 };

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string arch_name;  // general.architecture as written ("llama", "qwen2", "qwen3")
  std::string name;       // general.name, "" if absent

  int32_t dim = 0;             // {arch}.embedding_length
  int32_t num_layers = 0;      // {arch}.block_count
  int32_t num_heads = 0;       // {arch}.attention.head_count
  int32_t num_kv_heads = 0;    // {arch}.attention.head_count_kv (default num_heads)
  int32_t head_dim = 0;        // {arch}.attention.key_length (default dim / num_heads)
  int32_t ffn_dim = 0;         // {arch}.feed_forward_length
  int32_t vocab_size = 0;      // rows of token_embd.weight
  int32_t context_length = 0;  // {arch}.context_length (the trained context; a hint, not a hard limit)
  float rms_eps = 1e-5f;       // {arch}.attention.layer_norm_rms_epsilon

  float rope_freq_base = 10000.0f;      // {arch}.rope.freq_base
  int32_t rope_dim = 0;                 // {arch}.rope.dimension_count (default head_dim)
  kernels::RopeStyle rope_style = kernels::RopeStyle::kNormal;  // normal for llama, neox for qwen
  float rope_linear_scale = 1.0f;       // {arch}.rope.scaling.factor when scaling.type == "linear"

  bool has_qkv_bias = false;  // qwen2
  bool has_qk_norm = false;   // qwen3
  bool tied_output = false;   // no output.weight: logits use token_embd.weight

  int32_t q_dim() const { return num_heads * head_dim; }
  int32_t kv_dim() const { return num_kv_heads * head_dim; }

  // Reads and checks the metadata (weights are checked against it by ModelWeights). Errors are
  // INVALID_ARGUMENT naming the key, or UNIMPLEMENTED for an unknown architecture.
  static absl::StatusOr<ModelConfig> FromGguf(const gguf::GgufFile& file);
};

}  // namespace leoam
