// CudaBackend op by op against the CPU backend (the reference) on fresh random inputs of several
// shapes: odd sizes, GQA ratios, page selections, every weight type. Outputs are poisoned with NaN
// before each run, so an op that skips an element fails. Tolerances are relative to the largest
// reference magnitude of the output and stated per op and dtype:
//   exact (0)  Embed, Add, AddBias (same single operations)
//   1e-5       RmsNorm, SwiGlu, RoPE (device cosf/sinf/expf vs glibc, a few ulp), GEMV in any
//              weight type (fp32 accumulation in another order), fp32 SGEMM, attention (fp32)
//   4e-3       cuBLAS GEMM with F16 / Q8_0 weights: activations are rounded to fp16 (2^-11)
//   3e-2       cuBLAS GEMM with BF16 weights: activations rounded to bf16 (2^-8)
// Skips (does not fail) without a GPU — the CI machine compiles CUDA but has none — unless
// LEOAM_REQUIRE_GPU is set (scripts/gpu-check.sh).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_probe.h"
#include "kernels/half.h"

namespace leoam::kernels {
namespace {

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const CudaProbe probe = ProbeCuda();
    if (probe.device_count == 0) {
      // scripts/gpu-check.sh sets LEOAM_REQUIRE_GPU: there a missing GPU is a failure, not a skip.
      if (std::getenv("LEOAM_REQUIRE_GPU") != nullptr) FAIL() << "LEOAM_REQUIRE_GPU set but no GPU: " << probe.detail;
      GTEST_SKIP() << "no GPU: " << probe.detail;
    }
    auto gpu = CudaBackend::Create();
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
    auto cpu = CpuBackend::Create({.num_threads = 2});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    cpu_ = std::move(*cpu);
  }

  template <typename T>
  DeviceBuffer ToGpu(const std::vector<T>& host) {
    auto buffer = gpu_->Allocate(std::max<size_t>(1, host.size() * sizeof(T)));
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    EXPECT_TRUE(gpu_->CopyToDevice(buffer->data(), host.data(), host.size() * sizeof(T)).ok());
    return std::move(*buffer);
  }
  // A device buffer of `count` floats filled with NaN.
  DeviceBuffer Poisoned(size_t count) {
    return ToGpu(std::vector<float>(count, std::numeric_limits<float>::quiet_NaN()));
  }
  std::vector<float> FromGpu(const DeviceBuffer& buffer, size_t count) {
    std::vector<float> host(count);
    const absl::Status s = gpu_->CopyToHost(host.data(), buffer.data(), count * sizeof(float));
    EXPECT_TRUE(s.ok()) << s;
    return host;
  }

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
};

std::vector<float> Random(size_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = n(rng);
  return v;
}

// max |got - want| / max |want| (NaN anywhere in got -> infinity).
double RelativeError(const std::vector<float>& want, const std::vector<float>& got) {
  double max_want = 1e-30, max_err = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    max_want = std::max(max_want, std::abs(double{want[i]}));
    max_err = std::max(max_err, std::abs(double{got[i]} - want[i]));
  }
  return max_err / max_want;
}

// A weight matrix in `type` built from random values: bytes plus the matching Matrix view.
struct Weights {
  std::vector<uint8_t> bytes;
  DType type;
  int64_t rows, cols;
};

Weights MakeWeights(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> values = Random(static_cast<size_t>(rows * cols), seed, 0.5f);
  Weights w{{}, type, rows, cols};
  w.bytes.resize(RowBytes(type, cols) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = w.bytes.data() + r * RowBytes(type, cols);
    const float* src = values.data() + r * cols;
    if (type == DType::kF32) {
      std::memcpy(row, src, cols * 4);
    } else if (type == DType::kF16 || type == DType::kBF16) {
      for (int64_t c = 0; c < cols; ++c) {
        const uint16_t h = type == DType::kF16 ? FloatToHalf(src[c]) : FloatToBf16(src[c]);
        std::memcpy(row + 2 * c, &h, 2);
      }
    } else {  // Q8_0: scale = max|x| / 127 as fp16, q = round(x / scale)
      for (int64_t b = 0; b < cols / 32; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(src[b * 32 + i]));
        const uint16_t d = FloatToHalf(amax / 127.0f);
        const float scale = HalfToFloat(d);
        uint8_t* block = row + b * 34;
        std::memcpy(block, &d, 2);
        for (int i = 0; i < 32; ++i) {
          const float q = scale == 0.0f ? 0.0f : std::round(src[b * 32 + i] / scale);
          block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, q))));
        }
      }
    }
  }
  return w;
}

