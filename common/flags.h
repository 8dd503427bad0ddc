// Command-line parsing for LeoAM's binaries: Abseil flags, written with dashes or underscores.
//
// Abseil only knows `--max_tokens`; our documentation and users write `--max-tokens`. This rewrites
// dashes in flag names (not in values) to underscores, then parses. `--help` lists the flags with
// underscores; both spellings work everywhere.
#pragma once

#include <vector>

namespace leoam {

// Sets the usage message, normalizes flag names and parses; returns the positional arguments
// (argv[0] first), as absl::ParseCommandLine does. Exits on --help or an unknown flag, like Abseil.
std::vector<char*> ParseFlags(int argc, char** argv, const char* usage);

}  // namespace leoam
