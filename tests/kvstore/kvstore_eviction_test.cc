// Integration: capacity limits and chain-whole LRU eviction in the real process. The workload is
// several times larger than both the memory and the disk limit; LookupPrefix must never report a
// chain prefix that cannot be fetched whole, and stored pages must always form chain prefixes.
#include <filesystem>
#include <random>

#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore::testing {
namespace {

constexpr uint64_t kDiskLimit = 2ull << 20;    // ~500 pages of 4 KiB
constexpr uint64_t kMemoryLimit = 512ull << 10;  // ~128 pages
constexpr uint32_t kChains = 30, kLen = 40, kStep = 4;  // 2400 pages, ~10 MB: 5x disk, 20x memory

std::vector<PageHash> Hashes(uint32_t chain, uint32_t n) {
  std::vector<PageHash> v;
  for (uint32_t i = 0; i < n; ++i) v.push_back(ChainHash(chain, i));
  return v;
}

// Fetches every node of a chain; returns how many leading nodes are whole, and fails the test
// if a node is present (any layer) after a missing one, or a present page is not intact.
uint32_t CheckChainIsPrefix(KvStoreClient& client, uint32_t chain) {
  std::vector<PageRef> refs;
  for (uint32_t i = 0; i < kLen; ++i) {
    for (uint32_t l = 0; l < TestLayout().num_layers; ++l) refs.push_back(PageRef{ChainHash(chain, i), l});
  }
  auto r = client.FetchPages(refs);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return 0;
  uint32_t whole = 0;
  bool gap = false;
  for (uint32_t i = 0; i < kLen; ++i) {
    bool all = true, any = false;
    for (uint32_t l = 0; l < TestLayout().num_layers; ++l) {
      const FetchedPage& p = r->pages[i * TestLayout().num_layers + l];
      all = all && p.found;
      any = any || p.found;
      if (p.found) {
        EXPECT_TRUE(PayloadMatches(chain, i, l, p.data, p.length)) << chain << "/" << i << "/" << l;
      }
    }
    if (any) {
      EXPECT_FALSE(gap) << "chain " << chain << " node " << i << " is stored but a predecessor is not";
    }
    if (!all) gap = true;
    if (all && !gap) ++whole;
  }
  EXPECT_TRUE(client.Release({r->lease_id}).ok());
  return whole;
}

TEST(KvStoreEvictionTest, LimitsHoldAndChainsStayWhole) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start(
      {dir.path(), {"--disk_limit=" + std::to_string(kDiskLimit), "--memory_limit=" + std::to_string(kMemoryLimit)}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  ClientOptions o;
  o.target = (*proc)->target();
  auto client = KvStoreClient::Connect(o, "model-eviction", TestLayout());
  ASSERT_TRUE(client.ok()) << client.status();

  std::mt19937 rng(11);
  for (uint32_t n = 0; n < kLen; n += kStep) {
    for (uint32_t c = 0; c < kChains; ++c) {
      absl::Status s = PutNodes(**client, c, n, kStep);
      if (absl::IsFailedPrecondition(s)) continue;  // this chain's tail was evicted: cannot extend it
      ASSERT_TRUE(s.ok()) << s;
      // Whatever LookupPrefix reports for a random chain is fetchable whole.
      const uint32_t probe = rng() % kChains;
      auto info = (*client)->LookupPrefix(Hashes(probe, kLen));
      ASSERT_TRUE(info.ok());
      EXPECT_LE(info->num_present, CheckChainIsPrefix(**client, probe));
      auto stats = (*client)->Stats();
      ASSERT_TRUE(stats.ok());
      ASSERT_LE(stats->disk.bytes, kDiskLimit);
      ASSERT_LE(stats->memory.bytes, kMemoryLimit);
    }
  }
  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->disk.evictions, 0u);
  EXPECT_GT(stats->memory.evictions, 0u);
  EXPECT_GT(stats->disk.bytes, kDiskLimit / 2);  // eviction frees what it must, not everything
  uint64_t stored_nodes = 0;
  for (uint32_t c = 0; c < kChains; ++c) {
    auto info = (*client)->LookupPrefix(Hashes(c, kLen));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->num_present, CheckChainIsPrefix(**client, c));
    stored_nodes += info->num_present;
  }
  EXPECT_EQ(stored_nodes * TestLayout().num_layers, stats->disk.pages);
}

