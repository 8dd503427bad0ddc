// Store in-process: the semantics the integration tests do not pin one by one.
#include "kvstore/store.h"

#include <cstring>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore {
namespace {

constexpr uint64_t kPageBytes = 2 * 16 * 2 * 32 * 2;  // fp16 page of the layout below

std::string Hash(uint8_t chain, uint8_t pos) {
  std::string h(16, '\0');
  h[0] = static_cast<char>(chain);
  h[1] = static_cast<char>(pos);
  h[15] = 1;
  return h;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(absl::Duration lease_timeout = absl::Seconds(60)) {
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.File("data");
    o.arena_bytes = 4 << 20;
    o.memory_limit_bytes = 64 * kPageBytes;
    o.lease_timeout = lease_timeout;
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    auto arena = SharedMemoryFile::Open(store_->arena_path());
    ASSERT_TRUE(arena.ok());
    arena_ = std::move(*arena);
    session_ = Hello("model").session_id();
  }

  v1::HelloResponse Hello(const std::string& fp, uint32_t heads = 2, absl::Status* status = nullptr) {
    v1::HelloRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_model_fingerprint(fp);
    req.mutable_layout()->set_num_layers(2);
    req.mutable_layout()->set_page_size(16);
    req.mutable_layout()->set_num_kv_heads(heads);
    req.mutable_layout()->set_head_dim(32);
    req.mutable_layout()->set_dtype(v1::KV_DTYPE_F16);
    v1::HelloResponse resp;
    absl::Status s = store_->Hello(req, &resp);
    if (status != nullptr) *status = s;
    else EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Puts nodes [0, n) of chain c, both layers, page bytes filled with (c, pos, layer).
  absl::Status PutChain(uint8_t c, uint8_t n, uint8_t first = 0) {
    v1::AllocStagingRequest areq;
    areq.set_session_id(session_);
    for (int i = 0; i < 2 * (n - first); ++i) areq.add_sizes(kPageBytes);
    v1::AllocStagingResponse aresp;
    absl::Status s = store_->AllocStaging(areq, &aresp);
    if (!s.ok()) return s;
    v1::PutPagesRequest req;
    req.set_session_id(session_);
    int b = 0;
    for (uint8_t pos = first; pos < n; ++pos) {
      for (uint32_t layer = 0; layer < 2; ++layer, ++b) {
        const uint64_t off = aresp.buffers(b).offset();
        std::memset(arena_.data() + off, c * 16 + pos * 2 + layer, kPageBytes);
        v1::PutPage* p = req.add_pages();
        p->set_hash(Hash(c, pos));
        if (pos > 0) p->set_parent_hash(Hash(c, pos - 1));
        p->set_layer(layer);
        p->set_encoding(v1::PAGE_ENCODING_FP16);
        p->set_staging_offset(off);
        p->set_length(kPageBytes);
        p->set_abstract("abs");
      }
    }
    v1::PutPagesResponse resp;
    return store_->PutPages(req, &resp);
  }

  v1::FetchPagesResponse Fetch(uint8_t c, uint8_t pos, uint32_t layer) {
    v1::FetchPagesRequest req;
    req.set_session_id(session_);
    v1::PageKey* k = req.add_pages();
    k->set_hash(Hash(c, pos));
    k->set_layer(layer);
    v1::FetchPagesResponse resp;
    EXPECT_TRUE(store_->FetchPages(req, &resp).ok());
    return resp;
  }

  uint32_t Present(uint8_t c, uint8_t n) {
    v1::LookupPrefixRequest req;
    req.set_session_id(session_);
    for (uint8_t i = 0; i < n; ++i) req.add_chain(Hash(c, i));
    v1::LookupPrefixResponse resp;
    EXPECT_TRUE(store_->LookupPrefix(req, &resp).ok());
    return resp.num_present();
  }

  v1::StatsResponse Stats() {
    v1::StatsResponse resp;
    EXPECT_TRUE(store_->Stats(v1::StatsRequest(), &resp).ok());
    return resp;
  }

  leoam::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  SharedMemoryFile arena_;
  std::string session_;
};

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
  for (int i = 0; i < 500 && Stats().memory().pages() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(Fetch(3, 6, 0).pages(0).tier(), v1::TIER_MEMORY);
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
