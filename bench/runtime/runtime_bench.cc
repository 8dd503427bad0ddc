// leoam-bench-runtime: prefill and decode throughput of the single-process runtime on a model,
// at short and long context. Prints a markdown table.
//
//   leoam-bench-runtime --model M.gguf --prompt-tokens 512,4096 --decode-tokens 64 --threads 2
//
// Prefill: a random prompt of P tokens (seeded) run through an empty cache; tokens/s = P / time.
// Decode at context C: after a prefill of C tokens, D greedy steps; tokens/s = D / time. The best
// of --reps repetitions is reported (the machine is shared; the best is the least disturbed).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "compute/model/backend_select.h"
#include "compute/model/llama_model.h"
#include "compute/sampling/sampler.h"

ABSL_FLAG(std::string, model, "", "GGUF model to measure (required).");
ABSL_FLAG(std::string, label, "", "Name of the model in the table (default: the file name).");
ABSL_FLAG(std::string, prompt_tokens, "512,4096", "Comma-separated prompt lengths (= decode contexts).");
ABSL_FLAG(int32_t, decode_tokens, 64, "Decode steps timed at each context.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: every CPU).");
ABSL_FLAG(int32_t, reps, 3, "Repetitions; the best is reported.");
ABSL_FLAG(bool, header, true, "Print the table header.");

namespace leoam {
namespace {

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
  auto backend = CreateBackend({"cpu", absl::GetFlag(FLAGS_threads)});
  if (!backend.ok()) return backend.status();
  auto model = LlamaModel::Load(path, **backend);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  std::string label = absl::GetFlag(FLAGS_label);
  if (label.empty()) label = path.substr(path.find_last_of('/') + 1);

  if (absl::GetFlag(FLAGS_header)) {
    std::printf("| model | weights | threads | context | prefill tok/s | decode tok/s | decode ms/token |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(3, c.vocab_size - 1);
  std::vector<float> logits(c.vocab_size);
  for (int32_t len : lengths) {
    std::vector<int32_t> prompt(len);
    for (int32_t& t : prompt) t = token(rng);
    auto cache = KvCache::Create(**backend, c, len + decode);
    if (!cache.ok()) return cache.status();
    double best_prefill = 1e30, best_decode = 1e30;
    for (int rep = 0; rep < absl::GetFlag(FLAGS_reps); ++rep) {
      absl::Time t0 = absl::Now();
      if (auto s = (*model)->Forward(prompt, 0, *cache, false, logits.data()); !s.ok()) return s;
      best_prefill = std::min(best_prefill, absl::ToDoubleSeconds(absl::Now() - t0));
      t0 = absl::Now();
      for (int32_t i = 0; i < decode; ++i) {
        const int32_t next[1] = {Argmax(logits.data(), c.vocab_size)};
        if (auto s = (*model)->Forward(next, len + i, *cache, false, logits.data()); !s.ok()) return s;
      }
      best_decode = std::min(best_decode, absl::ToDoubleSeconds(absl::Now() - t0));
    }
    std::printf("| %s | %.1f MB | %d | %d | %.1f | %.1f | %.3f |\n", label.c_str(),
                (*model)->weights().weight_bytes / 1e6, (*backend)->num_threads(), len, len / best_prefill,
                decode / best_decode, best_decode * 1e3 / decode);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv, "Measures prefill and decode tokens/s of the CPU runtime on a GGUF model.");
  if (absl::Status s = leoam::Run(); !s.ok()) {
    std::fprintf(stderr, "leoam-bench-runtime: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
