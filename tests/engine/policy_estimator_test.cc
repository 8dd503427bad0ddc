// PolicyEstimator's update rule on constructed page masses: a concentrated layer gives budget to a
// flat one and to one whose selection edge still holds heavy pages, with the mean scale kept; start
// levels follow the share of pages that matter; dense layers turn sparse on skewed evidence and
// flat sparse layers turn dense within the allowance; warm-up and the clamps hold.
#include "compute/engine/policy_estimator.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

// `n` pages, `hot` of them sharing `hot_mass`, the rest sharing the remainder evenly.
std::vector<float> Mass(int n, int hot, float hot_mass) {
  std::vector<float> m(n, (1.0f - hot_mass) / static_cast<float>(n - hot));
  for (int i = 0; i < hot; ++i) m[i * (n / hot)] = hot_mass / static_cast<float>(hot);
  return m;
}

std::vector<float> Flat(int n) { return std::vector<float>(n, 1.0f / static_cast<float>(n)); }

float MeanScale(const std::vector<LayerPolicy>& p) {
  float sum = 0.0f;
  int n = 0;
  for (const LayerPolicy& x : p) {
    if (!x.dense) {
      sum += x.budget_scale;
      ++n;
    }
  }
  return sum / static_cast<float>(n);
}

TEST(PagesForMassTest, CountsLargestPagesFirst) {
  EXPECT_EQ(PagesForMass(std::vector<float>{0.05f, 0.9f, 0.05f}, 0.9f), 1);
  EXPECT_EQ(PagesForMass(std::vector<float>{0.05f, 0.9f, 0.05f}, 0.95f), 2);
  EXPECT_EQ(PagesForMass(std::vector<float>{0.1f, 0.5f, 0.1f, 0.3f}, 0.85f), 3);
  EXPECT_EQ(PagesForMass(Flat(10), 0.95f), 10);
  EXPECT_EQ(PagesForMass(std::vector<float>{2.0f, 2.0f}, 0.5f), 1);  // relative to the total
}

TEST(PolicyEstimatorTest, ConcentratedLayerGivesBudgetToFlatLayerKeepingTheMean) {
  ReestimationOptions ro{.enabled = true, .warmup = 2};
  SelectionOptions so;
  PolicyEstimator est(3, ro, so);
  std::vector<LayerPolicy> p(3);
  // 32 of 320 context pages selected. Layer 0: 2 selected pages hold 99%; layer 1: flat over its
  // selection; layer 2: 16 pages hold 90%, the others still 0.6% each.
  for (int i = 0; i < 4; ++i) {
    est.Observe(0, Mass(32, 2, 0.99f), {}, 320, false);
    est.Observe(1, Flat(32), {}, 320, false);
    est.Observe(2, Mass(32, 16, 0.9f), {}, 320, false);
  }
  EXPECT_LT(est.estimate(0).need, 0.2f);
  EXPECT_GT(est.estimate(1).need, 0.9f);
  EXPECT_NEAR(est.estimate(1).tail, 1.0f, 1e-5f);
  EXPECT_LT(est.estimate(0).tail, 0.05f);
  // Marginal page value in uniform shares: flat attention is worth exactly its uniform share (the
  // selection then holds 32/320 of the mass); the concentrated layer's weakest pages ~0.1 of it.
  EXPECT_NEAR(est.estimate(1).marginal, 1.0f, 1e-4f);
  EXPECT_LT(est.estimate(0).marginal, 0.15f);
  EXPECT_GT(est.estimate(2).marginal, est.estimate(0).marginal);
  EXPECT_GT(est.Update(p, /*dense_allowance=*/0), 0);  // (flat layer 1 would turn dense otherwise)
  EXPECT_LT(p[0].budget_scale, 1.0f);
  EXPECT_GT(p[1].budget_scale, 1.0f);
  EXPECT_LT(p[0].budget_scale, p[2].budget_scale);
  EXPECT_LT(p[2].budget_scale, p[1].budget_scale);
  EXPECT_NEAR(MeanScale(p), 1.0f, 1e-4f);
  // Without new evidence an update moves nothing; each new observation moves one bounded step,
  // until the clamps, mean still 1.
  const std::vector<LayerPolicy> before = p;
  est.Update(p, 0);
  for (int l = 0; l < 3; ++l) EXPECT_FLOAT_EQ(p[l].budget_scale, before[l].budget_scale);
  for (int i = 0; i < 20; ++i) {
    est.Observe(0, Mass(32, 2, 0.99f), {}, 320, false);
    est.Observe(1, Flat(32), {}, 320, false);
    est.Observe(2, Mass(32, 16, 0.9f), {}, 320, false);
    est.Update(p, 0);
  }
  EXPECT_NEAR(p[0].budget_scale, so.min_budget_scale, 1e-4f);
  EXPECT_LE(p[1].budget_scale, so.max_budget_scale + 1e-6f);
  EXPECT_NEAR(MeanScale(p), 1.0f, 0.02f);
  for (const LayerPolicy& x : p) EXPECT_FALSE(x.dense);
  // Start level from the share of context pages that matter: 2 of 320 pages -> coarse start;
  // 31 of 320 -> ~1/10 -> level 4.
  EXPECT_EQ(p[0].start_level, so.max_start_level);
  EXPECT_EQ(p[1].start_level, 4);
}

