// Special tokens: partitioning (control texts only with parse_special, user-defined always),
// dummy prefix after specials, pieces, end-of-generation detection.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "compute/tokenizer/tokenizer_config.h"
#include "tests/testing/shared_data.h"
#include "tests/tokenizer/synthetic_vocab.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace leoam {
namespace {

using testing::kFirstPiece;

// Pieces: 259 "▁Hi", 260 "Hi", 261 "▁", 262 "H", 263 "i"; 264 <|im_end|> (control),
// 265 <|user|> (user-defined).
std::unique_ptr<Tokenizer> Synthetic() {
  auto t = NewTokenizer(testing::SyntheticSpmConfig({"\xE2\x96\x81" "Hi", "Hi", "\xE2\x96\x81", "H", "i"}));
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}
constexpr TokenId kSpaceHi = kFirstPiece, kHi = kFirstPiece + 1, kImEnd = kFirstPiece + 5, kUser = kFirstPiece + 6;

EncodeOptions Opts(bool bos, bool parse_special) {
  EncodeOptions o;
  o.add_bos = bos;
  o.parse_special = parse_special;
  return o;
}

TEST(SpecialTokens, ControlTextIsOrdinaryTextUnlessParseSpecial) {
  auto tok = Synthetic();
  const auto with = tok->Encode("Hi<|im_end|>Hi", Opts(false, true));
  // After a special token the next text gets the dummy prefix again (llama.cpp behaviour).
  EXPECT_EQ(with, (std::vector<TokenId>{kSpaceHi, kImEnd, kSpaceHi}));
  const auto without = tok->Encode("Hi<|im_end|>Hi", Opts(false, false));
  EXPECT_EQ(std::count(without.begin(), without.end(), kImEnd), 0);
  EXPECT_EQ(without.front(), kSpaceHi);
}

TEST(SpecialTokens, UserDefinedTokensAreAlwaysSplitOut) {
  auto tok = Synthetic();
  EXPECT_EQ(tok->Encode("<|user|>Hi", Opts(false, false)), (std::vector<TokenId>{kUser, kSpaceHi}));
  EXPECT_EQ(tok->Encode("<|user|>Hi", Opts(true, false)), (std::vector<TokenId>{1, kUser, kSpaceHi}));
}

TEST(SpecialTokens, BosFollowsOptionsAndModel) {
  auto tok = Synthetic();
  EXPECT_EQ(tok->Encode("Hi", Opts(true, false)), (std::vector<TokenId>{1, kSpaceHi}));
  EXPECT_EQ(tok->Encode("Hi", Opts(false, false)), (std::vector<TokenId>{kSpaceHi}));
  EXPECT_EQ(tok->Encode("", Opts(true, false)), (std::vector<TokenId>{1}));
  EXPECT_TRUE(tok->Encode("", Opts(false, false)).empty());

  TokenizerConfig c = testing::SyntheticSpmConfig({"\xE2\x96\x81" "Hi", "Hi", "\xE2\x96\x81", "H", "i"});
  c.add_bos = false;
  auto no_bos_model = NewTokenizer(c);
  ASSERT_TRUE(no_bos_model.ok());
  EXPECT_EQ((*no_bos_model)->Encode("Hi", Opts(true, false)), (std::vector<TokenId>{kSpaceHi}));
}

TEST(SpecialTokens, PiecesOfControlTokensNeedShowSpecial) {
  auto tok = Synthetic();
  EXPECT_EQ(tok->TokenToPiece(kImEnd), "");
  EXPECT_EQ(tok->TokenToPiece(kImEnd, /*show_special=*/true), "<|im_end|>");
  EXPECT_EQ(tok->TokenToPiece(kUser), "<|user|>");
  EXPECT_EQ(tok->TokenToPiece(1), "");
  EXPECT_EQ(tok->TokenToPiece(kSpaceHi), " Hi");
  EXPECT_EQ(tok->TokenToPiece(3 + 'A'), "A");
  EXPECT_EQ(tok->Decode({1, kSpaceHi, kImEnd, kHi}), " HiHi");
  EXPECT_EQ(tok->Decode({kSpaceHi, kImEnd, kHi}), "HiHi");
  EXPECT_EQ(tok->Decode({kSpaceHi, kImEnd, kHi}, /*show_special=*/true), "Hi<|im_end|>Hi");
  EXPECT_EQ(tok->TokenToPiece(-1), "");
  EXPECT_EQ(tok->TokenToPiece(100000), "");
}

TEST(SpecialTokens, EndOfGeneration) {
  auto tok = Synthetic();
  EXPECT_TRUE(tok->IsEndOfGeneration(2));       // eos
  EXPECT_TRUE(tok->IsEndOfGeneration(kImEnd));  // named like an end-of-turn token
  EXPECT_FALSE(tok->IsEndOfGeneration(1));
  EXPECT_FALSE(tok->IsEndOfGeneration(kUser));
  EXPECT_FALSE(tok->IsEndOfGeneration(-1));
}

TEST(SpecialTokens, ByteFallbackForUnknownCharacters) {
  auto tok = Synthetic();
  // "é" is not a piece: its UTF-8 bytes come out as byte tokens.
  EXPECT_EQ(tok->Encode("\xC3\xA9", Opts(false, false)),
            (std::vector<TokenId>{kFirstPiece + 2, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok->Decode(tok->Encode("\xC3\xA9 Hi", Opts(false, false))), "\xC3\xA9 Hi");
}

TEST(SpecialTokens, GptVocabParsesEndOfTextOnlyWhenAsked) {
  LEOAM_REQUIRE_SHARED(path, "vocab/ggml-vocab-gpt-2.gguf");
  auto tok = testing::LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const TokenId eot = 50256;
  EXPECT_EQ((*tok)->token_text(eot), "<|endoftext|>");
  EXPECT_TRUE((*tok)->IsEndOfGeneration(eot));
  EXPECT_FALSE((*tok)->adds_bos());
  const auto parsed = (*tok)->Encode("Hello<|endoftext|>", Opts(true, true));
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.back(), eot);
  const auto plain = (*tok)->Encode("Hello<|endoftext|>", Opts(true, false));
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_GT(plain.size(), parsed.size());
  EXPECT_EQ((*tok)->Decode(plain), "Hello<|endoftext|>");
  EXPECT_EQ((*tok)->Decode(parsed), "Hello");
  EXPECT_EQ((*tok)->Decode(parsed, /*show_special=*/true), "Hello<|endoftext|>");
}

TEST(SpecialTokens, Phi3StripsWhitespaceAfterSpecialTokens) {
  LEOAM_REQUIRE_SHARED(path, "vocab/ggml-vocab-phi-3.gguf");
  auto tok = testing::LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const TokenId user = 32010, end = 32007;
  EXPECT_TRUE((*tok)->IsEndOfGeneration(end));
  EXPECT_TRUE((*tok)->IsEndOfGeneration(32000));  // <|endoftext|>
  const auto a = (*tok)->Encode("<|user|>\nHi<|end|>", Opts(false, true));
  const auto b = (*tok)->Encode("<|user|>Hi<|end|>", Opts(false, true));
  EXPECT_EQ(a, b);  // the newline after <|user|> is stripped (rstrip)
  ASSERT_GE(a.size(), 3u);
  EXPECT_EQ(a.front(), user);
  EXPECT_EQ(a.back(), end);
}

}  // namespace
}  // namespace leoam
