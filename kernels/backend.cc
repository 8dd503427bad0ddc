#include "kernels/backend.h"

#include <algorithm>
#include <utility>

#include "kernels/cpu/attention.h"

namespace leoam::kernels {

std::string_view DTypeName(DType type) {
  switch (type) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_0:
      return "Q8_0";
  }
  return "unknown";
}

size_t RowBytes(DType type, int64_t cols) {
  if (cols <= 0) return 0;
  const size_t n = static_cast<size_t>(cols);
  switch (type) {
    case DType::kF32:
      return n * 4;
    case DType::kF16:
    case DType::kBF16:
      return n * 2;
    case DType::kQ8_0:
      return (n / 32) * 34;  // per 32 values: fp16 scale + 32 int8
  }
  return 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    free_fn_ = std::move(other.free_fn_);
    other.free_fn_ = nullptr;
  }
  return *this;
}

void DeviceBuffer::Reset() {
  if (data_ != nullptr && free_fn_) free_fn_(data_);
  data_ = nullptr;
  bytes_ = 0;
  free_fn_ = nullptr;
}

size_t AttentionWorkspaceBytes(const AttentionParams& params, int32_t num_threads) {
  return cpu::AttentionWorkspaceFloats(params, std::max(1, num_threads)) * sizeof(float);
}

}  // namespace leoam::kernels
