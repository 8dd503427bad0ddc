#include "kernels/codec/page_codec.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/half.h"

namespace leoam::codec {
namespace {

std::vector<float> RandomValues(size_t n, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(PageCodecTest, SizesFollowTheDocumentedLayouts) {
  const PageShape s{2 * 16 * 8, 128};  // K+V, 16 tokens, 8 heads
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kFp16, s), 256u * 128 * 2);
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kBf16, s), 256u * 128 * 2);
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kInt8, s), 256u * 128 + 256u * 4 * 4);
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kInt4, s), 256u * 64 + 256u * 4 * 4);
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kF32, s), 256u * 128 * 4);
  // F32 is the largest encoding of any shape (the store sizes staging buffers by it).
  for (PageEncoding e : {PageEncoding::kFp16, PageEncoding::kBf16, PageEncoding::kInt8, PageEncoding::kInt4}) {
    EXPECT_LT(*EncodedPageBytes(e, s), *EncodedPageBytes(kLargestPageEncoding, s));
  }
  // head_dim below the group size: one group per row.
  EXPECT_EQ(*EncodedPageBytes(PageEncoding::kInt4, PageShape{4, 8}), 4u * 4 + 4u * 4);
}

TEST(PageCodecTest, RejectsShapesThatDoNotFit) {
  EXPECT_FALSE(EncodedPageBytes(PageEncoding::kInt8, PageShape{4, 48}).ok());  // 48 % 32
  EXPECT_FALSE(EncodedPageBytes(PageEncoding::kInt4, PageShape{4, 7}).ok());   // odd
  EXPECT_FALSE(EncodedPageBytes(PageEncoding::kFp16, PageShape{0, 8}).ok());
  EXPECT_FALSE(EncodedPageBytes(static_cast<PageEncoding>(9), PageShape{4, 8}).ok());
  EXPECT_FALSE(EncodedPageBytes(PageEncoding::kF32, PageShape{4, 0}).ok());
  std::vector<float> in(32);
  std::vector<uint8_t> out(10);
  EXPECT_FALSE(EncodePage(PageEncoding::kFp16, PageShape{1, 32}, in, absl::MakeSpan(out)).ok());
}

TEST(PageCodecTest, Fp16AndBf16RoundTripWithinTheirPrecision) {
  const PageShape s{64, 64};
  const std::vector<float> x = RandomValues(64 * 64, 1, 3.0f);
  for (PageEncoding e : {PageEncoding::kFp16, PageEncoding::kBf16}) {
    std::vector<uint8_t> enc(*EncodedPageBytes(e, s));
    ASSERT_TRUE(EncodePage(e, s, x, absl::MakeSpan(enc)).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(DecodePage(e, s, enc, absl::MakeSpan(y)).ok());
    const float rel = e == PageEncoding::kFp16 ? 1.0f / 2048 : 1.0f / 256;
    for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(x[i] - y[i]), std::fabs(x[i]) * rel + 1e-7f) << i;
  }
}

TEST(PageCodecTest, F32IsExactAndItsBytesAreTheFloats) {
  EXPECT_TRUE(IsValidPageEncoding(5));
  EXPECT_FALSE(IsValidPageEncoding(6));
  EXPECT_FALSE(IsValidPageEncoding(0));
  EXPECT_EQ(PageEncodingName(PageEncoding::kF32), "f32");
  const PageShape s{16, 48};  // head_dim 48: not a multiple of 32, still fine for f32
  std::vector<float> x = RandomValues(16 * 48, 5, 1e3f);
  x[0] = -0.0f;
  x[1] = 1e-42f;  // denormal: would not survive fp16
  x[2] = 3.0e38f;
  std::vector<uint8_t> enc(*EncodedPageBytes(PageEncoding::kF32, s));
  ASSERT_EQ(enc.size(), x.size() * 4);
  ASSERT_TRUE(EncodePage(PageEncoding::kF32, s, x, absl::MakeSpan(enc)).ok());
  EXPECT_EQ(std::memcmp(enc.data(), x.data(), enc.size()), 0);
  std::vector<float> y(x.size());
  ASSERT_TRUE(DecodePage(PageEncoding::kF32, s, enc, absl::MakeSpan(y)).ok());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * 4), 0);
  EXPECT_TRUE(std::signbit(y[0]));
  // An fp16-sized buffer is not an f32 page.
  std::vector<uint8_t> half_size(x.size() * 2);
  EXPECT_FALSE(EncodePage(PageEncoding::kF32, s, x, absl::MakeSpan(half_size)).ok());
  EXPECT_FALSE(DecodePage(PageEncoding::kF32, s, half_size, absl::MakeSpan(y)).ok());
}

