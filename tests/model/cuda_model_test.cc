// The whole model on the CUDA backend, end to end (issue: the CUDA backend, item 2):
//   - stories260K (a real trained model, fp32 weights) reproduces llama2.c's reference greedy
//     generations on the GPU, with whole-prompt and token-by-token prefill;
//   - synthetic models with F16 / BF16 / Q8_0 weights (llama, qwen2 with QKV biases, qwen3 with
//     QK-norm, Llama-3 RoPE scaling, GQA): over 160 greedy steps after a 96-token prompt the GPU's
//     logits stay within the weight type's tolerance of the CPU's, the tokens are the same up to
//     the first near tie (if any), and every step where the argmax differs is a near tie;
//   - the paged LeoAM engine (sparse selection at a 25% budget, PagedAttention over selected pages)
//     gives the same tokens on the GPU as on the CPU.
// Skips without a GPU (the CI machine has none) unless LEOAM_REQUIRE_GPU is set (scripts/gpu-check.sh).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "compute/engine/generate.h"
#include "compute/model/backend_select.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"
#include "compute/sampling/sampler.h"
#include "compute/synth/synthetic_model.h"
#include "compute/synth/synthetic_spec.h"
#include "compute/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_probe.h"
#include "tests/testing/reference_generations.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

class CudaModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const kernels::CudaProbe probe = kernels::ProbeCuda();
    if (probe.device_count == 0) {
      if (std::getenv("LEOAM_REQUIRE_GPU") != nullptr) FAIL() << "LEOAM_REQUIRE_GPU set but no GPU: " << probe.detail;
      GTEST_SKIP() << "no GPU: " << probe.detail;
    }
    auto gpu = CreateBackend({.kind = "cuda"});
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
    auto cpu = CreateBackend({.kind = "cpu", .num_threads = 4});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    cpu_ = std::move(*cpu);
  }

  std::unique_ptr<kernels::Backend> gpu_;
  std::unique_ptr<kernels::Backend> cpu_;
};

TEST_F(CudaModelTest, Stories260KReferenceGenerations) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl_path, "models/stories260K.greedy.jsonl");
  auto refs = testing::ReadReferenceGenerations(jsonl_path);
  ASSERT_TRUE(refs.ok()) << refs.status();
  ASSERT_EQ(refs->size(), 5u);
  for (int32_t prefill_chunk : {512, 1}) {
    SCOPED_TRACE("prefill chunk " + std::to_string(prefill_chunk));
    auto model = LlamaModel::Load(model_path, *gpu_, {.prefill_chunk = prefill_chunk});
    ASSERT_TRUE(model.ok()) << model.status();
    auto tokenizer = Tokenizer::FromGguf((*model)->file());  // its BOS ends a generation, as in llama2.c
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    for (const testing::ReferenceGeneration& ref : *refs) {
      SCOPED_TRACE("prompt: \"" + ref.prompt + "\"");
      GenerateOptions options;  // greedy
      options.max_tokens = ref.positions - static_cast<int32_t>(ref.prompt_ids.size()) + 1;
      options.max_context = ref.positions;
      auto result = Generate(**model, tokenizer->get(), ref.prompt_ids, options);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->tokens, ref.generated_ids);
    }
  }
}

struct SyntheticCase {
  std::string name;
  std::string arch;
  gguf::TensorType weight_type;
  bool llama3_rope_scaling;
};

std::string CaseName(const ::testing::TestParamInfo<SyntheticCase>& info) { return info.param.name; }

class CudaSyntheticTest : public CudaModelTest, public ::testing::WithParamInterface<SyntheticCase> {};

// A GQA model big enough for cuBLAS GEMMs and split attention, small enough to write in a moment.
synth::SyntheticModelSpec SmallSpec(const SyntheticCase& c) {
  synth::SyntheticModelSpec spec;
  spec.name = c.name;
  spec.arch = c.arch;
  spec.dim = 256;
  spec.layers = 4;
  spec.heads = 8;
  spec.kv_heads = 2;
  spec.head_dim = 64;
  spec.ffn = 640;
  spec.vocab = 1000;
  spec.context = 4096;
  spec.rope_base = c.llama3_rope_scaling ? 500000.0f : 10000.0f;
  spec.llama3_rope_scaling = c.llama3_rope_scaling;
  spec.weight_type = c.weight_type;
  spec.seed = 7;
  return spec;
}

