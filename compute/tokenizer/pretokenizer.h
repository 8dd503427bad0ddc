// Pre-tokenizer settings of byte-level BPE vocabularies, keyed by tokenizer.ggml.pre: the
// regexes that cut text into words before merging, and the flags llama.cpp ties to each type.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::tokenizer_internal {

struct PreTokenizerSpec {
  std::string name;                  // canonical pre-type name
  std::vector<std::string> regexes;  // applied in order, each refining the previous split
  bool ignore_merges = false;        // a word that is a whole vocabulary entry skips merging
  bool clean_spaces = true;          // decode drops spaces before punctuation (" ," -> ",")
  std::optional<bool> add_bos;       // default for tokenizer.ggml.add_bos_token
  bool clear_bos = false;            // the type has no BOS unless the file names one
};

// The spec for a tokenizer.ggml.pre value ("" = absent, treated as "default").
// UNIMPLEMENTED: "tokenizer.ggml.pre 'foo' is not supported".
absl::StatusOr<PreTokenizerSpec> PreTokenizerFor(std::string_view pre);

// Every pre-type name PreTokenizerFor accepts (for tests and --help).
std::vector<std::string> SupportedPreTokenizers();

}  // namespace leoam::tokenizer_internal
