// leoam-compute as a real process serving stories260K: streaming, reference tokens, concurrent
// requests against solo runs, malformed requests and their statuses.
#include <cmath>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/reference_generations.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

namespace v1 = ::leoam::v1;

class GenerationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
    model_ = model;
    // max-batch 8: batches stay on the CPU matvec path, where batched decode is bit-exact.
    auto proc = ComputeProcess::Start({dir_.path(), model_,
                                       {"--max-batch=8", "--max-concurrent=12", "--max-tokens-limit=1000",
                                        "--max-prompt-tokens=300", "--prefill-chunk=16"}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    stub_ = proc_->NewStub();
  }
  void TearDown() override {
    if (proc_ != nullptr) {
      EXPECT_EQ(proc_->Stop(), 0) << "leoam-compute did not stop cleanly:\n" << proc_->Log();
    }
  }

  ::leoam::testing::TempDir dir_;
  std::string model_;
  std::unique_ptr<ComputeProcess> proc_;
  std::unique_ptr<v1::Generation::Stub> stub_;
};

TEST_F(GenerationServiceTest, HealthAndModelInfo) {
  EXPECT_TRUE(HealthServing(*proc_->channel()));
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.architecture(), "llama");
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.num_layers(), 5);
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.fingerprint().size(), 32u);
  auto server = ServerInfo(*stub_);
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->max_batch(), 8);
  EXPECT_EQ(server->max_prompt_tokens(), 300);
  EXPECT_EQ(server->running_requests(), 0);
}

TEST_F(GenerationServiceTest, TokenizeAndDetokenizeRoundTrip) {
  grpc::ClientContext ctx;
  v1::TokenizeRequest req;
  req.set_text("Once upon a time");
  req.set_add_special(true);
  v1::TokenizeResponse ids;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &ids).ok());
  EXPECT_EQ(std::vector<int32_t>(ids.token_ids().begin(), ids.token_ids().end()),
            (std::vector<int32_t>{1, 403, 407, 261, 378}));
  grpc::ClientContext ctx2;
  v1::DetokenizeRequest dreq;
  *dreq.mutable_token_ids() = ids.token_ids();
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&ctx2, dreq, &text).ok());
  EXPECT_EQ(absl::StripLeadingAsciiWhitespace(text.text()), "Once upon a time");
  grpc::ClientContext ctx3;
  dreq.add_token_ids(512);
  EXPECT_EQ(stub_->Detokenize(&ctx3, dreq, &text).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GenerationServiceTest, StreamsChunksProgressAndFinalUsage) {
  v1::GenerateRequest req;
  req.set_text("Once upon a time");
  req.set_max_tokens(24);
  req.set_report_progress(true);
  req.set_request_id("stream-1");
  Outcome o = RunGenerate(*stub_, req);
  ASSERT_TRUE(o.status.ok()) << o.status.error_message();
  EXPECT_EQ(o.request_id, "stream-1");
  EXPECT_GE(o.progress_messages, 1);
  EXPECT_EQ(o.last_processed, 5);
  ASSERT_TRUE(o.has_final);
  EXPECT_EQ(o.final.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(o.tokens.size(), 24u);
  EXPECT_EQ(o.final.usage().prompt_tokens(), 5);
  EXPECT_EQ(o.final.usage().completion_tokens(), 24);
  EXPECT_GT(o.final.usage().ttft_ms(), 0.0);
  EXPECT_GT(o.final.usage().decode_tokens_per_second(), 0.0);
  // The streamed text is the detokenized stream of the ids.
  grpc::ClientContext ctx;
  v1::DetokenizeRequest dreq;
  for (int32_t id : o.tokens) dreq.add_token_ids(id);
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&ctx, dreq, &text).ok());
  EXPECT_EQ(absl::StripLeadingAsciiWhitespace(o.text), absl::StripLeadingAsciiWhitespace(text.text()));
}

TEST_F(GenerationServiceTest, ReproducesReferenceGreedyTokens) {
  LEOAM_REQUIRE_SHARED(path, "models/stories260K.greedy.jsonl");
  auto refs = ::leoam::testing::ReadReferenceGenerations(path);
  ASSERT_TRUE(refs.ok()) << refs.status();
  ASSERT_FALSE(refs->empty());
  for (const auto& ref : *refs) {
    Outcome o = RunGenerate(*stub_, Greedy(ref.prompt_ids, static_cast<int32_t>(ref.generated_ids.size())));
    ASSERT_TRUE(o.status.ok()) << o.status.error_message();
    EXPECT_EQ(o.tokens, ref.generated_ids) << ref.prompt;
  }
}

TEST_F(GenerationServiceTest, StopStringsAndStopTokens) {
  Outcome full = RunGenerate(*stub_, Greedy({1, 403, 407, 261, 378}, 40));
  ASSERT_TRUE(full.status.ok());
  ASSERT_EQ(full.tokens.size(), 40u);
  // Stop at the 10th token's id (not returned).
  v1::GenerateRequest by_token = Greedy({1, 403, 407, 261, 378}, 40);
  const int32_t stop_id = full.tokens[9];
  by_token.add_stop_token_ids(stop_id);
  Outcome t = RunGenerate(*stub_, by_token);
  ASSERT_TRUE(t.status.ok());
  EXPECT_EQ(t.final.finish_reason(), v1::FINISH_REASON_STOP);
  const size_t first = std::find(full.tokens.begin(), full.tokens.end(), stop_id) - full.tokens.begin();
  EXPECT_EQ(t.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + first));
  // Stop at a word of the text: the text ends right before it.
  const std::string word = "Lily";
  const size_t at = full.text.find(word);
  ASSERT_NE(at, std::string::npos) << full.text;
  v1::GenerateRequest by_string = Greedy({1, 403, 407, 261, 378}, 40);
  by_string.add_stop_strings(word);
  Outcome s = RunGenerate(*stub_, by_string);
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.final.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(s.text, full.text.substr(0, at));
}

