// AbstractPyramid: every node bounds exactly the keys of its pages (brute force), at every level
// and while pages fill; KeyBound is an upper bound of q.k.
#include "compute/engine/abstracts.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

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
    for (int level = 0; level < pyr.num_levels(); ++level) {
      for (int node = 0; node < pyr.num_nodes(level); ++node) {
        const int first_tok = pyr.first_page(level, node) * ps;
        const int end_tok = std::min(pyr.end_page(level, node) * ps, tokens);
        for (int c = 0; c < width; ++c) {
          float mn = 1e30f, mx = -1e30f;
          for (int x = first_tok; x < end_tok; ++x) {
            mn = std::min(mn, keys[x * width + c]);
            mx = std::max(mx, keys[x * width + c]);
          }
          ASSERT_EQ(pyr.min(level, node)[c], mn) << "level " << level << " node " << node << " tokens " << tokens;
          ASSERT_EQ(pyr.max(level, node)[c], mx) << "level " << level << " node " << node << " tokens " << tokens;
        }
      }
    }
  }
  EXPECT_GT(pyr.bytes(), 0u);
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

}  // namespace
}  // namespace leoam
