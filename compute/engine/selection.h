// Page selection for sparse decode attention: which pages of one layer a query attends.
//
// Modes (the baselines of DESIGN.md §4 that need no tiers):
//   dense - every page (the quality reference);
//   offload-all - every page, like dense, but the paged sequence keeps no full page on the device
//           between steps: every page of a layer is fetched from the kvstore each step (FlexGen-like);
//   quest - score every page's abstract, keep the top pages by bound within the budget;
//   leoam - IAKM: walk the abstract pyramid top-down from a coarse start level, drop "deserts",
//           refine the promising nodes into their children, pick the top pages among the
//           survivors at level 0; reads far fewer abstracts than quest on long contexts.
// All modes keep the first pages (attention sink) and the newest pages (local window).
//
// GQA scoring (one selection per layer; a page holds all KV heads): each query head h gets the
// upper bound b_h(node) of its logit q_h.k / sqrt(d) against its KV head's box. Softmax normalizes
// per head, so raw bounds of different heads are not comparable; each head's bounds go through a
// softmax over the candidate nodes, s_h(node) = exp(b_h) / sum exp(b_h): an estimate (from upper
// bounds) of the share of that head's attention mass in the node. A node's score is the mean of
// s_h over the query heads: the estimated attention mass it holds, averaged over heads, which is
// what sparse attention loses when the node is skipped. A head that needs a page alone still
// counts fully (s_h near 1 gives 1/num_heads), while flat heads, whose mass no small selection
// captures anyway, spread theirs thinly (about 1/num_nodes per node) instead of outvoting it.
// A node is a desert when its score is below exp(-desert_logit_gap) x the best node's score.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/engine/abstracts.h"

namespace leoam {

enum class SelectionMode { kDense, kQuest, kLeoam, kOffloadAll };
std::string_view SelectionModeName(SelectionMode mode);
absl::StatusOr<SelectionMode> ParseSelectionMode(std::string_view name);  // "dense", "quest", "leoam", "offload-all"

struct SelectionOptions {
  // First pages always kept (attention sink). Default 1.
  int32_t sink_pages = 1;
  // Newest pages always kept (local window), the current partial page included; at least 1.
  // Default 2.
  int32_t local_pages = 2;
  // leoam: a node scoring below exp(-gap) x the best node's score at its level is a desert and
  // is not refined, in logit units. Default 8 (below 0.03% of the best).
  float desert_logit_gap = 8.0f;
  // leoam: at each coarse level, at most refine_factor x the remaining page budget of the best
  // non-desert nodes are refined into their children. Default 3.
  float refine_factor = 3.0f;
  // leoam: count refine_factor x the remaining budget in pages instead of nodes: a node of level l
  // covers 2^l pages, so at most refine_factor x remaining / 2^l nodes of level l are refined. The
  // default (nodes) keeps 3 x remaining nodes at every level, which at coarse levels is every node
  // (a 10% budget at 32K: levels 3 and 2 refine all of their 256 and 512 nodes, and the walk scores
  // ~3000 abstracts per layer against quest's 2048). Default off: it reads 2.3x fewer abstracts
  // there but captures less attention mass (bench/results/engine_leoam.md section 6).
  bool refine_by_pages = false;
  // leoam: coarsest start level (nodes of 2^level pages). Default 6.
  int32_t max_start_level = 6;

  // leoam per-layer adaptivity (measured at the first decode step, from prefill; re-estimated
  // online while decoding with PagedKvOptions::reestimation, policy_estimator.h).
  // Off: every layer uses default_start_level and the base budget. Default on.
  bool adaptive = true;
  // Start level without adaptivity. Default 3 (nodes of 8 pages).
  int32_t default_start_level = 3;
  // Last prompt queries whose exact attention measures each layer's skew (W). Default 16.
  int32_t probe_queries = 16;
  // Prompts shorter than this many pages are not measured (too few pages to tell skew): every
  // layer keeps the default policy. Default 8.
  int32_t min_probe_pages = 8;
  // A page is a desert for the probe when its attention mass (mean over heads and probe queries)
  // is below this fraction of the uniform share 1/num_pages. Default 0.1.
  float desert_mass_fraction = 0.1f;
  // Layers whose desert rate is below this run dense (flat attention: nothing to skip). Default 0.3.
  float dense_below_desert_rate = 0.3f;
  // Per-layer budget = base x clamp((1 - desert_rate) / mean over sparse layers, lo, hi): skewed
  // layers give budget to flatter ones. Defaults 0.5 and 2.
  float min_budget_scale = 0.5f;
  float max_budget_scale = 2.0f;
  // Keep the total over layers at num_layers x base budget: the tokens that dense layers attend
  // beyond the base come out of the sparse layers' budgets, and only as many flat layers run dense
  // as that total pays for while every sparse layer keeps at least min_budget_scale x base (the
  // flattest first; the others run sparse). Sink and local pages are
  // always kept, so very small budgets can still exceed the total. Off: each sparse layer gets
  // base x budget_scale and dense layers come on top. Default off.
  bool equal_total_budget = false;