Matrix View(const Weights& w, const void* data) { return Matrix{w.type, data, w.rows, w.cols}; }

TEST_F(CudaBackendTest, EmbedEveryTypeIsExact) {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    const Weights w = MakeWeights(type, 37, 96, 1 + static_cast<int>(type));
    const std::vector<int32_t> ids = {0, 36, 5, 5, 17};
    std::vector<float> want(ids.size() * 96);
    ASSERT_TRUE(cpu_->Embed(View(w, w.bytes.data()), ids.data(), 5, want.data()).ok());
    DeviceBuffer table = ToGpu(w.bytes), gids = ToGpu(ids), out = Poisoned(want.size());
    ASSERT_TRUE(gpu_->Embed(View(w, table.data()), gids.as<int32_t>(), 5, out.as<float>()).ok());
    EXPECT_EQ(RelativeError(want, FromGpu(out, want.size())), 0.0) << DTypeName(type);
  }
}

TEST_F(CudaBackendTest, EmbedReportsAnOutOfRangeIdAtTheNextSync) {
  const Weights w = MakeWeights(DType::kF32, 10, 32, 3);
  const std::vector<int32_t> ids = {1, 10};
  DeviceBuffer table = ToGpu(w.bytes), gids = ToGpu(ids), out = Poisoned(64);
  ASSERT_TRUE(gpu_->Embed(View(w, table.data()), gids.as<int32_t>(), 2, out.as<float>()).ok());
  const absl::Status s = gpu_->Synchronize();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(std::string(s.message()).find("10"), std::string::npos) << s;
  EXPECT_TRUE(gpu_->Synchronize().ok()) << "the flag is cleared once reported";
}

TEST_F(CudaBackendTest, RmsNormAddBiasAddSwiGlu) {
  for (int dim : {77, 4096}) {
    const int rows = 5;
    const auto x = Random(rows * dim, dim), weight = Random(dim, dim + 1), bias = Random(dim, dim + 2);
    std::vector<float> want(rows * dim);
    ASSERT_TRUE(cpu_->RmsNorm(x.data(), weight.data(), rows, dim, 1e-5f, want.data()).ok());
    DeviceBuffer gx = ToGpu(x), gw = ToGpu(weight), gb = ToGpu(bias), out = Poisoned(want.size());
    ASSERT_TRUE(gpu_->RmsNorm(gx.as<float>(), gw.as<float>(), rows, dim, 1e-5f, out.as<float>()).ok());
    EXPECT_LT(RelativeError(want, FromGpu(out, want.size())), 1e-5) << "RmsNorm dim " << dim;

    std::vector<float> biased = x;
    ASSERT_TRUE(cpu_->AddBias(biased.data(), bias.data(), rows, dim).ok());
    DeviceBuffer gy = ToGpu(x);
    ASSERT_TRUE(gpu_->AddBias(gy.as<float>(), gb.as<float>(), rows, dim).ok());
    EXPECT_EQ(RelativeError(biased, FromGpu(gy, biased.size())), 0.0) << "AddBias";

    std::vector<float> sum = x;
    const auto other = Random(rows * dim, dim + 3);
    ASSERT_TRUE(cpu_->Add(sum.data(), other.data(), sum.size()).ok());
    DeviceBuffer gs = ToGpu(x), go = ToGpu(other);
    ASSERT_TRUE(gpu_->Add(gs.as<float>(), go.as<float>(), sum.size()).ok());
    EXPECT_EQ(RelativeError(sum, FromGpu(gs, sum.size())), 0.0) << "Add";

    std::vector<float> glu(x.size());
    ASSERT_TRUE(cpu_->SwiGlu(x.data(), other.data(), x.size(), glu.data()).ok());
    DeviceBuffer gg = Poisoned(x.size());
    ASSERT_TRUE(gpu_->SwiGlu(gx.as<float>(), go.as<float>(), x.size(), gg.as<float>()).ok());
    EXPECT_LT(RelativeError(glu, FromGpu(gg, glu.size())), 1e-5) << "SwiGlu";
  }
}

