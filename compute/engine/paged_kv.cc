#include "compute/engine/paged_kv.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/simd_kernels.h"

namespace leoam {

absl::Status ParseBudget(std::string_view text, PagedKvOptions& options) {
  const absl::string_view t(text.data(), text.size());
  if (t.find('.') != absl::string_view::npos) {
    double fraction = 0.0;
    if (!absl::SimpleAtod(t, &fraction) || !(fraction > 0.0 && fraction <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("budget '", t, "': a fraction must be in (0, 1]"));
    }
    options.budget_tokens = 0;
    options.budget_fraction = fraction;
    return absl::OkStatus();
  }
  int32_t tokens = 0;
  if (!absl::SimpleAtoi(t, &tokens) || tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget '", t, "': give tokens per layer (e.g. 512) or a fraction with a point (e.g. 0.1)"));
  }
  options.budget_tokens = tokens;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PagedKvSequence>> PagedKvSequence::Create(kernels::Backend& backend,
                                                                         const ModelConfig& config, int32_t capacity,
                                                                         const PagedKvOptions& options) {
  if (capacity <= 0) return absl::InvalidArgumentError(absl::StrFormat("capacity must be positive, got %d", capacity));
  if (options.page_size <= 0 || options.page_size > 4096) {
    return absl::InvalidArgumentError(absl::StrFormat("page size must be in [1, 4096], got %d", options.page_size));
  }
  if (options.budget_tokens < 0 || options.budget_fraction <= 0.0 || options.budget_fraction > 1.0) {
    return absl::InvalidArgumentError(absl::StrFormat("budget must be > 0 tokens or a fraction in (0, 1], got %d / %g",
                                                      options.budget_tokens, options.budget_fraction));
  }
  const bool tiered = options.device_budget_bytes > 0 || options.mode == SelectionMode::kOffloadAll;
  if (options.device_budget_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("device budget must be >= 0 bytes, got %d", options.device_budget_bytes));
  }
  if (tiered && options.kvstore == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "mode %s with a device budget of %d bytes needs a kvstore to hold the pages that do not fit (--kvstore)",
        SelectionModeName(options.mode), options.device_budget_bytes));
  }
  const PageCompressionOptions& pc = options.compression;
  const ReestimationOptions& re = options.reestimation;
  if (re.enabled && (re.interval < 1 || re.dense_interval < 1 || !(re.smoothing > 0.0f && re.smoothing <= 1.0f) ||
                     !(re.mass_target > 0.0f && re.mass_target <= 1.0f) ||
                     !(re.floor_fill > 0.0f && re.floor_fill <= 1.0f) || !(re.gain >= 0.0f))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "re-estimation: need interval and dense_interval >= 1, smoothing and mass_target and floor_fill in (0, 1], "
        "gain >= 0; got %d, %d, %g, %g, %g, %g",
        re.interval, re.dense_interval, re.smoothing, re.mass_target, re.floor_fill, re.gain));
  }
  if (pc.exact_sink_pages < 0 || !(pc.fp16_gap >= 0.0f) || !(pc.int8_gap >= pc.fp16_gap)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "compression: need exact_sink_pages >= 0 and 0 <= fp16_gap <= int8_gap, got %d, %g, %g",
        pc.exact_sink_pages, pc.fp16_gap, pc.int8_gap));
  }
  if (options.level0_in_store) {
    const char* why = nullptr;
    if (!tiered) why = "a kvstore and a device budget (the store holds the abstracts)";
    else if (options.mode != SelectionMode::kLeoam) why = "mode leoam (quest scores every page's level 0 at every step)";
    else if (pc.enabled) why = "no page compression (it ranks every page's level-0 abstract)";
    else if (options.score_retention_steps > 0) why = "no score-aware replacement (it scores the selected pages' level 0)";
    else if (options.reestimation.enabled) why = "no re-estimation (it scores the selected pages' level 0)";
    if (why != nullptr) return absl::InvalidArgumentError(absl::StrCat("level0_in_store needs ", why));
  }
  std::unique_ptr<PagedKvSequence> seq(new PagedKvSequence(backend, config, capacity, options));
  int64_t slots = static_cast<int64_t>(seq->max_pages_) * config.num_layers;
  const int64_t slot_bytes = static_cast<int64_t>(2 * seq->page_floats() * sizeof(float));
  if (tiered) {
    ASSIGN_OR_RETURN(const size_t store_page_bytes, options.kvstore->PageBytes(kvstore::PageEncoding::kF32));
    if (static_cast<int64_t>(store_page_bytes) != slot_bytes) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the kvstore session holds %d-byte pages but this model's fp32 pages of %d tokens are %d bytes; "
          "connect with KvStoreLayout(config, page_size)",
          store_page_bytes, options.page_size, slot_bytes));
    }
    if (options.device_budget_bytes > 0) slots = std::min(slots, options.device_budget_bytes / slot_bytes);
    // Each layer's newest (filling) page stays resident, plus room to attend at least a page.
    if (slots < config.num_layers + 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "device budget of %d bytes holds %d page slots of %d bytes; at least %d are needed (one per layer + 1)",
          options.device_budget_bytes, slots, slot_bytes, config.num_layers + 1));
    }
    seq->tiered_ = true;
    seq->page_state_.resize(config.num_layers);
    seq->slot_owner_.assign(slots, {-1, -1});
    seq->pinned_.assign(slots, 0);
    seq->resident_.assign(config.num_layers, 0);
    if (options.prefetch) seq->prefetcher_ = std::make_unique<PagePrefetcher>(*options.kvstore);
  }
  const size_t pool_bytes = static_cast<size_t>(slots) * seq->page_floats() * sizeof(float);
  ASSIGN_OR_RETURN(seq->k_pool_, backend.Allocate(pool_bytes));
  ASSIGN_OR_RETURN(seq->v_pool_, backend.Allocate(pool_bytes));
  const size_t rows_bytes = static_cast<size_t>(capacity) * seq->kv_dim_ * sizeof(float);
  ASSIGN_OR_RETURN(seq->gather_k_, backend.Allocate(rows_bytes));
  ASSIGN_OR_RETURN(seq->gather_v_, backend.Allocate(rows_bytes));
  ASSIGN_OR_RETURN(seq->page_ids_, backend.Allocate(static_cast<size_t>(seq->max_pages_) * sizeof(int32_t)));
  kernels::PagedAttentionParams p{config.num_heads, config.num_kv_heads, config.head_dim, options.page_size, 1, 1,
                                  1.0f};
  ASSIGN_OR_RETURN(seq->paged_workspace_, backend.Allocate(kernels::PagedAttentionWorkspaceBytes(
                                              p, seq->max_pages_, backend.num_threads())));
  // Slots are handed out lowest first.
  seq->free_slots_.resize(slots);
  std::iota(seq->free_slots_.rbegin(), seq->free_slots_.rend(), 0);
  return seq;
}

