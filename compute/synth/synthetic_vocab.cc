#include "compute/synth/synthetic_vocab.h"

#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"

namespace leoam::synth {
namespace {

// Common English words: their prefixes become pieces first, so ordinary text gets word tokens.
constexpr std::string_view kWords[] = {
    "the", "and", "was", "to", "a", "of", "he", "she", "it", "in", "that", "her", "his", "they", "you", "with",
    "said", "for", "on", "day", "one", "there", "but", "had", "so", "were", "not", "time", "upon", "once", "little",
    "is", "at", "big", "very", "be", "all", "happy", "what", "went", "saw", "play", "mom", "friend", "friends",
    "wanted", "want", "have", "do", "can", "are", "we", "this", "from", "by", "or", "as", "an", "if", "my", "me",
    "up", "out", "about", "who", "get", "which", "go", "when", "make", "like", "no", "just", "him", "know", "take",
    "people", "into", "year", "your", "good", "some", "could", "them", "see", "other", "than", "then", "now",
    "look", "only", "come", "its", "over", "think", "also", "back", "after", "use", "two", "how", "our", "work",
    "first", "well", "way", "even", "new", "because", "any", "these", "give", "most", "us", "tree", "dog", "cat",
    "ball", "red", "blue", "sun", "sky", "house", "girl", "boy", "named", "lily", "tim", "ben", "park", "help",
    "love", "loved", "found", "looked", "asked", "smiled", "felt", "toy", "car", "bird", "fish", "water", "home",
    "together", "learned", "lesson", "always", "never", "again", "world", "model", "data", "system", "memory",
    "cache", "token", "value", "key", "page", "layer", "inference", "context", "long", "short", "fast", "slow",
    "ing", "ed", "er", "ly", "tion", "es", "est", "ment", "ness", "able", "ful", "less", "ous", "ive",
};

// Pieces over a readable alphabet, in creation order: word prefixes (with and without a leading
// space, written as ' '), then systematic strings by length. Every piece of two or more
// characters is (an earlier piece) + (one character), which BPE merges and SPM scores rely on.
class PieceGenerator {
 public:
  explicit PieceGenerator(size_t want) : want_(want) {
    for (std::string_view w : kWords) {
      AddPrefixes(" " + std::string(w));
      AddPrefixes(std::string(w));
      std::string cap(w);
      cap[0] = static_cast<char>(cap[0] - 'a' + 'A');
      AddPrefixes(" " + cap);
    }
    // Systematic fill: for length L, " " + (L-1 letters) then L lowercase letters, then " " + capital.
    for (int len = 2; pieces_.size() < want_ && len <= 8; ++len) {
      EnumerateLetters(len - 1, " ");
      EnumerateLetters(len, "");
      if (len == 2) {
        for (char c = 'A'; c <= 'Z'; ++c) Add(std::string(" ") + c);
      }
    }
  }
  const std::vector<std::string>& pieces() const { return pieces_; }

 private:
  void Add(const std::string& piece) {
    if (pieces_.size() >= want_ || piece.size() < 2) return;
    if (seen_.insert(piece).second) pieces_.push_back(piece);
  }
  void AddPrefixes(const std::string& word) {
    for (size_t n = 2; n <= word.size(); ++n) Add(word.substr(0, n));
  }
  void EnumerateLetters(int n, const std::string& prefix) {
    if (pieces_.size() >= want_) return;
    if (n == 0) {
      Add(prefix);
      return;
    }
    for (char c = 'a'; c <= 'z' && pieces_.size() < want_; ++c) EnumerateLetters(n - 1, prefix + c);
  }

