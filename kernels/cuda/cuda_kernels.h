// Launchers of the CUDA kernels of the CUDA backend. Plain C++ over the CUDA runtime types (no
// Abseil), so the .cu files stay small and nvcc never sees the rest of the code base; the backend
// (cuda_backend.cc) turns the returned cudaError_t into absl::Status.
//
// Every launcher enqueues on `stream`, allocates nothing and returns the launch error
// (cudaGetLastError) — execution errors surface at the next synchronization.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace leoam::kernels::cuda {

// Weight element types, the numeric values of kernels::DType.
enum WeightType : int32_t { kWeightF32 = 0, kWeightF16 = 1, kWeightBF16 = 2, kWeightQ8_0 = 3 };

// --- elementwise.cu ---
// out[i, :] = row ids[i] of table [rows, cols]. An id outside [0, rows) writes zeros, sets
// bad_id[0] = 1 and stores one offending id in bad_id[1] (two int32 in device memory, zeroed by the
// backend), which the backend reports as a status at its next synchronization.
cudaError_t LaunchEmbed(WeightType type, const void* table, int64_t rows, int64_t cols, const int32_t* ids, int32_t n,
                        float* out, int32_t* bad_id, cudaStream_t stream);
cudaError_t LaunchRmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps, float* y,
                          cudaStream_t stream);
cudaError_t LaunchAddBias(float* y, const float* bias, int32_t n, int32_t dim, cudaStream_t stream);
cudaError_t LaunchAdd(float* x, const float* y, size_t count, cudaStream_t stream);
cudaError_t LaunchSwiGlu(const float* gate, const float* up, size_t count, float* out, cudaStream_t stream);
// style: 0 normal (adjacent pairs), 1 neox (halves).
cudaError_t LaunchRope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                       int32_t style, int32_t rot_dim, const float* inv_freq, cudaStream_t stream);

// k_dst[i][0, row_floats) = k[i, :], v_dst[i][0, row_floats) = v[i, :] for i < n <= kMaxScatterRows:
// a decode batch's new K/V rows into each request's own cache, one launch.
constexpr int32_t kMaxScatterRows = 32;
struct RowScatter {
  float* k_dst[kMaxScatterRows] = {};
  float* v_dst[kMaxScatterRows] = {};
};
cudaError_t LaunchScatterRows(const RowScatter& dst, int32_t n, const float* k, const float* v, int32_t row_floats,
                              cudaStream_t stream);

// --- matmul.cu ---
// Largest n the GEMV kernel takes (decode and small batches); larger n goes through cuBLAS.
constexpr int32_t kMaxGemvBatch = 16;
// y[n, rows] = x[n, cols] * W^T for n <= kMaxGemvBatch, W in its stored type (Q8_0 decoded in registers).
cudaError_t LaunchGemv(WeightType type, const void* w, int64_t rows, int64_t cols, const float* x, int32_t n,
                       float* y, cudaStream_t stream);
// Several matrices of one type and width over the same x in one launch (Q/K/V, gate/up): y[i][n,
// rows[i]] = x[n, cols] * W_i^T. One launch fills the GPU better than three small ones in a row.
constexpr int32_t kMaxGemvMatrices = 4;
struct GemvMatrices {
  int32_t count = 0;
  const void* w[kMaxGemvMatrices] = {};
  int64_t rows[kMaxGemvMatrices] = {};
  float* y[kMaxGemvMatrices] = {};
};
cudaError_t LaunchGemvMany(WeightType type, const GemvMatrices& m, int64_t cols, const float* x, int32_t n,
                           cudaStream_t stream);
// dst[count] = half(src) / bfloat16(src), for cuBLAS GEMM inputs. to_bf16 picks the format.
cudaError_t LaunchConvertToHalf(const float* src, size_t count, bool to_bf16, void* dst, cudaStream_t stream);
// dst[rows, cols] (fp16) = Q8_0 rows [row_begin, row_begin + rows) of w (cols values per row).
cudaError_t LaunchDequantizeQ8ToHalf(const void* w, int64_t row_begin, int64_t rows, int64_t cols, void* dst,
                                     cudaStream_t stream);

// --- attention.cu ---
// One attention problem: queries over keys that are either contiguous rows or rows of selected pages.
struct AttentionProblem {
  int32_t num_queries = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  float scale = 0.0f;
  // Query i attends keys [0, first_position + i + 1) (causal). Paged: one query, all tokens.
  int32_t first_position = 0;
  // Paged layout: page_ids != nullptr; key t lives in page page_ids[t / page_size], row t % page_size.
  const int32_t* page_ids = nullptr;
  int32_t page_size = 0;
  int32_t num_tokens = 0;  // paged: tokens over the selected pages
};
// Floats of split-K partial results the attention needs for `splits` key splits per query.
size_t AttentionPartialFloats(const AttentionProblem& p, int32_t splits);
// Splits to use given the number of SMs and the partial buffer capacity (floats).
int32_t ChooseAttentionSplits(const AttentionProblem& p, int32_t sm_count, size_t partial_capacity_floats);
// Largest (num_heads / num_kv_heads) * head_dim the kernel takes.
constexpr int32_t kMaxGroupDims = 2048;
// q, out: [num_queries, num_heads, head_dim]; k, v: contiguous [keys, kv_heads, head_dim] or
// slot pools [slots, page_size, kv_heads, head_dim]. partial: AttentionPartialFloats(p, splits).
cudaError_t LaunchAttention(const AttentionProblem& p, const float* q, const float* k, const float* v, float* out,
                            int32_t splits, float* partial, cudaStream_t stream);
// Combines the split-K partials of p.num_queries queries (rows of out) — the second kernel of
// LaunchAttention, shared with LaunchDecodeAttention.
cudaError_t LaunchAttentionCombine(const AttentionProblem& p, int32_t splits, const float* partial, float* out,
                                   cudaStream_t stream);

// --- decode_attention.cu ---
// One decode query per item: item i attends its own keys [0, num_tokens[i]) — contiguous rows
// [tokens, kv_heads, head_dim] at k[i] / v[i], or (page_ids set, one item) rows of the selected
// pages of slot pools [slots, page_size, kv_heads, head_dim]. q, out: [num_items, num_heads, head_dim].
constexpr int32_t kMaxDecodeItems = 32;
struct DecodeAttentionProblem {
  int32_t num_items = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  float scale = 0.0f;
  const int32_t* page_ids = nullptr;  // paged (one item): device array of slot ids
  int32_t page_size = 0;
  const float* k[kMaxDecodeItems] = {};
  const float* v[kMaxDecodeItems] = {};
  int32_t num_tokens[kMaxDecodeItems] = {};
};
// Whether the streaming decode kernel takes this problem (head_dim 64 or 128, heads per KV head
// 1, 2, 4 or 8, 16-byte aligned rows); otherwise use LaunchAttention per item.
bool DecodeAttentionSupported(const DecodeAttentionProblem& p, const float* q, const float* out);
int32_t ChooseDecodeSplits(const DecodeAttentionProblem& p, int32_t sm_count, size_t partial_capacity_floats);
// partial: num_items * num_kv_heads * splits * (2 * group + group * head_dim) floats when splits > 1.
cudaError_t LaunchDecodeAttention(const DecodeAttentionProblem& p, const float* q, float* out, int32_t splits,
                                  float* partial, cudaStream_t stream);

}  // namespace leoam::kernels::cuda
