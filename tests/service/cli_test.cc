// The `leoam` CLI binary run as a process against a real leoam-compute (stories260K).
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
    auto proc = ComputeProcess::Start({dir_.path(), model, {}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
  }
  RunResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {BinaryPath("leoam"), "--server=" + proc_->target()});
    auto r = RunProcess(args, dir_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }
  ::leoam::testing::TempDir dir_;
  std::unique_ptr<ComputeProcess> proc_;
};

TEST_F(CliTest, GenerateStreamsTheSameTextAsTheApiAndPrintsTheSummary) {
  RunResult r = Cli({"generate", "--max-tokens=30", "Once", "upon", "a", "time"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  leoam::v1::GenerateRequest req;
  req.set_text("Once upon a time");
  req.set_max_tokens(30);
  auto stub = proc_->NewStub();
  Outcome api = RunGenerate(*stub, req);
  ASSERT_TRUE(api.status.ok());
  EXPECT_EQ(r.out, api.text + "\n");
  EXPECT_NE(r.err.find("[###"), std::string::npos) << r.err;  // the prefill progress bar
  EXPECT_NE(r.err.find("TTFT"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cached tokens 0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("finish: length"), std::string::npos) << r.err;
}

TEST_F(CliTest, TokenizeDetokenizeInfoStats) {
  RunResult t = Cli({"tokenize", "--add-special", "Once upon a time"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out, "1,403,407,261,378\n");
  RunResult d = Cli({"detokenize", "403,407,261,378"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, "Once upon a time\n");
  RunResult i = Cli({"info"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(i.out.find("llama, 292800 parameters (F32), 5 layers"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("mode dense"), std::string::npos) << i.out;
  RunResult s = Cli({"stats"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("requests: 0 running, 0 queued"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("kvstore: none"), std::string::npos) << s.out;
}

TEST_F(CliTest, ErrorsComeBackAsMessagesAndExitCodes) {
  RunResult chat = Cli({"chat", "--message=hello"});
  EXPECT_NE(chat.exit_code, 0);
  EXPECT_NE(chat.err.find("chat template"), std::string::npos) << chat.err;
  RunResult bad = Cli({"generate", "--temperature=-1", "hi"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("temperature"), std::string::npos) << bad.err;
  RunResult unknown = Cli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  auto r = RunProcess({BinaryPath("leoam"), "--server=unix://" + dir_.File("nobody.sock"), "--timeout-s=2", "info"},
                      dir_.path());
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
}

}  // namespace
}  // namespace leoam::service::testing
