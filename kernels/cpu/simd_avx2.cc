// AVX2 + FMA + F16C kernels, for x86-64 CPUs without AVX-512. Compiled under a target pragma and
// only called when DetectedCpuFeatures().avx2_fma_f16c is true. Tails fall back to scalar code.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/q8_0.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/half.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace leoam::kernels::cpu::avx2 {
namespace {

float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Loads 8 consecutive weights as fp32, and converts one weight for the scalar tail.
struct LoadF32 {
  static __m256 Load(const void* row, int64_t c) { return _mm256_loadu_ps(static_cast<const float*>(row) + c); }
  static float One(const void* row, int64_t c) { return static_cast<const float*>(row)[c]; }
};
struct LoadF16 {
  static __m256 Load(const void* row, int64_t c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + c)));
  }
  static float One(const void* row, int64_t c) { return HalfToFloat(static_cast<const uint16_t*>(row)[c]); }
};
struct LoadBF16 {
  static __m256 Load(const void* row, int64_t c) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + c));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float One(const void* row, int64_t c) { return Bf16ToFloat(static_cast<const uint16_t*>(row)[c]); }
};

template <class L>
void MatVecRowsT(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const int64_t cols = w.cols;
  const size_t row_bytes = RowBytes(w.type, cols);
  const char* base = static_cast<const char*>(w.data);
  const int64_t main_end = cols & ~int64_t{15};
  const int64_t vec_end = cols & ~int64_t{7};
  int64_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const void* wr[4];
    for (int i = 0; i < 4; ++i) wr[i] = base + static_cast<size_t>(r + i) * row_bytes;
    __m256 a0 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps();
    __m256 a3 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    int64_t c = 0;
    // Prefetch the next 4 rows (they follow in memory) at the same column.
    const char* ahead = static_cast<const char*>(wr[0]) + 4 * row_bytes;
    const int64_t elem = static_cast<int64_t>(row_bytes) / cols;
    for (; c < main_end; c += 16) {
      for (int i = 0; i < 4; ++i) _mm_prefetch(ahead + i * row_bytes + c * elem, _MM_HINT_T0);
      const __m256 xa = _mm256_loadu_ps(x + c);
      const __m256 xb = _mm256_loadu_ps(x + c + 8);
      a0 = _mm256_fmadd_ps(L::Load(wr[0], c), xa, a0);
      b0 = _mm256_fmadd_ps(L::Load(wr[0], c + 8), xb, b0);
      a1 = _mm256_fmadd_ps(L::Load(wr[1], c), xa, a1);
      b1 = _mm256_fmadd_ps(L::Load(wr[1], c + 8), xb, b1);
      a2 = _mm256_fmadd_ps(L::Load(wr[2], c), xa, a2);
      b2 = _mm256_fmadd_ps(L::Load(wr[2], c + 8), xb, b2);
      a3 = _mm256_fmadd_ps(L::Load(wr[3], c), xa, a3);
      b3 = _mm256_fmadd_ps(L::Load(wr[3], c + 8), xb, b3);
    }
    for (; c < vec_end; c += 8) {
      const __m256 xa = _mm256_loadu_ps(x + c);
      a0 = _mm256_fmadd_ps(L::Load(wr[0], c), xa, a0);
      a1 = _mm256_fmadd_ps(L::Load(wr[1], c), xa, a1);
      a2 = _mm256_fmadd_ps(L::Load(wr[2], c), xa, a2);
      a3 = _mm256_fmadd_ps(L::Load(wr[3], c), xa, a3);
    }
    float s[4] = {HorizontalSum(_mm256_add_ps(a0, b0)), HorizontalSum(_mm256_add_ps(a1, b1)),
                  HorizontalSum(_mm256_add_ps(a2, b2)), HorizontalSum(_mm256_add_ps(a3, b3))};
    for (; c < cols; ++c) {
      for (int i = 0; i < 4; ++i) s[i] += L::One(wr[i], c) * x[c];
    }
    for (int i = 0; i < 4; ++i) y[r + i] = s[i];
  }
  for (; r < row_end; ++r) {
    const void* w0 = base + static_cast<size_t>(r) * row_bytes;
    __m256 a0 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c < vec_end; c += 8) a0 = _mm256_fmadd_ps(L::Load(w0, c), _mm256_loadu_ps(x + c), a0);
    float s = HorizontalSum(a0);
    for (; c < cols; ++c) s += L::One(w0, c) * x[c];
    y[r] = s;
  }
}

__m256 Q8Part(const BlockQ8_0& b, int part) {
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * part));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}

__m256 Q8Block(const BlockQ8_0& b, const float* x, __m256 acc) {
  __m256 s = _mm256_mul_ps(Q8Part(b, 0), _mm256_loadu_ps(x));
  s = _mm256_fmadd_ps(Q8Part(b, 1), _mm256_loadu_ps(x + 8), s);
  s = _mm256_fmadd_ps(Q8Part(b, 2), _mm256_loadu_ps(x + 16), s);
  s = _mm256_fmadd_ps(Q8Part(b, 3), _mm256_loadu_ps(x + 24), s);
  return _mm256_fmadd_ps(s, _mm256_set1_ps(_cvtsh_ss(b.d)), acc);
}

