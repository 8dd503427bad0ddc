// CPU kernel throughput at the shapes of a 124M-parameter Llama (dim 768, ffn 2048, vocab 24000,
// 12 heads of 64): matvec GB/s per weight dtype (decode), GEMM GFLOP/s at n = 512 (prefill),
// attention decode at 512 / 4096 tokens of context, each with 1 and 2 threads. The last argument
// of every benchmark is the thread count.
//
//   build-kern/bin/kernels_bench                       # all
//   build-kern/bin/kernels_bench --benchmark_filter=Decode124M
// On a shared machine, run repetitions and read times from the "_min" and rates from the "_max"
// aggregate (the least disturbed run):
//   kernels_bench --benchmark_repetitions=10 --benchmark_min_time=0.05 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/half.h"

namespace leoam::kernels {

CpuBackend& BackendWithThreads(int threads) {
  static std::map<int, std::unique_ptr<CpuBackend>> backends;
  auto& slot = backends[threads];
  if (!slot) {
    CpuBackendOptions options;
    options.num_threads = threads;
    slot = std::move(CpuBackend::Create(options).value());
  }
  return *slot;
}

namespace {

// Aggregates over repetitions: "min" for times, "max" for rates (GB/s, GFLOP/s, tokens/s), i.e.
// the least disturbed run on a shared machine.
double MinOf(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }
double MaxOf(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); }

// Random weights of `type` (bytes only; Q8_0 scales are valid fp16).
std::vector<uint8_t> RandomWeights(DType type, int64_t rows, int64_t cols) {
  std::vector<uint8_t> bytes(RowBytes(type, cols) * rows);
  std::mt19937 rng(42);
  if (type == DType::kF32) {
    float* f = reinterpret_cast<float*>(bytes.data());
    for (int64_t i = 0; i < rows * cols; ++i) f[i] = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  } else if (type == DType::kQ8_0) {
    for (size_t b = 0; b < bytes.size(); b += 34) {
      const uint16_t d = FloatToHalf(0.01f);
      std::memcpy(&bytes[b], &d, 2);
      for (int i = 2; i < 34; ++i) bytes[b + i] = static_cast<uint8_t>(rng());
    }
  } else {
    uint16_t* h = reinterpret_cast<uint16_t*>(bytes.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float v = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
      h[i] = type == DType::kF16 ? FloatToHalf(v) : FloatToBf16(v);
    }
  }
  return bytes;
}

std::vector<float> RandomActivations(size_t n) {
  std::mt19937 rng(7);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
  return v;
}

// Args: dtype, rows, cols, threads. One matrix, so small ones are served from cache.
void BM_MatVec(benchmark::State& state) {
  const DType type = static_cast<DType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(3)));
  const std::vector<uint8_t> w = RandomWeights(type, rows, cols);
  const std::vector<float> x = RandomActivations(cols);
  std::vector<float> y(rows);
  const Matrix m{type, w.data(), rows, cols};
  for (auto _ : state) {
    benchmark::DoNotOptimize(backend.MatMul(x.data(), m, 1, y.data()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.size()));
  state.SetLabel(std::string(DTypeName(type)));
}

void MatVecArgs(benchmark::internal::Benchmark* b) {
  for (int type : {0, 1, 2, 3}) {
    for (auto [rows, cols] : {std::pair{768, 768}, std::pair{2048, 768}, std::pair{768, 2048}, std::pair{24000, 768}}) {
      for (int threads : {1, 2}) b->Args({type, rows, cols, threads});
    }
  }
}
BENCHMARK(BM_MatVec)
    ->Apply(MatVecArgs)
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf);

