// Byte sizes as users write them on command lines: "4096", "64MiB", "2G".
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace leoam {

// An integer with an optional B, KiB, MiB, GiB, TiB (or K, M, G, T) suffix, surrounding spaces
// ignored. Negative, malformed or overflowing sizes are INVALID_ARGUMENT.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);

}  // namespace leoam
