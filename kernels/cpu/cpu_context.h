// What every CPU op needs: the thread pool, the SIMD kernel table and the backend-owned GEMM
// scratch. Owned by CpuBackend; the op files (matmul.cc, attention.cc, elementwise.cc) take it
// by const reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/thread_pool.h"
#include "kernels/cpu/simd_kernels.h"

namespace leoam::kernels::cpu {

struct CpuContext {
  ThreadPool* pool = nullptr;
  const SimdKernels* simd = nullptr;
  // Per-thread fp32 scratch for weight blocks converted before sgemm: thread t owns
  // [gemm_scratch + t * gemm_scratch_floats, +gemm_scratch_floats).
  float* gemm_scratch = nullptr;
  size_t gemm_scratch_floats = 0;
  // MatMul runs up to this many tokens as matvecs instead of a GEMM (CpuBackendOptions).
  int32_t max_matvec_batch = 8;

  int num_threads() const { return pool->num_threads(); }
};

// Work below which an op runs inline on the calling thread. Waking workers costs about a
// microsecond when they spin, but on a loaded machine (other processes on the cores) a worker that
// is not running stalls the whole op for up to a scheduler slice (milliseconds), so only ops worth
// tens of microseconds per thread are split; tiny models (stories260K) run entirely inline.
inline constexpr int64_t kMinBytesPerThread = 256 * 1024;

}  // namespace leoam::kernels::cpu
