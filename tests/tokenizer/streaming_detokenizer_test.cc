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

constexpr TokenId Byte(uint8_t b) { return 3 + b; }

std::unique_ptr<Tokenizer> Synthetic() {
  auto t = NewTokenizer(testing::SyntheticSpmConfig({"\xE2\x96\x81" "Hi", "Hi"}));
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

TEST(StreamingDetokenizer, HoldsMultiByteCharactersSplitOverByteTokens) {
  auto tok = Synthetic();
  StreamingDetokenizer s(*tok, /*at_text_start=*/true);
  EXPECT_EQ(s.Push(testing::kFirstPiece), "Hi");  // "▁Hi": the first piece's dummy space is dropped
  // "é" = C3 A9
  EXPECT_EQ(s.Push(Byte(0xC3)), "");
  EXPECT_EQ(s.Push(Byte(0xA9)), "\xC3\xA9");
  // "🦙" = F0 9F A6 99, one byte token at a time.
  EXPECT_EQ(s.Push(Byte(0xF0)), "");
  EXPECT_EQ(s.Push(Byte(0x9F)), "");
  EXPECT_EQ(s.Push(Byte(0xA6)), "");
  EXPECT_EQ(s.Push(Byte(0x99)), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(s.Push(testing::kFirstPiece), " Hi");
  EXPECT_EQ(s.Flush(), "");
}

TEST(StreamingDetokenizer, FlushReplacesIncompleteSequence) {
  auto tok = Synthetic();
  StreamingDetokenizer s(*tok);
  EXPECT_EQ(s.Push(Byte('a')), "a");
  EXPECT_EQ(s.Push(Byte(0xE2)), "");
  EXPECT_EQ(s.Push(Byte(0x82)), "");
  EXPECT_EQ(s.Flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(s.Flush(), "");
}

TEST(StreamingDetokenizer, InvalidBytesAreReplacedNotHeld) {
  auto tok = Synthetic();
  StreamingDetokenizer s(*tok);
  // A lone continuation byte can never complete: it comes out at once as U+FFFD.
  EXPECT_EQ(s.Push(Byte(0x80)), "\xEF\xBF\xBD");
  // A lead byte followed by a non-continuation: both bad, then the ASCII byte.
  EXPECT_EQ(s.Push(Byte(0xC3)), "");
  EXPECT_EQ(s.Push(Byte('x')), "\xEF\xBF\xBDx");
}

TEST(StreamingDetokenizer, ControlTokensProduceNothing) {
  auto tok = Synthetic();
  StreamingDetokenizer s(*tok, /*at_text_start=*/true);
  EXPECT_EQ(s.Push(1), "");  // <s>
  // The first visible piece loses its dummy-prefix space, the next ones keep theirs.
  EXPECT_EQ(s.Push(testing::kFirstPiece), "Hi");
  EXPECT_EQ(s.Push(2), "");  // </s>
  EXPECT_EQ(s.Push(testing::kFirstPiece), " Hi");
}

TEST(StreamingDetokenizer, ContinuationKeepsLeadingSpace) {
  auto tok = Synthetic();
  StreamingDetokenizer s(*tok);  // continuing a prompt that was already printed
  EXPECT_EQ(s.Push(testing::kFirstPiece), " Hi");
  EXPECT_EQ(s.Push(testing::kFirstPiece), " Hi");
}

// On real vocabularies, the streamed pieces add up to Decode's output.
TEST(StreamingDetokenizer, MatchesDecodeOnLlamaSpmVectors) {
  LEOAM_REQUIRE_SHARED(path, "vocab/ggml-vocab-llama-spm.gguf");
  auto tok = testing::LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::vector<testing::VocabCase> cases;
  std::string error;
  ASSERT_TRUE(testing::ReadVocabCases(path + ".inp", path + ".out", &cases, &error)) << error;
  for (const auto& c : cases) {
    StreamingDetokenizer s(**tok, /*at_text_start=*/true);
    std::string streamed;
    for (TokenId id : c.expected) streamed += s.Push(id);
    streamed += s.Flush();
    EXPECT_EQ(streamed, (*tok)->Decode(c.expected)) << c.input;
    EXPECT_EQ(streamed, c.input);
  }
}

}  // namespace
}  // namespace leoam
