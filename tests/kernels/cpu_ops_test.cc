// CpuBackend ops against plain scalar references written here (double accumulation), for every
// SIMD level the machine has (scalar, AVX2, AVX-512) and for 1 and 2 threads. Outputs (and
// workspaces) are poisoned with NaN before each run, so a value an op fails to write shows up.
//
// Tolerances (fp32 activations; the reference uses the same dequantized weights, so they do not
// depend on the weight dtype beyond that):
//   MatMul, all dtypes:   |y - ref| <= 2e-5 * sum_k |w x| + 1e-6   (fp32 accumulation over k)
//   Embed:                exact (dequantization is exact in fp32)
//   RmsNorm:              |y - ref| <= 2e-6 * |ref| + 1e-6
//   AddBias, Add:         exact
//   SwiGlu:               |y - ref| <= 4e-6 * |ref| + 1e-30    (vectorized expf is ~1-2 ulp)
//   Rope:                 |y - ref| <= 1e-6                     (|x| <= 1; same float angles)
//   Attention:            |y - ref| <= 2e-5                     (|v| <= 1; softmax in fp32)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/q8_0.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/half.h"

namespace leoam::kernels {
namespace {

using cpu::SimdLevel;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Config {
  SimdLevel level;
  int threads;
};

std::string ConfigName(const testing::TestParamInfo<Config>& info) {
  return std::string(cpu::SimdLevelName(info.param.level)) + "_t" + std::to_string(info.param.threads);
}

std::vector<float> RandomFloats(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void Poison(std::vector<float>& v) { std::fill(v.begin(), v.end(), kNaN); }

// A weight matrix in `type` plus its exact fp32 dequantization for the reference.
struct TestMatrix {
  DType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<float> dequant;  // [rows, cols]
  Matrix view() const { return Matrix{type, bytes.data(), rows, cols}; }
};

TestMatrix MakeMatrix(DType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  TestMatrix m{type, rows, cols, std::vector<uint8_t>(RowBytes(type, cols) * rows), std::vector<float>(rows * cols)};
  const std::vector<float> src = RandomFloats(rows * cols, rng);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = m.bytes.data() + r * RowBytes(type, cols);
    float* deq = m.dequant.data() + r * cols;
    const float* s = src.data() + r * cols;
    switch (type) {
      case DType::kF32:
        std::memcpy(row, s, cols * 4);
        std::copy(s, s + cols, deq);
        break;
      case DType::kF16:
      case DType::kBF16:
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t h = type == DType::kF16 ? FloatToHalf(s[c]) : FloatToBf16(s[c]);
          std::memcpy(row + 2 * c, &h, 2);
          deq[c] = type == DType::kF16 ? HalfToFloat(h) : Bf16ToFloat(h);
        }
        break;
      case DType::kQ8_0:
        for (int64_t b = 0; b < cols / 32; ++b) {
          float amax = 0.0f;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(s[b * 32 + i]));
          cpu::BlockQ8_0 block;
          block.d = FloatToHalf(amax / 127.0f);
          const float d = HalfToFloat(block.d);
          for (int i = 0; i < 32; ++i) {
            const int q = d == 0.0f ? 0 : static_cast<int>(std::lround(s[b * 32 + i] / d));
            block.qs[i] = static_cast<int8_t>(std::clamp(q, -127, 127));
            deq[b * 32 + i] = d * block.qs[i];
          }
          std::memcpy(row + b * sizeof(block), &block, sizeof(block));
        }
        break;
    }
  }
  return m;
}

class CpuOpsTest : public testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    if (GetParam().level > cpu::DetectedCpuFeatures().level()) {
      GTEST_SKIP() << "CPU lacks " << cpu::SimdLevelName(GetParam().level);
    }
    backend_ = NewBackend();
  }
  std::unique_ptr<CpuBackend> NewBackend(size_t gemm_scratch_bytes = size_t{2} << 20, int32_t max_matvec_batch = 8) {
    CpuBackendOptions options;
    options.max_matvec_batch = max_matvec_batch;
    options.num_threads = GetParam().threads;
    options.max_simd = GetParam().level;
    options.gemm_scratch_bytes = gemm_scratch_bytes;
    auto backend = CpuBackend::Create(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->simd_level(), GetParam().level);
    return std::move(*backend);
  }
  std::unique_ptr<CpuBackend> backend_;
  std::mt19937 rng_{1234};
};

