#include "kvstore/lease_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

using ::testing::UnorderedElementsAre;

TEST(LeaseTableTest, ReleaseReturnsThePinnedOffsetsOnce) {
  LeaseTable t;
  const absl::Time now = absl::Now();
  const uint64_t id = t.Create(1, {64, 128}, now + absl::Seconds(1));
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(t.Owns(id, 1));
  EXPECT_FALSE(t.Owns(id, 2));
  EXPECT_THAT(t.Release(id), UnorderedElementsAre(64, 128));
  EXPECT_TRUE(t.Release(id).empty());
  EXPECT_EQ(t.size(), 0u);
}

TEST(LeaseTableTest, ExpiresOnlyLeasesPastTheirDeadline) {
  LeaseTable t;
  const absl::Time now = absl::Now();
  t.Create(1, {1}, now + absl::Seconds(1));
  const uint64_t late = t.Create(1, {2}, now + absl::Seconds(10));
  EXPECT_TRUE(t.ExpireUpTo(now).empty());
  EXPECT_THAT(t.ExpireUpTo(now + absl::Seconds(2)), UnorderedElementsAre(1));
  EXPECT_TRUE(t.Owns(late, 1));
}

TEST(LeaseTableTest, RemoveSessionDropsOnlyThatSession) {
  LeaseTable t;
  const absl::Time later = absl::Now() + absl::Hours(1);
  t.Create(1, {1, 2}, later);
  const uint64_t other = t.Create(2, {3}, later);
  EXPECT_THAT(t.RemoveSession(1), UnorderedElementsAre(1, 2));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.Owns(other, 2));
}

}  // namespace
}  // namespace leoam::kvstore
