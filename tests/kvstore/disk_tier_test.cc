#include "kvstore/disk_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
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

// PageInfo of a page as the store hands it to Write: sizes and the payload's CRC32C.
PageInfo Info(uint8_t encoding, const std::vector<uint8_t>& payload, uint32_t abstract_bytes) {
  PageInfo info;
  info.encoding = encoding;
  info.payload_bytes = static_cast<uint32_t>(payload.size());
  info.abstract_bytes = abstract_bytes;
  info.payload_crc = Crc32c(payload.data(), payload.size());
  return info;
}

// An aligned buffer, like an arena block (O_DIRECT reads need one).
struct Aligned {
  explicit Aligned(size_t n, uint8_t fill = 0xee)
      : size(n), p(static_cast<uint8_t*>(std::aligned_alloc(kSegmentAlign, SegmentPadded(n))), &std::free) {
    std::memset(p.get(), fill, SegmentPadded(n));
  }
  uint8_t* data() { return p.get(); }
  std::vector<uint8_t> bytes() const { return std::vector<uint8_t>(p.get(), p.get() + size); }
  size_t size;
  std::unique_ptr<uint8_t, decltype(&std::free)> p;
};

std::vector<std::string> SegmentFiles(const std::string& data_dir) {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(data_dir + "/segments")) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(DiskTierTest, WritesAreReadBackAfterReopen) {
  testing::TempDir dir;
  std::vector<uint8_t> payload(5000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  {
    auto tier = DiskTier::Open(DiskTierOptions{dir.File("data")});
    ASSERT_TRUE(tier.ok()) << tier.status();
    ASSERT_TRUE((*tier)->PutFingerprint(FingerprintRecord{"model-a", 3, Layout{2, 16, 4, 8, 1}}).ok());
    std::vector<PageWrite> w = {{Key(3, 1, 0), std::nullopt, Info(1, payload, 3), payload.data(), "abc"},
                                {Key(3, 2, 1), Key(3, 1, 0).node.hash, Info(5, payload, 0), payload.data(), ""}};
    ASSERT_TRUE((*tier)->Write(absl::MakeSpan(w), {}).ok());
    // Write placed the payloads, one after the other.
    EXPECT_NE(w[0].info.where.segment, 0u);
    EXPECT_EQ(w[1].info.where.offset, w[0].info.where.offset + SegmentPadded(5000));
  }
  auto tier = DiskTier::Open(DiskTierOptions{dir.File("data")});
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
      ASSERT_TRUE(parent.has_value());
      EXPECT_EQ(*parent, Key(3, 1, 0).node.hash);
      EXPECT_EQ(info.encoding, 5);
    } else {
      EXPECT_FALSE(parent.has_value());
      EXPECT_EQ(info.abstract_bytes, 3u);
    }
  }).ok());
  EXPECT_EQ(seen, 2);
  (*tier)->FinishLoad();
  EXPECT_EQ(info1.payload_crc, Crc32c(payload.data(), payload.size()));
  EXPECT_EQ(info1.payload_bytes, 5000u);

  Aligned back(5000);
  ASSERT_TRUE((*tier)->ReadPage(info1, back.data()).ok());
  EXPECT_EQ(back.bytes(), payload);
  PageInfo wrong_crc = info1;
  wrong_crc.payload_crc ^= 1;
  EXPECT_EQ((*tier)->ReadPage(wrong_crc, back.data()).code(), absl::StatusCode::kDataLoss);
  PageInfo gone = info1;
  gone.where.segment += 100;
  EXPECT_EQ((*tier)->ReadPage(gone, back.data()).code(), absl::StatusCode::kNotFound);
  std::vector<std::optional<std::string>> abstracts;
  ASSERT_TRUE((*tier)->ReadAbstracts({Key(3, 1, 0), Key(3, 9, 0)}, &abstracts).ok());
  EXPECT_EQ(abstracts[0], std::optional<std::string>("abc"));
  EXPECT_FALSE(abstracts[1].has_value());
}

