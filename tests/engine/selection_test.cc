// Page selection: forced sink/local pages, budgets, planted hot pages found by quest and by the
// IAKM walk (which reads fewer abstracts), GQA head combination, and per-layer policies.
#include "compute/engine/selection.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

constexpr int kPage = 16, kKvHeads = 2, kDim = 8, kHeads = 4;

// Keys ~ N(0, 0.1) except pages in `hot`, whose first token of KV head `hot_head` (-1: every KV
// head) points along +1.
AbstractPyramid MakePyramid(int pages, const std::vector<int>& hot, int hot_head = -1) {
  AbstractPyramid pyr(kPage, kKvHeads, kDim);
  std::mt19937 rng(17);
  std::normal_distribution<float> n(0.0f, 0.1f);
  std::vector<float> key(kKvHeads * kDim);
  for (int t = 0; t < pages * kPage; ++t) {
    for (float& x : key) x = n(rng);
    if (t % kPage == 0 && std::count(hot.begin(), hot.end(), t / kPage) > 0) {
      for (int h = 0; h < kKvHeads; ++h) {
        if (hot_head >= 0 && h != hot_head) continue;
        for (int c = 0; c < kDim; ++c) key[h * kDim + c] = 3.0f;
      }
    }
    pyr.AddKey(t, key.data());
  }
  return pyr;
}

std::vector<float> QueryAlongOnes(float value = 1.0f) { return std::vector<float>(kHeads * kDim, value); }

bool Has(const std::vector<int32_t>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

TEST(SelectionTest, ParsesModes) {
  EXPECT_EQ(*ParseSelectionMode("leoam"), SelectionMode::kLeoam);
  EXPECT_EQ(*ParseSelectionMode("quest"), SelectionMode::kQuest);
  EXPECT_EQ(*ParseSelectionMode("dense"), SelectionMode::kDense);
  EXPECT_FALSE(ParseSelectionMode("sparse").ok());
}

TEST(SelectionTest, DenseAndFullBudgetSelectEverything) {
  AbstractPyramid pyr = MakePyramid(40, {});
  const std::vector<float> q = QueryAlongOnes();
  SelectionOptions opt;
  for (SelectionMode mode : {SelectionMode::kDense, SelectionMode::kQuest, SelectionMode::kLeoam}) {
    const int budget = mode == SelectionMode::kDense ? 3 : 40;
    const auto pages = SelectPages(mode, pyr, q, kHeads, budget, {}, opt, nullptr);
    ASSERT_EQ(pages.size(), 40u) << SelectionModeName(mode);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(pages[i], i);
  }
}

TEST(SelectionTest, QuestAndLeoamFindPlantedPagesAndKeepSinkAndWindow) {
  const std::vector<int> hot = {9, 10, 57, 200};
  AbstractPyramid pyr = MakePyramid(256, hot);
  const std::vector<float> q = QueryAlongOnes();
  SelectionOptions opt;  // sink 1, local 2
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    SCOPED_TRACE(std::string(SelectionModeName(mode)));
    SelectionCounters counters;
    const auto pages = SelectPages(mode, pyr, q, kHeads, 8, {.start_level = 4}, opt, &counters);
    EXPECT_LE(pages.size(), 8u);
    EXPECT_TRUE(std::is_sorted(pages.begin(), pages.end()));
    EXPECT_TRUE(Has(pages, 0));
    EXPECT_TRUE(Has(pages, 254));
    EXPECT_TRUE(Has(pages, 255));
    for (int h : hot) EXPECT_TRUE(Has(pages, h)) << "hot page " << h;
    if (mode == SelectionMode::kQuest) {
      EXPECT_EQ(pages.size(), 8u);  // quest fills its budget
      EXPECT_EQ(counters.abstracts_read, 256 - 3);
    } else {
      // Deserts stay coarse: far fewer abstracts than one per page.
      EXPECT_LT(counters.abstracts_read, 100);
    }
  }
}

// A page hot for one KV head only must be selected: each head's bounds are normalized to its own
// softmax, so the heads that see nothing special cannot outvote the one that needs the page.
TEST(SelectionTest, PageNeededByOneHeadIsKept) {
  AbstractPyramid pyr = MakePyramid(64, {30}, /*hot_head=*/1);
  std::vector<float> q = QueryAlongOnes(1.0f);
  for (int c = 0; c < kDim; ++c) q[0 * kDim + c] = -1.0f;  // query head 0 (KV head 0) prefers other pages
  SelectionOptions opt;
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    const auto pages = SelectPages(mode, pyr, q, kHeads, 6, {.start_level = 3}, opt, nullptr);
    EXPECT_TRUE(Has(pages, 30)) << SelectionModeName(mode);
  }
}

TEST(SelectionTest, LeoamDenseLayerPolicySelectsEverything) {
  AbstractPyramid pyr = MakePyramid(50, {7});
  const auto pages =
      SelectPages(SelectionMode::kLeoam, pyr, QueryAlongOnes(), kHeads, 4, {.dense = true}, SelectionOptions{}, nullptr);
  EXPECT_EQ(pages.size(), 50u);
}

TEST(SelectionTest, PoliciesFromProbe) {
  const int pages = 100;
  std::vector<std::vector<float>> mass(3, std::vector<float>(pages, 0.0f));
  for (float& m : mass[0]) m = 1.0f / pages;                                  // flat
  for (int p = 0; p < pages; ++p) mass[1][p] = p % 10 == 0 ? 0.099f : 0.0001f;  // 90% deserts
  for (int p = 0; p < pages; ++p) mass[2][p] = p % 2 == 0 ? 0.0199f : 0.0001f;  // 50% deserts
  SelectionOptions opt;
  const std::vector<LayerPolicy> pol = PoliciesFromProbe(mass, opt);
  EXPECT_TRUE(pol[0].dense);
  EXPECT_FLOAT_EQ(pol[0].desert_rate, 0.0f);
  EXPECT_FALSE(pol[1].dense);
  EXPECT_NEAR(pol[1].desert_rate, 0.9f, 1e-6);
  EXPECT_FALSE(pol[2].dense);
  EXPECT_NEAR(pol[2].desert_rate, 0.5f, 1e-6);
  EXPECT_GT(pol[1].start_level, pol[2].start_level);   // larger deserts: coarser start
  EXPECT_LT(pol[1].budget_scale, pol[2].budget_scale);  // skewed layer needs less budget
}

}  // namespace
}  // namespace leoam