std::vector<int32_t> RandomPrompt(int32_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(3, vocab - 1);
  std::vector<int32_t> prompt = {1};
  while (static_cast<int32_t>(prompt.size()) < n) prompt.push_back(token(rng));
  return prompt;
}

absl::StatusOr<std::vector<int32_t>> Greedy(const std::string& path, kernels::Backend& backend,
                                            const std::vector<int32_t>& prompt, int32_t steps,
                                            std::optional<PagedKvOptions> paged) {
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> model, LlamaModel::Load(path, backend, {.prefill_chunk = 64}));
  GenerateOptions options;
  options.max_tokens = steps;
  options.paged_kv = paged;
  // No tokenizer: no token ends the generation, the whole stretch is compared.
  ASSIGN_OR_RETURN(GenerateResult result, Generate(*model, nullptr, prompt, options));
  return result.tokens;
}

// Index of the first differing token, or -1.
int FirstDifference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] != b[i]) return static_cast<int>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<int>(std::min(a.size(), b.size()));
}

// Teacher-forced comparison: both backends run the same tokens (the CPU's greedy choices); at each
// step the logits must agree within the dtype's tolerance, and where the argmax differs the CPU's
// two candidates must be closer than twice that step's logit error (a near tie the rounding of the
// GPU's 16-bit GEMM inputs explains), never a real disagreement.
struct TeacherForced {
  double max_relative_error = 0.0;  // max over steps of max |gpu - cpu| / max |cpu|
  std::vector<int> mismatches;      // steps whose argmax differs
  std::string report;               // one line per mismatch
};

absl::StatusOr<TeacherForced> CompareTeacherForced(const std::string& path, kernels::Backend& cpu_backend,
                                                   kernels::Backend& gpu_backend, const std::vector<int32_t>& prompt,
                                                   const std::vector<int32_t>& tokens) {
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> cpu, LlamaModel::Load(path, cpu_backend, {.prefill_chunk = 64}));
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> gpu, LlamaModel::Load(path, gpu_backend, {.prefill_chunk = 64}));
  const int32_t capacity = static_cast<int32_t>(prompt.size() + tokens.size());
  ASSIGN_OR_RETURN(KvCache cpu_cache, KvCache::Create(cpu_backend, cpu->config(), capacity));
  ASSIGN_OR_RETURN(KvCache gpu_cache, KvCache::Create(gpu_backend, gpu->config(), capacity));
  const int32_t vocab = cpu->config().vocab_size;
  std::vector<float> a(vocab), b(vocab);
  RETURN_IF_ERROR(cpu->Forward(prompt, 0, cpu_cache, false, a.data()));
  RETURN_IF_ERROR(gpu->Forward(prompt, 0, gpu_cache, false, b.data()));
  TeacherForced result;
  for (size_t step = 0; step < tokens.size(); ++step) {
    double max_cpu = 1e-30, max_err = 0.0;
    for (int32_t i = 0; i < vocab; ++i) {
      max_cpu = std::max(max_cpu, std::abs(double{a[i]}));
      max_err = std::max(max_err, std::isfinite(b[i]) ? std::abs(double{b[i]} - a[i]) : 1e30);
    }
    result.max_relative_error = std::max(result.max_relative_error, max_err / max_cpu);
    const int32_t want = Argmax(a.data(), vocab), got = Argmax(b.data(), vocab);
    if (want != got) {
      result.mismatches.push_back(static_cast<int>(step));
      const double gap = double{a[want]} - a[got];
      result.report += absl::StrFormat("step %d: cpu %d / gpu %d, cpu gap %.5f, max logit error %.5f%s\n", step,
                                       want, got, gap, max_err, gap <= 2 * max_err ? "" : "  <- NOT a near tie");
      if (gap > 2 * max_err) return absl::InternalError(result.report);
    }
    const int32_t next[1] = {tokens[step]};
    const int32_t position = static_cast<int32_t>(prompt.size() + step);
    RETURN_IF_ERROR(cpu->Forward(next, position, cpu_cache, false, a.data()));
    RETURN_IF_ERROR(gpu->Forward(next, position, gpu_cache, false, b.data()));
  }
  return result;
}

