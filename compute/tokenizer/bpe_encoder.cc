#include <queue>
#include <string>

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
  int rank;
  size_t size;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class BpeSession {
 public:
  explicit BpeSession(const Vocab& vocab) : vocab_(vocab) {}

  void EncodeWord(const std::string& word, std::vector<TokenId>* out) {
    symbols_.clear();
    queue_ = {};
    if (vocab_.ignore_merges() && vocab_.Find(word) >= 0) {
      symbols_.push_back({-1, -1, word.data(), word.size()});
    } else {
      size_t offset = 0;
      while (offset < word.size()) {
        const size_t len = std::min(word.size() - offset, unicode::Utf8SequenceLength(word[offset]));
        const int index = static_cast<int>(symbols_.size());
        symbols_.push_back({index - 1, offset + len == word.size() ? -1 : index + 1, word.data() + offset, len});
        offset += len;
      }
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) AddBigram(i - 1, i);
    while (!queue_.empty()) {
      const Bigram b = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[b.left];
      Symbol& right = symbols_[b.right];
      // Outdated when either side changed since the pair was queued. (llama.cpp compares the
      // concatenated text; both sides start at fixed offsets, so comparing sizes is the same.)
      if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = b.left;
      AddBigram(left.prev, b.left);
      AddBigram(b.left, left.next);
    }
    for (const Symbol& s : symbols_) {
      if (s.n == 0) continue;
      const std::string_view text(s.text, s.n);
      const TokenId id = vocab_.Find(text);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      // No token for the merged symbol: fall back to single-byte entries (present only for
      // ASCII in a byte-level vocabulary; the rest is dropped, as in llama.cpp).
      for (char c : text) {
        const TokenId byte_id = vocab_.Find(std::string_view(&c, 1));
        if (byte_id >= 0) out->push_back(byte_id);
      }
    }
  }

 private:
  void AddBigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const Symbol& l = symbols_[left];
    const Symbol& r = symbols_[right];
    const int rank = vocab_.MergeRank({l.text, l.n}, {r.text, r.n}, &scratch_);
    if (rank < 0) return;
    queue_.push({left, right, rank, l.n + r.n});
  }

  const Vocab& vocab_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
  std::string scratch_;
};

}  // namespace

std::vector<std::string> PreTokenize(const std::vector<SplitRegex>& regexes, std::string_view text) {
  const std::vector<uint32_t> cps = unicode::DecodeUtf8(text);
  std::vector<size_t> lengths = {cps.size()};
  for (const SplitRegex& re : regexes) lengths = re.Split(cps, lengths);

  std::vector<std::string> words;
  words.reserve(lengths.size());
  size_t start = 0;
  std::string utf8;
  for (size_t len : lengths) {
    utf8.clear();
    for (size_t i = start; i < start + len; ++i) unicode::AppendUtf8(cps[i], &utf8);
    std::string word;
    word.reserve(utf8.size() * 2);
    for (unsigned char c : utf8) word += unicode::ByteToUnicodeUtf8(c);
    words.push_back(std::move(word));
    start += len;
  }
  return words;
}

void EncodeBpe(const Vocab& vocab, const std::vector<SplitRegex>& regexes, std::string_view text,
               std::vector<TokenId>* out) {
  BpeSession session(vocab);
  for (const std::string& word : PreTokenize(regexes, text)) session.EncodeWord(word, out);
}

}  // namespace leoam::tokenizer_internal
