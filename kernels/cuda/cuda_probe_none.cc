// ProbeCuda for builds without CUDA.
#include "kernels/cuda/cuda_probe.h"

namespace leoam::kernels {

CudaProbe ProbeCuda() { return CudaProbe{false, 0, "this build has no CUDA support (LEOAM_CUDA=OFF)"}; }

}  // namespace leoam::kernels
