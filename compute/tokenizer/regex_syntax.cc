#include "compute/tokenizer/regex_syntax.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "compute/tokenizer/unicode.h"

namespace leoam::tokenizer_internal::regex_syntax {

uint32_t KeyOf(uint32_t cp, bool collapsed) {
  using unicode::CharClass;
  if (cp < 128) return cp;
  if (unicode::IsWhitespace(cp)) return 0x0B;
  if (!collapsed) return cp;
  switch (unicode::ClassOf(cp)) {
    case CharClass::kLetter: return kSymLetter;
    case CharClass::kNumber: return kSymNumber;
    case CharClass::kPunctuation: return kSymPunct;
    case CharClass::kMark: return kSymMark;
    case CharClass::kSymbol: return kSymSymbol;
    default: return kSymOther;
  }
}

bool UsesCategories(std::string_view pattern) {
  static constexpr std::string_view kNames[] = {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}",
                                                "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"};
  for (auto name : kNames) {
    if (pattern.find(name) != std::string_view::npos) return true;
  }
  return false;
}

namespace {

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kSet: return false;
    case Node::kCat:
      for (const auto& k : n.kids) {
        if (!Nullable(*k)) return false;
      }
      return true;
    case Node::kAlt:
      for (const auto& k : n.kids) {
        if (Nullable(*k)) return true;
      }
      return n.kids.empty();
    case Node::kRepeat: return n.min == 0 || Nullable(*n.kids[0]);
    default: return true;
  }
}

// ---------------------------------------------------------------- parser

// The ASCII members of each category in collapsed mode: llama.cpp's k_ucat_map, which (unlike
// Unicode) leaves '~' out of \p{S}.
Ranges AsciiRangesOf(char category) {
  switch (category) {
    case 'N': return {{0x30, 0x39}};
    case 'L': return {{0x41, 0x5A}, {0x61, 0x7A}};
    case 'P':
      return {{0x21, 0x23}, {0x25, 0x2A}, {0x2C, 0x2F}, {0x3A, 0x3B}, {0x3F, 0x40}, {0x5B, 0x5D}, {0x5F, 0x5F},
              {0x7B, 0x7B}, {0x7D, 0x7D}};
    case 'S': return {{0x24, 0x24}, {0x2B, 0x2B}, {0x3C, 0x3E}, {0x5E, 0x5E}, {0x60, 0x60}, {0x7C, 0x7C}};
    default: return {};  // 'M': no ASCII marks
  }
}

uint32_t SymbolOf(char category) {
  switch (category) {
    case 'N': return kSymNumber;
    case 'L': return kSymLetter;
    case 'P': return kSymPunct;
    case 'S': return kSymSymbol;
    default: return kSymMark;
  }
}

// Category names llama.cpp rewrites; the sub-categories of L all mean "letter" there.
char CategoryLetter(std::string_view name) {
  if (name == "N" || name == "P" || name == "S" || name == "M") return name[0];
  if (name == "L" || name == "Lu" || name == "Ll" || name == "Lt" || name == "Lm" || name == "Lo") return 'L';
  return 0;
}

Ranges Complement(const Ranges& in) {
  Ranges sorted = in;
  std::sort(sorted.begin(), sorted.end());
  Ranges out;
  uint32_t next = 0;
  for (const auto& r : sorted) {
    if (r.first > next) out.push_back({next, r.first - 1});
    next = std::max(next, r.second + 1);
  }
  if (next <= kMaxKey) out.push_back({next, kMaxKey});
  return out;
}

const Ranges kSpace = {{0x09, 0x0D}, {0x20, 0x20}};
const Ranges kDigit = {{0x30, 0x39}};
const Ranges kWord = {{0x30, 0x39}, {0x41, 0x5A}, {0x5F, 0x5F}, {0x61, 0x7A}};

class Parser {
 public:
  Parser(std::vector<uint32_t> pattern, bool collapsed, std::vector<CharSet>* sets)
      : p_(std::move(pattern)), collapsed_(collapsed), sets_(sets) {}

