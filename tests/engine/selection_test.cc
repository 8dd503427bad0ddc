// Page selection: forced sink/local pages, budgets, planted hot pages found by quest and by the
// IAKM walk (which reads fewer abstracts), GQA head combination, and per-layer policies.
#include "compute/engine/selection.h"

#include <algorithm>
#include <cmath>
#include <functional>
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

// Scores against a double reference of selection.h's formula (per head: softmax over the pages of
// the KeyBound; mean over heads), with an odd head dim and 3 query heads per KV head.
struct GqaCase {
  static constexpr int kHeads = 6, kKvHeads = 2, kDim = 7, kPages = 90;
  AbstractPyramid pyr{kPage, kKvHeads, kDim};
  std::vector<float> q;
  GqaCase() {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> key(kKvHeads * kDim);
    for (int t = 0; t < kPages * kPage; ++t) {
      for (float& x : key) x = u(rng);
      pyr.AddKey(t, key.data());
    }
    q.resize(kHeads * kDim);
    for (float& x : q) x = 2.0f * u(rng);
  }
  std::vector<double> Reference(const std::vector<int32_t>& pages) const {
    std::vector<double> score(pages.size(), 0.0);
    for (int h = 0; h < kHeads; ++h) {
      const int kv = h / (kHeads / kKvHeads);
      std::vector<double> b(pages.size());
      for (size_t i = 0; i < pages.size(); ++i) {
        const float* mn = pyr.min(0, pages[i]) + kv * kDim;
        const float* mx = pyr.max(0, pages[i]) + kv * kDim;
        b[i] = 0.0;
        for (int c = 0; c < kDim; ++c) {
          const double qc = q[h * kDim + c];
          b[i] += std::max(qc * mn[c], qc * mx[c]);
        }
      }
      const double best = *std::max_element(b.begin(), b.end());
      double sum = 0.0;
      for (double& x : b) sum += (x = std::exp(x - best));
      for (size_t i = 0; i < pages.size(); ++i) score[i] += b[i] / sum / kHeads;
    }
    return score;
  }
};

TEST(SelectionTest, ScoresMatchDoubleReference) {
  const GqaCase g;
  std::vector<int32_t> pages;
  for (int p = 0; p < GqaCase::kPages; p += 1 + p % 3) pages.push_back(p);
  const std::vector<float> score = ScorePages(g.pyr, pages, g.q, GqaCase::kHeads);
  const std::vector<double> ref = g.Reference(pages);
  ASSERT_EQ(score.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(score[i], ref[i], 1e-4 * ref[i] + 1e-9) << "page " << pages[i];
}

// quest keeps the pages of highest reference score (up to near ties at the cut).
TEST(SelectionTest, QuestKeepsTheTopPagesOfTheDoubleReference) {
  const GqaCase g;
  SelectionOptions opt;  // sink 1, local 2
  const int budget = 20, remaining = budget - 3;
  const std::vector<int32_t> chosen =
      SelectPages(SelectionMode::kQuest, g.pyr, g.q, GqaCase::kHeads, budget, {}, opt, nullptr);
  ASSERT_EQ(chosen.size(), static_cast<size_t>(budget));
  std::vector<int32_t> candidates;
  for (int p = 1; p < GqaCase::kPages - 2; ++p) candidates.push_back(p);
  const std::vector<double> ref = g.Reference(candidates);
  std::vector<double> sorted = ref;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const double cut = sorted[remaining - 1];
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (Has(chosen, candidates[i])) {
      EXPECT_GE(ref[i], cut * (1 - 1e-4)) << "page " << candidates[i];
    } else {
      EXPECT_LE(ref[i], cut * (1 + 1e-4)) << "page " << candidates[i];
    }
  }
}

// Hysteresis (resident_logit_margin): a resident page just below the cut displaces the weakest
// non-resident choice; it cannot displace pages that beat it by more than the margin (the planted
// hot pages); without a margin, or without resident flags, nothing changes.
TEST(SelectionTest, ResidentMarginKeepsNearTiedResidentPagesOnly) {
  const std::vector<int> hot = {9, 10, 57, 200};
  AbstractPyramid pyr = MakePyramid(256, hot);
  const std::vector<float> q = QueryAlongOnes();
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    SCOPED_TRACE(std::string(SelectionModeName(mode)));
    // leoam from level 0: every page is a level-0 candidate, as in quest (the walk may drop the
    // page just below the cut before level 0; the hysteresis only reorders the candidates).
    const LayerPolicy policy{.start_level = 0};
    SelectionOptions opt;
    const int budget = 10;  // sink 1 + local 2 + 4 hot + 3 others
    const std::vector<int32_t> plain = SelectPages(mode, pyr, q, kHeads, budget, policy, opt, nullptr);
    ASSERT_EQ(plain.size(), static_cast<size_t>(budget));
    // The best non-hot page left out, and the weakest non-hot page chosen (by the selection's scores).
    std::vector<int32_t> others;
    for (int p = 1; p < 254; ++p) {
      if (std::count(hot.begin(), hot.end(), p) == 0) others.push_back(p);
    }
    const std::vector<float> score = ScorePages(pyr, others, q, kHeads);
    int32_t left_out = -1, weakest = -1;
    float left_score = -1.0f, weakest_score = 2.0f;
    for (size_t i = 0; i < others.size(); ++i) {
      if (Has(plain, others[i])) {
        if (score[i] < weakest_score) weakest_score = score[i], weakest = others[i];
      } else if (score[i] > left_score) {
        left_score = score[i], left_out = others[i];
      }
    }
    ASSERT_GE(left_out, 0);
    ASSERT_GE(weakest, 0);
    std::vector<uint8_t> resident(256, 0);
    resident[left_out] = 1;
    // No margin: the flags change nothing.
    EXPECT_EQ(SelectPages(mode, pyr, q, kHeads, budget, policy, opt, nullptr, resident), plain);
    opt.resident_logit_margin = 1.0f;
    ASSERT_GT(left_score * std::exp(opt.resident_logit_margin), weakest_score);  // near-tied at the cut
    // No flags: nothing changes.
    EXPECT_EQ(SelectPages(mode, pyr, q, kHeads, budget, policy, opt, nullptr), plain);
    const std::vector<int32_t> sticky = SelectPages(mode, pyr, q, kHeads, budget, policy, opt, nullptr, resident);
    EXPECT_EQ(sticky.size(), plain.size());
    EXPECT_TRUE(Has(sticky, left_out));
    EXPECT_FALSE(Has(sticky, weakest));
    for (int h : hot) EXPECT_TRUE(Has(sticky, h)) << "hot page " << h;
    // Every non-hot page resident: the hot pages still win (they beat the rest by far more than e^1).
    std::vector<uint8_t> all_but_hot(256, 1);
    for (int h : hot) all_but_hot[h] = 0;
    const std::vector<int32_t> crowded = SelectPages(mode, pyr, q, kHeads, budget, policy, opt, nullptr, all_but_hot);
    for (int h : hot) EXPECT_TRUE(Has(crowded, h)) << "hot page " << h;
  }
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
