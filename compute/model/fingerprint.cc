#include "compute/model/fingerprint.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/thread_pool.h"

namespace leoam {
namespace {

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t Fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // the project targets little-endian hosts (x86-64, aarch64)
  return v;
}

// Appends plain values to a byte string for hashing.
class Bytes {
 public:
  template <typename T>
  Bytes& Add(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    data_.insert(data_.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& Add(std::string_view s) {
    Add(static_cast<uint64_t>(s.size()));
    data_.insert(data_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Add(const Hash128& h) {
    data_.insert(data_.end(), h.begin(), h.end());
    return *this;
  }
  Hash128 Hash(uint64_t seed) const { return HashBytes128(data_.data(), data_.size(), seed); }

 private:
  std::vector<uint8_t> data_;
};

constexpr uint64_t kFileSeed = 0x6c656f616d2d6767ULL;   // "leoam-gg"
constexpr uint64_t kModelSeed = 0x6c656f616d2d6670ULL;  // "leoam-fp"
constexpr uint64_t kPageSeed = 0x6c656f616d2d7067ULL;   // "leoam-pg"

}  // namespace

Hash128 HashBytes128(const void* data, size_t n, uint64_t seed) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  const size_t nblocks = n / 16;
  uint64_t h1 = seed, h2 = seed;
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  for (size_t i = 0; i < nblocks; ++i) {
    uint64_t k1 = Load64(bytes + i * 16), k2 = Load64(bytes + i * 16 + 8);
    k1 *= c1; k1 = Rotl(k1, 31); k1 *= c2; h1 ^= k1;
    h1 = Rotl(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
    k2 *= c2; k2 = Rotl(k2, 33); k2 *= c1; h2 ^= k2;
    h2 = Rotl(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
  }
  const uint8_t* tail = bytes + nblocks * 16;
  uint64_t k1 = 0, k2 = 0;
  switch (n & 15) {
    case 15: k2 ^= uint64_t{tail[14]} << 48; [[fallthrough]];
    case 14: k2 ^= uint64_t{tail[13]} << 40; [[fallthrough]];
    case 13: k2 ^= uint64_t{tail[12]} << 32; [[fallthrough]];
    case 12: k2 ^= uint64_t{tail[11]} << 24; [[fallthrough]];
    case 11: k2 ^= uint64_t{tail[10]} << 16; [[fallthrough]];
    case 10: k2 ^= uint64_t{tail[9]} << 8; [[fallthrough]];
    case 9: k2 ^= uint64_t{tail[8]}; k2 *= c2; k2 = Rotl(k2, 33); k2 *= c1; h2 ^= k2; [[fallthrough]];
    case 8: k1 ^= uint64_t{tail[7]} << 56; [[fallthrough]];
    case 7: k1 ^= uint64_t{tail[6]} << 48; [[fallthrough]];
    case 6: k1 ^= uint64_t{tail[5]} << 40; [[fallthrough]];
    case 5: k1 ^= uint64_t{tail[4]} << 32; [[fallthrough]];
    case 4: k1 ^= uint64_t{tail[3]} << 24; [[fallthrough]];
    case 3: k1 ^= uint64_t{tail[2]} << 16; [[fallthrough]];
    case 2: k1 ^= uint64_t{tail[1]} << 8; [[fallthrough]];
    case 1: k1 ^= uint64_t{tail[0]}; k1 *= c1; k1 = Rotl(k1, 31); k1 *= c2; h1 ^= k1; break;
    default: break;
  }
  h1 ^= n; h2 ^= n;
  h1 += h2; h2 += h1;
  h1 = Fmix(h1); h2 = Fmix(h2);
  h1 += h2; h2 += h1;
  Hash128 out;
  std::memcpy(out.data(), &h1, 8);
  std::memcpy(out.data() + 8, &h2, 8);
  return out;
}

Hash128 GgufContentHash(const gguf::GgufFile& file, int threads) {
  // Fixed chunking (independent of the thread count) so the hash is the same on every machine.
  constexpr uint64_t kChunk = uint64_t{8} << 20;
  const uint64_t size = file.file_size();
  const int64_t chunks = static_cast<int64_t>((size + kChunk - 1) / kChunk);
  std::vector<Hash128> digests(chunks);
  ThreadPool pool(std::max(1, std::min<int>(threads > 0 ? threads : DefaultThreadCount(),
                                            static_cast<int>(std::max<int64_t>(chunks, 1)))));
  pool.ParallelFor(chunks, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      const uint64_t off = static_cast<uint64_t>(c) * kChunk;
      digests[c] = HashBytes128(file.file_data() + off, std::min(kChunk, size - off), kFileSeed + c);
    }
  });
  Bytes b;
  b.Add(size);
  for (const Hash128& d : digests) b.Add(d);
  return b.Hash(kFileSeed);
}

Hash128 ModelFingerprint(const Hash128& content_hash, const ModelConfig& config, const KvLayoutKey& layout) {
  Bytes b;
  b.Add(content_hash)
      .Add(std::string_view("leoam-kv-layout-v1"))
      .Add(layout.page_size)
      .Add(std::string_view(layout.dtype))
      .Add(config.num_layers)
      .Add(config.num_kv_heads)
      .Add(config.head_dim)
      .Add(config.rope_freq_base)
      .Add(config.rope_dim)
      .Add(static_cast<int32_t>(config.rope_style))
      .Add(config.rope_linear_scale);
  return b.Hash(kModelSeed);
}

Hash128 PageChainHash(const Hash128& fingerprint, const Hash128* parent, std::span<const int32_t> tokens) {
  Bytes b;
  b.Add(fingerprint).Add(static_cast<uint8_t>(parent != nullptr));
  if (parent != nullptr) b.Add(*parent);
  b.Add(static_cast<uint64_t>(tokens.size()));
  for (int32_t t : tokens) b.Add(t);
  return b.Hash(kPageSeed);
}

std::string HashHex(const Hash128& hash) {
  std::string s;
  for (uint8_t x : hash) s += absl::StrFormat("%02x", x);
  return s;
}

}  // namespace leoam
