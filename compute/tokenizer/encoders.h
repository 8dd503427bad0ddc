// The two merge algorithms, run on one raw-text fragment (special tokens already split out).
#pragma once

#include <string_view>
#include <vector>

#include "compute/tokenizer/regex.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/tokenizer/vocab.h"

namespace leoam::tokenizer_internal {

// SentencePiece-style: `text` has its spaces already replaced by U+2581. Adjacent symbols are
// merged by descending vocabulary score (ties: leftmost first); leftovers become byte tokens
// (<0xXX>) or unk. Mirrors llama.cpp's llm_tokenizer_spm_session.
void EncodeSpm(const Vocab& vocab, std::string_view text, std::vector<TokenId>* out);

// Byte-level BPE: pre-tokenizes `text` with `regexes`, maps each word to the GPT-2 byte
// alphabet and merges by ascending merge rank. Mirrors llama.cpp's llm_tokenizer_bpe_session.
void EncodeBpe(const Vocab& vocab, const std::vector<SplitRegex>& regexes, std::string_view text,
               std::vector<TokenId>* out);

// The pre-tokenizer alone: the byte-encoded words EncodeBpe would merge.
std::vector<std::string> PreTokenize(const std::vector<SplitRegex>& regexes, std::string_view text);

}  // namespace leoam::tokenizer_internal
