// Which SIMD paths the CPU kernels may use, detected once at run time. The library is compiled for
// baseline x86-64; the AVX-512 and AVX2 kernels are compiled with function-level target attributes
// (#pragma GCC target) and only called when the CPU reports the features.
#pragma once

namespace leoam::kernels::cpu {

enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2_fma_f16c = false;  // AVX2 + FMA + F16C
  bool avx512 = false;         // AVX-512 F/BW/DQ/VL on top of the above
  SimdLevel level() const {
    return avx512 ? SimdLevel::kAvx512 : (avx2_fma_f16c ? SimdLevel::kAvx2 : SimdLevel::kScalar);
  }
};

// Detected features; LEOAM_SIMD=scalar|avx2|avx512 caps the level (for tests and comparisons).
const CpuFeatures& DetectedCpuFeatures();

const char* SimdLevelName(SimdLevel level);

}  // namespace leoam::kernels::cpu
