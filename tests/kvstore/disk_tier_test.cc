#include "kvstore/disk_tier.h"

#include <vector>

#include "gtest/gtest.h"
#include "kvstore/crc32c.h"
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

// PageInfo of a page as the store writes it: sequence-keyed, with the payload's CRC32C.
PageInfo Info(uint8_t encoding, const std::vector<uint8_t>& payload, uint32_t abstract_bytes, uint64_t seq) {
  return PageInfo{encoding, static_cast<uint32_t>(payload.size()), abstract_bytes, seq,
                  Crc32c(payload.data(), payload.size())};
}

TEST(DiskTierTest, WritesAreReadBackAfterReopen) {
  testing::TempDir dir;
  std::vector<uint8_t> payload(5000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  {
    auto tier = DiskTier::Open(DiskTierOptions{dir.File("db")});
    ASSERT_TRUE(tier.ok()) << tier.status();
    ASSERT_TRUE((*tier)->PutFingerprint(FingerprintRecord{"model-a", 3, Layout{2, 16, 4, 8, 1}}).ok());
    PageWrite w{Key(3, 1, 0), std::nullopt, Info(1, payload, 3, 1), payload.data(), "abc"};
    PageWrite w2{Key(3, 2, 1), Key(3, 1, 0).node.hash, Info(2, payload, 0, 2), payload.data(), ""};
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
  PageInfo info1;
  ASSERT_TRUE((*tier)->ScanPages([&](const PageKey& k, const std::optional<Hash128>& parent, const PageInfo& info) {
    ++seen;
    if (k == Key(3, 1, 0)) info1 = info;
    if (k == Key(3, 2, 1)) {
      EXPECT_EQ(info.disk_seq, 2u);
      ASSERT_TRUE(parent.has_value());
      EXPECT_EQ(*parent, Key(3, 1, 0).node.hash);
      EXPECT_EQ(info.encoding, 2);
    } else {
      EXPECT_FALSE(parent.has_value());
      EXPECT_EQ(info.abstract_bytes, 3u);
    }
  }).ok());
  EXPECT_EQ(seen, 2);
  // The metadata keeps what reads need: the payload's sequence key and checksum.
  EXPECT_EQ(info1.disk_seq, 1u);
  EXPECT_EQ(info1.payload_crc, Crc32c(payload.data(), payload.size()));

  std::vector<uint8_t> back(5000);
  ASSERT_TRUE((*tier)->ReadPage(Key(3, 1, 0), info1, back.data()).ok());
  EXPECT_EQ(back, payload);
  PageInfo short_info = info1;
  short_info.payload_bytes = 10;
  EXPECT_EQ((*tier)->ReadPage(Key(3, 1, 0), short_info, back.data()).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*tier)->ReadPage(Key(3, 9, 0), info1, back.data()).code(), absl::StatusCode::kNotFound);
  // The payload lives under its sequence key: another sequence number finds nothing.
  PageInfo other_seq = info1;
  other_seq.disk_seq = 7;
  EXPECT_EQ((*tier)->ReadPage(Key(3, 1, 0), other_seq, back.data()).code(), absl::StatusCode::kNotFound);
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
  for (uint8_t h = 0; h < 4; ++h) writes.push_back({Key(7, h, 0), std::nullopt, Info(1, payload, 1, 1 + h), payload.data(), "x"});
  writes.push_back({Key(8, 0, 0), std::nullopt, Info(1, payload, 1, 5), payload.data(), "y"});
  ASSERT_TRUE((*tier)->Write(writes, {}).ok());
  ASSERT_TRUE((*tier)->Write({}, {DiskPageRef{Key(7, 0, 0), 1}}).ok());
  std::vector<uint8_t> back(2000);
  EXPECT_EQ((*tier)->ReadPage(Key(7, 0, 0), writes[0].info, back.data()).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*tier)->ReadPage(Key(7, 1, 0), writes[1].info, back.data()).ok());
  ASSERT_TRUE((*tier)->DeleteFingerprintPages(7).ok());
  int left = 0;
  ASSERT_TRUE((*tier)->ScanPages([&](const PageKey& k, const auto&, const auto&) {
    ++left;
    EXPECT_EQ(k.node.fp_id, 8u);
  }).ok());
  EXPECT_EQ(left, 1);
  EXPECT_EQ((*tier)->ReadPage(Key(7, 1, 0), writes[1].info, back.data()).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*tier)->ReadPage(Key(8, 0, 0), writes[4].info, back.data()).ok());
}

