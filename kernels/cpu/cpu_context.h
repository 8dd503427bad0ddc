// What every CPU op needs: the thread pool, the SIMD kernel table and the backend-owned GEMM
// scratch. Owned by CpuBackend; the op files (matmul.cc, attention.cc, elementwise.cc) take it
// by const reference.
#pragma once

#include <algorithm>
#include <atomic>
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
  int32_t max_matvec_batch = 32;

  int num_threads() const { return pool->num_threads(); }
};

// Work below which an op runs inline on the calling thread. Waking workers costs about a
// microsecond when they spin, but on a loaded machine (other processes on the cores) a worker that
// is not running stalls the whole op for up to a scheduler slice (milliseconds), so only ops worth
// tens of microseconds per thread are split; tiny models (stories260K) run entirely inline.
inline constexpr int64_t kMinBytesPerThread = 256 * 1024;

// Runs fn(item, thread) for every item in [0, count) on up to `max_threads` pool threads, which
// claim items one at a time from a shared counter. Unlike fixed slices, a thread that starts late
// or runs slowly (another process on its core) just takes fewer items. Items should be a few
// microseconds of work or more; order them largest first when sizes differ.
template <typename Fn>
void RunDynamic(const CpuContext& ctx, int64_t count, int64_t max_threads, const Fn& fn) {
  const int64_t threads = std::clamp<int64_t>(std::min<int64_t>(max_threads, count), 1, ctx.num_threads());
  if (threads == 1) {
    for (int64_t item = 0; item < count; ++item) fn(item, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  ctx.pool->ParallelFor(threads, [&](int64_t, int64_t, int thread) {
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < count;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(item, thread);
    }
  });
}

}  // namespace leoam::kernels::cpu
