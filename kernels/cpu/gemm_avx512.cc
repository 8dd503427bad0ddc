// AVX-512 GEMM for prefill: y[n, r0:r1] = x[n, K] * W[r0:r1, K]^T, for any weight dtype.
//
// Why not OpenBLAS here: OpenBLAS 0.3.21 runs its AVX2 ("Haswell") kernels on Zen 5 (and this
// environment pins OPENBLAS_CORETYPE=Haswell), about 105 GFLOP/s per core; this kernel reaches
// more with AVX-512 (see bench/runtime/kernels_bench.cc, BM_Gemm512).
//
// Layout: W is consumed in panels of kPanel = 48 output rows. Each panel is converted to fp32
// (F16/BF16/Q8_0 dequantized on the fly) and transposed into [kc, 48] in the caller's scratch
// (16 x 16 blocks transposed in registers),
// so the micro-kernel loads 3 vectors of W per k and broadcasts one x value per token: an
// 8-token x 48-output tile lives in 24 zmm accumulators. K is blocked (kc) to fit the scratch.
#include "kernels/cpu/gemm_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/q8_0.h"

#pragma GCC push_options
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi2")

namespace leoam::kernels::cpu::avx512 {
namespace {

#include "kernels/cpu/simd_avx512_loads.inc"

constexpr int64_t kPanel = 48;  // output rows per panel (3 zmm)
constexpr int kTokens = 8;      // tokens per micro-tile

// y[t, 0:48] (+)= sum_k x[t, k] * panel[k, 0:48] for MR tokens; masks cover the panel's valid rows.
template <int MR>
void MicroKernel(const float* x, int64_t ldx, const float* panel, int64_t kc, float* y, int64_t ldy, bool accumulate,
                 __mmask16 m0, __mmask16 m1, __mmask16 m2) {
  __m512 acc[MR][3];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(panel + k * kPanel);
    const __m512 b1 = _mm512_load_ps(panel + k * kPanel + 16);
    const __m512 b2 = _mm512_load_ps(panel + k * kPanel + 32);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(x[r * ldx + k]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* yr = y + r * ldy;
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, yr));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, yr + 16));
      acc[r][2] = _mm512_add_ps(acc[r][2], _mm512_maskz_loadu_ps(m2, yr + 32));
    }
    _mm512_mask_storeu_ps(yr, m0, acc[r][0]);
    _mm512_mask_storeu_ps(yr + 16, m1, acc[r][1]);
    _mm512_mask_storeu_ps(yr + 32, m2, acc[r][2]);
  }
}

using MicroKernelFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, bool, __mmask16,
                               __mmask16, __mmask16);
constexpr MicroKernelFn kMicroKernels[kTokens + 1] = {nullptr,        MicroKernel<1>, MicroKernel<2>,
                                                      MicroKernel<3>, MicroKernel<4>, MicroKernel<5>,
                                                      MicroKernel<6>, MicroKernel<7>, MicroKernel<8>};

__mmask16 RowsMask(int64_t valid, int64_t first) {
  const int64_t k = std::clamp<int64_t>(valid - first, 0, 16);
  return static_cast<__mmask16>((1u << k) - 1u);
}

// In-register transpose of a 16x16 block: r[i][j] -> r[j][i].
void Transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // u[4a + b] holds, in each 128-bit lane L, column 4L + b of rows 4a..4a+3.
  for (int b = 0; b < 4; ++b) {
    t[b] = _mm512_shuffle_f32x4(u[b], u[4 + b], 0x88);      // lanes 0,2 of rows 0-3 | 4-7
    t[4 + b] = _mm512_shuffle_f32x4(u[b], u[4 + b], 0xdd);  // lanes 1,3
    t[8 + b] = _mm512_shuffle_f32x4(u[8 + b], u[12 + b], 0x88);
    t[12 + b] = _mm512_shuffle_f32x4(u[8 + b], u[12 + b], 0xdd);
  }
  for (int b = 0; b < 4; ++b) {
    r[b] = _mm512_shuffle_f32x4(t[b], t[8 + b], 0x88);            // column b
    r[8 + b] = _mm512_shuffle_f32x4(t[b], t[8 + b], 0xdd);        // column 8 + b
    r[4 + b] = _mm512_shuffle_f32x4(t[4 + b], t[12 + b], 0x88);   // column 4 + b
    r[12 + b] = _mm512_shuffle_f32x4(t[4 + b], t[12 + b], 0xdd);  // column 12 + b
  }
}