PagedKvSequence::PagedKvSequence(kernels::Backend& backend, const ModelConfig& config, int32_t capacity,
                                 const PagedKvOptions& options)
    : backend_(backend),
      config_(config),
      capacity_(capacity),
      options_(options),
      kv_dim_(config.kv_dim()),
      max_pages_((capacity + options.page_size - 1) / options.page_size),
      page_tables_(config.num_layers),
      length_(config.num_layers, 0),
      probes_(config.num_layers),
      policies_(config.num_layers),
      decode_steps_(config.num_layers, 0),
      last_selection_(config.num_layers),
      reference_q_(config.num_layers) {
  pyramids_.reserve(config.num_layers);
  for (int l = 0; l < config.num_layers; ++l) pyramids_.emplace_back(options.page_size, config.num_kv_heads, config.head_dim);
  for (LayerPolicy& p : policies_) p.start_level = options.selection.default_start_level;
  if (options.mode == SelectionMode::kLeoam && options.reestimation.enabled) {
    estimator_ = std::make_unique<PolicyEstimator>(config.num_layers, options.reestimation, options.selection);
  }
}

PagedKvSequence::~PagedKvSequence() {
  prefetcher_.reset();  // joins its worker and ends its leases
  if (!leases_to_release_.empty()) (void)options_.kvstore->Release(leases_to_release_);  // best effort
}

