#include "kvstore/segment_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore {
namespace {

// A kSegmentAlign-aligned buffer (what arena blocks are), so reads may use O_DIRECT.
struct Aligned {
  explicit Aligned(size_t n) : size(SegmentPadded(n)), p(static_cast<uint8_t*>(std::aligned_alloc(kSegmentAlign, size)), &std::free) {
    std::memset(p.get(), 0xee, size);
  }
  uint8_t* data() { return p.get(); }
  size_t size;
  std::unique_ptr<uint8_t, decltype(&std::free)> p;
};

std::vector<uint8_t> Payload(size_t n, int seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + seed * 7 + (i >> 9));
  return v;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SegmentStoreTest, AppendsAdjacentPaddedPagesAndReadsThemBack) {
  for (bool direct : {true, false}) {
    testing::TempDir dir;
    SegmentStoreOptions o{dir.File("segs")};
    o.direct_reads = direct;
    auto store = SegmentStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    // Odd sizes: every page starts aligned, right after the previous one's padding.
    const std::vector<uint32_t> lengths = {65536, 5000, 1, 4096, 12345};
    std::vector<std::vector<uint8_t>> payloads;
    std::vector<const uint8_t*> ptrs;
    for (size_t i = 0; i < lengths.size(); ++i) {
      payloads.push_back(Payload(lengths[i], static_cast<int>(i)));
      ptrs.push_back(payloads.back().data());
    }
    std::vector<SegmentLocation> where;
    ASSERT_TRUE((*store)->Append(ptrs, lengths, /*sync=*/true, &where).ok());
    ASSERT_EQ(where.size(), lengths.size());
    EXPECT_EQ(where[0].offset, kSegmentAlign);  // after the header
    for (size_t i = 1; i < where.size(); ++i) {
      EXPECT_EQ(where[i].segment, where[0].segment);
      EXPECT_EQ(where[i].offset, where[i - 1].offset + SegmentPadded(lengths[i - 1]));
    }
    // Read in reverse order, aligned (O_DIRECT when available) and unaligned (buffered) buffers.
    std::vector<Aligned> bufs;
    for (uint32_t n : lengths) bufs.emplace_back(n);
    std::vector<std::vector<uint8_t>> plain;
    std::vector<SegmentRead> reads;
    for (size_t i = lengths.size(); i-- > 0;) reads.push_back(SegmentRead{where[i], lengths[i], bufs[i].data()});
    for (size_t i = 0; i < lengths.size(); ++i) plain.emplace_back(lengths[i] + 1, 0);
    for (size_t i = 0; i < lengths.size(); ++i) reads.push_back(SegmentRead{where[i], lengths[i], plain[i].data() + 1});
    std::vector<absl::Status> st;
    (*store)->Read(reads, &st);
    for (size_t i = 0; i < lengths.size(); ++i) {
      ASSERT_TRUE(st[lengths.size() - 1 - i].ok()) << st[lengths.size() - 1 - i];
      ASSERT_TRUE(st[lengths.size() + i].ok()) << st[lengths.size() + i];
      EXPECT_EQ(std::memcmp(bufs[i].data(), payloads[i].data(), lengths[i]), 0) << i << " direct=" << direct;
      EXPECT_EQ(std::memcmp(plain[i].data() + 1, payloads[i].data(), lengths[i]), 0) << i;
    }
  }
}

// Padded payloads (aligned, zeros up to the padded length: arena blocks) go out with O_DIRECT
// where supported, interleaved with page-cache appends; all read back the same.
TEST(SegmentStoreTest, PaddedAppendsMixWithBufferedOnes) {
  testing::TempDir dir;
  auto store = SegmentStore::Open(SegmentStoreOptions{dir.File("segs")});
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<Aligned> blocks;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<SegmentLocation> all;
  for (int i = 0; i < 6; ++i) {
    const uint32_t n = 4096 * (i + 1) - (i % 2 == 0 ? 0 : 1000);
    payloads.push_back(Payload(n, i));
    blocks.emplace_back(n);
    std::memcpy(blocks.back().data(), payloads.back().data(), n);
    std::memset(blocks.back().data() + n, 0, SegmentPadded(n) - n);
    std::vector<SegmentLocation> w;
    const bool padded = i % 3 != 2;  // every third through the page cache
    const uint8_t* src = padded ? blocks.back().data() : payloads.back().data();
    ASSERT_TRUE((*store)->Append({src}, {n}, /*sync=*/i == 4, &w, padded).ok());
    all.push_back(w[0]);
  }
  for (size_t i = 0; i < all.size(); ++i) {
    Aligned back(payloads[i].size());
    std::vector<absl::Status> st;
    (*store)->Read({SegmentRead{all[i], static_cast<uint32_t>(payloads[i].size()), back.data()}}, &st);
    ASSERT_TRUE(st[0].ok()) << st[0];
    EXPECT_EQ(std::memcmp(back.data(), payloads[i].data(), payloads[i].size()), 0) << i;
  }
}