// Many pages in one MultiGet, with and without O_DIRECT, in a mix of found, missing and
// checksum-failing pages: each gets its own status and only good pages are copied.
TEST(DiskTierTest, ReadPagesReadsABatchAndChecksEachPage) {
  for (bool direct : {true, false}) {
    testing::TempDir dir;
    DiskTierOptions options{dir.File("db")};
    options.direct_reads = direct;
    auto tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok()) << tier.status();
    constexpr int kPages = 40;
    std::vector<std::vector<uint8_t>> payloads(kPages);
    std::vector<PageWrite> writes;
    for (int i = 0; i < kPages; ++i) {
      payloads[i].resize(65536);
      for (size_t k = 0; k < payloads[i].size(); ++k) payloads[i][k] = static_cast<uint8_t>(k * 31 + i);
      writes.push_back({Key(1, static_cast<uint8_t>(i), 0), std::nullopt, Info(1, payloads[i], 0, 100 + i),
                        payloads[i].data(), ""});
    }
    ASSERT_TRUE((*tier)->Write(writes, {}).ok());
    // Reopen: reads come from flushed blob files (recovery flushes the memtable), not the memtable.
    tier->reset();
    tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok()) << tier.status();

    std::vector<PageKey> keys;
    std::vector<PageInfo> infos;
    for (int i = 0; i < kPages; ++i) {
      keys.push_back(writes[i].key);
      infos.push_back(writes[i].info);
    }
    keys.push_back(Key(1, 200, 0));  // never written
    infos.push_back(writes[0].info);
    infos[5].payload_crc ^= 1;  // a checksum that does not match what is stored
    std::vector<std::vector<uint8_t>> out(keys.size(), std::vector<uint8_t>(65536, 0xee));
    std::vector<uint8_t*> dsts;
    for (auto& o : out) dsts.push_back(o.data());
    std::vector<absl::Status> statuses;
    (*tier)->ReadPages(keys, infos, dsts, &statuses);
    ASSERT_EQ(statuses.size(), keys.size());
    for (int i = 0; i < kPages; ++i) {
      if (i == 5) {
        EXPECT_EQ(statuses[i].code(), absl::StatusCode::kDataLoss) << "direct=" << direct;
        continue;
      }
      ASSERT_TRUE(statuses[i].ok()) << statuses[i] << " direct=" << direct;
      EXPECT_EQ(out[i], payloads[i]) << "page " << i << " direct=" << direct;
    }
    EXPECT_EQ(statuses[kPages].code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(out[kPages], std::vector<uint8_t>(65536, 0xee));
  }
}

// Pages without a sequence number (written before sequence keys existed) keep the plain page key
// and RocksDB's own checksum.
TEST(DiskTierTest, PagesWithoutSequenceNumberUseThePageKey) {
  testing::TempDir dir;
  auto tier = DiskTier::Open(DiskTierOptions{dir.File("db")});
  ASSERT_TRUE(tier.ok());
  std::vector<uint8_t> payload(3000, 9);
  PageWrite w{Key(2, 1, 0), std::nullopt, PageInfo{1, 3000, 0}, payload.data(), ""};
  ASSERT_TRUE((*tier)->Write({w}, {}).ok());
  std::vector<uint8_t> back(3000);
  ASSERT_TRUE((*tier)->ReadPage(w.key, w.info, back.data()).ok());
  EXPECT_EQ(back, payload);
  ASSERT_TRUE((*tier)->Write({}, {DiskPageRef{w.key, 0}}).ok());
  EXPECT_EQ((*tier)->ReadPage(w.key, w.info, back.data()).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace leoam::kvstore
