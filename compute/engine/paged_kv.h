// PagedKvSequence: the LeoAM KV store of one sequence, in process (no tiers yet).
//
// Storage: pages of page_size tokens of ONE layer, all KV heads, K and V, in a slot pool of backend
// memory ([num_slots, page_size, num_kv_heads, head_dim] for K and for V); a page table per layer
// maps page index -> slot. Every page is resident for now (the pool holds capacity for all layers);
// the GPU page cache and the kvstore tiers replace "resident" later.
// Abstracts: an AbstractPyramid per layer (host memory), updated on Append from the exact keys.
//
// Attention: until BeginDecode() (the prompt), exact attention over every stored row (a gather into
// a contiguous staging buffer for multi-token chunks). After BeginDecode(), each single-token step
// selects pages (selection.h) within the layer's budget and runs Backend::PagedAttention over them;
// the current token's page is always selected (local window), so the current token is attended.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/engine/abstracts.h"
#include "compute/engine/selection.h"
#include "compute/model/kv_sequence.h"
#include "compute/model/model_config.h"
#include "kernels/backend.h"

namespace leoam {

struct PagedKvOptions {
  // Tokens per page (P). Default 16.
  int32_t page_size = 16;
  // Page selection of decode steps. Default leoam.
  SelectionMode mode = SelectionMode::kLeoam;
  // Base budget per layer in tokens (sink and local pages included); > 0 wins over budget_fraction.
  // Default 0 (use budget_fraction).
  int32_t budget_tokens = 0;
  // Base budget as a fraction of the current context, when budget_tokens is 0. Default 0.1.
  double budget_fraction = 0.1;
  SelectionOptions selection{};
  // Measure, at every decode step and layer, the exact attention mass that falls on the selected
  // pages (costs a full dense attention on the host: for quality benchmarks). Default off.
  bool collect_stats = false;
};

// Parses a budget: an integer is tokens per layer ("512"), a number with a decimal point is a
// fraction of the context in (0, 1] ("0.1", "1.0"). Sets budget_tokens / budget_fraction.
absl::Status ParseBudget(std::string_view text, PagedKvOptions& options);

// Decode-time counters, summed over layers and steps.
struct PagedKvStats {
  int64_t selections = 0;       // (layer, step) selections made
  int64_t pages_selected = 0;   // sum of selected pages
  int64_t tokens_attended = 0;  // sum of attended tokens
  int64_t context_tokens = 0;   // sum of context lengths at selection time
  SelectionCounters counters;   // abstracts read
  // With collect_stats: sum over selections of the attention mass (mean over query heads) on the
  // selected pages; divide by `selections` for the mean.
  double mass_captured = 0.0;
};

class PagedKvSequence final : public KvSequence {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PagedKvSequence>> Create(kernels::Backend& backend,
                                                                              const ModelConfig& config,
                                                                              int32_t capacity,
                                                                              const PagedKvOptions& options);

  int32_t capacity() const override { return capacity_; }
  absl::Status Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) override;
  absl::Status Attend(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                      void* workspace) override;

  // Ends the prompt: later single-token steps use page selection. The first decode step measures
  // the per-layer policies (leoam, adaptive) from the last prompt queries.
  void BeginDecode() { decoding_ = true; }

  const PagedKvOptions& options() const { return options_; }
  const PagedKvStats& stats() const { return stats_; }
  const std::vector<LayerPolicy>& policies() const { return policies_; }
  const AbstractPyramid& abstracts(int32_t layer) const { return pyramids_[layer]; }
  const std::vector<int32_t>& page_table(int32_t layer) const { return page_tables_[layer]; }
  // Pages selected at the last decode step of `layer` (page indices, increasing).
  const std::vector<int32_t>& last_selection(int32_t layer) const { return last_selection_[layer]; }
  int32_t BudgetPages(int32_t layer, int32_t context) const;

 private:
  PagedKvSequence(kernels::Backend& backend, const ModelConfig& config, int32_t capacity,
                  const PagedKvOptions& options);

  size_t page_floats() const { return static_cast<size_t>(options_.page_size) * kv_dim_; }
  float* k_page(int32_t slot) const { return k_pool_.as<float>() + slot * page_floats(); }
  float* v_page(int32_t slot) const { return v_pool_.as<float>() + slot * page_floats(); }
  // Keeps the last probe_queries query rows of the prompt (host) for the skew probe.
  absl::Status RecordProbeQueries(int32_t layer, const kernels::AttentionParams& params, const float* q);
  // Exact attention mass per page (mean over query heads) of a host query q [num_heads, head_dim]
  // (already scaled) over rows [0, context) of `layer`; keys from a host copy of the layer.
  std::vector<float> ExactPageMass(const std::vector<float>& keys, const float* q, int32_t context) const;
  absl::StatusOr<std::vector<float>> HostKeys(int32_t layer, int32_t context);
  absl::Status MeasurePolicies();
  absl::Status AttendAll(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                         void* workspace);
  absl::Status AttendPages(int32_t layer, const std::vector<int32_t>& pages, float scale, const float* q, float* out);

  kernels::Backend& backend_;
  ModelConfig config_;
  int32_t capacity_;
  PagedKvOptions options_;
  int32_t kv_dim_;
  int32_t max_pages_;  // pages per layer at capacity

  kernels::DeviceBuffer k_pool_, v_pool_;  // [num_slots, page_size, num_kv_heads, head_dim]
  std::vector<int32_t> free_slots_;
  std::vector<std::vector<int32_t>> page_tables_;  // [layer][page] -> slot
  std::vector<int32_t> length_;                    // [layer] rows stored
  std::vector<AbstractPyramid> pyramids_;

  kernels::DeviceBuffer gather_k_, gather_v_;  // [capacity, kv_dim]: prompt chunks attend here
  kernels::DeviceBuffer page_ids_;             // [max_pages] int32
  kernels::DeviceBuffer paged_workspace_;
  std::vector<float> host_keys_;  // [n, kv_dim] staging for abstracts
  std::vector<float> host_q_;     // [num_heads, head_dim]

  struct Probe {
    std::vector<float> q;            // [rows, num_heads, head_dim], oldest first
    std::vector<int32_t> positions;  // [rows]
  };
  std::vector<Probe> probes_;
  bool decoding_ = false;
  bool policies_measured_ = false;
  std::vector<LayerPolicy> policies_;
  std::vector<std::vector<int32_t>> last_selection_;
  PagedKvStats stats_;
};

}  // namespace leoam
