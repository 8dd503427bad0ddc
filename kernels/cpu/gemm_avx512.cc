// AVX-512 GEMM for prefill: y[n, r0:r1] = x[n, K] * W[r0:r1, K]^T, for any weight dtype.
//
// Why not OpenBLAS here: OpenBLAS 0.3.21 runs its AVX2 ("Haswell") kernels on Zen 5 (and this
// environment pins OPENBLAS_CORETYPE=Haswell), about 105 GFLOP/s per core; this kernel reaches
// more with AVX-512 (see bench/runtime/kernels_bench.cc, BM_Gemm512).
//
// Layout: W is consumed in panels of kPanel = 48 output rows. Each panel is converted to fp32
// (F16/BF16/Q8_0 dequantized on the fly) and transposed into [kc, 48] in the caller's scratch,
// so the micro-kernel loads 3 vectors of W per k and broadcasts one x value per token: an
// 8-token x 48-output tile lives in 24 zmm accumulators. K is blocked (kc) to fit the scratch.
#include "kernels/cpu/gemm_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/simd_kernels.h"

#pragma GCC push_options
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi2")

namespace leoam::kernels::cpu::avx512 {
namespace {

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

// panel[k, r] = rows[r, k] for r < rows_valid, 0 for the padding rows.   rows: [rows_valid, kc]
void TransposeIntoPanel(const float* rows, int64_t rows_valid, int64_t kc, float* panel) {
  // Column k of 16 rows (stride kc) is one gather.
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(kc)));
  for (int64_t r = 0; r < kPanel; r += 16) {
    const __mmask16 m = RowsMask(rows_valid, r);
    const float* base = rows + r * kc;
    if (m == 0xffff) {
      for (int64_t k = 0; k < kc; ++k) _mm512_store_ps(panel + k * kPanel + r, _mm512_i32gather_ps(index, base + k, 4));
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        _mm512_store_ps(panel + k * kPanel + r, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, index, base + k, 4));
      }
    }
  }
}

}  // namespace

size_t GemmScratchFloatsNeeded(int64_t k_block) { return static_cast<size_t>(2 * kPanel * k_block + 16); }

void GemmRows(const float* x, int32_t n, const Matrix& w, int64_t r0, int64_t r1, float* y, float* scratch,
              size_t scratch_floats) {
  const int64_t cols = w.cols;
  // K block: two [48, kc] buffers (converted rows, transposed panel) must fit the scratch.
  int64_t kc = std::min<int64_t>(cols, static_cast<int64_t>(scratch_floats - 16) / (2 * kPanel));
  if (kc < cols) kc = std::max<int64_t>(32, kc & ~int64_t{31});  // Q8_0 blocks stay whole
  // 64-byte aligned panel for aligned loads.
  float* panel = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  float* rows = panel + kPanel * kc;
  for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
    const int64_t valid = std::min<int64_t>(kPanel, r1 - p0);
    const __mmask16 m0 = RowsMask(valid, 0), m1 = RowsMask(valid, 16), m2 = RowsMask(valid, 32);
    for (int64_t k0 = 0; k0 < cols; k0 += kc) {
      const int64_t k1 = std::min(cols, k0 + kc);
      kKernels.convert_block(w, p0, p0 + valid, k0, k1, rows);
      TransposeIntoPanel(rows, valid, k1 - k0, panel);
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
