// Layout: the KV page shape a fingerprint was registered with (mirrors leoam.v1.KvLayout).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/codec/page_codec.h"

namespace leoam::kvstore {

struct Layout {
  uint32_t num_layers = 0;
  uint32_t page_size = 0;
  uint32_t num_kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t dtype = 0;  // leoam.v1.KvDtype value

  friend bool operator==(const Layout&, const Layout&) = default;

  // Rows of a page for the codecs: K and V of every token and head.
  codec::PageShape page_shape() const {
    return codec::PageShape{int64_t{2} * page_size * num_kv_heads, int64_t{head_dim}};
  }
  // Encoded bytes of one page of this layout.
  absl::StatusOr<size_t> PageBytes(codec::PageEncoding encoding) const {
    return codec::EncodedPageBytes(encoding, page_shape());
  }
};

}  // namespace leoam::kvstore
