#include "compute/engine/selection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/simd_kernels.h"

namespace leoam {
namespace {

// The SIMD kernels of this CPU (softmax pieces of the node scores).
const kernels::cpu::SimdKernels& Simd() {
  static const kernels::cpu::SimdKernels& simd =
      kernels::cpu::SimdKernelsFor(kernels::cpu::DetectedCpuFeatures().level());
  return simd;
}

// Scores boxes (see selection.h): the mean over query heads of the box's share of a softmax of
// that head's bounds over the boxes. One HeadBounds call per box (every head at once); the bounds
// are kept head-major so that each head's softmax runs on contiguous SIMD loops.
//   mins[i], maxs[i]: box i, [num_kv_heads, head_dim] each
std::vector<float> ScoreBoxes(std::span<const float* const> mins, std::span<const float* const> maxs,
                              const HeadBounds& bounds_of, SelectionCounters* counters) {
  const int32_t num_heads = bounds_of.num_heads();
  const size_t n = mins.size();
  std::vector<float> score(n, 0.0f);
  if (counters != nullptr) counters->abstracts_read += static_cast<int64_t>(n);
  if (n == 0) return score;
  std::vector<float> bounds(n * num_heads);  // [head, node]
  std::vector<float> node_bounds(num_heads);
  for (size_t i = 0; i < n; ++i) {
    bounds_of.Compute(mins[i], maxs[i], node_bounds.data());
    for (int32_t h = 0; h < num_heads; ++h) bounds[h * n + i] = node_bounds[h];
  }
  const kernels::cpu::SimdKernels& simd = Simd();
  for (int32_t h = 0; h < num_heads; ++h) {
    float* b = bounds.data() + h * n;
    const float best = simd.max(b, static_cast<int64_t>(n));
    const float sum = simd.exp_sub_sum(b, static_cast<int64_t>(n), best);  // >= 1: the best node gives exp(0)
    simd.axpy(1.0f / (sum * static_cast<float>(num_heads)), b, score.data(), static_cast<int64_t>(n));
  }
  return score;
}

// ScoreBoxes over `nodes` of `level` of the pyramid (held there).
std::vector<float> ScoreNodes(const AbstractPyramid& pyr, int32_t level, const std::vector<int32_t>& nodes,
                              const HeadBounds& bounds_of, SelectionCounters* counters) {
  std::vector<const float*> mins(nodes.size()), maxs(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    mins[i] = pyr.min(level, nodes[i]);
    maxs[i] = pyr.max(level, nodes[i]);
  }
  return ScoreBoxes(mins, maxs, bounds_of, counters);
}

// The first min(limit, size) indices of `score` by decreasing score, ties by index: the prefix a
// stable sort by decreasing score would give, without ordering the rest.
std::vector<int32_t> TopByScore(const std::vector<float>& score, size_t limit) {
  std::vector<int32_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min(limit, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return score[a] != score[b] ? score[a] > score[b] : a < b; });
  order.resize(k);
  return order;
}

}  // namespace

std::string_view SelectionModeName(SelectionMode mode) {
  switch (mode) {
    case SelectionMode::kDense: return "dense";
    case SelectionMode::kQuest: return "quest";
    case SelectionMode::kLeoam: return "leoam";
    case SelectionMode::kOffloadAll: return "offload-all";
  }
  return "unknown";
}

absl::StatusOr<SelectionMode> ParseSelectionMode(std::string_view name) {
  if (name == "dense") return SelectionMode::kDense;
  if (name == "quest") return SelectionMode::kQuest;
  if (name == "leoam") return SelectionMode::kLeoam;
  if (name == "offload-all") return SelectionMode::kOffloadAll;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", absl::string_view(name.data(), name.size()), "' (dense, offload-all, quest or leoam)"));
}

