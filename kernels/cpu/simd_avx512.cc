// AVX-512 (F/BW/DQ/VL + F16C + FMA) kernels. Compiled under a target pragma, so the library still
// builds for baseline x86-64; only called when DetectedCpuFeatures().avx512 is true.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/q8_0.h"
#include "kernels/cpu/simd_kernels.h"

#pragma GCC push_options
// GCC 12 reports its own _mm512_undefined_* helpers (used by the reductions) as uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi2")

namespace leoam::kernels::cpu::avx512 {
namespace {

#include "kernels/cpu/simd_avx512_loads.inc"

// Four rows per pass share each load of x; two accumulators per row hide FMA latency.
template <class L>
void MatVecRowsT(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const int64_t cols = w.cols;
  const size_t row_bytes = RowBytes(w.type, cols);
  const char* base = static_cast<const char*>(w.data);
  const int64_t main_end = cols & ~int64_t{31};
  int64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const void* w0 = base + static_cast<size_t>(r) * row_bytes;
    const void* w1 = base + static_cast<size_t>(r + 1) * row_bytes;
    const void* w2 = base + static_cast<size_t>(r + 2) * row_bytes;
    const void* w3 = base + static_cast<size_t>(r + 3) * row_bytes;
    __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps();
    __m512 a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps();
    __m512 a3 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    int64_t c = 0;
    // The next 4 rows follow these in memory: prefetch them at the same column, 4 rows ahead.
    // Measured on Zen 5: F16 24000x768 matvec 1.2-2.3 ms with, 3.1-4.5 ms without (shared machine).
    const char* ahead = static_cast<const char*>(w0) + 4 * row_bytes;
    const int64_t elem = static_cast<int64_t>(row_bytes) / cols;  // 4 or 2 bytes (not Q8_0)
    for (; c < main_end; c += 32) {
      _mm_prefetch(ahead + c * elem, _MM_HINT_T0);
      _mm_prefetch(ahead + row_bytes + c * elem, _MM_HINT_T0);
      _mm_prefetch(ahead + 2 * row_bytes + c * elem, _MM_HINT_T0);
      _mm_prefetch(ahead + 3 * row_bytes + c * elem, _MM_HINT_T0);
      const __m512 xa = _mm512_loadu_ps(x + c);
      const __m512 xb = _mm512_loadu_ps(x + c + 16);
      a0 = _mm512_fmadd_ps(L::Load(w0, c), xa, a0);
      b0 = _mm512_fmadd_ps(L::Load(w0, c + 16), xb, b0);
      a1 = _mm512_fmadd_ps(L::Load(w1, c), xa, a1);
      b1 = _mm512_fmadd_ps(L::Load(w1, c + 16), xb, b1);
      a2 = _mm512_fmadd_ps(L::Load(w2, c), xa, a2);
      b2 = _mm512_fmadd_ps(L::Load(w2, c + 16), xb, b2);
      a3 = _mm512_fmadd_ps(L::Load(w3, c), xa, a3);
      b3 = _mm512_fmadd_ps(L::Load(w3, c + 16), xb, b3);
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(cols - c);
      const __m512 xa = _mm512_maskz_loadu_ps(m, x + c);
      a0 = _mm512_fmadd_ps(L::LoadMasked(w0, c, m), xa, a0);
      a1 = _mm512_fmadd_ps(L::LoadMasked(w1, c, m), xa, a1);
      a2 = _mm512_fmadd_ps(L::LoadMasked(w2, c, m), xa, a2);
      a3 = _mm512_fmadd_ps(L::LoadMasked(w3, c, m), xa, a3);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    y[r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    y[r + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    y[r + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
  }
  for (; r < row_end; ++r) {
    const void* w0 = base + static_cast<size_t>(r) * row_bytes;
    __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c < main_end; c += 32) {
      a0 = _mm512_fmadd_ps(L::Load(w0, c), _mm512_loadu_ps(x + c), a0);
      b0 = _mm512_fmadd_ps(L::Load(w0, c + 16), _mm512_loadu_ps(x + c + 16), b0);
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(cols - c);
      a0 = _mm512_fmadd_ps(L::LoadMasked(w0, c, m), _mm512_maskz_loadu_ps(m, x + c), a0);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
  }
}

// Several tokens at once (batched decode): two rows x kTokens tokens per pass, each weight vector
// loaded and converted once and used kTokens times, so the pass is FMA-bound instead of bound by
// loads and conversions. Each (row, token) keeps exactly MatVecRowsT's two accumulators and
// column order, so every result is bit-identical to the single-token kernel's.
template <class L, int kTokens>
void MatVecRowsTokensT(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const int64_t cols = w.cols, rows = w.rows;
  const size_t row_bytes = RowBytes(w.type, cols);
  const char* base = static_cast<const char*>(w.data);
  const int64_t main_end = cols & ~int64_t{31};
  int64_t r = row_begin;
  for (; r + 2 <= row_end; r += 2) {
    const void* w0 = base + static_cast<size_t>(r) * row_bytes;
    const void* w1 = base + static_cast<size_t>(r + 1) * row_bytes;
    __m512 a0[kTokens], b0[kTokens], a1[kTokens], b1[kTokens];
    _Pragma("GCC unroll 4") for (int t = 0; t < kTokens; ++t) {
      a0[t] = b0[t] = a1[t] = b1[t] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    // As in MatVecRowsT: the next rows follow in memory; prefetch them at the same column.
    const char* ahead = static_cast<const char*>(w0) + 2 * row_bytes;
    const int64_t elem = static_cast<int64_t>(row_bytes) / cols;
    for (; c < main_end; c += 32) {
      _mm_prefetch(ahead + c * elem, _MM_HINT_T0);
      _mm_prefetch(ahead + row_bytes + c * elem, _MM_HINT_T0);
      const __m512 w0a = L::Load(w0, c), w0b = L::Load(w0, c + 16);
      const __m512 w1a = L::Load(w1, c), w1b = L::Load(w1, c + 16);
      _Pragma("GCC unroll 4") for (int t = 0; t < kTokens; ++t) {
        const __m512 xa = _mm512_loadu_ps(x + t * cols + c);
        const __m512 xb = _mm512_loadu_ps(x + t * cols + c + 16);
        a0[t] = _mm512_fmadd_ps(w0a, xa, a0[t]);
        b0[t] = _mm512_fmadd_ps(w0b, xb, b0[t]);
        a1[t] = _mm512_fmadd_ps(w1a, xa, a1[t]);
        b1[t] = _mm512_fmadd_ps(w1b, xb, b1[t]);
      }
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = cols - c >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(cols - c);
      const __m512 w0a = L::LoadMasked(w0, c, m), w1a = L::LoadMasked(w1, c, m);
      _Pragma("GCC unroll 4") for (int t = 0; t < kTokens; ++t) {
        const __m512 xa = _mm512_maskz_loadu_ps(m, x + t * cols + c);
        a0[t] = _mm512_fmadd_ps(w0a, xa, a0[t]);
        a1[t] = _mm512_fmadd_ps(w1a, xa, a1[t]);
      }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < kTokens; ++t) {
      y[t * rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], b0[t]));
      y[t * rows + r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1[t], b1[t]));
    }
  }
  for (; r < row_end; ++r) {
    _Pragma("GCC unroll 4") for (int t = 0; t < kTokens; ++t) MatVecRowsT<L>(w, x + t * cols, r, r + 1, y + t * rows);
  }
}

template <class L>
void MatVecRowsBatchT(const Matrix& w, const float* x, int32_t n, int64_t row_begin, int64_t row_end, float* y) {
  int32_t t = 0;
  for (; t + 4 <= n; t += 4) MatVecRowsTokensT<L, 4>(w, x + t * w.cols, row_begin, row_end, y + t * w.rows);
  switch (n - t) {
    case 3: return MatVecRowsTokensT<L, 3>(w, x + t * w.cols, row_begin, row_end, y + t * w.rows);
    case 2: return MatVecRowsTokensT<L, 2>(w, x + t * w.cols, row_begin, row_end, y + t * w.rows);
    case 1: return MatVecRowsT<L>(w, x + t * w.cols, row_begin, row_end, y + t * w.rows);
    default: return;
  }
}

// Q8_0: per block, the 32 int8 products are summed in fp32 and scaled once (exact dequantized
// weights, no quantization of x).
__m512 Q8Block(const BlockQ8_0& b, __m512 xa, __m512 xb, __m512 acc) {
  const __m512 s = _mm512_fmadd_ps(Q8Hi(b), xb, _mm512_mul_ps(Q8Lo(b), xa));
  return _mm512_fmadd_ps(s, Q8Scale(b), acc);
}

void MatVecRowsQ8(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const int64_t nb = w.cols / kQ8Block;
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const char* base = static_cast<const char*>(w.data);
  int64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const BlockQ8_0* w0 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r) * row_bytes);
    const BlockQ8_0* w1 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r + 1) * row_bytes);
    const BlockQ8_0* w2 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r + 2) * row_bytes);
    const BlockQ8_0* w3 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r + 3) * row_bytes);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    const char* ahead = base + static_cast<size_t>(r + 4) * row_bytes;  // next 4 rows, as in MatVecRowsT
    for (int64_t b = 0; b < nb; ++b) {
      const size_t offset = static_cast<size_t>(b) * sizeof(BlockQ8_0);
      _mm_prefetch(ahead + offset, _MM_HINT_T0);
      _mm_prefetch(ahead + row_bytes + offset, _MM_HINT_T0);
      _mm_prefetch(ahead + 2 * row_bytes + offset, _MM_HINT_T0);
      _mm_prefetch(ahead + 3 * row_bytes + offset, _MM_HINT_T0);
      const __m512 xa = _mm512_loadu_ps(x + b * kQ8Block);
      const __m512 xb = _mm512_loadu_ps(x + b * kQ8Block + 16);
      a0 = Q8Block(w0[b], xa, xb, a0);
      a1 = Q8Block(w1[b], xa, xb, a1);
      a2 = Q8Block(w2[b], xa, xb, a2);
      a3 = Q8Block(w3[b], xa, xb, a3);
    }
    y[r] = _mm512_reduce_add_ps(a0);
    y[r + 1] = _mm512_reduce_add_ps(a1);
    y[r + 2] = _mm512_reduce_add_ps(a2);
    y[r + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; r < row_end; ++r) {
    const BlockQ8_0* w0 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r) * row_bytes);
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      a0 = Q8Block(w0[b], _mm512_loadu_ps(x + b * kQ8Block), _mm512_loadu_ps(x + b * kQ8Block + 16), a0);
    }
    y[r] = _mm512_reduce_add_ps(a0);
  }
}

