// llama.cpp's tokenizer test vectors: every /shared/vocab/NAME.gguf with NAME.gguf.inp/.out must
// encode every input (no BOS, special texts not parsed) to exactly the expected ids.
#include <dirent.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace leoam {
namespace {

using testing::LoadTokenizer;
using testing::ReadVocabCases;
using testing::VocabCase;

// Every NAME.gguf in the shared vocab directory (empty when the directory is missing).
std::vector<std::string> VocabFiles() {
  std::vector<std::string> names;
  const std::string dir = testing::SharedDir() + "/vocab";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (absl::EndsWith(name, ".gguf")) names.push_back(name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  name = name.substr(0, name.size() - 5);  // ".gguf"
  if (absl::StartsWith(name, "ggml-vocab-")) name = name.substr(11);
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// BPE vocabularies whose pre-type turns on llama.cpp's decode-time clean-up of spaces before
// punctuation (clean_up_tokenization_spaces), so " ," decodes as ",".
bool CleansSpaces(const std::string& file) {
  for (const char* name : {"gpt-2", "mpt", "falcon", "starcoder", "refact", "gpt-neox"}) {
    if (file == std::string("ggml-vocab-") + name + ".gguf") return true;
  }
  return false;
}

// Inputs containing what that clean-up rewrites.
bool HasCleanupPattern(const std::string& s) {
  for (const char* p : {" ?", " !", " .", " ,", " '"}) {
    if (absl::StrContains(s, p)) return true;
  }
  return false;
}

class VocabVectorsTest : public ::testing::TestWithParam<std::string> {};

TEST(VocabVectors, SharedVocabDirectoryIsPresent) {
  LEOAM_REQUIRE_SHARED(path, "vocab/ggml-vocab-llama-spm.gguf");
  EXPECT_GE(VocabFiles().size(), 1u);
}

TEST_P(VocabVectorsTest, EncodesLikeLlamaCpp) {
  const std::string rel = "vocab/" + GetParam();
  LEOAM_REQUIRE_SHARED(path, rel);
  auto tokenizer = LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  const std::string inp = path + ".inp", out = path + ".out";
  std::string ignored;
  if (!testing::ReadFile(inp, &ignored)) {
    // No vectors for this vocabulary: it must still load and encode.
    EncodeOptions options;
    options.add_bos = false;
    const auto ids = (*tokenizer)->Encode("Hello world, 123!", options);
    EXPECT_FALSE(ids.empty());
    GTEST_SKIP() << GetParam() << " has no .inp/.out vectors; checked that it loads and encodes";
  }
  std::vector<VocabCase> cases;
  std::string error;
  ASSERT_TRUE(ReadVocabCases(inp, out, &cases, &error)) << error;
  ASSERT_FALSE(cases.empty());

  EncodeOptions options;
  options.add_bos = false;
  options.add_eos = false;
  options.parse_special = false;
  int failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = (*tokenizer)->Encode(cases[i].input, options);
    if (ids != cases[i].expected) {
      ++failures;
      ADD_FAILURE() << GetParam() << " case " << i << " input '" << cases[i].input << "'\n expected "
                    << ::testing::PrintToString(cases[i].expected) << "\n      got "
                    << ::testing::PrintToString(ids);
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << cases.size() << " cases differ";
}

// Decode(Encode(x)) == x, except where the vocabulary's decode-time space clean-up (BPE vocabs
// whose pre-type enables it, as llama.cpp does) legitimately rewrites the text.
TEST_P(VocabVectorsTest, RoundTrips) {
  const std::string rel = "vocab/" + GetParam();
  LEOAM_REQUIRE_SHARED(path, rel);
  std::vector<VocabCase> cases;
  std::string error;
  if (!ReadVocabCases(path + ".inp", path + ".out", &cases, &error)) GTEST_SKIP() << error;
  auto tokenizer = LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EncodeOptions options;
  options.add_bos = false;
  for (const VocabCase& c : cases) {
    if (CleansSpaces(GetParam()) && HasCleanupPattern(c.input)) continue;
    EXPECT_EQ((*tokenizer)->Decode((*tokenizer)->Encode(c.input, options)), c.input) << GetParam();
  }
}

// One tokenizer shared by several threads (as llama.cpp's test-tokenizer-0 runs it).
TEST_P(VocabVectorsTest, ThreadsShareOneTokenizer) {
  const std::string rel = "vocab/" + GetParam();
  LEOAM_REQUIRE_SHARED(path, rel);
  std::vector<VocabCase> cases;
  std::string error;
  if (!ReadVocabCases(path + ".inp", path + ".out", &cases, &error)) GTEST_SKIP() << error;
  auto tokenizer = LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const Tokenizer& tok = **tokenizer;
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      EncodeOptions options;
      options.add_bos = false;
      for (int round = 0; round < 5; ++round) {
        for (const VocabCase& c : cases) mismatches[t] += tok.Encode(c.input, options) != c.expected;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, VocabVectorsTest, ::testing::ValuesIn(VocabFiles()), TestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(VocabVectorsTest);

}  // namespace
}  // namespace leoam
