// A realistic long prompt for engine tests: BOS plus tokens sampled from the model itself (seeded).
#pragma once

#include <cstdint>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/llama_model.h"
#include "gtest/gtest.h"

namespace leoam::testing {

// BOS plus up to `n` sampled tokens (fewer if the model ends its text first; callers that need the
// exact length assert it).
inline std::vector<int32_t> SampledPrompt(LlamaModel& model, int32_t n, uint64_t seed) {
  GenerateOptions options;
  options.max_tokens = n;
  options.sampling.temperature = 1.0f;
  options.sampling.seed = seed;
  const std::vector<int32_t> bos = {1};
  auto sampled = Generate(model, nullptr, bos, options);
  EXPECT_TRUE(sampled.ok()) << sampled.status();
  std::vector<int32_t> prompt = bos;
  if (sampled.ok()) prompt.insert(prompt.end(), sampled->tokens.begin(), sampled->tokens.end());
  return prompt;
}

}  // namespace leoam::testing