void CheckMatMul(CpuBackend& backend, const TestMatrix& m, int32_t n, std::mt19937& rng) {
  const std::vector<float> x = RandomFloats(n * m.cols, rng);
  std::vector<float> y(n * m.rows);
  Poison(y);
  ASSERT_TRUE(backend.MatMul(x.data(), m.view(), n, y.data()).ok());
  for (int32_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < m.rows; ++r) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < m.cols; ++c) {
        const double p = static_cast<double>(m.dequant[r * m.cols + c]) * x[i * m.cols + c];
        ref += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(y[i * m.rows + r], ref, 2e-5 * mag + 1e-6)
          << DTypeName(m.type) << " [" << m.rows << "x" << m.cols << "] n=" << n << " i=" << i << " r=" << r;
    }
  }
}

TEST_P(CpuOpsTest, MatMulAllDtypesAndShapes) {
  struct Shape {
    int64_t rows, cols;
    int32_t n;
  };
  // Rows not multiples of 4/16, columns with tails, decode (n = 1) and prefill (n > 1).
  const Shape shapes[] = {{1, 32, 1},   {5, 64, 1},    {17, 96, 1},    {100, 768, 1},  {771, 256, 1}, {1000, 64, 1},
                          {33, 160, 3}, {64, 2048, 2}, {257, 320, 17}, {300, 768, 64}, {48, 64, 513}};
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (const Shape& s : shapes) {
      CheckMatMul(*backend_, MakeMatrix(type, s.rows, s.cols, rng_), s.n, rng_);
    }
    if (type != DType::kQ8_0) {  // column counts that are no multiple of 8 / 16 / 32
      for (int64_t cols : {1, 7, 15, 33, 100, 771}) {
        CheckMatMul(*backend_, MakeMatrix(type, 37, cols, rng_), 1, rng_);
        CheckMatMul(*backend_, MakeMatrix(type, 37, cols, rng_), 5, rng_);
        CheckMatMul(*backend_, MakeMatrix(type, 37, cols, rng_), 20, rng_);
      }
    }
  }
}

// Small batches (n <= max_matvec_batch) run as blocked matvecs; forcing the GEMM for every n > 1
// covers the GEMM with few tokens (partial micro-tiles) too.
TEST_P(CpuOpsTest, MatMulSmallBatchesThroughGemm) {
  auto gemm_only = NewBackend(size_t{2} << 20, /*max_matvec_batch=*/1);
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (int32_t n : {2, 3, 7, 8, 9}) {
      CheckMatMul(*gemm_only, MakeMatrix(type, 61, type == DType::kQ8_0 ? 96 : 83, rng_), n, rng_);
      CheckMatMul(*backend_, MakeMatrix(type, 5000, 64, rng_), n, rng_);  // several row blocks
    }
  }
}

// Batched decode relies on this: a matvec batch gives each token's row bit for bit what a
// single-token MatMul gives (the batched AVX-512 kernel keeps the single kernel's sums).
TEST_P(CpuOpsTest, MatVecBatchIsBitIdenticalToSingleTokens) {
  auto backend = NewBackend(size_t{2} << 20, /*max_matvec_batch=*/32);
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (int64_t cols : {64, 77, 96, 800}) {
      if (type == DType::kQ8_0 && cols % 32 != 0) continue;
      const TestMatrix m = MakeMatrix(type, 67, cols, rng_);
      for (int32_t n : {2, 3, 4, 5, 8, 11, 16, 32}) {
        const std::vector<float> x = RandomFloats(n * cols, rng_);
        std::vector<float> batched(n * m.rows), single(m.rows);
        ASSERT_TRUE(backend->MatMul(x.data(), m.view(), n, batched.data()).ok());
        for (int32_t t = 0; t < n; ++t) {
          ASSERT_TRUE(backend->MatMul(x.data() + t * cols, m.view(), 1, single.data()).ok());
          ASSERT_EQ(0, std::memcmp(single.data(), batched.data() + t * m.rows, m.rows * sizeof(float)))
              << DTypeName(type) << " cols " << cols << " n " << n << " token " << t;
        }
      }
    }
  }
}