  absl::StatusOr<std::unique_ptr<Node>> Parse() {
    ASSIGN_OR_RETURN(auto node, ParseAlt());
    if (i_ != p_.size()) return Error("unbalanced ')'");
    return node;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat("regex: %s at offset %d", what, i_));
  }
  bool AtEnd() const { return i_ >= p_.size(); }
  uint32_t Peek(size_t k = 0) const { return i_ + k < p_.size() ? p_[i_ + k] : 0xFFFFFFFF; }

  int AddSet(Ranges ranges, bool negated) {
    sets_->emplace_back(std::move(ranges), negated);
    return static_cast<int>(sets_->size()) - 1;
  }
  std::unique_ptr<Node> SetNode(Ranges ranges, bool negated) {
    auto n = std::make_unique<Node>(Node::kSet);
    n->set = AddSet(std::move(ranges), negated);
    return n;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseAlt() {
    auto alt = std::make_unique<Node>(Node::kAlt);
    ASSIGN_OR_RETURN(auto first, ParseSeq());
    alt->kids.push_back(std::move(first));
    while (!AtEnd() && Peek() == '|') {
      ++i_;
      ASSIGN_OR_RETURN(auto next, ParseSeq());
      alt->kids.push_back(std::move(next));
    }
    if (alt->kids.size() == 1) return std::move(alt->kids[0]);
    return alt;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseSeq() {
    auto seq = std::make_unique<Node>(Node::kCat);
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      ASSIGN_OR_RETURN(auto atom, ParseAtom());
      ASSIGN_OR_RETURN(atom, ParseQuantifier(std::move(atom)));
      seq->kids.push_back(std::move(atom));
    }
    return seq;
  }

  // Reads {n}, {n,}, {n,m} at i_ (pointing at '{'); false (and i_ unchanged) if not one.
  bool ReadBraces(int* min, int* max) {
    size_t j = i_ + 1;
    auto read_int = [&](int* v) {
      size_t start = j;
      long value = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        value = std::min<long>(value * 10 + (p_[j] - '0'), 1 << 30);
        ++j;
      }
      *v = static_cast<int>(value);
      return j > start;
    };
    if (!read_int(min)) return false;
    *max = *min;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!read_int(max)) *max = -1;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    i_ = j + 1;
    return true;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseQuantifier(std::unique_ptr<Node> atom) {
    if (AtEnd()) return atom;
    int min, max;
    const uint32_t c = Peek();
    if (c == '?') {
      min = 0, max = 1, ++i_;
    } else if (c == '*') {
      min = 0, max = -1, ++i_;
    } else if (c == '+') {
      min = 1, max = -1, ++i_;
    } else if (c == '{' && ReadBraces(&min, &max)) {
      if (max >= 0 && max < min) return Error("bad repeat range");
      if (min > kMaxRepeat || max > kMaxRepeat) return Error("repeat count too large");
    } else {
      return atom;
    }
    if (atom->kind == Node::kBegin || atom->kind == Node::kEnd || atom->kind == Node::kLook) {
      return Error("quantifier on an assertion");
    }
    auto rep = std::make_unique<Node>(Node::kRepeat);
    rep->min = min;
    rep->max = max;
    if (!AtEnd() && Peek() == '?') {
      rep->greedy = false;
      ++i_;
    }
    if (max < 0 && Nullable(*atom)) return Error("unbounded repeat of an expression that can match empty");
    rep->kids.push_back(std::move(atom));
    if (!AtEnd() && (Peek() == '?' || Peek() == '*' || Peek() == '+')) return Error("nested quantifier");
    return rep;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseAtom() {
    const uint32_t c = Peek();
    switch (c) {
      case '(': {
        ++i_;
        bool look = false, negate = false;
        if (Peek() == '?') {
          if (Peek(1) == ':') {
            i_ += 2;
          } else if (Peek(1) == '=' || Peek(1) == '!') {
            look = true;
            negate = Peek(1) == '!';
            i_ += 2;
          } else {
            return Error("unsupported group syntax");
          }
        }
        ASSIGN_OR_RETURN(auto body, ParseAlt());
        if (AtEnd() || Peek() != ')') return Error("missing ')'");
        ++i_;
        if (!look) return body;
        auto n = std::make_unique<Node>(Node::kLook);
        n->negate = negate;
        n->kids.push_back(std::move(body));
        return n;
      }
      case '[': return ParseClass();
      case '.':
        ++i_;
        return SetNode({{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}}, /*negated=*/true);
      case '^': ++i_; return std::make_unique<Node>(Node::kBegin);
      case '$': ++i_; return std::make_unique<Node>(Node::kEnd);
      case '*': case '+': case '?': return Error("nothing to repeat");
      case '\\': {
        ++i_;
        Ranges ranges;
        bool is_char = false;
        RETURN_IF_ERROR(ParseEscape(/*in_class=*/false, &ranges, &is_char));
        return SetNode(std::move(ranges), false);
      }
      default: {
        ++i_;
        RETURN_IF_ERROR(CheckLiteral(c));
        return SetNode({{c, c}}, false);
      }
    }
  }

  absl::Status CheckLiteral(uint32_t c) const {
    if (collapsed_ && c >= 128) {
      return absl::InvalidArgumentError(
          "regex: non-ASCII characters together with Unicode categories are not supported");
    }
    return absl::OkStatus();
  }

  // After a backslash. Produces either a single character (ranges = {{c,c}}) or a set.
  absl::Status ParseEscape(bool in_class, Ranges* ranges, bool* is_char) {
    if (AtEnd()) return Error("trailing backslash");
    const uint32_t c = Peek();
    ++i_;
    *is_char = true;
    switch (c) {
      case 's': *is_char = false, *ranges = kSpace; return absl::OkStatus();
      case 'S': *is_char = false, *ranges = Complement(kSpace); return absl::OkStatus();
      case 'd': *is_char = false, *ranges = kDigit; return absl::OkStatus();
      case 'D': *is_char = false, *ranges = Complement(kDigit); return absl::OkStatus();
      case 'w': *is_char = false, *ranges = kWord; return absl::OkStatus();
      case 'W': *is_char = false, *ranges = Complement(kWord); return absl::OkStatus();
      case 'r': *ranges = {{0x0D, 0x0D}}; return absl::OkStatus();
      case 'n': *ranges = {{0x0A, 0x0A}}; return absl::OkStatus();
      case 't': *ranges = {{0x09, 0x09}}; return absl::OkStatus();
      case 'v': *ranges = {{0x0B, 0x0B}}; return absl::OkStatus();
      case 'f': *ranges = {{0x0C, 0x0C}}; return absl::OkStatus();
      case '0': *ranges = {{0, 0}}; return absl::OkStatus();
      case 'x': case 'u': {
        const int digits = c == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int k = 0; k < digits; ++k, ++i_) {
          const uint32_t h = Peek();
          int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                                                   : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (d < 0) return Error("bad hex escape");
          v = v * 16 + d;
        }
        RETURN_IF_ERROR(CheckLiteral(v));
        *ranges = {{v, v}};
        return absl::OkStatus();
      }
      case 'p': case 'P': {
        if (Peek() != '{') return Error("expected '{' after \\p");
        std::string name;
        ++i_;
        while (!AtEnd() && Peek() != '}') name.push_back(static_cast<char>(p_[i_++]));
        if (AtEnd()) return Error("unterminated \\p{");
        ++i_;
        const char cat = CategoryLetter(name);
        if (cat == 0 || !collapsed_ || c == 'P') {
          return absl::UnimplementedError(absl::StrCat("regex: Unicode property \\", std::string(1, char(c)), "{",
                                                       name, "} is not supported"));
        }
        *is_char = false;
        *ranges = AsciiRangesOf(cat);
        ranges->push_back({SymbolOf(cat), SymbolOf(cat)});
        return absl::OkStatus();
      }
      case 'b': case 'B':
        if (!in_class) return absl::UnimplementedError("regex: word boundaries are not supported");
        if (c == 'b') {
          *ranges = {{0x08, 0x08}};
          return absl::OkStatus();
        }
        [[fallthrough]];
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9')) {
          return Error("unsupported escape");
        }
        RETURN_IF_ERROR(CheckLiteral(c));
        *ranges = {{c, c}};
        return absl::OkStatus();
    }
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseClass() {
    ++i_;  // '['
    bool negated = false;
    if (Peek() == '^') {
      negated = true;
      ++i_;
    }
    Ranges ranges;
    // Reads one class member: a single character (returns true with *c set) or a set.
    // Reads one class member: a single character (returns true with *single set) or a set.
    auto read_member = [&](uint32_t* single, Ranges* set) -> absl::StatusOr<bool> {
      const uint32_t c = Peek();
      ++i_;
      if (c != '\\') {
        RETURN_IF_ERROR(CheckLiteral(c));
        *single = c;
        return true;
      }
      bool is_char = false;
      RETURN_IF_ERROR(ParseEscape(/*in_class=*/true, set, &is_char));
      if (is_char) *single = (*set)[0].first;
      return is_char;
    };
    while (true) {
      if (AtEnd()) return Error("missing ']'");
      if (Peek() == ']') {
        ++i_;
        break;
      }
      uint32_t lo = 0;
      Ranges set;
      ASSIGN_OR_RETURN(bool is_single, read_member(&lo, &set));
      if (!is_single) {
        ranges.insert(ranges.end(), set.begin(), set.end());
        continue;
      }
      if (Peek() == '-' && Peek(1) != ']' && Peek(1) != 0xFFFFFFFF) {
        ++i_;  // '-'
        uint32_t hi = 0;
        Ranges hi_set;
        ASSIGN_OR_RETURN(bool hi_single, read_member(&hi, &hi_set));
        if (!hi_single) return Error("bad class range");
        if (hi < lo) return Error("reversed class range");
        ranges.push_back({lo, hi});
      } else {
        ranges.push_back({lo, lo});
      }
    }
    return SetNode(std::move(ranges), negated);
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
  bool collapsed_;
  std::vector<CharSet>* sets_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> ParsePattern(std::string_view pattern, bool collapsed,
                                                   std::vector<CharSet>* sets) {
  Parser parser(unicode::DecodeUtf8(pattern), collapsed, sets);
  return parser.Parse();
}

}  // namespace leoam::tokenizer_internal::regex_syntax
