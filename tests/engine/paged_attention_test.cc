// Backend::PagedAttention (CPU) against a scalar double-precision reference, and against the
// dense Attention op when every page is selected.
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace leoam::kernels {
namespace {

struct Case {
  int heads, kv_heads, dim, page_size, slots;
  std::vector<int32_t> ids;
  int last_tokens;
};

// out[h] = softmax_j(scale q_h . k_j) v_j over the tokens of the selected pages, in double.
std::vector<float> Reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, float scale) {
  const int group = c.heads / c.kv_heads;
  const size_t row = static_cast<size_t>(c.kv_heads) * c.dim;
  std::vector<float> out(static_cast<size_t>(c.heads) * c.dim);
  for (int h = 0; h < c.heads; ++h) {
    const int kvh = h / group;
    std::vector<double> s;
    std::vector<const float*> vs;
    for (size_t i = 0; i < c.ids.size(); ++i) {
      const int len = i + 1 == c.ids.size() ? c.last_tokens : c.page_size;
      for (int t = 0; t < len; ++t) {
        const size_t base = (static_cast<size_t>(c.ids[i]) * c.page_size + t) * row + kvh * c.dim;
        double dot = 0;
        for (int d = 0; d < c.dim; ++d) dot += double{q[h * c.dim + d]} * k[base + d];
        s.push_back(dot * scale);
        vs.push_back(&v[base]);
      }
    }
    double m = -1e300, sum = 0;
    for (double x : s) m = std::max(m, x);
    for (double& x : s) sum += (x = std::exp(x - m));
    for (int d = 0; d < c.dim; ++d) {
      double acc = 0;
      for (size_t j = 0; j < s.size(); ++j) acc += s[j] * vs[j][d];
      out[h * c.dim + d] = static_cast<float>(acc / sum);
    }
  }
  return out;
}

void Check(const Case& c, int threads, cpu::SimdLevel simd) {
  auto backend = CpuBackend::Create({.num_threads = threads, .max_simd = simd});
  ASSERT_TRUE(backend.ok()) << backend.status();
  std::mt19937 rng(1234 + c.heads * 7 + c.slots);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const size_t pool = static_cast<size_t>(c.slots) * c.page_size * c.kv_heads * c.dim;
  std::vector<float> q(static_cast<size_t>(c.heads) * c.dim), k(pool), v(pool);
  for (float& x : q) x = 2.0f * n(rng);
  for (float& x : k) x = n(rng);
  for (float& x : v) x = n(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  PagedAttentionParams p{c.heads, c.kv_heads, c.dim, c.page_size, static_cast<int32_t>(c.ids.size()), c.last_tokens,
                         scale};
  std::vector<float> ws(PagedAttentionWorkspaceBytes(p, p.num_pages, threads) / sizeof(float));
  std::vector<float> out(q.size(), -7.0f);
  ASSERT_TRUE((*backend)->PagedAttention(p, q.data(), k.data(), v.data(), c.ids.data(), out.data(), ws.data()).ok());
  const std::vector<float> ref = Reference(c, q, k, v, scale);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-5f) << "element " << i;
}

TEST(PagedAttentionTest, MatchesScalarReferenceGqaPartialLastPage) {
  Case c{8, 2, 64, 16, 40, {0, 3, 7, 8, 20, 39}, 5};
  for (cpu::SimdLevel level : {cpu::SimdLevel::kScalar, cpu::SimdLevel::kAvx2, cpu::SimdLevel::kAvx512}) {
    SCOPED_TRACE(cpu::SimdLevelName(level));
    Check(c, 1, level);
    Check(c, 2, level);
  }
}

TEST(PagedAttentionTest, SinglePageSingleToken) { Check({4, 4, 32, 16, 3, {2}, 1}, 1, cpu::SimdLevel::kAvx512); }

TEST(PagedAttentionTest, ManyPagesUnorderedSlotsMultiQueryHeads) {
  Case c{12, 3, 128, 8, 300, {}, 8};
  for (int i = 0; i < 200; ++i) c.ids.push_back((i * 37 + 11) % 300);  // distinct slots, scattered
  Check(c, 2, cpu::SimdLevel::kAvx512);
}

// Every page selected, in order, equals the dense causal kernel at the last position.
TEST(PagedAttentionTest, AllPagesEqualsDenseAttention) {
  auto backend = CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok());
  const int heads = 6, kv_heads = 2, dim = 32, ps = 16, tokens = 16 * 9 + 3;
  const int pages = (tokens + ps - 1) / ps;
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> q(heads * dim), k(static_cast<size_t>(pages) * ps * kv_heads * dim),
      v(k.size());
  for (float& x : q) x = n(rng);
  for (float& x : k) x = n(rng);
  for (float& x : v) x = n(rng);
  std::vector<int32_t> ids(pages);
  for (int i = 0; i < pages; ++i) ids[i] = i;
  const float scale = 0.2f;
  PagedAttentionParams p{heads, kv_heads, dim, ps, pages, tokens - (pages - 1) * ps, scale};
  std::vector<float> ws(PagedAttentionWorkspaceBytes(p, pages, 1) / sizeof(float));
  std::vector<float> paged(q.size()), dense(q.size());
  ASSERT_TRUE((*backend)->PagedAttention(p, q.data(), k.data(), v.data(), ids.data(), paged.data(), ws.data()).ok());
  AttentionParams a{1, heads, kv_heads, dim, tokens - 1, scale};
  std::vector<char> dws(AttentionWorkspaceBytes(a, 1));
  ASSERT_TRUE((*backend)->Attention(a, q.data(), k.data(), v.data(), dense.data(), dws.data()).ok());
  for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(paged[i], dense[i], 1e-5f);
}

TEST(PagedAttentionTest, RejectsBadParams) {
  auto backend = CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok());
  std::vector<float> buf(1024);
  int32_t id = 0;
  PagedAttentionParams p{4, 3, 8, 4, 1, 1, 1.0f};  // 4 heads over 3 kv heads: not a GQA grouping
  EXPECT_FALSE((*backend)->PagedAttention(p, buf.data(), buf.data(), buf.data(), &id, buf.data(), buf.data()).ok());
  p = {4, 2, 8, 4, 1, 5, 1.0f};  // last page longer than a page
  EXPECT_FALSE((*backend)->PagedAttention(p, buf.data(), buf.data(), buf.data(), &id, buf.data(), buf.data()).ok());
}

}  // namespace
}  // namespace leoam::kernels