void MatVecRows(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  switch (w.type) {
    case DType::kF32:
      return MatVecRowsT<LoadF32>(w, x, row_begin, row_end, y);
    case DType::kF16:
      return MatVecRowsT<LoadF16>(w, x, row_begin, row_end, y);
    case DType::kBF16:
      return MatVecRowsT<LoadBF16>(w, x, row_begin, row_end, y);
    case DType::kQ8_0:
      return MatVecRowsQ8(w, x, row_begin, row_end, y);
  }
}

// Q8_0 keeps one pass per token (its blocks already amortize the scale over 32 products).
void MatVecRowsBatch(const Matrix& w, const float* x, int32_t n, int64_t row_begin, int64_t row_end, float* y) {
  switch (w.type) {
    case DType::kF32:
      return MatVecRowsBatchT<LoadF32>(w, x, n, row_begin, row_end, y);
    case DType::kF16:
      return MatVecRowsBatchT<LoadF16>(w, x, n, row_begin, row_end, y);
    case DType::kBF16:
      return MatVecRowsBatchT<LoadBF16>(w, x, n, row_begin, row_end, y);
    case DType::kQ8_0:
      for (int32_t t = 0; t < n; ++t) MatVecRowsQ8(w, x + t * w.cols, row_begin, row_end, y + t * w.rows);
      return;
  }
}