void MatVecRowsQ8(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const int64_t nb = w.cols / kQ8Block;
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const char* base = static_cast<const char*>(w.data);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const BlockQ8_0* w0 = reinterpret_cast<const BlockQ8_0*>(base + static_cast<size_t>(r) * row_bytes);
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) a0 = Q8Block(w0[b], x + b * kQ8Block, a0);
    y[r] = HorizontalSum(a0);
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

template <class L>
void ConvertRowT(const void* row, int64_t c0, int64_t c1, float* dst) {
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(dst + (c - c0), L::Load(row, c));
  for (; c < c1; ++c) dst[c - c0] = L::One(row, c);
}

void ConvertRowQ8(const void* row, int64_t c0, int64_t c1, float* dst) {
  const BlockQ8_0* blocks = static_cast<const BlockQ8_0*>(row);
  for (int64_t b = c0 / kQ8Block; b < c1 / kQ8Block; ++b) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(blocks[b].d));
    float* out = dst + (b * kQ8Block - c0);
    for (int part = 0; part < 4; ++part) _mm256_storeu_ps(out + 8 * part, _mm256_mul_ps(Q8Part(blocks[b], part), d));
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
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float BoxBound(const float* q, const float* mn, const float* mx, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    acc = _mm256_add_ps(acc, _mm256_max_ps(_mm256_mul_ps(qv, _mm256_loadu_ps(mn + i)),
                                           _mm256_mul_ps(qv, _mm256_loadu_ps(mx + i))));
  }
  float s = HorizontalSum(acc);
  for (; i < n; ++i) s += std::max(q[i] * mn[i], q[i] * mx[i]);
  return s;
}

// r[i] = sum of the 8 lanes of v[i], for i < 8, in one reduction tree (hadd pairs, then the two
// 128-bit halves) instead of a HorizontalSum each.
__m256 ReduceAdd8(const __m256 v[8]) {
  const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 s0 = _mm256_hadd_ps(t0, t1);  // low half: partial sums of v[0..3], high half: the rest of them
  const __m256 s1 = _mm256_hadd_ps(t2, t3);  // the same for v[4..7]
  return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

void BoxBoundHeads(const float* q_pos, const float* q_neg, int32_t num_heads, int32_t group, const float* mn,
                   const float* mx, int64_t d, float* out) {
  // As the AVX-512 kernel, in blocks of 8 heads; channels past the last multiple of 8 are added
  // to the reduced sums in scalar code.
  const int64_t vec_end = d & ~int64_t{7};
  for (int32_t h0 = 0; h0 < num_heads; h0 += 8) {
    const int32_t nb = std::min<int32_t>(8, num_heads - h0);
    __m256 acc[8];
    float tail[8] = {};
    for (int32_t j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
    for (int32_t j = 0; j < nb; ++j) {
      const int32_t h = h0 + j;
      const size_t kv = static_cast<size_t>(h / group) * d;
      const float* qp = q_pos + static_cast<size_t>(h) * d;
      const float* qn = q_neg + static_cast<size_t>(h) * d;
      __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
      for (int64_t i = 0; i < vec_end; i += 8) {
        a = _mm256_fmadd_ps(_mm256_loadu_ps(qp + i), _mm256_loadu_ps(mx + kv + i), a);
        b = _mm256_fmadd_ps(_mm256_loadu_ps(qn + i), _mm256_loadu_ps(mn + kv + i), b);
      }
      acc[j] = _mm256_add_ps(a, b);
      for (int64_t i = vec_end; i < d; ++i) tail[j] += qp[i] * mx[kv + i] + qn[i] * mn[kv + i];
    }
    alignas(32) float sums[8];
    _mm256_store_ps(sums, _mm256_add_ps(ReduceAdd8(acc), _mm256_loadu_ps(tail)));
    for (int32_t j = 0; j < nb; ++j) out[h0 + j] = sums[j];
  }
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void Scale(float a, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= a;
}

float Max(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(x[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = lanes[0];
  for (int k = 1; k < 8; ++k) r = lanes[k] > r ? lanes[k] : r;
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

// exp(x), about 1 ulp (Cephes expf polynomial). Inputs are clamped to [-87.3, 88.3] so that 2^n
// can be built from exponent bits; beyond that the result saturates near 0 / near FLT_MAX.
__m256 Exp(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

float ExpSubSum(float* x, int64_t n, float sub) {
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float s = HorizontalSum(sum);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - sub);
    s += x[i];
  }
  return s;
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i,
                     _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void AttnScores(const float* q, const float* k, int64_t stride, int64_t len, int64_t d, float scale, float* scores) {
  for (int64_t j = 0; j < len; ++j) scores[j] = scale * Dot(q, k + j * stride, d);
}

void AttnWeightedSum(const float* p, const float* v, int64_t stride, int64_t len, int64_t d, float* acc) {
  for (int64_t j = 0; j < len; ++j) Axpy(p[j], v + j * stride, acc, d);
}

}  // namespace

const SimdKernels kKernels = {MatVecRows, ConvertBlock,    Dot,     Axpy, Scale, Max, ExpSubSum, SwiGlu,
                              AttnScores, AttnWeightedSum, nullptr, 1, nullptr, BoxBound, BoxBoundHeads};

}  // namespace leoam::kernels::cpu::avx2

#pragma GCC pop_options