// All matvecs of one decode step of the 124M model (12 layers of q,k,v,o 768x768, gate/up
// 2048x768, down 768x2048, plus the 24000x768 output): ~207 MB of F16, more than the caches, so
// this is the DRAM-bound decode ceiling. Args: dtype, threads. Reports tokens/s.
void BM_Decode124MMatVecs(benchmark::State& state) {
  const DType type = static_cast<DType>(state.range(0));
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(1)));
  struct Layer {
    std::vector<uint8_t> wq, wk, wv, wo, w1, w3, w2;
  };
  std::vector<Layer> layers(12);
  for (Layer& l : layers) {
    l = Layer{RandomWeights(type, 768, 768), RandomWeights(type, 768, 768),  RandomWeights(type, 768, 768),
              RandomWeights(type, 768, 768), RandomWeights(type, 2048, 768), RandomWeights(type, 2048, 768),
              RandomWeights(type, 768, 2048)};
  }
  const std::vector<uint8_t> out = RandomWeights(type, 24000, 768);
  const std::vector<float> x = RandomActivations(2048);
  std::vector<float> y(24000);
  size_t bytes = out.size();
  for (const Layer& l : layers) bytes += 4 * l.wq.size() + 3 * l.w1.size();
  for (auto _ : state) {
    for (const Layer& l : layers) {
      for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo}) {
        benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, w->data(), 768, 768}, 1, y.data()));
      }
      benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, l.w1.data(), 2048, 768}, 1, y.data()));
      benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, l.w3.data(), 2048, 768}, 1, y.data()));
      benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, l.w2.data(), 768, 2048}, 1, y.data()));
    }
    benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, out.data(), 24000, 768}, 1, y.data()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(DTypeName(type)));
}
BENCHMARK(BM_Decode124MMatVecs)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf)
    ->Unit(benchmark::kMillisecond);

// Args: dtype, rows, cols, n, threads: small batches (batched decode, short prompts).
void BM_MatMulSmallBatch(benchmark::State& state) {
  const DType type = static_cast<DType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  const int32_t n = static_cast<int32_t>(state.range(3));
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(4)));
  const std::vector<uint8_t> w = RandomWeights(type, rows, cols);
  const std::vector<float> x = RandomActivations(n * cols);
  std::vector<float> y(n * rows);
  for (auto _ : state) {
    benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, w.data(), rows, cols}, n, y.data()));
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * n * rows * cols / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(DTypeName(type)));
}
BENCHMARK(BM_MatMulSmallBatch)
    ->ArgsProduct({{1}, {2048}, {768}, {2, 4, 8, 16}, {1, 2}})
    ->ArgsProduct({{1}, {24000}, {768}, {2, 4, 8, 16}, {1}})
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf);

// Args: dtype, rows, cols, threads; n = 512 tokens. Reports GFLOP/s.
void BM_Gemm512(benchmark::State& state) {
  const DType type = static_cast<DType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  constexpr int32_t n = 512;
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(3)));
  const std::vector<uint8_t> w = RandomWeights(type, rows, cols);
  const std::vector<float> x = RandomActivations(n * cols);
  std::vector<float> y(n * rows);
  for (auto _ : state) {
    benchmark::DoNotOptimize(backend.MatMul(x.data(), Matrix{type, w.data(), rows, cols}, n, y.data()));
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * n * rows * cols / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(DTypeName(type)));
}

void GemmArgs(benchmark::internal::Benchmark* b) {
  for (int type : {0, 1, 2, 3}) {
    for (auto [rows, cols] : {std::pair{768, 768}, std::pair{2048, 768}, std::pair{768, 2048}}) {
      for (int threads : {1, 2}) b->Args({type, rows, cols, threads});
    }
  }
  for (int threads : {1, 2}) b->Args({1, 24000, 768, threads});
}
BENCHMARK(BM_Gemm512)
    ->Apply(GemmArgs)
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf)
    ->Unit(benchmark::kMillisecond);