TEST_P(CpuOpsTest, BoxBoundMatchesScalarReference) {
  const cpu::SimdKernels& simd = cpu::SimdKernelsFor(GetParam().level);
  if (simd.box_bound == nullptr) GTEST_SKIP() << "no box_bound at this level (the engine's scalar loop runs)";
  for (int64_t n : {1, 7, 8, 15, 16, 17, 64, 100, 128}) {
    const std::vector<float> q = RandomFloats(n, rng_);
    std::vector<float> mn = RandomFloats(n, rng_), mx = RandomFloats(n, rng_);
    for (int64_t i = 0; i < n; ++i) {
      if (mn[i] > mx[i]) std::swap(mn[i], mx[i]);
    }
    double ref = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double term = std::max(static_cast<double>(q[i]) * mn[i], static_cast<double>(q[i]) * mx[i]);
      ref += term;
      magnitude += std::abs(term);
    }
    // Also: the bound holds for every key inside the box.
    const float bound = simd.box_bound(q.data(), mn.data(), mx.data(), n);
    EXPECT_NEAR(bound, ref, 2e-6 * magnitude + 1e-6) << "n " << n;
    const std::vector<float> t = RandomFloats(n, rng_);
    double dot = 0.0;
    for (int64_t i = 0; i < n; ++i) dot += q[i] * (mn[i] + (mx[i] - mn[i]) * (0.5 + 0.5 * t[i]));
    EXPECT_LE(dot, bound + 2e-6 * magnitude + 1e-6) << "n " << n;
  }
}

// box_bound_heads (every level has it) against a double reference of box_bound per head, over odd
// head dims (masked / scalar channel tails), GQA ratios 1 to 8 and head counts that are not
// multiples of the kernels' head blocks (8 for AVX2, 16 for AVX-512).
TEST_P(CpuOpsTest, BoxBoundHeadsMatchesDoubleReference) {
  const cpu::SimdKernels& simd = cpu::SimdKernelsFor(GetParam().level);
  ASSERT_NE(simd.box_bound_heads, nullptr);
  struct Shape {
    int32_t heads, kv_heads;
  };
  for (const Shape shape : {Shape{1, 1}, Shape{12, 12}, Shape{12, 4}, Shape{6, 2}, Shape{17, 17}, Shape{15, 5},
                            Shape{32, 8}, Shape{40, 5}, Shape{64, 8}}) {
    for (int64_t d : {1, 7, 8, 15, 16, 17, 33, 64, 100, 128}) {
      const int32_t group = shape.heads / shape.kv_heads;
      const std::vector<float> q = RandomFloats(static_cast<size_t>(shape.heads) * d, rng_);
      std::vector<float> mn = RandomFloats(static_cast<size_t>(shape.kv_heads) * d, rng_);
      std::vector<float> mx = RandomFloats(mn.size(), rng_);
      for (size_t i = 0; i < mn.size(); ++i) {
        if (mn[i] > mx[i]) std::swap(mn[i], mx[i]);
      }
      std::vector<float> q_pos(q.size()), q_neg(q.size());
      for (size_t i = 0; i < q.size(); ++i) {
        q_pos[i] = std::max(q[i], 0.0f);
        q_neg[i] = std::min(q[i], 0.0f);
      }
      std::vector<float> out(shape.heads + 1, kNaN);  // one past the end: must stay untouched
      simd.box_bound_heads(q_pos.data(), q_neg.data(), shape.heads, group, mn.data(), mx.data(), d, out.data());
      for (int32_t h = 0; h < shape.heads; ++h) {
        const size_t kv = static_cast<size_t>(h / group) * d;
        double ref = 0.0, magnitude = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          const double qi = q[h * d + i];
          const double term = std::max(qi * mn[kv + i], qi * mx[kv + i]);
          ref += term;
          magnitude += std::abs(term);
        }
        EXPECT_NEAR(out[h], ref, 2e-6 * magnitude + 1e-6)
            << "heads " << shape.heads << " kv heads " << shape.kv_heads << " d " << d << " head " << h;
      }
      EXPECT_TRUE(std::isnan(out[shape.heads])) << "wrote past the heads: " << shape.heads << " d " << d;
    }
  }
}

