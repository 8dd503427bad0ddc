// leoam-bench-decode-batch: time of one LlamaModel::ForwardDecodeBatch step at batch sizes
// 1..16 (dense KV, CPU backend), without the service around it: the ceiling of what decode
// batching can give on this machine.
//
//   leoam-bench-decode-batch --model llama-124m.gguf --context 64 --steps 8
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "compute/model/backend_select.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"

ABSL_FLAG(std::string, model, "", "GGUF model (required).");
ABSL_FLAG(int32_t, context, 64, "Positions already in each sequence's KV before the timed steps.");
ABSL_FLAG(int32_t, steps, 8, "Timed decode steps per batch size.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all).");
ABSL_FLAG(std::string, backend, "auto", "Compute backend: auto (GPU when present), cpu or cuda.");
ABSL_FLAG(std::vector<std::string>, batches, std::vector<std::string>({"1", "2", "4", "8", "16"}), "Batch sizes.");

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv, "Times LlamaModel::ForwardDecodeBatch at several batch sizes.");
  auto backend = leoam::CreateBackend({absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_threads)});
  if (!backend.ok()) return std::fprintf(stderr, "%s\n", backend.status().ToString().c_str()), 1;
  auto model = leoam::LlamaModel::Load(absl::GetFlag(FLAGS_model), **backend);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  leoam::LlamaModel& m = **model;
  const int32_t ctx = absl::GetFlag(FLAGS_context), steps = absl::GetFlag(FLAGS_steps);
  const int32_t vocab = m.config().vocab_size;
  std::printf("| batch | step ms | ms per row | rows/s |\n|---:|---:|---:|---:|\n");
  for (const std::string& b : absl::GetFlag(FLAGS_batches)) {
    const int n = std::stoi(b);
    std::vector<leoam::KvCache> caches;
    std::vector<int32_t> prompt(ctx);
    for (int i = 0; i < ctx; ++i) prompt[i] = 3 + (i * 31) % (vocab - 3);
    std::vector<float> logits(static_cast<size_t>(n) * vocab);
    for (int i = 0; i < n; ++i) {
      auto c = leoam::KvCache::Create(m.backend(), m.config(), ctx + steps + 1);
      if (!c.ok()) return 1;
      caches.push_back(std::move(*c));
      if (!m.Forward(prompt, 0, caches.back(), false, logits.data()).ok()) return 1;
    }
    std::vector<leoam::DecodeItem> items(n);
    double total = 0;
    for (int s = 0; s <= steps; ++s) {  // step 0 warms up
      for (int i = 0; i < n; ++i) items[i] = {5 + i, ctx + s, &caches[i]};
      const absl::Time t0 = absl::Now();
      if (!m.ForwardDecodeBatch(items, logits.data()).ok()) return 1;
      if (s > 0) total += absl::ToDoubleMilliseconds(absl::Now() - t0);
    }
    const double step = total / steps;
    std::printf("| %d | %.1f | %.2f | %.1f |\n", n, step, step / n, 1000.0 * n / step);
  }
  return 0;
}