absl::Status PagedKvSequence::FinishPrefill() {
  if (!decoding_ && options_.mode == SelectionMode::kLeoam && options_.selection.adaptive && !policies_measured_) {
    RETURN_IF_ERROR(MeasurePolicies());
  }
  BeginDecode();
  return absl::OkStatus();
}

int32_t PagedKvSequence::BudgetPages(int32_t layer, int32_t context) const {
  double tokens = options_.budget_tokens > 0 ? options_.budget_tokens : options_.budget_fraction * context;
  // A budget that covers the whole context is exact: adaptivity only redistributes smaller ones.
  if (options_.mode == SelectionMode::kLeoam && tokens < context) {
    const int32_t dense = static_cast<int32_t>(
        std::count_if(policies_.begin(), policies_.end(), [](const LayerPolicy& p) { return p.dense; }));
    if (options_.selection.equal_total_budget && dense > 0 && dense < config_.num_layers) {
      const double pool = tokens * config_.num_layers - static_cast<double>(dense) * context;
      tokens = std::max(0.0, pool / (config_.num_layers - dense));
    }
    tokens *= policies_[layer].budget_scale;
  }
  return std::max<int32_t>(1, static_cast<int32_t>(std::ceil(tokens / options_.page_size)));
}

absl::Status PagedKvSequence::Append(int32_t layer, int32_t start, int32_t n, const float* k, const float* v) {
  if (layer < 0 || layer >= config_.num_layers) return absl::OutOfRangeError(absl::StrFormat("bad layer %d", layer));
  if (start != length_[layer] || n < 0 || start + n > capacity_) {
    return absl::OutOfRangeError(absl::StrFormat("layer %d: append of rows [%d, %d) to %d stored rows (capacity %d)",
                                                 layer, start, start + n, length_[layer], capacity_));
  }
  if (LayerMajorPrompt() && layer > 0 && options_.mode == SelectionMode::kLeoam && options_.selection.adaptive &&
      !policies_measured_) {
    // A layer-major prompt is done with layer - 1 (its last query came before this layer's first
    // key): measure its skew now, while its keys are still resident, instead of at the end of the
    // prompt, when the other layers' pages have taken its slots and its keys must come back from
    // the store.
    early_probe_mass_.resize(config_.num_layers);
    if (!early_probe_mass_[layer - 1].has_value()) {
      ASSIGN_OR_RETURN(early_probe_mass_[layer - 1], ProbeMass(layer - 1));
    }
  }
  // Abstracts come from the exact keys (first: pages written through below carry theirs).
  host_keys_.resize(static_cast<size_t>(n) * kv_dim_);
  RETURN_IF_ERROR(backend_.CopyToHost(host_keys_.data(), k, host_keys_.size() * sizeof(float)));
  for (int32_t i = 0; i < n; ++i) pyramids_[layer].AddKey(start + i, host_keys_.data() + static_cast<size_t>(i) * kv_dim_);
  const int32_t ps = options_.page_size;
  std::vector<int32_t>& table = page_tables_[layer];
  for (int32_t done = 0; done < n;) {
    const int32_t pos = start + done;
    const int32_t page = pos / ps;
    const int32_t offset = pos % ps;
    if (page == static_cast<int32_t>(table.size())) {
      if (tiered_) {
        ASSIGN_OR_RETURN(const int32_t slot, TakeSlot(layer));
        table.push_back(slot);
        slot_owner_[slot] = {layer, page};
        page_state_[layer].emplace_back();
      } else {
        if (free_slots_.empty()) return absl::ResourceExhaustedError("paged KV: no free page slot");
        table.push_back(free_slots_.back());
        free_slots_.pop_back();
      }
    }
    const int32_t run = std::min(ps - offset, n - done);  // rows of this call that land in this page
    const size_t bytes = static_cast<size_t>(run) * kv_dim_ * sizeof(float);
    const size_t src = static_cast<size_t>(done) * kv_dim_;
    const size_t dst = static_cast<size_t>(offset) * kv_dim_;
    RETURN_IF_ERROR(backend_.CopyOnDevice(k_page(table[page]) + dst, k + src, bytes));
    RETURN_IF_ERROR(backend_.CopyOnDevice(v_page(table[page]) + dst, v + src, bytes));
    done += run;
    length_[layer] = pos + run;
    if (tiered_ && offset + run == ps) pending_puts_.emplace_back(layer, page);  // full: write through
  }
  // With compression, a prompt chunk's full pages wait for the chunk's own query (Attend), which
  // ranks them (ChooseEncoding); until then they stay resident (TakeSlot flushes them if it must).
  const bool defer = options_.compression.enabled && !decoding_;
  if (tiered_ && !defer) RETURN_IF_ERROR(FlushPuts());
  return absl::OkStatus();
}