// Logit tolerance (relative to the largest logit) of a whole generation per weight type: prefill
// GEMMs round activations to fp16 (F16, Q8_0 dequantized to fp16) or bf16 (BF16); decode is fp32.
double LogitTolerance(gguf::TensorType type) { return type == gguf::TensorType::kBF16 ? 3e-2 : 5e-3; }

TEST_P(CudaSyntheticTest, GreedyGenerationMatchesTheCpuBackend) {
  testing::TempDir dir;
  const std::string path = dir.File("model.gguf");
  ASSERT_TRUE(synth::WriteSyntheticModel(SmallSpec(GetParam()), path).ok());
  const std::vector<int32_t> prompt = RandomPrompt(96, 1000, 11);
  auto cpu = Greedy(path, *cpu_, prompt, 160, std::nullopt);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  auto gpu = Greedy(path, *gpu_, prompt, 160, std::nullopt);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  ASSERT_EQ(cpu->size(), 160u);
  const int first_difference = FirstDifference(*cpu, *gpu);

  auto forced = CompareTeacherForced(path, *cpu_, *gpu_, prompt, *cpu);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_LT(forced->max_relative_error, LogitTolerance(GetParam().weight_type));
  // Free-running, the GPU follows the CPU token for token until the first near tie (if any): the
  // same step the teacher-forced run flags, since up to there both ran the same tokens.
  if (first_difference >= 0) {
    ASSERT_FALSE(forced->mismatches.empty());
    EXPECT_EQ(first_difference, forced->mismatches.front());
  }
  std::printf("[ %s ] greedy tokens equal: %d of 160; teacher-forced max logit error %.2e, %zu near-tie steps\n%s",
              GetParam().name.c_str(), first_difference < 0 ? 160 : first_difference, forced->max_relative_error,
              forced->mismatches.size(), forced->report.c_str());
}

INSTANTIATE_TEST_SUITE_P(Weights, CudaSyntheticTest,
                         ::testing::Values(SyntheticCase{"llama_f16", "llama", gguf::TensorType::kF16, false},
                                           SyntheticCase{"llama_bf16", "llama", gguf::TensorType::kBF16, false},
                                           SyntheticCase{"llama3_rope_q8_0", "llama", gguf::TensorType::kQ8_0, true},
                                           SyntheticCase{"qwen2_bf16", "qwen2", gguf::TensorType::kBF16, false},
                                           SyntheticCase{"qwen3_f16", "qwen3", gguf::TensorType::kF16, false}),
                         CaseName);

TEST_F(CudaModelTest, PagedLeoamEngineMatchesTheCpuBackend) {
  testing::TempDir dir;
  const std::string path = dir.File("model.gguf");
  ASSERT_TRUE(synth::WriteSyntheticModel(SmallSpec({"paged", "llama", gguf::TensorType::kF16, false}), path).ok());
  const std::vector<int32_t> prompt = RandomPrompt(400, 1000, 12);
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    PagedKvOptions paged;
    paged.mode = mode;
    paged.budget_fraction = 0.25;
    SCOPED_TRACE(std::string(SelectionModeName(mode)));
    auto cpu = Greedy(path, *cpu_, prompt, 96, paged);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    auto gpu = Greedy(path, *gpu_, prompt, 96, paged);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    EXPECT_EQ(FirstDifference(*cpu, *gpu), -1) << "of " << cpu->size() << " tokens";
  }
}

}  // namespace
}  // namespace leoam
