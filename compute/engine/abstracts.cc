#include "compute/engine/abstracts.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/simd_kernels.h"

namespace leoam {

AbstractPyramid::AbstractPyramid(int32_t page_size, int32_t num_kv_heads, int32_t head_dim)
    : page_size_(page_size), num_kv_heads_(num_kv_heads), head_dim_(head_dim) {}

int32_t AbstractPyramid::num_levels() const {
  int32_t levels = 1;
  while ((1 << (levels - 1)) < num_pages()) ++levels;
  return levels;
}

int32_t AbstractPyramid::num_nodes(int32_t level) const {
  return (num_pages() + (1 << level) - 1) >> level;
}

int32_t AbstractPyramid::end_page(int32_t level, int32_t node) const {
  return std::min((node + 1) << level, num_pages());
}

void AbstractPyramid::AddKey(int32_t position, const float* key) {
  num_tokens_ = std::max(num_tokens_, position + 1);
  Widen(position / page_size_, key, key);
}

void AbstractPyramid::AddPage(int32_t page, const float* mn, const float* mx) {
  num_tokens_ = std::max(num_tokens_, (page + 1) * page_size_);
  Widen(page, mn, mx);
}

void AbstractPyramid::Widen(int32_t page, const float* lo, const float* hi) {
  const size_t width = static_cast<size_t>(num_kv_heads_) * head_dim_;
  const int32_t levels = num_levels();
  if (levels_.empty()) levels_.resize(1);
  while (static_cast<int32_t>(levels_.size()) < levels) {
    // A new top level starts as a copy of the old top node: it covers the pages seen so far (the
    // page of this key is new, so nothing else is bounded yet).
    const Level& top = levels_.back();
    levels_.push_back(Level{std::vector<float>(top.min.begin(), top.min.begin() + width),
                            std::vector<float>(top.max.begin(), top.max.begin() + width)});
  }
  for (int32_t j = 0; j < levels; ++j) {
    Level& level = levels_[j];
    const int32_t node = page >> j;
    const size_t need = Offset(j, node) + width;
    if (level.min.size() < need) {
      level.min.resize(need, std::numeric_limits<float>::infinity());
      level.max.resize(need, -std::numeric_limits<float>::infinity());
    }
    float* mn = &level.min[Offset(j, node)];
    float* mx = &level.max[Offset(j, node)];
    for (size_t c = 0; c < width; ++c) {
      mn[c] = std::min(mn[c], lo[c]);
      mx[c] = std::max(mx[c], hi[c]);
    }
  }
}

void AbstractPyramid::ReleaseLevel0Below(int32_t end_page) {
  end_page = std::min(end_page, num_tokens_ / page_size_);  // full pages only
  // A pyramid of one level copies its level 0 into the new top level when it grows: keep it.
  if (end_page <= level0_first_ || levels_.size() < 2) return;
  const size_t drop = static_cast<size_t>(end_page - level0_first_) * num_kv_heads_ * head_dim_;
  for (std::vector<float>* v : {&levels_[0].min, &levels_[0].max}) {
    // A new vector of the rest: erase alone would keep the capacity, and the point is the memory.
    std::vector<float> rest(v->begin() + static_cast<std::ptrdiff_t>(std::min(drop, v->size())), v->end());
    v->swap(rest);
  }
  level0_first_ = end_page;
}

uint64_t AbstractPyramid::bytes() const {
  uint64_t total = 0;
  for (const Level& l : levels_) total += (l.min.size() + l.max.size()) * sizeof(float);
  return total;
}

float KeyBound(const float* q, const float* mn, const float* mx, int32_t dim) {
  // Selection scores every candidate node per query head at every decode step (quest: every page
  // of every layer), so this runs on the CPU's SIMD kernels where it has them.
  static const auto box_bound =
      kernels::cpu::SimdKernelsFor(kernels::cpu::DetectedCpuFeatures().level()).box_bound;
  if (box_bound != nullptr) return box_bound(q, mn, mx, dim);
  float s = 0.0f;
  for (int32_t c = 0; c < dim; ++c) s += std::max(q[c] * mn[c], q[c] * mx[c]);
  return s;
}

HeadBounds::HeadBounds(std::span<const float> q, int32_t num_heads, int32_t num_kv_heads, int32_t head_dim)
    : num_heads_(num_heads),
      group_(num_heads / std::max(1, num_kv_heads)),
      head_dim_(head_dim),
      q_pos_(static_cast<size_t>(num_heads) * head_dim),
      q_neg_(static_cast<size_t>(num_heads) * head_dim) {
  // Every SIMD level has the kernel (the scalar table's is plain loops).
  static const Kernel kernel =
      kernels::cpu::SimdKernelsFor(kernels::cpu::DetectedCpuFeatures().level()).box_bound_heads;
  kernel_ = kernel;
  for (size_t i = 0; i < q_pos_.size(); ++i) {
    q_pos_[i] = std::max(q[i], 0.0f);
    q_neg_[i] = std::min(q[i], 0.0f);
  }
}

}  // namespace leoam