TEST_F(CudaBackendTest, RopeNormalAndNeoxWithPartialRotation) {
  struct Shape { int n, heads, head_dim, rot_dim; RopeStyle style; };
  for (const Shape& s : {Shape{7, 4, 64, 64, RopeStyle::kNormal}, Shape{5, 3, 128, 128, RopeStyle::kNeox},
                         Shape{3, 2, 80, 32, RopeStyle::kNeox}, Shape{4, 5, 48, 24, RopeStyle::kNormal}}) {
    auto x = Random(static_cast<size_t>(s.n) * s.heads * s.head_dim, s.head_dim);
    std::vector<int32_t> positions;
    for (int i = 0; i < s.n; ++i) positions.push_back(i * 9973 % 40000);
    std::vector<float> inv_freq(s.rot_dim / 2);
    for (int i = 0; i < s.rot_dim / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / s.rot_dim);
    DeviceBuffer gx = ToGpu(x), gp = ToGpu(positions), gf = ToGpu(inv_freq);
    std::vector<float> want = x;
    ASSERT_TRUE(cpu_->Rope(want.data(), positions.data(), s.n, s.heads, s.head_dim,
                           RopeParams{s.style, s.rot_dim, inv_freq.data()}).ok());
    ASSERT_TRUE(gpu_->Rope(gx.as<float>(), gp.as<int32_t>(), s.n, s.heads, s.head_dim,
                           RopeParams{s.style, s.rot_dim, gf.as<float>()}).ok());
    EXPECT_LT(RelativeError(want, FromGpu(gx, want.size())), 1e-5) << "head_dim " << s.head_dim;
  }
}

TEST_F(CudaBackendTest, MatMulEveryTypeGemvAndGemm) {
  struct Shape { int64_t rows, cols; };
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (const Shape& shape : {Shape{67, 96}, Shape{300, 1024}}) {
      const Weights w = MakeWeights(type, shape.rows, shape.cols, 7 + static_cast<int>(type));
      DeviceBuffer gw = ToGpu(w.bytes);
      for (int n : {1, 3, 8, 9, 16, 17, 70}) {
        const auto x = Random(static_cast<size_t>(n) * shape.cols, n + shape.cols);
        std::vector<float> want(static_cast<size_t>(n) * shape.rows);
        ASSERT_TRUE(cpu_->MatMul(x.data(), View(w, w.bytes.data()), n, want.data()).ok());
        DeviceBuffer gx = ToGpu(x), out = Poisoned(want.size());
        ASSERT_TRUE(gpu_->MatMul(gx.as<float>(), View(w, gw.data()), n, out.as<float>()).ok());
        const bool gemm = n > 16;  // up to 16 rows: the GEMV (fp32 activations); above: cuBLAS
        const double tolerance = !gemm || type == DType::kF32 ? 1e-5 : type == DType::kBF16 ? 3e-2 : 4e-3;
        EXPECT_LT(RelativeError(want, FromGpu(out, want.size())), tolerance)
            << DTypeName(type) << " " << shape.rows << "x" << shape.cols << " n=" << n;
      }
    }
  }
}

