// KvSequence: the KV storage seam of the forward pass. LlamaModel::Forward hands each layer's new
// post-RoPE keys and values to the sequence (Append) and asks it for the attention output
// (Attend); how KV is stored and which of it is attended is the sequence's business:
//   - KvCache (compute/model/kv_cache.h): dense contiguous cache, exact attention;
//   - PagedKvSequence (compute/engine/paged_kv.h): pages + abstracts, LeoAM/Quest selection.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/backend.h"

namespace leoam {

class KvSequence {
 public:
  virtual ~KvSequence() = default;

  // Positions the sequence can hold.
  virtual int32_t capacity() const = 0;

  // Where the model may compute rows [start, start + n) of `layer` in place (the Append that
  // follows then copies nothing), or {nullptr, nullptr}: the model computes into its scratch.
  struct Rows {
    float* k = nullptr;  // [n, num_kv_heads, head_dim]
    float* v = nullptr;  // [n, num_kv_heads, head_dim]
  };
  virtual Rows InPlaceRows(int32_t /*layer*/, int32_t /*start*/, int32_t /*n*/) { return {}; }

  // The whole contiguous cache of `layer` ([capacity, num_kv_heads, head_dim] K and V) when this
  // sequence's attention is exact attention over those rows (KvCache), else {nullptr, nullptr}.
  // Lets the model run several sequences' decode attention as one backend call.
  virtual Rows DenseRows(int32_t /*layer*/) { return {}; }

  // Stores rows [start, start + n) of `layer`. Positions [0, start) are already stored.
  //   k, v: [n, num_kv_heads, head_dim] post-RoPE keys and values, backend memory.
  virtual absl::Status Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) = 0;

  // Attention of params.num_queries queries at positions [first_position, first_position + n)
  // over this layer's stored rows [0, first_position + i] (causal). Called after Append of those rows.
  //   q: [n, num_heads, head_dim]; out: [n, num_heads, head_dim] (backend memory)
  //   workspace: AttentionWorkspaceBytes(params, backend threads) bytes, owned by the model; a
  //   sequence that needs other scratch owns it.
  virtual absl::Status Attend(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                              void* workspace) = 0;
};

}  // namespace leoam
