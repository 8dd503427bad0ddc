#include "kernels/cuda/cuda_resources.h"

#include "kernels/cuda/cuda_status.h"

namespace leoam::kernels::cuda {

absl::StatusOr<DeviceMemory> DeviceMemory::Create(size_t bytes) {
  DeviceMemory memory;
  void* p = nullptr;
  if (bytes > 0) LEOAM_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, bytes));
  memory.ptr_ = UniqueHandle<void*, DeviceMemoryTraits>(p);
  memory.bytes_ = bytes;
  return memory;
}

absl::StatusOr<PinnedHostMemory> PinnedHostMemory::Create(size_t bytes) {
  PinnedHostMemory memory;
  void* p = nullptr;
  if (bytes > 0) LEOAM_CUDA_RETURN_IF_ERROR(cudaMallocHost(&p, bytes));
  memory.ptr_ = UniqueHandle<void*, PinnedMemoryTraits>(p);
  memory.bytes_ = bytes;
  return memory;
}

absl::StatusOr<HostRegistration> HostRegistration::Create(void* host, size_t bytes) {
  HostRegistration registration;
  if (host == nullptr || bytes == 0) return absl::InvalidArgumentError("HostRegistration: empty range");
  LEOAM_CUDA_RETURN_IF_ERROR(cudaHostRegister(host, bytes, cudaHostRegisterDefault));
  registration.ptr_ = UniqueHandle<void*, HostRegistrationTraits>(host);
  registration.bytes_ = bytes;
  return registration;
}

absl::StatusOr<Stream> CreateStream() {
  cudaStream_t s = nullptr;
  LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

absl::StatusOr<Event> CreateEvent(bool timing) {
  cudaEvent_t e = nullptr;
  LEOAM_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return Event(e);
}

absl::StatusOr<CublasHandle> CreateCublas(cudaStream_t stream) {
  cublasHandle_t h = nullptr;
  LEOAM_CUBLAS_RETURN_IF_ERROR(cublasCreate(&h));
  CublasHandle handle(h);
  LEOAM_CUBLAS_RETURN_IF_ERROR(cublasSetStream(h, stream));
  // Default math: fp32 GEMMs stay IEEE fp32 (TF32 is opt-in), fp16/bf16 GEMMs use tensor cores.
  LEOAM_CUBLAS_RETURN_IF_ERROR(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  return handle;
}

}  // namespace leoam::kernels::cuda
