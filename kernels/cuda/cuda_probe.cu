#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_probe.h"

namespace leoam::kernels {

CudaProbe ProbeCuda() {
  CudaProbe probe;
  probe.built_with_cuda = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    probe.detail = std::string("no usable GPU: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error state
    return probe;
  }
  probe.device_count = count;
  if (count > 0) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) probe.detail = prop.name;
  } else {
    probe.detail = "no GPU found";
  }
  return probe;
}

}  // namespace leoam::kernels