TEST_F(CudaBackendTest, MatMulManyEqualsOneMatMulPerMatrix) {
  // Q/K/V-like matrices of one type (one launch up to 16 rows) and a mixed-type set (one MatMul each).
  struct Case { DType a, b; int64_t cols; };
  for (const Case& c : {Case{DType::kF16, DType::kF16, 256}, Case{DType::kQ8_0, DType::kQ8_0, 96},
                        Case{DType::kBF16, DType::kF32, 128}}) {
    const Weights wa = MakeWeights(c.a, 96, c.cols, 3), wb = MakeWeights(c.b, 40, c.cols, 4),
                  wc = MakeWeights(c.b, 40, c.cols, 5);
    DeviceBuffer ga = ToGpu(wa.bytes), gb = ToGpu(wb.bytes), gc = ToGpu(wc.bytes);
    const Matrix gpu_w[3] = {View(wa, ga.data()), View(wb, gb.data()), View(wc, gc.data())};
    const Weights* host[3] = {&wa, &wb, &wc};
    for (int n : {1, 5, 16, 20}) {
      const auto x = Random(static_cast<size_t>(n) * c.cols, 50 + n);
      DeviceBuffer gx = ToGpu(x);
      std::vector<DeviceBuffer> outs;
      float* out_ptrs[3];
      for (int i = 0; i < 3; ++i) {
        outs.push_back(Poisoned(static_cast<size_t>(n) * host[i]->rows));
        out_ptrs[i] = outs.back().as<float>();
      }
      ASSERT_TRUE(gpu_->MatMulMany(gx.as<float>(), gpu_w, n, out_ptrs).ok());
      for (int i = 0; i < 3; ++i) {
        std::vector<float> want(static_cast<size_t>(n) * host[i]->rows);
        ASSERT_TRUE(cpu_->MatMul(x.data(), View(*host[i], host[i]->bytes.data()), n, want.data()).ok());
        const DType type = gpu_w[i].type;
        const double tolerance = n <= 16 || type == DType::kF32 ? 1e-5 : type == DType::kBF16 ? 3e-2 : 4e-3;
        EXPECT_LT(RelativeError(want, FromGpu(outs[i], want.size())), tolerance)
            << "matrix " << i << " " << DTypeName(type) << " n=" << n;
      }
    }
  }
}

TEST_F(CudaBackendTest, CausalAttentionPrefillAndDecodeWithGqa) {
  struct Shape { int queries, first_position, heads, kv_heads, head_dim; };
  // Decode (one query) with head_dim 64/128 and 1, 2, 4 or 8 heads per KV head takes the streaming
  // decode kernel; the other shapes the general one.
  for (const Shape& s : {Shape{37, 0, 8, 2, 64}, Shape{16, 100, 4, 4, 128}, Shape{1, 5000, 32, 8, 128},
                         Shape{1, 77, 12, 1, 64}, Shape{9, 300, 6, 3, 80}, Shape{1, 0, 8, 8, 64},
                         Shape{1, 32, 16, 2, 128}, Shape{1, 1000, 4, 2, 64}, Shape{1, 40000, 8, 8, 128}}) {
    const int keys = s.first_position + s.queries;
    const auto q = Random(static_cast<size_t>(s.queries) * s.heads * s.head_dim, keys);
    const auto k = Random(static_cast<size_t>(keys) * s.kv_heads * s.head_dim, keys + 1);
    const auto v = Random(static_cast<size_t>(keys) * s.kv_heads * s.head_dim, keys + 2);
    AttentionParams params{s.queries, s.heads, s.kv_heads, s.head_dim, s.first_position,
                           1.0f / std::sqrt(static_cast<float>(s.head_dim))};
    std::vector<float> want(q.size());
    std::vector<char> workspace(AttentionWorkspaceBytes(params, cpu_->num_threads()));
    ASSERT_TRUE(cpu_->Attention(params, q.data(), k.data(), v.data(), want.data(), workspace.data()).ok());
    DeviceBuffer gq = ToGpu(q), gk = ToGpu(k), gv = ToGpu(v), out = Poisoned(q.size());
    ASSERT_TRUE(gpu_->Attention(params, gq.as<float>(), gk.as<float>(), gv.as<float>(), out.as<float>(), nullptr).ok());
    EXPECT_LT(RelativeError(want, FromGpu(out, want.size())), 1e-5)
        << s.queries << " queries at " << s.first_position << ", " << s.heads << "/" << s.kv_heads << " heads";
  }
}

