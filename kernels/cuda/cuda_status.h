// CUDA and cuBLAS errors as absl::Status: every CUDA call of the backend goes through these, so a
// failure (out of memory, launch error, lost device) comes back as a status, never an abort.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string_view>

#include "absl/status/status.h"

namespace leoam::kernels::cuda {

// OK for cudaSuccess; RESOURCE_EXHAUSTED for allocation failures; INTERNAL otherwise. `what` names
// the call. Clears the (non-sticky) CUDA error state.
absl::Status CudaStatus(cudaError_t error, std::string_view what);
absl::Status CublasStatus(cublasStatus_t status, std::string_view what);

}  // namespace leoam::kernels::cuda

#define LEOAM_CUDA_RETURN_IF_ERROR(expr)                                                     \
  do {                                                                                      \
    if (absl::Status leoam_cuda_status_ = ::leoam::kernels::cuda::CudaStatus((expr), #expr); \
        !leoam_cuda_status_.ok())                                                           \
      return leoam_cuda_status_;                                                            \
  } while (0)

#define LEOAM_CUBLAS_RETURN_IF_ERROR(expr)                                                     \
  do {                                                                                        \
    if (absl::Status leoam_cuda_status_ = ::leoam::kernels::cuda::CublasStatus((expr), #expr); \
        !leoam_cuda_status_.ok())                                                             \
      return leoam_cuda_status_;                                                              \
  } while (0)
