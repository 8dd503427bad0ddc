// leoam-bench-runtime: prefill and decode throughput of the single-process runtime on a model,
// at short and long context. Prints a markdown table.
//
//   leoam-bench-runtime --model M.gguf --prompt-tokens 512,4096 --decode-tokens 64 --threads 2
//
// Prefill: a random prompt of P tokens (seeded) run through an empty cache; tokens/s = P / time.
// Decode at context C: after a prefill of C tokens, D greedy steps; tokens/s = D / time. The best
// of --reps repetitions is reported (the machine is shared; the best is the least disturbed).
//
// Bandwidth floor of a decode step: the bytes it must read — every weight matrix but the embedding
// table (one row of it), plus K and V of every layer over the context — over the backend's measured
// device-to-device copy bandwidth (CopyOnDevice of 1 GiB; read + write bytes over time). The last
// column is the measured step over that floor.
//
// --noprefill fills the KV cache with random values instead of computing the prompt (a decode
// step's time does not depend on the values; an 8B model's 32K-token prefill is minutes of the
// fp32 attention kernel). The prefill column then reads "-".
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "compute/model/backend_select.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"
#include "compute/sampling/sampler.h"

ABSL_FLAG(std::string, model, "", "GGUF model to measure (required).");
ABSL_FLAG(std::string, label, "", "Name of the model in the table (default: the file name).");
ABSL_FLAG(std::string, prompt_tokens, "512,4096", "Comma-separated prompt lengths (= decode contexts).");
ABSL_FLAG(int32_t, decode_tokens, 64, "Decode steps timed at each context.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: every CPU).");
ABSL_FLAG(int32_t, reps, 3, "Repetitions; the best is reported.");
ABSL_FLAG(bool, header, true, "Print the table header.");
ABSL_FLAG(std::string, backend, "cpu", "Compute backend: cpu, cuda or auto (GPU when present).");
ABSL_FLAG(bool, prefill, true, "Compute the prompt; with --noprefill the KV cache is filled with random values.");

