// Row conversions for the tensor types LeoAM reads: Q8_0 quantization (ggml's reference rounding)
// and dequantization of any supported type to fp32.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "compute/gguf/gguf_types.h"

namespace leoam::gguf {

// Quantizes n floats (n a multiple of 32) into n/32 Q8_0 blocks, exactly as ggml's
// quantize_row_q8_0_ref: d = max|x| / 127 stored as fp16, q = round(x / d).
void QuantizeRowQ8_0(const float* x, int64_t n, BlockQ8_0* out);

// Converts one row of n elements of `type` (F32, F16, BF16 or Q8_0) at `src` to fp32.
// INVALID_ARGUMENT for unsupported types or an n that is not a multiple of the block size.
absl::Status DequantizeRow(TensorType type, const void* src, int64_t n, float* out);

// Converts n floats to one row of `type` (F32, F16, BF16 or Q8_0) at `dst`, which must hold
// RowBytes(type, n) bytes. INVALID_ARGUMENT as for DequantizeRow.
absl::Status QuantizeRow(TensorType type, const float* src, int64_t n, void* dst);

}  // namespace leoam::gguf
