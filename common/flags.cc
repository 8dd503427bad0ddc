#include "common/flags.h"

#include <algorithm>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace leoam {

std::vector<char*> ParseFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  // --help lists our flags (Abseil would only list those of a file named like the binary, and
  // "leoam-run" never matches "leoam_run.cc"); Abseil's own flags stay under --helpfull.
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view path) { return !absl::StrContains(path, "absl/"); };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
  // Rewritten arguments must outlive parsing; Abseil copies what it keeps.
  static std::vector<std::string> storage;
  storage.assign(argv, argv + argc);
  bool positional_only = false;
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& arg = storage[i];
    if (positional_only || arg.size() < 3 || arg[0] != '-') continue;
    if (arg == "--") {
      positional_only = true;
      continue;
    }
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t end = arg.find('=');
    for (size_t j = start; j < std::min(end, arg.size()); ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
  }
  std::vector<char*> args;
  for (std::string& s : storage) args.push_back(s.data());
  return absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

}  // namespace leoam
