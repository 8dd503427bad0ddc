// leoam-compute with a real leoam-kvstore: prefix reuse through the store, kill -9 of the store
// mid-generation (the service stays up, serves what fits its device budget, refuses the rest
// with UNAVAILABLE), and the store's restart (compute re-attaches and reuses the persisted cache).
#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

namespace v1 = ::leoam::v1;
using ::leoam::kvstore::testing::KvStoreProcess;

TEST(KvStoreRestartTest, ServiceSurvivesAStoreKillAndReusesThePersistedCache) {
  ::leoam::testing::TempDir dir;
  const std::string model = dir.File("slow.gguf");
  ASSERT_TRUE(MakeSlowSyntheticModel(model, dir.path()).ok());
  const std::string kv_dir = dir.File("kv");
  std::filesystem::create_directories(kv_dir);
  auto store = KvStoreProcess::Start({kv_dir, {}});
  ASSERT_TRUE(store.ok()) << store.status();
  // 18 KiB of KV per position: 1 MiB holds ~56 positions. A 4-token prompt with 20 new tokens
  // fits; the 200-token prompt needs the store.
  auto proc = ComputeProcess::Start({dir.path(), model,
                                     {"--mode=leoam", "--kvstore=" + (*store)->target(), "--device-budget=1MiB",
                                      "--max-tokens-limit=4000"}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto stub = (*proc)->NewStub();
  ASSERT_TRUE(WaitForServer(*stub, [](const auto& r) { return r.kvstore_connected(); }, absl::Seconds(10)));

  // 1. A long prompt through the store; again, and its prefix comes from the store's memory tier.
  Outcome first = RunGenerate(*stub, Greedy(LongPrompt(200), 8));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message() << (*proc)->Log();
  ASSERT_EQ(first.final.finish_reason(), v1::FINISH_REASON_LENGTH) << first.final.error();
  EXPECT_EQ(first.final.usage().cached_tokens_memory() + first.final.usage().cached_tokens_disk(), 0);
  Outcome second = RunGenerate(*stub, Greedy(LongPrompt(200), 8));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_GT(second.final.usage().cached_tokens_memory(), 0);
  EXPECT_EQ(second.tokens, first.tokens);  // the restored prefix gives the same greedy tokens

  // 2. kill -9 of the store while a long generation runs.
  Outcome victim;
  std::atomic<int> seen{0};
  std::thread t([&] {
    auto s = (*proc)->NewStub();
    v1::GenerateRequest r = Greedy(LongPrompt(200), 3000);
    r.set_ignore_eos(true);
    victim = RunGenerate(*s, r, absl::ZeroDuration(), [&](grpc::ClientContext&, int n) { seen = n; });
  });
  // Bounded: if the generation ends early (an error), the join below reports it instead of a hang.
  for (absl::Time until = absl::Now() + absl::Seconds(60); seen.load() < 5 && absl::Now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (*store)->Kill9();
  t.join();
  ASSERT_TRUE(victim.status.ok()) << victim.status.error_message();
  ASSERT_TRUE(victim.has_final);
  EXPECT_EQ(victim.final.finish_reason(), v1::FINISH_REASON_ERROR);
  EXPECT_LT(victim.tokens.size(), 3000u);
  EXPECT_TRUE((*proc)->Alive());
  EXPECT_TRUE(HealthServing(*(*proc)->channel()));
  ASSERT_TRUE(WaitForServer(
      *stub, [](const auto& r) { return !r.kvstore_connected() && r.running_requests() == 0; }, absl::Seconds(10)));

  // 3. Store down: what fits the device budget is served, longer requests are UNAVAILABLE.
  Outcome small = RunGenerate(*stub, Greedy({1, 300, 301, 302}, 20));
  ASSERT_TRUE(small.status.ok()) << small.status.error_message();
  EXPECT_EQ(small.tokens.size(), 20u);
  Outcome refused = RunGenerate(*stub, Greedy(LongPrompt(200), 8));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.status.error_message().find("not reachable"), std::string::npos) << refused.status.error_message();

  // 4. The store comes back on the same data dir: compute re-attaches, the prefix is read back
  //    from the persisted disk tier, and the output is unchanged.
  auto restarted = KvStoreProcess::Start({kv_dir, {}});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(WaitForServer(
      *stub, [](const auto& r) { return r.kvstore_connected() && r.kvstore_reconnects() >= 1; }, absl::Seconds(20)));
  Outcome after = RunGenerate(*stub, Greedy(LongPrompt(200), 8));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message() << (*proc)->Log();
  EXPECT_EQ(after.final.finish_reason(), v1::FINISH_REASON_LENGTH) << after.final.error();
  EXPECT_GT(after.final.usage().cached_tokens_disk(), 0);
  EXPECT_EQ(after.tokens, first.tokens);
  auto info = ServerInfo(*stub);
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->cached_tokens_disk(), 0);
  EXPECT_GT(info->disk_tier().pages(), 0);
  EXPECT_EQ((*proc)->Stop(), 0) << (*proc)->Log();
}

}  // namespace
}  // namespace leoam::service::testing
