// A small two-layer GQA model shape for engine unit tests that drive a KV sequence directly.
#pragma once

#include "compute/model/model_config.h"

namespace leoam::testing {

// 2 layers, 4 query heads over 2 KV heads, head_dim 16.
inline ModelConfig TwoLayerConfig() {
  ModelConfig c;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  return c;
}

}  // namespace leoam::testing