absl::StatusOr<std::vector<int32_t>> SelectPagesFrom(SelectionMode mode, const AbstractPyramid& pyr,
                                                     std::span<const float> q, int32_t num_heads,
                                                     int32_t budget_pages, const LayerPolicy& policy,
                                                     const SelectionOptions& options, SelectionCounters* counters,
                                                     std::span<const uint8_t> preferred,
                                                     const Level0Source& level0) {
  const int32_t num_pages = pyr.num_pages();
  std::vector<int32_t> all(num_pages);
  std::iota(all.begin(), all.end(), 0);
  const int32_t sink = std::max(0, options.sink_pages);
  const int32_t local = std::max(1, options.local_pages);
  if (mode == SelectionMode::kDense || mode == SelectionMode::kOffloadAll || (mode == SelectionMode::kLeoam && policy.dense) || budget_pages >= num_pages ||
      sink + local >= num_pages) {
    return all;
  }
  // Forced pages: [0, sink) and [num_pages - local, num_pages).
  const int32_t local_begin = num_pages - local;
  auto forced = [&](int32_t page) { return page < sink || page >= local_begin; };
  const int32_t remaining = std::max(0, budget_pages - sink - local);
  const HeadBounds bounds_of(q, num_heads, pyr.num_kv_heads(), pyr.head_dim());

  std::vector<int32_t> candidates;  // level-0 pages to choose from
  if (mode == SelectionMode::kQuest) {
    for (int32_t p = sink; p < local_begin; ++p) candidates.push_back(p);
  } else {
    // IAKM: start at a coarse level; keep the best non-desert nodes, at most refine_factor x the
    // remaining page budget of them (each kept node should yield at least one page), refine them
    // into children; repeat down to level 1. Abstract reads per level stay O(budget), not O(pages).
    int32_t level = std::clamp(policy.start_level, 0, pyr.num_levels() - 1);
    std::vector<int32_t> nodes(pyr.num_nodes(level));
    std::iota(nodes.begin(), nodes.end(), 0);
    const double keep_pages = std::max(1.0, std::ceil(static_cast<double>(options.refine_factor) * remaining));
    for (; level > 0; --level) {
      // Nodes or pages' worth of nodes (refine_by_pages: a node of this level covers 2^level pages).
      const size_t keep_limit =
          options.refine_by_pages ? static_cast<size_t>(std::ceil(std::ldexp(keep_pages, -level)))
                                  : static_cast<size_t>(keep_pages);
      // Nodes made only of forced pages need no score.
      std::vector<int32_t> open;
      for (int32_t node : nodes) {
        const int32_t first = std::max(pyr.first_page(level, node), sink);
        const int32_t end = std::min(pyr.end_page(level, node), local_begin);
        if (first < end) open.push_back(node);
      }
      const std::vector<float> score = ScoreNodes(pyr, level, open, bounds_of, counters);
      std::vector<int32_t> next;
      const std::vector<int32_t> order = TopByScore(score, keep_limit);
      const float desert_below = order.empty() ? 0.0f : score[order[0]] * std::exp(-options.desert_logit_gap);
      size_t kept = 0;
      for (int32_t i : order) {
        if (score[i] < desert_below) break;  // a desert: it and everything after it
        if (kept++ == keep_limit) break;
        for (int32_t child = 2 * open[i]; child <= 2 * open[i] + 1 && child < pyr.num_nodes(level - 1); ++child) {
          next.push_back(child);
        }
      }
      nodes = std::move(next);
    }
    for (int32_t p : nodes) {
      if (!forced(p)) candidates.push_back(p);
    }
  }

  std::vector<int32_t> chosen;
  for (int32_t p = 0; p < num_pages; ++p) {
    if (forced(p)) chosen.push_back(p);
  }
  if (!candidates.empty() && remaining > 0) {
    // Level-0 boxes: held by the pyramid, or (released pages, candidates only) from the source.
    std::vector<const float*> mins(candidates.size()), maxs(candidates.size());
    std::vector<int32_t> missing;       // pages
    std::vector<size_t> missing_index;  // their index in candidates
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i] >= pyr.level0_first()) {
        mins[i] = pyr.min(0, candidates[i]);
        maxs[i] = pyr.max(0, candidates[i]);
      } else {
        missing.push_back(candidates[i]);
        missing_index.push_back(i);
      }
    }
    std::vector<float> fetched_min, fetched_max;
    if (!missing.empty()) {
      if (!level0) {
        return absl::FailedPreconditionError(
            absl::StrCat(missing.size(), " candidate pages have no level-0 abstract here and there is no source"));
      }
      RETURN_IF_ERROR(level0(missing, &fetched_min, &fetched_max));
      const size_t width = static_cast<size_t>(pyr.num_kv_heads()) * pyr.head_dim();
      if (fetched_min.size() != missing.size() * width || fetched_max.size() != missing.size() * width) {
        return absl::InternalError("level-0 source returned the wrong number of abstracts");
      }
      if (counters != nullptr) counters->abstracts_from_store += static_cast<int64_t>(missing.size());
      for (size_t k = 0; k < missing.size(); ++k) {
        mins[missing_index[k]] = fetched_min.data() + k * width;
        maxs[missing_index[k]] = fetched_max.data() + k * width;
      }
    }
    std::vector<float> score = ScoreBoxes(mins, maxs, bounds_of, counters);
    if (options.resident_logit_margin > 0.0f && !preferred.empty()) {
      // Hysteresis: a preferred page (on the device) is only displaced by one that beats it by the margin.
      const float keep = std::exp(options.resident_logit_margin);
      for (size_t i = 0; i < candidates.size(); ++i) {
        const size_t p = static_cast<size_t>(candidates[i]);
        if (p < preferred.size() && preferred[p] != 0) score[i] *= keep;
      }
    }
    for (int32_t i : TopByScore(score, static_cast<size_t>(remaining))) chosen.push_back(candidates[i]);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

