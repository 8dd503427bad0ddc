// PagedKvSequence: the LeoAM KV store of one sequence.
//
// Storage: pages of page_size tokens of ONE layer, all KV heads, K and V, in a slot pool of backend
// memory ([num_slots, page_size, num_kv_heads, head_dim] for K and for V: "device memory", host
// memory on the CPU backend); a page table per layer maps page index -> slot (-1: not resident).
// Without a device budget the pool holds every page of every layer (all resident). With a device
// budget and a kvstore (tiered mode, page_cache.cc), each page is written through to the store
// (PutPages, with its level-0 abstract) as soon as it is full, and the pool holds only as many
// pages as the budget pays for: the GPU page cache. Replacement keeps recently selected pages,
// optionally favouring high-scoring ones (each layer keeps a fair share of the slots; within it the
// page with the lowest retention key goes first: last selection, plus a bonus for its selection
// score with score_retention_steps > 0; a layer-major prompt instead lets the layer being filled
// take other layers' pages first). A selected page
// that is not resident is fetched synchronously (FetchPages -> copy from the arena -> Release)
// and the stall is counted. With SelectionOptions::resident_logit_margin, decode selections keep
// the resident pages (or the previous step's: SelectionOptions::preferred_pages) unless another
// page beats them by the margin (hysteresis: fewer misses from near-ties that reorder between
// steps). The page being filled (the newest of each layer) is never evicted.
// Page keys are the hash chain of compute/model/fingerprint.h over the sequence's tokens, which
// the caller hands over with PushTokens before the forward pass that appends them.
// Tiered extras: prefix reuse (RestorePrefix, prefix_restore.cc: a prompt prefix the store holds
// is restored from its abstracts instead of computed), DTP prefetch (prefetcher.h: the next
// layer's predicted pages are requested while this layer computes) and dynamic compression
// (PageCompressionOptions: pages stored fp16/int8/int4 by estimated importance, decoded on fetch).
// Abstracts: an AbstractPyramid per layer (host memory), updated on Append from the exact keys.
//
// Attention: until BeginDecode() (the prompt), exact attention over every stored row (a gather into
// a contiguous staging buffer for multi-token chunks). After BeginDecode(), each single-token step
// selects pages (selection.h) within the layer's budget and runs Backend::PagedAttention over them;
// the current token's page is always selected (local window), so the current token is attended.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/byte_size.h"  // ParseByteSize, for the device budget flags
#include "compute/model/fingerprint.h"
#include "leoam/kvstore/kvstore_client.h"
#include "compute/engine/abstracts.h"
#include "compute/engine/policy_estimator.h"
#include "compute/engine/prefetcher.h"
#include "compute/engine/selection.h"
#include "compute/model/kv_sequence.h"
#include "compute/model/model_config.h"
#include "kernels/backend.h"

namespace leoam {

// Dynamic compression of the pages written through to the kvstore (tiered mode). A page's encoding
// is chosen when it is written, from its estimated importance: the upper bound of its attention
// logit under the layer's latest query (KeyBound over its level-0 abstract, max over query heads)
// against the largest such bound over the layer's pages. The gap (in logits: a page gap g below
// the top can carry at most e^-g of the top page's weight per token) picks fp16 / int8 / int4; sink
// pages and pages written before the layer has seen a query are fp16 or exact (see below).
// Resident pages stay exact (fp32) in the device cache; a page fetched back is decoded from its
// stored encoding (kernels/codec). Abstracts always come from the exact keys.
// The store keeps the first copy of a page (keys name content, not encoding), so compressed pages
// would be served to exact sessions of the same fingerprint: give compressed sessions their own
// fingerprint (ModelFingerprint with KvLayoutKey::dtype kCompressedPagesDtype, as leoam-run does).
inline constexpr char kCompressedPagesDtype[] = "f32-dyncomp";
struct PageCompressionOptions {
  // Off (default): every page is stored exact (f32). The ablation of LeoAM's dynamic compression.
  bool enabled = false;
  // The first pages of each layer (attention sink) are stored exact. Default 1.
  int32_t exact_sink_pages = 1;
  // Gap thresholds in logits: gap <= fp16_gap: fp16; <= int8_gap: int8; else int4. Defaults 2, 6.
  float fp16_gap = 2.0f;
  float int8_gap = 6.0f;
};

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
  // Per-page encodings of the pages written to the store. Default off (exact).
  PageCompressionOptions compression{};
  // Tiered decode: while a layer computes, fetch the pages the next layer is predicted to select
  // (its previous selection, plus a selection over its abstracts with this layer's query as the
  // speculative query; every stored page in offload-all) on a worker thread (prefetcher.h).
  // Changes only timing, never what is computed. Off is the ablation. Default on.
  bool prefetch = true;

