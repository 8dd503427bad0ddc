// AVX-512 GEMM used by MatMul for n > 1 when the CPU has AVX-512 (see gemm_avx512.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"

namespace leoam::kernels::cpu::avx512 {

// Rows of W per panel: slices given to GemmRows should start at multiples of this.
inline constexpr int64_t kGemmPanelRows = 48;

// y[t, r] for t in [0, n), r in [r0, r1):  x: [n, w.cols]; y: [n, w.rows].
// scratch: >= GemmScratchFloatsNeeded(32) floats, owned by the calling thread.
void GemmRows(const float* x, int32_t n, const Matrix& w, int64_t r0, int64_t r1, float* y, float* scratch,
              size_t scratch_floats);

size_t GemmScratchFloatsNeeded(int64_t k_block);

}  // namespace leoam::kernels::cpu::avx512
