// The C++ client against the real leoam-kvstore process: f32 layouts (exact F32 pages next to
// pages of other encodings, each checked against its own size), through memory, inline fetch and,
// after a restart, the disk tier.
#include <cstring>

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

std::unique_ptr<KvStoreClient> Connect(const KvStoreProcess& p, const KvLayout& layout) {
  ClientOptions o;
  o.target = p.target();
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

  std::vector<uint64_t> sizes;
  for (uint32_t n = 0; n < kNodes; ++n) {
    for (uint32_t layer = 0; layer < 2; ++layer) sizes.push_back(*client->PageBytes(EncodingOf(n, layer)));
  }
  auto bufs = client->AllocStaging(sizes);
  ASSERT_TRUE(bufs.ok()) << bufs.status();
  std::vector<PagePut> puts;
  for (uint32_t n = 0; n < kNodes; ++n) {
    for (uint32_t layer = 0; layer < 2; ++layer) {
      const StagingBuffer& b = (*bufs)[puts.size()];
      FillPayload(7, n, layer, b.data, b.length);
      PagePut p;
      p.hash = ChainHash(7, n);
      if (n > 0) p.parent = ChainHash(7, n - 1);
      p.layer = layer;
      p.encoding = EncodingOf(n, layer);
      p.staging_offset = b.offset;
      p.length = b.length;
      puts.push_back(p);
    }
  }
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

}  // namespace
}  // namespace leoam::kvstore::testing
