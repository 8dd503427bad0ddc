// Integration: the real leoam-kvstore process on a unix socket in a temp dir. Puts and fetches
// 10,000 pages through the arena, survives a clean restart, and a kill -9 in the middle of a stream
// of puts loses nothing it acknowledged and never serves a partial page.
#include <atomic>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore::testing {
namespace {

constexpr uint32_t kChains = 50;
constexpr uint32_t kNodesPerChain = 100;  // x 2 layers = 10,000 pages
constexpr uint32_t kBatchNodes = 25;      // 50 pages per PutPages

std::unique_ptr<KvStoreClient> Connect(const KvStoreProcess& p) {
  ClientOptions o;
  o.target = p.target();
  o.client_name = "persistence-test";
  auto c = KvStoreClient::Connect(o, "model-persistence", TestLayout());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

std::vector<PageHash> ChainHashes(uint32_t chain, uint32_t n) {
  std::vector<PageHash> v;
  for (uint32_t i = 0; i < n; ++i) v.push_back(ChainHash(chain, i));
  return v;
}

TEST(KvStorePersistenceTest, TenThousandPagesSurviveARestartByteIdentical) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  {
    auto client = Connect(**proc);
    ASSERT_NE(client, nullptr);
    for (uint32_t c = 0; c < kChains; ++c) {
      for (uint32_t n = 0; n < kNodesPerChain; n += kBatchNodes) ASSERT_TRUE(PutNodes(*client, c, n, kBatchNodes).ok());
    }
    size_t ok = 0;
    for (uint32_t c = 0; c < kChains; ++c) {
      for (uint32_t n = 0; n < kNodesPerChain; n += 32) {
        ASSERT_TRUE(FetchAndCheck(*client, c, n, std::min(32u, kNodesPerChain - n), &ok).ok());
      }
    }
    EXPECT_EQ(ok, 10000u);
    auto stats = client->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->disk.pages, 10000u);
    EXPECT_EQ(stats->leases, 0u);
    EXPECT_EQ(stats->staging_bytes, 0u);
  }
  // A client that stays connected across the restart: its session is gone, Reconnect re-attaches.
  auto survivor = Connect(**proc);
  ASSERT_NE(survivor, nullptr);
  const std::string old_instance = survivor->hello().server_instance_id;
  EXPECT_EQ((*proc)->Stop(), 0) << (*proc)->Log();

  proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  EXPECT_FALSE(survivor->LookupPrefix(ChainHashes(0, 1)).ok());
  ASSERT_TRUE(survivor->Reconnect().ok());
  EXPECT_NE(survivor->hello().server_instance_id, old_instance);
  size_t survivor_ok = 0;
  ASSERT_TRUE(FetchAndCheck(*survivor, 3, 0, 10, &survivor_ok).ok());
  EXPECT_EQ(survivor_ok, 20u);
  auto client = Connect(**proc);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->hello().fingerprint_known);
  size_t ok = 0;
  for (uint32_t c = 0; c < kChains; ++c) {
    auto info = client->LookupPrefix(ChainHashes(c, kNodesPerChain + 5));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->num_present, kNodesPerChain);
    // A fresh process starts with an empty memory tier; only what the survivor fetched is cached.
    EXPECT_EQ(info->num_in_memory, c == 3 ? 10u : 0u);
    for (uint32_t n = 0; n < kNodesPerChain; n += 50) ASSERT_TRUE(FetchAndCheck(*client, c, n, 50, &ok).ok());
  }
  EXPECT_EQ(ok, 10000u);
  // Abstracts come back too.
  auto abstracts = client->GetAbstracts({PageRef{ChainHash(7, 42), 1}, PageRef{ChainHash(7, 4242), 0}});
  ASSERT_TRUE(abstracts.ok());
  EXPECT_EQ((*abstracts)[0], std::optional<std::string>(AbstractFor(7, 42, 1)));
  EXPECT_FALSE((*abstracts)[1].has_value());
}

// Streams puts, kill -9s the store mid-stream, restarts it: every acknowledged page is there and
// intact, at most the batch in flight beyond, nothing half present.
void KillNineDuringPuts(const std::vector<std::string>& flags) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), flags});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto client = Connect(**proc);
  ASSERT_NE(client, nullptr);

  // The writer streams 4-node batches of chains; acked[c] = nodes of chain c acknowledged.
  constexpr uint32_t kStreamChains = 40, kLen = 64, kStep = 4;
  std::vector<std::atomic<uint32_t>> acked(kStreamChains);
  std::atomic<uint32_t> batches{0};
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    for (uint32_t n = 0; n < kLen && !failed; n += kStep) {
      for (uint32_t c = 0; c < kStreamChains && !failed; ++c) {
        if (PutNodes(*client, 1000 + c, n, kStep).ok()) {
          acked[c] = n + kStep;
          ++batches;
        } else {
          failed = true;
        }
      }
    }
  });
  // Kill while puts are in flight (well before the stream ends).
  while (batches < 150 && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  (*proc)->Kill9();
  writer.join();
  ASSERT_TRUE(failed) << "the stream ended before the kill; make it longer";
  uint64_t total_acked = 0;
  for (auto& a : acked) total_acked += a;
  ASSERT_GT(total_acked, 0u);

  proc = KvStoreProcess::Start({dir.path(), flags});
  ASSERT_TRUE(proc.ok()) << proc.status();
  client = Connect(**proc);
  ASSERT_NE(client, nullptr);
  for (uint32_t c = 0; c < kStreamChains; ++c) {
    auto info = client->LookupPrefix(ChainHashes(1000 + c, kLen));
    ASSERT_TRUE(info.ok());
    // Everything acknowledged is there; at most the one batch in flight may be there too.
    EXPECT_GE(info->num_present, acked[c].load()) << "chain " << c;
    EXPECT_LE(info->num_present, acked[c].load() + kStep) << "chain " << c;
    // Every page reported present is served intact; nothing beyond the prefix is half there.
    size_t ok = 0;
    ASSERT_TRUE(FetchAndCheck(*client, 1000 + c, 0, kLen, &ok).ok()) << "chain " << c;
    EXPECT_EQ(ok, size_t{info->num_present} * TestLayout().num_layers) << "chain " << c;
  }
}

TEST(KvStorePersistenceTest, KillNineDuringPutsKeepsEveryAcknowledgedPage) { KillNineDuringPuts({}); }

TEST(KvStorePersistenceTest, KillNineDuringSyncPutsKeepsEveryAcknowledgedPage) {
  KillNineDuringPuts({"--durability=sync"});
}

TEST(KvStorePersistenceTest, HealthServiceReportsServing) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto channel = grpc::CreateChannel((*proc)->target(), grpc::InsecureChannelCredentials());
  // grpc.health.v1.HealthCheckRequest{service: ""} serializes to no bytes; the reply
  // HealthCheckResponse{status: SERVING (1)} to 0x08 0x01.
  grpc::Slice empty;
  grpc::ByteBuffer req(&empty, 1), resp;
  grpc::ClientContext ctx;
  grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), grpc::internal::RpcMethod("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC),
      &ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace leoam::kvstore::testing
