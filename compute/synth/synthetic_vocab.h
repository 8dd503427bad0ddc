// Synthetic tokenizer vocabularies written into synthetic GGUF files, in the two forms LeoAM
// reads: SentencePiece-style ("llama": <unk> <s> </s>, 256 byte tokens, "▁"-prefixed pieces with
// scores) and GPT-2 byte-level BPE ("gpt2": byte-to-unicode tokens, merged tokens with matching
// merges, ChatML control tokens). Pieces are common English words and their prefixes, then
// systematic letter strings, so real text tokenizes into multi-character pieces.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compute/gguf/gguf_writer.h"

namespace leoam::synth {

// llama.cpp token types (llama_token_type).
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct SyntheticVocab {
  std::string model;  // tokenizer.ggml.model: "llama" or "gpt2"
  std::vector<std::string> tokens;
  std::vector<float> scores;            // llama only
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;      // gpt2 only: "left right", in rank order
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false;
  std::string chat_template;            // gpt2 (ChatML) only
};

// Exactly `vocab` tokens; vocab must be at least 3 + 256 + 95 (llama) / 256 + 3 + 1 (gpt2).
SyntheticVocab MakeSpmVocab(int vocab);
SyntheticVocab MakeGpt2Vocab(int vocab);

// GPT-2's byte-to-unicode map: the UTF-8 string standing for byte b in byte-level BPE tokens.
std::string ByteToUnicode(uint8_t b);

// Writes the tokenizer.* keys (model, pre for gpt2 = "qwen2", tokens, scores, token_type, merges,
// special ids, add_bos_token/add_eos_token, chat_template).
void AddVocabMetadata(const SyntheticVocab& vocab, gguf::GgufWriter& writer);

}  // namespace leoam::synth
