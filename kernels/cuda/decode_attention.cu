// Decode attention of the CUDA backend: ONE query per item over its keys, for a batch of items
// (dense caches of several requests) or one item over selected pages — the step decode spends its
// KV bandwidth on, so it is built to stream K and V at memory speed.
//
// Shape (flash-decoding): a block of 4 warps takes one (KV head, key split, item) and all query
// heads of that KV head, so each K/V row is read once and shared by the group. The block needs no
// shared memory while streaming: each lane holds D/32 dimensions of every head's query and output
// in registers, a warp takes 8 keys at a time (16 loads of 16 or 8 bytes per lane in flight, K and
// V together), the per-key dot products are finished with warp shuffles (every lane ends with the
// full score), and the online softmax (running max m, sum l) is kept per head in every lane. The 4
// warps' states are merged through shared memory at the end; with several splits per item the
// block writes (m, l, acc) partials in the layout attention.cu's CombineKernel reads. (Combining
// in the last split block instead, with an atomic counter, measured slower: one block then walks
// every split's partials serially.)
//
// Only head_dim 64 or 128 with (heads per KV head) in {1, 2, 4, 8} and 16-byte aligned rows take
// this kernel; the launcher reports anything else as unsupported and the backend uses the general
// kernel of attention.cu.
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"

namespace leoam::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kKeysPerWarpStep = 8;
constexpr int kKeysPerBlockStep = kWarps * kKeysPerWarpStep;

template <int D>
struct LaneVec;
template <>
struct LaneVec<128> {  // 4 floats per lane
  using T = float4;
  static constexpr int kN = 4;
  __device__ static void Unpack(const T& v, float* out) { out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w; }
};
template <>
struct LaneVec<64> {  // 2 floats per lane
  using T = float2;
  static constexpr int kN = 2;
  __device__ static void Unpack(const T& v, float* out) { out[0] = v.x, out[1] = v.y; }
};

__device__ __forceinline__ float WarpAllSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ const float* Row(const float* base, const DecodeAttentionProblem& p, int32_t item,
                                            int32_t key) {
  const int64_t row_stride = static_cast<int64_t>(p.num_kv_heads) * p.head_dim;
  if (p.page_ids != nullptr) {
    const int32_t page = key / p.page_size;
    return base + (static_cast<int64_t>(p.page_ids[page]) * p.page_size + (key - page * p.page_size)) * row_stride;
  }
  (void)item;
  return base + static_cast<int64_t>(key) * row_stride;
}

