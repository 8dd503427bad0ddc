// PagedKvSequence, tiered mode: the device page cache (slot pool under a byte budget) and the
// kvstore traffic (write-through of full pages, synchronous fetch of selected misses).
// See paged_kv.h for the policy.
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "compute/engine/paged_kv.h"

namespace leoam {

kvstore::KvLayout KvStoreLayout(const ModelConfig& config, int32_t page_size) {
  kvstore::KvLayout layout;
  layout.num_layers = static_cast<uint32_t>(config.num_layers);
  layout.page_size = static_cast<uint32_t>(page_size);
  layout.num_kv_heads = static_cast<uint32_t>(config.num_kv_heads);
  layout.head_dim = static_cast<uint32_t>(config.head_dim) * 2;  // fp32 bytes in an fp16-sized page
  layout.dtype = kvstore::KvDtype::kF32;
  return layout;
}

absl::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  const absl::string_view t(text.data(), text.size());
  static constexpr std::pair<absl::string_view, int64_t> kSuffixes[] = {
      {"TiB", int64_t{1} << 40}, {"GiB", int64_t{1} << 30}, {"MiB", int64_t{1} << 20}, {"KiB", int64_t{1} << 10},
      {"T", int64_t{1} << 40},   {"G", int64_t{1} << 30},   {"M", int64_t{1} << 20},   {"K", int64_t{1} << 10},
      {"B", 1}};
  int64_t unit = 1;
  absl::string_view digits = t;
  for (const auto& [suffix, scale] : kSuffixes) {
    if (absl::EndsWith(t, suffix)) {
      unit = scale;
      digits = t.substr(0, t.size() - suffix.size());
      break;
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value < 0 || value > std::numeric_limits<int64_t>::max() / unit) {
    return absl::InvalidArgumentError(
        absl::StrCat("byte size '", t, "': give a non-negative integer with an optional suffix, e.g. 64MiB"));
  }
  return value * unit;
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
  // a layer at its share replaces its own least recently selected page (ties: the least often
  // selected); a layer under its share takes from layers over theirs; only then from anyone.
  const int32_t num_layers = config_.num_layers;
  const int32_t share = std::max<int32_t>(1, static_cast<int32_t>(slot_owner_.size()) / num_layers);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!free_slots_.empty()) {
      const int32_t slot = free_slots_.back();
      free_slots_.pop_back();
      resident_[layer] += 1;
      return slot;
    }
    auto pick = [&](auto&& eligible_layer) {
      int32_t victim = -1;
      int64_t best_used = std::numeric_limits<int64_t>::max(), best_uses = 0;
      for (int32_t s = 0; s < static_cast<int32_t>(slot_owner_.size()); ++s) {
        const auto [l, p] = slot_owner_[s];
        if (l < 0 || pinned_[s] || !eligible_layer(l)) continue;
        const PageState& st = page_state_[l][p];
        if (!st.stored) continue;
        if (st.last_used < best_used || (st.last_used == best_used && st.uses < best_uses)) {
          victim = s;
          best_used = st.last_used;
          best_uses = st.uses;
        }
      }
      return victim;
    };
    int32_t victim = -1;
    if (resident_[layer] >= share) victim = pick([&](int32_t l) { return l == layer; });
    if (victim < 0) victim = pick([&](int32_t l) { return resident_[l] > share; });
    if (victim < 0) victim = pick([](int32_t) { return true; });
    if (victim >= 0) {
      DropPage(slot_owner_[victim].first, slot_owner_[victim].second);
      continue;
    }
    if (pending_puts_.empty()) break;
    RETURN_IF_ERROR(FlushPuts());  // written-through pages become evictable
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "device page budget exhausted: %d page slots (%d bytes) cannot hold the pages this attention needs plus "
      "each layer's newest page; raise the device budget",
      slot_owner_.size(), options_.device_budget_bytes));
}

