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

absl::Status Backend::MatMulMany(const float* x, std::span<const Matrix> w, int32_t n, std::span<float* const> y) {
  if (w.size() != y.size()) return absl::InvalidArgumentError("MatMulMany: as many outputs as matrices needed");
  for (size_t i = 0; i < w.size(); ++i) {
    absl::Status s = MatMul(x, w[i], n, y[i]);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Backend::DecodeAttentionBatch(const AttentionParams& params, std::span<const DecodeRows> items,
                                           const float* q, float* out, void* workspace) {
  const size_t row = static_cast<size_t>(params.num_heads) * params.head_dim;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].num_tokens < 1) return absl::InvalidArgumentError("DecodeAttentionBatch: an item has no keys");
    AttentionParams one = params;
    one.num_queries = 1;
    one.first_position = items[i].num_tokens - 1;
    absl::Status s = Attention(one, q + i * row, items[i].k, items[i].v, out + i * row, workspace);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Backend::ScatterRows(std::span<float* const> k_dst, std::span<float* const> v_dst, const float* k,
                                  const float* v, int32_t row_floats) {
  if (k_dst.size() != v_dst.size() || row_floats < 0) return absl::InvalidArgumentError("ScatterRows: bad shape");
  const size_t bytes = static_cast<size_t>(row_floats) * sizeof(float);
  for (size_t i = 0; i < k_dst.size(); ++i) {
    absl::Status s = CopyOnDevice(k_dst[i], k + i * row_floats, bytes);
    if (s.ok()) s = CopyOnDevice(v_dst[i], v + i * row_floats, bytes);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
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
