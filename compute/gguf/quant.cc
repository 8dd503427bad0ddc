#include "compute/gguf/quant.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_format.h"
#include "kernels/half.h"

namespace leoam::gguf {

void QuantizeRowQ8_0(const float* x, int64_t n, BlockQ8_0* out) {
  const int64_t blocks = n / kQ8_0BlockSize;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    float amax = 0.0f;
    for (int j = 0; j < kQ8_0BlockSize; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = kernels::FloatToHalf(d);
    for (int j = 0; j < kQ8_0BlockSize; ++j) {
      out[b].qs[j] = static_cast<int8_t>(std::roundf(xb[j] * id));
    }
  }
}

namespace {

absl::Status CheckRow(TensorType type, int64_t n) {
  if (!IsSupportedTensorType(type)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor type %s is not supported (supported: F32, F16, BF16, Q8_0)", TensorTypeName(type)));
  }
  if (n < 0 || n % BlockSize(type) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("row of %d elements is not a multiple of the %s block size %d", n, TensorTypeName(type),
                        BlockSize(type)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DequantizeRow(TensorType type, const void* src, int64_t n, float* out) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case TensorType::kF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = kernels::HalfToFloat(h[i]);
      break;
    }
    case TensorType::kBF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = kernels::Bf16ToFloat(h[i]);
      break;
    }
    case TensorType::kQ8_0: {
      const auto* blocks = static_cast<const BlockQ8_0*>(src);
      for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
        const float d = kernels::HalfToFloat(blocks[b].d);
        for (int j = 0; j < kQ8_0BlockSize; ++j) out[b * kQ8_0BlockSize + j] = d * blocks[b].qs[j];
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status QuantizeRow(TensorType type, const float* src, int64_t n, void* dst) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case TensorType::kF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = kernels::FloatToHalf(src[i]);
      break;
    }
    case TensorType::kBF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = kernels::FloatToBf16(src[i]);
      break;
    }
    case TensorType::kQ8_0:
      QuantizeRowQ8_0(src, n, static_cast<BlockQ8_0*>(dst));
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace leoam::gguf