  size_t want_;
  std::vector<std::string> pieces_;
  absl::flat_hash_set<std::string> seen_;
};

std::string ReplaceSpaces(const std::string& s, std::string_view marker) {
  std::string out;
  for (char c : s) {
    if (c == ' ') {
      out.append(marker.data(), marker.size());
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Byte-level BPE form of an ASCII string.
std::string ToByteUnicode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += ByteToUnicode(c);
  return out;
}

constexpr std::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581 "▁"

}  // namespace

std::string ByteToUnicode(uint8_t b) {
  // Printable Latin-1 bytes map to themselves; the other 68 map to U+0100.. in byte order.
  static const std::vector<std::string>* const table = [] {
    auto* t = new std::vector<std::string>(256);
    auto printable = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF); };
    int remapped = 0;
    for (int x = 0; x < 256; ++x) {
      const uint32_t cp = printable(x) ? static_cast<uint32_t>(x) : 256u + static_cast<uint32_t>(remapped++);
      std::string& out = (*t)[x];
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    return t;
  }();
  return (*table)[b];
}

SyntheticVocab MakeSpmVocab(int vocab) {
  SyntheticVocab v;
  v.model = "llama";
  auto add = [&v](std::string token, float score, TokenType type) {
    v.tokens.push_back(std::move(token));
    v.scores.push_back(score);
    v.token_types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0.0f, TokenType::kUnknown);
  add("<s>", 0.0f, TokenType::kControl);
  add("</s>", 0.0f, TokenType::kControl);
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  for (int b = 0; b < 256; ++b) add(absl::StrFormat("<0x%02X>", b), 0.0f, TokenType::kByte);
  // Single characters: "▁" and printable ASCII. Scores only matter for merged pieces (SPM merges
  // the pair whose concatenation has the highest score), so characters score lowest.
  add(std::string(kSpmSpace), -1e6f, TokenType::kNormal);
  for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), -1e6f, TokenType::kNormal);
  const size_t want = static_cast<size_t>(vocab) - v.tokens.size();
  PieceGenerator gen(want);
  for (size_t i = 0; i < gen.pieces().size(); ++i) {
    // Earlier pieces (common words) get higher scores, like a trained SentencePiece model.
    add(ReplaceSpaces(gen.pieces()[i], kSpmSpace), -static_cast<float>(i), TokenType::kNormal);
  }
  // The generator yields hundreds of thousands of pieces, far more than any supported vocab; pad
  // defensively so the size is always exact.
  for (int i = 0; static_cast<int>(v.tokens.size()) < vocab; ++i) {
    add(absl::StrFormat("<unused%d>", i), -1e9f, TokenType::kUnused);
  }
  return v;
}

SyntheticVocab MakeGpt2Vocab(int vocab) {
  SyntheticVocab v;
  v.model = "gpt2";
  // The 256 byte tokens in GPT-2's order: printable bytes first (as bytes_to_unicode lists them),
  // then the remapped ones.
  std::vector<int> order;
  for (int b = '!'; b <= '~'; ++b) order.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) order.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) order.push_back(b);
  for (int b = 0; b < 256; ++b) {
    const bool listed = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (!listed) order.push_back(b);
  }
  for (int b : order) {
    v.tokens.push_back(ByteToUnicode(static_cast<uint8_t>(b)));
    v.token_types.push_back(static_cast<int32_t>(TokenType::kNormal));
  }
  const size_t want = static_cast<size_t>(vocab) - 256 - 3;
  PieceGenerator gen(want);
  for (const std::string& piece : gen.pieces()) {
    const std::string left = ToByteUnicode(piece.substr(0, piece.size() - 1));
    const std::string right = ToByteUnicode(piece.substr(piece.size() - 1));
    v.tokens.push_back(left + right);
    v.token_types.push_back(static_cast<int32_t>(TokenType::kNormal));
    v.merges.push_back(left + " " + right);
  }
  for (int i = 0; v.tokens.size() + 3 < static_cast<size_t>(vocab); ++i) {
    v.tokens.push_back(absl::StrFormat("<|unused_%d|>", i));
    v.token_types.push_back(static_cast<int32_t>(TokenType::kUnused));
  }
  const int32_t endoftext = static_cast<int32_t>(v.tokens.size());
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(special);
    v.token_types.push_back(static_cast<int32_t>(TokenType::kControl));
  }
  v.bos_id = endoftext;  // as in Qwen GGUFs; not added (add_bos_token = false)
  v.pad_id = endoftext;
  v.eos_id = endoftext + 2;  // <|im_end|>: the end of a ChatML turn
  v.add_bos = false;
  v.chat_template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  return v;
}

void AddVocabMetadata(const SyntheticVocab& v, gguf::GgufWriter& w) {
  w.AddString("tokenizer.ggml.model", v.model);
  if (v.model == "gpt2") w.AddString("tokenizer.ggml.pre", "qwen2");
  w.AddStringArray("tokenizer.ggml.tokens", v.tokens);
  if (!v.scores.empty()) w.AddFloat32Array("tokenizer.ggml.scores", v.scores);
  w.AddInt32Array("tokenizer.ggml.token_type", v.token_types);
  if (!v.merges.empty()) w.AddStringArray("tokenizer.ggml.merges", v.merges);
  if (v.bos_id >= 0) w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  if (v.eos_id >= 0) w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  if (v.unk_id >= 0) w.AddUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  if (v.pad_id >= 0) w.AddUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  w.AddBool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.AddBool("tokenizer.ggml.add_eos_token", false);
  if (!v.chat_template.empty()) w.AddString("tokenizer.chat_template", v.chat_template);
}

}  // namespace leoam::synth
