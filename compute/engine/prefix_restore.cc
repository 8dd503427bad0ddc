// PagedKvSequence::RestorePrefix: prefix reuse through the kvstore's page hash chains (DESIGN §3).
// A page key names its whole prefix (fingerprint, parent key, tokens), so the longest run of
// leading prompt pages the store holds with every layer is KV this sequence would compute
// bit for bit: only their level-0 abstracts are read now (selection needs them), the payloads
// stay in the store until attention asks for them.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "compute/engine/paged_kv.h"

namespace leoam {

absl::StatusOr<PrefixRestore> PagedKvSequence::RestorePrefix(std::span<const int32_t> prompt) {
  PrefixRestore restore;
  if (!tiered_) return restore;
  if (!tokens_.empty() || length_[0] != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "RestorePrefix needs an empty sequence (it holds %d rows, %d pushed tokens)", length_[0], tokens_.size()));
  }
  const absl::Time start = absl::Now();
  const int32_t ps = options_.page_size;
  // The last prompt token is always computed (its logits pick the first generated token). leoam's
  // skew probe reads the last probe_queries prompt queries: those are computed too, so a restored
  // prefix sets the same per-layer policies as a full prefill.
  const bool probing = options_.mode == SelectionMode::kLeoam && options_.selection.adaptive;
  const int64_t computed = probing ? std::max(1, options_.selection.probe_queries) : 1;
  const int64_t usable = std::min<int64_t>(static_cast<int64_t>(prompt.size()) - computed, capacity_);
  const int32_t candidates = static_cast<int32_t>(std::max<int64_t>(0, usable / ps));
  if (candidates == 0) return restore;

  std::vector<Hash128> chain(candidates);
  for (int32_t i = 0; i < candidates; ++i) {
    chain[i] = PageChainHash(options_.fingerprint, i > 0 ? &chain[i - 1] : nullptr,
                             prompt.subspan(static_cast<size_t>(i) * ps, ps));
  }
  kvstore::KvStoreClient& store = *options_.kvstore;
  ASSIGN_OR_RETURN(const kvstore::PrefixInfo info, store.LookupPrefix(chain));
  int32_t pages = std::min<int32_t>(static_cast<int32_t>(info.num_present), candidates);
  if (pages == 0) {
    restore.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return restore;
  }

  // Level-0 abstracts of every (page, layer): [min | max] per KV head and channel, fp32.
  const int32_t layers = config_.num_layers;
  const size_t heads_floats = static_cast<size_t>(config_.num_kv_heads) * config_.head_dim;
  const size_t abstract_bytes = 2 * heads_floats * sizeof(float);
  std::vector<std::string> abstracts(static_cast<size_t>(pages) * layers);  // [page][layer]
  const size_t max_batch = std::max<uint32_t>(1, store.hello().max_pages_per_request);
  int32_t complete = pages;  // pages whose every layer's abstract came back (the store may evict meanwhile)
  for (size_t next = 0; next < abstracts.size() && static_cast<int32_t>(next / layers) < complete;) {
    const size_t n = std::min(max_batch, abstracts.size() - next);
    std::vector<kvstore::PageRef> refs(n);
    for (size_t i = 0; i < n; ++i) {
      refs[i].hash = chain[(next + i) / layers];
      refs[i].layer = static_cast<uint32_t>((next + i) % layers);
    }
    ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> got, store.GetAbstracts(refs));
    if (got.size() != n) {
      return absl::InternalError(absl::StrFormat("GetAbstracts returned %d entries for %d pages", got.size(), n));
    }
    for (size_t i = 0; i < n; ++i) {
      const int32_t page = static_cast<int32_t>((next + i) / layers);
      if (!got[i].has_value()) {
        complete = std::min(complete, page);
        continue;
      }
      if (got[i]->size() != abstract_bytes) {
        return absl::DataLossError(absl::StrFormat("page %d layer %d: stored abstract of %d bytes, expected %d", page,
                                                   (next + i) % layers, got[i]->size(), abstract_bytes));
      }
      abstracts[next + i] = std::move(*got[i]);
    }
    next += n;
  }
  pages = complete;
  if (pages == 0) {
    restore.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return restore;
  }

  std::vector<float> mn(heads_floats), mx(heads_floats);
  for (int32_t l = 0; l < layers; ++l) {
    for (int32_t p = 0; p < pages; ++p) {
      const std::string& a = abstracts[static_cast<size_t>(p) * layers + l];
      std::memcpy(mn.data(), a.data(), heads_floats * sizeof(float));
      std::memcpy(mx.data(), a.data() + heads_floats * sizeof(float), heads_floats * sizeof(float));
      pyramids_[l].AddPage(p, mn.data(), mx.data());
      page_tables_[l].push_back(-1);
      PageState st;
      st.stored = true;
      page_state_[l].push_back(st);
    }
    length_[l] = pages * ps;
  }
  tokens_.assign(prompt.begin(), prompt.begin() + static_cast<size_t>(pages) * ps);
  page_keys_.assign(chain.begin(), chain.begin() + pages);

  restore.cached_tokens = pages * ps;
  restore.pages_memory = std::min<int32_t>(static_cast<int32_t>(info.num_in_memory), pages);
  restore.pages_disk = pages - restore.pages_memory;
  restore.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return restore;
}

}  // namespace leoam
