// GgufParser (internal to compute/gguf): validates and parses the bytes of a mapped GGUF file
// into a GgufFile. Every read is bounds-checked; errors are INVALID_ARGUMENT "<path>: <problem>".
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "compute/gguf/gguf_file.h"

namespace leoam::gguf {

class GgufParser {
 public:
  // Parses file->base_[0, file->size_) and fills the metadata, tensor table and alignment.
  static absl::Status Parse(GgufFile& file);
};

}  // namespace leoam::gguf
