// CpuBackend: the Backend on host memory. The reference for other backends and what runs without
// a GPU. Ops run synchronously on the calling thread plus a ThreadPool; large ops are split
// over the pool, small ones run inline (see cpu_context.h). SIMD paths (AVX-512, AVX2, scalar)
// are chosen at run time.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_context.h"
#include "kernels/cpu/cpu_features.h"

namespace leoam::kernels {

struct CpuBackendOptions {
  // Threads running ops, the caller included. Default: DefaultThreadCount() (LEOAM_THREADS, else
  // the number of online CPUs).
  int num_threads = DefaultThreadCount();
  // Highest SIMD level to use; the backend uses min(this, what the CPU supports, LEOAM_SIMD).
  // Default: the best available. Tests lower it to cover the fallbacks.
  cpu::SimdLevel max_simd = cpu::SimdLevel::kAvx512;
  // Per-thread fp32 scratch for converting F16/BF16/Q8_0 weight blocks before sgemm, in bytes.
  // Default 2 MiB (about L2 size on current x86 cores).
  size_t gemm_scratch_bytes = size_t{2} << 20;
  // MatMul with up to this many tokens runs blocked matvecs instead of a GEMM (batched decode): the
  // AVX-512 batch matvec converts each weight vector once for 4 tokens, and beats converting and
  // packing W for the GEMM up to ~32 tokens (llama-124m F16 decode step, 2 cores: 16 rows 24.6 ms
  // vs 45.9 ms through the GEMM; 32 rows 43.9 vs 71.0). Default 32.
  int32_t max_matvec_batch = 32;
};

class CpuBackend final : public Backend {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const CpuBackendOptions& options = {});
  ~CpuBackend() override;

  std::string_view name() const override { return "cpu"; }
  cpu::SimdLevel simd_level() const { return level_; }

  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::StatusOr<const void*> UploadConstant(const void* host, size_t bytes, bool host_outlives_backend) override;

  absl::Status Embed(const Matrix& table, const int32_t* ids, int32_t n, float* out) override;
  absl::Status RmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps, float* y) override;
  absl::Status MatMul(const float* x, const Matrix& w, int32_t n, float* y) override;
  absl::Status AddBias(float* y, const float* bias, int32_t n, int32_t dim) override;
  absl::Status Add(float* x, const float* y, size_t count) override;
  absl::Status SwiGlu(const float* gate, const float* up, size_t count, float* out) override;
  absl::Status Rope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                    const RopeParams& rope) override;
  absl::Status Attention(const AttentionParams& params, const float* q, const float* k, const float* v, float* out,
                         void* workspace) override;
  absl::Status PagedAttention(const PagedAttentionParams& params, const float* q, const float* k_pages,
                              const float* v_pages, const int32_t* page_ids, float* out, void* workspace) override;

  int32_t num_threads() const override { return pool_->num_threads(); }

 private:
  CpuBackend(std::unique_ptr<ThreadPool> pool, cpu::SimdLevel level, size_t gemm_scratch_floats,
             int32_t max_matvec_batch);

  std::unique_ptr<ThreadPool> pool_;
  cpu::SimdLevel level_;
  std::unique_ptr<float[]> gemm_scratch_;  // num_threads x gemm_scratch_floats
  cpu::CpuContext ctx_;
  // Copies made by UploadConstant(host_outlives_backend = false); freed with the backend.
  std::vector<std::unique_ptr<char[]>> constants_;
};

}  // namespace leoam::kernels