  // Tiered: the prompt runs layer-major (LlamaModel::PrefillLayerMajor: one layer over every prompt
  // token before the next). Until BeginDecode the layer being appended then takes slots from other
  // layers' stored pages before replacing its own: the other layers are not attended again before
  // decode, while each later chunk of this layer reads all its earlier pages. Token-major prompts
  // (false) keep the fair share, as every layer comes back at the next chunk. Changes only which
  // pages are fetched, never what is computed. Default false.
  bool layer_major_prompt = false;
  // Tiered decode (quest, leoam): score-aware replacement. A selected page's score is its share of
  // the selection's estimated attention mass (the softmax over the selected pages of their key
  // bounds, mean over query heads; in [0, 1], summing to 1 over the selection). Eviction takes the
  // lowest `last selection + score x score_retention_steps` (in decode steps) first: a page that
  // held most of a step's attention outlives up to this many steps of marginal pages selected after
  // it, while in a flat selection (scores ~1/pages) recency decides, as in LRU.
  // 0: plain least-recently-selected. Default 0: on the models we can run (random-weight
  // llama-124m at 16K, stories260K) 8 and more gave no hit-rate gain and decode was no faster
  // (bench/results/engine_leoam.md, "score-aware replacement"); 8 is the setting measured there.
  int32_t score_retention_steps = 0;
  // leoam: online re-estimation of the per-layer policies from the exact attention over the
  // selected pages (policy_estimator.h). Default off (policies fixed at the first decode step).
  ReestimationOptions reestimation{};
  // Tiered leoam: the pyramid's lowest level lives in the store. Once a full page is written
  // through (its abstract with it), its level-0 abstract is freed here; the levels above stay, and
  // each selection reads the level 0 of its candidate pages back from the store (GetAbstracts, one
  // round trip per layer-step). The levels above add up to about one level 0, so the host memory
  // for abstracts halves, at the cost of that round trip (8K, structured llama-124m: 22-27 ->
  // 42-45 ms/token; bench/results/engine_leoam.md section 8). Only level 0 moves to the store: the
  // levels above are not recomputed from it. Needs a kvstore, mode leoam, no compression (it ranks
  // every page's level 0), no score-aware replacement and no re-estimation. Default off.
  bool level0_in_store = false;
};

// The layout to open a kvstore session with for pages of this engine: dtype F32, the model's
// head_dim. A page is K rows then V rows ([2, page_size, num_kv_heads, head_dim]); pages are put
// as PageEncoding::kF32 (exact).
kvstore::KvLayout KvStoreLayout(const ModelConfig& config, int32_t page_size);

// Parses a budget: an integer is tokens per layer ("512"), a number with a decimal point is a
// fraction of the context in (0, 1] ("0.1", "1.0"). Sets budget_tokens / budget_fraction.
absl::Status ParseBudget(std::string_view text, PagedKvOptions& options);


// Decode-time counters, summed over layers and steps.
struct PagedKvStats {
  int64_t selections = 0;       // (layer, step) selections made
  int64_t pages_selected = 0;   // sum of selected pages
  int64_t tokens_attended = 0;  // sum of attended tokens
  int64_t context_tokens = 0;   // sum of context lengths at selection time
  SelectionCounters counters;   // abstracts read (of them from the store: level0_in_store)
  int64_t level0_bytes_from_store = 0;  // level0_in_store: abstract bytes read back (GetAbstracts)
  // With collect_stats: sum over selections of the attention mass (mean over query heads) on the
  // selected pages; divide by `selections` for the mean.
  double mass_captured = 0.0;

