// Weight-stationary kernels of the CUDA backend's MatMul: a GEMV for decode-sized batches (each
// warp streams one weight row once for up to 16 activation rows — decode is bound by reading the
// weights, so they are read in their stored type with 16-byte loads and converted in registers),
// and the conversions that feed cuBLAS for larger batches.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"

namespace leoam::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Row r of a launch over several matrices (GemvMatrices): its matrix and its row there. Unrolled
// over constant indices so the parameters are read in place: a loop indexing them at run time
// copies the struct to local memory (measured: the F16 GEMV fell from 87% to 60% of bandwidth).
struct GemvRow {
  const unsigned char* w;
  float* y;
  int64_t rows;  // of this row's matrix (the stride of its output)
  int64_t row;   // within it
};
__device__ __forceinline__ bool Locate(const GemvMatrices& m, int64_t r, GemvRow& out) {
  out = {static_cast<const unsigned char*>(m.w[0]), m.y[0], m.rows[0], r};
#pragma unroll
  for (int i = 1; i < kMaxGemvMatrices; ++i) {
    if (i < m.count && out.row >= out.rows) {
      out.row -= out.rows;
      out.w = static_cast<const unsigned char*>(m.w[i]);
      out.y = m.y[i];
      out.rows = m.rows[i];
    }
  }
  return out.row < out.rows;
}

// Values per 16-byte load and their conversion.
template <int kType>
struct Vec;
template <>
struct Vec<kWeightF32> {
  static constexpr int kWidth = 4;
  __device__ static void Load(const void* row, int64_t col, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(static_cast<const float*>(row) + col);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  }
};
template <>
struct Vec<kWeightF16> {
  static constexpr int kWidth = 8;
  __device__ static void Load(const void* row, int64_t col, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const __half*>(row) + col);
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(h[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
};
template <>
struct Vec<kWeightBF16> {
  static constexpr int kWidth = 8;
  __device__ static void Load(const void* row, int64_t col, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(row) + col);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
};

// F32/F16/BF16 rows: lanes take 16-byte vectors in turn. Requires cols % kWidth == 0 and 16-byte
// aligned rows and x (checked by the launcher).
// kBatch is the largest batch a kernel takes; n <= kBatch rows of x are used (uniform branches).
template <int kType, int kBatch>
__global__ void GemvVecKernel(GemvMatrices m, size_t row_bytes, int64_t cols, const float* x, int32_t n) {
  constexpr int kWidth = Vec<kType>::kWidth;
  const int lane = threadIdx.x % 32;
  GemvRow at;
  if (!Locate(m, static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32, at)) return;
  const int64_t row = at.row, rows = at.rows;
  const void* wr = at.w + row * row_bytes;
  float* y = at.y;
  float acc[kBatch] = {};
  // kUnroll vectors per lane in flight before any is used: one load at a time leaves the memory
  // system idle between a warp's loads (measured: 78% of copy bandwidth on F16 rows of 4096).
  constexpr int kUnroll = 4;
  constexpr int64_t kStep = 32 * kWidth;
  int64_t c = static_cast<int64_t>(lane) * kWidth;
  for (; c + (kUnroll - 1) * kStep < cols; c += kUnroll * kStep) {
    float wv[kUnroll][kWidth];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) Vec<kType>::Load(wr, c + u * kStep, wv[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        if (b >= n) break;
        const float* xb = x + b * cols + c + u * kStep;
#pragma unroll
        for (int i = 0; i < kWidth; i += 4) {
          const float4 xv = *reinterpret_cast<const float4*>(xb + i);
          acc[b] += wv[u][i] * xv.x + wv[u][i + 1] * xv.y + wv[u][i + 2] * xv.z + wv[u][i + 3] * xv.w;
        }
      }
    }
  }
  for (; c < cols; c += kStep) {
    float wv[kWidth];
    Vec<kType>::Load(wr, c, wv);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (b >= n) break;
      const float* xb = x + b * cols + c;
#pragma unroll
      for (int i = 0; i < kWidth; i += 4) {
        const float4 xv = *reinterpret_cast<const float4*>(xb + i);
        acc[b] += wv[i] * xv.x + wv[i + 1] * xv.y + wv[i + 2] * xv.z + wv[i + 3] * xv.w;
      }
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b) {
    if (b >= n) break;
    const float s = WarpSum(acc[b]);
    if (lane == 0) y[b * rows + row] = s;
  }
}

// Q8_0 rows: each lane decodes whole 34-byte blocks (fp16 scale + 32 int8; only 2-byte aligned).
template <int kBatch>
__global__ void GemvQ8Kernel(GemvMatrices m, int64_t cols, const float* x, int32_t n) {
  const int lane = threadIdx.x % 32;
  GemvRow at;
  if (!Locate(m, static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32, at)) return;
  const int64_t row = at.row, rows = at.rows;
  const int64_t blocks = cols / 32;
  const unsigned char* wr = at.w + row * blocks * 34;
  float* y = at.y;
  float acc[kBatch] = {};
  for (int64_t blk = lane; blk < blocks; blk += 32) {
    const unsigned short* half_words = reinterpret_cast<const unsigned short*>(wr + blk * 34);
    const float scale = __half2float(__ushort_as_half(half_words[0]));
    float q[32];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const unsigned short pair = half_words[1 + i];
      q[2 * i] = static_cast<float>(static_cast<signed char>(pair & 0xff));
      q[2 * i + 1] = static_cast<float>(static_cast<signed char>(pair >> 8));
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (b >= n) break;
      const float* xb = x + b * cols + blk * 32;
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < 32; ++i) dot += q[i] * xb[i];
      acc[b] += scale * dot;
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b) {
    if (b >= n) break;
    const float s = WarpSum(acc[b]);
    if (lane == 0) y[b * rows + row] = s;
  }
}

