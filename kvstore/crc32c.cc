#include "kvstore/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace leoam::kvstore {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kTable = MakeTable();

uint32_t Software(const uint8_t* p, size_t n, uint32_t crc) {
  for (size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

// Shifting a CRC state over n zero bytes is linear over GF(2): a 32x32 bit matrix, applied here
// with four 256-entry tables (one per byte of the state). Used to combine the CRCs of three
// streams computed side by side (Mark Adler's crc32c method): the crc32 instruction has a latency
// of 3 cycles and a throughput of 1, so one dependent chain runs at a third of its speed.
constexpr size_t kLong = 8192, kShort = 256;

uint32_t Gf2MatrixTimes(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if (vec & 1) sum ^= *mat;
  }
  return sum;
}

void Gf2MatrixSquare(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = Gf2MatrixTimes(mat, mat[n]);
}

struct ShiftTable {
  uint32_t t[4][256];
  // Operator for `len` zero bytes, len a power of two.
  explicit ShiftTable(size_t len) {
    uint32_t even[32], odd[32];
    odd[0] = kPoly;  // one zero bit
    uint32_t row = 1;
    for (int n = 1; n < 32; ++n, row <<= 1) odd[n] = row;
    Gf2MatrixSquare(even, odd);  // two zero bits
    Gf2MatrixSquare(odd, even);  // four zero bits
    const uint32_t* op = nullptr;
    for (;;) {
      Gf2MatrixSquare(even, odd);  // 8, 32, 128, ... bits: 1, 4, 16, ... bytes
      len >>= 1;
      if (len == 0) {
        op = even;
        break;
      }
      Gf2MatrixSquare(odd, even);
      len >>= 1;
      if (len == 0) {
        op = odd;
        break;
      }
    }
    for (uint32_t n = 0; n < 256; ++n) {
      for (int b = 0; b < 4; ++b) t[b][n] = Gf2MatrixTimes(op, n << (8 * b));
    }
  }
  uint32_t Shift(uint32_t crc) const {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
  }
};

#if defined(__x86_64__)
template <size_t kBlock>
__attribute__((target("sse4.2"))) inline void ThreeWay(const ShiftTable& shift, const uint8_t*& p, size_t& n,
                                                        uint64_t& c0) {
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    for (const uint8_t* end = p + kBlock; p < end; p += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p, 8);
      std::memcpy(&v1, p + kBlock, 8);
      std::memcpy(&v2, p + 2 * kBlock, 8);
      c0 = _mm_crc32_u64(c0, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ c1;
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ c2;
    p += 2 * kBlock;
    n -= 3 * kBlock;
  }
}

__attribute__((target("sse4.2"))) uint32_t Hardware(const uint8_t* p, size_t n, uint32_t crc) {
  static const ShiftTable kLongShift(kLong), kShortShift(kShort);
  uint64_t c = crc;
  ThreeWay<kLong>(kLongShift, p, n, c);
  ThreeWay<kShort>(kShortShift, p, n, c);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}
#endif

bool DetectHardware() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

}  // namespace

bool Crc32cIsHardware() {
  static const bool hw = DetectHardware();
  return hw;
}

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (Crc32cIsHardware()) return ~Hardware(p, n, crc);
#endif
  return ~Software(p, n, crc);
}

uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc) {
  return ~Software(static_cast<const uint8_t*>(data), n, ~crc);
}

}  // namespace leoam::kvstore
