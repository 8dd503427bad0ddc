// PagedKvSequence, tiered mode: the device page cache (slot pool under a byte budget) and the
// kvstore traffic (write-through of full pages, synchronous fetch of selected misses).
// See paged_kv.h for the policy.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "compute/engine/paged_kv.h"
#include "kernels/codec/page_codec.h"

namespace leoam {

kvstore::KvLayout KvStoreLayout(const ModelConfig& config, int32_t page_size) {
  kvstore::KvLayout layout;
  layout.num_layers = static_cast<uint32_t>(config.num_layers);
  layout.page_size = static_cast<uint32_t>(page_size);
  layout.num_kv_heads = static_cast<uint32_t>(config.num_kv_heads);
  layout.head_dim = static_cast<uint32_t>(config.head_dim);
  layout.dtype = kvstore::KvDtype::kF32;
  return layout;
}

void PagedKvSequence::BeginDecode() {
  if (decoding_) return;
  decoding_ = true;
  // Split the tier counters: what the prompt moved is not decode traffic.
  prefill_stats_ = stats_;
  PagedKvStats selection_only;
  selection_only.selections = stats_.selections;
  selection_only.pages_selected = stats_.pages_selected;
  selection_only.tokens_attended = stats_.tokens_attended;
  selection_only.context_tokens = stats_.context_tokens;
  selection_only.counters = stats_.counters;
  selection_only.mass_captured = stats_.mass_captured;
  stats_ = selection_only;
}

void PagedKvSequence::PushTokens(std::span<const int32_t> tokens) {
  if (tiered_) tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

absl::StatusOr<const Hash128*> PagedKvSequence::PageKey(int32_t page) {
  const int32_t ps = options_.page_size;
  while (static_cast<int32_t>(page_keys_.size()) <= page) {
    const int32_t i = static_cast<int32_t>(page_keys_.size());
    if (static_cast<int32_t>(tokens_.size()) < (i + 1) * ps) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "page %d is full but only %d tokens were pushed (call PushTokens before the forward pass)", i,
          tokens_.size()));
    }
    const Hash128* parent = i > 0 ? &page_keys_[i - 1] : nullptr;
    page_keys_.push_back(PageChainHash(options_.fingerprint, parent,
                                       std::span<const int32_t>(tokens_.data() + static_cast<size_t>(i) * ps, ps)));
  }
  return &page_keys_[page];
}

void PagedKvSequence::DropPage(int32_t layer, int32_t page) {
  int32_t& slot = page_tables_[layer][page];
  slot_owner_[slot] = {-1, -1};
  free_slots_.push_back(slot);
  resident_[layer] -= 1;
  slot = -1;
  stats_.evictions += 1;
}

absl::StatusOr<int32_t> PagedKvSequence::TakeSlot(int32_t layer) {
  // Layers are visited in a cycle every step, so plain LRU over all slots would evict exactly the
  // pages the next layers are about to need. Each layer gets a fair share of the slots instead:
  // a layer at its share replaces its own page of lowest RetentionKey (ties: the least often
  // selected); a layer under its share takes from layers over theirs; only then from anyone.
  // A layer-major prompt takes from the other layers first (PagedKvOptions::layer_major_prompt).
  const int32_t num_layers = config_.num_layers;
  const int32_t share = std::max<int32_t>(1, static_cast<int32_t>(slot_owner_.size()) / num_layers);
  // A dropped victim frees a slot for the next iteration; at most one flush (after which stored
  // pages are evictable) precedes giving up.
  for (bool flushed = false;;) {
    if (!free_slots_.empty()) {
      const int32_t slot = free_slots_.back();
      free_slots_.pop_back();
      resident_[layer] += 1;
      return slot;
    }
    auto pick = [&](auto&& eligible_layer) {
      int32_t victim = -1;
      int64_t best_key = std::numeric_limits<int64_t>::max(), best_uses = 0;
      for (int32_t s = 0; s < static_cast<int32_t>(slot_owner_.size()); ++s) {
        const auto [l, p] = slot_owner_[s];
        if (l < 0 || pinned_[s] || !eligible_layer(l)) continue;
        const PageState& st = page_state_[l][p];
        if (!st.stored) continue;
        const int64_t key = RetentionKey(l, p);
        if (key < best_key || (key == best_key && st.uses < best_uses)) {
          victim = s;
          best_key = key;
          best_uses = st.uses;
        }
      }
      return victim;
    };
    int32_t victim = -1;
    if (LayerMajorPrompt()) {
      victim = pick([&](int32_t l) { return l != layer; });
    } else if (resident_[layer] >= share) {
      victim = pick([&](int32_t l) { return l == layer; });
    }
    if (victim < 0) victim = pick([&](int32_t l) { return resident_[l] > share; });
    if (victim < 0) victim = pick([](int32_t) { return true; });
    if (victim >= 0) {
      DropPage(slot_owner_[victim].first, slot_owner_[victim].second);
      continue;
    }
    if (flushed || pending_puts_.empty()) break;
    RETURN_IF_ERROR(FlushPuts());  // written-through pages become evictable
    flushed = true;
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "device page budget exhausted: %d page slots (%d bytes) cannot hold the pages this attention needs plus "
      "each layer's newest page; raise the device budget",
      slot_owner_.size(), options_.device_budget_bytes));
}