TEST(DiskTierTest, DeletesRemoveMetadataAndFreeDeadSegments) {
  testing::TempDir dir;
  DiskTierOptions options{dir.File("data")};
  options.segment_bytes = 1 << 20;
  auto tier = DiskTier::Open(options);
  ASSERT_TRUE(tier.ok());
  std::vector<uint8_t> payload(250000, 1);  // 4 fill most of a 1 MiB segment
  std::vector<PageWrite> writes;
  for (uint8_t h = 0; h < 4; ++h) writes.push_back({Key(7, h, 0), std::nullopt, Info(1, payload, 1), payload.data(), "x"});
  ASSERT_TRUE((*tier)->Write(absl::MakeSpan(writes), {}).ok());  // one segment (a request is never split)
  std::vector<PageWrite> other = {{Key(8, 0, 0), std::nullopt, Info(1, payload, 1), payload.data(), "y"}};
  ASSERT_TRUE((*tier)->Write(absl::MakeSpan(other), {}).ok());  // does not fit: the next segment
  EXPECT_NE(other[0].info.where.segment, writes[0].info.where.segment);
  EXPECT_EQ(SegmentFiles(dir.File("data")).size(), 2u);

  ASSERT_TRUE((*tier)->Write({}, {DiskPageRef{writes[0].key, writes[0].info}}).ok());
  Aligned back(payload.size());
  EXPECT_TRUE((*tier)->ReadPage(writes[1].info, back.data()).ok());
  std::vector<DiskPageRef> rest;
  for (int i = 1; i < 4; ++i) rest.push_back(DiskPageRef{writes[i].key, writes[i].info});
  ASSERT_TRUE((*tier)->DeleteFingerprintPages(7, rest).ok());
  // Every page of the first segment is dead: its file is gone.
  EXPECT_EQ(SegmentFiles(dir.File("data")).size(), 1u);
  EXPECT_EQ((*tier)->ReadPage(writes[1].info, back.data()).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*tier)->ReadPage(other[0].info, back.data()).ok());
  tier->reset();
  tier = DiskTier::Open(options);
  ASSERT_TRUE(tier.ok());
  int left = 0;
  ASSERT_TRUE((*tier)->ScanPages([&](const PageKey& k, const auto&, const auto&) {
    ++left;
    EXPECT_EQ(k.node.fp_id, 8u);
  }).ok());
  EXPECT_EQ(left, 1);
}

// Many pages in one call, with and without O_DIRECT, aligned and unaligned destinations, in a mix
// of good, checksum-failing and missing pages: each gets its own status.
TEST(DiskTierTest, ReadPagesReadsABatchAndChecksEachPage) {
  for (bool direct : {true, false}) {
    testing::TempDir dir;
    DiskTierOptions options{dir.File("data")};
    options.direct_reads = direct;
    auto tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok()) << tier.status();
    constexpr int kPages = 40;
    std::vector<std::vector<uint8_t>> payloads(kPages);
    std::vector<PageWrite> writes;
    for (int i = 0; i < kPages; ++i) {
      payloads[i].resize(i % 3 == 0 ? 65536 : 30000 + i);
      for (size_t k = 0; k < payloads[i].size(); ++k) payloads[i][k] = static_cast<uint8_t>(k * 31 + i);
      writes.push_back({Key(1, static_cast<uint8_t>(i), 0), std::nullopt, Info(1, payloads[i], 0), payloads[i].data(), ""});
    }
    ASSERT_TRUE((*tier)->Write(absl::MakeSpan(writes).subspan(0, 20), {}).ok());
    ASSERT_TRUE((*tier)->Write(absl::MakeSpan(writes).subspan(20), {}).ok());
    std::vector<PageInfo> infos;
    for (int i = 0; i < kPages; ++i) infos.push_back(writes[i].info);
    infos.push_back(writes[0].info);
    infos.back().where.segment += 50;  // a segment that does not exist
    infos[5].payload_crc ^= 1;          // a checksum that does not match what is stored
    std::vector<Aligned> out;
    for (const PageInfo& info : infos) out.emplace_back(info.payload_bytes);
    std::vector<std::vector<uint8_t>> unaligned(kPages);
    std::vector<uint8_t*> dsts;
    for (size_t i = 0; i < infos.size(); ++i) {
      if (i % 4 == 3 && i < kPages) {  // every 4th through an unaligned buffer: buffered read
        unaligned[i].assign(infos[i].payload_bytes + 1, 0xee);
        dsts.push_back(unaligned[i].data() + 1);
      } else {
        dsts.push_back(out[i].data());
      }
    }
    std::vector<absl::Status> statuses;
    (*tier)->ReadPages(infos, dsts, &statuses);
    ASSERT_EQ(statuses.size(), infos.size());
    for (int i = 0; i < kPages; ++i) {
      if (i == 5) {
        EXPECT_EQ(statuses[i].code(), absl::StatusCode::kDataLoss) << "direct=" << direct;
        continue;
      }
      ASSERT_TRUE(statuses[i].ok()) << statuses[i] << " direct=" << direct;
      EXPECT_EQ(std::memcmp(dsts[i], payloads[i].data(), payloads[i].size()), 0) << "page " << i << " direct=" << direct;
    }
    EXPECT_EQ(statuses[kPages].code(), absl::StatusCode::kNotFound);
  }
}

