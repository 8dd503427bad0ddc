// Store::GetChainAbstracts: every layer's abstract of a chain's leading nodes, in the arena under
// a lease; bad requests get precise statuses and change nothing.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kvstore/store_fixture.h"

namespace leoam::kvstore {
namespace {

class ChainAbstractsTest : public StoreTest {
 protected:
  absl::Status Get(const std::vector<std::string>& chain, v1::GetChainAbstractsResponse* resp,
                   const std::string& session = "") {
    v1::GetChainAbstractsRequest req;
    req.set_session_id(session.empty() ? session_ : session);
    for (const std::string& h : chain) req.add_chain(h);
    resp->Clear();
    return store_->GetChainAbstracts(req, resp);
  }

  static std::vector<std::string> Chain(uint8_t c, uint8_t first, uint8_t end) {
    std::vector<std::string> out;
    for (uint8_t pos = first; pos < end; ++pos) out.push_back(Hash(c, pos));
    return out;
  }

  // The abstracts in the reply's region, in order.
  std::vector<std::string> Read(const v1::GetChainAbstractsResponse& resp) {
    std::vector<std::string> out;
    uint64_t at = resp.region().offset();
    for (uint32_t len : resp.abstract_bytes()) {
      out.emplace_back(reinterpret_cast<const char*>(arena_.data() + at), len);
      at += len;
    }
    EXPECT_LE(at, resp.region().offset() + resp.region().length());
    return out;
  }

  static std::vector<std::string> Expected(uint8_t c, uint8_t first, uint8_t end) {
    std::vector<std::string> out;
    for (uint8_t pos = first; pos < end; ++pos) {
      for (uint32_t layer = 0; layer < 2; ++layer) out.push_back(Abstract(c, pos, layer));
    }
    return out;
  }

