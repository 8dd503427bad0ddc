// AbstractPyramid: every node bounds exactly the keys of its pages (brute force), at every level
// and while pages fill; KeyBound is an upper bound of q.k.
#include "compute/engine/abstracts.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

// Every node the pyramid holds (level 0 from level0_first()) is the min / max of its pages' keys
// among the first `tokens` of keys ([tokens, num_kv_heads * head_dim]).
void ExpectNodesAreMinMax(const AbstractPyramid& pyr, const std::vector<float>& keys, int tokens) {
  const int ps = pyr.page_size(), width = pyr.num_kv_heads() * pyr.head_dim();
  for (int level = 0; level < pyr.num_levels(); ++level) {
    for (int node = level == 0 ? pyr.level0_first() : 0; node < pyr.num_nodes(level); ++node) {
      const int end_tok = std::min(pyr.end_page(level, node) * ps, tokens);
      for (int c = 0; c < width; ++c) {
        float mn = 1e30f, mx = -1e30f;
        for (int x = pyr.first_page(level, node) * ps; x < end_tok; ++x) {
          mn = std::min(mn, keys[x * width + c]);
          mx = std::max(mx, keys[x * width + c]);
        }
        ASSERT_EQ(pyr.min(level, node)[c], mn) << "level " << level << " node " << node;
        ASSERT_EQ(pyr.max(level, node)[c], mx) << "level " << level << " node " << node;
      }
    }
  }
}

TEST(AbstractPyramidTest, NodesAreMinMaxOfTheirPagesAtEveryLevel) {
  const int ps = 4, kvh = 2, d = 3, width = kvh * d;
  AbstractPyramid pyr(ps, kvh, d);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  std::vector<float> keys;
  for (int t = 0; t < 4 * 37 + 2; ++t) {  // 38 pages, the last one partial
    for (int c = 0; c < width; ++c) keys.push_back(u(rng));
    pyr.AddKey(t, keys.data() + static_cast<size_t>(t) * width);
    const int tokens = t + 1;
    ASSERT_EQ(pyr.num_pages(), (tokens + ps - 1) / ps);
    if (tokens % 7 != 0 && tokens != 4 * 37 + 2) continue;  // check periodically and at the end
    ASSERT_EQ(pyr.num_nodes(pyr.num_levels() - 1), 1);
    ASSERT_NO_FATAL_FAILURE(ExpectNodesAreMinMax(pyr, keys, tokens)) << "tokens " << tokens;
  }
  EXPECT_GT(pyr.bytes(), 0u);
}

// Releasing level 0 below a page frees it and changes nothing above it or after it: the upper
// levels still bound every key, also keys added after the release.
TEST(AbstractPyramidTest, ReleasedLevel0LeavesTheRestExact) {
  const int ps = 4, kvh = 2, d = 3, width = kvh * d;
  AbstractPyramid pyr(ps, kvh, d);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  std::vector<float> keys;
  auto add = [&](int t) {
    for (int c = 0; c < width; ++c) keys.push_back(u(rng));
    pyr.AddKey(t, keys.data() + static_cast<size_t>(t) * width);
  };
  for (int t = 0; t < 4 * 20 + 1; ++t) add(t);  // 21 pages, the last one partial
  const uint64_t before = pyr.bytes();
  pyr.ReleaseLevel0Below(25);  // clamped to the 20 full pages
  EXPECT_EQ(pyr.level0_first(), 20);
  EXPECT_LT(pyr.bytes(), before);
  for (int t = 4 * 20 + 1; t < 4 * 30; ++t) add(t);  // up to 30 pages
  ASSERT_NO_FATAL_FAILURE(ExpectNodesAreMinMax(pyr, keys, 4 * 30));
  pyr.ReleaseLevel0Below(10);  // below what is already released: nothing
  EXPECT_EQ(pyr.level0_first(), 20);
}

TEST(KeyBoundTest, BoundsEveryKeyInTheBoxAndIsTightAtACorner) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const int d = 16;
  std::vector<float> q(d), mn(d, 1e30f), mx(d, -1e30f);
  std::vector<std::vector<float>> ks(50, std::vector<float>(d));
  for (float& x : q) x = u(rng);
  for (auto& k : ks) {
    for (int c = 0; c < d; ++c) {
      k[c] = u(rng);
      mn[c] = std::min(mn[c], k[c]);
      mx[c] = std::max(mx[c], k[c]);
    }
  }
  const float bound = KeyBound(q.data(), mn.data(), mx.data(), d);
  for (const auto& k : ks) {
    float dot = 0;
    for (int c = 0; c < d; ++c) dot += q[c] * k[c];
    EXPECT_LE(dot, bound + 1e-4f);
  }
  std::vector<float> corner(d);  // the box corner q points to reaches the bound
  float dot = 0;
  for (int c = 0; c < d; ++c) dot += q[c] * (q[c] >= 0 ? mx[c] : mn[c]);
  EXPECT_NEAR(dot, bound, 1e-4f);
}

// HeadBounds (the SIMD kernel selection scores with) against a double reference of KeyBound per
// head over real pyramid nodes: odd head dims and GQA ratios 1, 3 and 4.
TEST(HeadBoundsTest, MatchesDoubleKeyBoundPerHeadOnEveryLevel) {
  struct Shape {
    int heads, kv_heads, d;
  };
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (const Shape shape : {Shape{4, 4, 7}, Shape{6, 2, 13}, Shape{12, 3, 64}, Shape{20, 5, 33}}) {
    const int width = shape.kv_heads * shape.d;
    AbstractPyramid pyr(4, shape.kv_heads, shape.d);
    std::vector<float> key(width);
    for (int t = 0; t < 4 * 19 + 3; ++t) {
      for (float& x : key) x = u(rng);
      pyr.AddKey(t, key.data());
    }
    std::vector<float> q(static_cast<size_t>(shape.heads) * shape.d);
    for (float& x : q) x = u(rng);
    const HeadBounds bounds(q, shape.heads, shape.kv_heads, shape.d);
    std::vector<float> out(shape.heads);
    const int group = shape.heads / shape.kv_heads;
    for (int level = 0; level < pyr.num_levels(); ++level) {
      for (int node = 0; node < pyr.num_nodes(level); ++node) {
        bounds.Compute(pyr.min(level, node), pyr.max(level, node), out.data());
        for (int h = 0; h < shape.heads; ++h) {
          const float* mn = pyr.min(level, node) + (h / group) * shape.d;
          const float* mx = pyr.max(level, node) + (h / group) * shape.d;
          double ref = 0.0, magnitude = 0.0;
          for (int c = 0; c < shape.d; ++c) {
            const double qc = q[h * shape.d + c];
            const double term = std::max(qc * mn[c], qc * mx[c]);
            ref += term;
            magnitude += std::abs(term);
          }
          ASSERT_NEAR(out[h], ref, 2e-6 * magnitude + 1e-6)
              << "heads " << shape.heads << "/" << shape.kv_heads << " d " << shape.d << " level " << level
              << " node " << node << " head " << h;
        }
      }
    }
  }
}

}  // namespace
}  // namespace leoam