absl::Status PagedKvSequence::Attend(int32_t layer, const kernels::AttentionParams& params, const float* q,
                                     float* out, void* workspace) {
  const int32_t context = params.first_position + params.num_queries;
  if (layer < 0 || layer >= config_.num_layers || context != length_[layer]) {
    return absl::FailedPreconditionError(
        absl::StrFormat("layer %d: attention up to row %d but %d rows stored", layer, context, length_[layer]));
  }
  const bool compressing = tiered_ && options_.compression.enabled;
  if (!decoding_ || params.num_queries != 1) {
    if (options_.mode == SelectionMode::kLeoam && options_.selection.adaptive) {
      RETURN_IF_ERROR(RecordProbeQueries(layer, params, q));
    }
    if (compressing) {  // the chunk's last query scores the pages written next (ChooseEncoding)
      const size_t row = static_cast<size_t>(config_.num_heads) * config_.head_dim;
      std::vector<float>& ref = reference_q_[layer];
      ref.resize(row);
      RETURN_IF_ERROR(backend_.CopyToHost(ref.data(), q + (params.num_queries - 1) * row, row * sizeof(float)));
      for (float& x : ref) x *= params.scale;
      RETURN_IF_ERROR(FlushPuts());  // the chunk's pages, deferred by Append
    }
    return AttendAll(layer, params, q, out, workspace);
  }
  if (options_.mode == SelectionMode::kLeoam && options_.selection.adaptive && !policies_measured_) {
    RETURN_IF_ERROR(MeasurePolicies());
  }
  // Selection runs on the host from the abstracts.
  const size_t q_floats = static_cast<size_t>(config_.num_heads) * config_.head_dim;
  host_q_.resize(q_floats);
  RETURN_IF_ERROR(backend_.CopyToHost(host_q_.data(), q, q_floats * sizeof(float)));
  for (float& x : host_q_) x *= params.scale;
  if (compressing) reference_q_[layer] = host_q_;
  std::vector<int32_t>& pages = last_selection_[layer];
  ASSIGN_OR_RETURN(pages, Select(layer, context, &stats_.counters));

  const int32_t num_pages = pyramids_[layer].num_pages();
  const int32_t last_tokens = context - (num_pages - 1) * options_.page_size;
  stats_.selections += 1;
  stats_.pages_selected += static_cast<int64_t>(pages.size());
  stats_.tokens_attended += static_cast<int64_t>(pages.size() - 1) * options_.page_size +
                            (pages.back() == num_pages - 1 ? last_tokens : options_.page_size);
  stats_.context_tokens += context;
  if (options_.collect_stats) {
    ASSIGN_OR_RETURN(std::vector<float> keys, HostKeys(layer, context));
    const std::vector<float> mass = ExactPageMass(keys, host_q_.data(), context);
    double captured = 0.0;
    for (int32_t p : pages) captured += mass[p];
    stats_.mass_captured += captured;
    std::vector<float> sorted = mass;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const size_t tenth = std::max<size_t>(1, (sorted.size() + 9) / 10);
    stats_.mass_oracle += std::accumulate(sorted.begin(), sorted.begin() + std::min(pages.size(), sorted.size()), 0.0);
    const double top_tenth = std::accumulate(sorted.begin(), sorted.begin() + tenth, 0.0);
    stats_.mass_top_tenth += top_tenth;
    stats_.layer_mass_captured.resize(config_.num_layers, 0.0);
    stats_.layer_mass_top_tenth.resize(config_.num_layers, 0.0);
    stats_.layer_mass_captured[layer] += captured;
    stats_.layer_mass_top_tenth[layer] += top_tenth;
  }
  RETURN_IF_ERROR(AttendPages(layer, pages, params.scale, q, out));
  if (estimator_ != nullptr) {
    // Layers are observed in turn (layer l at steps l, l + interval, ...) so the cost spreads over steps.
    const int64_t step = decode_steps_[layer]++;
    const int32_t interval =
        policies_[layer].dense ? options_.reestimation.dense_interval : options_.reestimation.interval;
    if ((step + layer) % interval == 0) {
      RETURN_IF_ERROR(ObserveSelection(layer, pages, host_q_.data()));
    }
  }
  if (options_.mode == SelectionMode::kOffloadAll) DropStoredPages(layer);
  return absl::OkStatus();
}

