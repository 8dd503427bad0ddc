// The fetch channel in-process: requests written straight into the slot (as a hostile client
// could) get the RPCs' statuses, never crash the store, and change nothing they should not.
#include <chrono>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "kvstore/fetch_channel_format.h"
#include "kvstore/futex.h"
#include "tests/kvstore/store_fixture.h"

namespace leoam::kvstore {
namespace {

class FetchChannelTest : public StoreTest {
 protected:
  void OpenChannel() {
    v1::OpenFetchChannelRequest req;
    req.set_session_id(session_);
    v1::OpenFetchChannelResponse resp;
    ASSERT_TRUE(store_->OpenFetchChannel(req, &resp).ok());
    ASSERT_EQ(resp.format_version(), channel::kVersion);
    ASSERT_GE(resp.region().length(), channel::BlockBytes(resp.max_pages()));
    block_ = arena_.data() + resp.region().offset();
    control_ = reinterpret_cast<channel::Control*>(block_);
    max_pages_ = resp.max_pages();
    EXPECT_EQ(control_->magic, channel::kMagic);
    EXPECT_EQ(control_->channel_id, resp.channel_id());
    EXPECT_EQ(control_->max_pages, max_pages_);
  }

  // Writes a raw request, rings, waits (bounded) for the completion; returns its header.
  const channel::ResponseHeader& Ring(uint32_t op, uint32_t num_pages, uint32_t num_release,
                                      const std::vector<uint64_t>& ids, const std::vector<channel::PageKeyWire>& keys) {
    const channel::RequestHeader h{op, num_pages, num_release, 0};
    uint8_t* p = block_ + channel::kRequestOffset;
    std::memcpy(p, &h, sizeof(h));
    std::memcpy(p + sizeof(h), ids.data(), ids.size() * sizeof(uint64_t));
    std::memcpy(p + sizeof(h) + ids.size() * sizeof(uint64_t), keys.data(), keys.size() * sizeof(channel::PageKeyWire));
    const uint32_t seq = ++seq_;
    PublishAndWake(control_->req_seq, seq, control_->server_sleeping);
    const uint32_t got = WaitForChange(control_->resp_seq, seq - 1, control_->client_sleeping, 50, 100000,
                                       MonotonicMicros() + 10000000, [] { return false; });
    EXPECT_EQ(got, seq) << "no completion";
    return *reinterpret_cast<const channel::ResponseHeader*>(block_ + channel::ResponseOffset(max_pages_));
  }
  const channel::DescriptorWire* Descriptors() const {
    return reinterpret_cast<const channel::DescriptorWire*>(block_ + channel::ResponseOffset(max_pages_) +
                                                            sizeof(channel::ResponseHeader));
  }
  static channel::PageKeyWire Key(uint8_t c, uint8_t pos, uint32_t layer) {
    channel::PageKeyWire k{};
    std::memcpy(k.hash, Hash(c, pos).data(), 16);
    k.layer = layer;
    return k;
  }
  static std::string Message(const channel::ResponseHeader& r) {
    return std::string(r.message, std::min<size_t>(r.message_bytes, channel::kMessageBytes));
  }

