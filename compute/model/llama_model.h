// LlamaModel: the Llama-family forward pass (llama, qwen2, qwen3) over a Backend.
//
// One instance owns the mapped GGUF, the weights' backend views and the activation scratch sized
// for `prefill_chunk` tokens. Forward() is not thread-safe: one sequence step at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/gguf/gguf_file.h"
#include "compute/model/kv_cache.h"
#include "compute/model/kv_sequence.h"
#include "compute/model/model_config.h"
#include "compute/model/model_weights.h"
#include "kernels/backend.h"

namespace leoam {

// One sequence's step in a batched decode: its next token, the position it goes to, and the KV
// sequence (holding positions [0, position)) it appends to and attends over.
struct DecodeItem {
  int32_t token = 0;
  int32_t position = 0;
  KvSequence* cache = nullptr;
};

struct ModelOptions {
  // Prompt tokens run per forward chunk (bounds activation memory). Default 512.
  int32_t prefill_chunk = 512;
};

class LlamaModel {
 public:
  // Opens, validates and maps `path`; the backend must outlive the model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Load(const std::string& path, kernels::Backend& backend,
                                                          const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return *file_; }
  const ModelWeights& weights() const { return weights_; }
  kernels::Backend& backend() const { return backend_; }

  // Runs `tokens` at positions [start_position, start_position + n); `cache` must already hold
  // positions [0, start_position) and have room for the new ones. Each layer's new keys/values go
  // to cache.Append and its attention comes from cache.Attend (dense KvCache, or a paged sequence).
  // logits: host memory, [n, vocab] when all_logits, else [vocab] for the last token only.
  absl::Status Forward(std::span<const int32_t> tokens, int32_t start_position, KvSequence& cache, bool all_logits,
                       float* logits);

  // One decode step of several independent sequences at once: the matrix products run over the
  // batch rows together (each weight matrix is read once per step, not once per sequence), RoPE
  // uses each row's own position, and attention runs per item through its own KvSequence.
  // logits: host memory, [items.size(), vocab], row i for items[i]. Gives the same logits as
  // Forward({token}, position, *cache, false, ...) of each item alone whenever the backend's
  // MatMul computes each row independently of the others (on the CPU backend: batches of up to
  // max_matvec_batch rows, default 32, give each row bit for bit what a single row gives; larger
  // batches take the GEMM path and agree to fp32 rounding).
  // Items must use distinct caches. Forward is not affected.
  absl::Status ForwardDecodeBatch(std::span<const DecodeItem> items, float* logits);

 private:
  LlamaModel(std::unique_ptr<gguf::GgufFile> file, ModelConfig config, ModelWeights weights,
             kernels::Backend& backend, ModelOptions options)
      : file_(std::move(file)), config_(std::move(config)), weights_(std::move(weights)), backend_(backend),
        options_(options) {}

  absl::Status EnsureScratch(int32_t tokens);
  absl::Status EnsureAttentionWorkspace(size_t bytes);
  // The two halves of a layer shared by Forward and ForwardDecodeBatch, on the activation scratch:
  // q, k, v (post-RoPE) of n rows of x; then x += Wo att and the feed-forward block.
  absl::Status AttentionInputs(const LayerWeights& w, int32_t n, const int32_t* positions, const float* x, float* q,
                               float* k, float* v);
  absl::Status AttentionOutputAndFfn(const LayerWeights& w, int32_t n, const float* att, float* x);
  absl::Status ForwardChunk(std::span<const int32_t> tokens, int32_t start_position, KvSequence& cache,
                            bool all_logits, float* logits);

  std::unique_ptr<gguf::GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
  kernels::Backend& backend_;
  ModelOptions options_;

  // Activation scratch for up to scratch_tokens_ tokens (backend memory).
  struct Scratch {
    int32_t tokens = 0;
    kernels::DeviceBuffer x, xn, q, k, v, att, gate, up, logits, ids, positions, attn_workspace;
    size_t attn_workspace_bytes = 0;
  } scratch_;
  kernels::DeviceBuffer inv_freq_;  // [rope_dim / 2]
  kernels::RopeParams rope_;
};

}  // namespace leoam
