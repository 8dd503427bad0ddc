#include "kernels/cpu/cpu_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/paged_attention.h"

namespace leoam::kernels {
namespace {

// Buffers are 64-byte aligned (cache line, one AVX-512 vector).
constexpr size_t kAlignment = 64;
// Allocations from this size on are mapped and populated up front (see Allocate).
constexpr size_t kPrefaultBytes = size_t{1} << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const CpuBackendOptions& options) {
  if (options.num_threads < 1 || options.num_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CpuBackend: num_threads %d not in [1, 1024]", options.num_threads));
  }
  // At least one 48 x 32 panel pair (gemm_avx512.cc); whole cache lines per thread.
  const size_t scratch_floats = (std::max<size_t>(options.gemm_scratch_bytes / sizeof(float), 4096) + 15) / 16 * 16;
  const cpu::SimdLevel level = std::min(options.max_simd, cpu::DetectedCpuFeatures().level());
  const char* blas_core = cpu::ConfigureOpenBlas();
  LEOAM_LOG(DEBUG, "CPU backend: %d threads, %s kernels, OpenBLAS core %s", options.num_threads,
            cpu::SimdLevelName(level), blas_core);
  return std::unique_ptr<CpuBackend>(new CpuBackend(std::make_unique<ThreadPool>(options.num_threads), level,
                                                    scratch_floats, options.max_matvec_batch));
}

CpuBackend::CpuBackend(std::unique_ptr<ThreadPool> pool, cpu::SimdLevel level, size_t gemm_scratch_floats,
                       int32_t max_matvec_batch)
    : pool_(std::move(pool)), level_(level) {
  gemm_scratch_ = std::make_unique<float[]>(gemm_scratch_floats * pool_->num_threads());
  ctx_.pool = pool_.get();
  ctx_.simd = &cpu::SimdKernelsFor(level);
  ctx_.gemm_scratch = gemm_scratch_.get();
  ctx_.gemm_scratch_floats = gemm_scratch_floats;
  ctx_.max_matvec_batch = std::max(1, max_matvec_batch);
}

CpuBackend::~CpuBackend() = default;

absl::StatusOr<DeviceBuffer> CpuBackend::Allocate(size_t bytes) {
  if (bytes == 0) return DeviceBuffer();
  if (bytes >= kPrefaultBytes) {
    // "Device memory" is resident from the start, as cudaMalloc'd memory is: large buffers (the KV
    // page pool above all) are populated by the kernel at allocation instead of faulting page by
    // page on first write (on this VM a fresh 461 MiB pool made the first decode steps after a
    // prefix restore ~2x slower: every fetched page landed on untouched memory).
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      return absl::ResourceExhaustedError(absl::StrFormat("CpuBackend: cannot map %d bytes", bytes));
    }
    return DeviceBuffer(p, bytes, [bytes](void* ptr) { ::munmap(ptr, bytes); });
  }
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) return absl::ResourceExhaustedError(absl::StrFormat("CpuBackend: cannot allocate %d bytes", bytes));
  return DeviceBuffer(p, bytes, [](void* ptr) { std::free(ptr); });
}

absl::Status CpuBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) std::memmove(dst, src, bytes);
  return absl::OkStatus();
}

absl::StatusOr<const void*> CpuBackend::UploadConstant(const void* host, size_t bytes, bool host_outlives_backend) {
  if (host_outlives_backend || bytes == 0) return host;
  auto copy = std::unique_ptr<char[]>(new (std::nothrow) char[bytes]);
  if (copy == nullptr) return absl::ResourceExhaustedError(absl::StrFormat("CpuBackend: cannot copy %d bytes", bytes));
  std::memcpy(copy.get(), host, bytes);
  constants_.push_back(std::move(copy));
  return static_cast<const void*>(constants_.back().get());
}

absl::Status CpuBackend::Embed(const Matrix& table, const int32_t* ids, int32_t n, float* out) {
  return cpu::Embed(ctx_, table, ids, n, out);
}

absl::Status CpuBackend::RmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps, float* y) {
  return cpu::RmsNorm(ctx_, x, weight, rows, dim, eps, y);
}

absl::Status CpuBackend::MatMul(const float* x, const Matrix& w, int32_t n, float* y) {
  return cpu::MatMul(ctx_, x, w, n, y);
}

absl::Status CpuBackend::AddBias(float* y, const float* bias, int32_t n, int32_t dim) {
  return cpu::AddBias(ctx_, y, bias, n, dim);
}

absl::Status CpuBackend::Add(float* x, const float* y, size_t count) { return cpu::Add(ctx_, x, y, count); }

absl::Status CpuBackend::SwiGlu(const float* gate, const float* up, size_t count, float* out) {
  return cpu::SwiGlu(ctx_, gate, up, count, out);
}

absl::Status CpuBackend::Rope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                              const RopeParams& rope) {
  return cpu::Rope(ctx_, x, positions, n, num_heads, head_dim, rope);
}

absl::Status CpuBackend::Attention(const AttentionParams& params, const float* q, const float* k, const float* v,
                                   float* out, void* workspace) {
  return cpu::Attention(ctx_, params, q, k, v, out, static_cast<float*>(workspace));
}

absl::Status CpuBackend::PagedAttention(const PagedAttentionParams& params, const float* q, const float* k_pages,
                                        const float* v_pages, const int32_t* page_ids, float* out,
                                        void* workspace) {
  return cpu::PagedAttention(ctx_, params, q, k_pages, v_pages, page_ids, out, static_cast<float*>(workspace));
}

}  // namespace leoam::kernels
