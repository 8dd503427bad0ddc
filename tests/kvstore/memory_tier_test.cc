#include "kvstore/memory_tier.h"

#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

PageKey Key(uint8_t i) {
  PageKey k;
  k.node.fp_id = 1;
  k.node.hash.bytes[0] = i;
  return k;
}

class MemoryTierTest : public ::testing::Test {
 protected:
  // Inserts a page of `len` bytes, handing the tier the allocation's reference.
  uint64_t Put(MemoryTier& tier, uint8_t i, uint64_t len = 100) {
    uint64_t off = *arena_.Allocate(len);
    EXPECT_TRUE(tier.Insert(Key(i), MemoryPage{off, len, 1}));
    return off;
  }
  ArenaAllocator arena_{1 << 20};
};

TEST_F(MemoryTierTest, EvictsLeastRecentlyUsedFirst) {
  MemoryTier tier(&arena_, 300);
  Put(tier, 1);
  Put(tier, 2);
  Put(tier, 3);
  ASSERT_NE(tier.Lookup(Key(1)), nullptr);  // 1 becomes most recent; 2 is now the oldest
  Put(tier, 4);
  EXPECT_EQ(tier.EnforceLimit(), 1u);
  EXPECT_EQ(tier.Peek(Key(2)), nullptr);
  EXPECT_NE(tier.Peek(Key(1)), nullptr);
  EXPECT_EQ(tier.bytes(), 300u);
  EXPECT_EQ(tier.evictions(), 1u);
}

TEST_F(MemoryTierTest, NeverEvictsAPinnedPage) {
  MemoryTier tier(&arena_, 100);
  const uint64_t pinned = Put(tier, 1);
  arena_.Ref(pinned);  // a lease
  Put(tier, 2);
  tier.EnforceLimit();
  EXPECT_NE(tier.Peek(Key(1)), nullptr);
  EXPECT_EQ(tier.Peek(Key(2)), nullptr);
  EXPECT_FALSE(tier.EvictOne());  // only the pinned page is left
  arena_.Unref(pinned);
  EXPECT_TRUE(tier.EvictOne());
  EXPECT_EQ(arena_.used_bytes(), 0u);
}

TEST_F(MemoryTierTest, InsertOfACachedKeyTakesNothing) {
  MemoryTier tier(&arena_, 1000);
  Put(tier, 1);
  const uint64_t off = *arena_.Allocate(100);
  EXPECT_FALSE(tier.Insert(Key(1), MemoryPage{off, 100, 1}));
  EXPECT_EQ(arena_.RefCount(off), 1);  // still the caller's
  arena_.Unref(off);
  tier.Erase(Key(1));
  EXPECT_EQ(tier.pages(), 0u);
  EXPECT_EQ(arena_.used_bytes(), 0u);
}

}  // namespace
}  // namespace leoam::kvstore
