// Attention kernels of the CUDA backend: causal GQA attention over a contiguous cache (prefill and
// decode) and sparse decode attention over selected pages, one kernel for both.
//
// Flash-decoding shape: a block takes one (KV head, key split, query) and all query heads of that
// KV head, so every K/V row is read from memory once per query and shared by the group. Keys come
// in tiles of kTile rows staged in shared memory with coalesced loads (K padded by one float per row
// so the per-key dot products are free of bank conflicts); the block keeps an online softmax
// (running max m, sum l, unnormalized accumulator) per head. With one split the block writes the
// normalized output; with several, each writes (m, l, acc) partials that a second kernel combines.
// Work stays in fp32 like the CPU reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"

namespace leoam::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 64;
constexpr int kMaxOutputsPerThread = kMaxGroupDims / kThreads;  // 16

__device__ __forceinline__ const float* KeyRow(const float* base, const AttentionProblem& p, int32_t key,
                                               int64_t row_stride) {
  if (p.page_ids != nullptr) {
    const int32_t page = key / p.page_size;
    const int32_t r = key - page * p.page_size;
    return base + (static_cast<int64_t>(p.page_ids[page]) * p.page_size + r) * row_stride;
  }
  return base + static_cast<int64_t>(key) * row_stride;
}

__device__ __forceinline__ int32_t KeysOf(const AttentionProblem& p, int32_t query) {
  return p.page_ids != nullptr ? p.num_tokens : p.first_position + query + 1;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// grid: (num_kv_heads, splits, num_queries); dynamic shared memory: SharedFloats(p) floats.
__global__ void AttentionKernel(AttentionProblem p, const float* q, const float* k, const float* v, float* out,
                                int32_t splits, float* partial) {
  extern __shared__ float smem[];
  const int32_t d = p.head_dim;
  const int32_t group = p.num_heads / p.num_kv_heads;
  const int32_t kvh = blockIdx.x, split = blockIdx.y, query = blockIdx.z;
  const int32_t t = threadIdx.x;
  const int64_t row_stride = static_cast<int64_t>(p.num_kv_heads) * d;

  float* q_s = smem;                        // [group][d]
  float* k_s = q_s + group * d;             // [kTile][d + 1]
  float* v_s = k_s + kTile * (d + 1);       // [kTile][d]
  float* scores = v_s + kTile * d;          // [group][kTile]
  float* alpha = scores + group * kTile;    // [group]
  float* m_s = alpha + group;               // [group]
  float* l_s = m_s + group;                 // [group]

  const int32_t keys = KeysOf(p, query);
  const int32_t chunk = (keys + splits - 1) / splits;
  const int32_t begin = min(keys, split * chunk);
  const int32_t end = min(keys, begin + chunk);

  const float* qh = q + (static_cast<int64_t>(query) * p.num_heads + static_cast<int64_t>(kvh) * group) * d;
  for (int32_t i = t; i < group * d; i += kThreads) q_s[i] = qh[i];
  if (t < group) {
    m_s[t] = -FLT_MAX;
    l_s[t] = 0.0f;
  }
  const int32_t outputs = group * d;
  float acc[kMaxOutputsPerThread];
#pragma unroll
  for (int r = 0; r < kMaxOutputsPerThread; ++r) acc[r] = 0.0f;
  __syncthreads();

  for (int32_t base = begin; base < end; base += kTile) {
    const int32_t valid = min(kTile, end - base);
    // Stage the tile's K and V rows of this KV head (coalesced: consecutive threads, consecutive dims).
    for (int32_t i = t; i < valid * d; i += kThreads) {
      const int32_t kl = i / d, j = i - kl * d;
      const int64_t offset = static_cast<int64_t>(kvh) * d + j;
      k_s[kl * (d + 1) + j] = KeyRow(k, p, base + kl, row_stride)[offset];
      v_s[kl * d + j] = KeyRow(v, p, base + kl, row_stride)[offset];
    }
    __syncthreads();
    for (int32_t pair = t; pair < group * kTile; pair += kThreads) {
      const int32_t h = pair / kTile, kl = pair - h * kTile;
      float s = -FLT_MAX;
      if (kl < valid) {
        const float* qr = q_s + h * d;
        const float* kr = k_s + kl * (d + 1);
        float dot = 0.0f;
        for (int32_t j = 0; j < d; ++j) dot += qr[j] * kr[j];
        s = dot * p.scale;
      }
      scores[pair] = s;
    }
    __syncthreads();
    // Online softmax per head: warp w updates heads w, w + 4, ...
    const int32_t warp = t / 32, lane = t % 32;
    for (int32_t h = warp; h < group; h += kThreads / 32) {
      float* sh = scores + h * kTile;
      float tile_max = -FLT_MAX;
      for (int32_t kl = lane; kl < valid; kl += 32) tile_max = fmaxf(tile_max, sh[kl]);
      tile_max = WarpMax(tile_max);
      const float m_old = m_s[h];
      const float m_new = fmaxf(m_old, tile_max);
      float sum = 0.0f;
      for (int32_t kl = lane; kl < kTile; kl += 32) {
        const float e = kl < valid ? expf(sh[kl] - m_new) : 0.0f;
        sh[kl] = e;
        sum += e;
      }
      sum = WarpSum(sum);
      if (lane == 0) {
        const float a = expf(m_old - m_new);
        alpha[h] = a;
        l_s[h] = l_s[h] * a + sum;
        m_s[h] = m_new;
      }
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kMaxOutputsPerThread; ++r) {
      const int32_t o = t + r * kThreads;
      if (o < outputs) {
        const int32_t h = o / d, j = o - h * d;
        const float* ph = scores + h * kTile;
        float sum = 0.0f;
        for (int32_t kl = 0; kl < valid; ++kl) sum += ph[kl] * v_s[kl * d + j];
        acc[r] = acc[r] * alpha[h] + sum;
      }
    }
    __syncthreads();
  }

  if (splits == 1) {
    float* oh = out + (static_cast<int64_t>(query) * p.num_heads + static_cast<int64_t>(kvh) * group) * d;
#pragma unroll
    for (int r = 0; r < kMaxOutputsPerThread; ++r) {
      const int32_t o = t + r * kThreads;
      if (o < outputs) oh[o] = l_s[o / d] > 0.0f ? acc[r] / l_s[o / d] : 0.0f;
    }
    return;
  }
  // Partial of (query, kvh, split): [group m][group l][group * d acc].
  const int64_t partial_floats = 2 * group + outputs;
  float* part = partial + ((static_cast<int64_t>(query) * p.num_kv_heads + kvh) * splits + split) * partial_floats;
  if (t < group) {
    part[t] = m_s[t];
    part[group + t] = l_s[t];
  }
#pragma unroll
  for (int r = 0; r < kMaxOutputsPerThread; ++r) {
    const int32_t o = t + r * kThreads;
    if (o < outputs) part[2 * group + o] = acc[r];
  }
}

// grid: (num_kv_heads, num_queries); a thread per output (group * head_dim of them, rounded up to a
// warp, at most 1024 per block). Rescales each split's partial to the common max and normalizes.
__global__ void CombineKernel(AttentionProblem p, int32_t splits, const float* partial, float* out) {
  const int32_t d = p.head_dim;
  const int32_t group = p.num_heads / p.num_kv_heads;
  const int32_t kvh = blockIdx.x, query = blockIdx.y;
  const int32_t outputs = group * d;
  const int64_t partial_floats = 2 * group + outputs;
  const float* parts = partial + (static_cast<int64_t>(query) * p.num_kv_heads + kvh) * splits * partial_floats;
  float* oh = out + (static_cast<int64_t>(query) * p.num_heads + static_cast<int64_t>(kvh) * group) * d;
  for (int32_t o = threadIdx.x; o < outputs; o += blockDim.x) {
    const int32_t h = o / d;
    float m = -FLT_MAX;
#pragma unroll 8
    for (int32_t s = 0; s < splits; ++s) m = fmaxf(m, parts[s * partial_floats + h]);
    float l = 0.0f, acc = 0.0f;
#pragma unroll 8
    for (int32_t s = 0; s < splits; ++s) {
      const float* part = parts + s * partial_floats;
      const float ls = part[group + h];
      const float w = ls == 0.0f ? 0.0f : expf(part[h] - m);  // an empty split weighs nothing
      l += ls * w;
      acc += part[2 * group + o] * w;
    }
    oh[o] = l > 0.0f ? acc / l : 0.0f;
  }
}

size_t SharedFloats(const AttentionProblem& p) {
  const int32_t group = p.num_heads / p.num_kv_heads;
  const size_t d = static_cast<size_t>(p.head_dim);
  return group * d + kTile * (d + 1) + kTile * d + static_cast<size_t>(group) * kTile + 3 * group;
}

int32_t MaxKeys(const AttentionProblem& p) {
  return p.page_ids != nullptr ? p.num_tokens : p.first_position + p.num_queries;
}

}  // namespace

