#include "compute/model/kv_cache.h"

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace leoam {

absl::StatusOr<KvCache> KvCache::Create(kernels::Backend& backend, const ModelConfig& config, int32_t capacity) {
  if (capacity <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("KV cache capacity must be positive, got %d", capacity));
  }
  KvCache cache;
  cache.capacity_ = capacity;
  const size_t bytes = static_cast<size_t>(capacity) * config.kv_dim() * sizeof(float);
  for (int l = 0; l < config.num_layers; ++l) {
    ASSIGN_OR_RETURN(kernels::DeviceBuffer k, backend.Allocate(bytes));
    ASSIGN_OR_RETURN(kernels::DeviceBuffer v, backend.Allocate(bytes));
    cache.k_.push_back(std::move(k));
    cache.v_.push_back(std::move(v));
  }
  return cache;
}

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (const auto& b : k_) total += b.bytes();
  for (const auto& b : v_) total += b.bytes();
  return total;
}

}  // namespace leoam