// Any type, any alignment: one value at a time (odd shapes in tests).
__device__ float LoadAny(int32_t type, const unsigned char* row, int64_t col) {
  switch (type) {
    case kWeightF32:
      return reinterpret_cast<const float*>(row)[col];
    case kWeightF16:
      return __half2float(reinterpret_cast<const __half*>(row)[col]);
    case kWeightBF16:
      return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[col]);
    default: {
      const unsigned char* block = row + (col / 32) * 34;
      const float scale = __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(block)));
      return scale * static_cast<float>(static_cast<signed char>(block[2 + col % 32]));
    }
  }
}

template <int kBatch>
__global__ void GemvScalarKernel(int32_t type, GemvMatrices m, size_t row_bytes, int64_t cols, const float* x,
                                 int32_t n) {
  const int lane = threadIdx.x % 32;
  GemvRow at;
  if (!Locate(m, static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32, at)) return;
  const int64_t row = at.row, rows = at.rows;
  const unsigned char* wr = at.w + row * row_bytes;
  float* y = at.y;
  float acc[kBatch] = {};
  for (int64_t c = lane; c < cols; c += 32) {
    const float wv = LoadAny(type, wr, c);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (b < n) acc[b] += wv * x[b * cols + c];
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b) {
    if (b >= n) break;
    const float s = WarpSum(acc[b]);
    if (lane == 0) y[b * rows + row] = s;
  }
}

