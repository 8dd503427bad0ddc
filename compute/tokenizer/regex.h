// SplitRegex: the small regex engine behind the BPE pre-tokenizers.
//
// std::regex cannot match Unicode categories, so llama.cpp runs its pre-tokenizer patterns
// through std::regex after "collapsing" every non-ASCII code point to one placeholder per
// category. This engine reproduces exactly what that produces, with code points as input:
//
//  * A pattern that names a category (\p{L} \p{N} \p{P} \p{S} \p{M}, or \p{Lu} \p{Ll} \p{Lt}
//    \p{Lm} \p{Lo}, which llama.cpp treats as \p{L}) runs in "collapsed" mode: a non-ASCII
//    code point matches only through its category class (or \s when it is White_Space), and
//    ASCII characters keep their own identity. The ASCII members of each category are the ones
//    llama.cpp lists (note that \p{S} does not contain '~' there). Non-ASCII literals are then
//    rejected, as in llama.cpp.
//  * Any other pattern runs on code points directly; non-ASCII White_Space is seen as \v.
//
// Syntax (ECMAScript subset): literals, escapes (\s \S \d \D \w \W \r \n \t \v \f, escaped
// punctuation, \p{..}), classes [...] with ranges and negation, . , groups ( ) (?: ), lookahead
// (?= ) (?! ), anchors ^ $, quantifiers ? * + {n} {n,} {n,m} (greedy or lazy), alternation.
// Matching is backtracking with leftmost-first (ECMAScript) priorities; a visited-state memo
// kicks in on pathological inputs so a search stays polynomial.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::tokenizer_internal {

class SplitRegex {
 public:
  static absl::StatusOr<SplitRegex> Compile(std::string_view pattern);

  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;
  ~SplitRegex();

  // Refines a split of `cps`: `lengths` partitions cps into fragments; each fragment is cut
  // into its successive matches and the unmatched gaps between them (as llama.cpp's
  // unicode_regex_split_stl does). Matching never looks outside the fragment.
  std::vector<size_t> Split(const std::vector<uint32_t>& cps, const std::vector<size_t>& lengths) const;

  // First match in cps[begin, end) starting at or after `from`; returns false if none.
  // Exposed for tests.
  bool Search(const std::vector<uint32_t>& cps, size_t begin, size_t end, size_t from, size_t* match_begin,
              size_t* match_end) const;

  const std::string& pattern() const;
  bool collapsed() const;

  struct Program;

 private:
  explicit SplitRegex(std::unique_ptr<Program> program);
  std::unique_ptr<Program> program_;
};

}  // namespace leoam::tokenizer_internal
