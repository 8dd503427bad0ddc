// SplitRegex: the pre-tokenizer regex engine, against splits worked out by hand from the
// ECMAScript semantics llama.cpp gets from std::regex.
#include "compute/tokenizer/regex.h"

#include <string>
#include <vector>

#include "compute/tokenizer/encoders.h"
#include "compute/tokenizer/pretokenizer.h"
#include "compute/tokenizer/unicode.h"
#include "gtest/gtest.h"

namespace leoam::tokenizer_internal {
namespace {

// Splits `text` with `patterns` applied in sequence; returns the pieces as UTF-8.
std::vector<std::string> SplitWith(const std::vector<std::string>& patterns, const std::string& text) {
  const std::vector<uint32_t> cps = unicode::DecodeUtf8(text);
  std::vector<size_t> lengths = {cps.size()};
  for (const std::string& p : patterns) {
    auto re = SplitRegex::Compile(p);
    EXPECT_TRUE(re.ok()) << re.status();
    if (!re.ok()) return {};
    lengths = re->Split(cps, lengths);
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t len : lengths) {
    out.push_back(unicode::EncodeUtf8(cps.data() + start, len));
    start += len;
  }
  return out;
}

using V = std::vector<std::string>;
const std::string kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

TEST(SplitRegex, Gpt2Pattern) {
  EXPECT_EQ(SplitWith({kGpt2}, "Hello world's 123!!  x"), (V{"Hello", " world", "'s", " 123", "!!", " ", " x"}));
  // A lone tab before a word matches nothing and becomes its own piece (a gap).
  EXPECT_EQ(SplitWith({kGpt2}, "a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(SplitWith({kGpt2}, "a   "), (V{"a", "   "}));
  // Non-ASCII letters and numbers by category.
  EXPECT_EQ(SplitWith({kGpt2}, "d\xC3\xA9j\xC3\xA0 \xE2\x85\xA7"), (V{"d\xC3\xA9j\xC3\xA0", " \xE2\x85\xA7"}));
}

TEST(SplitRegex, CollapsedCategoriesFollowLlamaCpp) {
  // llama.cpp's ASCII table for \p{S} lacks '~'.
  EXPECT_EQ(SplitWith({"\\p{S}+"}, "$+~"), (V{"$+", "~"}));
  // \p{Lu} means any letter there.
  EXPECT_EQ(SplitWith({"\\p{Lu}+"}, "abC1"), (V{"abC", "1"}));
  // Non-ASCII White_Space is \s.
  EXPECT_EQ(SplitWith({"\\s+|\\p{L}+"}, "a\xE3\x80\x80" "b"), (V{"a", "\xE3\x80\x80", "b"}));
}

TEST(SplitRegex, NonAsciiLiteralsWithoutCategories) {
  EXPECT_EQ(SplitWith({"[\xE4\xB8\x80-\xE9\xBE\xA5]+"}, "ab\xE4\xB8\xAD\xE6\x96\x87" "cd"),
            (V{"ab", "\xE4\xB8\xAD\xE6\x96\x87", "cd"}));
  EXPECT_FALSE(SplitRegex::Compile("[\xE4\xB8\x80]\\p{L}").ok());
}

TEST(SplitRegex, BacktrackingAndLookahead) {
  const std::string llama3_ws = "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  EXPECT_EQ(SplitWith({llama3_ws}, "  \n\n  x"), (V{"  \n\n", " ", " ", "x"}));
  EXPECT_EQ(SplitWith({"\\s+$"}, "a  b  "), (V{"a  b", "  "}));
  EXPECT_EQ(SplitWith({"\\p{N}{1,3}"}, "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(SplitWith({"(?:ab|a)(?=c)"}, "abcac"), (V{"ab", "c", "a", "c"}));
}

TEST(SplitRegex, EmptyMatchesSplitLikeRegexIterator) {
  // SuperBPE's digit grouping: empty matches before each group of three digits from the end.
  EXPECT_EQ(SplitWith({"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}, "1234567"), (V{"1", "234", "567"}));
}

TEST(SplitRegex, RejectsUnsupportedSyntax) {
  EXPECT_FALSE(SplitRegex::Compile("(?i:a)").ok());
  EXPECT_FALSE(SplitRegex::Compile("\\p{Han}+").ok());
  EXPECT_FALSE(SplitRegex::Compile("(a").ok());
  EXPECT_FALSE(SplitRegex::Compile("[a-").ok());
  EXPECT_FALSE(SplitRegex::Compile("(?:a?)*").ok());
  EXPECT_FALSE(SplitRegex::Compile("\\d\\b").ok());
}

TEST(SplitRegex, LongWhitespaceRunsStayFast) {
  // Pathological backtracking input; must terminate quickly (memo) and split correctly.
  std::string text(20000, ' ');
  text += "x";
  const auto pieces = SplitWith({"\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, text);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].size(), 19999u);
}

TEST(PreTokenizers, EveryBuiltInPatternCompiles) {
  for (const std::string& name : SupportedPreTokenizers()) {
    auto spec = PreTokenizerFor(name);
    ASSERT_TRUE(spec.ok()) << name;
    for (const std::string& p : spec->regexes) {
      EXPECT_TRUE(SplitRegex::Compile(p).ok()) << name << ": " << SplitRegex::Compile(p).status();
    }
  }
  EXPECT_EQ(PreTokenizerFor("foo").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(PreTokenizerFor("").value().name, "default");
}

TEST(PreTokenizers, Llama3SplitsDigitsAndContractions) {
  auto spec = PreTokenizerFor("llama3");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(SplitWith(spec->regexes, "I'M 12345 ok\n\n"), (V{"I", "'M", " ", "123", "45", " ok", "\n\n"}));
}

}  // namespace
}  // namespace leoam::tokenizer_internal
