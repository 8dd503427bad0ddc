// Precise errors from NewTokenizer and Tokenizer::FromGguf.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "compute/gguf/gguf_writer.h"
#include "compute/tokenizer/tokenizer_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/tokenizer/synthetic_vocab.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace leoam {
namespace {

using ::testing::HasSubstr;

absl::Status LoadFrom(const gguf::GgufWriter& w) {
  testing::TempDir dir;
  const std::string path = dir.File("tok.gguf");
  EXPECT_TRUE(w.WriteFile(path).ok());
  return testing::LoadTokenizer(path).status();
}

gguf::GgufWriter MinimalGpt2(const std::string& pre) {
  gguf::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) w.AddString("tokenizer.ggml.pre", pre);
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0"});
  w.AddStringArray("tokenizer.ggml.merges", {"a b"});
  return w;
}

TEST(TokenizerErrors, MissingModelKey) {
  gguf::GgufWriter w;
  w.AddStringArray("tokenizer.ggml.tokens", {"a"});
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.model"));
}

TEST(TokenizerErrors, UnknownModel) {
  gguf::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "bert");
  w.AddStringArray("tokenizer.ggml.tokens", {"a"});
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'bert'"));
}

TEST(TokenizerErrors, UnknownPreTokenizer) {
  const absl::Status s = LoadFrom(MinimalGpt2("foo"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "tokenizer.ggml.pre 'foo' is not supported");
}

TEST(TokenizerErrors, MissingTokens) {
  gguf::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "llama");
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.tokens"));
}

TEST(TokenizerErrors, TokensOfWrongType) {
  gguf::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddInt32Array("tokenizer.ggml.tokens", {1, 2, 3});
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.tokens"));
}

TEST(TokenizerErrors, MissingMerges) {
  gguf::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "gpt2");
  w.AddStringArray("tokenizer.ggml.tokens", {"a"});
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.merges"));
}

TEST(TokenizerErrors, ShortScores) {
  TokenizerConfig c = testing::SyntheticSpmConfig({"x"});
  c.scores.resize(3);
  const auto t = NewTokenizer(c);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("tokenizer.ggml.scores"));
}

TEST(TokenizerErrors, BadBosIdType) {
  gguf::GgufWriter w = MinimalGpt2("gpt-2");
  w.AddString("tokenizer.ggml.bos_token_id", "one");
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.bos_token_id"));
}

TEST(TokenizerErrors, AddBosWithoutBos) {
  gguf::GgufWriter w = MinimalGpt2("gpt-2");  // 4 tokens: the BPE default bos (11) is out of range
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  const absl::Status s = LoadFrom(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.ggml.bos_token_id"));
}

TEST(TokenizerErrors, DuplicateToken) {
  TokenizerConfig c = testing::SyntheticSpmConfig({"x", "x"});
  const auto t = NewTokenizer(c);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("duplicate"));
}

TEST(TokenizerErrors, MinimalGpt2Works) {
  testing::TempDir dir;
  const std::string path = dir.File("tok.gguf");
  ASSERT_TRUE(MinimalGpt2("gpt-2").WriteFile(path).ok());
  auto tok = testing::LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EncodeOptions o;
  EXPECT_EQ((*tok)->Encode("ab a", o), (std::vector<TokenId>{2, 3, 0}));
  EXPECT_EQ((*tok)->Decode({2, 3, 0}), "ab a");
}

}  // namespace
}  // namespace leoam
