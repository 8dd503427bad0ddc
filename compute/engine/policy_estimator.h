// PolicyEstimator: online re-estimation of leoam's per-layer policies during decode (DESIGN.md §4:
// "re-estimate online from the exact attention over the selected pages").
//
// The prefill probe (PoliciesFromProbe) fixes each layer's budget share, start level and dense flag
// from the prompt's last queries. Attention drifts while decoding, so every `interval` decode steps
// per layer the engine computes, from the current query and the keys of the pages it selected, the
// exact attention mass of each selected page (normalized over the selection: the pages outside it
// are not read, that is the point) and hands it to Observe(). Per layer the estimator keeps
// exponential moving averages of
//   need     - pages holding `mass_target` (95%) of the selection's mass / pages selected (how
//              concentrated the mass is within the selection);
//   tail     - exact mass on the weakest quarter of the selected pages / its uniform share 0.25:
//              1 when the selection is flat, 0 when its weakest pages carry nothing. "Weakest" is
//              by the selection's own ranking (the page scores from the abstracts, forced sink and
//              local pages left out) when the caller passes it: those are the pages a smaller budget
//              drops and a larger one's next pages resemble, bounds being loose; else by exact mass;
//   marginal - the estimated true attention mass of a marginal page (one of the weakest quarter,
//              as ranked for `tail`), in units of the uniform share 1/context_pages: what a page
//              more or less is worth to this layer. It is the page's share of the selection times
//              the selection's share of the true mass, which is not observed: the pages left out
//              are assumed to continue the decay of the lightest selected pages (per page a factor
//              rho, from the lightest quarter's mean against the next quarter by exact mass), so
//              the selection holds 1 / (1 + mass left out). Flat attention gives ~1 (rho = 1, the
//              selection holds pages/context of the mass), a layer whose weakest pages hold nothing
//              ~0, a layer whose low-ranked pages still hold heavy mass (loose bounds) > 1;
//   keep     - pages holding mass_target of the mass / context pages (a floor of the share of pages
//              that matter); sets the start level like the probe's 1 - desert rate;
//   desert_rate - for selections that cover the whole context (dense layers): the probe's desert
//              rate (pages below desert_mass_fraction of the uniform share), exact there.
// Update() then
//   - moves budget between sparse layers towards equal marginal value (water-filling on captured
//     mass): for each layer observed since the last update, scale_l *= clamp((marginal_l /
//     mean marginal)^gain, 1 / max_step, max_step) (one step per observation), but no layer is cut below
//     the pages holding its mass_target at floor_fill of its budget in one update; then all are
//     rescaled so their mean stays 1 (the total over layers is kept, as in leoam-eq) and clamped to
//     [min_budget_scale, max_budget_scale];
//   - sets each sparse layer's start level to ceil(log2(1 / keep));
//   - makes a dense layer sparse when its smoothed desert rate reaches dense_below_desert_rate plus
//     a hysteresis margin (the probe's rule, re-measured);
//   - makes a sparse layer dense when its attention looks flat over the whole context (need >=
//     dense_need, tail >= dense_tail, marginal <= dense_marginal: the probe's "flat layers run
//     dense"), if the caller's dense allowance (equal_total_budget: what the total pays for)
//     permits another dense layer.
// A layer that switched restarts its averages (warm-up), so it cannot flip back on stale evidence.
// The estimator is pure bookkeeping (no engine state), so the rule is testable on constructed masses.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "compute/engine/selection.h"

namespace leoam {

struct ReestimationOptions {
  // Off (default): policies stay as the prefill probe set them (the ablation; today's behaviour).
  bool enabled = false;
  // Decode steps between two observations of the same sparse layer. Default 8.
  int32_t interval = 8;
  // ... of a dense layer (whose observation reads every key of the layer: at 4K tokens ~3 ms on
  // the CPU backend, so less often). Default 32.
  int32_t dense_interval = 32;
  // Weight of a new observation in the moving averages (1: only the latest counts). Default 0.3.
  float smoothing = 0.3f;
  // Observations of a layer before its policy is changed (after a switch, again). Default 2.
  int32_t warmup = 2;
  // Share of the selection's mass that "pages needed" counts up to. Default 0.95.
  float mass_target = 0.95f;
  // Exponent of the multiplicative budget step ((marginal / mean marginal)^gain, per observation)
  // and its largest factor either way. Defaults 0.5 and 1.25.
  float gain = 0.5f;
  float max_step = 1.25f;
  // One update never cuts a layer's budget below the pages holding mass_target / floor_fill.
  // Default 0.9.
  float floor_fill = 0.9f;
  // A dense layer turns sparse at a desert rate >= dense_below_desert_rate + this. Default 0.05.
  float hysteresis = 0.05f;
  // A sparse layer turns dense (within the allowance) when need >= dense_need, tail >= dense_tail
  // and marginal <= dense_marginal. Defaults 0.95, 0.6 and 1.5.
  float dense_need = 0.95f;
  float dense_tail = 0.6f;
  float dense_marginal = 1.5f;
  // Re-derive sparse layers' start levels from `keep`. Default true.
  bool adjust_start_level = true;
  // Move budget between sparse layers. Default true.
  bool move_budget = true;
};

// One layer's smoothed evidence (-1: not observed yet).
struct LayerEstimate {
  int32_t observations = 0;  // since the start or the layer's last switch
  bool fresh = false;        // observed since the last Update
  float need = -1.0f;
  float tail = -1.0f;
  float marginal = -1.0f;
  float keep = -1.0f;
  float desert_rate = -1.0f;  // only from selections that covered the whole context
};

class PolicyEstimator {
 public:
  PolicyEstimator(int32_t num_layers, const ReestimationOptions& options, const SelectionOptions& selection);

  // Records one observation of `layer`: page_mass[i] is the exact attention mass (mean over query
  // heads) of the i-th selected page, normalized over the selection; page_score[i] (empty: rank by
  // mass) the selection's score of that page, +infinity for pages kept regardless (sink, local);
  // context_pages is the number of pages of the layer's context; covers_context says the selection
  // was every page (dense).
  void Observe(int32_t layer, std::span<const float> page_mass, std::span<const float> page_score,
               int32_t context_pages, bool covers_context);

  // Applies the update rule (see the file comment) to `policies` ([num_layers]). At most
  // `dense_allowance` layers may be dense after it (sparse -> dense switches stop there; dense
  // layers the probe set are never forced sparse by it). Returns how many layers changed.
  int32_t Update(std::vector<LayerPolicy>& policies, int32_t dense_allowance);

  const LayerEstimate& estimate(int32_t layer) const { return estimates_[layer]; }
  int64_t dense_to_sparse() const { return dense_to_sparse_; }
  int64_t sparse_to_dense() const { return sparse_to_dense_; }

 private:
  ReestimationOptions options_;
  SelectionOptions selection_;
  std::vector<LayerEstimate> estimates_;
  int64_t dense_to_sparse_ = 0;
  int64_t sparse_to_dense_ = 0;
};

// Pages (largest mass first) holding `target` of `page_mass`'s total, at least 1.
int32_t PagesForMass(std::span<const float> page_mass, float target);

}  // namespace leoam
