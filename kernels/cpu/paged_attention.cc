#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace leoam::kernels {

size_t PagedAttentionWorkspaceBytes(const PagedAttentionParams& params, int32_t max_pages, int32_t /*num_threads*/) {
  return cpu::PagedAttentionWorkspaceFloats(params, max_pages) * sizeof(float);
}

namespace cpu {

size_t PagedAttentionWorkspaceFloats(const PagedAttentionParams& params, int32_t max_pages) {
  return static_cast<size_t>(std::max(params.num_heads, 0)) * std::max(max_pages, 0) * std::max(params.page_size, 0);
}

absl::Status PagedAttention(const CpuContext& ctx, const PagedAttentionParams& p, const float* q,
                            const float* k_pages, const float* v_pages, const int32_t* page_ids, float* out,
                            float* workspace) {
  if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0 || p.page_size <= 0 || p.num_pages <= 0 ||
      p.num_heads % p.num_kv_heads != 0 || p.last_page_tokens < 1 || p.last_page_tokens > p.page_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PagedAttention: bad params (heads %d, kv heads %d, head_dim %d, page_size %d, pages %d, last page %d)",
        p.num_heads, p.num_kv_heads, p.head_dim, p.page_size, p.num_pages, p.last_page_tokens));
  }
  const int64_t d = p.head_dim;
  const int64_t row_stride = static_cast<int64_t>(p.num_kv_heads) * d;  // floats between tokens of a page
  const int64_t page_floats = row_stride * p.page_size;
  const int64_t tokens = static_cast<int64_t>(p.num_pages - 1) * p.page_size + p.last_page_tokens;
  const int32_t group = p.num_heads / p.num_kv_heads;
  const SimdKernels& simd = *ctx.simd;

  auto head = [&](int64_t h, int /*thread*/) {
    const int64_t kvh = h / group;
    const float* qh = q + h * d;
    float* scores = workspace + h * static_cast<int64_t>(p.num_pages) * p.page_size;
    for (int32_t i = 0; i < p.num_pages; ++i) {
      const int64_t len = i + 1 == p.num_pages ? p.last_page_tokens : p.page_size;
      const float* k = k_pages + page_ids[i] * page_floats + kvh * d;
      simd.attn_scores(qh, k, row_stride, len, d, p.scale, scores + static_cast<int64_t>(i) * p.page_size);
    }
    const float m = simd.max(scores, tokens);
    const float sum = simd.exp_sub_sum(scores, tokens, m);
    float* acc = out + h * d;
    std::memset(acc, 0, d * sizeof(float));
    for (int32_t i = 0; i < p.num_pages; ++i) {
      const int64_t len = i + 1 == p.num_pages ? p.last_page_tokens : p.page_size;
      const float* v = v_pages + page_ids[i] * page_floats + kvh * d;
      simd.attn_weighted_sum(scores + static_cast<int64_t>(i) * p.page_size, v, row_stride, len, d, acc);
    }
    simd.scale(1.0f / sum, acc, d);
  };
  // Each head reads its KV head's K and V rows once: split only when that is worth waking threads.
  const int64_t bytes_per_head = tokens * d * 2 * static_cast<int64_t>(sizeof(float));
  const int64_t max_threads = std::max<int64_t>(1, bytes_per_head * p.num_heads / kMinBytesPerThread);
  RunDynamic(ctx, p.num_heads, max_threads, head);
  return absl::OkStatus();
}

}  // namespace cpu
}  // namespace leoam::kernels