absl::Status PagedKvSequence::AttendPages(int32_t layer, const std::vector<int32_t>& pages, float scale,
                                          const float* q, float* out) {
  if (tiered_) {
    RETURN_IF_ERROR(EnsureResident(layer, pages));
    // This layer's pages are in; the next layer's fetch overlaps this layer's attention and the
    // rest of its forward pass.
    if (prefetcher_ != nullptr && decoding_) IssuePrefetch(layer, length_[layer]);
  }
  const std::vector<int32_t>& table = page_tables_[layer];
  std::vector<int32_t> slots(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) slots[i] = table[pages[i]];
  RETURN_IF_ERROR(backend_.CopyToDevice(page_ids_.data(), slots.data(), slots.size() * sizeof(int32_t)));
  const int32_t num_pages = pyramids_[layer].num_pages();
  const int32_t last_tokens = length_[layer] - (num_pages - 1) * options_.page_size;
  kernels::PagedAttentionParams p{config_.num_heads,
                                  config_.num_kv_heads,
                                  config_.head_dim,
                                  options_.page_size,
                                  static_cast<int32_t>(pages.size()),
                                  pages.back() == num_pages - 1 ? last_tokens : options_.page_size,
                                  scale};
  return backend_.PagedAttention(p, q, k_pool_.as<float>(), v_pool_.as<float>(), page_ids_.as<int32_t>(), out,
                                 paged_workspace_.data());
}

