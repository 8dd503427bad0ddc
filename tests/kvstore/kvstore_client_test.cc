// The C++ client against the real leoam-kvstore process: f32 layouts (exact F32 pages next to
// pages of other encodings, each checked against its own size), through memory, inline fetch and,
// after a restart, the disk tier.
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore::testing {
namespace {

KvLayout F32Layout() {
  KvLayout l = TestLayout();
  l.dtype = KvDtype::kF32;
  return l;
}

std::unique_ptr<KvStoreClient> Connect(const KvStoreProcess& p, const KvLayout& layout, bool fetch_channel = true) {
  ClientOptions o;
  o.target = p.target();
  o.fetch_channel = fetch_channel;
  o.client_name = "client-test";
  auto c = KvStoreClient::Connect(o, "model-f32", layout);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// Node i of chain 7 holds layer 0 in kEncodings[i % 5] and layer 1 in F32.
constexpr PageEncoding kEncodings[] = {PageEncoding::kF32, PageEncoding::kFp16, PageEncoding::kInt8,
                                       PageEncoding::kInt4, PageEncoding::kBf16};
constexpr uint32_t kNodes = 20;
PageEncoding EncodingOf(uint32_t node, uint32_t layer) { return layer == 1 ? PageEncoding::kF32 : kEncodings[node % 5]; }

void CheckAll(KvStoreClient& client, bool inline_fetch, bool want_disk) {
  std::vector<PageRef> refs;
  for (uint32_t n = 0; n < kNodes; ++n) {
    for (uint32_t layer = 0; layer < 2; ++layer) refs.push_back(PageRef{ChainHash(7, n), layer});
  }
  auto r = inline_fetch ? client.FetchPagesInline(refs) : client.FetchPages(refs);
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i = 0; i < refs.size(); ++i) {
    const uint32_t n = static_cast<uint32_t>(i / 2), layer = static_cast<uint32_t>(i % 2);
    const FetchedPage& p = r->pages[i];
    ASSERT_TRUE(p.found) << i;
    EXPECT_EQ(p.from_disk, want_disk);
    EXPECT_EQ(p.encoding, EncodingOf(n, layer));
    ASSERT_EQ(p.length, *client.PageBytes(p.encoding));
    const uint8_t* data = inline_fetch ? reinterpret_cast<const uint8_t*>(p.inline_payload.data()) : p.data;
    if (inline_fetch) {
      ASSERT_EQ(p.inline_payload.size(), p.length);
    }
    EXPECT_TRUE(PayloadMatches(7, n, layer, data, p.length)) << "node " << n << " layer " << layer;
  }
  if (!inline_fetch) {
    ASSERT_TRUE(client.Release({r->lease_id}).ok());
  }
}

// Stages the pages of chain `seed` (kNodes nodes x 2 layers, payloads from FillPayload, page
// (n, layer) in encoding(n, layer)) and returns their puts, in node-then-layer order (not put yet).
std::vector<PagePut> StageChain(KvStoreClient& client, uint32_t seed,
                                const std::function<PageEncoding(uint32_t, uint32_t)>& encoding) {
  std::vector<uint64_t> sizes;
  for (uint32_t n = 0; n < kNodes; ++n) {
    for (uint32_t layer = 0; layer < 2; ++layer) sizes.push_back(*client.PageBytes(encoding(n, layer)));
  }
  auto bufs = client.AllocStaging(sizes);
  EXPECT_TRUE(bufs.ok()) << bufs.status();
  if (!bufs.ok()) return {};
  std::vector<PagePut> puts;
  for (uint32_t n = 0; n < kNodes; ++n) {
    for (uint32_t layer = 0; layer < 2; ++layer) {
      const StagingBuffer& b = (*bufs)[puts.size()];
      FillPayload(seed, n, layer, b.data, b.length);
      PagePut p;
      p.hash = ChainHash(seed, n);
      if (n > 0) p.parent = ChainHash(seed, n - 1);
      p.layer = layer;
      p.encoding = encoding(n, layer);
      p.staging_offset = b.offset;
      p.length = b.length;
      puts.push_back(p);
    }
  }
  return puts;
}

TEST(KvStoreClientTest, F32LayoutPagesOfEveryEncodingRoundTripAndPersist) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto client = Connect(**proc, F32Layout());
  ASSERT_NE(client, nullptr);
  // 2 layers x 16 tokens x 2 heads x 32 dims: K and V rows = 64, head_dim 32.
  EXPECT_EQ(*client->PageBytes(PageEncoding::kF32), 64u * 32 * 4);
  EXPECT_EQ(*client->PageBytes(PageEncoding::kFp16), 64u * 32 * 2);
  EXPECT_EQ(*client->MaxPageBytes(), 64u * 32 * 4);

  std::vector<PagePut> puts = StageChain(*client, 7, EncodingOf);
  ASSERT_EQ(puts.size(), 2u * kNodes);
  // A page tagged F32 with an fp16 length is refused, and the whole request with it.
  std::vector<PagePut> bad = puts;
  bad[1].length = *client->PageBytes(PageEncoding::kFp16);
  absl::StatusOr<PutResult> refused = client->PutPages(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(client->LookupPrefix(std::vector<PageHash>{ChainHash(7, 0)})->num_present, 0u);

  auto put = client->PutPages(puts);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->committed, 2 * kNodes);
  CheckAll(*client, /*inline_fetch=*/false, /*want_disk=*/false);
  CheckAll(*client, /*inline_fetch=*/true, /*want_disk=*/false);

  // Restart: everything comes back from the disk tier with its encoding.
  EXPECT_EQ((*proc)->Stop(), 0);
  proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  client = Connect(**proc, F32Layout());
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->hello().fingerprint_known);
  CheckAll(*client, /*inline_fetch=*/false, /*want_disk=*/true);
  // The fingerprint is registered as f32: an fp16 Hello for it is refused.
  ClientOptions o;
  o.target = (*proc)->target();
  EXPECT_EQ(KvStoreClient::Connect(o, "model-f32", TestLayout()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// FetchPages / Release through the fetch channel give what the RPCs give: the same pages at the
// same arena offsets, the same error codes, and GetChainAbstracts hands out every layer's abstract.
TEST(KvStoreClientTest, FetchChannelServesLikeTheRpcs) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto fast = Connect(**proc, F32Layout());
  auto rpc = Connect(**proc, F32Layout(), /*fetch_channel=*/false);
  ASSERT_NE(fast, nullptr);
  ASSERT_NE(rpc, nullptr);
  std::vector<PagePut> puts = StageChain(*fast, 9, [](uint32_t, uint32_t) { return PageEncoding::kF32; });
  ASSERT_EQ(puts.size(), 2u * kNodes);
  std::vector<PageRef> refs;
  for (size_t i = 0; i < puts.size(); ++i) {
    puts[i].abstract = "abstract " + std::to_string(i / 2) + "/" + std::to_string(i % 2);  // node/layer
    refs.push_back(PageRef{puts[i].hash, puts[i].layer});
  }
  ASSERT_TRUE(fast->PutPages(puts).ok());
  refs.push_back(PageRef{ChainHash(9, 999), 0});  // not stored

  auto a = fast->FetchPages(refs);
  auto b = rpc->FetchPages(refs);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT(fast->channel_calls(), 0u);
  EXPECT_EQ(rpc->channel_calls(), 0u);
  ASSERT_EQ(a->pages.size(), refs.size());
  ASSERT_EQ(b->pages.size(), refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(a->pages[i].found, b->pages[i].found) << i;
    if (!a->pages[i].found) continue;
    EXPECT_EQ(a->pages[i].offset, b->pages[i].offset) << i;
    EXPECT_EQ(a->pages[i].length, b->pages[i].length) << i;
    EXPECT_EQ(a->pages[i].encoding, b->pages[i].encoding) << i;
    EXPECT_TRUE(PayloadMatches(9, static_cast<uint32_t>(i / 2), static_cast<uint32_t>(i % 2), a->pages[i].data,
                               a->pages[i].length));
  }
  EXPECT_FALSE(a->pages.back().found);
  EXPECT_EQ(fast->Stats()->leases, 2u);
  EXPECT_EQ(fast->Stats()->fetch_channels, 1u);  // the gRPC-only client opened none

  // Errors: the same codes both ways, and nothing released or leased by a failed call.
  const std::vector<PageRef> bad_layer = {PageRef{ChainHash(9, 0), 7}};
  EXPECT_EQ(fast->FetchPages(bad_layer).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rpc->FetchPages(bad_layer).status().code(), absl::StatusCode::kInvalidArgument);
  const uint64_t unknown[] = {a->lease_id + b->lease_id + 1000};
  EXPECT_EQ(fast->FetchPages(refs, unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(rpc->FetchPages(refs, unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fast->Release(unknown).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(rpc->Release(unknown).code(), absl::StatusCode::kNotFound);
  // Another session's lease is unknown to this one, through the channel as through gRPC.
  EXPECT_EQ(fast->Release({b->lease_id}).code(), absl::StatusCode::kNotFound);
  const std::vector<PageRef> too_many(fast->hello().max_pages_per_request + 1, refs[0]);
  EXPECT_EQ(fast->FetchPages(too_many).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fast->Stats()->leases, 2u);
  // A fetch that ends the previous lease, then the explicit Releases.
  auto c = fast->FetchPages({refs[0]}, {a->lease_id});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(fast->Stats()->leases, 2u);
  EXPECT_TRUE(fast->Release({c->lease_id}).ok());
  EXPECT_TRUE(rpc->Release({b->lease_id}).ok());
  EXPECT_EQ(fast->Stats()->leases, 0u);

  // Every layer's abstract of the chain, in the arena.
  std::vector<PageHash> chain;
  for (uint32_t n = 0; n < kNodes; ++n) chain.push_back(ChainHash(9, n));
  chain.push_back(ChainHash(9, 999));
  auto abs = fast->GetChainAbstracts(chain);
  ASSERT_TRUE(abs.ok()) << abs.status();
  EXPECT_EQ(abs->num_nodes, kNodes);
  EXPECT_FALSE(abs->limited);
  ASSERT_EQ(abs->data.size(), 2 * kNodes);
  for (size_t i = 0; i < abs->data.size(); ++i) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(abs->data[i]), abs->lengths[i]), puts[i].abstract) << i;
  }
  EXPECT_TRUE(fast->Release({abs->lease_id}).ok());
  ClientOptions remote;
  remote.target = (*proc)->target();
  remote.map_arena = false;
  auto unmapped = KvStoreClient::Connect(remote, "model-f32", F32Layout());
  ASSERT_TRUE(unmapped.ok());
  EXPECT_EQ((*unmapped)->GetChainAbstracts(chain).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace leoam::kvstore::testing
