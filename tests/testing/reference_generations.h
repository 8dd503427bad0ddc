// Reads ../shared/models/stories260K.greedy.jsonl: one JSON object per line with prompt (string),
// positions, prompt_ids and generated_ids (int arrays). A small purpose-built parser: the file is
// data we know, and the test fails loudly if a field is missing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::testing {

struct ReferenceGeneration {
  std::string prompt;
  int32_t positions = 0;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;
};

absl::StatusOr<std::vector<ReferenceGeneration>> ReadReferenceGenerations(const std::string& path);

}  // namespace leoam::testing