TEST(PolicyEstimatorTest, HeavyPagesAtTheSelectionsEdgeDrawBudget) {
  ReestimationOptions ro{.enabled = true, .warmup = 1};
  PolicyEstimator est(2, ro, SelectionOptions{});
  std::vector<LayerPolicy> p(2);
  // Both select 20 of 400 pages. Layer 0 is flat (each page worth its uniform share); layer 1's
  // selection decays by 0.9 per page down to its edge, so the next pages still hold ~2% of the
  // selection's mass each (~6 uniform shares): more budget there captures more mass.
  std::vector<float> edge(20);
  for (int i = 0; i < 20; ++i) edge[i] = std::pow(0.9f, static_cast<float>(i));
  est.Observe(0, Flat(20), {}, 400, false);
  est.Observe(1, edge, {}, 400, false);
  EXPECT_NEAR(est.estimate(0).marginal, 1.0f, 1e-4f);
  EXPECT_GT(est.estimate(1).marginal, 4.0f);
  est.Update(p, 0);
  EXPECT_GT(p[1].budget_scale, p[0].budget_scale);
}

TEST(PolicyEstimatorTest, WeakestPagesAreThoseTheSelectionRankedLast) {
  // Page 0 (sink) and 11 (local) are forced. The two pages the selection ranked lowest (1 and 2)
  // hold most of the mass: the bounds under-rate them, so a smaller budget would drop heavy pages.
  std::vector<float> mass(12, 0.025f), score(12);
  mass[0] = 0.1f;
  mass[11] = 0.1f;
  mass[1] = mass[2] = 0.3f;
  for (int i = 0; i < 12; ++i) score[i] = static_cast<float>(i);
  score[0] = score[11] = std::numeric_limits<float>::infinity();
  PolicyEstimator by_score(1, ReestimationOptions{.enabled = true}, SelectionOptions{});
  PolicyEstimator by_mass(1, ReestimationOptions{.enabled = true}, SelectionOptions{});
  by_score.Observe(0, mass, score, 200, false);
  by_mass.Observe(0, mass, {}, 200, false);
  EXPECT_GT(by_score.estimate(0).marginal, 10.0f * by_mass.estimate(0).marginal);
  EXPECT_EQ(by_score.estimate(0).need, by_mass.estimate(0).need);  // the ranking only changes "weakest"
}