TEST(SegmentStoreTest, RollsOverAndDeletesSegmentsWithoutLivePages) {
  testing::TempDir dir;
  SegmentStoreOptions o{dir.File("segs")};
  o.segment_bytes = 1 << 20;
  auto store = SegmentStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<uint8_t> page = Payload(256 << 10, 1);
  std::vector<SegmentLocation> all;
  for (int i = 0; i < 8; ++i) {  // 256 KiB each: 3 per 1 MiB segment (the header takes 4 KiB)
    std::vector<SegmentLocation> w;
    ASSERT_TRUE((*store)->Append({page.data()}, {static_cast<uint32_t>(page.size())}, false, &w).ok());
    all.push_back(w[0]);
  }
  EXPECT_EQ(all[0].segment, all[2].segment);
  EXPECT_NE(all[2].segment, all[3].segment);
  EXPECT_EQ(all[7].segment, all[0].segment + 2);
  EXPECT_EQ((*store)->num_segments(), 3u);
  // Two of the first segment's three pages die: it stays. The third: its file goes.
  (*store)->Release(all[0], page.size());
  (*store)->Release(all[1], page.size());
  EXPECT_EQ((*store)->num_segments(), 3u);
  (*store)->Release(all[2], page.size());
  EXPECT_EQ((*store)->num_segments(), 2u);
  EXPECT_EQ(SegmentFiles(dir.File("segs")).size(), 2u);
  Aligned buf(page.size());
  std::vector<absl::Status> st;
  (*store)->Read({SegmentRead{all[0], static_cast<uint32_t>(page.size()), buf.data()},
                  SegmentRead{all[3], static_cast<uint32_t>(page.size()), buf.data()}}, &st);
  EXPECT_EQ(st[0].code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(st[1].ok());
  // The active segment stays even with no live page.
  (*store)->Release(all[6], page.size());
  (*store)->Release(all[7], page.size());
  EXPECT_EQ((*store)->num_segments(), 2u);
  EXPECT_EQ((*store)->live_bytes(), 3 * SegmentPadded(page.size()));
}

TEST(SegmentStoreTest, ReopenChecksHeadersAndCollectsGarbage) {
  testing::TempDir dir;
  SegmentStoreOptions o{dir.File("segs")};
  const std::vector<uint8_t> page = Payload(10000, 2);
  SegmentLocation kept, dropped;
  {
    auto store = SegmentStore::Open(o);
    ASSERT_TRUE(store.ok());
    std::vector<SegmentLocation> w;
    ASSERT_TRUE((*store)->Append({page.data(), page.data()}, {10000, 10000}, false, &w).ok());
    kept = w[0];
    dropped = w[1];
  }
  // A foreign file with a segment name: unusable, not an error.
  {
    const int fd = ::open((dir.File("segs") + "/seg-00000000000000aa.dat").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "garbage", 7), 7);
    ::close(fd);
  }
  auto store = SegmentStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Contains(kept, 10000));
  EXPECT_FALSE((*store)->Contains(SegmentLocation{kept.segment, kept.offset + 100000}, 10000));  // past the end
  EXPECT_FALSE((*store)->Contains(SegmentLocation{0xaa, kSegmentAlign}, 10));
  EXPECT_FALSE((*store)->Contains(SegmentLocation{999, kSegmentAlign}, 10));
  (*store)->AddLive(kept, 10000);
  // The new active segment, the old one (live), the garbage one; collection removes the garbage.
  EXPECT_EQ((*store)->num_segments(), 3u);
  EXPECT_EQ((*store)->CollectGarbage(), 1u);
  EXPECT_EQ((*store)->num_segments(), 2u);
  (*store)->Release(kept, 10000);  // its last live page: the old segment goes too
  EXPECT_EQ((*store)->num_segments(), 1u);
  (void)dropped;
}

TEST(SegmentStoreTest, AnotherFormatVersionIsAClearError) {
  testing::TempDir dir;
  SegmentStoreOptions o{dir.File("segs")};
  std::string name;
  {
    auto store = SegmentStore::Open(o);
    ASSERT_TRUE(store.ok());
    name = SegmentFiles(dir.File("segs"))[0];
  }
  const int fd = ::open((dir.File("segs") + "/" + name).c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const uint32_t version = kSegmentFormatVersion + 1;
  ASSERT_EQ(::pwrite(fd, &version, 4, 8), 4);
  ::close(fd);
  auto store = SegmentStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("version"), std::string::npos) << store.status();
}

}  // namespace
}  // namespace leoam::kvstore
