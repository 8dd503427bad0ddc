#include "bench/kvstore/abstracts_rows.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "bench/kvstore/bench_util.h"

namespace leoam::kvstore::bench {

KvLayout AbstractsLayout() {
  KvLayout l;
  l.num_layers = 12;
  l.page_size = 16;
  l.num_kv_heads = 12;
  l.head_dim = 64;
  l.dtype = KvDtype::kF32;
  return l;
}

std::unique_ptr<KvStoreClient> ConnectAbstracts(const std::string& socket) {
  ClientOptions o;
  o.target = "unix://" + socket;
  o.client_name = "kvstore_bench abstracts";
  auto c = KvStoreClient::Connect(o, "bench-abstracts", AbstractsLayout());
  Check(c.status(), "Connect (abstracts)");
  return std::move(*c);
}

namespace {

std::vector<PageHash> AbstractChain(uint32_t nodes) {
  std::vector<PageHash> chain(nodes);
  for (uint32_t i = 0; i < nodes; ++i) chain[i] = H(77, i);
  return chain;
}

}  // namespace

void PutAbstractChain(KvStoreClient& c, uint32_t nodes) {
  const uint32_t layers = AbstractsLayout().num_layers;
  const size_t bytes = *c.PageBytes(PageEncoding::kInt4);
  const std::vector<PageHash> chain = AbstractChain(nodes);
  std::vector<PagePut> puts;
  auto flush = [&] {
    std::vector<uint64_t> sizes(puts.size(), bytes);
    auto bufs = c.AllocStaging(sizes);
    Check(bufs.status(), "AllocStaging (abstracts)");
    for (size_t i = 0; i < puts.size(); ++i) {
      std::memset((*bufs)[i].data, static_cast<int>(i), bytes);
      puts[i].staging_offset = (*bufs)[i].offset;
    }
    Check(c.PutPages(puts).status(), "PutPages (abstracts)");
    puts.clear();
  };
  uint64_t x = 12345;
  for (uint32_t n = 0; n < nodes; ++n) {
    for (uint32_t layer = 0; layer < layers; ++layer) {
      PagePut p;
      p.hash = chain[n];
      if (n > 0) p.parent = chain[n - 1];
      p.layer = layer;
      p.encoding = PageEncoding::kInt4;
      p.length = bytes;
      p.abstract.resize(kAbstractBytes);
      for (size_t k = 0; k + 8 <= kAbstractBytes; k += 8) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        std::memcpy(p.abstract.data() + k, &x, 8);
      }
      puts.push_back(std::move(p));
    }
    if (puts.size() >= 256) flush();
  }
  if (!puts.empty()) flush();
}

double ReadAbstractsOld(KvStoreClient& c, uint32_t nodes, std::vector<uint8_t>& out) {
  const uint32_t layers = AbstractsLayout().num_layers;
  const std::vector<PageHash> chain = AbstractChain(nodes);
  const size_t per_request = std::max<uint32_t>(1, c.hello().max_pages_per_request);
  const auto t0 = Clock::now();
  const size_t total = size_t{nodes} * layers;
  for (size_t next = 0; next < total; next += per_request) {
    const size_t n = std::min(per_request, total - next);
    std::vector<PageRef> refs(n);
    for (size_t i = 0; i < n; ++i) refs[i] = PageRef{chain[(next + i) / layers], static_cast<uint32_t>((next + i) % layers)};
    auto got = c.GetAbstracts(refs);
    Check(got.status(), "GetAbstracts");
    for (size_t i = 0; i < n; ++i) {
      if (!(*got)[i].has_value() || (*got)[i]->size() != kAbstractBytes) {
        std::fprintf(stderr, "kvstore_bench: abstract missing\n");
        std::exit(1);
      }
      std::memcpy(out.data() + (next + i) * kAbstractBytes, (*got)[i]->data(), kAbstractBytes);
    }
  }
  return Seconds(Clock::now() - t0);
}

double ReadAbstractsChain(KvStoreClient& c, uint32_t nodes, std::vector<uint8_t>& out) {
  const std::vector<PageHash> chain = AbstractChain(nodes);
  const auto t0 = Clock::now();
  size_t at = 0;
  for (uint32_t done = 0; done < nodes;) {
    auto got = c.GetChainAbstracts(absl::MakeConstSpan(chain).subspan(done));
    Check(got.status(), "GetChainAbstracts");
    if (got->num_nodes == 0) {
      std::fprintf(stderr, "kvstore_bench: chain abstracts missing\n");
      std::exit(1);
    }
    for (size_t i = 0; i < got->data.size(); ++i) {
      std::memcpy(out.data() + at, got->data[i], got->lengths[i]);
      at += got->lengths[i];
    }
    Check(c.Release({got->lease_id}), "Release");
    done += got->num_nodes;
  }
  return Seconds(Clock::now() - t0);
}

}  // namespace leoam::kvstore::bench
