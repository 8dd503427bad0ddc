// PagedKvSequence on random K/V/Q: pages and abstracts follow appends; prompt chunks and
// full-budget decode steps equal the dense KvCache; a sparse step attends exactly its selection;
// bad appends are refused.
#include "compute/engine/paged_kv.h"

#include <cmath>
#include <random>
#include <vector>

#include "compute/model/kv_cache.h"
#include "gtest/gtest.h"
#include "tests/engine/small_config.h"
#include "kernels/cpu/cpu_backend.h"

namespace leoam {
namespace {

class PagedKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(b.ok());
    backend_ = std::move(*b);
  }
  std::vector<float> Random(size_t n) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  // Appends n rows to both sequences and compares Attend outputs of every layer.
  void Step(KvSequence& a, KvSequence& b, int start, int n, float tol) {
    const ModelConfig c = testing::TwoLayerConfig();
    for (int l = 0; l < c.num_layers; ++l) {
      std::vector<float> k = Random(n * c.kv_dim()), v = Random(n * c.kv_dim()), q = Random(n * c.q_dim());
      ASSERT_TRUE(a.Append(l, start, n, k.data(), v.data()).ok());
      ASSERT_TRUE(b.Append(l, start, n, k.data(), v.data()).ok());
      kernels::AttentionParams p{n, c.num_heads, c.num_kv_heads, c.head_dim, start, 0.25f};
      std::vector<char> ws(kernels::AttentionWorkspaceBytes(p, 1));
      std::vector<float> oa(q.size()), ob(q.size());
      ASSERT_TRUE(a.Attend(l, p, q.data(), oa.data(), ws.data()).ok());
      ASSERT_TRUE(b.Attend(l, p, q.data(), ob.data(), ws.data()).ok());
      for (size_t i = 0; i < oa.size(); ++i) ASSERT_NEAR(oa[i], ob[i], tol) << "layer " << l << " start " << start;
    }
  }
  std::mt19937 rng_{42};
  std::unique_ptr<kernels::CpuBackend> backend_;
};

TEST_F(PagedKvTest, FullBudgetEqualsDenseCacheInPrefillAndDecode) {
  for (SelectionMode mode : {SelectionMode::kDense, SelectionMode::kQuest, SelectionMode::kLeoam}) {
    auto dense = KvCache::Create(*backend_, testing::TwoLayerConfig(), 200);
    ASSERT_TRUE(dense.ok());
    auto paged = PagedKvSequence::Create(*backend_, testing::TwoLayerConfig(), 200,
                                         {.page_size = 8, .mode = mode, .budget_fraction = 1.0});
    ASSERT_TRUE(paged.ok()) << paged.status();
    Step(*dense, **paged, 0, 37, 1e-5f);   // prompt chunks
    Step(*dense, **paged, 37, 50, 1e-5f);
    (*paged)->BeginDecode();
    for (int pos = 87; pos < 120; ++pos) Step(*dense, **paged, pos, 1, 1e-5f);
    EXPECT_EQ((*paged)->page_table(0).size(), 15u);  // ceil(120 / 8)
    EXPECT_EQ((*paged)->abstracts(1).num_tokens(), 120);
    EXPECT_EQ((*paged)->stats().tokens_attended, (*paged)->stats().context_tokens);
  }
}

// With a small budget the output is exactly dense attention restricted to the selected pages.
TEST_F(PagedKvTest, SparseStepAttendsExactlyTheSelectedPages) {
  const ModelConfig c = testing::TwoLayerConfig();
  const int ps = 8, n = 100;
  auto paged = PagedKvSequence::Create(*backend_, c, 128, {.page_size = ps, .mode = SelectionMode::kQuest,
                                                           .budget_tokens = 32});
  ASSERT_TRUE(paged.ok());
  std::vector<float> k = Random(n * c.kv_dim()), v = Random(n * c.kv_dim()), q = Random(c.q_dim());
  ASSERT_TRUE((*paged)->Append(0, 0, n, k.data(), v.data()).ok());
  (*paged)->BeginDecode();
  kernels::AttentionParams p{1, c.num_heads, c.num_kv_heads, c.head_dim, n - 1, 0.25f};
  std::vector<float> out(c.q_dim());
  ASSERT_TRUE((*paged)->Attend(0, p, q.data(), out.data(), nullptr).ok());
  const std::vector<int32_t>& pages = (*paged)->last_selection(0);
  ASSERT_EQ(pages.size(), 4u);  // 32 tokens / 8
  EXPECT_EQ(pages.front(), 0);
  EXPECT_EQ(pages.back(), (n - 1) / ps);
  for (int h = 0; h < c.num_heads; ++h) {
    const int kvh = h / 2;
    std::vector<double> s;
    std::vector<int> rows;
    for (int page : pages) {
      for (int t = page * ps; t < std::min(n, (page + 1) * ps); ++t) {
        double dot = 0;
        for (int d = 0; d < c.head_dim; ++d) dot += q[h * c.head_dim + d] * k[t * c.kv_dim() + kvh * c.head_dim + d];
        s.push_back(0.25 * dot);
        rows.push_back(t);
      }
    }
    double m = -1e300, sum = 0;
    for (double x : s) m = std::max(m, x);
    for (double& x : s) sum += (x = std::exp(x - m));
    for (int d = 0; d < c.head_dim; ++d) {
      double acc = 0;
      for (size_t j = 0; j < s.size(); ++j) acc += s[j] * v[rows[j] * c.kv_dim() + kvh * c.head_dim + d];
      EXPECT_NEAR(out[h * c.head_dim + d], acc / sum, 1e-5);
    }
  }
}

TEST_F(PagedKvTest, RefusesOutOfOrderAppendsAndBadOptions) {
  auto paged = PagedKvSequence::Create(*backend_, testing::TwoLayerConfig(), 16, {});
  ASSERT_TRUE(paged.ok());
  std::vector<float> k = Random(20 * testing::TwoLayerConfig().kv_dim());
  EXPECT_FALSE((*paged)->Append(0, 3, 1, k.data(), k.data()).ok());   // gap
  EXPECT_FALSE((*paged)->Append(0, 0, 17, k.data(), k.data()).ok());  // past capacity
  EXPECT_FALSE((*paged)->Append(2, 0, 1, k.data(), k.data()).ok());   // no such layer
  EXPECT_FALSE(PagedKvSequence::Create(*backend_, testing::TwoLayerConfig(), 16, {.page_size = 0}).ok());
  EXPECT_FALSE(PagedKvSequence::Create(*backend_, testing::TwoLayerConfig(), 16, {.budget_fraction = 1.5}).ok());
}

TEST(ParseBudgetTest, TokensOrFraction) {
  PagedKvOptions o;
  ASSERT_TRUE(ParseBudget("512", o).ok());
  EXPECT_EQ(o.budget_tokens, 512);
  ASSERT_TRUE(ParseBudget("0.25", o).ok());
  EXPECT_EQ(o.budget_tokens, 0);
  EXPECT_DOUBLE_EQ(o.budget_fraction, 0.25);
  EXPECT_FALSE(ParseBudget("1.5", o).ok());
  EXPECT_FALSE(ParseBudget("0", o).ok());
  EXPECT_FALSE(ParseBudget("ten", o).ok());
}

}  // namespace
}  // namespace leoam
