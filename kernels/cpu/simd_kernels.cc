#include "kernels/cpu/simd_kernels.h"

namespace leoam::kernels::cpu {

const SimdKernels& SimdKernelsFor(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return avx512::kKernels;
    case SimdLevel::kAvx2:
      return avx2::kKernels;
    case SimdLevel::kScalar:
      break;
  }
  return scalar::kKernels;
}

}  // namespace leoam::kernels::cpu