// Args: context, num_queries, threads. 12 heads (12 kv heads) of 64, as the 124M model; reports
// the K/V bytes read per second for decode.
void BM_Attention(benchmark::State& state) {
  const int32_t context = static_cast<int32_t>(state.range(0));
  const int32_t queries = static_cast<int32_t>(state.range(1));
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(2)));
  const AttentionParams p{queries, 12, 12, 64, context - queries, 0.125f};
  const std::vector<float> q = RandomActivations(static_cast<size_t>(queries) * 12 * 64);
  const std::vector<float> k = RandomActivations(static_cast<size_t>(context) * 12 * 64);
  const std::vector<float> v = RandomActivations(static_cast<size_t>(context) * 12 * 64);
  std::vector<float> out(q.size());
  std::vector<float> ws(AttentionWorkspaceBytes(p, backend.num_threads()) / 4 + 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(backend.Attention(p, q.data(), k.data(), v.data(), out.data(), ws.data()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * k.size() * sizeof(float)));
  // Causal multiply-adds: q.k and p.v over the visible keys.
  const double macs = 2.0 * 12 * 64 * queries * (context - queries + (queries + 1) / 2.0);
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2 * macs / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)
    ->ArgsProduct({{512, 4096}, {1}, {1, 2}})
    ->Args({512, 512, 1})
    ->Args({512, 512, 2})
    ->Args({4096, 512, 2})
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf)
    ->Unit(benchmark::kMicrosecond);

// --- whole forward passes built from the ops, to check the model-level targets ---
struct ModelShape {
  const char* name;
  DType type;
  int32_t dim, hidden, layers, heads, kv_heads, vocab;
};
// 0: a 124M-parameter Llama (F16); 1: stories260K (F32).
constexpr ModelShape kModels[] = {{"124M-F16", DType::kF16, 768, 2048, 12, 12, 12, 24000},
                                  {"stories260K", DType::kF32, 64, 172, 5, 8, 4, 512}};

struct FakeModel {
  struct Layer {
    std::vector<uint8_t> wq, wk, wv, wo, w1, w3, w2;
  };
  ModelShape shape;
  std::vector<Layer> layers;
  std::vector<uint8_t> output;
  std::vector<float> norm, inv_freq;
  std::vector<float> k_cache, v_cache;  // per layer [max_tokens, kv_dim]
  int32_t max_tokens;

  FakeModel(const ModelShape& s, int32_t max_tokens) : shape(s), layers(s.layers), max_tokens(max_tokens) {
    const int32_t hd = s.dim / s.heads, kv_dim = hd * s.kv_heads;
    for (Layer& l : layers) {
      l = Layer{RandomWeights(s.type, s.dim, s.dim),    RandomWeights(s.type, kv_dim, s.dim),
                RandomWeights(s.type, kv_dim, s.dim),   RandomWeights(s.type, s.dim, s.dim),
                RandomWeights(s.type, s.hidden, s.dim), RandomWeights(s.type, s.hidden, s.dim),
                RandomWeights(s.type, s.dim, s.hidden)};
    }
    output = RandomWeights(s.type, s.vocab, s.dim);
    norm.assign(s.dim, 1.0f);
    for (int32_t i = 0; i < hd / 2; ++i) inv_freq.push_back(std::pow(10000.0f, -2.0f * i / hd));
    k_cache = RandomActivations(static_cast<size_t>(s.layers) * max_tokens * kv_dim);
    v_cache = k_cache;
  }

