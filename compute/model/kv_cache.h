// KvCache: a contiguous per-layer fp32 K and V cache for one sequence, in backend memory.
//
// Layout per layer: [capacity, num_kv_heads, head_dim] for K and for V, post-RoPE keys. This is the
// dense cache of the single-process runtime; the paged, tiered cache of the LeoAM engine replaces
// it in compute/engine.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/model/model_config.h"
#include "kernels/backend.h"

namespace leoam {

class KvCache {
 public:
  static absl::StatusOr<KvCache> Create(kernels::Backend& backend, const ModelConfig& config, int32_t capacity);

  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  int32_t capacity() const { return capacity_; }
  float* k(int layer) const { return k_[layer].as<float>(); }  // [capacity, kv_heads, head_dim]
  float* v(int layer) const { return v_[layer].as<float>(); }  // [capacity, kv_heads, head_dim]
  uint64_t bytes() const;

 private:
  KvCache() = default;
  int32_t capacity_ = 0;
  std::vector<kernels::DeviceBuffer> k_;
  std::vector<kernels::DeviceBuffer> v_;
};

}  // namespace leoam
