#include "kvstore/arena_allocator.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

TEST(ArenaAllocatorTest, AllocatesAlignedNonOverlappingBlocks) {
  ArenaAllocator a(1 << 20, 64);
  auto x = a.Allocate(100), y = a.Allocate(1);
  ASSERT_TRUE(x && y);
  EXPECT_EQ(*x % 64, 0u);
  EXPECT_EQ(*y % 64, 0u);
  EXPECT_EQ(a.BlockLength(*x), 128u);
  EXPECT_TRUE(*y >= *x + 128 || *x >= *y + 64);
  EXPECT_EQ(a.used_bytes(), 192u);
}

TEST(ArenaAllocatorTest, FailsWhenFullAndReusesFreedSpace) {
  ArenaAllocator a(4096, 64);
  std::vector<uint64_t> blocks;
  while (auto b = a.Allocate(1024)) blocks.push_back(*b);
  EXPECT_EQ(blocks.size(), 4u);
  EXPECT_FALSE(a.Allocate(1).has_value());
  EXPECT_TRUE(a.Unref(blocks[1]));
  EXPECT_TRUE(a.Unref(blocks[2]));
  // The two freed neighbours coalesce into one 2048-byte range.
  EXPECT_EQ(a.LargestFree(), 2048u);
  EXPECT_TRUE(a.Allocate(2048).has_value());
}

TEST(ArenaAllocatorTest, BlockLivesUntilTheLastReference) {
  ArenaAllocator a(4096, 64);
  uint64_t b = *a.Allocate(4096);
  a.Ref(b);
  EXPECT_EQ(a.RefCount(b), 2);
  EXPECT_FALSE(a.Unref(b));
  EXPECT_FALSE(a.Allocate(64).has_value());  // still held
  EXPECT_TRUE(a.Unref(b));
  EXPECT_EQ(a.RefCount(b), 0);
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(a.LargestFree(), 4096u);
}

TEST(ArenaAllocatorTest, RandomWorkloadKeepsBooksConsistent) {
  ArenaAllocator a(1 << 16, 64);
  std::mt19937 rng(7);
  std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, length
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 2 == 0) {
      const uint64_t len = 1 + rng() % 3000;
      if (auto b = a.Allocate(len)) {
        for (const auto& [off, l] : live) ASSERT_TRUE(*b >= off + l || off >= *b + a.BlockLength(*b));
        live.emplace_back(*b, a.BlockLength(*b));
      }
    } else {
      const size_t k = rng() % live.size();
      ASSERT_TRUE(a.Unref(live[k].first));
      live.erase(live.begin() + static_cast<long>(k));
    }
  }
  for (const auto& [off, l] : live) a.Unref(off);
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(a.LargestFree(), uint64_t{1} << 16);
}

}  // namespace
}  // namespace leoam::kvstore