  // Runs n tokens at positions [first, first + n); logits for the last token only.
  void Forward(CpuBackend& b, int32_t n, int32_t first, std::vector<float>& ws) {
    const ModelShape& s = shape;
    const int32_t hd = s.dim / s.heads, kv_dim = hd * s.kv_heads;
    static thread_local std::vector<float> x, xb, q, k, v, att, h1, h3, logits;
    x.assign(static_cast<size_t>(n) * s.dim, 0.1f);
    xb.resize(x.size());
    q.resize(x.size());
    att.resize(x.size());
    k.resize(static_cast<size_t>(n) * kv_dim);
    v.resize(k.size());
    h1.resize(static_cast<size_t>(n) * s.hidden);
    h3.resize(h1.size());
    logits.resize(s.vocab);
    std::vector<int32_t> pos(n);
    for (int32_t i = 0; i < n; ++i) pos[i] = first + i;
    const RopeParams rope{RopeStyle::kNormal, hd, inv_freq.data()};
    const AttentionParams ap{n, s.heads, s.kv_heads, hd, first, 1.0f / std::sqrt(static_cast<float>(hd))};
    for (int32_t li = 0; li < s.layers; ++li) {
      const Layer& l = layers[li];
      float* kc = k_cache.data() + static_cast<size_t>(li) * max_tokens * kv_dim;
      float* vc = v_cache.data() + static_cast<size_t>(li) * max_tokens * kv_dim;
      (void)b.RmsNorm(x.data(), norm.data(), n, s.dim, 1e-5f, xb.data());
      (void)b.MatMul(xb.data(), Matrix{s.type, l.wq.data(), s.dim, s.dim}, n, q.data());
      (void)b.MatMul(xb.data(), Matrix{s.type, l.wk.data(), kv_dim, s.dim}, n,
                     kc + static_cast<size_t>(first) * kv_dim);
      (void)b.MatMul(xb.data(), Matrix{s.type, l.wv.data(), kv_dim, s.dim}, n,
                     vc + static_cast<size_t>(first) * kv_dim);
      (void)b.Rope(q.data(), pos.data(), n, s.heads, hd, rope);
      (void)b.Rope(kc + static_cast<size_t>(first) * kv_dim, pos.data(), n, s.kv_heads, hd, rope);
      (void)b.Attention(ap, q.data(), kc, vc, att.data(), ws.data());
      (void)b.MatMul(att.data(), Matrix{s.type, l.wo.data(), s.dim, s.dim}, n, xb.data());
      (void)b.Add(x.data(), xb.data(), x.size());
      (void)b.RmsNorm(x.data(), norm.data(), n, s.dim, 1e-5f, xb.data());
      (void)b.MatMul(xb.data(), Matrix{s.type, l.w1.data(), s.hidden, s.dim}, n, h1.data());
      (void)b.MatMul(xb.data(), Matrix{s.type, l.w3.data(), s.hidden, s.dim}, n, h3.data());
      (void)b.SwiGlu(h1.data(), h3.data(), h1.size(), h1.data());
      (void)b.MatMul(h1.data(), Matrix{s.type, l.w2.data(), s.dim, s.hidden}, n, xb.data());
      (void)b.Add(x.data(), xb.data(), x.size());
    }
    const float* last = x.data() + static_cast<size_t>(n - 1) * s.dim;
    (void)b.RmsNorm(last, norm.data(), 1, s.dim, 1e-5f, xb.data());
    (void)b.MatMul(xb.data(), Matrix{s.type, output.data(), s.vocab, s.dim}, 1, logits.data());
  }
};

// Args: model, tokens (prompt length; 1 = one decode step at position 256), threads.
// Reports tokens/s: prompt tokens per second for prefill, steps per second for decode.
void BM_Forward(benchmark::State& state) {
  const ModelShape& shape = kModels[state.range(0)];
  const int32_t n = static_cast<int32_t>(state.range(1));
  CpuBackend& backend = BackendWithThreads(static_cast<int>(state.range(2)));
  FakeModel model(shape, 1024);
  const int32_t first = n == 1 ? 256 : 0;
  const int32_t hd = shape.dim / shape.heads;
  std::vector<float> ws(
      AttentionWorkspaceBytes(AttentionParams{n, shape.heads, shape.kv_heads, hd, first, 1.0f}, backend.num_threads()) /
          sizeof(float) +
      1);
  for (auto _ : state) model.Forward(backend, n, first, ws);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * n, benchmark::Counter::kIsRate);
  state.SetLabel(shape.name);
}
BENCHMARK(BM_Forward)
    ->ArgsProduct({{0, 1}, {1, 512}, {1, 2}})
    ->UseRealTime()
    ->ComputeStatistics("min", MinOf)
    ->ComputeStatistics("max", MaxOf)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace leoam::kernels

int main(int argc, char** argv) {
  // Creating a backend configures OpenBLAS (core choice, threads); report what was chosen.
  leoam::kernels::BackendWithThreads(1);
  benchmark::AddCustomContext("openblas_core", leoam::kernels::cpu::ConfigureOpenBlas());
  benchmark::AddCustomContext("simd",
                              leoam::kernels::cpu::SimdLevelName(leoam::kernels::BackendWithThreads(1).simd_level()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
