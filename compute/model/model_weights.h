// ModelWeights: the tensors of a Llama-family model, checked against its ModelConfig and made
// available to a backend (zero-copy from the memory-mapped GGUF on the CPU backend).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/gguf/gguf_file.h"
#include "compute/model/model_config.h"
#include "kernels/backend.h"

namespace leoam {

struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  kernels::Matrix wq;                // [q_dim, dim]
  kernels::Matrix wk;                // [kv_dim, dim]
  kernels::Matrix wv;                // [kv_dim, dim]
  kernels::Matrix wo;                // [dim, q_dim]
  const float* bq = nullptr;         // [q_dim]  qwen2 only
  const float* bk = nullptr;         // [kv_dim] qwen2 only
  const float* bv = nullptr;         // [kv_dim] qwen2 only
  const float* q_norm = nullptr;     // [head_dim] qwen3 only
  const float* k_norm = nullptr;     // [head_dim] qwen3 only
  const float* ffn_norm = nullptr;   // [dim]
  kernels::Matrix w_gate;            // [ffn_dim, dim]
  kernels::Matrix w_up;              // [ffn_dim, dim]
  kernels::Matrix w_down;            // [dim, ffn_dim]
};

struct ModelWeights {
  kernels::Matrix token_embd;          // [vocab, dim]
  const float* output_norm = nullptr;  // [dim]
  kernels::Matrix output;              // [vocab, dim] (token_embd when tied)
  std::vector<LayerWeights> layers;
  // Host copy of rope_freqs.weight ([rope_dim / 2], Llama-3 scaling), empty when absent.
  std::vector<float> rope_freq_factors;
  uint64_t weight_bytes = 0;  // bytes of all tensors used

  // Fails with INVALID_ARGUMENT naming the tensor when one is missing, has an unsupported type, or
  // a shape that contradicts the metadata.
  static absl::StatusOr<ModelWeights> Load(const gguf::GgufFile& file, const ModelConfig& config,
                                           kernels::Backend& backend);
};

}  // namespace leoam