// A small GEMM scratch forces the converted path to split rows and columns into blocks.
TEST_P(CpuOpsTest, MatMulConvertedBlocksWithSmallScratch) {
  auto small = NewBackend(64 * 1024);
  for (DType type : {DType::kF16, DType::kBF16, DType::kQ8_0}) {
    CheckMatMul(*small, MakeMatrix(type, 70, 4096, rng_), 9, rng_);
    CheckMatMul(*small, MakeMatrix(type, 130, 512, rng_), 33, rng_);
  }
}

TEST_P(CpuOpsTest, MatMulRejectsBadInput) {
  TestMatrix m = MakeMatrix(DType::kF32, 4, 40, rng_);
  std::vector<float> x(40), y(4);
  Matrix q8{DType::kQ8_0, m.bytes.data(), 4, 40};  // 40 is no multiple of 32
  EXPECT_FALSE(backend_->MatMul(x.data(), q8, 1, y.data()).ok());
  Matrix empty{DType::kF32, nullptr, 4, 40};
  EXPECT_FALSE(backend_->MatMul(x.data(), empty, 1, y.data()).ok());
}

TEST_P(CpuOpsTest, EmbedAllDtypes) {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (int64_t dim : {32, 64, 288, 768}) {
      const TestMatrix table = MakeMatrix(type, 50, dim, rng_);
      for (int32_t n : {1, 7, 200}) {
        std::vector<int32_t> ids(n);
        for (int32_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(rng_() % 50);
        ids[0] = 49;
        std::vector<float> out(n * dim);
        Poison(out);
        ASSERT_TRUE(backend_->Embed(table.view(), ids.data(), n, out.data()).ok());
        for (int32_t i = 0; i < n; ++i) {
          for (int64_t c = 0; c < dim; ++c) {
            ASSERT_EQ(out[i * dim + c], table.dequant[ids[i] * dim + c]) << DTypeName(type) << " " << i << " " << c;
          }
        }
      }
    }
  }
  const TestMatrix table = MakeMatrix(DType::kF32, 10, 32, rng_);
  std::vector<float> out(32);
  const int32_t bad_ids[] = {10, -1};
  for (int32_t id : bad_ids) EXPECT_FALSE(backend_->Embed(table.view(), &id, 1, out.data()).ok()) << id;
}

TEST_P(CpuOpsTest, RmsNorm) {
  for (int32_t dim : {8, 64, 771, 4096}) {
    for (int32_t rows : {1, 7, 300}) {
      const std::vector<float> x = RandomFloats(rows * dim, rng_, -3.0f, 3.0f);
      const std::vector<float> weight = RandomFloats(dim, rng_, 0.5f, 1.5f);
      std::vector<float> y(rows * dim);
      Poison(y);
      ASSERT_TRUE(backend_->RmsNorm(x.data(), weight.data(), rows, dim, 1e-5f, y.data()).ok());
      std::vector<float> in_place = x;
      ASSERT_TRUE(backend_->RmsNorm(in_place.data(), weight.data(), rows, dim, 1e-5f, in_place.data()).ok());
      for (int32_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int32_t i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
        const double scale = 1.0 / std::sqrt(ss / dim + 1e-5);
        for (int32_t i = 0; i < dim; ++i) {
          const double ref = x[r * dim + i] * scale * weight[i];
          ASSERT_NEAR(y[r * dim + i], ref, 2e-6 * std::fabs(ref) + 1e-6) << dim << " " << r << " " << i;
          ASSERT_EQ(in_place[r * dim + i], y[r * dim + i]);
        }
      }
    }
  }
}

