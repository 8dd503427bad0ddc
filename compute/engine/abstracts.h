// AbstractPyramid: the key abstracts of one layer of one sequence (LeoAM "LKA", Quest's bounding
// box). Level 0 holds, per page and KV head, the per-channel min and max of the page's post-RoPE
// keys; node i of level j covers pages [i * 2^j, (i + 1) * 2^j) and holds the min of their mins and
// the max of their maxes. Nodes are updated as keys arrive, so a partially filled page (and the
// nodes above it) always bound exactly the keys stored so far.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace leoam {

class AbstractPyramid {
 public:
  AbstractPyramid(int32_t page_size, int32_t num_kv_heads, int32_t head_dim);

  // Adds the key of token `position` (positions arrive in order).   key: [num_kv_heads, head_dim]
  void AddKey(int32_t position, const float* key);
  // Adds page `page` whole from its level-0 bounds (a page restored from the kvstore: its keys are
  // not here). Pages arrive in order; the pyramid then covers (page + 1) * page_size tokens.
  //   mn, mx: [num_kv_heads, head_dim]
  void AddPage(int32_t page, const float* mn, const float* mx);

  int32_t page_size() const { return page_size_; }
  int32_t num_kv_heads() const { return num_kv_heads_; }
  int32_t head_dim() const { return head_dim_; }
  int32_t num_tokens() const { return num_tokens_; }
  int32_t num_pages() const { return (num_tokens_ + page_size_ - 1) / page_size_; }
  // Levels in use: the top level has a single node covering every page.
  int32_t num_levels() const;
  // Nodes of `level` over the current pages.
  int32_t num_nodes(int32_t level) const;
  // Pages covered by node `node` of `level`: [first, last).
  int32_t first_page(int32_t level, int32_t node) const { return node << level; }
  int32_t end_page(int32_t level, int32_t node) const;

  // [num_kv_heads, head_dim] each. Level 0 only for pages >= level0_first() (see ReleaseLevel0Below).
  const float* min(int32_t level, int32_t node) const { return &levels_[level].min[Offset(level, node)]; }
  const float* max(int32_t level, int32_t node) const { return &levels_[level].max[Offset(level, node)]; }

  // Bytes of the abstracts held, all levels (min and max, fp32).
  uint64_t bytes() const;

  // Frees the level-0 abstracts of pages [level0_first(), end_page) — full pages whose abstracts the
  // KV store holds (PagedKvOptions::level0_in_store): the levels above stay, and selection reads
  // those pages' level 0 back from the store for candidate regions only. Their keys must not be
  // added again.
  void ReleaseLevel0Below(int32_t end_page);
  // First page whose level-0 abstract is held here (0 unless released).
  int32_t level0_first() const { return level0_first_; }

 private:
  // Widens level-0 node `page` and every node above it to include [mn, mx].
  void Widen(int32_t page, const float* mn, const float* mx);
  size_t Offset(int32_t level, int32_t node) const {
    return static_cast<size_t>(level == 0 ? node - level0_first_ : node) * num_kv_heads_ * head_dim_;
  }
  struct Level {
    std::vector<float> min, max;  // [nodes, num_kv_heads, head_dim]
  };
  int32_t page_size_;
  int32_t num_kv_heads_;
  int32_t head_dim_;
  int32_t num_tokens_ = 0;
  int32_t level0_first_ = 0;  // levels_[0] holds pages [level0_first_, num_pages())
  std::vector<Level> levels_;
};

// Upper bound of q . k over the keys bounded by [mn, mx]: sum_c max(q_c * mn_c, q_c * mx_c).
float KeyBound(const float* q, const float* mn, const float* mx, int32_t dim);

// One query prepared for scoring many abstract nodes: the KeyBound of every query head against its
// KV head's box (GQA: head h reads KV head h / (num_heads / num_kv_heads)) in one call per node.
// The query is split by sign once (max(q, 0) pairs with the box max, min(q, 0) with the box min),
// so a node costs two FMAs per channel and head on the SIMD kernels (box_bound_heads), equal to
// KeyBound per head up to float rounding.
class HeadBounds {
 public:
  // q: [num_heads, head_dim] (already scaled); num_heads a multiple of num_kv_heads.
  HeadBounds(std::span<const float> q, int32_t num_heads, int32_t num_kv_heads, int32_t head_dim);
  int32_t num_heads() const { return num_heads_; }
  // out[h] for h < num_heads.   mn, mx: a node's [num_kv_heads, head_dim] (AbstractPyramid::min/max)
  void Compute(const float* mn, const float* mx, float* out) const {
    kernel_(q_pos_.data(), q_neg_.data(), num_heads_, group_, mn, mx, head_dim_, out);
  }

 private:
  using Kernel = void (*)(const float*, const float*, int32_t, int32_t, const float*, const float*, int64_t, float*);
  int32_t num_heads_, group_, head_dim_;
  std::vector<float> q_pos_, q_neg_;  // [num_heads, head_dim]
  Kernel kernel_;
};

}  // namespace leoam
