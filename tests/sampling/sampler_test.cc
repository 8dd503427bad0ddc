#include "compute/sampling/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

TEST(SamplerTest, GreedyPicksArgmaxLowestIdOnTies) {
  auto sampler = Sampler::Create({});
  ASSERT_TRUE(sampler.ok());
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(*sampler->Sample(logits.data(), 4), 1);
}

TEST(SamplerTest, GreedySkipsNaN) {
  auto sampler = Sampler::Create({});
  std::vector<float> logits = {NAN, -3.0f, NAN};
  EXPECT_EQ(*sampler->Sample(logits.data(), 3), 1);
  std::vector<float> all_nan = {NAN, NAN};
  EXPECT_EQ(sampler->Sample(all_nan.data(), 2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SamplerTest, RejectsOutOfRangeParams) {
  EXPECT_FALSE(Sampler::Create({.temperature = -0.1f}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = NAN}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = 1.0f, .top_k = -1}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = 1.0f, .top_p = 0.0f}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = 1.0f, .top_p = 1.5f}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = 1.0f, .min_p = 1.0f}).ok());
  absl::Status s = ValidateSamplingParams({.temperature = 1.0f, .top_p = 2.0f});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("top_p"), std::string::npos);
}

std::vector<int32_t> Draw(const SamplingParams& p, const std::vector<float>& logits, int n) {
  auto sampler = Sampler::Create(p);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(*sampler->Sample(logits.data(), static_cast<int32_t>(logits.size())));
  return out;
}

TEST(SamplerTest, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 0.7f);
  SamplingParams p{.temperature = 1.0f, .seed = 42};
  EXPECT_EQ(Draw(p, logits, 200), Draw(p, logits, 200));
  SamplingParams q = p;
  q.seed = 43;
  EXPECT_NE(Draw(p, logits, 200), Draw(q, logits, 200));
}

TEST(SamplerTest, TopKKeepsOnlyKMostLikely) {
  std::vector<float> logits = {1.0f, 5.0f, 3.0f, 4.0f, 0.0f};
  for (int32_t t : Draw({.temperature = 5.0f, .top_k = 2, .seed = 1}, logits, 500)) {
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(SamplerTest, TopPKeepsSmallestNucleus) {
  // probabilities ~ 0.6, 0.3, 0.1 at temperature 1
  std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  std::map<int32_t, int> counts;
  for (int32_t t : Draw({.temperature = 1.0f, .top_p = 0.85f, .seed = 3}, logits, 2000)) counts[t]++;
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_GT(counts[0], counts[1]);
  EXPECT_GT(counts[1], 0);
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.45f), std::log(0.05f)};
  for (int32_t t : Draw({.temperature = 1.0f, .min_p = 0.2f, .seed = 9}, logits, 1000)) EXPECT_NE(t, 2);
}

TEST(SamplerTest, FrequenciesFollowTheDistribution) {
  std::vector<float> logits = {std::log(0.7f), std::log(0.2f), std::log(0.1f)};
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int32_t t : Draw({.temperature = 1.0f, .seed = 5}, logits, n)) counts[t]++;
  EXPECT_NEAR(counts[0] / double(n), 0.7, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.1, 0.02);
}

}  // namespace
}  // namespace leoam