float PagedKvSequence::PageBound(int32_t layer, int32_t page) const {
  const std::vector<float>& q = reference_q_[layer];
  const AbstractPyramid& pyr = pyramids_[layer];
  const int32_t d = config_.head_dim;
  const int32_t group = config_.num_heads / config_.num_kv_heads;
  float best = -std::numeric_limits<float>::infinity();
  for (int32_t h = 0; h < config_.num_heads; ++h) {
    const size_t kv = static_cast<size_t>(h / group) * d;
    best = std::max(best, KeyBound(q.data() + static_cast<size_t>(h) * d, pyr.min(0, page) + kv,
                                   pyr.max(0, page) + kv, d));
  }
  return best;
}

kvstore::PageEncoding PagedKvSequence::ChooseEncoding(int32_t layer, int32_t page, float top_bound) const {
  const PageCompressionOptions& c = options_.compression;
  if (!c.enabled || page < c.exact_sink_pages) return kvstore::PageEncoding::kF32;
  if (reference_q_[layer].empty()) return kvstore::PageEncoding::kFp16;  // no query yet: nothing to rank by
  const float gap = top_bound - PageBound(layer, page);
  if (gap <= c.fp16_gap) return kvstore::PageEncoding::kFp16;
  if (gap <= c.int8_gap) return kvstore::PageEncoding::kInt8;
  return kvstore::PageEncoding::kInt4;
}

void PagedKvSequence::EvictFor(int32_t layer, int32_t incoming) {
  // The policy of TakeSlot applied to a whole batch of misses with one scan of the slots (TakeSlot
  // per miss scans every slot each time: quadratic in the pool at long contexts).
  int64_t need = static_cast<int64_t>(incoming) - static_cast<int64_t>(free_slots_.size());
  if (need <= 0) return;
  const int32_t share = std::max<int32_t>(1, static_cast<int32_t>(slot_owner_.size()) / config_.num_layers);
  struct Candidate {
    int64_t key, uses;
    int32_t slot;
  };
  std::vector<Candidate> own, others;
  for (int32_t s = 0; s < static_cast<int32_t>(slot_owner_.size()); ++s) {
    const auto [l, p] = slot_owner_[s];
    if (l < 0 || pinned_[s]) continue;
    const PageState& st = page_state_[l][p];
    if (!st.stored) continue;
    (l == layer ? own : others).push_back({RetentionKey(l, p), st.uses, s});
  }
  auto lru = [](const Candidate& a, const Candidate& b) { return a.key != b.key ? a.key < b.key : a.uses < b.uses; };
  // At most `need` pages go, so only that many of the layer's own need ordering (a decode step at
  // its share replaces its own pages only: the other layers' candidates are then never sorted).
  const size_t own_ordered = std::min<size_t>(own.size(), static_cast<size_t>(need));
  std::partial_sort(own.begin(), own.begin() + own_ordered, own.end(), lru);
  auto evict = [&](const Candidate& c) {
    DropPage(slot_owner_[c.slot].first, slot_owner_[c.slot].second);
    --need;
  };
  // As TakeSlot would do miss by miss: the free slots go first; then while the layer is under its
  // share it takes from layers over theirs, and once at its share it replaces its own pages.
  // A layer-major prompt takes every slot it can from the other layers first.
  const int64_t after_free = resident_[layer] + static_cast<int64_t>(free_slots_.size());
  const int64_t from_others =
      LayerMajorPrompt() ? need : std::max<int64_t>(0, std::min<int64_t>(need, share - after_free));
  int64_t from_own = need - from_others;
  // 1. The layer's own pages of lowest retention key.
  size_t i = 0;
  while (from_own > 0 && i < own.size()) {
    evict(own[i++]);
    --from_own;
  }
  // 2. Pages of layers over their share (a layer-major prompt: of any other layer), lowest key
  // first; 3. anyone's.
  if (need > 0) std::sort(others.begin(), others.end(), lru);
  std::vector<uint8_t> taken(others.size(), 0);
  for (size_t j = 0; need > 0 && j < others.size(); ++j) {
    const int32_t l = slot_owner_[others[j].slot].first;
    if (resident_[l] > share || LayerMajorPrompt()) {
      evict(others[j]);
      taken[j] = 1;
    }
  }
  for (; need > 0 && i < own.size(); ++i) evict(own[i]);
  for (size_t j = 0; need > 0 && j < others.size(); ++j) {
    if (!taken[j]) evict(others[j]);
  }
}