TEST_P(CpuOpsTest, AddBiasAndAdd) {
  for (int32_t dim : {1, 17, 768}) {
    for (int32_t n : {1, 5, 400}) {
      std::vector<float> y = RandomFloats(n * dim, rng_);
      const std::vector<float> y0 = y;
      const std::vector<float> bias = RandomFloats(dim, rng_);
      ASSERT_TRUE(backend_->AddBias(y.data(), bias.data(), n, dim).ok());
      for (int32_t i = 0; i < n * dim; ++i) ASSERT_EQ(y[i], y0[i] + bias[i % dim]);
    }
  }
  for (size_t count : {size_t{1}, size_t{15}, size_t{1000}, size_t{300007}}) {
    std::vector<float> x = RandomFloats(count, rng_);
    const std::vector<float> x0 = x;
    const std::vector<float> y = RandomFloats(count, rng_);
    ASSERT_TRUE(backend_->Add(x.data(), y.data(), count).ok());
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(x[i], x0[i] + y[i]);
  }
}

TEST_P(CpuOpsTest, SwiGlu) {
  for (size_t count : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{1000}, size_t{200003}}) {
    std::vector<float> gate = RandomFloats(count, rng_, -20.0f, 20.0f);
    const std::vector<float> up = RandomFloats(count, rng_, -2.0f, 2.0f);
    if (count > 4) {
      gate[0] = -100.0f;  // exp(-gate) overflows: silu -> -0
      gate[1] = 100.0f;
      gate[2] = 0.0f;
      gate[3] = -87.5f;
    }
    std::vector<float> out(count);
    Poison(out);
    ASSERT_TRUE(backend_->SwiGlu(gate.data(), up.data(), count, out.data()).ok());
    std::vector<float> aliased = gate;
    ASSERT_TRUE(backend_->SwiGlu(aliased.data(), up.data(), count, aliased.data()).ok());
    for (size_t i = 0; i < count; ++i) {
      const double g = gate[i];
      const double ref = g / (1.0 + std::exp(-g)) * up[i];
      ASSERT_NEAR(out[i], ref, 4e-6 * std::fabs(ref) + 1e-30) << "gate " << g << " up " << up[i];
      ASSERT_EQ(aliased[i], out[i]);
    }
  }
}

TEST_P(CpuOpsTest, Rope) {
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int32_t head_dim : {8, 48, 64, 128}) {
      for (int32_t rot_dim : {head_dim, head_dim / 2}) {
        const int32_t heads = 3, n = 9, half = rot_dim / 2;
        std::vector<float> inv_freq(half);
        for (int32_t i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / rot_dim);
        std::vector<int32_t> positions = {0, 1, 2, 17, 100, 511, 1000, 4095, 5000};
        const std::vector<float> x0 = RandomFloats(n * heads * head_dim, rng_);
        std::vector<float> x = x0;
        RopeParams rope{style, rot_dim, inv_freq.data()};
        ASSERT_TRUE(backend_->Rope(x.data(), positions.data(), n, heads, head_dim, rope).ok());
        for (int32_t t = 0; t < n; ++t) {
          for (int32_t h = 0; h < heads; ++h) {
            const float* in = x0.data() + (t * heads + h) * head_dim;
            const float* got = x.data() + (t * heads + h) * head_dim;
            std::vector<double> ref(in, in + head_dim);
            for (int32_t i = 0; i < half; ++i) {
              const float theta = static_cast<float>(positions[t]) * inv_freq[i];
              const double c = std::cos(theta), s = std::sin(theta);
              const int a = style == RopeStyle::kNormal ? 2 * i : i;
              const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
              ref[a] = in[a] * c - in[b] * s;
              ref[b] = in[a] * s + in[b] * c;
            }
            for (int32_t i = 0; i < head_dim; ++i) {
              ASSERT_NEAR(got[i], ref[i], 1e-6) << "style " << static_cast<int>(style) << " head_dim " << head_dim
                                                << " rot " << rot_dim << " t " << t << " i " << i;
            }
          }
        }
      }
    }
  }
  std::vector<float> x(16), inv_freq(8, 1.0f);
  const int32_t pos = 3;
  EXPECT_FALSE(backend_->Rope(x.data(), &pos, 1, 1, 16, RopeParams{RopeStyle::kNormal, 7, inv_freq.data()}).ok());
  EXPECT_FALSE(backend_->Rope(x.data(), &pos, 1, 1, 16, RopeParams{RopeStyle::kNormal, 18, inv_freq.data()}).ok());
}

