#include "kernels/cpu/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace leoam::kernels::cpu {
namespace {

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  f.avx2_fma_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  f.avx512 = f.avx2_fma_f16c && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
  if (const char* cap = std::getenv("LEOAM_SIMD")) {
    if (std::strcmp(cap, "scalar") == 0) {
      f.avx2_fma_f16c = false;
      f.avx512 = false;
    } else if (std::strcmp(cap, "avx2") == 0) {
      f.avx512 = false;
    }
  }
  return f;
}

}  // namespace

const CpuFeatures& DetectedCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kScalar:
      return "scalar";
  }
  return "unknown";
}

}  // namespace leoam::kernels::cpu
