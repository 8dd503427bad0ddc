// Store in-process: the semantics the integration tests do not pin one by one.
#include "kvstore/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "tests/kvstore/store_fixture.h"

namespace leoam::kvstore {
namespace {

TEST_F(StoreTest, HelloRejectsWrongVersionAndLayoutMismatch) {
  v1::HelloRequest req;
  req.set_protocol_version(2);
  v1::HelloResponse resp;
  EXPECT_EQ(store_->Hello(req, &resp).code(), absl::StatusCode::kFailedPrecondition);
  absl::Status s;
  Hello("model", /*heads=*/4, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  Hello("other-model", 4, &s);
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(Hello("model").fingerprint_known());
}

TEST_F(StoreTest, PutNeedsTheParentAndAgreesWithIt) {
  EXPECT_EQ(PutChain(1, 4, /*first=*/2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Stats().staging_bytes(), 2 * 2 * kPageBytes);  // refused put leaves its staging alone
  ASSERT_TRUE(PutChain(1, 4).ok());
  EXPECT_EQ(Present(1, 6), 4u);
  // Same pages again: idempotent.
  ASSERT_TRUE(PutChain(1, 4).ok());
  EXPECT_EQ(Stats().disk().pages(), 8u);
}

TEST_F(StoreTest, LeasedMemoryIsNotReusedUntilReleased) {
  ASSERT_TRUE(PutChain(1, 1).ok());
  v1::FetchPagesResponse f = Fetch(1, 0, 0);
  ASSERT_TRUE(f.pages(0).found());
  const uint64_t off = f.pages(0).offset();
  // Drop the page: it leaves the index, but the leased bytes stay put and unchanged.
  v1::DropRequest dreq;
  dreq.set_session_id(session_);
  dreq.set_chain_hash(Hash(1, 0));
  v1::DropResponse dresp;
  ASSERT_TRUE(store_->Drop(dreq, &dresp).ok());
  EXPECT_EQ(dresp.pages_dropped(), 2u);
  EXPECT_FALSE(Fetch(1, 0, 0).pages(0).found());
  // Fill the arena through new puts; the leased block must never be handed out.
  for (uint8_t c = 2; c < 40; ++c) ASSERT_TRUE(PutChain(c, 4).ok());
  EXPECT_EQ(arena_.data()[off], 1 * 16 + 0);
  EXPECT_EQ(arena_.data()[off + kPageBytes - 1], 1 * 16 + 0);
  v1::ReleaseRequest rreq;
  rreq.set_session_id(session_);
  rreq.add_lease_ids(f.lease_id());
  v1::ReleaseResponse rresp;
  EXPECT_TRUE(store_->Release(rreq, &rresp).ok());
  EXPECT_EQ(store_->Release(rreq, &rresp).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Stats().leases(), 0u);
}

// FetchPages can end earlier leases in the same call; a bad id fails it before anything changes.
TEST_F(StoreTest, FetchPagesReleasesEarlierLeases) {
  ASSERT_TRUE(PutChain(1, 2).ok());
  v1::FetchPagesResponse first = Fetch(1, 0, 0);
  ASSERT_NE(first.lease_id(), 0u);
  EXPECT_EQ(Stats().leases(), 1u);

  v1::FetchPagesRequest req;
  req.set_session_id(session_);
  v1::PageKey* k = req.add_pages();
  k->set_hash(Hash(1, 1));
  k->set_layer(0);
  req.add_release_lease_ids(first.lease_id());
  req.add_release_lease_ids(first.lease_id() + 1000);  // unknown
  v1::FetchPagesResponse resp;
  EXPECT_EQ(store_->FetchPages(req, &resp).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(resp.pages_size(), 0);
  EXPECT_EQ(Stats().leases(), 1u);  // the good id was not released either

  req.clear_release_lease_ids();
  req.add_release_lease_ids(first.lease_id());
  req.add_release_lease_ids(first.lease_id());  // twice
  EXPECT_EQ(store_->FetchPages(req, &resp).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stats().leases(), 1u);

  req.clear_release_lease_ids();
  req.add_release_lease_ids(first.lease_id());
  ASSERT_TRUE(store_->FetchPages(req, &resp).ok());
  ASSERT_TRUE(resp.pages(0).found());
  EXPECT_NE(resp.lease_id(), first.lease_id());
  EXPECT_EQ(Stats().leases(), 1u);  // the first ended, the new one lives
  v1::ReleaseRequest rreq;
  rreq.set_session_id(session_);
  rreq.add_lease_ids(first.lease_id());
  v1::ReleaseResponse rresp;
  EXPECT_EQ(store_->Release(rreq, &rresp).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, LeasesAndStagingExpire) {
  Open(absl::Milliseconds(50));
  ASSERT_TRUE(PutChain(1, 1).ok());
  v1::FetchPagesResponse f = Fetch(1, 0, 0);
  v1::AllocStagingRequest areq;
  areq.set_session_id(session_);
  areq.add_sizes(100);
  v1::AllocStagingResponse aresp;
  ASSERT_TRUE(store_->AllocStaging(areq, &aresp).ok());
  EXPECT_EQ(Stats().leases(), 1u);
  store_->ExpireUpTo(absl::Now() + absl::Seconds(1));
  EXPECT_EQ(Stats().leases(), 0u);
  EXPECT_EQ(Stats().staging_bytes(), 0u);
}

TEST_F(StoreTest, FetchFromDiskAfterRestartAndPrefetchWarmsMemory) {
  ASSERT_TRUE(PutChain(3, 8).ok());
  Open();
  EXPECT_EQ(Present(3, 8), 8u);
  v1::FetchPagesResponse f = Fetch(3, 5, 1);
  ASSERT_TRUE(f.pages(0).found());
  EXPECT_EQ(f.pages(0).tier(), v1::TIER_DISK);
  EXPECT_EQ(arena_.data()[f.pages(0).offset()], 3 * 16 + 5 * 2 + 1);
  EXPECT_EQ(Fetch(3, 5, 1).pages(0).tier(), v1::TIER_MEMORY);

  v1::PrefetchRequest preq;
  preq.set_session_id(session_);
  v1::PageKey* k = preq.add_pages();
  k->set_hash(Hash(3, 6));
  k->set_layer(0);
  v1::PrefetchResponse presp;
  ASSERT_TRUE(store_->Prefetch(preq, &presp).ok());
  EXPECT_EQ(presp.num_queued(), 1u);
  // The load is asynchronous: wait (bounded) until the page is in memory.
  for (int i = 0; i < 500 && Stats().memory().pages() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(Fetch(3, 6, 0).pages(0).tier(), v1::TIER_MEMORY);
}

// With readahead, a fetch that streams a chain from disk loads the chain's next nodes (same layers)
// in the background; a fetch of scattered pages does not.
TEST_F(StoreTest, ReadaheadFollowsAChainStreamedFromDisk) {
  ASSERT_TRUE(PutChain(6, 10).ok());
  Open(absl::Seconds(60), 64ull << 20, /*readahead_pages=*/4);
  v1::FetchPagesRequest req;
  req.set_session_id(session_);
  for (uint8_t pos : {0, 1}) {
    v1::PageKey* k = req.add_pages();
    k->set_hash(Hash(6, pos));
    k->set_layer(0);
  }
  v1::FetchPagesResponse resp;
  ASSERT_TRUE(store_->FetchPages(req, &resp).ok());
  EXPECT_EQ(resp.pages(0).tier(), v1::TIER_DISK);
  // Two pages read: nodes 2 and 3, layer 0, follow in the background.
  for (int i = 0; i < 1000 && Stats().memory().pages() < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(Stats().memory().pages(), 4u);
  EXPECT_EQ(Fetch(6, 2, 0).pages(0).tier(), v1::TIER_MEMORY);
  EXPECT_EQ(Fetch(6, 3, 0).pages(0).tier(), v1::TIER_MEMORY);
  // Pages the readahead brought in count as streamed: fetching them reads on (nodes 4, 5).
  for (int i = 0; i < 1000 && Stats().memory().pages() < 6; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(Fetch(6, 4, 0).pages(0).tier(), v1::TIER_MEMORY);
  EXPECT_EQ(Fetch(6, 5, 0).pages(0).tier(), v1::TIER_MEMORY);

  // Scattered pages (nodes 7 and 9) after a restart: no readahead.
  Open(absl::Seconds(60), 64ull << 20, /*readahead_pages=*/4);
  req.set_session_id(session_);
  req.clear_pages();
  for (uint8_t pos : {7, 9}) {
    v1::PageKey* k = req.add_pages();
    k->set_hash(Hash(6, pos));
    k->set_layer(1);
  }
  ASSERT_TRUE(store_->FetchPages(req, &resp).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Stats().memory().pages(), 2u);
  EXPECT_EQ(Fetch(6, 8, 1).pages(0).tier(), v1::TIER_DISK);
}

// A fetch of pages that a Prefetch is loading waits for that load instead of reading them again.
TEST_F(StoreTest, FetchJoinsAPrefetchInFlight) {
  ASSERT_TRUE(PutChain(5, 8).ok());
  Open();
  v1::PrefetchRequest preq;
  preq.set_session_id(session_);
  v1::FetchPagesRequest freq;
  freq.set_session_id(session_);
  for (uint8_t pos = 0; pos < 8; ++pos) {
    for (uint32_t layer = 0; layer < 2; ++layer) {
      v1::PageKey k;
      k.set_hash(Hash(5, pos));
      k.set_layer(layer);
      *preq.add_pages() = k;
      *freq.add_pages() = k;
    }
  }
  v1::PrefetchResponse presp;
  ASSERT_TRUE(store_->Prefetch(preq, &presp).ok());
  EXPECT_EQ(presp.num_queued(), 16u);
  v1::FetchPagesResponse fresp;
  ASSERT_TRUE(store_->FetchPages(freq, &fresp).ok());
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(fresp.pages(i).found());
    EXPECT_EQ(arena_.data()[fresp.pages(i).offset()], 5 * 16 + (i / 2) * 2 + i % 2);
  }
  // Every page came off the disk exactly once.
  EXPECT_EQ(Stats().disk().read_bytes(), 16 * kPageBytes);
}

// A payload that fails its CRC32C on read is never served, and its node and successors leave the
// index (LookupPrefix stops at it) and the disk (they stay gone after a restart).
TEST_F(StoreTest, CorruptPayloadIsNotServedAndCutsTheChain) {
  ASSERT_TRUE(PutChain(6, 6).ok());  // one request: 12 pages back to back in one segment
  Open();
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(dir_.File("data") + "/segments")) {
    if (e.file_size() > kSegmentAlign) seg = e.path().string();
  }
  ASSERT_FALSE(seg.empty());
  const int fd = ::open(seg.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  // Node 3, layer 1 is the 8th page of the request: after the header and 7 padded pages.
  ASSERT_EQ(::pwrite(fd, "x", 1, static_cast<off_t>(kSegmentAlign + 7 * SegmentPadded(kPageBytes) + 5)), 1);
  ::close(fd);
  EXPECT_EQ(Present(6, 6), 6u);  // not read yet
  EXPECT_TRUE(Fetch(6, 3, 0).pages(0).found());
  EXPECT_FALSE(Fetch(6, 3, 1).pages(0).found());
  EXPECT_EQ(Present(6, 6), 3u);
  EXPECT_FALSE(Fetch(6, 4, 0).pages(0).found());
  Open();
  EXPECT_EQ(Present(6, 6), 3u);
}

TEST_F(StoreTest, DropAllForgetsOnlyThisFingerprint) {
  ASSERT_TRUE(PutChain(1, 3).ok());
  const std::string first = session_;
  session_ = Hello("other").session_id();
  ASSERT_TRUE(PutChain(1, 2).ok());
  v1::DropRequest req;
  req.set_session_id(first);
  req.set_all(true);
  v1::DropResponse resp;
  ASSERT_TRUE(store_->Drop(req, &resp).ok());
  EXPECT_EQ(resp.pages_dropped(), 6u);
  EXPECT_EQ(Present(1, 3), 2u);  // the other fingerprint's chain
  Open();                        // and after a restart too
  session_ = Hello("other").session_id();
  EXPECT_EQ(Present(1, 3), 2u);
  session_ = Hello("model").session_id();
  EXPECT_EQ(Present(1, 3), 0u);
}

// An f32 layout: exact F32 pages, and any other encoding per page, each sized by its own encoding.
TEST_F(StoreTest, F32LayoutTakesEveryEncodingSizedByItsOwnEncoding) {
  session_ = Hello("model-f32", 2, nullptr, v1::KV_DTYPE_F32).session_id();
  const Layout layout{2, 16, 2, 32, v1::KV_DTYPE_F32};
  const std::vector<v1::PageEncoding> encodings = {v1::PAGE_ENCODING_F32, v1::PAGE_ENCODING_FP16,
                                                   v1::PAGE_ENCODING_BF16, v1::PAGE_ENCODING_INT8,
                                                   v1::PAGE_ENCODING_INT4};
  auto bytes_of = [&](v1::PageEncoding e) { return *layout.PageBytes(static_cast<codec::PageEncoding>(e)); };
  ASSERT_EQ(bytes_of(v1::PAGE_ENCODING_F32), 2u * kPageBytes);  // 4 bytes a value
  auto stage = [&](uint64_t size) {
    v1::AllocStagingRequest areq;
    areq.set_session_id(session_);
    areq.add_sizes(size);
    v1::AllocStagingResponse aresp;
    absl::Status s = store_->AllocStaging(areq, &aresp);
    return s.ok() ? aresp.buffers(0).offset() : ~uint64_t{0};
  };
  // Staging takes up to an f32 page, no more.
  EXPECT_NE(stage(bytes_of(v1::PAGE_ENCODING_F32)), ~uint64_t{0});
  EXPECT_EQ(stage(bytes_of(v1::PAGE_ENCODING_F32) + 1), ~uint64_t{0});

  // Node i of one chain, layer 0, in encoding i; layer 1 always f32.
  auto put = [&](size_t node, uint32_t layer, v1::PageEncoding enc, uint64_t length) {
    const uint64_t off = stage(bytes_of(v1::PAGE_ENCODING_F32));
    EXPECT_NE(off, ~uint64_t{0});
    for (uint64_t b = 0; b < length; ++b) arena_.data()[off + b] = static_cast<uint8_t>(b * 7 + node * 3 + layer);
    v1::PutPagesRequest req;
    req.set_session_id(session_);
    v1::PutPage* p = req.add_pages();
    p->set_hash(Hash(9, static_cast<uint8_t>(node)));
    if (node > 0) p->set_parent_hash(Hash(9, static_cast<uint8_t>(node - 1)));
    p->set_layer(layer);
    p->set_encoding(enc);
    p->set_staging_offset(off);
    p->set_length(length);
    v1::PutPagesResponse resp;
    return store_->PutPages(req, &resp);
  };
  for (size_t i = 0; i < encodings.size(); ++i) {
    const v1::PageEncoding enc = encodings[i];
    // Another encoding's size is refused and stores nothing (fp16 and bf16 share a size).
    const v1::PageEncoding other = enc == v1::PAGE_ENCODING_F32 ? v1::PAGE_ENCODING_INT8 : v1::PAGE_ENCODING_F32;
    EXPECT_EQ(put(i, 0, enc, bytes_of(other)).code(), absl::StatusCode::kInvalidArgument) << enc;
    EXPECT_EQ(Present(9, static_cast<uint8_t>(i + 1)), i);
    ASSERT_TRUE(put(i, 0, enc, bytes_of(enc)).ok()) << enc;
    ASSERT_TRUE(put(i, 1, v1::PAGE_ENCODING_F32, bytes_of(v1::PAGE_ENCODING_F32)).ok());
  }
  EXPECT_EQ(Stats().disk().pages(), 2 * encodings.size());

  auto check = [&](v1::Tier tier) {
    for (size_t i = 0; i < encodings.size(); ++i) {
      for (uint32_t layer = 0; layer < 2; ++layer) {
        const v1::PageEncoding enc = layer == 0 ? encodings[i] : v1::PAGE_ENCODING_F32;
        v1::FetchPagesResponse f = Fetch(9, static_cast<uint8_t>(i), layer);
        ASSERT_TRUE(f.pages(0).found());
        EXPECT_EQ(f.pages(0).tier(), tier);
        EXPECT_EQ(f.pages(0).encoding(), enc);
        ASSERT_EQ(f.pages(0).length(), bytes_of(enc));
        for (uint64_t b = 0; b < f.pages(0).length(); ++b) {
          ASSERT_EQ(arena_.data()[f.pages(0).offset() + b], static_cast<uint8_t>(b * 7 + i * 3 + layer)) << i;
        }
      }
    }
  };
  check(v1::TIER_MEMORY);
  Open();  // the disk tier keeps each page's encoding and size
  session_ = Hello("model-f32", 2, nullptr, v1::KV_DTYPE_F32).session_id();
  EXPECT_EQ(Present(9, 8), encodings.size());
  check(v1::TIER_DISK);
  // The fingerprint stays an f32 layout.
  absl::Status s;
  Hello("model-f32", 2, &s, v1::KV_DTYPE_F16);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

// An fp16 layout may hold f32 pages too (the encoding is per page).
TEST_F(StoreTest, F16LayoutAcceptsF32Pages) {
  v1::AllocStagingRequest areq;
  areq.set_session_id(session_);
  areq.add_sizes(2 * kPageBytes);
  v1::AllocStagingResponse aresp;
  ASSERT_TRUE(store_->AllocStaging(areq, &aresp).ok());
  v1::PutPagesRequest req;
  req.set_session_id(session_);
  v1::PutPage* p = req.add_pages();
  p->set_hash(Hash(4, 0));
  p->set_layer(0);
  p->set_encoding(v1::PAGE_ENCODING_F32);
  p->set_staging_offset(aresp.buffers(0).offset());
  p->set_length(kPageBytes);  // an fp16 size under an f32 tag
  v1::PutPagesResponse resp;
  EXPECT_EQ(store_->PutPages(req, &resp).code(), absl::StatusCode::kInvalidArgument);
  p->set_length(2 * kPageBytes);
  ASSERT_TRUE(store_->PutPages(req, &resp).ok());
  v1::FetchPagesResponse f = Fetch(4, 0, 0);
  ASSERT_TRUE(f.pages(0).found());
  EXPECT_EQ(f.pages(0).encoding(), v1::PAGE_ENCODING_F32);
  EXPECT_EQ(f.pages(0).length(), 2 * kPageBytes);
}

TEST_F(StoreTest, SecondStoreOnTheSameDataDirFailsAndLeavesTheFirstAlone) {
  StoreOptions o;
  o.data_dir = dir_.File("data");
  o.arena_bytes = 4 << 20;
  auto second = Store::Open(o);
  EXPECT_FALSE(second.ok());
  // The first store's arena file is still there for its clients.
  EXPECT_TRUE(SharedMemoryFile::Open(store_->arena_path()).ok());
  EXPECT_TRUE(PutChain(1, 2).ok());
}

}  // namespace
}  // namespace leoam::kvstore
