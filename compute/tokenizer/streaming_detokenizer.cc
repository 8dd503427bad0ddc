#include "compute/tokenizer/tokenizer.h"
#include "compute/tokenizer/unicode.h"

namespace leoam {

std::string StreamingDetokenizer::Push(TokenId id) {
  std::string piece = tokenizer_.TokenToPiece(id);
  // At the start of a text the first visible piece loses its dummy-prefix space.
  if (first_ && !piece.empty()) {
    if (tokenizer_.adds_space_prefix() && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  const size_t hold = unicode::IncompleteUtf8Suffix(pending_);
  std::string ready = unicode::SanitizeUtf8(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDetokenizer::Flush() {
  std::string rest = unicode::SanitizeUtf8(pending_);
  pending_.clear();
  return rest;
}

}  // namespace leoam