template <class L>
void ConvertRowT(const void* row, int64_t c0, int64_t c1, float* dst) {
  int64_t c = c0;
  for (; c + 16 <= c1; c += 16) _mm512_storeu_ps(dst + (c - c0), L::Load(row, c));
  if (c < c1) {
    const __mmask16 m = TailMask(c1 - c);
    _mm512_mask_storeu_ps(dst + (c - c0), m, L::LoadMasked(row, c, m));
  }
}

void ConvertRowQ8(const void* row, int64_t c0, int64_t c1, float* dst) {
  const BlockQ8_0* blocks = static_cast<const BlockQ8_0*>(row);
  for (int64_t b = c0 / kQ8Block; b < c1 / kQ8Block; ++b) {
    const __m512 d = Q8Scale(blocks[b]);
    float* out = dst + (b * kQ8Block - c0);
    _mm512_storeu_ps(out, _mm512_mul_ps(Q8Lo(blocks[b]), d));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(Q8Hi(blocks[b]), d));
  }
}

void ConvertBlock(const Matrix& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) {
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const int64_t ld = c1 - c0;
  for (int64_t r = r0; r < r1; ++r) {
    const void* row = static_cast<const char*>(w.data) + static_cast<size_t>(r) * row_bytes;
    float* out = dst + (r - r0) * ld;
    switch (w.type) {
      case DType::kF32:
        ConvertRowT<LoadF32>(row, c0, c1, out);
        break;
      case DType::kF16:
        ConvertRowT<LoadF16>(row, c0, c1, out);
        break;
      case DType::kBF16:
        ConvertRowT<LoadBF16>(row, c0, c1, out);
        break;
      case DType::kQ8_0:
        ConvertRowQ8(row, c0, c1, out);
        break;
    }
  }
}

