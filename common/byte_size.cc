#include "common/byte_size.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace leoam {

absl::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()));
  static constexpr std::pair<absl::string_view, int64_t> kSuffixes[] = {
      {"TiB", int64_t{1} << 40}, {"GiB", int64_t{1} << 30}, {"MiB", int64_t{1} << 20}, {"KiB", int64_t{1} << 10},
      {"T", int64_t{1} << 40},   {"G", int64_t{1} << 30},   {"M", int64_t{1} << 20},   {"K", int64_t{1} << 10},
      {"B", 1}};
  int64_t unit = 1;
  absl::string_view digits = t;
  for (const auto& [suffix, scale] : kSuffixes) {
    if (absl::EndsWith(t, suffix)) {
      unit = scale;
      digits = t.substr(0, t.size() - suffix.size());
      break;
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value < 0 || value > std::numeric_limits<int64_t>::max() / unit) {
    return absl::InvalidArgumentError(absl::StrCat("byte size '", std::string(t),
                                                   "': give a non-negative integer with an optional suffix, e.g. 64MiB"));
  }
  return value * unit;
}

}  // namespace leoam
