#include <cstdio>
#include <queue>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "compute/tokenizer/encoders.h"
#include "compute/tokenizer/unicode.h"

namespace leoam::tokenizer_internal {
namespace {

struct Symbol {
  int prev, next;
  const char* text;
  size_t n;
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
};

// Highest score first; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  explicit SpmSession(const Vocab& vocab) : vocab_(vocab) {}

  void Encode(std::string_view text, std::vector<TokenId>* out) {
    // One symbol per UTF-8 character (by lead byte, as llama.cpp does).
    size_t offs = 0;
    while (offs < text.size()) {
      const size_t len = std::min(unicode::Utf8SequenceLength(text[offs]), text.size() - offs);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, text.data() + offs, len});
      offs += len;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) TryAddBigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram b = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[b.left];
      Symbol& right = symbols_[b.right];
      if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;  // stale
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = b.left;
      TryAddBigram(left.prev, b.left);
      TryAddBigram(b.left, left.next);
    }
    if (symbols_.empty()) return;
    for (int i = 0; i != -1; i = symbols_[i].next) Resegment(symbols_[i], out);
  }

 private:
  void TryAddBigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string_view text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
    const TokenId id = vocab_.Find(text);
    if (id < 0) return;
    queue_.push({left, right, vocab_.score(id), text.size()});
    rev_merge_[text] = {left, right};
  }

  void Resegment(const Symbol& symbol, std::vector<TokenId>* out) {
    const std::string_view text(symbol.text, symbol.n);
    const TokenId id = vocab_.Find(text);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
    auto it = rev_merge_.find(text);
    if (it == rev_merge_.end()) {
      for (char c : text) {
        const TokenId byte_id = ByteToken(static_cast<uint8_t>(c));
        if (byte_id >= 0) out->push_back(byte_id);  // no byte token and no unk: dropped
      }
      return;
    }
    const auto [l, r] = it->second;
    Resegment(symbols_[l], out);
    Resegment(symbols_[r], out);
  }

  // <0xXX>, else the byte as a one-character token, else unk.
  TokenId ByteToken(uint8_t byte) const {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", byte);
    TokenId id = vocab_.Find(hex);
    if (id < 0) id = vocab_.Find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
    return id >= 0 ? id : vocab_.unk();
  }

  const Vocab& vocab_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
  absl::flat_hash_map<std::string_view, std::pair<int, int>> rev_merge_;
};

}  // namespace

void EncodeSpm(const Vocab& vocab, std::string_view text, std::vector<TokenId>* out) {
  SpmSession session(vocab);
  session.Encode(text, out);
}

}  // namespace leoam::tokenizer_internal
