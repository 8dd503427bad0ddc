// CudaBackend: the Backend on one NVIDIA GPU. Ops are enqueued on the backend's compute stream;
// results reach the host through CopyToHost (which synchronizes). Weights are uploaded once
// (UploadConstant copies them to device memory).
//
// MatMul: batches of up to kMaxGemvBatch rows (decode) run a GEMV that streams each weight row once
// in its stored type (Q8_0 decoded in registers, no extra copy); larger batches (prefill) run cuBLAS
// with fp16/bf16 inputs and fp32 accumulation: activations are rounded to the weight's 16-bit type,
// fp32 weights use SGEMM, and Q8_0 weights are dequantized to fp16 on the fly, a block of rows at a
// time into backend-owned scratch (dequantizing at load would double their memory; prefill is
// compute-bound, so the extra pass costs little there, and decode never takes this path).
//
// KV pages reach the device through CopyToDeviceAsync on a second stream: from the registered
// (page-locked) kvstore arena that is DMA overlapping the compute stream's ops; WaitForCopies
// makes the compute stream wait on an event, not the host.
//
// Attention and PagedAttention share one flash-decoding kernel (attention.cu) whose split-K
// partials live in backend-owned scratch: the `workspace` argument of those ops (sized for the CPU)
// is not used. Every scratch buffer is allocated once, at Create; ops allocate nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_resources.h"

namespace leoam::kernels {

struct CudaBackendOptions {
  int device = 0;  // CUDA device ordinal. Default 0.
  // GEMM scratch (16-bit activations, dequantized Q8_0 row blocks). Default 256 MiB.
  size_t gemm_scratch_bytes = size_t{256} << 20;
  // Split-K partial results of attention. Default 64 MiB.
  size_t attention_scratch_bytes = size_t{64} << 20;
};

class CudaBackend final : public Backend {
 public:
  // UNAVAILABLE when there is no usable GPU.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const CudaBackendOptions& options = {});
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  const std::string& device_name() const { return device_name_; }
  int32_t sm_count() const { return sm_count_; }
  cudaStream_t compute_stream() const { return stream_.get(); }

  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) override;
  absl::Status Synchronize() override;
  absl::StatusOr<const void*> UploadConstant(const void* host, size_t bytes, bool host_outlives_backend) override;
  absl::Status RegisterHostMemory(void* host, size_t bytes) override;
  absl::Status UnregisterHostMemory(void* host) override;
  absl::Status CopyToDeviceAsync(void* dst, const void* src, size_t bytes) override;
  absl::Status WaitForCopies() override;
  absl::Status SynchronizeCopies() override;

  absl::Status Embed(const Matrix& table, const int32_t* ids, int32_t n, float* out) override;
  absl::Status RmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps, float* y) override;
  absl::Status MatMul(const float* x, const Matrix& w, int32_t n, float* y) override;
  absl::Status MatMulMany(const float* x, std::span<const Matrix> w, int32_t n, std::span<float* const> y) override;
  absl::Status AddBias(float* y, const float* bias, int32_t n, int32_t dim) override;
  absl::Status Add(float* x, const float* y, size_t count) override;
  absl::Status SwiGlu(const float* gate, const float* up, size_t count, float* out) override;
  absl::Status Rope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                    const RopeParams& rope) override;
  absl::Status Attention(const AttentionParams& params, const float* q, const float* k, const float* v, float* out,
                         void* workspace) override;
  absl::Status PagedAttention(const PagedAttentionParams& params, const float* q, const float* k_pages,
                              const float* v_pages, const int32_t* page_ids, float* out, void* workspace) override;
  absl::Status DecodeAttentionBatch(const AttentionParams& params, std::span<const DecodeRows> items, const float* q,
                                    float* out, void* workspace) override;
  absl::Status ScatterRows(std::span<float* const> k_dst, std::span<float* const> v_dst, const float* k,
                           const float* v, int32_t row_floats) override;

 private:
  CudaBackend() = default;
  // Waits for the compute stream, then reports errors kernels flagged on the device (bad token ids).
  absl::Status SyncAndCheck();
  absl::Status GemmHalf(const float* x, const Matrix& w, int32_t n, float* y);
  // The streaming decode kernel on `p` when it takes it (false: the caller uses the general kernel).
  absl::StatusOr<bool> TryDecodeAttention(const cuda::DecodeAttentionProblem& p, const float* q, float* out);

  int device_ = 0;
  std::string device_name_;
  int32_t sm_count_ = 0;
  cuda::Stream stream_;       // ops, and the synchronous copies
  cuda::Stream copy_stream_;  // CopyToDeviceAsync: DMA that overlaps the ops
  cuda::Event copies_done_;   // recorded on copy_stream_ by WaitForCopies
  std::vector<cuda::HostRegistration> registrations_;
  cuda::CublasHandle cublas_;
  cuda::DeviceMemory gemm_scratch_;
  cuda::DeviceMemory attention_scratch_;
  cuda::DeviceMemory error_flags_;  // int32[2]: Embed's bad-id flag and id
  std::vector<cuda::DeviceMemory> constants_;
};

}  // namespace leoam::kernels
