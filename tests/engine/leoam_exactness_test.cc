// Exactness of the paged engine: with a budget that covers the whole context, quest and leoam
// attend every page, so they must reproduce dense generation token for token (stories260K's
// reference greedy generations included). With a small budget they must really attend less.
#include <memory>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/llama_model.h"
#include "compute/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/sampled_prompt.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/testing/reference_generations.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {

struct LoadedModel {
  std::unique_ptr<kernels::CpuBackend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

void Load(const std::string& path, int threads, int prefill_chunk, LoadedModel& s) {
  auto backend = kernels::CpuBackend::Create({.num_threads = threads});
  ASSERT_TRUE(backend.ok()) << backend.status();
  s.backend = std::move(*backend);
  auto model = LlamaModel::Load(path, *s.backend, {.prefill_chunk = prefill_chunk});
  ASSERT_TRUE(model.ok()) << model.status();
  s.model = std::move(*model);
  auto tokenizer = Tokenizer::FromGguf(s.model->file());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  s.tokenizer = std::move(*tokenizer);
}

using testing::SampledPrompt;

PagedKvOptions FullBudget(SelectionMode mode, int page_size) {
  PagedKvOptions o;
  o.mode = mode;
  o.page_size = page_size;
  o.budget_fraction = 1.0;
  return o;
}

void CheckReferences(int threads, int prefill_chunk, SelectionMode mode, int page_size) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl_path, "models/stories260K.greedy.jsonl");
  auto refs = testing::ReadReferenceGenerations(jsonl_path);
  ASSERT_TRUE(refs.ok()) << refs.status();
  LoadedModel s;
  ASSERT_NO_FATAL_FAILURE(Load(model_path, threads, prefill_chunk, s));
  for (const testing::ReferenceGeneration& ref : *refs) {
    SCOPED_TRACE("prompt: \"" + ref.prompt + "\"");
    GenerateOptions options;  // greedy
    options.max_tokens = ref.positions - static_cast<int32_t>(ref.prompt_ids.size()) + 1;
    options.max_context = ref.positions;
    options.paged_kv = FullBudget(mode, page_size);
    auto result = Generate(*s.model, s.tokenizer.get(), ref.prompt_ids, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->tokens, ref.generated_ids);
    ASSERT_GT(result->kv_stats.selections, 0);
    EXPECT_EQ(result->kv_stats.tokens_attended, result->kv_stats.context_tokens);
  }
}

TEST(LeoamExactnessTest, LeoamFullBudgetReproducesStoriesReferences) {
  CheckReferences(1, 512, SelectionMode::kLeoam, 16);
}
TEST(LeoamExactnessTest, QuestFullBudgetReproducesStoriesReferences) {
  CheckReferences(1, 512, SelectionMode::kQuest, 16);
}
TEST(LeoamExactnessTest, LeoamOddPageSizeTokenByTokenPrefillTwoThreads) {
  CheckReferences(2, 1, SelectionMode::kLeoam, 7);
}
TEST(LeoamExactnessTest, QuestChunkedPrefillPageSize5) { CheckReferences(1, 13, SelectionMode::kQuest, 5); }

// A long generation past many pages: every mode at full budget equals dense token for token.
TEST(LeoamExactnessTest, LongGenerationMatchesDense) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LoadedModel s;
  ASSERT_NO_FATAL_FAILURE(Load(model_path, 1, 512, s));
  std::vector<int32_t> prompt = s.tokenizer->Encode("Once upon a time, there was a little dog", {.add_bos = true});
  GenerateOptions options;
  options.max_tokens = 480;
  options.stop_tokens = {};
  auto dense = Generate(*s.model, nullptr, prompt, options);  // no tokenizer: only stop_tokens stop
  ASSERT_TRUE(dense.ok()) << dense.status();
  ASSERT_EQ(dense->tokens.size(), 480u);
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    options.paged_kv = FullBudget(mode, 16);
    auto paged = Generate(*s.model, nullptr, prompt, options);
    ASSERT_TRUE(paged.ok()) << paged.status();
    EXPECT_EQ(paged->tokens, dense->tokens) << SelectionModeName(mode);
  }
}

// Regression: a prompt long enough for the per-layer probe (>= 8 pages) used to let adaptive
// budget scaling (< 1) make a full-context budget sparse. A full budget must stay exact.
TEST(LeoamExactnessTest, FullBudgetStaysExactAfterTheAdaptiveProbe) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LoadedModel s;
  ASSERT_NO_FATAL_FAILURE(Load(model_path, 1, 512, s));
  const std::vector<int32_t> prompt = SampledPrompt(*s.model, 250, 5);  // 16 pages: the probe runs
  GenerateOptions options;
  options.max_tokens = 150;
  auto dense = Generate(*s.model, nullptr, prompt, options);
  ASSERT_TRUE(dense.ok()) << dense.status();
  options.paged_kv = FullBudget(SelectionMode::kLeoam, 16);
  auto paged = Generate(*s.model, nullptr, prompt, options);
  ASSERT_TRUE(paged.ok()) << paged.status();
  EXPECT_EQ(paged->tokens, dense->tokens);
  EXPECT_EQ(paged->kv_stats.tokens_attended, paged->kv_stats.context_tokens);
}

// A small budget attends a fraction of the context (not secretly everything), in both modes.
TEST(LeoamExactnessTest, SmallBudgetAttendsLess) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LoadedModel s;
  ASSERT_NO_FATAL_FAILURE(Load(model_path, 1, 512, s));
  // A 300-token prompt from the model itself, so the probe sees a real context.
  const std::vector<int32_t> prompt = SampledPrompt(*s.model, 300, 7);
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    GenerateOptions options;
    options.max_tokens = 64;
    options.paged_kv = PagedKvOptions{.mode = mode, .budget_tokens = 64};
    options.paged_kv->selection.adaptive = false;  // adaptivity may run flat layers dense
    auto result = Generate(*s.model, nullptr, prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    const PagedKvStats& st = result->kv_stats;
    ASSERT_EQ(st.selections, 63 * s.model->config().num_layers) << SelectionModeName(mode);
    EXPECT_LE(st.tokens_attended, st.selections * 64);
    EXPECT_LT(st.tokens_attended * 4, st.context_tokens);
    EXPECT_GT(st.counters.abstracts_read, 0);
  }
}

// Adaptive leoam with equal_total_budget stays near layers x budget in total (clamped per-layer
// scales may move it a little), while plain adaptive leoam may add dense layers on top.
TEST(LeoamExactnessTest, EqualTotalBudgetBoundsTheTotal) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LoadedModel s;
  ASSERT_NO_FATAL_FAILURE(Load(model_path, 1, 512, s));
  const std::vector<int32_t> prompt = SampledPrompt(*s.model, 380, 3);
  int64_t attended[2] = {0, 0};
  for (int equal = 0; equal < 2; ++equal) {
    GenerateOptions options;
    options.max_tokens = 32;
    options.paged_kv = PagedKvOptions{.mode = SelectionMode::kLeoam, .budget_tokens = 160};
    options.paged_kv->selection.equal_total_budget = equal == 1;
    auto result = Generate(*s.model, nullptr, prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    attended[equal] = result->kv_stats.tokens_attended;
    if (equal == 1) {
      EXPECT_LE(attended[1], result->kv_stats.selections * 160 * 5 / 4);
    }
  }
  EXPECT_LE(attended[1], attended[0]);
}

}  // namespace
}  // namespace leoam
