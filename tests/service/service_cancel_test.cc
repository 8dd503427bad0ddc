// Stopping work in leoam-compute: client cancellation, deadlines, time limits, Abort by id,
// duplicate ids, the concurrency limit, and decodes running while a long prompt prefills. A
// synthetic model slow enough per token that every generation here is stopped midway.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

namespace v1 = ::leoam::v1;

constexpr int32_t kLong = 3000;  // tokens no test waits for

v1::GenerateRequest Long(const std::string& id = "") {
  v1::GenerateRequest r = Greedy({1, 300, 301, 302}, kLong);
  r.set_ignore_eos(true);
  r.set_request_id(id);
  return r;
}

class ServiceCancelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new ::leoam::testing::TempDir();
    model_path_ = model_dir_->File("slow.gguf");
    absl::Status s = MakeSlowSyntheticModel(model_path_, model_dir_->path());
    if (!s.ok()) model_error_ = new std::string(s.ToString());
  }
  static void TearDownTestSuite() {
    delete model_dir_;
    delete model_error_;
    model_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(model_error_, nullptr) << *model_error_;
    auto proc = ComputeProcess::Start({dir_.path(), model_path_,
                                       {"--max-concurrent=3", "--max-tokens-limit=4000", "--prefill-chunk=32"}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    stub_ = proc_->NewStub();
  }
  void TearDown() override {
    if (proc_ != nullptr) EXPECT_EQ(proc_->Stop(), 0) << proc_->Log();
  }
  bool WaitIdle() {
    return WaitForServer(
        *stub_, [](const auto& r) { return r.running_requests() == 0 && r.queued_requests() == 0; }, absl::Seconds(20));
  }

  static ::leoam::testing::TempDir* model_dir_;
  static std::string model_path_;
  static std::string* model_error_;
  ::leoam::testing::TempDir dir_;
  std::unique_ptr<ComputeProcess> proc_;
  std::unique_ptr<v1::Generation::Stub> stub_;
};
::leoam::testing::TempDir* ServiceCancelTest::model_dir_ = nullptr;
std::string ServiceCancelTest::model_path_;
std::string* ServiceCancelTest::model_error_ = nullptr;

TEST_F(ServiceCancelTest, ClientCancelStopsTheWorkAndFreesTheKv) {
  Outcome o = RunGenerate(*stub_, Long(), absl::ZeroDuration(), [](grpc::ClientContext& ctx, int n) {
    if (n == 5) ctx.TryCancel();
  });
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(o.tokens.size(), static_cast<size_t>(kLong));
  EXPECT_TRUE(WaitIdle()) << "the cancelled request still holds its batch slot";
  auto info = ServerInfo(*stub_);
  ASSERT_TRUE(info.ok());
  EXPECT_LT(info->tokens_generated(), kLong);  // the work stopped
}

TEST_F(ServiceCancelTest, DeadlineStopsTheWork) {
  Outcome o = RunGenerate(*stub_, Long(), absl::Milliseconds(700));
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(o.tokens.size(), static_cast<size_t>(kLong));
  EXPECT_TRUE(WaitIdle());
}

TEST_F(ServiceCancelTest, TimeLimitEndsTheStreamNormally) {
  v1::GenerateRequest r = Long();
  r.set_time_limit_ms(500);
  Outcome o = RunGenerate(*stub_, r);
  ASSERT_TRUE(o.status.ok()) << o.status.error_message();
  ASSERT_TRUE(o.has_final);
  EXPECT_EQ(o.final.finish_reason(), v1::FINISH_REASON_TIME_LIMIT);
  EXPECT_LT(o.tokens.size(), static_cast<size_t>(kLong));
  EXPECT_EQ(o.final.usage().completion_tokens(), static_cast<int32_t>(o.tokens.size()));
  EXPECT_TRUE(WaitIdle());
}

TEST_F(ServiceCancelTest, AbortByIdEndsWithCancelled) {
  Outcome o;
  std::atomic<int> seen{0};
  std::thread t([&] {
    auto stub = proc_->NewStub();
    o = RunGenerate(*stub, Long("abort-me"), absl::ZeroDuration(), [&](grpc::ClientContext&, int n) { seen = n; });
  });
  while (seen.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // The id is taken while it runs.
  Outcome dup = RunGenerate(*stub_, Long("abort-me"));
  EXPECT_EQ(dup.status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << dup.status.error_message();
  grpc::ClientContext ctx;
  v1::AbortRequest abort;
  abort.set_request_id("abort-me");
  v1::AbortResponse ar;
  EXPECT_TRUE(stub_->Abort(&ctx, abort, &ar).ok());
  t.join();
  ASSERT_TRUE(o.status.ok()) << o.status.error_message();
  ASSERT_TRUE(o.has_final);
  EXPECT_EQ(o.final.finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_LT(o.tokens.size(), static_cast<size_t>(kLong));
  EXPECT_TRUE(WaitIdle());
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->Abort(&ctx2, abort, &ar).error_code(), grpc::StatusCode::NOT_FOUND);
  // The id is free again.
  Outcome again = RunGenerate(*stub_, Greedy({1, 300}, 2));
  EXPECT_TRUE(again.status.ok());
}

TEST_F(ServiceCancelTest, OverTheConcurrencyLimitIsResourceExhausted) {
  std::vector<std::thread> threads;
  std::vector<Outcome> outcomes(3);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      auto stub = proc_->NewStub();
      outcomes[i] = RunGenerate(*stub, Long("busy-" + std::to_string(i)));
    });
  }
  ASSERT_TRUE(WaitForServer(
      *stub_, [](const auto& r) { return r.running_requests() + r.queued_requests() == 3; }, absl::Seconds(20)));
  std::string msg;
  Outcome over = RunGenerate(*stub_, Greedy({1, 300}, 2));
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.status.error_message();
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::AbortRequest abort;
    abort.set_request_id("busy-" + std::to_string(i));
    v1::AbortResponse ar;
    EXPECT_TRUE(stub_->Abort(&ctx, abort, &ar).ok());
  }
  for (auto& t : threads) t.join();
  for (const Outcome& o : outcomes) EXPECT_EQ(o.final.finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_TRUE(WaitIdle());
}