// A payload byte flipped on disk is DATA_LOSS, never served; a segment that vanished takes its
// pages' metadata with it at the next start.
TEST(DiskTierTest, CorruptOrMissingSegmentBytesAreNeverServed) {
  testing::TempDir dir;
  DiskTierOptions options{dir.File("data")};
  std::vector<uint8_t> payload(8192, 3);
  std::vector<PageWrite> w = {{Key(1, 1, 0), std::nullopt, Info(1, payload, 0), payload.data(), ""}};
  {
    auto tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok());
    ASSERT_TRUE((*tier)->Write(absl::MakeSpan(w), {}).ok());
  }
  std::string seg;
  for (const std::string& f : SegmentFiles(dir.File("data"))) {
    if (std::filesystem::file_size(f) > kSegmentAlign) seg = f;
  }
  ASSERT_FALSE(seg.empty());
  {
    const int fd = ::open(seg.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "\x04", 1, static_cast<off_t>(w[0].info.where.offset + 100)), 1);
    ::close(fd);
  }
  {
    auto tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok());
    int n = 0;
    ASSERT_TRUE((*tier)->ScanPages([&](const auto&, const auto&, const auto&) { ++n; }).ok());
    EXPECT_EQ(n, 1);
    Aligned back(payload.size());
    EXPECT_EQ((*tier)->ReadPage(w[0].info, back.data()).code(), absl::StatusCode::kDataLoss);
  }
  std::filesystem::remove(seg);
  {
    auto tier = DiskTier::Open(options);
    ASSERT_TRUE(tier.ok());
    int n = 0;
    ASSERT_TRUE((*tier)->ScanPages([&](const auto&, const auto&, const auto&) { ++n; }).ok());
    EXPECT_EQ(n, 0);
  }
  auto tier = DiskTier::Open(options);  // and the metadata was deleted, not just skipped
  ASSERT_TRUE(tier.ok());
  int n = 0;
  ASSERT_TRUE((*tier)->ScanPages([&](const auto&, const auto&, const auto&) { ++n; }).ok());
  EXPECT_EQ(n, 0);
}

TEST(DiskTierTest, OtherFormatVersionsAreRefusedWithAClearError) {
  testing::TempDir dir;
  {
    auto tier = DiskTier::Open(DiskTierOptions{dir.File("data")});
    ASSERT_TRUE(tier.ok());
  }
  std::ifstream f(dir.File("data") + "/FORMAT");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "leoam-kvstore disk format " + std::to_string(kDiskFormatVersion));
  std::ofstream(dir.File("data") + "/FORMAT", std::ios::trunc) << "leoam-kvstore disk format 99\n";
  auto tier = DiskTier::Open(DiskTierOptions{dir.File("data")});
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(tier.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(tier.status().message().find("format 99"), std::string::npos) << tier.status();

  // A data dir of the unversioned formats (RocksDB right in it) is refused, not misread.
  std::filesystem::create_directories(dir.File("legacy"));
  std::ofstream(dir.File("legacy") + "/CURRENT") << "MANIFEST-000005\n";
  tier = DiskTier::Open(DiskTierOptions{dir.File("legacy")});
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(tier.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir.File("legacy") + "/FORMAT"));
}

}  // namespace
}  // namespace leoam::kvstore