absl::Status PagedKvSequence::FlushPuts() {
  if (pending_puts_.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  kvstore::KvStoreClient& store = *options_.kvstore;
  const size_t half = page_floats() * sizeof(float);
  const uint32_t max_batch = std::max<uint32_t>(1, store.hello().max_pages_per_request);
  const int32_t heads_floats = config_.num_kv_heads * config_.head_dim;
  const codec::PageShape shape{2 * int64_t{options_.page_size} * config_.num_kv_heads, config_.head_dim};
  // Encodings first: the top bound of a layer is computed once per flush over all its pages.
  std::vector<kvstore::PageEncoding> encodings(pending_puts_.size(), kvstore::PageEncoding::kF32);
  if (options_.compression.enabled) {
    std::vector<float> top(config_.num_layers, std::numeric_limits<float>::quiet_NaN());
    for (size_t i = 0; i < pending_puts_.size(); ++i) {
      const auto [layer, page] = pending_puts_[i];
      if (std::isnan(top[layer]) && !reference_q_[layer].empty()) {
        float t = -std::numeric_limits<float>::infinity();
        for (int32_t p = 0; p < pyramids_[layer].num_pages(); ++p) t = std::max(t, PageBound(layer, p));
        top[layer] = t;
      }
      encodings[i] = ChooseEncoding(layer, page, top[layer]);
    }
  }
  size_t next = 0;
  while (next < pending_puts_.size()) {
    const size_t n = std::min<size_t>(max_batch, pending_puts_.size() - next);
    std::vector<uint64_t> sizes(n);
    for (size_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(sizes[i], codec::EncodedPageBytes(encodings[next + i], shape));
    }
    ASSIGN_OR_RETURN(std::vector<kvstore::StagingBuffer> bufs, store.AllocStaging(sizes));
    std::vector<kvstore::PagePut> puts(n);
    absl::Status status;
    for (size_t i = 0; i < n && status.ok(); ++i) {
      const auto [layer, page] = pending_puts_[next + i];
      const int32_t slot = page_tables_[layer][page];
      const kvstore::PageEncoding encoding = encodings[next + i];
      if (encoding == kvstore::PageEncoding::kF32) {  // the page's bytes as they are
        status = backend_.CopyToHost(bufs[i].data, k_page(slot), half);
        if (status.ok()) status = backend_.CopyToHost(bufs[i].data + half, v_page(slot), half);
      } else {
        host_page_.resize(2 * page_floats());
        status = backend_.CopyToHost(host_page_.data(), k_page(slot), half);
        if (status.ok()) status = backend_.CopyToHost(host_page_.data() + page_floats(), v_page(slot), half);
        if (status.ok()) {
          status = codec::EncodePage(encoding, shape, host_page_, absl::Span<uint8_t>(bufs[i].data, sizes[i]));
        }
      }
      absl::StatusOr<const Hash128*> key = PageKey(page);
      if (status.ok() && !key.ok()) status = key.status();
      if (!status.ok()) break;
      kvstore::PagePut& put = puts[i];
      put.hash = **key;
      if (page > 0) put.parent = page_keys_[page - 1];
      put.layer = static_cast<uint32_t>(layer);
      put.encoding = encoding;
      put.staging_offset = bufs[i].offset;
      put.length = sizes[i];
      // Level-0 abstract: per KV head and channel, min then max of the exact post-RoPE keys.
      const AbstractPyramid& pyr = pyramids_[layer];
      put.abstract.resize(2 * heads_floats * sizeof(float));
      std::memcpy(put.abstract.data(), pyr.min(0, page), heads_floats * sizeof(float));
      std::memcpy(put.abstract.data() + heads_floats * sizeof(float), pyr.max(0, page), heads_floats * sizeof(float));
    }
    absl::StatusOr<kvstore::PutResult> result =
        status.ok() ? store.PutPages(puts) : absl::StatusOr<kvstore::PutResult>(status);
    if (!result.ok()) {
      std::vector<uint64_t> offsets;
      for (const kvstore::StagingBuffer& b : bufs) offsets.push_back(b.offset);
      (void)store.Release({}, offsets);  // best effort: the staging space is not committed
      return result.status();
    }
    for (size_t i = 0; i < n; ++i) {
      const auto [layer, page] = pending_puts_[next + i];
      page_state_[layer][page].stored = true;
      stats_.bytes_written += static_cast<int64_t>(sizes[i]);
      stats_.pages_written_by_encoding[static_cast<size_t>(encodings[next + i])] += 1;
    }
    stats_.pages_written += static_cast<int64_t>(n);
    stats_.bytes_written_exact += static_cast<int64_t>(n * 2 * half);
    next += n;
  }
  pending_puts_.clear();
  stats_.write_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  ReleaseStoredLevel0();
  return absl::OkStatus();
}

absl::Status PagedKvSequence::CopyFetched(int32_t layer, int32_t page, const kvstore::FetchedPage& f, float* k_dst,
                                          float* v_dst, bool to_device) {
  if (!f.found) {
    return absl::DataLossError(absl::StrFormat(
        "layer %d page %d was written through to the kvstore but the store no longer has it", layer, page));
  }
  const size_t half = page_floats() * sizeof(float);
  const codec::PageShape shape{2 * int64_t{options_.page_size} * config_.num_kv_heads, config_.head_dim};
  absl::StatusOr<size_t> want = codec::EncodedPageBytes(f.encoding, shape);
  if (!want.ok() || f.length != *want || f.data == nullptr) {
    return absl::DataLossError(absl::StrFormat("layer %d page %d: the store returned %d bytes of %s, expected %d",
                                               layer, page, f.length, codec::PageEncodingName(f.encoding),
                                               want.ok() ? *want : 0));
  }
  const uint8_t* src = f.data;
  if (f.encoding != kvstore::PageEncoding::kF32) {  // decode on the compute side
    decoded_.resize(2 * page_floats());
    RETURN_IF_ERROR(
        codec::DecodePage(f.encoding, shape, absl::Span<const uint8_t>(f.data, f.length), absl::Span<float>(decoded_)));
    src = reinterpret_cast<const uint8_t*>(decoded_.data());
  }
  for (auto [dst, from] : {std::pair<float*, const uint8_t*>{k_dst, src}, {v_dst, src + half}}) {
    if (dst == nullptr) continue;
    if (to_device) {
      RETURN_IF_ERROR(backend_.CopyToDevice(dst, from, half));
    } else {
      std::memcpy(dst, from, half);
    }
  }
  if (f.from_disk) {
    stats_.pages_fetched_disk += 1;
    stats_.bytes_fetched_disk += static_cast<int64_t>(f.length);
  } else {
    stats_.pages_fetched_memory += 1;
    stats_.bytes_fetched_memory += static_cast<int64_t>(f.length);
  }
  return absl::OkStatus();
}

absl::Status PagedKvSequence::FetchInto(int32_t layer, const std::vector<int32_t>& pages,
                                        const std::vector<float*>& k_dst, const std::vector<float*>& v_dst,
                                        bool to_device) {
  const absl::Time start = absl::Now();
  kvstore::KvStoreClient& store = *options_.kvstore;
  const uint32_t max_batch = std::max<uint32_t>(1, store.hello().max_pages_per_request);
  for (size_t next = 0; next < pages.size();) {
    const size_t n = std::min<size_t>(max_batch, pages.size() - next);
    std::vector<kvstore::PageRef> refs(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t page = pages[next + i];
      if (page >= static_cast<int32_t>(page_state_[layer].size()) || !page_state_[layer][page].stored) {
        return absl::InternalError(absl::StrFormat("layer %d page %d is neither resident nor stored", layer, page));
      }
      refs[i].hash = page_keys_[page];
      refs[i].layer = static_cast<uint32_t>(layer);
    }
    // The previous fetch's lease ends in this round trip (one RPC per fetch, not two).
    const absl::Time rpc_start = absl::Now();
    absl::StatusOr<kvstore::FetchResult> result = store.FetchPages(refs, leases_to_release_);
    if (!result.ok() && !leases_to_release_.empty()) {
      (void)store.Release(leases_to_release_);  // one had timed out: the call failed as a whole
      result = store.FetchPages(refs);
    }
    stats_.fetch_rpc_seconds += absl::ToDoubleSeconds(absl::Now() - rpc_start);
    leases_to_release_.clear();
    RETURN_IF_ERROR(result.status());
    const kvstore::FetchResult& fetched = *result;
    absl::Status status;
    for (size_t i = 0; i < n && status.ok(); ++i) {
      status = CopyFetched(layer, pages[next + i], fetched.pages[i], k_dst[next + i], v_dst[next + i], to_device);
    }
    if (fetched.lease_id != 0) leases_to_release_.push_back(fetched.lease_id);
    RETURN_IF_ERROR(status);
    next += n;
  }
  stats_.fetch_stall_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

void PagedKvSequence::IssuePrefetch(int32_t layer, int32_t context) {
  const int32_t next = (layer + 1) % config_.num_layers;
  const std::vector<int32_t>& table = page_tables_[next];
  const int32_t num_pages = static_cast<int32_t>(table.size());
  std::vector<int32_t> predicted;
  if (options_.mode == SelectionMode::kOffloadAll) {
    predicted.resize(num_pages);
    std::iota(predicted.begin(), predicted.end(), 0);
  } else {
    predicted = last_selection_[next];  // the previous step's choice: selections drift slowly
    if (next > 0 && num_pages > 0) {
      // Speculative query: this layer's (scaled) query against the next layer's abstracts. The
      // residual stream changes little from one layer to the next, so it ranks pages similarly.
      SelectionCounters counters;
      // A prediction: if the store cannot give released abstracts back now, predict without them.
      const absl::StatusOr<std::vector<int32_t>> spec = Select(next, context, &counters);
      stats_.prefetch_abstracts_read += counters.abstracts_read;
      if (spec.ok()) {
        std::vector<int32_t> merged;
        std::set_union(predicted.begin(), predicted.end(), spec->begin(), spec->end(), std::back_inserter(merged));
        predicted = std::move(merged);
      }
    }
  }
  const size_t max_batch = std::max<uint32_t>(1, options_.kvstore->hello().max_pages_per_request);
  std::vector<int32_t> pages;
  std::vector<kvstore::PageRef> refs;
  for (int32_t p : predicted) {
    if (p >= num_pages || table[p] >= 0 || !page_state_[next][p].stored || pages.size() == max_batch) continue;
    pages.push_back(p);
    kvstore::PageRef ref;
    ref.hash = page_keys_[p];
    ref.layer = static_cast<uint32_t>(next);
    refs.push_back(ref);
  }
  const int64_t n = static_cast<int64_t>(pages.size());
  if (prefetcher_->Start(next, std::move(pages), std::move(refs))) stats_.prefetch_pages += n;
}

absl::StatusOr<std::vector<int32_t>> PagedKvSequence::Select(int32_t layer, int32_t context,
                                                             SelectionCounters* counters) {
  Level0Source level0;
  if (options_.level0_in_store) {
    level0 = [this, layer](std::span<const int32_t> pages, std::vector<float>* mins, std::vector<float>* maxs) {
      return StoredLevel0(layer, pages, mins, maxs);
    };
  }
  return SelectPagesFrom(options_.mode, pyramids_[layer], host_q_, config_.num_heads, BudgetPages(layer, context),
                         policies_[layer], options_.selection, counters, PreferredPages(layer), level0);
}

absl::Status PagedKvSequence::StoredLevel0(int32_t layer, std::span<const int32_t> pages, std::vector<float>* mins,
                                           std::vector<float>* maxs) {
  std::vector<kvstore::PageRef> refs(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    refs[i].hash = page_keys_[pages[i]];
    refs[i].layer = static_cast<uint32_t>(layer);
  }
  ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> got, options_.kvstore->GetAbstracts(refs));
  // As written by FlushPuts: [num_kv_heads * head_dim] mins, then as many maxes, fp32.
  const size_t width = static_cast<size_t>(kv_dim_);
  mins->resize(pages.size() * width);
  maxs->resize(pages.size() * width);
  for (size_t i = 0; i < pages.size(); ++i) {
    if (i >= got.size() || !got[i].has_value() || got[i]->size() != 2 * width * sizeof(float)) {
      return absl::DataLossError(absl::StrFormat(
          "layer %d page %d: its level-0 abstract was freed here for the store, which %s", layer, pages[i],
          i < got.size() && got[i].has_value() ? "returned one of the wrong size" : "no longer has it"));
    }
    std::memcpy(mins->data() + i * width, got[i]->data(), width * sizeof(float));
    std::memcpy(maxs->data() + i * width, got[i]->data() + width * sizeof(float), width * sizeof(float));
  }
  stats_.level0_bytes_from_store += static_cast<int64_t>(pages.size() * 2 * width * sizeof(float));
  return absl::OkStatus();
}

void PagedKvSequence::ReleaseStoredLevel0() {
  if (!options_.level0_in_store) return;
  for (int32_t layer = 0; layer < config_.num_layers; ++layer) {
    AbstractPyramid& pyr = pyramids_[layer];
    const std::vector<PageState>& state = page_state_[layer];
    int32_t first_unstored = pyr.level0_first();
    while (first_unstored < static_cast<int32_t>(state.size()) && state[first_unstored].stored) ++first_unstored;
    pyr.ReleaseLevel0Below(first_unstored);
  }
}

std::span<const uint8_t> PagedKvSequence::PreferredPages(int32_t layer) {
  const SelectionOptions& sel = options_.selection;
  if (!(sel.resident_logit_margin > 0.0f)) return {};
  const std::vector<int32_t>& table = page_tables_[layer];
  if (sel.preferred_pages == SelectionOptions::PreferredPages::kPreviousSelection) {
    preferred_flags_.assign(table.size(), 0);
    for (int32_t p : last_selection_[layer]) preferred_flags_[p] = 1;
    return preferred_flags_;
  }
  if (!tiered_) return {};
  preferred_flags_.resize(table.size());
  for (size_t p = 0; p < table.size(); ++p) preferred_flags_[p] = table[p] >= 0 ? 1 : 0;
  return preferred_flags_;
}

int64_t PagedKvSequence::RetentionKey(int32_t layer, int32_t page) const {
  // Recency in the clock of EnsureResident (one tick per layer and step), plus the score bonus in
  // the same unit: score_retention_steps decode steps for a page that held all of a step's mass.
  const PageState& st = page_state_[layer][page];
  const double bonus = static_cast<double>(st.score) * options_.score_retention_steps * config_.num_layers;
  return st.last_used + static_cast<int64_t>(std::lround(bonus));
}

void PagedKvSequence::ScoreSelection(int32_t layer, const std::vector<int32_t>& pages) {
  // The selection's view of each page (selection.h, GQA scoring): per query head, a softmax of the
  // selected pages' key bounds; a page's score is its mean over heads, the estimated share of the
  // step's attention mass it holds.
  const int32_t n = static_cast<int32_t>(pages.size());
  const int32_t heads = config_.num_heads;
  const int32_t d = config_.head_dim;
  const int32_t group = config_.num_heads / config_.num_kv_heads;
  if (n == 0 || host_q_.size() != static_cast<size_t>(heads) * d) return;
  const AbstractPyramid& pyr = pyramids_[layer];
  score_scratch_.assign(static_cast<size_t>(n), 0.0f);
  std::vector<float> bounds(n);
  for (int32_t h = 0; h < heads; ++h) {
    const size_t kv = static_cast<size_t>(h / group) * d;
    const float* q = host_q_.data() + static_cast<size_t>(h) * d;
    float top = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; ++i) {
      bounds[i] = KeyBound(q, pyr.min(0, pages[i]) + kv, pyr.max(0, pages[i]) + kv, d);
      top = std::max(top, bounds[i]);
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      bounds[i] = std::exp(bounds[i] - top);
      sum += bounds[i];
    }
    const float weight = static_cast<float>(1.0 / (sum * heads));
    for (int32_t i = 0; i < n; ++i) score_scratch_[i] += bounds[i] * weight;
  }
  for (int32_t i = 0; i < n; ++i) page_state_[layer][pages[i]].score = score_scratch_[i];
}

