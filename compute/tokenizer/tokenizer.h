// Tokenizer: text <-> token ids from a GGUF file's tokenizer.ggml.* metadata.
//
// Two families: SentencePiece-style ("llama": score-driven merges, byte fallback, "▁" for spaces)
// and byte-level BPE ("gpt2": rank-driven merges over the GPT-2 byte-to-unicode alphabet, after a
// pre-tokenizer regex chosen by tokenizer.ggml.pre). Behaviour follows llama.cpp's
// (src/llama-vocab.cpp), so ids match its test vectors. Tokenizers are immutable after
// construction and safe to use from many threads. To build one from plain vectors instead of a
// GGUF file, see tokenizer_config.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/gguf/gguf_file.h"

namespace leoam {

using TokenId = int32_t;

// Token attribute from tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

struct EncodeOptions {
  // Prepend BOS when the model asks for it (tokenizer.ggml.add_bos_token; when absent, true for
  // "llama" and for the llama3/tekken/chameleon pre-types, false for other "gpt2"). Set false to
  // never add it.
  bool add_bos = true;
  // Append EOS when the model asks for it (tokenizer.ggml.add_eos_token, default false). Set
  // false to never add it.
  bool add_eos = true;
  // Recognize control token texts (e.g. "<|im_start|>") in the input and emit their ids.
  // Default false: such text is tokenized as ordinary text. (User-defined tokens are always
  // recognized, as in llama.cpp.)
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Builds the tokenizer named by tokenizer.ggml.model ("llama" or "gpt2"). Fails with
  // INVALID_ARGUMENT naming the key when metadata is missing or inconsistent, and UNIMPLEMENTED
  // for other models or an unknown tokenizer.ggml.pre.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const gguf::GgufFile& file);

  virtual ~Tokenizer() = default;

  virtual std::vector<TokenId> Encode(std::string_view text, const EncodeOptions& options) const = 0;

  // Raw bytes of one token as it appears in text (byte tokens decoded, "▁" -> " " for SPM,
  // byte-level alphabet undone for BPE). Control tokens give "" unless `show_special`.
  virtual std::string TokenToPiece(TokenId id, bool show_special = false) const = 0;

  // Concatenated pieces, as llama.cpp's detokenize: for SPM the leading space of the first
  // piece is dropped when the tokenizer adds a dummy prefix (a leading BOS piece uses this up);
  // BPE pre-types that ask for it get the clean-up of spaces before punctuation (" ," -> ",").
  virtual std::string Decode(const std::vector<TokenId>& ids, bool show_special = false) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual TokenId bos_id() const = 0;   // -1 if none
  virtual TokenId eos_id() const = 0;   // -1 if none
  // End-of-generation tokens (eos, eot, eom, and control tokens such as <|im_end|>, <|eot_id|>).
  virtual bool IsEndOfGeneration(TokenId id) const = 0;
  virtual TokenType token_type(TokenId id) const = 0;
  virtual std::string_view token_text(TokenId id) const = 0;  // vocabulary entry as stored
  virtual bool adds_bos() const = 0;
  // Whether Encode puts a dummy-prefix space before the text (SPM; Decode drops it again).
  virtual bool adds_space_prefix() const = 0;
};

// Turns a stream of token ids into text, emitting only complete UTF-8 sequences: a character
// split across byte tokens is held back until its last byte arrives; bytes that can never form a
// character come out as U+FFFD. Control tokens give "". With `at_text_start`, the pieces add up
// to Decode(ids) for valid UTF-8, except that BPE's clean-up of spaces before punctuation is not
// applied and a leading BOS is skipped over (see below).
class StreamingDetokenizer {
 public:
  // `at_text_start`: nothing was printed before the pushed ids, so the first non-empty piece
  // loses its SPM dummy-prefix space (as Decode does for the first piece; unlike Decode, a
  // leading BOS does not use this up, so [BOS, "▁Once"] streams as "Once"). Default false: the
  // ids continue a prompt that was already shown, and every piece comes out whole (a generated
  // " and" after "The cat" keeps its space).
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start = false)
      : tokenizer_(tokenizer), first_(at_text_start) {}
  // Returns the newly completed text (possibly empty).
  std::string Push(TokenId id);
  // Returns what is held back (invalid bytes replaced by U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_;  // no text emitted yet at the start of a text: drop the next piece's dummy space
};

}  // namespace leoam
