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

}  // namespace
}  // namespace leoam::kvstore