absl::Status PagedKvSequence::FlushPuts() {
  if (pending_puts_.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  kvstore::KvStoreClient& store = *options_.kvstore;
  const size_t half = page_floats() * sizeof(float);
  const uint32_t max_batch = std::max<uint32_t>(1, store.hello().max_pages_per_request);
  const int32_t heads_floats = config_.num_kv_heads * config_.head_dim;
  size_t next = 0;
  while (next < pending_puts_.size()) {
    const size_t n = std::min<size_t>(max_batch, pending_puts_.size() - next);
    std::vector<uint64_t> sizes(n, 2 * half);
    ASSIGN_OR_RETURN(std::vector<kvstore::StagingBuffer> bufs, store.AllocStaging(sizes));
    std::vector<kvstore::PagePut> puts(n);
    absl::Status status;
    for (size_t i = 0; i < n && status.ok(); ++i) {
      const auto [layer, page] = pending_puts_[next + i];
      const int32_t slot = page_tables_[layer][page];
      status = backend_.CopyToHost(bufs[i].data, k_page(slot), half);
      if (status.ok()) status = backend_.CopyToHost(bufs[i].data + half, v_page(slot), half);
      absl::StatusOr<const Hash128*> key = PageKey(page);
      if (status.ok() && !key.ok()) status = key.status();
      if (!status.ok()) break;
      kvstore::PagePut& put = puts[i];
      put.hash = **key;
      if (page > 0) put.parent = page_keys_[page - 1];
      put.layer = static_cast<uint32_t>(layer);
      put.encoding = kvstore::PageEncoding::kFp16;  // fp32 bytes, see KvStoreLayout
      put.staging_offset = bufs[i].offset;
      put.length = 2 * half;
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
    }
    stats_.pages_written += static_cast<int64_t>(n);
    stats_.bytes_written += static_cast<int64_t>(n * 2 * half);
    next += n;
  }
  pending_puts_.clear();
  stats_.write_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::Status PagedKvSequence::FetchInto(int32_t layer, const std::vector<int32_t>& pages,
                                        const std::vector<float*>& k_dst, const std::vector<float*>& v_dst,
                                        bool to_device) {
  const absl::Time start = absl::Now();
  kvstore::KvStoreClient& store = *options_.kvstore;
  const size_t half = page_floats() * sizeof(float);
  const uint32_t max_batch = std::max<uint32_t>(1, store.hello().max_pages_per_request);
  auto copy = [&](float* dst, const uint8_t* src) -> absl::Status {
    if (dst == nullptr) return absl::OkStatus();
    if (to_device) return backend_.CopyToDevice(dst, src, half);
    std::memcpy(dst, src, half);
    return absl::OkStatus();
  };
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
    ASSIGN_OR_RETURN(kvstore::FetchResult fetched, store.FetchPages(refs));
    absl::Status status;
    for (size_t i = 0; i < n && status.ok(); ++i) {
      const kvstore::FetchedPage& f = fetched.pages[i];
      if (!f.found) {
        status = absl::DataLossError(absl::StrFormat(
            "layer %d page %d was written through to the kvstore but the store no longer has it", layer,
            pages[next + i]));
      } else if (f.length != 2 * half || f.data == nullptr) {
        status = absl::DataLossError(absl::StrFormat("layer %d page %d: the store returned %d bytes, expected %d",
                                                     layer, pages[next + i], f.length, 2 * half));
      } else {
        status = copy(k_dst[i + next], f.data);
        if (status.ok()) status = copy(v_dst[i + next], f.data + half);
        if (f.from_disk) {
          stats_.pages_fetched_disk += 1;
          stats_.bytes_fetched_disk += static_cast<int64_t>(f.length);
        } else {
          stats_.pages_fetched_memory += 1;
          stats_.bytes_fetched_memory += static_cast<int64_t>(f.length);
        }
      }
    }
    if (fetched.lease_id != 0) {
      const uint64_t lease[1] = {fetched.lease_id};
      absl::Status released = store.Release(lease);
      if (status.ok()) status = released;
    }
    RETURN_IF_ERROR(status);
    next += n;
  }
  stats_.fetch_stall_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::Status PagedKvSequence::EnsureResident(int32_t layer, const std::vector<int32_t>& pages) {
  ++clock_;
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
  std::vector<float*> k_dst, v_dst;
  std::vector<int32_t> taken;
  for (size_t i = 0; i < misses.size(); ++i) {
    absl::StatusOr<int32_t> slot = TakeSlot(layer);
    if (!slot.ok()) {
      status = slot.status();
      break;
    }
    pinned_[*slot] = 1;
    taken.push_back(*slot);
    k_dst.push_back(k_page(*slot));
    v_dst.push_back(v_page(*slot));
  }
  if (status.ok() && !misses.empty()) status = FetchInto(layer, misses, k_dst, v_dst, /*to_device=*/true);
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
