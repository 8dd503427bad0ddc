#include "kernels/half.h"

#include <cmath>
#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace leoam::kernels {
namespace {

// Independent decoder: sign * mantissa * 2^exp in double.
double DecodeHalf(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0x1f) return mant ? std::nan("") : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(HalfTest, DecodesEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = DecodeHalf(static_cast<uint16_t>(h));
    const float got = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << "h=" << h;
      ASSERT_EQ(std::signbit(got), (h >> 15) != 0) << "h=" << h;
    }
  }
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f))));
    } else {
      ASSERT_EQ(FloatToHalf(f), h) << "h=" << h;
    }
  }
}

// Midpoints between neighbouring halves round to the one with an even mantissa; a hair above
// or below a midpoint rounds to the nearer one.
TEST(HalfTest, RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {  // positive finite halves below the largest
    const double lo = DecodeHalf(static_cast<uint16_t>(h));
    const double hi = DecodeHalf(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // exact in float
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    const uint16_t even = (h % 2 == 0) ? h : h + 1;
    ASSERT_EQ(FloatToHalf(mid), even) << "h=" << h;
    ASSERT_EQ(FloatToHalf(-mid), even | 0x8000) << "h=" << h;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 0.0f)), h) << "h=" << h;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, INFINITY)), h + 1) << "h=" << h;
  }
}

TEST(HalfTest, OverflowUnderflowAndSpecials) {
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65519.99f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // tie with the odd 65504 rounds up to inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(FloatToHalf(INFINITY), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie with 0 (even)
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
}

TEST(HalfTest, RandomFloatsRoundToNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exp_dist(-30.0f, 17.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f =
        std::ldexp(1.0f + (rng() % 1000000) / 1e6f, static_cast<int>(exp_dist(rng))) * ((rng() & 1) ? -1 : 1);
    const uint16_t h = FloatToHalf(f);
    const double got = DecodeHalf(h);
    if (std::isinf(got)) {
      ASSERT_GE(std::fabs(f), 65520.0f);
      continue;
    }
    // No other half is nearer (check both neighbours).
    const double err = std::fabs(got - f);
    const uint16_t mag = h & 0x7fff;
    if (mag > 0) {
      ASSERT_LE(err, std::fabs(DecodeHalf(static_cast<uint16_t>(h - 1)) - f)) << f;
    }
    if (mag < 0x7bff) {
      ASSERT_LE(err, std::fabs(DecodeHalf(static_cast<uint16_t>(h + 1)) - f)) << f;
    }
  }
}

TEST(Bf16Test, ConvertsAndRoundsToNearestEven) {
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  // 1 + 2^-8 is the midpoint between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3 * 2^-8 is the midpoint between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up.
  EXPECT_EQ(FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(FloatToBf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_EQ(FloatToBf16(INFINITY), 0x7f80);
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(FloatToBf16(f), b);
    }
  }
}

}  // namespace
}  // namespace leoam::kernels
