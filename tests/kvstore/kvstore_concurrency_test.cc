// Integration: several clients at once against one leoam-kvstore — threads in this process and
// separate client processes — putting private chains and racing on a shared one.
#include <spawn.h>
#include <sys/wait.h>

#include <thread>

#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace leoam::kvstore::testing {
namespace {

constexpr uint32_t kChainsPerWorker = 3, kLen = 32;

TEST(KvStoreConcurrencyTest, ThreadsAndProcessesShareOneStore) {
  leoam::testing::TempDir dir;
  // A small memory tier so that fetches also go to disk and eviction races with leases.
  auto proc = KvStoreProcess::Start({dir.path(), {"--memory_limit=1MiB"}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  const std::string target = (*proc)->target();

  std::vector<pid_t> children;
  for (uint32_t w = 1; w <= 3; ++w) {
    std::vector<std::string> args = {LEOAM_KVSTORE_WORKER, target, std::to_string(w), std::to_string(kChainsPerWorker),
                                      std::to_string(kLen)};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    children.push_back(pid);
  }
  std::vector<absl::Status> results(3);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { results[t] = RunWorkload(target, 10 + t, kChainsPerWorker, kLen); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker process failed";
  }

  // Everyone's chains are there, whole, from a fresh client.
  ClientOptions o;
  o.target = target;
  auto client = KvStoreClient::Connect(o, "model-concurrency", TestLayout());
  ASSERT_TRUE(client.ok());
  for (uint32_t w : {1u, 2u, 3u, 10u, 11u, 12u}) {
    for (uint32_t c = 0; c < kChainsPerWorker; ++c) {
      size_t ok = 0;
      ASSERT_TRUE(FetchAndCheck(**client, w * 1000 + c, 0, kLen, &ok).ok());
      EXPECT_EQ(ok, size_t{kLen} * TestLayout().num_layers);
    }
  }
  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok());
  // 6 workers x 3 chains + the shared chain, stored once.
  EXPECT_EQ(stats->disk.pages, (6u * kChainsPerWorker + 1) * kLen * TestLayout().num_layers);
  EXPECT_EQ(stats->leases, 0u);
  EXPECT_EQ(stats->staging_bytes, 0u);
  EXPECT_LE(stats->memory.bytes, 1u << 20);
  EXPECT_TRUE((*proc)->Alive());
}

TEST(KvStoreConcurrencyTest, ConcurrentPutsUnderEvictionKeepChainsWhole) {
  leoam::testing::TempDir dir;
  constexpr uint64_t kDiskLimit = 1ull << 20;  // ~250 pages; the threads write ~1500
  auto proc = KvStoreProcess::Start({dir.path(), {"--disk_limit=" + std::to_string(kDiskLimit)}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  constexpr uint32_t kThreads = 4, kChains = 6, kNodes = 32;
  std::vector<std::thread> threads;
  std::vector<absl::Status> errors(kThreads);
  for (uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ClientOptions o;
      o.target = (*proc)->target();
      auto client = KvStoreClient::Connect(o, "model-evict-concurrent", TestLayout());
      if (!client.ok()) {
        errors[t] = client.status();
        return;
      }
      std::vector<bool> dead(kChains, false);
      for (uint32_t n = 0; n < kNodes; n += 4) {
        for (uint32_t c = 0; c < kChains; ++c) {
          if (dead[c]) continue;
          // Chain 0 is shared by all threads; the others are private.
          const uint32_t chain = c == 0 ? 500 : 600 + t * 100 + c;
          absl::Status s = PutNodes(**client, chain, n, 4);
          if (absl::IsFailedPrecondition(s)) {
            dead[c] = true;  // its tail was evicted (or another thread's put of it is in flight)
          } else if (!s.ok()) {
            errors[t] = s;
            return;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : errors) ASSERT_TRUE(s.ok()) << s;

  ClientOptions o;
  o.target = (*proc)->target();
  auto client = KvStoreClient::Connect(o, "model-evict-concurrent", TestLayout());
  ASSERT_TRUE(client.ok());
  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_LE(stats->disk.bytes, kDiskLimit);
  EXPECT_GT(stats->disk.evictions, 0u);
  std::vector<uint32_t> chains = {500};
  for (uint32_t t = 0; t < kThreads; ++t) {
    for (uint32_t c = 1; c < kChains; ++c) chains.push_back(600 + t * 100 + c);
  }
  uint64_t pages = 0;
  for (uint32_t chain : chains) {
    std::vector<PageRef> refs;
    for (uint32_t i = 0; i < kNodes; ++i) {
      for (uint32_t l = 0; l < TestLayout().num_layers; ++l) refs.push_back(PageRef{ChainHash(chain, i), l});
    }
    auto r = (*client)->FetchPages(refs);
    ASSERT_TRUE(r.ok());
    bool gap = false;
    for (size_t i = 0; i < refs.size(); ++i) {
      const FetchedPage& p = r->pages[i];
      if (p.found) {
        ++pages;
        EXPECT_FALSE(gap) << "chain " << chain << " page " << i << " stored after a missing one";
        EXPECT_TRUE(PayloadMatches(chain, static_cast<uint32_t>(i / 2), static_cast<uint32_t>(i % 2), p.data, p.length));
      } else {
        gap = true;
      }
    }
    ASSERT_TRUE((*client)->Release({r->lease_id}).ok());
  }
  EXPECT_EQ(pages, stats->disk.pages);
}

}  // namespace
}  // namespace leoam::kvstore::testing