  // Tiered mode (device budget or offload-all): the device page cache and the kvstore traffic.
  // After BeginDecode these count decode steps only (the prompt's are in prefill_stats()).
  int64_t cache_hits = 0;             // selected pages found resident
  int64_t cache_misses = 0;           // selected pages fetched from the store
  int64_t evictions = 0;              // pages dropped from the slot pool
  int64_t pages_written = 0;          // pages written through to the store
  int64_t bytes_written = 0;          // encoded bytes
  int64_t bytes_written_exact = 0;    // what those pages are in f32 (bytes_written / this: compression)
  // Pages written per encoding, indexed by codec::PageEncoding value (1 fp16, 2 int8, 3 int4, 5 f32).
  std::array<int64_t, 6> pages_written_by_encoding{};
  int64_t pages_fetched_memory = 0;   // fetched pages the store served from its memory tier
  int64_t pages_fetched_disk = 0;     // ... from its disk tier
  int64_t bytes_fetched_memory = 0;
  int64_t bytes_fetched_disk = 0;
  double fetch_stall_seconds = 0.0;   // time the compute thread spent on fetches: synchronous FetchPages,
                                      // waiting for prefetches, copies (and decodes) out of the arena, Release
  // Prefetch (DTP): pages requested ahead, selected misses they served, the compute thread's wait
  // for them (part of fetch_stall_seconds), and abstracts scored for the speculative selection.
  double fetch_rpc_seconds = 0.0;      // of fetch_stall_seconds: FetchPages round trips on the compute thread
  double prefetch_fetch_seconds = 0.0; // FetchPages round trips of prefetches, on the prefetch worker
  int64_t prefetch_pages = 0;
  int64_t prefetch_hits = 0;
  double prefetch_wait_seconds = 0.0;
  int64_t prefetch_abstracts_read = 0;
  double write_seconds = 0.0;         // write-through time (AllocStaging + copies + PutPages)

  // Online re-estimation (PagedKvOptions::reestimation): (layer, step) observations of the exact
  // attention over the selected pages, layer policies changed by the updates, layers switched
  // dense -> sparse and sparse -> dense, and the compute thread's time on it (key copies to the
  // host, exact page mass, updates).
  int64_t reestimate_observations = 0;
  int64_t reestimate_changes = 0;
  int64_t reestimate_to_sparse = 0;
  int64_t reestimate_to_dense = 0;
  double reestimate_seconds = 0.0;
  // With collect_stats, sums over selections (divide by `selections`): the mass the best pages of
  // the same count would hold (the oracle for the selection), and the mass on the top 10% of the
  // context's pages (how skewed the attention is).
  double mass_oracle = 0.0;
  double mass_top_tenth = 0.0;
  // With collect_stats, per layer ([layer], sums over that layer's selections): mass captured and
  // mass on the top 10% of pages.
  std::vector<double> layer_mass_captured;
  std::vector<double> layer_mass_top_tenth;
};

// What RestorePrefix found in the kvstore.
struct PrefixRestore {
  int32_t cached_tokens = 0;  // leading prompt tokens restored (need no prefill): a multiple of page_size
  int32_t pages_memory = 0;   // restored pages (page_size tokens, all layers) the store held in its memory tier
  int32_t pages_disk = 0;     // ... and those only on its disk tier
  double seconds = 0;         // LookupPrefix + GetAbstracts + bookkeeping
};

class PagedKvSequence final : public KvSequence {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PagedKvSequence>> Create(kernels::Backend& backend,
                                                                              const ModelConfig& config,
                                                                              int32_t capacity,
                                                                              const PagedKvOptions& options);

  ~PagedKvSequence() override;