// Reference causal GQA attention in double.
std::vector<double> ReferenceAttention(const AttentionParams& p, const std::vector<float>& q,
                                       const std::vector<float>& k, const std::vector<float>& v) {
  const int group = p.num_heads / p.num_kv_heads, d = p.head_dim;
  std::vector<double> out(static_cast<size_t>(p.num_queries) * p.num_heads * d, 0.0);
  for (int i = 0; i < p.num_queries; ++i) {
    const int keys = p.first_position + i + 1;
    for (int h = 0; h < p.num_heads; ++h) {
      const int g = h / group;
      const float* qh = q.data() + (static_cast<size_t>(i) * p.num_heads + h) * d;
      std::vector<double> s(keys);
      double m = -INFINITY;
      for (int j = 0; j < keys; ++j) {
        const float* kj = k.data() + (static_cast<size_t>(j) * p.num_kv_heads + g) * d;
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += static_cast<double>(qh[c]) * kj[c];
        s[j] = dot * p.scale;
        m = std::max(m, s[j]);
      }
      double l = 0;
      for (int j = 0; j < keys; ++j) l += (s[j] = std::exp(s[j] - m));
      double* o = out.data() + (static_cast<size_t>(i) * p.num_heads + h) * d;
      for (int j = 0; j < keys; ++j) {
        const float* vj = v.data() + (static_cast<size_t>(j) * p.num_kv_heads + g) * d;
        for (int c = 0; c < d; ++c) o[c] += s[j] / l * vj[c];
      }
    }
  }
  return out;
}

void CheckAttention(CpuBackend& backend, AttentionParams p, std::mt19937& rng) {
  p.scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  const size_t keys = static_cast<size_t>(p.first_position) + p.num_queries;
  // Queries scaled up so that the softmax is peaked, as in trained models, not uniform.
  const std::vector<float> q = RandomFloats(static_cast<size_t>(p.num_queries) * p.num_heads * p.head_dim, rng, -3, 3);
  const std::vector<float> k = RandomFloats(keys * p.num_kv_heads * p.head_dim, rng);
  const std::vector<float> v = RandomFloats(keys * p.num_kv_heads * p.head_dim, rng);
  std::vector<float> out(q.size());
  Poison(out);
  std::vector<float> workspace(AttentionWorkspaceBytes(p, backend.num_threads()) / sizeof(float) + 1);
  Poison(workspace);
  ASSERT_TRUE(backend.Attention(p, q.data(), k.data(), v.data(), out.data(), workspace.data()).ok());
  const std::vector<double> ref = ReferenceAttention(p, q, k, v);
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(out[i], ref[i], 2e-5) << "n=" << p.num_queries << " heads=" << p.num_heads << "/" << p.num_kv_heads
                                      << " d=" << p.head_dim << " first=" << p.first_position << " at " << i;
  }
}

