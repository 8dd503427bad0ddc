// StoreTest: a Store in-process on a temp dir with a small arena, and helpers that drive it
// (shared by the Store unit tests).
#pragma once

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "kvstore/store.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore {

inline constexpr uint64_t kPageBytes = 2 * 16 * 2 * 32 * 2;  // fp16 page of the layout below

inline std::string Hash(uint8_t chain, uint8_t pos) {
  std::string h(16, '\0');
  h[0] = static_cast<char>(chain);
  h[1] = static_cast<char>(pos);
  h[15] = 1;
  return h;
}

// The abstract PutChain stores for a page: distinct per page, of varying length.
inline std::string Abstract(uint8_t c, uint8_t pos, uint32_t layer) {
  return absl::StrFormat("abs-%d-%d-%d", c, pos, layer);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(absl::Duration lease_timeout = absl::Seconds(60), uint64_t max_abstract_region_bytes = 64ull << 20,
            uint32_t readahead_pages = 0) {
    store_.reset();
    StoreOptions o;
    o.max_abstract_region_bytes = max_abstract_region_bytes;
    o.readahead_pages = readahead_pages;
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

  v1::HelloResponse Hello(const std::string& fp, uint32_t heads = 2, absl::Status* status = nullptr,
                          v1::KvDtype dtype = v1::KV_DTYPE_F16) {
    v1::HelloRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_model_fingerprint(fp);
    req.mutable_layout()->set_num_layers(2);
    req.mutable_layout()->set_page_size(16);
    req.mutable_layout()->set_num_kv_heads(heads);
    req.mutable_layout()->set_head_dim(32);
    req.mutable_layout()->set_dtype(dtype);
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
        p->set_abstract(Abstract(c, pos, layer));
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

}  // namespace leoam::kvstore
