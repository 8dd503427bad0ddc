#include "common/byte_size.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace leoam {
namespace {

TEST(ByteSizeTest, IntegersAndSuffixes) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096);
  EXPECT_EQ(*ParseByteSize("64MiB"), int64_t{64} << 20);
  EXPECT_EQ(*ParseByteSize("2G"), int64_t{2} << 30);
  EXPECT_EQ(*ParseByteSize("1TiB"), int64_t{1} << 40);
  EXPECT_EQ(*ParseByteSize("10B"), 10);
  EXPECT_EQ(*ParseByteSize(" 8KiB "), 8192);
  EXPECT_EQ(*ParseByteSize("0"), 0);
}

TEST(ByteSizeTest, MalformedNegativeAndOverflowingSizesAreErrors) {
  for (const char* bad : {"", "MiB", "-1", "1.5G", "12XB", "abc", "9999999999TiB"}) {
    EXPECT_EQ(ParseByteSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace leoam