size_t RowBytes(WeightType type, int64_t cols) {
  switch (type) {
    case kWeightF32:
      return cols * 4;
    case kWeightF16:
    case kWeightBF16:
      return cols * 2;
    case kWeightQ8_0:
      return (cols / 32) * 34;
  }
  return 0;
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int kBatch>
cudaError_t LaunchGemvBatch(WeightType type, const GemvMatrices& m, int64_t cols, const float* x, int32_t n,
                            cudaStream_t stream) {
  int64_t total_rows = 0;
  bool w_aligned = true;
  for (int i = 0; i < m.count; ++i) {
    total_rows += m.rows[i];
    w_aligned = w_aligned && Aligned16(m.w[i]);
  }
  const unsigned int blocks = static_cast<unsigned int>((total_rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const unsigned int threads = 32 * kWarpsPerBlock;
  const size_t row_bytes = RowBytes(type, cols);
  const bool x_ok = Aligned16(x) && cols % 4 == 0;
  if (type == kWeightQ8_0) {
    GemvQ8Kernel<kBatch><<<blocks, threads, 0, stream>>>(m, cols, x, n);
  } else if (type == kWeightF32 && x_ok && w_aligned && cols % 4 == 0) {
    GemvVecKernel<kWeightF32, kBatch><<<blocks, threads, 0, stream>>>(m, row_bytes, cols, x, n);
  } else if (type == kWeightF16 && x_ok && w_aligned && cols % 8 == 0) {
    GemvVecKernel<kWeightF16, kBatch><<<blocks, threads, 0, stream>>>(m, row_bytes, cols, x, n);
  } else if (type == kWeightBF16 && x_ok && w_aligned && cols % 8 == 0) {
    GemvVecKernel<kWeightBF16, kBatch><<<blocks, threads, 0, stream>>>(m, row_bytes, cols, x, n);
  } else {
    GemvScalarKernel<kBatch><<<blocks, threads, 0, stream>>>(type, m, row_bytes, cols, x, n);
  }
  return cudaGetLastError();
}

__global__ void ConvertToHalfKernel(const float* src, size_t count, bool to_bf16, void* dst) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    if (to_bf16) {
      static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(src[i]);
    } else {
      static_cast<__half*>(dst)[i] = __float2half_rn(src[i]);
    }
  }
}

__global__ void DequantizeQ8Kernel(const unsigned char* w, int64_t row_begin, int64_t rows, int64_t cols,
                                   __half* dst) {
  const int64_t blocks_per_row = cols / 32;
  const int64_t total = rows * blocks_per_row;
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < total;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = b / blocks_per_row, blk = b % blocks_per_row;
    const unsigned char* block = w + ((row_begin + row) * blocks_per_row + blk) * 34;
    const float scale = __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(block)));
    __half* out = dst + row * cols + blk * 32;
    for (int i = 0; i < 32; ++i) {
      out[i] = __float2half_rn(scale * static_cast<float>(static_cast<signed char>(block[2 + i])));
    }
  }
}

unsigned int GridFor(size_t items) {
  const size_t blocks = (items + 255) / 256;
  return static_cast<unsigned int>(blocks == 0 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

}  // namespace

cudaError_t LaunchGemvMany(WeightType type, const GemvMatrices& m, int64_t cols, const float* x, int32_t n,
                           cudaStream_t stream) {
  if (n <= 0 || m.count <= 0) return cudaSuccess;
  if (m.count > kMaxGemvMatrices) return cudaErrorInvalidValue;
  // The smallest instantiated batch that holds n (a few kernels instead of one per n).
  if (n <= 1) return LaunchGemvBatch<1>(type, m, cols, x, n, stream);
  if (n <= 2) return LaunchGemvBatch<2>(type, m, cols, x, n, stream);
  if (n <= 4) return LaunchGemvBatch<4>(type, m, cols, x, n, stream);
  if (n <= 8) return LaunchGemvBatch<8>(type, m, cols, x, n, stream);
  if (n <= 16) return LaunchGemvBatch<16>(type, m, cols, x, n, stream);
  return cudaErrorInvalidValue;
}

cudaError_t LaunchGemv(WeightType type, const void* w, int64_t rows, int64_t cols, const float* x, int32_t n,
                       float* y, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  GemvMatrices m;
  m.count = 1;
  m.w[0] = w;
  m.rows[0] = rows;
  m.y[0] = y;
  return LaunchGemvMany(type, m, cols, x, n, stream);
}

cudaError_t LaunchConvertToHalf(const float* src, size_t count, bool to_bf16, void* dst, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  ConvertToHalfKernel<<<GridFor(count), 256, 0, stream>>>(src, count, to_bf16, dst);
  return cudaGetLastError();
}

cudaError_t LaunchDequantizeQ8ToHalf(const void* w, int64_t row_begin, int64_t rows, int64_t cols, void* dst,
                                     cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  DequantizeQ8Kernel<<<GridFor(static_cast<size_t>(rows * (cols / 32))), 256, 0, stream>>>(
      static_cast<const unsigned char*>(w), row_begin, rows, cols, static_cast<__half*>(dst));
  return cudaGetLastError();
}

}  // namespace leoam::kernels::cuda