absl::Status PagedKvSequence::AttendAll(int32_t layer, const kernels::AttentionParams& params, const float* q,
                                        float* out, void* workspace) {
  const int32_t context = length_[layer];
  const std::vector<int32_t>& table = page_tables_[layer];
  // A prompt token after a restored prefix (RestorePrefix) may see more absent pages than the
  // device budget holds at once: the gather below fetches them without taking slots.
  const bool absent_prompt_pages =
      tiered_ && !decoding_ && std::find(table.begin(), table.end(), -1) != table.end();
  if (params.num_queries == 1 && !absent_prompt_pages) {  // one token: the paged op over every page needs no gather
    std::vector<int32_t> all(pyramids_[layer].num_pages());
    std::iota(all.begin(), all.end(), 0);
    RETURN_IF_ERROR(AttendPages(layer, all, params.scale, q, out));
    if (options_.mode == SelectionMode::kOffloadAll) DropStoredPages(layer);
    return absl::OkStatus();
  }
  // Prompt chunk: gather the layer into contiguous rows for the dense causal kernel.
  const int32_t ps = options_.page_size;
  std::vector<int32_t> absent;  // tiered: pages not resident are fetched straight into the gather rows
  std::vector<float*> absent_k, absent_v;
  for (int32_t page = 0; page * ps < context; ++page) {
    const size_t rows = std::min(ps, context - page * ps);
    const size_t bytes = rows * kv_dim_ * sizeof(float);
    const size_t dst = static_cast<size_t>(page) * page_floats();
    if (table[page] < 0) {
      absent.push_back(page);
      absent_k.push_back(gather_k_.as<float>() + dst);
      absent_v.push_back(gather_v_.as<float>() + dst);
      continue;
    }
    RETURN_IF_ERROR(backend_.CopyOnDevice(gather_k_.as<float>() + dst, k_page(table[page]), bytes));
    RETURN_IF_ERROR(backend_.CopyOnDevice(gather_v_.as<float>() + dst, v_page(table[page]), bytes));
  }
  if (!absent.empty()) RETURN_IF_ERROR(FetchInto(layer, absent, absent_k, absent_v, /*to_device=*/true));
  RETURN_IF_ERROR(backend_.Attention(params, q, gather_k_.as<float>(), gather_v_.as<float>(), out, workspace));
  if (options_.mode == SelectionMode::kOffloadAll) DropStoredPages(layer);
  return absl::OkStatus();
}

