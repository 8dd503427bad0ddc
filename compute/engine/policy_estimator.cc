#include "compute/engine/policy_estimator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

namespace leoam {
namespace {

float Smooth(float old_value, float observed, float weight) {
  return old_value < 0.0f ? observed : old_value + weight * (observed - old_value);
}

int32_t StartLevel(float keep, int32_t max_start_level) {
  const double k = std::max(1e-3, static_cast<double>(keep));
  return std::clamp(static_cast<int32_t>(std::ceil(std::log2(1.0 / k))), 1, std::max(1, max_start_level));
}

}  // namespace

int32_t PagesForMass(std::span<const float> page_mass, float target) {
  std::vector<float> sorted(page_mass.begin(), page_mass.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const double total = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    sum += sorted[i];
    if (sum >= target * total) return static_cast<int32_t>(i + 1);
  }
  return std::max<int32_t>(1, static_cast<int32_t>(sorted.size()));
}

PolicyEstimator::PolicyEstimator(int32_t num_layers, const ReestimationOptions& options,
                                 const SelectionOptions& selection)
    : options_(options), selection_(selection), estimates_(num_layers) {}

void PolicyEstimator::Observe(int32_t layer, std::span<const float> page_mass, std::span<const float> page_score,
                              int32_t context_pages, bool covers_context) {
  if (layer < 0 || layer >= static_cast<int32_t>(estimates_.size()) || page_mass.empty() || context_pages <= 0) return;
  const double total = std::accumulate(page_mass.begin(), page_mass.end(), 0.0);
  if (!(total > 0.0)) return;
  const size_t n = page_mass.size();
  const int32_t needed = PagesForMass(page_mass, options_.mass_target);

  // The selection's share of the true mass, from its pages sorted by exact mass: the pages left out
  // are assumed to continue the decay of the lightest selected ones (per page a factor rho, from
  // the lightest quarter's mean against the next quarter; rho = 1: as heavy as the lightest).
  std::vector<float> sorted(page_mass.begin(), page_mass.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t q_all = std::max<size_t>(1, n / 4);
  const double lightest = std::accumulate(sorted.begin(), sorted.begin() + q_all, 0.0) / total / q_all;
  const double next = 2 * q_all <= n ? std::accumulate(sorted.begin() + q_all, sorted.begin() + 2 * q_all, 0.0) /
                                           total / q_all
                                     : lightest;
  const double rho =
      next > 0.0 ? std::clamp(std::pow(lightest / next, 1.0 / static_cast<double>(q_all)), 0.0, 1.0) : 1.0;
  const double unselected = std::max(0.0, static_cast<double>(context_pages) - static_cast<double>(n));
  const double outside = rho >= 1.0 - 1e-9 ? unselected * lightest
                                           : lightest * rho * (1.0 - std::pow(rho, unselected)) / (1.0 - rho);
  const double captured = 1.0 / (1.0 + outside);

  // The marginal pages: the weakest quarter by the selection's score (forced pages, +inf, left
  // out), or by mass without scores.
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i) {
    if (page_score.size() != n || !std::isinf(page_score[i])) order.push_back(i);
  }
  if (order.empty()) {
    order.resize(n);
    std::iota(order.begin(), order.end(), size_t{0});
  }
  const bool by_score = page_score.size() == n && !std::isinf(page_score[order[0]]);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return by_score ? page_score[a] < page_score[b] : page_mass[a] < page_mass[b];
  });
  const size_t quarter = std::max<size_t>(1, order.size() / 4);
  double weakest = 0.0;
  for (size_t i = 0; i < quarter; ++i) weakest += page_mass[order[i]];
  const double t = weakest / total / static_cast<double>(quarter);  // a marginal page's share of the selection
  const float tail = static_cast<float>(std::min(1.0, t * static_cast<double>(n)));
  const float marginal = static_cast<float>(captured * t * context_pages);  // its true mass, in 1/N units

  const float w = std::clamp(options_.smoothing, 0.0f, 1.0f);
  LayerEstimate& e = estimates_[layer];
  e.need = Smooth(e.need, static_cast<float>(needed) / static_cast<float>(n), w);
  e.tail = Smooth(e.tail, tail, w);
  e.marginal = Smooth(e.marginal, marginal, w);
  e.keep = Smooth(e.keep, std::min(1.0f, static_cast<float>(needed) / static_cast<float>(context_pages)), w);
  if (covers_context) {
    const double threshold = selection_.desert_mass_fraction / static_cast<double>(context_pages) * total;
    const auto deserts = std::count_if(page_mass.begin(), page_mass.end(), [&](float m) { return m < threshold; });
    e.desert_rate = Smooth(e.desert_rate, static_cast<float>(deserts) / static_cast<float>(n), w);
  }
  ++e.observations;
  e.fresh = true;
}

