// The inner loops that have a SIMD implementation per instruction-set level (scalar, AVX2,
// AVX-512), as a table of function pointers chosen once per backend. Each level lives in its own
// file (simd_scalar.cc, simd_avx2.cc, simd_avx512.cc); the ops in cpu/*.cc call through the table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_features.h"

namespace leoam::kernels::cpu {

struct SimdKernels {
  // y[r] = dot(row r of w, x) for r in [row_begin, row_end).   x: [w.cols]; y: [w.rows]
  void (*matvec_rows)(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y);
  // dst[(r - r0) * (c1 - c0) + (c - c0)] = w[r, c] as fp32 for r in [r0, r1), c in [c0, c1).
  // For Q8_0, c0 and c1 are multiples of 32 (or c1 == w.cols).
  void (*convert_block)(const Matrix& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst);
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // y[i] *= a
  void (*scale)(float a, float* y, int64_t n);
  float (*max)(const float* x, int64_t n);  // n >= 1
  // x[i] = exp(x[i] - sub); returns the sum of the new values.
  float (*exp_sub_sum)(float* x, int64_t n, float sub);
  // out[i] = gate[i] / (1 + exp(-gate[i])) * up[i]; out may alias gate or up.
  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);
  // Attention decode inner loops over `len` cache rows spaced `stride` floats apart:
  //   scores[j] = scale * dot(q, k + j * stride)                 q: [d]; scores: [len]
  void (*attn_scores)(const float* q, const float* k, int64_t stride, int64_t len, int64_t d, float scale,
                      float* scores);
  //   acc[c] += sum_j p[j] * v[j * stride + c]                   p: [len]; acc: [d]
  void (*attn_weighted_sum)(const float* p, const float* v, int64_t stride, int64_t len, int64_t d, float* acc);
  // Optional own GEMM for n > 1 (nullptr: MatMul uses OpenBLAS): y[:, r0:r1] of x * W^T.
  //   x: [n, w.cols]; y: [n, w.rows]; scratch: gemm_scratch_floats floats of the calling thread.
  void (*gemm_rows)(const float* x, int32_t n, const Matrix& w, int64_t r0, int64_t r1, float* y, float* scratch,
                    size_t scratch_floats);
  int64_t gemm_rows_granule;  // slices handed to gemm_rows start at multiples of this
  // Optional (nullptr: one matvec_rows per token): matvec_rows for n tokens at once, each weight
  // vector loaded and converted once for all of them. y[t * w.rows + r] for t < n must be bit-for-
  // bit what matvec_rows gives for x + t * w.cols (batched decode equals decode alone).
  void (*matvec_rows_batch)(const Matrix& w, const float* x, int32_t n, int64_t row_begin, int64_t row_end,
                            float* y) = nullptr;
  // Upper bound of dot(q, k) over the keys k in the box [mn, mx]: sum_i max(q[i] * mn[i], q[i] * mx[i])
  // (the engine scores page abstracts with it). nullptr: the scalar loop.
  float (*box_bound)(const float* q, const float* mn, const float* mx, int64_t n) = nullptr;
  // box_bound of one abstract node for every query head at once (GQA: query head h reads KV head
  // h / group), from the query split by sign so that no per-element max is needed:
  //   out[h] = sum_i q_pos[h, i] * mx[kvh, i] + q_neg[h, i] * mn[kvh, i],  kvh = h / group
  // with q_pos = max(q, 0), q_neg = min(q, 0) ([num_heads, d] each), mn / mx: [num_heads / group, d].
  // Equal to box_bound per head up to float rounding (when mn <= mx). Selection scores thousands of
  // nodes per layer and step: this makes one call per node instead of one per node and head, and
  // sums the heads' partial vectors in one transposed reduction instead of one each.
  void (*box_bound_heads)(const float* q_pos, const float* q_neg, int32_t num_heads, int32_t group, const float* mn,
                          const float* mx, int64_t d, float* out) = nullptr;
};

const SimdKernels& SimdKernelsFor(SimdLevel level);

namespace scalar {
extern const SimdKernels kKernels;
}
namespace avx2 {
extern const SimdKernels kKernels;
}
namespace avx512 {
extern const SimdKernels kKernels;
}

}  // namespace leoam::kernels::cpu
