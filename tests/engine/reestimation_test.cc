// Online re-estimation in the engine (PagedKvOptions::reestimation): on constructed K/Q a layer
// whose decode attention is concentrated gives budget to a layer whose attention is flat, the total
// kept; on stories260K a full budget stays exact with re-estimation on, and a small budget under
// equal_total_budget stays within the total.
#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/llama_model.h"
#include "gtest/gtest.h"
#include "tests/engine/small_config.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/engine/sampled_prompt.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {

constexpr int kPage = 16;

TEST(ReestimationTest, ConcentratedLayerLosesBudgetToFlatLayer) {
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  const ModelConfig c = testing::TwoLayerConfig();
  const int prompt = 40 * kPage, steps = 24;
  PagedKvOptions o{.page_size = kPage, .mode = SelectionMode::kLeoam, .budget_tokens = 10 * kPage};
  o.selection.adaptive = false;           // both layers start at the base budget
  o.selection.equal_total_budget = true;  // and the total pays for no dense layer
  o.reestimation = {.enabled = true, .interval = 1, .warmup = 2};
  auto seq = PagedKvSequence::Create(**backend, c, prompt + steps, o);
  ASSERT_TRUE(seq.ok()) << seq.status();

  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  };
  // Both layers: random keys, except that in layer 0 the first token of pages 9 and 27 points
  // along +1 in every channel: layer 0's queries (along +1) put nearly all their mass there, while
  // layer 1's zero queries spread it evenly over every token.
  for (int l = 0; l < c.num_layers; ++l) {
    std::vector<float> k = random(static_cast<size_t>(prompt) * c.kv_dim()), v = random(k.size());
    if (l == 0) {
      for (int page : {9, 27}) {
        for (int i = 0; i < c.kv_dim(); ++i) k[static_cast<size_t>(page * kPage) * c.kv_dim() + i] = 3.0f;
      }
    }
    ASSERT_TRUE((*seq)->Append(l, 0, prompt, k.data(), v.data()).ok());
  }
  (*seq)->BeginDecode();
  std::vector<float> out(c.q_dim());
  for (int s = 0; s < steps; ++s) {
    const int pos = prompt + s;
    for (int l = 0; l < c.num_layers; ++l) {
      const std::vector<float> k = random(c.kv_dim()), v = random(c.kv_dim());
      ASSERT_TRUE((*seq)->Append(l, pos, 1, k.data(), v.data()).ok());
      const std::vector<float> q(c.q_dim(), l == 0 ? 4.0f : 0.0f);
      kernels::AttentionParams p{1, c.num_heads, c.num_kv_heads, c.head_dim, pos, 0.25f};
      ASSERT_TRUE((*seq)->Attend(l, p, q.data(), out.data(), nullptr).ok());
    }
  }
  const std::vector<LayerPolicy>& pol = (*seq)->policies();
  EXPECT_LT(pol[0].budget_scale, 1.0f);
  EXPECT_GT(pol[1].budget_scale, 1.0f);
  EXPECT_NEAR(pol[0].budget_scale + pol[1].budget_scale, 2.0f, 1e-4f);  // the total is kept
  const int context = prompt + steps;
  EXPECT_LT((*seq)->BudgetPages(0, context), (*seq)->BudgetPages(1, context));
  const PolicyEstimator* est = (*seq)->estimator();
  ASSERT_NE(est, nullptr);
  EXPECT_LT(est->estimate(0).need, 0.5f);
  EXPECT_GT(est->estimate(1).need, 0.8f);
  const PagedKvStats& st = (*seq)->stats();
  EXPECT_EQ(st.reestimate_observations, steps * c.num_layers);
  EXPECT_GT(st.reestimate_changes, 0);
  // The concentrated layer keeps its hot pages while its budget shrinks.
  const std::vector<int32_t>& sel = (*seq)->last_selection(0);
  EXPECT_NE(std::find(sel.begin(), sel.end(), 9), sel.end());
  EXPECT_NE(std::find(sel.begin(), sel.end(), 27), sel.end());
}

TEST(ReestimationTest, OffByDefaultAndRejectsBadOptions) {
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  PagedKvOptions o;
  auto seq = PagedKvSequence::Create(**backend, testing::TwoLayerConfig(), 64, o);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ((*seq)->estimator(), nullptr);
  o.reestimation = {.enabled = true, .interval = 0};
  EXPECT_FALSE(PagedKvSequence::Create(**backend, testing::TwoLayerConfig(), 64, o).ok());
  o.reestimation = {.enabled = true, .smoothing = 0.0f};
  EXPECT_FALSE(PagedKvSequence::Create(**backend, testing::TwoLayerConfig(), 64, o).ok());
}

class ReestimationStoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(path, "models/stories260K.gguf");
    auto backend = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    auto model = LlamaModel::Load(path, *backend_, {});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<kernels::CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
};

// Re-estimation only redistributes budgets smaller than the context: a full budget stays exact.
TEST_F(ReestimationStoriesTest, FullBudgetStillEqualsDense) {
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 250, 5);
  GenerateOptions options;
  options.max_tokens = 150;
  auto dense = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(dense.ok()) << dense.status();
  for (bool equal : {false, true}) {
    options.paged_kv = PagedKvOptions{.mode = SelectionMode::kLeoam, .budget_fraction = 1.0};
    options.paged_kv->selection.equal_total_budget = equal;
    options.paged_kv->reestimation = {.enabled = true, .interval = 2};
    auto paged = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(paged.ok()) << paged.status();
    EXPECT_EQ(paged->tokens, dense->tokens) << "equal_total_budget " << equal;
    EXPECT_EQ(paged->kv_stats.tokens_attended, paged->kv_stats.context_tokens);
    EXPECT_GT(paged->kv_stats.reestimate_observations, 0);
  }
}

// Under equal_total_budget the re-estimated budgets keep the total near layers x budget.
TEST_F(ReestimationStoriesTest, SmallBudgetKeepsTheTotal) {
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 380, 3);
  GenerateOptions options;
  options.max_tokens = 64;
  options.paged_kv = PagedKvOptions{.mode = SelectionMode::kLeoam, .budget_tokens = 160};
  options.paged_kv->selection.equal_total_budget = true;
  options.paged_kv->reestimation = {.enabled = true, .interval = 1};
  auto result = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const PagedKvStats& st = result->kv_stats;
  EXPECT_GT(st.reestimate_observations, 0);
  EXPECT_LE(st.tokens_attended, st.selections * 160 * 5 / 4);
  EXPECT_LT(st.tokens_attended, st.context_tokens);
}

}  // namespace
}  // namespace leoam
