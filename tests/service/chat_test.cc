// Chat messages through leoam-compute, on a synthetic qwen2 model whose GGUF carries a ChatML
// chat template: the rendered prompt is exactly the ChatML token sequence, and the CLI's chat
// command works against it.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

namespace v1 = ::leoam::v1;

class ChatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = dir_.File("chat.gguf");
    auto made = RunProcess({BinaryPath("leoam-synth"), "--arch=qwen2", "--dim=64", "--layers=2", "--heads=4",
                            "--kv-heads=2", "--ffn=128", "--vocab=600", "--context=512", "--dtype=f32", "--seed=5",
                            "--threads=1", "--out=" + model},
                           dir_.path());
    ASSERT_TRUE(made.ok());
    ASSERT_EQ(made->exit_code, 0) << made->err;
    auto proc = ComputeProcess::Start({dir_.path(), model, {}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    stub_ = proc_->NewStub();
  }
  std::vector<int32_t> Tokenize(const std::string& text) {
    grpc::ClientContext ctx;
    v1::TokenizeRequest req;
    req.set_text(text);
    v1::TokenizeResponse resp;
    EXPECT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
    return {resp.token_ids().begin(), resp.token_ids().end()};
  }
  ::leoam::testing::TempDir dir_;
  std::unique_ptr<ComputeProcess> proc_;
  std::unique_ptr<v1::Generation::Stub> stub_;
};

TEST_F(ChatTest, MessagesAreRenderedWithTheChatmlTemplate) {
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  ASSERT_NE(info.chat_template().find("<|im_start|>"), std::string::npos);
  // The synthetic vocabulary ends with <|endoftext|>, <|im_start|>, <|im_end|>.
  const int32_t im_start = info.vocab_size() - 2, im_end = info.vocab_size() - 1;
  std::vector<int32_t> want;
  auto append = [&](const std::vector<int32_t>& ids) { want.insert(want.end(), ids.begin(), ids.end()); };
  want.push_back(im_start);
  append(Tokenize("system\nBe brief."));
  want.push_back(im_end);
  append(Tokenize("\n"));
  want.push_back(im_start);
  append(Tokenize("user\nHello there"));
  want.push_back(im_end);
  append(Tokenize("\n"));
  want.push_back(im_start);
  append(Tokenize("assistant\n"));

  v1::GenerateRequest chat;
  for (auto [role, content] : {std::pair{"system", "Be brief."}, std::pair{"user", "Hello there"}}) {
    auto* m = chat.add_messages();
    m->set_role(role);
    m->set_content(content);
  }
  chat.set_max_tokens(12);
  chat.set_ignore_eos(true);
  Outcome by_chat = RunGenerate(*stub_, chat);
  ASSERT_TRUE(by_chat.status.ok()) << by_chat.status.error_message();
  EXPECT_EQ(by_chat.final.usage().prompt_tokens(), static_cast<int32_t>(want.size()));
  v1::GenerateRequest by_ids = Greedy(want, 12);
  by_ids.set_ignore_eos(true);
  Outcome direct = RunGenerate(*stub_, by_ids);
  ASSERT_TRUE(direct.status.ok());
  EXPECT_EQ(by_chat.tokens, direct.tokens) << "prompt ids: " << absl::StrJoin(want, ",");

  v1::GenerateRequest bad_role = chat;
  bad_role.mutable_messages(0)->set_role("robot");
  EXPECT_EQ(RunGenerate(*stub_, bad_role).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ChatTest, CliChatWithOneMessage) {
  auto r = RunProcess({BinaryPath("leoam"), "--server=" + proc_->target(), "chat", "--message=Hello there",
                       "--max-tokens=8", "--ignore-eos"},
                      dir_.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->err.find("generated 8"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace leoam::service::testing