std::vector<int32_t> SelectPages(SelectionMode mode, const AbstractPyramid& pyr, std::span<const float> q,
                                 int32_t num_heads, int32_t budget_pages, const LayerPolicy& policy,
                                 const SelectionOptions& options, SelectionCounters* counters,
                                 std::span<const uint8_t> preferred) {
  absl::StatusOr<std::vector<int32_t>> pages =
      SelectPagesFrom(mode, pyr, q, num_heads, budget_pages, policy, options, counters, preferred, nullptr);
  if (pages.ok()) return *std::move(pages);
  // Without a source only a released level 0 fails (SelectPages is for pyramids that hold theirs):
  // every page, which attends exactly.
  std::vector<int32_t> all(pyr.num_pages());
  std::iota(all.begin(), all.end(), 0);
  return all;
}

std::vector<float> ScorePages(const AbstractPyramid& pyramid, const std::vector<int32_t>& pages,
                              std::span<const float> q, int32_t num_heads) {
  return ScoreNodes(pyramid, 0, pages, HeadBounds(q, num_heads, pyramid.num_kv_heads(), pyramid.head_dim()), nullptr);
}

std::vector<LayerPolicy> PoliciesFromProbe(const std::vector<std::vector<float>>& mass,
                                           const SelectionOptions& options) {
  std::vector<LayerPolicy> policies(mass.size());
  double sparse_keep_sum = 0.0;
  int sparse_layers = 0;
  for (size_t l = 0; l < mass.size(); ++l) {
    const std::vector<float>& m = mass[l];
    LayerPolicy& p = policies[l];
    if (m.empty()) continue;
    const float threshold = options.desert_mass_fraction / static_cast<float>(m.size());
    const auto deserts = std::count_if(m.begin(), m.end(), [&](float x) { return x < threshold; });
    p.desert_rate = static_cast<float>(deserts) / static_cast<float>(m.size());
    p.dense = p.desert_rate < options.dense_below_desert_rate;
    // Deserts of rate d come in runs of about 1 / (1 - d) pages: start where a node is about that big.
    const double keep = std::max(1e-3, 1.0 - p.desert_rate);
    p.start_level = std::clamp(static_cast<int32_t>(std::ceil(std::log2(1.0 / keep))), 1, options.max_start_level);
    if (!p.dense) {
      sparse_keep_sum += keep;
      ++sparse_layers;
    }
  }
  if (sparse_layers > 0) {
    const double mean_keep = sparse_keep_sum / sparse_layers;
    for (LayerPolicy& p : policies) {
      if (p.dense || p.desert_rate < 0) continue;
      p.budget_scale = std::clamp(static_cast<float>((1.0 - p.desert_rate) / mean_keep), options.min_budget_scale,
                                  options.max_budget_scale);
    }
  }
  return policies;
}

}  // namespace leoam
