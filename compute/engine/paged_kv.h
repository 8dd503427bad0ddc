// PagedKvSequence: the LeoAM KV store of one sequence.
//
// Storage: pages of page_size tokens of ONE layer, all KV heads, K and V, in a slot pool of backend
// memory ([num_slots, page_size, num_kv_heads, head_dim] for K and for V: "device memory", host
// memory on the CPU backend); a page table per layer maps page index -> slot (-1: not resident).
// Without a device budget the pool holds every page of every layer (all resident). With a device
// budget and a kvstore (tiered mode, page_cache.cc), each page is written through to the store
// (PutPages, with its level-0 abstract) as soon as it is full, and the pool holds only as many
// pages as the budget pays for: the GPU page cache. Replacement keeps recently selected pages
// (each layer keeps a fair share of the slots; within it the least recently selected page goes
// first, among equals the least often selected). A selected page
// that is not resident is fetched synchronously (FetchPages -> copy from the arena -> Release)
// and the stall is counted. The page being filled (the newest of each layer) is never evicted.
// Page keys are the hash chain of compute/model/fingerprint.h over the sequence's tokens, which
// the caller hands over with PushTokens before the forward pass that appends them.
// Abstracts: an AbstractPyramid per layer (host memory), updated on Append from the exact keys.
//
// Attention: until BeginDecode() (the prompt), exact attention over every stored row (a gather into
// a contiguous staging buffer for multi-token chunks). After BeginDecode(), each single-token step
// selects pages (selection.h) within the layer's budget and runs Backend::PagedAttention over them;
// the current token's page is always selected (local window), so the current token is attended.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/model/fingerprint.h"
#include "leoam/kvstore/kvstore_client.h"
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

  // Device page cache budget in bytes (K and V of the slot pool). 0 (default): unlimited, every
  // page stays resident and no kvstore is used (except in mode offload-all, which always goes
  // through the store). When set, `kvstore` and `fingerprint` are required.
  int64_t device_budget_bytes = 0;
  // The KV store client (not owned; outlives the sequence), connected with KvStoreLayout() of this
  // page size. Default none.
  kvstore::KvStoreClient* kvstore = nullptr;
  // Model fingerprint (ModelFingerprint) the page keys chain from.
  Hash128 fingerprint{};
};

// The layout to open a kvstore session with for pages of this engine. Pages are exact fp32 K and V;
// the store has no fp32 page encoding yet, so an fp32 page is carried as an fp16-sized page of
// twice the head_dim (same byte count), tagged dtype F32: the store never decodes payloads.
kvstore::KvLayout KvStoreLayout(const ModelConfig& config, int32_t page_size);

// Parses a budget: an integer is tokens per layer ("512"), a number with a decimal point is a
// fraction of the context in (0, 1] ("0.1", "1.0"). Sets budget_tokens / budget_fraction.
absl::Status ParseBudget(std::string_view text, PagedKvOptions& options);

// Parses a byte size: an integer with an optional B, KiB, MiB, GiB, TiB (or K, M, G, T) suffix,
// e.g. "64MiB", "1G", "4096". Negative or malformed sizes are INVALID_ARGUMENT.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);

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

  // Tiered mode (device budget or offload-all): the device page cache and the kvstore traffic.
  // After BeginDecode these count decode steps only (the prompt's are in prefill_stats()).
  int64_t cache_hits = 0;             // selected pages found resident
  int64_t cache_misses = 0;           // selected pages fetched from the store
  int64_t evictions = 0;              // pages dropped from the slot pool
  int64_t pages_written = 0;          // pages written through to the store
  int64_t bytes_written = 0;
  int64_t pages_fetched_memory = 0;   // fetched pages the store served from its memory tier
  int64_t pages_fetched_disk = 0;     // ... from its disk tier
  int64_t bytes_fetched_memory = 0;
  int64_t bytes_fetched_disk = 0;
  double fetch_stall_seconds = 0.0;   // synchronous fetch time (FetchPages + copies + Release)
  double write_seconds = 0.0;         // write-through time (AllocStaging + copies + PutPages)
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
  void BeginDecode();
  // Tokens of the next positions, in order (tiered mode: they key the pages). Call before the
  // forward pass that appends them; ignored when not tiered.
  void PushTokens(std::span<const int32_t> tokens);
  bool tiered() const { return tiered_; }
  int32_t num_slots() const { return static_cast<int32_t>(slot_owner_.size()); }

  const PagedKvOptions& options() const { return options_; }
  const PagedKvStats& stats() const { return stats_; }
  // The tier counters of the prompt (set by BeginDecode).
  const PagedKvStats& prefill_stats() const { return prefill_stats_; }
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

  // Tiered mode (page_cache.cc).
  struct PageState {
    bool stored = false;       // written through to the kvstore
    int64_t last_used = -1;    // clock of the last selection
    int64_t uses = 0;          // selections so far
  };
  // A free slot for a page of `layer` (counted as resident there), evicting a stored resident
  // page that is not pinned if needed (policy in page_cache.cc).
  absl::StatusOr<int32_t> TakeSlot(int32_t layer);
  void DropPage(int32_t layer, int32_t page);
  // Writes the queued full pages through to the store.
  absl::Status FlushPuts();
  // Makes every page of `pages` resident (fetching misses) and marks them used.
  absl::Status EnsureResident(int32_t layer, const std::vector<int32_t>& pages);
  // Fetches stored pages of `layer` from the kvstore and copies page i's K rows to k_dst[i] and
  // V rows to v_dst[i] (either may be null) in backend memory (to_device) or host memory.
  absl::Status FetchInto(int32_t layer, const std::vector<int32_t>& pages, const std::vector<float*>& k_dst,
                         const std::vector<float*>& v_dst, bool to_device);
  // After a decode step of `layer` in offload-all: drop every stored page of the layer.
  void DropStoredPages(int32_t layer);
  absl::StatusOr<const Hash128*> PageKey(int32_t page);

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
  PagedKvStats prefill_stats_;

  bool tiered_ = false;
  std::vector<std::vector<PageState>> page_state_;    // [layer][page]
  std::vector<std::pair<int32_t, int32_t>> slot_owner_;  // [slot] -> (layer, page), layer -1 when free
  std::vector<int32_t> tokens_;                        // pushed tokens, by position
  std::vector<Hash128> page_keys_;                     // chain hash of each full page
  std::vector<std::pair<int32_t, int32_t>> pending_puts_;  // (layer, page) full, not yet stored
  std::vector<int32_t> resident_;  // [layer] slots held
  std::vector<uint8_t> pinned_;  // [slot] in use by the attention being prepared
  int64_t clock_ = 0;
  std::vector<float> host_page_;  // [2, page_size, kv_dim] staging for copies
};

}  // namespace leoam