// Checks every value against the documented bound using the group's own scale and min.
void CheckQuantized(PageEncoding e, PageShape s, const std::vector<float>& x) {
  std::vector<uint8_t> enc(*EncodedPageBytes(e, s));
  ASSERT_TRUE(EncodePage(e, s, x, absl::MakeSpan(enc)).ok());
  std::vector<float> y(x.size());
  ASSERT_TRUE(DecodePage(e, s, enc, absl::MakeSpan(y)).ok());
  const int64_t g = GroupSize(s.head_dim);
  const float levels = e == PageEncoding::kInt8 ? 255.0f : 15.0f;
  const size_t code_bytes = e == PageEncoding::kInt8 ? x.size() : x.size() / 2;
  double max_err = 0.0;
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t c = 0; c < s.head_dim; ++c) {
      const uint8_t* p = enc.data() + code_bytes + (r * (s.head_dim / g) + c / g) * 4;
      uint16_t sh, mh;
      std::memcpy(&sh, p, 2);
      std::memcpy(&mh, p + 2, 2);
      const float scale = kernels::HalfToFloat(sh), mn = kernels::HalfToFloat(mh);
      const size_t i = static_cast<size_t>(r * s.head_dim + c);
      const float bound = 0.5f * scale + (std::fabs(mn) + levels * scale) / 1024.0f + 1e-6f;
      ASSERT_LE(std::fabs(x[i] - y[i]), bound) << "row " << r << " col " << c;
      max_err = std::max(max_err, double(std::fabs(x[i] - y[i])));
    }
  }
  EXPECT_GT(max_err, 0.0);  // quantization is lossy: the test would notice a codec that copies fp32
}

TEST(PageCodecTest, Int8RoundTripWithinHalfAStep) {
  CheckQuantized(PageEncoding::kInt8, PageShape{64, 128}, RandomValues(64 * 128, 2, 2.0f));
}

TEST(PageCodecTest, Int4RoundTripWithinHalfAStep) {
  CheckQuantized(PageEncoding::kInt4, PageShape{64, 128}, RandomValues(64 * 128, 3, 2.0f));
  CheckQuantized(PageEncoding::kInt4, PageShape{8, 16}, RandomValues(8 * 16, 4, 0.5f));
}

TEST(PageCodecTest, ConstantGroupsDecodeExactly) {
  const PageShape s{2, 64};
  std::vector<float> x(128, 1.5f);
  for (PageEncoding e : {PageEncoding::kInt8, PageEncoding::kInt4}) {
    std::vector<uint8_t> enc(*EncodedPageBytes(e, s));
    ASSERT_TRUE(EncodePage(e, s, x, absl::MakeSpan(enc)).ok());
    std::vector<float> y(x.size());
    ASSERT_TRUE(DecodePage(e, s, enc, absl::MakeSpan(y)).ok());
    for (float v : y) EXPECT_EQ(v, 1.5f);
  }
}

TEST(PageCodecTest, Int4PacksLowNibbleFirst) {
  // One row of 2 channels: min 0, max 15 -> scale 1, codes 0 and 15 -> byte 0xF0.
  const PageShape s{1, 2};
  std::vector<float> x = {0.0f, 15.0f};
  std::vector<uint8_t> enc(*EncodedPageBytes(PageEncoding::kInt4, s));
  ASSERT_TRUE(EncodePage(PageEncoding::kInt4, s, x, absl::MakeSpan(enc)).ok());
  EXPECT_EQ(enc[0], 0xF0);
}

}  // namespace
}  // namespace leoam::codec
