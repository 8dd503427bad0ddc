// Elementwise and per-row kernels of the CUDA backend: embedding lookup, RMSNorm, bias, residual
// add, SwiGLU and RoPE. Numerics follow the CPU reference (kernels/cpu/elementwise.cc): RMSNorm
// sums squares in double, RoPE computes the angle in float and uses precise cosf/sinf.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_kernels.h"

namespace leoam::kernels::cuda {
namespace {

constexpr int kThreads = 256;

unsigned int BlocksFor(size_t count) {
  const size_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 65535 * 16 ? (blocks == 0 ? 1 : blocks) : 65535 * 16);
}

__device__ float LoadWeight(int32_t type, const void* row, int64_t col) {
  switch (type) {
    case kWeightF32:
      return static_cast<const float*>(row)[col];
    case kWeightF16:
      return __half2float(static_cast<const __half*>(row)[col]);
    case kWeightBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(row)[col]);
    default: {  // Q8_0: blocks of 34 bytes, fp16 scale then 32 int8
      const unsigned char* block = static_cast<const unsigned char*>(row) + (col / 32) * 34;
      const __half scale = *reinterpret_cast<const __half*>(block);
      return __half2float(scale) * static_cast<float>(static_cast<signed char>(block[2 + col % 32]));
    }
  }
}

__device__ size_t RowBytesOf(int32_t type, int64_t cols) {
  switch (type) {
    case kWeightF32:
      return cols * 4;
    case kWeightF16:
    case kWeightBF16:
      return cols * 2;
    default:
      return (cols / 32) * 34;
  }
}

__global__ void EmbedKernel(int32_t type, const unsigned char* table, int64_t rows, int64_t cols, const int32_t* ids,
                            float* out, int32_t* bad_id) {
  const int32_t i = blockIdx.x;
  const int32_t id = ids[i];
  float* dst = out + static_cast<int64_t>(i) * cols;
  if (id < 0 || id >= rows) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = 0.0f;
    if (threadIdx.x == 0 && atomicCAS(bad_id, 0, 1) == 0) bad_id[1] = id;
    return;
  }
  const unsigned char* row = table + static_cast<size_t>(id) * RowBytesOf(type, cols);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = LoadWeight(type, row, c);
}

// One block of kRowThreads per row: a decode step normalizes a single row, so the whole block
// (not 256 threads looping 16 times) reads it once, then the squares are summed in double.
constexpr int kRowThreads = 1024;

__global__ void __launch_bounds__(kRowThreads) RmsNormKernel(const float* x, const float* weight, int32_t dim,
                                                             float eps, float* y) {
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * dim;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * dim;
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) sum += static_cast<double>(xr[i]) * xr[i];
  __shared__ double partial[kRowThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  __shared__ float scale;
  if (threadIdx.x < 32) {
    double total = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) total += __shfl_down_sync(0xffffffffu, total, offset);
    if (threadIdx.x == 0) scale = 1.0f / sqrtf(static_cast<float>(total / dim) + eps);
  }
  __syncthreads();
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = (xr[i] * scale) * weight[i];
}

__global__ void AddBiasKernel(float* y, const float* bias, int64_t total, int32_t dim) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] += bias[i % dim];
  }
}

__global__ void AddKernel(float* x, const float* y, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    x[i] += y[i];
  }
}

__global__ void SwiGluKernel(const float* gate, const float* up, size_t count, float* out) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One block per token. The angles depend on the pair only, so the block computes each pair's
// cos/sin once (precise cosf/sinf, as the CPU does) into shared memory and then rotates every head.
constexpr int kMaxRopePairs = 512;  // rot_dim / 2; checked by the launcher

__global__ void RopeKernel(float* x, const int32_t* positions, int32_t num_heads, int32_t head_dim, int32_t style,
                           int32_t rot_dim, const float* inv_freq) {
  __shared__ float cos_s[kMaxRopePairs], sin_s[kMaxRopePairs];
  const int32_t t = blockIdx.x;
  const int32_t half = rot_dim / 2;
  const float p = static_cast<float>(positions[t]);
  for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float theta = p * inv_freq[i];
    cos_s[i] = cosf(theta);
    sin_s[i] = sinf(theta);
  }
  __syncthreads();
  float* xt = x + static_cast<int64_t>(t) * num_heads * head_dim;
  for (int32_t k = threadIdx.x; k < num_heads * half; k += blockDim.x) {
    const int32_t h = k / half;
    const int32_t i = k % half;
    const float c = cos_s[i], s = sin_s[i];
    float* xh = xt + static_cast<int64_t>(h) * head_dim;
    const int32_t a = style == 0 ? 2 * i : i;
    const int32_t b = style == 0 ? 2 * i + 1 : i + half;
    const float x0 = xh[a], x1 = xh[b];
    xh[a] = x0 * c - x1 * s;
    xh[b] = x0 * s + x1 * c;
  }
}

// grid: n rows; each block copies one row of K and of V to that row's destinations.
__global__ void ScatterRowsKernel(RowScatter dst, const float* k, const float* v, int32_t row_floats) {
  const int32_t row = blockIdx.x;
  const float* ks = k + static_cast<int64_t>(row) * row_floats;
  const float* vs = v + static_cast<int64_t>(row) * row_floats;
  for (int32_t j = threadIdx.x; j < row_floats; j += blockDim.x) {
    dst.k_dst[row][j] = ks[j];
    dst.v_dst[row][j] = vs[j];
  }
}

}  // namespace

cudaError_t LaunchEmbed(WeightType type, const void* table, int64_t rows, int64_t cols, const int32_t* ids, int32_t n,
                        float* out, int32_t* bad_id, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  EmbedKernel<<<n, kThreads, 0, stream>>>(type, static_cast<const unsigned char*>(table), rows, cols, ids, out,
                                           bad_id);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps, float* y,
                          cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  // Up to a thread per element (QK-norm rows are head_dim long).
  const int threads = dim < kRowThreads ? (dim + 31) / 32 * 32 : kRowThreads;
  RmsNormKernel<<<rows, threads, 0, stream>>>(x, weight, dim, eps, y);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(float* y, const float* bias, int32_t n, int32_t dim, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n) * dim;
  if (total <= 0) return cudaSuccess;
  AddBiasKernel<<<BlocksFor(total), kThreads, 0, stream>>>(y, bias, total, dim);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(float* x, const float* y, size_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  AddKernel<<<BlocksFor(count), kThreads, 0, stream>>>(x, y, count);
  return cudaGetLastError();
}

cudaError_t LaunchSwiGlu(const float* gate, const float* up, size_t count, float* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  SwiGluKernel<<<BlocksFor(count), kThreads, 0, stream>>>(gate, up, count, out);
  return cudaGetLastError();
}

cudaError_t LaunchScatterRows(const RowScatter& dst, int32_t n, const float* k, const float* v, int32_t row_floats,
                              cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (n > kMaxScatterRows) return cudaErrorInvalidValue;
  ScatterRowsKernel<<<n, kThreads, 0, stream>>>(dst, k, v, row_floats);
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                       int32_t style, int32_t rot_dim, const float* inv_freq, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (rot_dim / 2 > kMaxRopePairs) return cudaErrorInvalidValue;
  RopeKernel<<<n, 256, 0, stream>>>(x, positions, num_heads, head_dim, style, rot_dim, inv_freq);
  return cudaGetLastError();
}

}  // namespace leoam::kernels::cuda
