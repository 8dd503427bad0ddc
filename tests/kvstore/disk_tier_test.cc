#include "kvstore/disk_tier.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore {
namespace {

PageKey Key(uint32_t fp, uint8_t h, uint32_t layer) {
  PageKey k;
  k.node.fp_id = fp;
  k.node.hash.bytes[15] = h;
  k.layer = layer;
  return k;
}

TEST(DiskTierTest, WritesAreReadBackAfterReopen) {
  testing::TempDir dir;
  std::vector<uint8_t> payload(5000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  {
    auto tier = DiskTier::Open(DiskTierOptions{dir.File("db")});
    ASSERT_TRUE(tier.ok()) << tier.status();
    ASSERT_TRUE((*tier)->PutFingerprint(FingerprintRecord{"model-a", 3, Layout{2, 16, 4, 8, 1}}).ok());
    PageWrite w{Key(3, 1, 0), std::nullopt, PageInfo{1, 5000, 3}, payload.data(), "abc"};
    PageWrite w2{Key(3, 2, 1), Key(3, 1, 0).node.hash, PageInfo{2, 5000, 0}, payload.data(), ""};
    ASSERT_TRUE((*tier)->Write({w, w2}, {}).ok());
  }
  auto tier = DiskTier::Open(DiskTierOptions{dir.File("db")});
  ASSERT_TRUE(tier.ok());
  std::vector<FingerprintRecord> fps;
  ASSERT_TRUE((*tier)->LoadFingerprints(&fps).ok());
  ASSERT_EQ(fps.size(), 1u);
  EXPECT_EQ(fps[0].fingerprint, "model-a");
  EXPECT_EQ(fps[0].fp_id, 3u);
  EXPECT_TRUE(fps[0].layout == (Layout{2, 16, 4, 8, 1}));

  int seen = 0;
  ASSERT_TRUE((*tier)->ScanPages([&](const PageKey& k, const std::optional<Hash128>& parent, const PageInfo& info) {
    ++seen;
    if (k == Key(3, 2, 1)) {
      ASSERT_TRUE(parent.has_value());
      EXPECT_EQ(*parent, Key(3, 1, 0).node.hash);
      EXPECT_EQ(info.encoding, 2);
    } else {
      EXPECT_FALSE(parent.has_value());
      EXPECT_EQ(info.abstract_bytes, 3u);
    }
  }).ok());
  EXPECT_EQ(seen, 2);

  std::vector<uint8_t> back(5000);
  ASSERT_TRUE((*tier)->ReadPage(Key(3, 1, 0), back.data(), back.size()).ok());
  EXPECT_EQ(back, payload);
  EXPECT_EQ((*tier)->ReadPage(Key(3, 1, 0), back.data(), 10).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*tier)->ReadPage(Key(3, 9, 0), back.data(), 5000).code(), absl::StatusCode::kNotFound);
  std::vector<std::optional<std::string>> abstracts;
  ASSERT_TRUE((*tier)->ReadAbstracts({Key(3, 1, 0), Key(3, 9, 0)}, &abstracts).ok());
  EXPECT_EQ(abstracts[0], std::optional<std::string>("abc"));
  EXPECT_FALSE(abstracts[1].has_value());
}

TEST(DiskTierTest, DeletesRemoveEveryColumnFamilyEntry) {
  testing::TempDir dir;
  auto tier = DiskTier::Open(DiskTierOptions{dir.File("db")});
  ASSERT_TRUE(tier.ok());
  std::vector<uint8_t> payload(2000, 1);
  std::vector<PageWrite> writes;
  for (uint8_t h = 0; h < 4; ++h) writes.push_back({Key(7, h, 0), std::nullopt, PageInfo{1, 2000, 1}, payload.data(), "x"});
  writes.push_back({Key(8, 0, 0), std::nullopt, PageInfo{1, 2000, 1}, payload.data(), "y"});
  ASSERT_TRUE((*tier)->Write(writes, {}).ok());
  ASSERT_TRUE((*tier)->Write({}, {Key(7, 0, 0)}).ok());
  ASSERT_TRUE((*tier)->DeleteFingerprintPages(7).ok());
  int left = 0;
  ASSERT_TRUE((*tier)->ScanPages([&](const PageKey& k, const auto&, const auto&) {
    ++left;
    EXPECT_EQ(k.node.fp_id, 8u);
  }).ok());
  EXPECT_EQ(left, 1);
  std::vector<uint8_t> back(2000);
  EXPECT_EQ((*tier)->ReadPage(Key(7, 1, 0), back.data(), 2000).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*tier)->ReadPage(Key(8, 0, 0), back.data(), 2000).ok());
}

}  // namespace
}  // namespace leoam::kvstore
