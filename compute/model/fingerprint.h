// Model fingerprint and page keys (DESIGN.md §2, §3).
//
// The fingerprint keys every page the kvstore holds, so a cached page is never reused under other
// weights or another KV layout. It is content-based: a 128-bit hash of the whole GGUF file as
// mapped (header, metadata, tensor table and tensor bytes), combined with the KV layout the pages
// are stored in (page size, dtype, rope parameters). Nothing is cached on disk: the file is hashed
// at load, in parallel chunks (several GB/s on a few cores).
//
// Page keys form a hash chain: h_i = H(fingerprint, h_{i-1}, tokens of page i), h_{-1} absent, so
// a key names a page's whole prefix and identical prefixes share pages. The layer is not part of
// the hash; the store keys a page by (h_i, layer).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "compute/gguf/gguf_file.h"
#include "compute/model/model_config.h"

namespace leoam {

using Hash128 = std::array<uint8_t, 16>;

// MurmurHash3 x64 128 of `n` bytes (stable across runs and machines: little-endian reads).
Hash128 HashBytes128(const void* data, size_t n, uint64_t seed = 0);

// Hash of the whole mapped GGUF file, hashed in chunks on `threads` threads (0: DefaultThreadCount()).
Hash128 GgufContentHash(const gguf::GgufFile& file, int threads = 0);

// What a stored page's bytes depend on besides the weights.
struct KvLayoutKey {
  int32_t page_size = 16;
  std::string dtype = "f32";  // element type of the stored K and V
};

// Fingerprint of (model content, KV layout): content hash + page size, dtype, and the rope
// parameters and head shape from `config` (they decide the post-RoPE keys that pages hold).
Hash128 ModelFingerprint(const Hash128& content_hash, const ModelConfig& config, const KvLayoutKey& layout);

// Chain key of a page: H(fingerprint, parent (absent for page 0), tokens).
Hash128 PageChainHash(const Hash128& fingerprint, const Hash128* parent, std::span<const int32_t> tokens);

// Lower-case hex, 32 characters.
std::string HashHex(const Hash128& hash);

}  // namespace leoam
