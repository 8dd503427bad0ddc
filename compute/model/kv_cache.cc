#include "compute/model/kv_cache.h"

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace leoam {

absl::StatusOr<KvCache> KvCache::Create(kernels::Backend& backend, const ModelConfig& config, int32_t capacity) {
  if (capacity <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("KV cache capacity must be positive, got %d", capacity));
  }
  KvCache cache;
  cache.backend_ = &backend;
  cache.capacity_ = capacity;
  cache.kv_dim_ = config.kv_dim();
  const size_t bytes = static_cast<size_t>(capacity) * config.kv_dim() * sizeof(float);
  for (int l = 0; l < config.num_layers; ++l) {
    ASSIGN_OR_RETURN(kernels::DeviceBuffer k, backend.Allocate(bytes));
    ASSIGN_OR_RETURN(kernels::DeviceBuffer v, backend.Allocate(bytes));
    cache.k_.push_back(std::move(k));
    cache.v_.push_back(std::move(v));
  }
  return cache;
}

absl::Status KvCache::Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) {
  if (layer < 0 || layer >= static_cast<int32_t>(k_.size()) || start < 0 || n < 0 || start + n > capacity_) {
    return absl::OutOfRangeError(absl::StrFormat("KvCache::Append: layer %d rows [%d, %d) outside the cache (%d)",
                                                 layer, start, start + n, capacity_));
  }
  const size_t offset = static_cast<size_t>(start) * kv_dim_;
  const size_t bytes = static_cast<size_t>(n) * kv_dim_ * sizeof(float);
  // Rows computed in place (InPlaceRows) need no copy.
  if (k != this->k(layer) + offset) RETURN_IF_ERROR(backend_->CopyOnDevice(this->k(layer) + offset, k, bytes));
  if (v != this->v(layer) + offset) RETURN_IF_ERROR(backend_->CopyOnDevice(this->v(layer) + offset, v, bytes));
  return absl::OkStatus();
}

absl::Status KvCache::Attend(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                             void* workspace) {
  return backend_->Attention(params, q, k(layer), v(layer), out, workspace);
}

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (const auto& b : k_) total += b.bytes();
  for (const auto& b : v_) total += b.bytes();
  return total;
}

}  // namespace leoam
