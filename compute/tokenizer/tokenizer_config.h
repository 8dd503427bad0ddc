// TokenizerConfig: everything a tokenizer is built from, as plain vectors and values, so the
// algorithms can be constructed (and tested) without a GGUF file. Tokenizer::FromGguf fills it
// from the tokenizer.ggml.* metadata and calls NewTokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/tokenizer/tokenizer.h"

namespace leoam {

struct TokenizerConfig {
  std::string model;  // tokenizer.ggml.model: "llama" (SPM) or "gpt2" (byte-level BPE)
  std::string pre;    // tokenizer.ggml.pre; "" = absent ("default" regexes for BPE)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty: all 0
  std::vector<int32_t> token_types;  // TokenType values; empty: all kNormal
  std::vector<std::string> merges;   // "left right", rank = index (BPE only; required there)

  // Special token ids; unset ones take the model's defaults (SPM: bos 1, eos 2, unk 0; BPE:
  // bos/eos 11). Ids outside the vocabulary are ignored, as llama.cpp does.
  std::optional<int64_t> bos_id, eos_id, eot_id, eom_id, unk_id, sep_id, pad_id;
  std::optional<bool> add_bos;           // default: true for SPM, per pre-type for BPE
  std::optional<bool> add_eos;           // default: false
  std::optional<bool> add_space_prefix;  // default: true for SPM, false for BPE
  std::string model_name;                // general.name (llama.cpp keys a Phi-3 quirk on it)
};

// INVALID_ARGUMENT for inconsistent input (sizes, duplicate tokens, ...), UNIMPLEMENTED for an
// unknown model or pre-type.
absl::StatusOr<std::unique_ptr<Tokenizer>> NewTokenizer(const TokenizerConfig& config);

}  // namespace leoam