int32_t PolicyEstimator::Update(std::vector<LayerPolicy>& policies, int32_t dense_allowance) {
  const int32_t layers = static_cast<int32_t>(std::min(policies.size(), estimates_.size()));
  const int32_t warmup = std::max(1, options_.warmup);
  const float max_scale = selection_.max_budget_scale;
  const float min_scale = selection_.min_budget_scale;
  int32_t changed = 0;
  int32_t dense = static_cast<int32_t>(
      std::count_if(policies.begin(), policies.begin() + layers, [](const LayerPolicy& p) { return p.dense; }));

  // Switches first: they change which layers share the sparse budget below.
  for (int32_t l = 0; l < layers; ++l) {
    LayerPolicy& p = policies[l];
    LayerEstimate& e = estimates_[l];
    if (e.observations < warmup) continue;
    if (p.dense && e.desert_rate >= 0.0f &&
        e.desert_rate >= selection_.dense_below_desert_rate + options_.hysteresis) {
      p.dense = false;
      p.desert_rate = e.desert_rate;
      p.budget_scale = 1.0f;
      p.start_level = StartLevel(e.keep, selection_.max_start_level);
      e = LayerEstimate{};
      --dense;
      ++dense_to_sparse_;
      ++changed;
    } else if (!p.dense && dense < dense_allowance && e.need >= options_.dense_need &&
               e.tail >= options_.dense_tail && e.marginal <= options_.dense_marginal) {
      p.dense = true;
      e = LayerEstimate{};
      ++dense;
      ++sparse_to_dense_;
      ++changed;
    }
  }

  // Budget moves among the sparse layers; their mean scale stays 1 (the total is kept).
  std::vector<int32_t> sparse;
  for (int32_t l = 0; l < layers; ++l) {
    if (!policies[l].dense) sparse.push_back(l);
  }
  if (sparse.empty()) {
    for (LayerEstimate& e : estimates_) e.fresh = false;
    return changed;
  }
  std::vector<float> scale(layers, 1.0f);
  double marginal_sum = 0.0;
  int32_t observed = 0;
  for (int32_t l : sparse) {
    scale[l] = policies[l].budget_scale;
    if (estimates_[l].observations >= warmup && estimates_[l].marginal >= 0.0f) {
      marginal_sum += estimates_[l].marginal;
      ++observed;
    }
  }
  const double mean_marginal = observed > 0 ? marginal_sum / observed : 0.0;
  for (int32_t l : sparse) {
    const LayerEstimate& e = estimates_[l];
    if (!options_.move_budget || !e.fresh || e.observations < warmup || e.marginal < 0.0f || !(mean_marginal > 0.0)) {
      continue;
    }
    const double step = std::pow(std::max(1e-3, e.marginal / mean_marginal), options_.gain);
    const double max_step = std::max(1.0f, options_.max_step);
    const float moved = static_cast<float>(scale[l] * std::clamp(step, 1.0 / max_step, max_step));
    // Not below the pages that hold mass_target (at floor_fill of the budget) in one update.
    const float floor = std::min(scale[l], e.need * scale[l] / std::max(0.05f, options_.floor_fill));
    scale[l] = std::max(moved, floor);
  }
  for (int iter = 0; iter < 8; ++iter) {  // rescale to mean 1, clamp; a few rounds settle the clamped ones
    double sum = 0.0;
    for (int32_t l : sparse) sum += scale[l];
    const double factor = static_cast<double>(sparse.size()) / std::max(1e-6, sum);
    for (int32_t l : sparse) scale[l] = std::clamp(static_cast<float>(scale[l] * factor), min_scale, max_scale);
  }
  for (int32_t l : sparse) {
    LayerPolicy& p = policies[l];
    bool moved = std::abs(scale[l] - p.budget_scale) > 1e-3f * std::max(1.0f, p.budget_scale);
    p.budget_scale = scale[l];
    const LayerEstimate& e = estimates_[l];
    if (options_.adjust_start_level && e.observations >= warmup && e.keep >= 0.0f) {
      const int32_t level = StartLevel(e.keep, selection_.max_start_level);
      moved = moved || level != p.start_level;
      p.start_level = level;
    }
    if (moved) ++changed;
  }
  for (LayerEstimate& e : estimates_) e.fresh = false;
  return changed;
}

}  // namespace leoam
