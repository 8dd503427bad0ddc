// fp16/bf16 conversions and Q8_0 quantization (kernels/half.h, quant.h).
#include "compute/gguf/quant.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/half.h"
#include "gtest/gtest.h"

namespace leoam::gguf {
namespace {

TEST(Float16Test, KnownHalfEncodings) {
  EXPECT_EQ(kernels::FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(kernels::FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(kernels::FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(kernels::FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(kernels::FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(kernels::FloatToHalf(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(kernels::FloatToHalf(1e9f), 0x7c00);
  EXPECT_EQ(kernels::FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(kernels::FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie rounds to even (0)
  EXPECT_EQ(kernels::FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(kernels::FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(kernels::FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(kernels::FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_TRUE(std::isnan(kernels::HalfToFloat(kernels::FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(kernels::HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
}

TEST(Float16Test, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = kernels::HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(kernels::FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(Float16Test, HalfRoundingIsNearest) {
  // Against a double-precision search over neighbours for a spread of values.
  for (int i = -2000; i <= 2000; ++i) {
    const float x = static_cast<float>(i) * 0.0371f + std::ldexp(static_cast<float>(i), -20);
    const uint16_t h = kernels::FloatToHalf(x);
    const double err = std::fabs(double{kernels::HalfToFloat(h)} - x);
    for (int d : {-1, 1}) {
      const uint16_t n = static_cast<uint16_t>(h + d);
      const float nf = kernels::HalfToFloat(n);
      if ((n & 0x7c00) == 0x7c00 || std::signbit(nf) != std::signbit(kernels::HalfToFloat(h))) continue;
      ASSERT_LE(err, std::fabs(double{nf} - x)) << x;
    }
  }
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(kernels::FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(kernels::Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(kernels::FloatToBf16(kernels::BitsToFloat(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(kernels::FloatToBf16(kernels::BitsToFloat(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(kernels::FloatToBf16(kernels::BitsToFloat(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(kernels::Bf16ToFloat(kernels::FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Q8_0Test, MatchesGgmlReferenceRule) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i) * 0.1f;
  std::vector<BlockQ8_0> q(2);
  QuantizeRowQ8_0(x.data(), 64, q.data());
  // Block 0: max |x| = 3.1 -> d = 3.1/127; the max element maps to -127 (x[31] is negative).
  EXPECT_EQ(q[0].d, kernels::FloatToHalf(3.1f / 127.0f));
  EXPECT_EQ(q[0].qs[31], -127);
  EXPECT_EQ(q[0].qs[0], 0);
  EXPECT_EQ(q[0].qs[10], static_cast<int8_t>(std::roundf(1.0f / (3.1f / 127.0f))));
  std::vector<float> y(64);
  ASSERT_TRUE(DequantizeRow(TensorType::kQ8_0, q.data(), 64, y.data()).ok());
  for (int i = 0; i < 64; ++i) {
    const float d = kernels::HalfToFloat(q[i / 32].d);
    EXPECT_NEAR(y[i], x[i], d * 0.5f + 1e-3f * std::fabs(x[i])) << i;
  }
}

TEST(Q8_0Test, AllZeroBlockHasZeroScale) {
  std::vector<float> x(32, 0.0f);
  BlockQ8_0 q;
  QuantizeRowQ8_0(x.data(), 32, &q);
  EXPECT_EQ(q.d, 0);
  for (int8_t v : q.qs) EXPECT_EQ(v, 0);
}

TEST(QuantizeRowTest, RejectsUnsupportedTypesAndBadLengths) {
  std::vector<float> x(40, 1.0f);
  std::vector<uint8_t> out(1024);
  EXPECT_EQ(QuantizeRow(TensorType::kQ8_0, x.data(), 40, out.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeRow(TensorType::kQ4_K, x.data(), 32, out.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(TensorType::kQ4_0, out.data(), 32, x.data()).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(QuantizeRow(TensorType::kF16, x.data(), 40, out.data()).ok());
  std::vector<float> y(40);
  ASSERT_TRUE(DequantizeRow(TensorType::kF16, out.data(), 40, y.data()).ok());
  EXPECT_EQ(y, x);
}

TEST(TensorTypeTest, NamesAndSizes) {
  EXPECT_EQ(TensorTypeName(TensorType::kQ4_K), "Q4_K");
  EXPECT_EQ(TensorTypeName(static_cast<TensorType>(17)), "type 17");
  EXPECT_EQ(RowBytes(TensorType::kF32, 10), 40u);
  EXPECT_EQ(RowBytes(TensorType::kBF16, 10), 20u);
  EXPECT_EQ(RowBytes(TensorType::kQ8_0, 64), 68u);
  EXPECT_EQ(RowBytes(TensorType::kQ8_0, 33), 0u);
  EXPECT_EQ(RowBytes(TensorType::kQ4_K, 256), 0u);
  EXPECT_EQ(BlockSize(TensorType::kQ8_0), 32);
  EXPECT_TRUE(IsSupportedTensorType(TensorType::kBF16));
  EXPECT_FALSE(IsSupportedTensorType(TensorType::kQ4_0));
}

}  // namespace
}  // namespace leoam::gguf
