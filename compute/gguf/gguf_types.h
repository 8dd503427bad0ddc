// GGUF v3 on-disk enums and the size rules of the tensor types LeoAM reads.
// Reference: the GGUF specification (ggml docs/gguf.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace leoam::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint32_t kSupportedVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;

// Metadata value types (gguf_metadata_value_type).
enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// Tensor element types (ggml_type). Only F32, F16, BF16 and Q8_0 are supported by LeoAM;
// others are named so errors can say what a file holds.
enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kI8 = 24, kI16 = 25,
  kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};

// Q8_0: blocks of 32 weights, one fp16 scale d then 32 int8 q; weight = d * q.
inline constexpr int kQ8_0BlockSize = 32;
struct BlockQ8_0 {
  uint16_t d;  // fp16 bits of the scale
  int8_t qs[kQ8_0BlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Human-readable name ("F32", "Q8_0", ...; "type 17" for unknown values).
std::string_view TensorTypeName(TensorType type);

// True for the types LeoAM can compute with.
bool IsSupportedTensorType(TensorType type);

// Bytes of a row of `n` elements; requires n to be a multiple of the type's block size.
// Returns 0 for unsupported types or a bad n.
uint64_t RowBytes(TensorType type, int64_t n);

// Elements per block (1 for F32/F16/BF16, 32 for Q8_0); 0 for unsupported types.
int64_t BlockSize(TensorType type);

}  // namespace leoam::gguf