TEST_F(CudaBackendTest, PagedAttentionOverSelectedPages) {
  struct Shape { int heads, kv_heads, head_dim, page_size, slots, pages, last; };
  for (const Shape& s : {Shape{8, 2, 64, 16, 50, 13, 7}, Shape{32, 8, 128, 16, 700, 600, 16},
                         Shape{6, 6, 80, 5, 20, 1, 3}, Shape{16, 2, 128, 32, 40, 40, 1}}) {
    std::mt19937 rng(s.slots);
    std::vector<int32_t> ids(s.slots);
    for (int i = 0; i < s.slots; ++i) ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(s.pages);
    const size_t pool = static_cast<size_t>(s.slots) * s.page_size * s.kv_heads * s.head_dim;
    const auto q = Random(static_cast<size_t>(s.heads) * s.head_dim, s.slots + 1, 2.0f);
    const auto k = Random(pool, s.slots + 2), v = Random(pool, s.slots + 3);
    PagedAttentionParams params{s.heads, s.kv_heads, s.head_dim, s.page_size, s.pages, s.last,
                                1.0f / std::sqrt(static_cast<float>(s.head_dim))};
    std::vector<float> want(q.size());
    std::vector<char> workspace(PagedAttentionWorkspaceBytes(params, s.pages, cpu_->num_threads()));
    ASSERT_TRUE(
        cpu_->PagedAttention(params, q.data(), k.data(), v.data(), ids.data(), want.data(), workspace.data()).ok());
    DeviceBuffer gq = ToGpu(q), gk = ToGpu(k), gv = ToGpu(v), gids = ToGpu(ids), out = Poisoned(q.size());
    ASSERT_TRUE(gpu_->PagedAttention(params, gq.as<float>(), gk.as<float>(), gv.as<float>(), gids.as<int32_t>(),
                                     out.as<float>(), nullptr)
                    .ok());
    EXPECT_LT(RelativeError(want, FromGpu(out, want.size())), 1e-5) << s.pages << " pages of " << s.page_size;
  }
}

