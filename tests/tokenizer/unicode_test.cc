#include "compute/tokenizer/unicode.h"

#include <string>

#include "gtest/gtest.h"

namespace leoam::unicode {
namespace {

TEST(Unicode, Classes) {
  EXPECT_EQ(ClassOf('a'), CharClass::kLetter);
  EXPECT_EQ(ClassOf('7'), CharClass::kNumber);
  EXPECT_EQ(ClassOf('~'), CharClass::kSymbol);
  EXPECT_EQ(ClassOf('!'), CharClass::kPunctuation);
  EXPECT_EQ(ClassOf(0x4E2D), CharClass::kLetter);    // 中
  EXPECT_EQ(ClassOf(0x0301), CharClass::kMark);      // combining acute
  EXPECT_EQ(ClassOf(0x1F999), CharClass::kSymbol);   // 🦙
  EXPECT_EQ(ClassOf(0x10FFFF), CharClass::kUndefined);
  EXPECT_EQ(ClassOf(0x110000), CharClass::kUndefined);
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_TRUE(IsWhitespace('\v'));
  EXPECT_FALSE(IsWhitespace(0x200B));  // zero width space is not White_Space
  EXPECT_FALSE(IsWhitespace(0x1C));
}

TEST(Unicode, DecodeReplacesInvalidBytes) {
  EXPECT_EQ(DecodeUtf8("a\xC3\xA9"), (std::vector<uint32_t>{'a', 0xE9}));
  EXPECT_EQ(DecodeUtf8("\x80z"), (std::vector<uint32_t>{0xFFFD, 'z'}));
  EXPECT_EQ(DecodeUtf8("\xE2\x82"), (std::vector<uint32_t>{0xFFFD, 0xFFFD}));
  const std::vector<uint32_t> cps = {'x', 0x20AC, 0x1F999};
  EXPECT_EQ(DecodeUtf8(EncodeUtf8(cps.data(), cps.size())), cps);
}

TEST(Unicode, IncompleteSuffix) {
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xC3"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\xA6"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xF0\x9F\xA6\x99"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\x80"), 0u);      // can never complete
  EXPECT_EQ(IncompleteUtf8Suffix("a\xE0\x80"), 0u);  // overlong prefix: invalid, not pending
  EXPECT_EQ(SanitizeUtf8("a\xC3(\xE2\x82\xAC"), "a\xEF\xBF\xBD(\xE2\x82\xAC");
}

TEST(Unicode, Gpt2ByteAlphabet) {
  EXPECT_EQ(ByteToUnicodeUtf8(' '), "\xC4\xA0");  // Ġ
  EXPECT_EQ(ByteToUnicodeUtf8('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(ByteToUnicodeUtf8('a'), "a");
  for (int b = 0; b < 256; ++b) {
    const auto cps = DecodeUtf8(ByteToUnicodeUtf8(static_cast<uint8_t>(b)));
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(UnicodeToByte(cps[0]), b);
  }
  EXPECT_EQ(UnicodeToByte(0x4E2D), -1);
}

}  // namespace
}  // namespace leoam::unicode