namespace leoam {
namespace {

// Device-to-device copy bandwidth of the backend: bytes read plus bytes written per second, the
// best of 5 copies of 1 GiB (256 MiB where that much is not free).
absl::StatusOr<double> DeviceCopyBandwidth(kernels::Backend& b) {
  size_t bytes = size_t{1} << 30;
  auto src = b.Allocate(bytes);
  auto dst = src.ok() ? b.Allocate(bytes) : src.status();
  if (!src.ok() || !dst.ok()) {
    bytes = size_t{256} << 20;
    src = b.Allocate(bytes);
    if (!src.ok()) return src.status();
    dst = b.Allocate(bytes);
    if (!dst.ok()) return dst.status();
  }
  double best = 1e30;
  for (int i = 0; i < 6; ++i) {  // the first copy warms up (page faults on the CPU backend)
    RETURN_IF_ERROR(b.Synchronize());
    const absl::Time t0 = absl::Now();
    RETURN_IF_ERROR(b.CopyOnDevice(dst->data(), src->data(), bytes));
    RETURN_IF_ERROR(b.Synchronize());
    if (i > 0) best = std::min(best, absl::ToDoubleSeconds(absl::Now() - t0));
  }
  return 2.0 * static_cast<double>(bytes) / best;
}

// Fills positions [0, len) of every layer's K and V with N(0, 1) values, copied from a 64 MiB host
// block (repeated: the values only have to be finite and varied).
absl::Status FillRandom(kernels::Backend& b, const ModelConfig& c, KvCache& cache, int32_t len) {
  constexpr size_t kChunk = size_t{16} << 20;
  std::vector<float> block(kChunk + 1024);  // each chunk starts at a different offset into it
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : block) x = normal(rng);
  const size_t total = static_cast<size_t>(len) * c.kv_dim();
  for (int32_t layer = 0; layer < c.num_layers; ++layer) {
    for (float* base : {cache.k(layer), cache.v(layer)}) {
      for (size_t done = 0; done < total; done += kChunk) {
        const size_t n = std::min(kChunk, total - done);
        RETURN_IF_ERROR(b.CopyToDevice(base + done, block.data() + (done / kChunk * 7 + layer) % 1024, n * sizeof(float)));
      }
    }
  }
  return b.Synchronize();
}

absl::Status Run() {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty()) return absl::InvalidArgumentError("--model is required");
  std::vector<int32_t> lengths;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_prompt_tokens), ',', absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(s, &v) || v <= 0) return absl::InvalidArgumentError("bad --prompt-tokens");
    lengths.push_back(v);
  }
  const int32_t decode = absl::GetFlag(FLAGS_decode_tokens);
  auto backend = CreateBackend({absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_threads)});
  if (!backend.ok()) return backend.status();
  kernels::Backend& b = **backend;
  auto model = LlamaModel::Load(path, b);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  std::string label = absl::GetFlag(FLAGS_label);
  if (label.empty()) label = path.substr(path.find_last_of('/') + 1);
  const bool prefill = absl::GetFlag(FLAGS_prefill);

  absl::StatusOr<double> copy_bandwidth = DeviceCopyBandwidth(b);
  if (!copy_bandwidth.ok()) return copy_bandwidth.status();
  const ModelWeights& w = (*model)->weights();
  const double embedding_bytes = w.token_embd.data == w.output.data
                                     ? 0.0
                                     : static_cast<double>(w.token_embd.rows - 1) *
                                           kernels::RowBytes(w.token_embd.type, w.token_embd.cols);
  const double step_weight_bytes = static_cast<double>(w.weight_bytes) - embedding_bytes;

  if (absl::GetFlag(FLAGS_header)) {
    std::printf("device copy bandwidth (%s): %.1f GB/s; weights read per step %.1f MB\n\n", std::string(b.name()).c_str(),
                *copy_bandwidth / 1e9, step_weight_bytes / 1e6);
    std::printf("| model | backend | weights | threads | context | prefill tok/s | decode tok/s | decode ms/token "
                "| floor ms (weights + KV) | step / floor |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(3, c.vocab_size - 1);
  std::vector<float> logits(c.vocab_size);
  for (int32_t len : lengths) {
    std::vector<int32_t> prompt(len);
    for (int32_t& t : prompt) t = token(rng);
    auto cache = KvCache::Create(b, c, len + decode);
    if (!cache.ok()) return cache.status();
    if (!prefill) {
      if (auto s = FillRandom(b, c, *cache, len); !s.ok()) return s;
    }
    double best_prefill = 1e30, best_decode = 1e30;
    for (int rep = 0; rep < absl::GetFlag(FLAGS_reps); ++rep) {
      absl::Time t0 = absl::Now();
      if (prefill) {
        if (auto s = (*model)->Forward(prompt, 0, *cache, false, logits.data()); !s.ok()) return s;
      } else {
        const int32_t last[1] = {prompt.back()};  // the logits of position len - 1 over the random cache
        if (auto s = (*model)->Forward(last, len - 1, *cache, false, logits.data()); !s.ok()) return s;
      }
      best_prefill = std::min(best_prefill, absl::ToDoubleSeconds(absl::Now() - t0));
      t0 = absl::Now();
      for (int32_t i = 0; i < decode; ++i) {
        const int32_t next[1] = {Argmax(logits.data(), c.vocab_size)};
        if (auto s = (*model)->Forward(next, len + i, *cache, false, logits.data()); !s.ok()) return s;
      }
      best_decode = std::min(best_decode, absl::ToDoubleSeconds(absl::Now() - t0));
    }
    // KV read by the average step: K and V of every layer over len + decode / 2 positions.
    const double kv_bytes = 2.0 * c.num_layers * (len + decode / 2.0) * c.kv_dim() * sizeof(float);
    const double floor_ms = (step_weight_bytes + kv_bytes) / *copy_bandwidth * 1e3;
    const double step_ms = best_decode * 1e3 / decode;
    const std::string prefill_rate = prefill ? absl::StrFormat("%.1f", len / best_prefill) : "-";
    std::printf("| %s | %s | %.1f MB | %d | %d | %s | %.1f | %.3f | %.3f | %.2fx |\n", label.c_str(),
                std::string(b.name()).c_str(), w.weight_bytes / 1e6, b.num_threads(), len, prefill_rate.c_str(),
                decode / best_decode, step_ms, floor_ms, step_ms / floor_ms);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv, "Measures prefill and decode tokens/s of the runtime on a GGUF model, and the decode step against its bandwidth floor.");
  if (absl::Status s = leoam::Run(); !s.ok()) {
    std::fprintf(stderr, "leoam-bench-runtime: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