size_t AttentionPartialFloats(const AttentionProblem& p, int32_t splits) {
  if (splits <= 1) return 0;
  const size_t group = static_cast<size_t>(p.num_heads / p.num_kv_heads);
  return static_cast<size_t>(p.num_queries) * p.num_kv_heads * splits * (2 * group + group * p.head_dim);
}

int32_t ChooseAttentionSplits(const AttentionProblem& p, int32_t sm_count, size_t partial_capacity_floats) {
  const int64_t blocks = static_cast<int64_t>(p.num_queries) * p.num_kv_heads;
  const int64_t wanted_blocks = 2 * static_cast<int64_t>(sm_count);
  if (blocks >= wanted_blocks) return 1;
  int64_t splits = (wanted_blocks + blocks - 1) / blocks;
  const int64_t max_by_keys = (MaxKeys(p) + kTile - 1) / kTile;  // at least one tile per split
  if (splits > max_by_keys) splits = max_by_keys;
  while (splits > 1 && AttentionPartialFloats(p, static_cast<int32_t>(splits)) > partial_capacity_floats) splits /= 2;
  return splits < 1 ? 1 : static_cast<int32_t>(splits);
}

cudaError_t LaunchAttention(const AttentionProblem& p, const float* q, const float* k, const float* v, float* out,
                            int32_t splits, float* partial, cudaStream_t stream) {
  if (p.num_queries <= 0) return cudaSuccess;
  const int32_t group = p.num_heads / p.num_kv_heads;
  if (group * p.head_dim > kMaxGroupDims || splits < 1 || (splits > 1 && partial == nullptr)) {
    return cudaErrorInvalidValue;
  }
  const size_t smem_bytes = SharedFloats(p) * sizeof(float);
  // Above 48 KiB a kernel must opt in to the larger dynamic shared memory.
  cudaError_t err = cudaFuncSetAttribute(AttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(p.num_kv_heads, splits, p.num_queries);
  AttentionKernel<<<grid, kThreads, smem_bytes, stream>>>(p, q, k, v, out, splits, partial);
  if ((err = cudaGetLastError()) != cudaSuccess || splits == 1) return err;
  return LaunchAttentionCombine(p, splits, partial, out, stream);
}

cudaError_t LaunchAttentionCombine(const AttentionProblem& p, int32_t splits, const float* partial, float* out,
                                   cudaStream_t stream) {
  const int32_t outputs = (p.num_heads / p.num_kv_heads) * p.head_dim;
  const int32_t threads = std::min(1024, (outputs + 31) / 32 * 32);
  CombineKernel<<<dim3(p.num_kv_heads, p.num_queries), threads, 0, stream>>>(p, splits, partial, out);
  return cudaGetLastError();
}

}  // namespace leoam::kernels::cuda