float Dot(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

float BoxBound(const float* q, const float* mn, const float* mx, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : TailMask(n - i);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
    acc = _mm512_add_ps(acc, _mm512_max_ps(_mm512_mul_ps(qv, _mm512_maskz_loadu_ps(m, mn + i)),
                                           _mm512_mul_ps(qv, _mm512_maskz_loadu_ps(m, mx + i))));
  }
  return _mm512_reduce_add_ps(acc);
}

// r[i] = sum of the 16 lanes of v[i], for i < 16: one transposed reduction tree (each level adds
// pairs of 128-bit lanes, then pairs of floats), 30 shuffles and 15 adds for all 16 instead of a
// reduce_add (3 shuffles, 4 adds, serial) each.
__m512 ReduceAdd16(const __m512 v[16]) {
  __m512 w[8], u[4], z[2];
  for (int k = 0; k < 8; ++k) {  // w[k]: 128-bit lanes 0-1 partials of v[2k], lanes 2-3 of v[2k + 1]
    w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  }
  for (int k = 0; k < 4; ++k) {  // u[k]: lane L holds 4 partials of v[4k + L]
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], 0xDD));
  }
  for (int k = 0; k < 2; ++k) {  // z[k]: lane L holds 2 partials of v[8k + L] then of v[8k + 4 + L]
    z[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE));
  }
  // Lane L: the sums of v[L], v[4 + L], v[8 + L], v[12 + L]; float 4L + m is v[4m + L].
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, r);
}

void BoxBoundHeads(const float* q_pos, const float* q_neg, int32_t num_heads, int32_t group, const float* mn,
                   const float* mx, int64_t d, float* out) {
  // Heads in blocks of 16: each head's products accumulate in one vector (no reduction inside the
  // channel loop), and the block's 16 vectors are reduced together.
  for (int32_t h0 = 0; h0 < num_heads; h0 += 16) {
    const int32_t nb = std::min<int32_t>(16, num_heads - h0);
    __m512 acc[16];
    for (int32_t j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
    for (int32_t j = 0; j < nb; ++j) {
      const int32_t h = h0 + j;
      const size_t kv = static_cast<size_t>(h / group) * d;
      const float* qp = q_pos + static_cast<size_t>(h) * d;
      const float* qn = q_neg + static_cast<size_t>(h) * d;
      __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
      int64_t i = 0;
      for (; i + 16 <= d; i += 16) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(qp + i), _mm512_loadu_ps(mx + kv + i), a);
        b = _mm512_fmadd_ps(_mm512_loadu_ps(qn + i), _mm512_loadu_ps(mn + kv + i), b);
      }
      if (i < d) {
        const __mmask16 m = TailMask(d - i);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qp + i), _mm512_maskz_loadu_ps(m, mx + kv + i), a);
        b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qn + i), _mm512_maskz_loadu_ps(m, mn + kv + i), b);
      }
      acc[j] = _mm512_add_ps(a, b);
    }
    _mm512_mask_storeu_ps(out + h0, TailMask(nb), ReduceAdd16(acc));  // TailMask(16) is all lanes
  }
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void Scale(float a, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

float Max(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(x[0]);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) m = _mm512_mask_max_ps(m, TailMask(n - i), m, _mm512_maskz_loadu_ps(TailMask(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

// exp(x), about 1 ulp: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r (Cephes
// expf coefficients), and scalef for 2^n, which handles overflow (inf) and underflow (0).
__m512 Exp(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.8f)), _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

float ExpSubSum(float* x, int64_t n, float sub) {
  const __m512 vs = _mm512_set1_ps(sub);
  __m512 sum = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
    _mm512_storeu_ps(x + i, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    const __m512 e = Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
  }
  return _mm512_reduce_add_ps(sum);
}

__m512 SwiGlu16(__m512 g, __m512 u) {
  const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, SwiGlu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(out + i, m, SwiGlu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

// q.k for 4 keys per pass with q held in NV registers (d = 16 * NV).
template <int NV>
void AttnScoresT(const float* q, const float* k, int64_t stride, int64_t len, float scale, float* scores) {
  __m512 qv[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) qv[i] = _mm512_loadu_ps(q + 16 * i);
  int64_t j = 0;
  for (; j + 4 <= len; j += 4) {
    const float* k0 = k + j * stride;
    // Rows are `stride` apart (other kv heads in between): prefetch 8 rows ahead.
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      for (int i = 0; i < NV; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(k0 + (8 + r) * stride + 16 * i), _MM_HINT_T0);
    }
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) {
      a0 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 16 * i), a0);
      a1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + stride + 16 * i), a1);
      a2 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 2 * stride + 16 * i), a2);
      a3 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 3 * stride + 16 * i), a3);
    }
    scores[j] = scale * _mm512_reduce_add_ps(a0);
    scores[j + 1] = scale * _mm512_reduce_add_ps(a1);
    scores[j + 2] = scale * _mm512_reduce_add_ps(a2);
    scores[j + 3] = scale * _mm512_reduce_add_ps(a3);
  }
  for (; j < len; ++j) {
    __m512 a0 = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) a0 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + j * stride + 16 * i), a0);
    scores[j] = scale * _mm512_reduce_add_ps(a0);
  }
}

