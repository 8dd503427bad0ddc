#include "compute/tokenizer/tokenizer.h"

#include <utility>

#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "compute/tokenizer/encoders.h"
#include "compute/tokenizer/regex.h"
#include "compute/tokenizer/tokenizer_config.h"
#include "compute/tokenizer/vocab.h"

namespace leoam {
namespace {

using tokenizer_internal::Fragment;
using tokenizer_internal::SplitRegex;
using tokenizer_internal::Vocab;
using tokenizer_internal::VocabKind;

class VocabTokenizer final : public Tokenizer {
 public:
  VocabTokenizer(Vocab vocab, std::vector<SplitRegex> regexes)
      : vocab_(std::move(vocab)), regexes_(std::move(regexes)) {}

  std::vector<TokenId> Encode(std::string_view text, const EncodeOptions& options) const override {
    std::vector<TokenId> out;
    const std::vector<Fragment> fragments = vocab_.Partition(text, options.parse_special);
    if (options.add_bos && vocab_.add_bos()) out.push_back(vocab_.bos());
    // SPM: a dummy-prefix space goes before the text at the start and after every special token.
    bool prev_special = true;
    for (const Fragment& f : fragments) {
      if (f.is_token) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      const std::string_view raw = text.substr(f.offset, f.length);
      if (vocab_.kind() == VocabKind::kSpm) {
        std::string escaped = (vocab_.add_space_prefix() && prev_special) ? " " : "";
        escaped.append(raw);
        escaped = absl::StrReplaceAll(escaped, {{" ", "\xE2\x96\x81"}});
        tokenizer_internal::EncodeSpm(vocab_, escaped, &out);
      } else {
        tokenizer_internal::EncodeBpe(vocab_, regexes_, raw, &out);
      }
      prev_special = false;
    }
    if (options.add_eos && vocab_.add_eos()) out.push_back(vocab_.eos());
    return out;
  }

  std::string TokenToPiece(TokenId id, bool show_special) const override { return vocab_.Piece(id, show_special); }

  std::string Decode(const std::vector<TokenId>& ids, bool show_special) const override {
    return vocab_.Detokenize(ids, show_special);
  }

  int32_t vocab_size() const override { return vocab_.size(); }
  TokenId bos_id() const override { return vocab_.bos(); }
  TokenId eos_id() const override { return vocab_.eos(); }
  bool IsEndOfGeneration(TokenId id) const override { return vocab_.IsEog(id); }
  TokenType token_type(TokenId id) const override {
    return vocab_.Valid(id) ? vocab_.type(id) : TokenType::kUndefined;
  }
  std::string_view token_text(TokenId id) const override {
    return vocab_.Valid(id) ? std::string_view(vocab_.text(id)) : std::string_view();
  }
  bool adds_bos() const override { return vocab_.add_bos(); }
  bool adds_space_prefix() const override { return vocab_.add_space_prefix(); }

 private:
  Vocab vocab_;
  std::vector<SplitRegex> regexes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> NewTokenizer(const TokenizerConfig& config) {
  ASSIGN_OR_RETURN(Vocab vocab, Vocab::Create(config));
  std::vector<SplitRegex> regexes;
  if (vocab.kind() == VocabKind::kBpe) {
    for (const std::string& pattern : vocab.pre().regexes) {
      ASSIGN_OR_RETURN(SplitRegex re, SplitRegex::Compile(pattern));
      regexes.push_back(std::move(re));
    }
  }
  return std::make_unique<VocabTokenizer>(std::move(vocab), std::move(regexes));
}

}  // namespace leoam