TEST_P(CpuOpsTest, AttentionDecode) {
  struct Heads {
    int32_t heads, kv_heads, head_dim;
  };
  // GQA ratios 1, 2, 4, 8; head dims 8 (stories260K), 48, 64, 128.
  for (Heads h : {Heads{8, 4, 8}, Heads{12, 12, 64}, Heads{8, 2, 48}, Heads{8, 1, 128}, Heads{4, 1, 64}}) {
    for (int32_t first : {0, 1, 5, 300, 3000}) {
      CheckAttention(backend_.operator*(), AttentionParams{1, h.heads, h.kv_heads, h.head_dim, first, 0.0f}, rng_);
    }
  }
}

TEST_P(CpuOpsTest, AttentionPrefill) {
  struct Case {
    int32_t n, heads, kv_heads, head_dim, first;
  };
  for (Case c : {Case{2, 8, 4, 8, 0}, Case{7, 8, 4, 8, 3}, Case{64, 4, 4, 64, 0}, Case{65, 8, 2, 48, 0},
                 Case{130, 8, 1, 128, 37}, Case{200, 6, 3, 64, 0}, Case{100, 4, 1, 64, 2900}}) {
    CheckAttention(*backend_, AttentionParams{c.n, c.heads, c.kv_heads, c.head_dim, c.first, 0.0f}, rng_);
  }
}

TEST_P(CpuOpsTest, AttentionRejectsBadParams) {
  std::vector<float> buf(64);
  EXPECT_FALSE(
      backend_
          ->Attention(AttentionParams{1, 6, 4, 8, 0, 1.0f}, buf.data(), buf.data(), buf.data(), buf.data(), buf.data())
          .ok());  // 6 % 4 != 0
  EXPECT_FALSE(
      backend_
          ->Attention(AttentionParams{1, 4, 4, 0, 0, 1.0f}, buf.data(), buf.data(), buf.data(), buf.data(), buf.data())
          .ok());
}

TEST_P(CpuOpsTest, AllocateAndCopy) {
  auto buffer = backend_->Allocate(1000);
  ASSERT_TRUE(buffer.ok());
  ASSERT_NE(buffer->data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer->data()) % 64, 0u);
  std::vector<uint8_t> src(1000), dst(1000);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(backend_->CopyToDevice(buffer->data(), src.data(), 1000).ok());
  ASSERT_TRUE(backend_->CopyToHost(dst.data(), buffer->data(), 1000).ok());
  EXPECT_EQ(src, dst);
  DeviceBuffer moved = std::move(*buffer);
  EXPECT_EQ(buffer->data(), nullptr);
  EXPECT_EQ(moved.bytes(), 1000u);
  moved.Reset();
  EXPECT_EQ(moved.data(), nullptr);

  auto kept = backend_->UploadConstant(src.data(), 1000, /*host_outlives_backend=*/true);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, src.data());
  auto copied = backend_->UploadConstant(src.data(), 1000, /*host_outlives_backend=*/false);
  ASSERT_TRUE(copied.ok());
  EXPECT_NE(*copied, src.data());
  EXPECT_EQ(std::memcmp(*copied, src.data(), 1000), 0);
}

INSTANTIATE_TEST_SUITE_P(Levels, CpuOpsTest,
                         testing::Values(Config{SimdLevel::kScalar, 1}, Config{SimdLevel::kAvx2, 1},
                                         Config{SimdLevel::kAvx512, 1}, Config{SimdLevel::kAvx2, 2},
                                         Config{SimdLevel::kAvx512, 2}, Config{SimdLevel::kScalar, 2}),
                         ConfigName);

TEST(BackendTest, DTypeNamesAndRowBytes) {
  EXPECT_EQ(DTypeName(DType::kQ8_0), "Q8_0");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(RowBytes(DType::kF32, 10), 40u);
  EXPECT_EQ(RowBytes(DType::kF16, 10), 20u);
  EXPECT_EQ(RowBytes(DType::kBF16, 10), 20u);
  EXPECT_EQ(RowBytes(DType::kQ8_0, 64), 68u);
}

TEST(BackendTest, CreateRejectsBadThreadCount) {
  CpuBackendOptions options;
  options.num_threads = 0;
  EXPECT_FALSE(CpuBackend::Create(options).ok());
}

}  // namespace
}  // namespace leoam::kernels
