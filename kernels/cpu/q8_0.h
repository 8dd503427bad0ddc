// The Q8_0 block of GGUF/ggml: 32 weights share one fp16 scale; value = d * qs[i].
#pragma once

#include <cstdint>

namespace leoam::kernels::cpu {

inline constexpr int kQ8Block = 32;

#pragma pack(push, 1)
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQ8Block];
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

}  // namespace leoam::kernels::cpu