TEST_F(ServiceCancelTest, DecodesContinueWhileALongPromptPrefills) {
  std::atomic<int> a_tokens{0};
  Outcome a;
  std::thread ta([&] {
    auto stub = proc_->NewStub();
    a = RunGenerate(*stub, Long("decoder"), absl::ZeroDuration(), [&](grpc::ClientContext&, int n) { a_tokens = n; });
  });
  while (a_tokens.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  v1::GenerateRequest b;
  for (int i = 0; i < 640; ++i) b.add_token_ids(5 + i % 1900);
  b.set_max_tokens(1);
  b.set_report_progress(true);
  int a_at_first_progress = -1, a_at_last_progress = -1, progress = 0;
  {
    auto stub = proc_->NewStub();
    grpc::ClientContext ctx;
    auto reader = stub->Generate(&ctx, b);
    v1::GenerateResponse m;
    while (reader->Read(&m)) {
      if (!m.has_progress()) continue;
      ++progress;
      if (a_at_first_progress < 0) a_at_first_progress = a_tokens.load();
      a_at_last_progress = a_tokens.load();
    }
    EXPECT_TRUE(reader->Finish().ok());
  }
  grpc::ClientContext ctx;
  v1::AbortRequest abort;
  abort.set_request_id("decoder");
  v1::AbortResponse ar;
  EXPECT_TRUE(stub_->Abort(&ctx, abort, &ar).ok());
  ta.join();
  EXPECT_EQ(progress, 640 / 32);
  // 20 prefill chunks; a decode step of the running request runs between any two of them.
  EXPECT_GE(a_at_last_progress - a_at_first_progress, 10);
}

TEST_F(ServiceCancelTest, SigtermWithARunningRequestStopsCleanly) {
  Outcome o;
  std::atomic<int> seen{0};
  std::thread t([&] {
    auto stub = proc_->NewStub();
    o = RunGenerate(*stub, Long(), absl::ZeroDuration(), [&](grpc::ClientContext&, int n) { seen = n; });
  });
  while (seen.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(proc_->Stop(), 0) << proc_->Log();
  t.join();
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE) << o.status.error_message();
  EXPECT_LT(o.tokens.size(), static_cast<size_t>(kLong));
  proc_.reset();
}

}  // namespace
}  // namespace leoam::service::testing