TEST(PolicyEstimatorTest, NothingChangesBeforeWarmup) {
  ReestimationOptions ro{.enabled = true, .warmup = 3};
  PolicyEstimator est(2, ro, SelectionOptions{});
  std::vector<LayerPolicy> p(2);
  est.Observe(0, Mass(16, 1, 0.99f), {}, 100, false);
  est.Observe(1, Flat(16), {}, 100, false);
  est.Observe(0, Mass(16, 1, 0.99f), {}, 100, false);
  est.Observe(1, Flat(16), {}, 100, false);
  EXPECT_EQ(est.Update(p, 2), 0);
  EXPECT_EQ(p[0].budget_scale, 1.0f);
  EXPECT_EQ(p[1].budget_scale, 1.0f);
  EXPECT_EQ(p[0].start_level, 3);
}

TEST(PolicyEstimatorTest, SmoothingWeighsNewEvidence) {
  ReestimationOptions ro{.enabled = true, .smoothing = 0.5f};
  PolicyEstimator est(1, ro, SelectionOptions{});
  est.Observe(0, Flat(10), {}, 100, false);  // need 10/10
  EXPECT_NEAR(est.estimate(0).need, 1.0f, 1e-6f);
  est.Observe(0, Mass(10, 1, 1.0f), {}, 100, false);  // need 1/10
  EXPECT_NEAR(est.estimate(0).need, 0.55f, 1e-6f);
}

TEST(PolicyEstimatorTest, DenseLayerTurnsSparseWhenItsAttentionIsSkewed) {
  ReestimationOptions ro{.enabled = true, .warmup = 2};
  SelectionOptions so;  // dense below a desert rate of 0.3
  PolicyEstimator est(2, ro, so);
  std::vector<LayerPolicy> p(2);
  p[0].dense = true;
  p[0].desert_rate = 0.1f;
  p[1].dense = true;
  p[1].desert_rate = 0.1f;
  for (int i = 0; i < 3; ++i) {
    est.Observe(0, Mass(100, 10, 0.999f), {}, 100, true);  // 90 deserts of 100 pages
    est.Observe(1, Flat(100), {}, 100, true);               // no deserts
  }
  EXPECT_NEAR(est.estimate(0).desert_rate, 0.9f, 1e-5f);
  EXPECT_NEAR(est.estimate(1).desert_rate, 0.0f, 1e-5f);
  est.Update(p, 2);
  EXPECT_FALSE(p[0].dense);
  EXPECT_TRUE(p[1].dense);
  EXPECT_NEAR(p[0].desert_rate, 0.9f, 1e-5f);
  EXPECT_EQ(est.dense_to_sparse(), 1);
  EXPECT_EQ(est.estimate(0).observations, 0);  // restarts its evidence after the switch
}

TEST(PolicyEstimatorTest, FlatSparseLayerTurnsDenseWithinTheAllowance) {
  ReestimationOptions ro{.enabled = true, .warmup = 1};
  SelectionOptions so;
  PolicyEstimator est(3, ro, so);
  std::vector<LayerPolicy> p(3);
  // Layers 0 and 1 flat over the whole context, layer 2 concentrated.
  est.Observe(0, Flat(30), {}, 400, false);
  est.Observe(1, Flat(30), {}, 400, false);
  est.Observe(2, Mass(40, 2, 0.99f), {}, 400, false);
  std::vector<LayerPolicy> no_room = p;
  PolicyEstimator est2 = est;
  est2.Update(no_room, 0);  // allowance 0: nobody turns dense
  for (const LayerPolicy& x : no_room) EXPECT_FALSE(x.dense);
  est.Update(p, 1);  // room for one
  EXPECT_TRUE(p[0].dense);
  EXPECT_FALSE(p[1].dense);
  EXPECT_FALSE(p[2].dense);
  EXPECT_EQ(est.sparse_to_dense(), 1);
  std::vector<LayerPolicy> all(3);
  PolicyEstimator est3(3, ro, so);
  est3.Observe(0, Flat(30), {}, 400, false);
  est3.Observe(1, Flat(30), {}, 400, false);
  est3.Observe(2, Mass(40, 2, 0.99f), {}, 400, false);
  est3.Update(all, 3);
  EXPECT_TRUE(all[0].dense);
  EXPECT_TRUE(all[1].dense);
  EXPECT_FALSE(all[2].dense);  // concentrated: never dense
}

}  // namespace
}  // namespace leoam