void AttnScores(const float* q, const float* k, int64_t stride, int64_t len, int64_t d, float scale, float* scores) {
  switch (d) {
    case 32:
      return AttnScoresT<2>(q, k, stride, len, scale, scores);
    case 48:
      return AttnScoresT<3>(q, k, stride, len, scale, scores);
    case 64:
      return AttnScoresT<4>(q, k, stride, len, scale, scores);
    case 80:
      return AttnScoresT<5>(q, k, stride, len, scale, scores);
    case 96:
      return AttnScoresT<6>(q, k, stride, len, scale, scores);
    case 128:
      return AttnScoresT<8>(q, k, stride, len, scale, scores);
    default:
      for (int64_t j = 0; j < len; ++j) scores[j] = scale * Dot(q, k + j * stride, d);
  }
}

// acc held in NV registers across all keys.
template <int NV>
void AttnWeightedSumT(const float* p, const float* v, int64_t stride, int64_t len, float* acc) {
  __m512 a[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) a[i] = _mm512_loadu_ps(acc + 16 * i);
  for (int64_t j = 0; j < len; ++j) {
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(v + (j + 8) * stride + 16 * i), _MM_HINT_T0);
    const __m512 pj = _mm512_set1_ps(p[j]);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) a[i] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(v + j * stride + 16 * i), a[i]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) _mm512_storeu_ps(acc + 16 * i, a[i]);
}

void AttnWeightedSum(const float* p, const float* v, int64_t stride, int64_t len, int64_t d, float* acc) {
  switch (d) {
    case 32:
      return AttnWeightedSumT<2>(p, v, stride, len, acc);
    case 48:
      return AttnWeightedSumT<3>(p, v, stride, len, acc);
    case 64:
      return AttnWeightedSumT<4>(p, v, stride, len, acc);
    case 80:
      return AttnWeightedSumT<5>(p, v, stride, len, acc);
    case 96:
      return AttnWeightedSumT<6>(p, v, stride, len, acc);
    case 128:
      return AttnWeightedSumT<8>(p, v, stride, len, acc);
    default:
      for (int64_t j = 0; j < len; ++j) Axpy(p[j], v + j * stride, acc, d);
  }
}

}  // namespace

const SimdKernels kKernels = {MatVecRows, ConvertBlock,    Dot,      Axpy,          Scale, Max, ExpSubSum, SwiGlu,
                              AttnScores, AttnWeightedSum, GemmRows, kGemmPanelRows, MatVecRowsBatch, BoxBound,
                              BoxBoundHeads};

}  // namespace leoam::kernels::cpu::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
