// KvCache: a contiguous per-layer fp32 K and V cache for one sequence, in backend memory.
//
// Layout per layer: [capacity, num_kv_heads, head_dim] for K and for V, post-RoPE keys. This is the
// dense cache of the single-process runtime and the `dense` reference mode of the engine; the paged
// cache of the LeoAM engine is compute/engine/paged_kv.h.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/model/kv_sequence.h"
#include "compute/model/model_config.h"
#include "kernels/backend.h"

namespace leoam {

class KvCache final : public KvSequence {
 public:
  static absl::StatusOr<KvCache> Create(kernels::Backend& backend, const ModelConfig& config, int32_t capacity);

  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  int32_t capacity() const override { return capacity_; }
  Rows InPlaceRows(int32_t layer, int32_t start, int32_t n) override {
    return {k(layer) + static_cast<size_t>(start) * kv_dim_, v(layer) + static_cast<size_t>(start) * kv_dim_};
  }
  Rows DenseRows(int32_t layer) override { return {k(layer), v(layer)}; }
  absl::Status Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) override;
  absl::Status Attend(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                      void* workspace) override;

  float* k(int layer) const { return k_[layer].as<float>(); }  // [capacity, kv_heads, head_dim]
  float* v(int layer) const { return v_[layer].as<float>(); }  // [capacity, kv_heads, head_dim]
  uint64_t bytes() const;

 private:
  KvCache() = default;
  kernels::Backend* backend_ = nullptr;
  int32_t capacity_ = 0;
  int32_t kv_dim_ = 0;
  std::vector<kernels::DeviceBuffer> k_;
  std::vector<kernels::DeviceBuffer> v_;
};

}  // namespace leoam
