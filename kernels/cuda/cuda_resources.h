// Move-only RAII owners of CUDA resources (STYLE.md 7): streams, events, device memory, pinned host
// memory, host memory registered for DMA (the kvstore arena), and the cuBLAS handle. Each is made
// by a Create() that returns a status; destructors release and never throw or abort.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"

namespace leoam::kernels::cuda {

// A unique handle: Traits::Release(handle) runs once, when the owner dies or is reassigned.
template <typename Handle, typename Traits>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(Handle handle) : handle_(handle) {}
  UniqueHandle(UniqueHandle&& other) noexcept : handle_(std::exchange(other.handle_, Handle{})) {}
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, Handle{});
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { Reset(); }

  Handle get() const { return handle_; }
  explicit operator bool() const { return handle_ != Handle{}; }
  void Reset() {
    if (handle_ != Handle{}) Traits::Release(handle_);
    handle_ = Handle{};
  }

 private:
  Handle handle_{};
};

struct StreamTraits {
  static void Release(cudaStream_t s) { cudaStreamDestroy(s); }
};
struct EventTraits {
  static void Release(cudaEvent_t e) { cudaEventDestroy(e); }
};
struct DeviceMemoryTraits {
  static void Release(void* p) { cudaFree(p); }
};
struct PinnedMemoryTraits {
  static void Release(void* p) { cudaFreeHost(p); }
};
struct HostRegistrationTraits {
  static void Release(void* p) { cudaHostUnregister(p); }
};
struct CublasTraits {
  static void Release(cublasHandle_t h) { cublasDestroy(h); }
};

using Stream = UniqueHandle<cudaStream_t, StreamTraits>;
using Event = UniqueHandle<cudaEvent_t, EventTraits>;
using CublasHandle = UniqueHandle<cublasHandle_t, CublasTraits>;

// Device memory of a known size.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  static absl::StatusOr<DeviceMemory> Create(size_t bytes);
  void* data() const { return ptr_.get(); }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_.get()); }

 private:
  UniqueHandle<void*, DeviceMemoryTraits> ptr_;
  size_t bytes_ = 0;
};

// Page-locked host memory (cudaMallocHost): copies from it are DMA and can overlap compute.
class PinnedHostMemory {
 public:
  PinnedHostMemory() = default;
  static absl::StatusOr<PinnedHostMemory> Create(size_t bytes);
  void* data() const { return ptr_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  UniqueHandle<void*, PinnedMemoryTraits> ptr_;
  size_t bytes_ = 0;
};

// Existing host memory (e.g. the kvstore arena mapped from /dev/shm) page-locked for DMA for the
// registration's lifetime. The memory must outlive the registration.
class HostRegistration {
 public:
  HostRegistration() = default;
  static absl::StatusOr<HostRegistration> Create(void* host, size_t bytes);
  void* data() const { return ptr_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  UniqueHandle<void*, HostRegistrationTraits> ptr_;
  size_t bytes_ = 0;
};

absl::StatusOr<Stream> CreateStream();              // non-blocking w.r.t. the legacy default stream
absl::StatusOr<Event> CreateEvent(bool timing);     // timing = false is cheaper for pure ordering
absl::StatusOr<CublasHandle> CreateCublas(cudaStream_t stream);

}  // namespace leoam::kernels::cuda
