#include "compute/gguf/gguf_types.h"

#include <array>
#include <string>

namespace leoam::gguf {

std::string_view TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32: return "F32";
    case TensorType::kF16: return "F16";
    case TensorType::kQ4_0: return "Q4_0";
    case TensorType::kQ4_1: return "Q4_1";
    case TensorType::kQ5_0: return "Q5_0";
    case TensorType::kQ5_1: return "Q5_1";
    case TensorType::kQ8_0: return "Q8_0";
    case TensorType::kQ8_1: return "Q8_1";
    case TensorType::kQ2_K: return "Q2_K";
    case TensorType::kQ3_K: return "Q3_K";
    case TensorType::kQ4_K: return "Q4_K";
    case TensorType::kQ5_K: return "Q5_K";
    case TensorType::kQ6_K: return "Q6_K";
    case TensorType::kQ8_K: return "Q8_K";
    case TensorType::kI8: return "I8";
    case TensorType::kI16: return "I16";
    case TensorType::kI32: return "I32";
    case TensorType::kI64: return "I64";
    case TensorType::kF64: return "F64";
    case TensorType::kBF16: return "BF16";
  }
  // Unknown values get "type N" from a table built once, so the view stays valid forever.
  static const std::array<std::string, 256>* const kUnknownNames = [] {
    auto* names = new std::array<std::string, 256>();
    for (size_t i = 0; i < names->size(); ++i) (*names)[i] = "type " + std::to_string(i);
    return names;
  }();
  const uint32_t value = static_cast<uint32_t>(type);
  if (value < kUnknownNames->size()) return (*kUnknownNames)[value];
  return "type >255";
}

bool IsSupportedTensorType(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ8_0:
      return true;
    default:
      return false;
  }
}

int64_t BlockSize(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
      return 1;
    case TensorType::kQ8_0:
      return kQ8_0BlockSize;
    default:
      return 0;
  }
}

uint64_t RowBytes(TensorType type, int64_t n) {
  if (n <= 0) return 0;
  const uint64_t un = static_cast<uint64_t>(n);
  switch (type) {
    case TensorType::kF32: return un > UINT64_MAX / 4 ? 0 : un * 4;
    case TensorType::kF16:
    case TensorType::kBF16: return un > UINT64_MAX / 2 ? 0 : un * 2;
    case TensorType::kQ8_0:
      if (un % kQ8_0BlockSize != 0) return 0;
      return (un / kQ8_0BlockSize) * sizeof(BlockQ8_0);
    default:
      return 0;
  }
}

}  // namespace leoam::gguf
