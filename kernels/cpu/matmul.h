// MatMul on the CPU: y[n, w.rows] = x[n, w.cols] * W^T.
//   n == 1 (decode): a hand-written matvec, threaded over output rows.
//   n > 1 (prefill): threaded over slices of W's rows; each slice runs the AVX-512 GEMM
//   (gemm_avx512.cc) where the CPU has it, else OpenBLAS sgemm, with non-F32 weights converted
//   block by block into the backend's per-thread fp32 scratch.
#pragma once

#include "absl/status/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_context.h"

namespace leoam::kernels::cpu {

//   x: [n, w.cols]; y: [n, w.rows]
absl::Status MatMul(const CpuContext& ctx, const float* x, const Matrix& w, int32_t n, float* y);

// Makes OpenBLAS fit this backend: one OpenBLAS thread, as we split GEMMs over our own pool.
// Idempotent; returns the OpenBLAS core name in use (for logs and benchmarks).
const char* ConfigureOpenBlas();

}  // namespace leoam::kernels::cpu