// panel[k - k0, r] = W[p0 + r, k] as fp32 for r < rows_valid, 0 for the padding rows: each
// 16 x 16 block is loaded (and converted) straight from W and transposed in registers.
template <class L>
void PackPanel(const Matrix& w, int64_t p0, int64_t rows_valid, int64_t k0, int64_t k1, float* panel) {
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const char* base = static_cast<const char*>(w.data) + static_cast<size_t>(p0) * row_bytes;
  __m512 block[16];
  for (int64_t r0 = 0; r0 < kPanel; r0 += 16) {
    const int64_t nr = std::clamp<int64_t>(rows_valid - r0, 0, 16);
    for (int64_t c = k0; c < k1; c += 16) {
      const int64_t nk = std::min<int64_t>(16, k1 - c);
      const __mmask16 km = TailMask(nk);
      for (int64_t i = 0; i < 16; ++i) {
        block[i] = i < nr ? L::LoadMasked(base + static_cast<size_t>(r0 + i) * row_bytes, c, km) : _mm512_setzero_ps();
      }
      Transpose16(block);
      for (int64_t j = 0; j < nk; ++j) _mm512_store_ps(panel + (c - k0 + j) * kPanel + r0, block[j]);
    }
  }
}

void PackPanel(const Matrix& w, int64_t p0, int64_t rows_valid, int64_t k0, int64_t k1, float* panel) {
  switch (w.type) {
    case DType::kF32:
      return PackPanel<LoadF32>(w, p0, rows_valid, k0, k1, panel);
    case DType::kF16:
      return PackPanel<LoadF16>(w, p0, rows_valid, k0, k1, panel);
    case DType::kBF16:
      return PackPanel<LoadBF16>(w, p0, rows_valid, k0, k1, panel);
    case DType::kQ8_0:
      return PackPanel<LoadQ8_0>(w, p0, rows_valid, k0, k1, panel);
  }
}

}  // namespace

size_t GemmScratchFloatsNeeded(int64_t k_block) { return static_cast<size_t>(kPanel * k_block + 16); }

void GemmRows(const float* x, int32_t n, const Matrix& w, int64_t r0, int64_t r1, float* y, float* scratch,
              size_t scratch_floats) {
  const int64_t cols = w.cols;
  // K block: one [kc, 48] panel must fit the scratch; Q8_0 blocks stay whole.
  int64_t kc = std::min<int64_t>(cols, static_cast<int64_t>(scratch_floats - 16) / kPanel);
  if (kc < cols) kc = std::max<int64_t>(32, kc & ~int64_t{31});
  // 64-byte aligned panel for aligned loads.
  float* panel = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
    const int64_t valid = std::min<int64_t>(kPanel, r1 - p0);
    const __mmask16 m0 = RowsMask(valid, 0), m1 = RowsMask(valid, 16), m2 = RowsMask(valid, 32);
    for (int64_t k0 = 0; k0 < cols; k0 += kc) {
      const int64_t k1 = std::min(cols, k0 + kc);
      PackPanel(w, p0, valid, k0, k1, panel);
      for (int64_t t = 0; t < n; t += kTokens) {
        const int mr = static_cast<int>(std::min<int64_t>(kTokens, n - t));
        kMicroKernels[mr](x + t * cols + k0, cols, panel, k1 - k0, y + t * w.rows + p0, w.rows, k0 > 0, m0, m1, m2);
      }
    }
  }
}

}  // namespace leoam::kernels::cpu::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
