// fp16/bf16 conversions and Q8_0 quantization (kernels/half.h, quant.h).
#include "compute/gguf/quant.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/half.h"
#include "gtest/gtest.h"

namespace leoam::gguf {
namespace {

// fp16/bf16 conversions (kernels/half.h) are tested in tests/kernels/half_test.cc.

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
