// leoam-tokenize end to end: encode and decode through the real binary.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace leoam {
namespace {

struct RunResult {
  int exit_code = -1;
  std::string out;
};

// Runs the CLI with `args`, feeding `input` on stdin (through a file), capturing stdout.
RunResult RunCli(const std::string& args, const std::string& input) {
  testing::TempDir dir;
  const std::string in_path = dir.File("in.txt");
  FILE* f = std::fopen(in_path.c_str(), "wb");
  std::fwrite(input.data(), 1, input.size(), f);
  std::fclose(f);
  const std::string cmd =
      testing::BuildDir() + "/bin/leoam-tokenize " + args + " < '" + in_path + "' 2>/dev/null";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TokenizeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::BuildDir() + "/bin/leoam-tokenize")) {
      GTEST_SKIP() << "leoam-tokenize is not built in " << testing::BuildDir();
    }
  }
};

TEST_F(TokenizeCliTest, EncodesWithAndWithoutBos) {
  LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EXPECT_EQ(RunCli("--model " + model, "Once upon a time\n").out, "1 403 407 261 378\n");
  EXPECT_EQ(RunCli("--model " + model + " --no-bos", "Once upon a time").out, "403 407 261 378\n");
}

TEST_F(TokenizeCliTest, DecodesIds) {
  LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EXPECT_EQ(RunCli("--model " + model + " --decode", "403 407 261 378").out, "Once upon a time\n");
  EXPECT_EQ(RunCli("--model " + model + " --decode", "403 99999").exit_code, 1);
}

TEST_F(TokenizeCliTest, TokenizerOnlyVocabAndSpecialParsing) {
  LEOAM_REQUIRE_SHARED(model, "vocab/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(RunCli("--model " + model + " --parse-special", "Hello<|endoftext|>").out, "15496 50256\n");
  EXPECT_NE(RunCli("--model " + model, "Hello<|endoftext|>").out, "15496 50256\n");
}

TEST_F(TokenizeCliTest, UsageErrors) {
  EXPECT_EQ(RunCli("", "").exit_code, 2);
  EXPECT_EQ(RunCli("--model /nonexistent.gguf", "x").exit_code, 1);
  const RunResult help = RunCli("--help", "");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--parse-special"), std::string::npos);
}

}  // namespace
}  // namespace leoam