// grid: (num_kv_heads, splits, num_items); block: kWarps * 32 threads.
template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) DecodeAttentionKernel(DecodeAttentionProblem p, const float* q,
                                                                     float* out, int32_t splits, float* partial) {
  using Vec = LaneVec<D>;
  constexpr int N = Vec::kN;
  __shared__ float m_s[kWarps][G];
  __shared__ float l_s[kWarps][G];
  __shared__ float acc_s[kWarps][G][D];

  const int32_t kvh = blockIdx.x, split = blockIdx.y, item = blockIdx.z;
  const int32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int32_t keys = p.num_tokens[item];
  const int32_t chunk = (keys + splits - 1) / splits;
  const int32_t begin = min(keys, split * chunk);
  const int32_t end = min(keys, begin + chunk);
  const float* k_base = p.k[item] + static_cast<int64_t>(kvh) * D + lane * N;
  const float* v_base = p.v[item] + static_cast<int64_t>(kvh) * D + lane * N;

  // This lane's dimensions of each head's query, pre-scaled.
  float qr[G][N];
  const float* qh = q + (static_cast<int64_t>(item) * p.num_heads + static_cast<int64_t>(kvh) * G) * D + lane * N;
#pragma unroll
  for (int h = 0; h < G; ++h) {
    Vec::Unpack(*reinterpret_cast<const typename Vec::T*>(qh + h * D), qr[h]);
#pragma unroll
    for (int j = 0; j < N; ++j) qr[h][j] *= p.scale;
  }
  float m[G], l[G], acc[G][N];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -FLT_MAX;
    l[h] = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) acc[h][j] = 0.0f;
  }

  for (int32_t base = begin + warp * kKeysPerWarpStep; base < end; base += kKeysPerBlockStep) {
    // Issue every load of the 8 keys first (K and V), then compute.
    typename Vec::T kv[kKeysPerWarpStep], vv[kKeysPerWarpStep];
#pragma unroll
    for (int i = 0; i < kKeysPerWarpStep; ++i) {
      const int32_t key = min(base + i, end - 1);  // past the end: a valid row, masked below
      kv[i] = *reinterpret_cast<const typename Vec::T*>(Row(k_base, p, item, key));
      vv[i] = *reinterpret_cast<const typename Vec::T*>(Row(v_base, p, item, key));
    }
    float s[kKeysPerWarpStep][G];
#pragma unroll
    for (int i = 0; i < kKeysPerWarpStep; ++i) {
      float kf[N];
      Vec::Unpack(kv[i], kf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < N; ++j) dot += qr[h][j] * kf[j];
        s[i][h] = WarpAllSum(dot);
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float tile_max = -FLT_MAX;
#pragma unroll
      for (int i = 0; i < kKeysPerWarpStep; ++i) {
        if (base + i < end) tile_max = fmaxf(tile_max, s[i][h]);
      }
      const float m_new = fmaxf(m[h], tile_max);
      const float rescale = __expf(m[h] - m_new);
      m[h] = m_new;
      l[h] *= rescale;
#pragma unroll
      for (int j = 0; j < N; ++j) acc[h][j] *= rescale;
#pragma unroll
      for (int i = 0; i < kKeysPerWarpStep; ++i) {
        const float e = base + i < end ? __expf(s[i][h] - m_new) : 0.0f;
        l[h] += e;
        float vf[N];
        Vec::Unpack(vv[i], vf);
#pragma unroll
        for (int j = 0; j < N; ++j) acc[h][j] += e * vf[j];
      }
    }
  }

  // Merge the warps: each warp's (m, l, acc) to shared memory, then every thread takes outputs.
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (lane == 0) {
      m_s[warp][h] = m[h];
      l_s[warp][h] = l[h];
    }
#pragma unroll
    for (int j = 0; j < N; ++j) acc_s[warp][h][lane * N + j] = acc[h][j];
  }
  __syncthreads();
  const int64_t partial_floats = 2 * G + G * D;
  float* oh = out + (static_cast<int64_t>(item) * p.num_heads + static_cast<int64_t>(kvh) * G) * D;
  float* part = splits > 1 ? partial + ((static_cast<int64_t>(item) * p.num_kv_heads + kvh) * splits + split) *
                                           partial_floats
                           : nullptr;
  for (int32_t o = threadIdx.x; o < G * D; o += kWarps * 32) {
    const int32_t h = o / D, j = o - h * D;
    float mm = -FLT_MAX;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, m_s[w][h]);
    float ll = 0.0f, aa = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (l_s[w][h] == 0.0f) continue;  // a warp that saw no key
      const float f = __expf(m_s[w][h] - mm);
      ll += l_s[w][h] * f;
      aa += acc_s[w][h][j] * f;
    }
    if (part == nullptr) {
      oh[o] = ll > 0.0f ? aa / ll : 0.0f;
    } else {
      part[2 * G + o] = aa;
      if (j == 0) {
        part[h] = mm;
        part[G + h] = ll;
      }
    }
  }
}

template <int D, int G>
cudaError_t Launch(const DecodeAttentionProblem& p, const float* q, float* out, int32_t splits, float* partial,
                   cudaStream_t stream) {
  const dim3 grid(p.num_kv_heads, splits, p.num_items);
  DecodeAttentionKernel<D, G><<<grid, kWarps * 32, 0, stream>>>(p, q, out, splits, partial);
  return cudaGetLastError();
}

