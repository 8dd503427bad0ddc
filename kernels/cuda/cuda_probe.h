// Run-time GPU detection. Built with CUDA when the build has it; otherwise reports no GPU.
#pragma once

#include <string>

namespace leoam::kernels {

struct CudaProbe {
  bool built_with_cuda = false;  // this binary contains CUDA code
  int device_count = 0;          // usable GPUs (0 when none, or when the driver is missing)
  std::string detail;            // why none was found, or the first device's name
};

// Never fails: a missing driver or device (cudaGetDeviceCount errors such as 35,
// "insufficient driver", or 100, "no device") means "no GPU".
CudaProbe ProbeCuda();

}  // namespace leoam::kernels