TEST_F(GenerationServiceTest, ConcurrentRequestsGetWhatTheyGetAlone) {
  constexpr int kRequests = 10;  // more than --max-batch=8: two wait in the queue
  std::vector<v1::GenerateRequest> reqs;
  for (int i = 0; i < kRequests; ++i) {
    v1::GenerateRequest r;
    r.add_token_ids(1);
    for (int t = 0; t < 2 + i; ++t) r.add_token_ids(300 + (i * 31 + t * 7) % 200);
    r.set_max_tokens(60 + 7 * i);
    r.set_ignore_eos(true);
    if (i % 2 == 1) {  // seeded sampling
      r.mutable_sampling()->set_temperature(0.9f);
      r.mutable_sampling()->set_top_k(40);
      r.mutable_sampling()->set_seed(1000 + i);
      r.mutable_sampling()->set_has_seed(true);
    }
    reqs.push_back(r);
  }
  std::vector<Outcome> solo(kRequests), together(kRequests);
  for (int i = 0; i < kRequests; ++i) solo[i] = RunGenerate(*stub_, reqs[i]);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      auto stub = proc_->NewStub();
      together[i] = RunGenerate(*stub, reqs[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(solo[i].status.ok()) << solo[i].status.error_message();
    ASSERT_TRUE(together[i].status.ok()) << together[i].status.error_message();
    EXPECT_EQ(solo[i].tokens.size(), static_cast<size_t>(reqs[i].max_tokens()));
    EXPECT_EQ(together[i].tokens, solo[i].tokens) << "request " << i;
    EXPECT_EQ(together[i].text, solo[i].text) << "request " << i;
  }
  auto info = ServerInfo(*stub_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->running_requests(), 0);
  EXPECT_EQ(info->requests_served(), 2 * kRequests);
}

grpc::StatusCode CodeOf(v1::Generation::Stub& stub, const v1::GenerateRequest& r, std::string* message = nullptr) {
  Outcome o = RunGenerate(stub, r);
  if (message != nullptr) *message = o.status.error_message();
  return o.status.error_code();
}

TEST_F(GenerationServiceTest, MalformedRequestsGetPreciseStatuses) {
  using grpc::StatusCode;
  std::string msg;
  EXPECT_EQ(CodeOf(*stub_, v1::GenerateRequest(), &msg), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("no prompt"), std::string::npos) << msg;

  v1::GenerateRequest both = Greedy({1, 2}, 4);
  both.set_text("hello");
  EXPECT_EQ(CodeOf(*stub_, both), StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(CodeOf(*stub_, Greedy({1, 512}, 4), &msg), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("token_ids[1] = 512"), std::string::npos) << msg;
  EXPECT_EQ(CodeOf(*stub_, Greedy({-1}, 4)), StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(CodeOf(*stub_, Greedy(std::vector<int32_t>(301, 5), 4), &msg), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(msg.find("300"), std::string::npos) << msg;
  v1::GenerateRequest long_text;
  std::string words;
  for (int i = 0; i < 100; ++i) words += "Once upon a time ";  // about 400 tokens
  long_text.set_text(words);
  long_text.set_max_tokens(4);
  EXPECT_EQ(CodeOf(*stub_, long_text), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(CodeOf(*stub_, Greedy({1}, 1001)), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(CodeOf(*stub_, Greedy({1}, -1)), StatusCode::INVALID_ARGUMENT);

  auto with = [](std::function<void(v1::SamplingParams*)> f) {
    v1::GenerateRequest r = Greedy({1, 403}, 4);
    f(r.mutable_sampling());
    return r;
  };
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_temperature(-0.5f); })), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_temperature(std::nanf("")); })), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_temperature(std::numeric_limits<float>::infinity()); })),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_top_p(1.5f); })), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_top_p(-0.1f); })), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_top_k(-3); })), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(*stub_, with([](auto* s) { s->set_min_p(2.0f); })), StatusCode::INVALID_ARGUMENT);

  v1::GenerateRequest bad_stop = Greedy({1}, 4);
  bad_stop.add_stop_token_ids(9999);
  EXPECT_EQ(CodeOf(*stub_, bad_stop), StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest chat;
  auto* m = chat.add_messages();
  m->set_role("user");
  m->set_content("hi");
  EXPECT_EQ(CodeOf(*stub_, chat, &msg), StatusCode::INVALID_ARGUMENT);  // stories260K has no chat template
  EXPECT_NE(msg.find("chat template"), std::string::npos) << msg;

  grpc::ClientContext ctx;
  v1::AbortRequest abort;
  abort.set_request_id("no-such-request");
  v1::AbortResponse ar;
  EXPECT_EQ(stub_->Abort(&ctx, abort, &ar).error_code(), StatusCode::NOT_FOUND);
  // The server is still fine.
  Outcome ok = RunGenerate(*stub_, Greedy({1, 403}, 3));
  EXPECT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.tokens.size(), 3u);
}

}  // namespace
}  // namespace leoam::service::testing