TEST(KvStoreEvictionTest, RecentlyUsedChainOutlivesColdOnes) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {"--disk_limit=" + std::to_string(kDiskLimit)}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  ClientOptions o;
  o.target = (*proc)->target();
  auto client = KvStoreClient::Connect(o, "model-lru", TestLayout());
  ASSERT_TRUE(client.ok()) << client.status();
  // Six chains of 40 nodes (~480 pages) fill the disk tier; chain 0 is the oldest.
  for (uint32_t c = 0; c < 6; ++c) {
    for (uint32_t n = 0; n < kLen; n += 10) ASSERT_TRUE(PutNodes(**client, c, n, 10).ok());
  }
  ASSERT_EQ(CheckChainIsPrefix(**client, 0), kLen);  // fetching chain 0 makes it the most recent
  // Three new chains push out about half of what is stored.
  for (uint32_t c = 100; c < 103; ++c) {
    for (uint32_t n = 0; n < kLen; n += 10) ASSERT_TRUE(PutNodes(**client, c, n, 10).ok());
  }
  EXPECT_EQ(CheckChainIsPrefix(**client, 0), kLen);
  EXPECT_LT(CheckChainIsPrefix(**client, 1), kLen);  // the coldest untouched chain lost its tail
}

uint64_t SegmentFileBytes(const std::string& data_dir, size_t* files) {
  uint64_t bytes = 0;
  *files = 0;
  for (const auto& e : std::filesystem::directory_iterator(data_dir + "/segments")) {
    bytes += e.file_size();
    ++*files;
  }
  return bytes;
}

// Payload files: a segment whose pages are all evicted or dropped is deleted, so files track the
// disk limit when whole segments die (chains evicted in the order they were written).
TEST(KvStoreEvictionTest, SegmentsOfEvictedAndDroppedChainsAreDeleted) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {"--disk_limit=" + std::to_string(kDiskLimit), "--segment_size=1MiB"}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  ClientOptions o;
  o.target = (*proc)->target();
  auto client = KvStoreClient::Connect(o, "model-segments", TestLayout());
  ASSERT_TRUE(client.ok()) << client.status();
  // 30 chains of 40 nodes, one after the other: ~10 MB through a 2 MB limit.
  for (uint32_t c = 0; c < kChains; ++c) {
    for (uint32_t n = 0; n < kLen; n += 10) ASSERT_TRUE(PutNodes(**client, c, n, 10).ok());
  }
  size_t files = 0;
  const uint64_t bytes = SegmentFileBytes(dir.File("data"), &files);
  auto stats = (*client)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->disk.evictions, 0u);
  ASSERT_LE(stats->disk.bytes, kDiskLimit);
  // Live data + at most about two partly dead segments (plus the segment being written).
  EXPECT_LE(bytes, kDiskLimit + (3u << 20)) << files << " segment files";
  ASSERT_TRUE((*client)->DropAll().ok());
  SegmentFileBytes(dir.File("data"), &files);
  EXPECT_EQ(files, 1u);  // only the active segment is left
  // The store still works after its segments went away, and after a restart.
  ASSERT_TRUE(PutNodes(**client, 500, 0, 10).ok());
  EXPECT_EQ((*proc)->Stop(), 0);
  proc = KvStoreProcess::Start({dir.path(), {"--segment_size=1MiB"}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  client = KvStoreClient::Connect(o, "model-segments", TestLayout());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(CheckChainIsPrefix(**client, 500), 10u);
  EXPECT_EQ(CheckChainIsPrefix(**client, kChains - 1), 0u);
}

}  // namespace
}  // namespace leoam::kvstore::testing