TEST_F(CudaBackendTest, DecodeAttentionBatchAndScatterRowsMatchTheCpu) {
  // Items of very different lengths, more than one launch's worth (32) in the largest batch, and a
  // shape the streaming kernel does not take (3 heads per KV head: the per-item fallback).
  struct Shape { int heads, kv_heads, head_dim, items; };
  for (const Shape& s : {Shape{32, 8, 128, 5}, Shape{8, 2, 64, 40}, Shape{12, 4, 64, 3}}) {
    const size_t kv_dim = static_cast<size_t>(s.kv_heads) * s.head_dim;
    const size_t q_dim = static_cast<size_t>(s.heads) * s.head_dim;
    std::vector<int32_t> lengths;
    for (int i = 0; i < s.items; ++i) lengths.push_back(1 + (i * 977 + 13) % 3000);
    // Each item's cache holds its rows plus the row being appended; the new rows come in one block.
    std::vector<std::vector<float>> k_host, v_host;
    std::vector<DeviceBuffer> k_gpu, v_gpu;
    for (int i = 0; i < s.items; ++i) {
      k_host.push_back(Random(lengths[i] * kv_dim, 100 + i));
      v_host.push_back(Random(lengths[i] * kv_dim, 200 + i));
      k_gpu.push_back(ToGpu(k_host[i]));
      v_gpu.push_back(ToGpu(v_host[i]));
    }
    const auto new_k = Random(s.items * kv_dim, 7), new_v = Random(s.items * kv_dim, 8);
    const auto q = Random(s.items * q_dim, 9);
    std::vector<float*> k_dst, v_dst;
    std::vector<Backend::DecodeRows> cpu_rows, gpu_rows;
    for (int i = 0; i < s.items; ++i) {
      const size_t last = (lengths[i] - 1) * kv_dim;
      std::copy_n(new_k.begin() + i * kv_dim, kv_dim, k_host[i].begin() + last);
      std::copy_n(new_v.begin() + i * kv_dim, kv_dim, v_host[i].begin() + last);
      cpu_rows.push_back({k_host[i].data(), v_host[i].data(), lengths[i]});
      gpu_rows.push_back({k_gpu[i].as<float>(), v_gpu[i].as<float>(), lengths[i]});
      k_dst.push_back(k_gpu[i].as<float>() + last);
      v_dst.push_back(v_gpu[i].as<float>() + last);
    }
    AttentionParams params{1, s.heads, s.kv_heads, s.head_dim, 0, 1.0f / std::sqrt(static_cast<float>(s.head_dim))};
    AttentionParams largest = params;
    largest.first_position = 3000;
    std::vector<char> workspace(AttentionWorkspaceBytes(largest, cpu_->num_threads()));
    std::vector<float> want(q.size());
    ASSERT_TRUE(cpu_->DecodeAttentionBatch(params, cpu_rows, q.data(), want.data(), workspace.data()).ok());

    DeviceBuffer gk_new = ToGpu(new_k), gv_new = ToGpu(new_v), gq = ToGpu(q), out = Poisoned(q.size());
    ASSERT_TRUE(gpu_->ScatterRows(k_dst, v_dst, gk_new.as<float>(), gv_new.as<float>(), static_cast<int32_t>(kv_dim)).ok());
    for (int i = 0; i < s.items; ++i) {  // the scattered rows, and nothing else, changed
      EXPECT_EQ(RelativeError(k_host[i], FromGpu(k_gpu[i], k_host[i].size())), 0.0) << "item " << i;
      EXPECT_EQ(RelativeError(v_host[i], FromGpu(v_gpu[i], v_host[i].size())), 0.0) << "item " << i;
    }
    ASSERT_TRUE(gpu_->DecodeAttentionBatch(params, gpu_rows, gq.as<float>(), out.as<float>(), nullptr).ok());
    EXPECT_LT(RelativeError(want, FromGpu(out, want.size())), 1e-5) << s.items << " items, " << s.heads << "/"
                                                                    << s.kv_heads << " heads";
  }
}

TEST_F(CudaBackendTest, AsyncCopiesFromRegisteredMemoryAreOrderedBeforeLaterOps) {
  // 4 MiB of "arena" copied on the copy stream, then an op on the compute stream reads it.
  const size_t count = size_t{1} << 20;
  std::vector<float> arena = Random(count, 99), ones(count, 1.0f);
  ASSERT_TRUE(gpu_->RegisterHostMemory(arena.data(), count * sizeof(float)).ok());
  DeviceBuffer dst = Poisoned(count), addend = ToGpu(ones);
  ASSERT_TRUE(gpu_->CopyToDeviceAsync(dst.data(), arena.data(), count * sizeof(float)).ok());
  ASSERT_TRUE(gpu_->WaitForCopies().ok());
  ASSERT_TRUE(gpu_->Add(dst.as<float>(), addend.as<float>(), count).ok());
  ASSERT_TRUE(gpu_->SynchronizeCopies().ok());
  std::vector<float> want = arena;
  for (float& x : want) x += 1.0f;
  EXPECT_EQ(RelativeError(want, FromGpu(dst, count)), 0.0);
  EXPECT_TRUE(gpu_->UnregisterHostMemory(arena.data()).ok());
  EXPECT_EQ(gpu_->UnregisterHostMemory(arena.data()).code(), absl::StatusCode::kNotFound);
}

TEST_F(CudaBackendTest, BadShapesAreErrorsNotCrashes) {
  AttentionParams params{1, 6, 4, 64, 0, 0.125f};  // 6 heads over 4 KV heads
  EXPECT_EQ(gpu_->Attention(params, nullptr, nullptr, nullptr, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  PagedAttentionParams paged{8, 8, 64, 16, 2, 17, 0.125f};  // last page longer than a page
  EXPECT_EQ(gpu_->PagedAttention(paged, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  auto huge = gpu_->Allocate(size_t{1} << 50);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  EXPECT_TRUE(gpu_->Synchronize().ok());
}

}  // namespace
}  // namespace leoam::kernels