absl::Status PagedKvSequence::EnsureResident(int32_t layer, const std::vector<int32_t>& pages) {
  ++clock_;
  // Decode selections of quest / leoam carry scores (dense and offload-all select every page).
  if (decoding_ && options_.score_retention_steps > 0 &&
      (options_.mode == SelectionMode::kQuest || options_.mode == SelectionMode::kLeoam)) {
    ScoreSelection(layer, pages);
  }
  std::vector<int32_t>& table = page_tables_[layer];
  std::vector<int32_t> misses;
  for (int32_t page : pages) {
    PageState& st = page_state_[layer][page];
    st.last_used = clock_;
    st.uses += 1;
    if (table[page] >= 0) {
      pinned_[table[page]] = 1;
      stats_.cache_hits += 1;
    } else {
      misses.push_back(page);
    }
  }
  absl::Status status;
  std::vector<int32_t> taken;
  EvictFor(layer, static_cast<int32_t>(misses.size()));
  for (size_t i = 0; i < misses.size(); ++i) {
    absl::StatusOr<int32_t> slot = TakeSlot(layer);
    if (!slot.ok()) {
      status = slot.status();
      break;
    }
    pinned_[*slot] = 1;
    taken.push_back(*slot);
  }
  // Misses the prefetcher already asked the store for are copied out of its batch; the rest are
  // fetched now.
  std::vector<int32_t> sync_pages;
  std::vector<float*> k_dst, v_dst;
  if (status.ok() && !misses.empty()) {
    const absl::Time start = absl::Now();
    double waited = 0.0;
    const PagePrefetcher::Batch* batch = prefetcher_ != nullptr ? prefetcher_->Take(layer, misses, &waited) : nullptr;
    stats_.prefetch_wait_seconds += waited;
    if (batch != nullptr) stats_.prefetch_fetch_seconds += batch->fetch_seconds;
    size_t b = 0;  // batch pages are increasing, as misses are
    for (size_t i = 0; i < misses.size() && status.ok(); ++i) {
      if (batch != nullptr && batch->status.ok()) {
        while (b < batch->pages_of.size() && batch->pages_of[b] < misses[i]) ++b;
      }
      if (batch != nullptr && batch->status.ok() && b < batch->pages_of.size() && batch->pages_of[b] == misses[i] &&
          batch->fetched.pages[b].found) {
        status = CopyFetched(layer, misses[i], batch->fetched.pages[b], k_page(taken[i]), v_page(taken[i]),
                             /*to_device=*/true);
        stats_.prefetch_hits += 1;
      } else {
        sync_pages.push_back(misses[i]);
        k_dst.push_back(k_page(taken[i]));
        v_dst.push_back(v_page(taken[i]));
      }
    }
    if (prefetcher_ != nullptr) prefetcher_->Finish();
    stats_.fetch_stall_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  }
  if (status.ok() && !sync_pages.empty()) status = FetchInto(layer, sync_pages, k_dst, v_dst, /*to_device=*/true);
  if (status.ok()) {
    for (size_t i = 0; i < misses.size(); ++i) {
      table[misses[i]] = taken[i];
      slot_owner_[taken[i]] = {layer, misses[i]};
    }
    stats_.cache_misses += static_cast<int64_t>(misses.size());
  } else {
    for (int32_t s : taken) {
      free_slots_.push_back(s);
      resident_[layer] -= 1;
    }
  }
  std::fill(pinned_.begin(), pinned_.end(), 0);
  return status;
}

void PagedKvSequence::DropStoredPages(int32_t layer) {
  std::vector<int32_t>& table = page_tables_[layer];
  for (int32_t page = 0; page < static_cast<int32_t>(table.size()); ++page) {
    if (table[page] >= 0 && page_state_[layer][page].stored) DropPage(layer, page);
  }
}

}  // namespace leoam