template <int D>
cudaError_t LaunchForDim(const DecodeAttentionProblem& p, const float* q, float* out, int32_t splits, float* partial,
                         cudaStream_t stream) {
  switch (p.num_heads / p.num_kv_heads) {
    case 1: return Launch<D, 1>(p, q, out, splits, partial, stream);
    case 2: return Launch<D, 2>(p, q, out, splits, partial, stream);
    case 4: return Launch<D, 4>(p, q, out, splits, partial, stream);
    case 8: return Launch<D, 8>(p, q, out, splits, partial, stream);
    default: return cudaErrorNotSupported;
  }
}

bool Aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

bool DecodeAttentionSupported(const DecodeAttentionProblem& p, const float* q, const float* out) {
  if (p.head_dim != 64 && p.head_dim != 128) return false;
  if (p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0) return false;
  const int32_t group = p.num_heads / p.num_kv_heads;
  if (group != 1 && group != 2 && group != 4 && group != 8) return false;
  if (p.num_items < 1 || p.num_items > kMaxDecodeItems) return false;
  // Rows are head_dim floats apart per KV head: 16-byte loads need 16-byte aligned bases.
  if (!Aligned16(q) || !Aligned16(out)) return false;
  for (int32_t i = 0; i < p.num_items; ++i) {
    if (!Aligned16(p.k[i]) || !Aligned16(p.v[i]) || p.num_tokens[i] < 1) return false;
  }
  return true;
}

int32_t ChooseDecodeSplits(const DecodeAttentionProblem& p, int32_t sm_count, size_t partial_capacity_floats) {
  int32_t max_tokens = 0;
  for (int32_t i = 0; i < p.num_items; ++i) max_tokens = max_tokens > p.num_tokens[i] ? max_tokens : p.num_tokens[i];
  const int64_t blocks = static_cast<int64_t>(p.num_items) * p.num_kv_heads;
  const int64_t wanted_blocks = 4 * static_cast<int64_t>(sm_count);
  int64_t splits = (wanted_blocks + blocks - 1) / blocks;
  // At least one block step (8 keys per warp) per split: short contexts then still spread over
  // the SMs (measured: 8 splits at 1K keys left the kernel latency-bound at ~20 us).
  const int64_t max_by_keys = max_tokens / kKeysPerBlockStep;
  if (splits > max_by_keys) splits = max_by_keys;
  const size_t group = static_cast<size_t>(p.num_heads / p.num_kv_heads);
  const auto floats = [&](int64_t s) {
    return static_cast<size_t>(s) * p.num_items * p.num_kv_heads * (2 * group + group * p.head_dim);
  };
  while (splits > 1 && floats(splits) > partial_capacity_floats) splits /= 2;
  return splits < 1 ? 1 : static_cast<int32_t>(splits);
}

cudaError_t LaunchDecodeAttention(const DecodeAttentionProblem& p, const float* q, float* out, int32_t splits,
                                  float* partial, cudaStream_t stream) {
  if (!DecodeAttentionSupported(p, q, out) || splits < 1 || (splits > 1 && partial == nullptr)) {
    return cudaErrorNotSupported;
  }
  cudaError_t err = p.head_dim == 128 ? LaunchForDim<128>(p, q, out, splits, partial, stream)
                                      : LaunchForDim<64>(p, q, out, splits, partial, stream);
  if (err != cudaSuccess || splits == 1) return err;
  AttentionProblem combine;  // the combine reads only the head shape; items are its queries
  combine.num_queries = p.num_items;
  combine.num_heads = p.num_heads;
  combine.num_kv_heads = p.num_kv_heads;
  combine.head_dim = p.head_dim;
  return LaunchAttentionCombine(combine, splits, partial, out, stream);
}

}  // namespace leoam::kernels::cuda