  absl::Status ReleaseLease(uint64_t id) {
    v1::ReleaseRequest req;
    req.set_session_id(session_);
    req.add_lease_ids(id);
    v1::ReleaseResponse resp;
    return store_->Release(req, &resp);
  }
};

TEST_F(ChainAbstractsTest, LeadingNodesEveryLayerThroughTheArena) {
  ASSERT_TRUE(PutChain(1, 5).ok());
  const uint64_t used_before = Stats().arena_used_bytes();
  std::vector<std::string> chain = Chain(1, 0, 5);
  chain.push_back(Hash(1, 9));  // not stored: the answer stops before it
  chain.push_back(Hash(1, 2));  // stored, but after a gap
  v1::GetChainAbstractsResponse resp;
  ASSERT_TRUE(Get(chain, &resp).ok());
  EXPECT_EQ(resp.num_nodes(), 5u);
  EXPECT_FALSE(resp.limited());
  EXPECT_EQ(Read(resp), Expected(1, 0, 5));
  EXPECT_EQ(Stats().abstract_cache_entries(), 10u);  // the puts cached them
  EXPECT_NE(resp.lease_id(), 0u);
  EXPECT_GT(resp.lease_expires_in_ms(), 0u);
  EXPECT_EQ(Stats().leases(), 1u);
  EXPECT_GT(Stats().arena_used_bytes(), used_before);
  ASSERT_TRUE(ReleaseLease(resp.lease_id()).ok());
  EXPECT_EQ(Stats().leases(), 0u);
  EXPECT_EQ(Stats().arena_used_bytes(), used_before);

  // A chain need not start at its first node; after a restart the abstracts come from RocksDB.
  Open();
  ASSERT_TRUE(Get(Chain(1, 2, 5), &resp).ok());
  EXPECT_EQ(resp.num_nodes(), 3u);
  EXPECT_EQ(Read(resp), Expected(1, 2, 5));
}

TEST_F(ChainAbstractsTest, StopsAtADroppedNodeAndAnswersEmptyChains) {
  ASSERT_TRUE(PutChain(2, 6).ok());
  v1::DropRequest dreq;
  dreq.set_session_id(session_);
  dreq.set_chain_hash(Hash(2, 3));
  v1::DropResponse dresp;
  ASSERT_TRUE(store_->Drop(dreq, &dresp).ok());
  v1::GetChainAbstractsResponse resp;
  ASSERT_TRUE(Get(Chain(2, 0, 6), &resp).ok());
  EXPECT_EQ(resp.num_nodes(), 3u);
  EXPECT_EQ(Read(resp), Expected(2, 0, 3));
  ASSERT_TRUE(ReleaseLease(resp.lease_id()).ok());

  ASSERT_TRUE(Get({}, &resp).ok());
  EXPECT_EQ(resp.num_nodes(), 0u);
  EXPECT_EQ(resp.lease_id(), 0u);
  ASSERT_TRUE(Get(Chain(9, 0, 3), &resp).ok());  // nothing stored
  EXPECT_EQ(resp.num_nodes(), 0u);
  EXPECT_EQ(resp.lease_id(), 0u);
  EXPECT_EQ(Stats().leases(), 0u);
}

TEST_F(ChainAbstractsTest, RepliesStopAtTheSizeLimitAndResume) {
  // "abs-3-p-l" is 9 bytes: a node's two layers are 18 bytes; 40 bytes hold two nodes.
  Open(absl::Seconds(60), /*max_abstract_region_bytes=*/40);
  ASSERT_TRUE(PutChain(3, 5).ok());
  const std::vector<std::string> chain = Chain(3, 0, 5);
  std::vector<std::string> got;
  size_t done = 0;
  int replies = 0;
  while (done < chain.size()) {
    v1::GetChainAbstractsResponse resp;
    ASSERT_TRUE(Get(std::vector<std::string>(chain.begin() + done, chain.end()), &resp).ok());
    ASSERT_GT(resp.num_nodes(), 0u);
    EXPECT_LE(resp.region().length(), 40u);
    EXPECT_EQ(resp.limited(), done + resp.num_nodes() < chain.size());
    for (std::string& a : Read(resp)) got.push_back(std::move(a));
    ASSERT_TRUE(ReleaseLease(resp.lease_id()).ok());
    done += resp.num_nodes();
    ++replies;
  }
  EXPECT_EQ(got, Expected(3, 0, 5));
  EXPECT_EQ(replies, 3);

  // A limit below one node's abstracts cannot be met.
  Open(absl::Seconds(60), /*max_abstract_region_bytes=*/10);
  v1::GetChainAbstractsResponse resp;
  EXPECT_EQ(Get(chain, &resp).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Stats().leases(), 0u);
}

TEST_F(ChainAbstractsTest, BadRequestsGetPreciseStatusesAndChangeNothing) {
  ASSERT_TRUE(PutChain(4, 3).ok());
  const v1::StatsResponse before = Stats();
  v1::GetChainAbstractsResponse resp;
  EXPECT_EQ(Get(Chain(4, 0, 3), &resp, "0123456789abcdef").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(Chain(4, 0, 3), &resp, "nonsense").code(), absl::StatusCode::kNotFound);
  v1::GetChainAbstractsRequest no_session;
  no_session.add_chain(Hash(4, 0));
  EXPECT_EQ(store_->GetChainAbstracts(no_session, &resp).code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> bad = Chain(4, 0, 3);
  bad[1].pop_back();  // 15 bytes
  EXPECT_EQ(Get(bad, &resp).code(), absl::StatusCode::kInvalidArgument);
  bad[1] = std::string(17, 'x');
  EXPECT_EQ(Get(bad, &resp).code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> too_long(store_->options().max_chain_length + 1, Hash(4, 0));
  EXPECT_EQ(Get(too_long, &resp).code(), absl::StatusCode::kResourceExhausted);
  const v1::StatsResponse after = Stats();
  EXPECT_EQ(after.leases(), before.leases());
  EXPECT_EQ(after.arena_used_bytes(), before.arena_used_bytes());
  EXPECT_EQ(after.disk().pages(), before.disk().pages());

  // Arena full of staging buffers (not evictable): no room for the reply.
  v1::AllocStagingRequest areq;
  areq.set_session_id(session_);
  const uint64_t f32_page = 2 * 16 * 2 * 32 * 4;
  for (uint64_t i = 0; i < store_->options().arena_bytes / f32_page; ++i) areq.add_sizes(f32_page);
  v1::AllocStagingResponse aresp;
  ASSERT_TRUE(store_->AllocStaging(areq, &aresp).ok());
  const uint64_t used = Stats().arena_used_bytes();
  EXPECT_EQ(Get(Chain(4, 0, 3), &resp).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Stats().leases(), before.leases());
  EXPECT_EQ(Stats().arena_used_bytes(), used);
}

}  // namespace
}  // namespace leoam::kvstore
