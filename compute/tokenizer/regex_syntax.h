// Pattern syntax for SplitRegex (see regex.h): match keys, character sets, and the parser
// from pattern text to an AST. Internal to the tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::tokenizer_internal::regex_syntax {

// Keys: what the matcher compares. Code points are their own key; in collapsed mode each
// non-ASCII category class gets one placeholder key above the code point range.
constexpr uint32_t kSymLetter = 0x110000;
constexpr uint32_t kSymNumber = 0x110001;
constexpr uint32_t kSymPunct = 0x110002;
constexpr uint32_t kSymMark = 0x110003;
constexpr uint32_t kSymSymbol = 0x110004;
constexpr uint32_t kSymOther = 0x110005;
constexpr uint32_t kMaxKey = 0x110005;

constexpr int kMaxRepeat = 1024;

// The key the matcher compares for code point `cp`.
uint32_t KeyOf(uint32_t cp, bool collapsed);

// True when the pattern names a category llama.cpp rewrites, which selects collapsed mode.
bool UsesCategories(std::string_view pattern);

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive

// A set of keys: sorted inclusive ranges, optionally negated, with an ASCII bitmap.
class CharSet {
 public:
  CharSet() = default;
  CharSet(Ranges ranges, bool negated) : ranges_(std::move(ranges)), negated_(negated) {
    std::sort(ranges_.begin(), ranges_.end());
    Ranges merged;
    for (const auto& r : ranges_) {
      if (!merged.empty() && r.first <= merged.back().second + 1) {
        merged.back().second = std::max(merged.back().second, r.second);
      } else {
        merged.push_back(r);
      }
    }
    ranges_ = std::move(merged);
    for (uint32_t c = 0; c < 128; ++c) {
      if (SlowContains(c)) ascii_[c >> 6] |= uint64_t{1} << (c & 63);
    }
  }

  bool Contains(uint32_t key) const {
    if (key < 128) return (ascii_[key >> 6] >> (key & 63)) & 1;
    return SlowContains(key);
  }

 private:
  bool SlowContains(uint32_t key) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), key,
                               [](uint32_t k, const std::pair<uint32_t, uint32_t>& r) { return k < r.first; });
    const bool in = it != ranges_.begin() && key <= (it - 1)->second;
    return in != negated_;
  }

  Ranges ranges_;
  bool negated_ = false;
  std::array<uint64_t, 2> ascii_{};
};

struct Node {
  enum Kind { kSet, kCat, kAlt, kRepeat, kLook, kBegin, kEnd } kind;
  int set = -1;
  std::vector<std::unique_ptr<Node>> kids;
  int min = 0, max = 0;  // kRepeat; max < 0: unbounded
  bool greedy = true;
  bool negate = false;  // kLook

  explicit Node(Kind k) : kind(k) {}
};

// Parses `pattern` (UTF-8) into an AST whose sets are appended to `sets`. INVALID_ARGUMENT for
// syntax errors, UNIMPLEMENTED for constructs the engine does not have.
absl::StatusOr<std::unique_ptr<Node>> ParsePattern(std::string_view pattern, bool collapsed,
                                                   std::vector<CharSet>* sets);

}  // namespace leoam::tokenizer_internal::regex_syntax
