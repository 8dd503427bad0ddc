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

class LlamaModel;

// A layer-major prefill in progress (LlamaModel::StartLayerMajor): Step() runs one chunk of one
// layer, so a scheduler can interleave a long prompt with other requests' decode steps; it owns the
// prompt's hidden states [n, dim] (backend memory) until it is destroyed. The tokens and the cache
// must outlive it, and nothing else may append to the cache meanwhile. Move-only.
class LayerMajorPrefill {
 public:
  LayerMajorPrefill(LayerMajorPrefill&&) = default;
  LayerMajorPrefill& operator=(LayerMajorPrefill&&) = default;

  // Runs the next chunk of the current layer (layer 0 chunk 0 first, the last layer's last chunk last).
  absl::Status Step();
  bool done() const { return steps_done_ == steps_total_; }
  int32_t steps_done() const { return steps_done_; }
  int32_t steps_total() const { return steps_total_; }
  // The last prompt token's logits (host, [vocab]); only when done().
  absl::Status Logits(float* logits);

 private:
  friend class LlamaModel;
  LayerMajorPrefill() = default;
  LlamaModel* model_ = nullptr;
  KvSequence* cache_ = nullptr;
  int32_t n_ = 0, start_position_ = 0, chunk_ = 0;
  int32_t steps_done_ = 0, steps_total_ = 0;
  kernels::DeviceBuffer hidden_;  // [n, dim]
  std::vector<int32_t> positions_;
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
  const ModelOptions& options() const { return options_; }
  const gguf::GgufFile& file() const { return *file_; }
  const ModelWeights& weights() const { return weights_; }
  kernels::Backend& backend() const { return backend_; }

  // Runs `tokens` at positions [start_position, start_position + n); `cache` must already hold
  // positions [0, start_position) and have room for the new ones. Each layer's new keys/values go
  // to cache.Append and its attention comes from cache.Attend (dense KvCache, or a paged sequence).
  // logits: host memory, [n, vocab] when all_logits, else [vocab] for the last token only.
  absl::Status Forward(std::span<const int32_t> tokens, int32_t start_position, KvSequence& cache, bool all_logits,
                       float* logits);

  // Layer-major prefill (DESIGN.md §4 "Prefill"): runs layer 0 over every token of `tokens` (in
  // causal chunks of `chunk` tokens; 0: options().prefill_chunk), then layer 1, and so on, keeping
  // the hidden states of all n tokens ([n, dim], backend memory) between layers. A sequence that
  // writes pages through to a store as they fill (PagedKvSequence in tiered mode) thus needs only
  // one layer's KV on the device at a time, instead of every layer's KV of the earlier chunks,
  // which Forward's token-major order revisits at each chunk. The layer body is the one Forward
  // runs (same halves, same per-chunk attention), so with the same chunk size the logits are
  // bit-identical to Forward's on a backend whose kernels are deterministic (the CPU backend).
  // Same preconditions as Forward; logits: host memory, [vocab], of the last token only.
  absl::Status PrefillLayerMajor(std::span<const int32_t> tokens, int32_t start_position, KvSequence& cache,
                                 int32_t chunk, float* logits);
  // The same, one step at a time: embeds the tokens and returns the prefill positioned at layer 0,
  // chunk 0. Running every Step() then Logits() is exactly PrefillLayerMajor.
  absl::StatusOr<LayerMajorPrefill> StartLayerMajor(std::span<const int32_t> tokens, int32_t start_position,
                                                    KvSequence& cache, int32_t chunk);

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
  friend class LayerMajorPrefill;
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
  absl::Status CheckPrompt(std::span<const int32_t> tokens, int32_t start_position, const KvSequence& cache,
                           const char* what) const;
  // Layer `l` of one chunk of n tokens at positions [start, start + n) (`pos` on the device):
  // q/k/v, cache.Append, cache.Attend, then the output projection and feed-forward into x [n, dim].
  // The layer body of Forward and PrefillLayerMajor.
  absl::Status LayerChunk(int32_t l, int32_t n, int32_t start, const int32_t* pos, float* x, KvSequence& cache);
  // Final norm and output projection of `rows` rows of x into host logits [rows, vocab].
  absl::Status Logits(const float* x, int32_t rows, float* logits);
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
