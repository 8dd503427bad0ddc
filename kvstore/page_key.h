// Keys of the store: a fingerprint id (interned per model fingerprint), a 16-byte chain hash and
// a layer. On disk a page key is 24 bytes: fp_id (4, big-endian) | hash (16) | layer (4, big-endian),
// so one fingerprint's pages form one contiguous key range (Drop uses DeleteRange over it).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/hash/hash.h"

namespace leoam::kvstore {

inline constexpr size_t kHashBytes = 16;
inline constexpr size_t kPageKeyBytes = 4 + kHashBytes + 4;

struct Hash128 {
  std::array<uint8_t, kHashBytes> bytes{};

  static bool FromBytes(std::string_view s, Hash128* out) {
    if (s.size() != kHashBytes) return false;
    std::memcpy(out->bytes.data(), s.data(), kHashBytes);
    return true;
  }
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), kHashBytes}; }
  friend bool operator==(const Hash128& a, const Hash128& b) { return a.bytes == b.bytes; }
  template <typename H>
  friend H AbslHashValue(H h, const Hash128& x) {
    return H::combine_contiguous(std::move(h), x.bytes.data(), x.bytes.size());
  }
};

// A chain node: all layers of one page position of one model.
struct NodeKey {
  uint32_t fp_id = 0;
  Hash128 hash;
  friend bool operator==(const NodeKey& a, const NodeKey& b) { return a.fp_id == b.fp_id && a.hash == b.hash; }
  template <typename H>
  friend H AbslHashValue(H h, const NodeKey& k) {
    return H::combine(std::move(h), k.fp_id, k.hash);
  }
};

struct PageKey {
  NodeKey node;
  uint32_t layer = 0;
  friend bool operator==(const PageKey& a, const PageKey& b) { return a.node == b.node && a.layer == b.layer; }
  template <typename H>
  friend H AbslHashValue(H h, const PageKey& k) {
    return H::combine(std::move(h), k.node, k.layer);
  }
};

inline void PutBigEndian32(uint32_t v, char* p) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}
inline uint32_t GetBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

inline std::string EncodePageKey(const PageKey& k) {
  std::string s(kPageKeyBytes, '\0');
  PutBigEndian32(k.node.fp_id, s.data());
  std::memcpy(s.data() + 4, k.node.hash.bytes.data(), kHashBytes);
  PutBigEndian32(k.layer, s.data() + 4 + kHashBytes);
  return s;
}

inline bool DecodePageKey(std::string_view s, PageKey* k) {
  if (s.size() != kPageKeyBytes) return false;
  k->node.fp_id = GetBigEndian32(s.data());
  std::memcpy(k->node.hash.bytes.data(), s.data() + 4, kHashBytes);
  k->layer = GetBigEndian32(s.data() + 4 + kHashBytes);
  return true;
}

// First key of a fingerprint's range, and the first key after it.
inline std::string FingerprintRangeStart(uint32_t fp_id) {
  std::string s(4, '\0');
  PutBigEndian32(fp_id, s.data());
  return s;
}
inline std::string FingerprintRangeLimit(uint32_t fp_id) {
  // fp_id + 1 as 4 bytes; for 0xffffffff a 5-byte key sorts after every 24-byte key of it.
  if (fp_id == 0xffffffffu) return std::string("\xff\xff\xff\xff\xff", 5);
  return FingerprintRangeStart(fp_id + 1);
}

}  // namespace leoam::kvstore