  uint8_t* block_ = nullptr;
  channel::Control* control_ = nullptr;
  uint32_t max_pages_ = 0;
  uint32_t seq_ = 0;
};

TEST_F(FetchChannelTest, FetchAndReleaseLikeTheRpcs) {
  ASSERT_TRUE(PutChain(1, 3).ok());
  OpenChannel();
  const channel::ResponseHeader& r = Ring(channel::kOpFetch, 3, 0, {}, {Key(1, 0, 0), Key(1, 2, 1), Key(9, 0, 0)});
  ASSERT_EQ(r.code, 0) << Message(r);
  ASSERT_EQ(r.num_pages, 3u);
  const uint64_t lease = r.lease_id;
  EXPECT_NE(lease, 0u);
  const channel::DescriptorWire* d = Descriptors();
  ASSERT_EQ(d[0].found, 1);
  EXPECT_EQ(d[0].length, kPageBytes);
  EXPECT_EQ(d[0].encoding, v1::PAGE_ENCODING_FP16);
  EXPECT_EQ(d[0].tier, v1::TIER_MEMORY);
  EXPECT_EQ(arena_.data()[d[0].offset], 1 * 16 + 0 * 2 + 0);
  ASSERT_EQ(d[1].found, 1);
  EXPECT_EQ(arena_.data()[d[1].offset + kPageBytes - 1], 1 * 16 + 2 * 2 + 1);
  EXPECT_EQ(d[2].found, 0);
  EXPECT_EQ(Stats().leases(), 1u);

  // Release through the channel: unknown ids are NOT_FOUND and release nothing.
  const channel::ResponseHeader& bad = Ring(channel::kOpRelease, 0, 2, {lease, lease + 77}, {});
  EXPECT_EQ(bad.code, static_cast<int32_t>(absl::StatusCode::kNotFound)) << Message(bad);
  EXPECT_NE(Message(bad).find("unknown lease"), std::string::npos) << Message(bad);
  EXPECT_EQ(Stats().leases(), 1u);
  const channel::ResponseHeader& ok = Ring(channel::kOpRelease, 0, 1, {lease}, {});
  EXPECT_EQ(ok.code, 0) << Message(ok);
  EXPECT_EQ(ok.lease_id, 1u);  // leases ended
  EXPECT_EQ(Stats().leases(), 0u);
}

TEST_F(FetchChannelTest, HostileRequestsGetErrorsAndChangeNothing) {
  ASSERT_TRUE(PutChain(2, 4).ok());
  OpenChannel();
  const v1::StatsResponse before = Stats();
  auto code = [](const channel::ResponseHeader& r) { return static_cast<absl::StatusCode>(r.code); };
  EXPECT_EQ(code(Ring(7, 1, 0, {}, {Key(2, 0, 0)})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Ring(channel::kOpFetch, max_pages_ + 1, 0, {}, {})), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(code(Ring(channel::kOpFetch, 0, 0xffffffffu, {}, {})), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(code(Ring(channel::kOpRelease, 1, 1, {1}, {Key(2, 0, 0)})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Ring(channel::kOpFetch, 1, 0, {}, {Key(2, 0, 2)})), absl::StatusCode::kInvalidArgument);  // layer
  EXPECT_EQ(code(Ring(channel::kOpFetch, 1, 1, {424242}, {Key(2, 0, 0)})), absl::StatusCode::kNotFound);

  // Random garbage: op, counts within the slot, ids and keys.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t op = static_cast<uint32_t>(rng() % 4);
    const uint32_t pages = static_cast<uint32_t>(rng() % 8), releases = static_cast<uint32_t>(rng() % 3);
    std::vector<uint64_t> ids(releases);
    for (uint64_t& id : ids) id = rng() % 4 == 0 ? 0 : rng();
    std::vector<channel::PageKeyWire> keys(pages);
    for (channel::PageKeyWire& k : keys) {
      for (uint8_t& b : k.hash) b = static_cast<uint8_t>(rng());
      k.layer = static_cast<uint32_t>(rng() % 3);
    }
    const channel::ResponseHeader& r = Ring(op, pages, releases, ids, keys);
    if (r.code == 0) {
      // Only a fetch (of keys nothing is stored under) or an empty release can succeed.
      ASSERT_TRUE(op == channel::kOpFetch || (op == channel::kOpRelease && pages == 0 && releases == 0)) << op;
      for (uint32_t j = 0; j < r.num_pages; ++j) EXPECT_EQ(Descriptors()[j].found, 0);
      EXPECT_EQ(r.lease_id, 0u);
    }
  }
  const v1::StatsResponse after = Stats();
  EXPECT_EQ(after.leases(), before.leases());
  EXPECT_EQ(after.disk().pages(), before.disk().pages());
  EXPECT_EQ(after.memory().pages(), before.memory().pages());
  for (uint8_t pos = 0; pos < 4; ++pos) {
    v1::FetchPagesResponse f = Fetch(2, pos, 1);
    ASSERT_TRUE(f.pages(0).found());
    EXPECT_EQ(arena_.data()[f.pages(0).offset()], 2 * 16 + pos * 2 + 1);
  }
}

TEST_F(FetchChannelTest, UnknownSessionIsRefusedAndTheChannelClosesWithItsSession) {
  v1::OpenFetchChannelRequest req;
  req.set_session_id("0123456789abcdef");
  v1::OpenFetchChannelResponse resp;
  EXPECT_EQ(store_->OpenFetchChannel(req, &resp).code(), absl::StatusCode::kNotFound);
  OpenChannel();
  EXPECT_EQ(Stats().fetch_channels(), 1u);
  EXPECT_EQ(control_->closed, 0u);
  store_->ExpireUpTo(absl::Now() + absl::Hours(24));  // the session idles out
  EXPECT_EQ(SharedWord(control_->closed).load(), 1u);
  EXPECT_EQ(Stats().fetch_channels(), 0u);
}

}  // namespace
}  // namespace leoam::kvstore