  int32_t capacity() const override { return capacity_; }
  absl::Status Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) override;
  absl::Status Attend(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                      void* workspace) override;

  // Ends the prompt: later single-token steps use page selection. The first decode step measures
  // the per-layer policies (leoam, adaptive) from the last prompt queries.
  void BeginDecode();
  // The end of the prompt, with the work that belongs to it: measures leoam's per-layer policies
  // from the prompt's last queries (otherwise done lazily at the first decode step), then
  // BeginDecode(). Its kvstore traffic counts as the prompt's.
  absl::Status FinishPrefill();
  // Tokens of the next positions, in order (tiered mode: they key the pages). Call before the
  // forward pass that appends them; ignored when not tiered.
  void PushTokens(std::span<const int32_t> tokens);
  // Prefix reuse (tiered mode; an empty sequence). Looks up the longest prefix of `prompt` whose
  // pages (all layers) are in the kvstore (LookupPrefix over the page hash chain), restores their
  // level-0 abstracts (GetAbstracts) into the pyramids, marks the pages stored-not-resident, and
  // pushes those tokens. Returns how many leading prompt tokens need no prefill: a multiple of
  // page_size, at most prompt.size() - 1 (the last prompt token is always computed, for logits;
  // leoam with adaptive selection also computes the last probe_queries tokens, for its skew probe).
  // The caller then pushes the rest of the prompt and runs Forward from position cached_tokens;
  // the remainder's attention fetches the restored pages from the store, so it is exact. No page
  // payload moves here: the pages come to the device when attention needs them (the prompt
  // remainder's prefill reads them all, decode selection caches what it selects). Not tiered:
  // returns zeros.
  absl::StatusOr<PrefixRestore> RestorePrefix(std::span<const int32_t> prompt);
  bool tiered() const { return tiered_; }
  int32_t num_slots() const { return static_cast<int32_t>(slot_owner_.size()); }

  const PagedKvOptions& options() const { return options_; }
  const PagedKvStats& stats() const { return stats_; }
  // The tier counters of the prompt (set by BeginDecode).
  const PagedKvStats& prefill_stats() const { return prefill_stats_; }
  const std::vector<LayerPolicy>& policies() const { return policies_; }
  // The online re-estimator (null unless leoam with reestimation.enabled).
  const PolicyEstimator* estimator() const { return estimator_.get(); }
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
  // The probe's exact attention mass per page of layer `l` (mean over its probe queries); empty
  // when the layer has too few pages to tell skew.
  absl::StatusOr<std::vector<float>> ProbeMass(int32_t l);
  // How many layers may run dense under equal_total_budget at this context (the flattest first),
  // each sparse layer keeping at least its sink and local pages; every layer otherwise.
  int32_t AffordableDenseLayers(int32_t context) const;
  // Online re-estimation: the exact attention mass of `query` (host, scaled) over the selected
  // `pages` of `layer` (resident), fed to the estimator, whose update may change the policies.
  absl::Status ObserveSelection(int32_t layer, const std::vector<int32_t>& pages, const float* query);
  absl::Status AttendAll(int32_t layer, const kernels::AttentionParams& params, const float* q, float* out,
                         void* workspace);
  absl::Status AttendPages(int32_t layer, const std::vector<int32_t>& pages, float scale, const float* q, float* out);

  // Tiered mode (page_cache.cc).
  struct PageState {
    bool stored = false;       // written through to the kvstore
    int64_t last_used = -1;    // clock of the last selection
    int64_t uses = 0;          // selections so far
    float score = 0.0f;        // share of the estimated mass at its last decode selection (score_retention_steps)
  };
  // A free slot for a page of `layer` (counted as resident there), evicting a stored resident
  // page that is not pinned if needed (policy in page_cache.cc).
  absl::StatusOr<int32_t> TakeSlot(int32_t layer);
  void DropPage(int32_t layer, int32_t page);
  // Frees slots for `incoming` pages of `layer` at once (TakeSlot's policy, one scan).
  void EvictFor(int32_t layer, int32_t incoming);
  // Writes the queued full pages through to the store.
  absl::Status FlushPuts();
  // Makes every page of `pages` resident (fetching misses) and marks them used.
  absl::Status EnsureResident(int32_t layer, const std::vector<int32_t>& pages);
  // Fetches stored pages of `layer` from the kvstore and copies page i's K rows to k_dst[i] and
  // V rows to v_dst[i] (either may be null) in backend memory (to_device) or host memory.
  absl::Status FetchInto(int32_t layer, const std::vector<int32_t>& pages, const std::vector<float*>& k_dst,
                         const std::vector<float*>& v_dst, bool to_device);
  // Checks a fetched page, decodes it if it is not f32, copies its K and V to k_dst / v_dst (either
  // may be null) and counts it by tier.
  absl::Status CopyFetched(int32_t layer, int32_t page, const kvstore::FetchedPage& f, float* k_dst, float* v_dst,
                           bool to_device);
  // Decode step of `layer`: starts prefetching the next layer's predicted pages.
  void IssuePrefetch(int32_t layer, int32_t context);
  // After a decode step of `layer` in offload-all: drop every stored page of the layer.
  void DropStoredPages(int32_t layer);
  absl::StatusOr<const Hash128*> PageKey(int32_t page);
  // The encoding page `page` of `layer` is written in (PageCompressionOptions); `top_bound` is the
  // largest page bound of the layer under its reference query (computed once per flush).
  kvstore::PageEncoding ChooseEncoding(int32_t layer, int32_t page, float top_bound) const;
  float PageBound(int32_t layer, int32_t page) const;
  // Score-aware replacement: sets PageState::score of the decode selection `pages` of `layer` from
  // host_q_ (the step's scaled query) and the pages' level-0 abstracts.
  void ScoreSelection(int32_t layer, const std::vector<int32_t>& pages);
  // SelectPagesFrom for `layer` with host_q_, the store as the level-0 source under level0_in_store.
  absl::StatusOr<std::vector<int32_t>> Select(int32_t layer, int32_t context, SelectionCounters* counters);
  // level0_in_store: the level-0 abstracts of `pages` of `layer` from the store (GetAbstracts).
  absl::Status StoredLevel0(int32_t layer, std::span<const int32_t> pages, std::vector<float>* mins,
                            std::vector<float>* maxs);
  // level0_in_store: frees each layer's level 0 below its first page not yet written through.
  void ReleaseStoredLevel0();
  // Per page of `layer`, 1 when preferred by SelectionOptions::resident_logit_margin's hysteresis
  // (resident, or selected at the layer's previous step: SelectionOptions::preferred_pages); empty
  // without a margin (or resident pages when not tiered). Valid until the next call.
  std::span<const uint8_t> PreferredPages(int32_t layer);
  // Eviction order of a resident page (lowest first): last selection plus the score bonus.
  int64_t RetentionKey(int32_t layer, int32_t page) const;
  // Whether the prompt's slots follow layer_major_prompt (before BeginDecode).
  bool LayerMajorPrompt() const { return !decoding_ && options_.layer_major_prompt; }

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
  // Layer-major prompt: ProbeMass of the layers already finished, measured as the next layer
  // starts (while their keys are resident). [layer], empty until the first one.
  std::vector<std::optional<std::vector<float>>> early_probe_mass_;
  bool decoding_ = false;
  bool policies_measured_ = false;
  std::vector<LayerPolicy> policies_;
  std::unique_ptr<PolicyEstimator> estimator_;  // leoam with reestimation.enabled
  std::vector<int64_t> decode_steps_;           // [layer] decode steps attended so far
  std::vector<float> observe_keys_;             // ObserveSelection: [selected rows, kv_dim] host keys
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
  std::vector<float> score_scratch_;  // ScoreSelection: [pages] scores being summed over heads
  std::vector<uint8_t> preferred_flags_;  // PreferredPages: [page]
  // Compression: each layer's latest query (host, scaled by the attention scale), empty before
  // the layer's first attention. [layer][num_heads * head_dim]
  std::vector<std::vector<float>> reference_q_;
  std::vector<float> decoded_;  // [2, page_size, kv_dim]: a page decoded from its stored encoding
  std::unique_ptr<PagePrefetcher> prefetcher_;  // tiered with options.prefetch
  // Leases of copied fetches, ended with the next FetchPages (or by the destructor).
  std::vector<uint64_t> leases_to_release_;
};

}  // namespace leoam
