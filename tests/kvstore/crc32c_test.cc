#include "kvstore/crc32c.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

// Reference vectors of CRC32C (RFC 3720 appendix B.4 and the common "check" value).
TEST(Crc32cTest, MatchesKnownValues) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62a8ab43u);
  EXPECT_EQ(Crc32c(inc.data(), inc.size()), 0x46dd794eu);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
}

// Continuing a CRC over split input equals the CRC of the whole, at every split (covers the
// 8-byte loop and the byte tail on both sides).
TEST(Crc32cTest, ContinuesAcrossSplits) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + 5);
  const uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t split = 0; split <= 40; ++split) {
    EXPECT_EQ(Crc32c(data.data() + split, data.size() - split, Crc32c(data.data(), split)), whole) << split;
  }
  data[500] ^= 1;
  EXPECT_NE(Crc32c(data.data(), data.size()), whole);
}

// The hardware path (three interleaved streams over 3x8 KiB and 3x256-byte blocks, combined with
// shift tables) equals the table-driven CRC at lengths and alignments around every block edge.
TEST(Crc32cTest, InterleavedPathMatchesThePortableOne) {
  std::vector<uint8_t> data(3 * 8192 * 3 + 3 * 256 * 2 + 64);
  uint64_t x = 12345;
  for (uint8_t& b : data) b = static_cast<uint8_t>((x = x * 6364136223846793005ull + 1) >> 56);
  for (size_t offset : std::initializer_list<size_t>{0, 1, 3, 8}) {
    for (size_t n : std::initializer_list<size_t>{0, 7, 8, 255, 768, 769, 3 * 256 * 2 + 5, 24575, 24576, 24577, 24576 + 768 + 9, 49152 + 100,
                     data.size() - offset}) {
      ASSERT_EQ(Crc32c(data.data() + offset, n), Crc32cPortable(data.data() + offset, n)) << offset << "/" << n;
      ASSERT_EQ(Crc32c(data.data() + offset, n, 0x1234), Crc32cPortable(data.data() + offset, n, 0x1234));
    }
  }
  EXPECT_EQ(Crc32cPortable("123456789", 9), 0xe3069283u);
}

}  // namespace
}  // namespace leoam::kvstore
