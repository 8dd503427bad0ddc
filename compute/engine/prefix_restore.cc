// PagedKvSequence::RestorePrefix: prefix reuse through the kvstore's page hash chains (DESIGN §3).
// A page key names its whole prefix (fingerprint, parent key, tokens), so the longest run of
// leading prompt pages the store holds with every layer is KV this sequence would compute
// bit for bit: only their level-0 abstracts are read now (selection needs them; GetChainAbstracts),
// the payloads stay in the store until attention asks for them.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
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

  // Level-0 abstracts of every (page, layer): [min | max] per KV head and channel, fp32. They come
  // with GetChainAbstracts (through the arena: one round trip per reply, no bytes inside gRPC) and
  // go from the arena straight into the pyramids, one reply at a time. A reply whose sizes are
  // wrong is checked before any of it is used; an error after some replies were used ends the
  // restore there (a shorter prefix is still exact: the rest is computed).
  const int32_t layers = config_.num_layers;
  const size_t heads_floats = static_cast<size_t>(config_.num_kv_heads) * config_.head_dim;
  const size_t abstract_bytes = 2 * heads_floats * sizeof(float);
  int32_t complete = 0;  // pages whose every layer's abstract came back (the store may evict meanwhile)
  while (complete < pages) {
    absl::StatusOr<kvstore::ChainAbstracts> got =
        store.GetChainAbstracts(absl::MakeConstSpan(chain).subspan(complete, pages - complete));
    absl::Status status = got.status();
    for (size_t i = 0; status.ok() && i < got->lengths.size(); ++i) {
      if (got->lengths[i] != abstract_bytes) {
        status = absl::DataLossError(absl::StrFormat("page %d layer %d: stored abstract of %d bytes, expected %d",
                                                     complete + i / layers, i % layers, got->lengths[i],
                                                     abstract_bytes));
      }
    }
    if (status.ok()) {
      const int32_t n = static_cast<int32_t>(got->num_nodes);
      for (int32_t l = 0; l < layers; ++l) {
        for (int32_t i = 0; i < n; ++i) {
          // Arena blocks are page-aligned and every abstract is a multiple of 4 bytes: floats.
          const auto* a = reinterpret_cast<const float*>(got->data[static_cast<size_t>(i) * layers + l]);
          pyramids_[l].AddPage(complete + i, a, a + heads_floats);
          page_tables_[l].push_back(-1);
          PageState st;
          st.stored = true;
          page_state_[l].push_back(st);
        }
      }
      complete += n;
      status = store.Release({got->lease_id});
    } else if (got.ok()) {
      (void)store.Release({got->lease_id});  // the reply's error is the one to report
    }
    if (!status.ok()) {
      if (complete == 0) return status;  // nothing of this sequence changed
      LEOAM_LOG(WARNING, "prefix restore stops at page %d of %d: %s", complete, pages, status.ToString());
      break;
    }
    if (!got->limited || got->num_nodes == 0) break;
  }
  pages = complete;
  if (pages == 0) {
    restore.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return restore;
  }
  for (int32_t l = 0; l < layers; ++l) length_[l] = pages * ps;
  tokens_.assign(prompt.begin(), prompt.begin() + static_cast<size_t>(pages) * ps);
  page_keys_.assign(chain.begin(), chain.begin() + pages);
  ReleaseStoredLevel0();  // level0_in_store: the restored pages' level 0 stays in the store

  restore.cached_tokens = pages * ps;
  restore.pages_memory = std::min<int32_t>(static_cast<int32_t>(info.num_in_memory), pages);
  restore.pages_disk = pages - restore.pages_memory;
  restore.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return restore;
}

}  // namespace leoam