  // quest / leoam: hysteresis against the device cache. A decode step's selection changes from
  // step to step more than the true attention does (the bounds of near-tied pages reorder), and
  // every page it swaps in is a fetch. With the resident pages passed to SelectPages, a resident
  // candidate's level-0 score is multiplied by exp(margin): a page not on the device displaces a
  // resident one only if its estimated mass is larger by that factor (logit units, as the
  // desert gap). Candidates are the same; only the order among them changes. 0: off.
  // Default 0 (off, so that tiering never changes what is computed unless asked; margin 1 is
  // what bench/results/engine_leoam.md section 6 measures for speed and quality).
  float resident_logit_margin = 0.0f;
  // Which pages PagedKvSequence passes as preferred for the margin: those resident in the device
  // cache (tiered only; the selection then depends on the cache state, so a tiered run no longer
  // equals the all-resident run of the same mode), or those the layer selected at its previous
  // decode step (tiered or not; the selection depends only on the queries and keys, and a step's
  // previous selection is almost always still resident). Default kResident.
  enum class PreferredPages { kResident, kPreviousSelection };
  PreferredPages preferred_pages = PreferredPages::kResident;
};

// How one layer selects (leoam mode); set by the per-layer adaptivity.
struct LayerPolicy {
  bool dense = false;           // attend every page
  int32_t start_level = 3;      // pyramid level the walk starts at
  float budget_scale = 1.0f;    // multiplies the base budget
  float desert_rate = -1.0f;    // measured skew (-1: not measured)
};

struct SelectionCounters {
  int64_t abstracts_read = 0;        // node abstracts scored (one per node, all KV heads)
  int64_t abstracts_from_store = 0;  // of those, level-0 abstracts read back through a Level0Source
};

// Selects pages of a layer for one query.
//   q: [num_heads, head_dim], already multiplied by the attention scale
//   budget_pages: most pages to select (sink and local pages included)
//   preferred: per page, non-zero for a page the hysteresis favours (resident_logit_margin: on the
//     device, or selected at the previous step); empty: none
// Returns page indices in increasing order.
std::vector<int32_t> SelectPages(SelectionMode mode, const AbstractPyramid& pyramid, std::span<const float> q,
                                 int32_t num_heads, int32_t budget_pages, const LayerPolicy& policy,
                                 const SelectionOptions& options, SelectionCounters* counters,
                                 std::span<const uint8_t> preferred = {});

// Level-0 abstracts a pyramid no longer holds (AbstractPyramid::ReleaseLevel0Below): fills mins and
// maxs ([pages.size(), num_kv_heads * head_dim] each) for `pages`, e.g. from the KV store.
using Level0Source =
    std::function<absl::Status(std::span<const int32_t> pages, std::vector<float>* mins, std::vector<float>* maxs)>;

// SelectPages over a pyramid whose level 0 may be partly released: the walk runs on the levels
// held, and the level-0 abstracts of the candidate pages below pyramid.level0_first() come from
// `level0` (one call per selection, candidates only). Errors are `level0`'s; FAILED_PRECONDITION
// when abstracts are missing and there is no source.
absl::StatusOr<std::vector<int32_t>> SelectPagesFrom(SelectionMode mode, const AbstractPyramid& pyramid,
                                                     std::span<const float> q, int32_t num_heads,
                                                     int32_t budget_pages, const LayerPolicy& policy,
                                                     const SelectionOptions& options, SelectionCounters* counters,
                                                     std::span<const uint8_t> preferred,
                                                     const Level0Source& level0);

// Level-0 scores of `pages` for query q ([num_heads, head_dim], scaled), as SelectPages ranks them
// (see the file comment: mean over query heads of the page's share of a softmax of that head's
// bounds over `pages`).
std::vector<float> ScorePages(const AbstractPyramid& pyramid, const std::vector<int32_t>& pages,
                              std::span<const float> q, int32_t num_heads);

// Layer policies from the probe's per-layer page masses (mass[l][page], summing to ~1).
std::vector<LayerPolicy> PoliciesFromProbe(const std::vector<std::vector<float>>& mass,
                                           const SelectionOptions& options);

}  // namespace leoam