absl::Status PagedKvSequence::RecordProbeQueries(int32_t layer, const kernels::AttentionParams& params,
                                                 const float* q) {
  const int32_t w = std::max(1, options_.selection.probe_queries);
  const int32_t take = std::min(w, params.num_queries);
  const size_t row = static_cast<size_t>(config_.num_heads) * config_.head_dim;
  Probe& probe = probes_[layer];
  const size_t old = probe.q.size();
  probe.q.resize(old + take * row);
  RETURN_IF_ERROR(backend_.CopyToHost(probe.q.data() + old, q + (params.num_queries - take) * row,
                                      take * row * sizeof(float)));
  for (size_t i = old; i < probe.q.size(); ++i) probe.q[i] *= params.scale;
  for (int32_t i = params.num_queries - take; i < params.num_queries; ++i) {
    probe.positions.push_back(params.first_position + i);
  }
  const int32_t excess = static_cast<int32_t>(probe.positions.size()) - w;
  if (excess > 0) {
    probe.q.erase(probe.q.begin(), probe.q.begin() + excess * row);
    probe.positions.erase(probe.positions.begin(), probe.positions.begin() + excess);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> PagedKvSequence::HostKeys(int32_t layer, int32_t context) {
  const int32_t ps = options_.page_size;
  // Whole pages: a fetched page is copied in full even where `context` ends inside it.
  std::vector<float> keys(static_cast<size_t>((context + ps - 1) / ps) * page_floats());
  const std::vector<int32_t>& table = page_tables_[layer];
  std::vector<int32_t> absent;
  std::vector<float*> absent_k;
  for (int32_t page = 0; page * ps < context; ++page) {
    const size_t rows = std::min(ps, context - page * ps);
    float* dst = keys.data() + static_cast<size_t>(page) * page_floats();
    if (table[page] < 0) {
      absent.push_back(page);
      absent_k.push_back(dst);
      continue;
    }
    RETURN_IF_ERROR(backend_.CopyToHost(dst, k_page(table[page]), rows * kv_dim_ * sizeof(float)));
  }
  if (!absent.empty()) {
    RETURN_IF_ERROR(FetchInto(layer, absent, absent_k, std::vector<float*>(absent.size(), nullptr),
                              /*to_device=*/false));
  }
  keys.resize(static_cast<size_t>(context) * kv_dim_);
  return keys;
}

std::vector<float> PagedKvSequence::ExactPageMass(const std::vector<float>& keys, const float* q,
                                                  int32_t context) const {
  // Host-side analysis (the skew probe, quality stats) on the CPU's SIMD kernels: the probe scores
  // 16 queries x every key x every layer, which scalar dot products made 11.6 s at 32K tokens.
  const kernels::cpu::SimdKernels& simd =
      kernels::cpu::SimdKernelsFor(kernels::cpu::DetectedCpuFeatures().level());
  const int32_t d = config_.head_dim;
  const int32_t group = config_.num_heads / config_.num_kv_heads;
  const int32_t ps = options_.page_size;
  std::vector<float> mass((context + ps - 1) / ps, 0.0f);
  std::vector<float> s(context);
  for (int32_t h = 0; h < config_.num_heads; ++h) {
    const int32_t kvh = h / group;
    simd.attn_scores(q + static_cast<size_t>(h) * d, keys.data() + static_cast<size_t>(kvh) * d, kv_dim_, context, d,
                     /*scale=*/1.0f, s.data());
    const float m = simd.max(s.data(), context);
    const float sum = simd.exp_sub_sum(s.data(), context, m);
    const float weight = 1.0f / (sum * static_cast<float>(config_.num_heads));
    for (int32_t t = 0; t < context; ++t) mass[t / ps] += s[t] * weight;
  }
  return mass;
}

absl::StatusOr<std::vector<float>> PagedKvSequence::ProbeMass(int32_t l) {
  const Probe& probe = probes_[l];
  if (probe.positions.empty()) return std::vector<float>();
  const int32_t context = probe.positions.back() + 1;
  if (context < options_.selection.min_probe_pages * options_.page_size) return std::vector<float>();
  const size_t row = static_cast<size_t>(config_.num_heads) * config_.head_dim;
  ASSIGN_OR_RETURN(std::vector<float> keys, HostKeys(l, context));
  std::vector<float> mass((context + options_.page_size - 1) / options_.page_size, 0.0f);
  for (size_t i = 0; i < probe.positions.size(); ++i) {
    const std::vector<float> m = ExactPageMass(keys, probe.q.data() + i * row, probe.positions[i] + 1);
    for (size_t p = 0; p < m.size(); ++p) mass[p] += m[p] / static_cast<float>(probe.positions.size());
  }
  return mass;
}

absl::Status PagedKvSequence::MeasurePolicies() {
  policies_measured_ = true;
  std::vector<std::vector<float>> layer_mass(config_.num_layers);
  for (int32_t l = 0; l < config_.num_layers; ++l) {
    if (!early_probe_mass_.empty() && early_probe_mass_[l].has_value()) {
      layer_mass[l] = std::move(*early_probe_mass_[l]);  // measured when the layer-major prompt left it
      continue;
    }
    ASSIGN_OR_RETURN(layer_mass[l], ProbeMass(l));
  }
  early_probe_mass_.clear();
  std::vector<LayerPolicy> measured = PoliciesFromProbe(layer_mass, options_.selection);
  if (options_.selection.equal_total_budget) {
    // Only as many dense layers (the flattest first) as the total budget pays for.
    std::vector<int32_t> dense;
    for (int32_t l = 0; l < config_.num_layers; ++l) {
      if (measured[l].dense) dense.push_back(l);
    }
    std::stable_sort(dense.begin(), dense.end(),
                     [&](int32_t a, int32_t b) { return measured[a].desert_rate < measured[b].desert_rate; });
    for (size_t i = AffordableDenseLayers(length_[0]); i < dense.size(); ++i) measured[dense[i]].dense = false;
  }
  for (int32_t l = 0; l < config_.num_layers; ++l) {
    if (measured[l].desert_rate >= 0) policies_[l] = measured[l];
  }
  probes_.clear();
  probes_.resize(config_.num_layers);
  return absl::OkStatus();
}

int32_t PagedKvSequence::AffordableDenseLayers(int32_t context) const {
  const int32_t layers = config_.num_layers;
  if (!options_.selection.equal_total_budget) return layers;
  const double base = options_.budget_tokens > 0 ? options_.budget_tokens : options_.budget_fraction * context;
  // Each sparse layer keeps at least min_budget_scale x base (and its sink and local pages): with
  // only the forced pages left, the sparse layers lose far more than a dense layer gains (a 10%
  // budget at 4K once paid for one dense layer by leaving the other 11 under 5 pages each).
  const double min_tokens =
      std::max(static_cast<double>(options_.selection.sink_pages + options_.selection.local_pages) * options_.page_size,
               static_cast<double>(options_.selection.min_budget_scale) * base);
  int32_t affordable = 0;
  while (affordable < layers &&
         (affordable + 1.0) * context <= layers * base - (layers - affordable - 1.0) * min_tokens) {
    ++affordable;
  }
  return affordable;
}

absl::Status PagedKvSequence::ObserveSelection(int32_t layer, const std::vector<int32_t>& pages,
                                               const float* query) {
  const auto start = std::chrono::steady_clock::now();
  const int32_t ps = options_.page_size;
  const int32_t context = length_[layer];
  const int32_t num_pages = pyramids_[layer].num_pages();
  const std::vector<int32_t>& table = page_tables_[layer];
  // The selected pages' keys, gathered to the host in selection order (Backend::CopyToHost: the
  // slot pool is device memory in general). Only the newest page can be partial, and it is the
  // last of the selection (the local window always holds it).
  std::vector<float>& keys = observe_keys_;  // grows once; no per-observation zero fill
  if (keys.size() < pages.size() * page_floats()) keys.resize(pages.size() * page_floats());
  int32_t rows = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    const int32_t page = pages[i];
    const int32_t page_rows = std::min(ps, context - page * ps);
    if (table[page] < 0 || (page_rows < ps && i + 1 != pages.size())) return absl::OkStatus();  // nothing to learn
    RETURN_IF_ERROR(backend_.CopyToHost(keys.data() + static_cast<size_t>(rows) * kv_dim_, k_page(table[page]),
                                        static_cast<size_t>(page_rows) * kv_dim_ * sizeof(float)));
    rows += page_rows;
  }
  const std::vector<float> mass = ExactPageMass(keys, query, rows);  // [selected page], sums to 1
  // The selection's own ranking of its pages (forced sink and local pages apart).
  std::vector<float> score = ScorePages(pyramids_[layer], pages, std::span<const float>(query, host_q_.size()),
                                        config_.num_heads);
  const int32_t sink = std::max(0, options_.selection.sink_pages);
  const int32_t local_begin = num_pages - std::max(1, options_.selection.local_pages);
  for (size_t i = 0; i < pages.size(); ++i) {
    if (pages[i] < sink || pages[i] >= local_begin) score[i] = std::numeric_limits<float>::infinity();
  }
  estimator_->Observe(layer, mass, score, num_pages, static_cast<int32_t>(pages.size()) == num_pages);
  const int64_t to_sparse = estimator_->dense_to_sparse(), to_dense = estimator_->sparse_to_dense();
  stats_.reestimate_changes += estimator_->Update(policies_, AffordableDenseLayers(context));
  stats_.reestimate_to_sparse += estimator_->dense_to_sparse() - to_sparse;
  stats_.reestimate_to_dense += estimator_->sparse_to_dense() - to_dense;
  stats_.reestimate_observations += 1;
  stats_.reestimate_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

}  // namespace leoam
