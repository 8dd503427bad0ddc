// Store abstract paths: GetAbstracts (bytes inside the reply, any pages) and GetChainAbstracts
// (every layer of a chain's leading nodes, delivered through the arena under a lease).
#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/status_macros.h"
#include "kvstore/store.h"

namespace leoam::kvstore {

absl::Status Store::GetAbstracts(const v1::GetAbstractsRequest& req, v1::GetAbstractsResponse* resp) {
  if (static_cast<uint32_t>(req.pages_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError(absl::StrFormat("%d pages in one GetAbstracts; the limit is %d",
                                                        req.pages_size(), options_.max_pages_per_request));
  }
  std::vector<PageKey> keys(req.pages_size());
  std::vector<bool> known;
  std::vector<uint32_t> lengths;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
    const Session& s = *session.second;
    for (int i = 0; i < req.pages_size(); ++i) {
      const v1::PageKey& k = req.pages(i);
      if (!Hash128::FromBytes(k.hash(), &keys[i].node.hash)) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d].hash is %d bytes, want 16", i, k.hash().size()));
      }
      if (k.layer() >= s.layout.num_layers) {
        return absl::InvalidArgumentError(
            absl::StrFormat("pages[%d].layer %d >= num_layers %d", i, k.layer(), s.layout.num_layers));
      }
      keys[i].node.fp_id = s.fp_id;
      keys[i].layer = k.layer();
    }
    for (const PageKey& k : keys) {
      const PageInfo* info = index_.FindPage(k);
      known.push_back(info != nullptr);
      lengths.push_back(info != nullptr ? info->abstract_bytes : 0);
    }
  }
  std::vector<std::optional<std::string>> abstracts(keys.size());
  std::vector<PageKey> misses;
  std::vector<size_t> miss_index;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!known[i]) continue;
    std::string a(lengths[i], '\0');
    if (abstracts_.CopyTo(keys[i], lengths[i], reinterpret_cast<uint8_t*>(a.data()))) {
      abstracts[i] = std::move(a);
    } else {
      misses.push_back(keys[i]);
      miss_index.push_back(i);
    }
  }
  if (!misses.empty()) {
    std::vector<std::optional<std::string>> read;
    RETURN_IF_ERROR(disk_->ReadAbstracts(misses, &read));
    for (size_t j = 0; j < misses.size(); ++j) {
      if (read[j].has_value()) abstracts_.Insert(misses[j], *read[j]);
      abstracts[miss_index[j]] = std::move(read[j]);
    }
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    v1::AbstractEntry* e = resp->add_entries();
    if (abstracts[i].has_value()) {
      e->set_found(true);
      e->set_abstract(std::move(*abstracts[i]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Store::CopyAbstracts(absl::Span<const PageKey> keys, absl::Span<const uint32_t> lengths,
                                            absl::Span<uint8_t* const> dsts) {
  std::vector<PageKey> miss_keys;
  std::vector<uint32_t> miss_lengths;
  std::vector<uint8_t*> miss_dsts;
  std::vector<size_t> miss_index;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (abstracts_.CopyTo(keys[i], lengths[i], dsts[i])) continue;
    miss_keys.push_back(keys[i]);
    miss_lengths.push_back(lengths[i]);
    miss_dsts.push_back(dsts[i]);
    miss_index.push_back(i);
  }
  if (miss_keys.empty()) return keys.size();
  // Misses are random reads (keys are hashes): several MultiGets in flight on the I/O threads.
  constexpr size_t kMinSliceKeys = 256;
  const size_t slices = std::max<size_t>(1, std::min<size_t>(options_.io_threads, miss_keys.size() / kMinSliceKeys));
  std::vector<absl::StatusOr<size_t>> got(slices, size_t{0});
  auto range = [&](size_t k) { return std::make_pair(miss_keys.size() * k / slices, miss_keys.size() * (k + 1) / slices); };
  auto copy_slice = [&](size_t k) {
    const auto [b, e] = range(k);
    got[k] = disk_->CopyAbstracts(absl::MakeConstSpan(miss_keys).subspan(b, e - b),
                                  absl::MakeConstSpan(miss_lengths).subspan(b, e - b),
                                  absl::MakeConstSpan(miss_dsts).subspan(b, e - b));
  };
  if (slices > 1) {
    absl::BlockingCounter done(static_cast<int>(slices - 1));
    for (size_t k = 1; k < slices; ++k) {
      io_->Submit([&, k] {
        copy_slice(k);
        done.DecrementCount();
      }, /*urgent=*/true);
    }
    copy_slice(0);
    done.Wait();
  } else {
    copy_slice(0);
  }
  // Misses copied: up to the first one not stored (the first slice that stopped short).
  size_t misses_copied = 0;
  for (size_t k = 0; k < slices; ++k) {
    if (!got[k].ok()) return got[k].status();
    const auto [b, e] = range(k);
    misses_copied = b + *got[k];
    if (*got[k] < e - b) break;
  }
  for (size_t j = 0; j < misses_copied; ++j) {
    abstracts_.Insert(miss_keys[j], std::string_view(reinterpret_cast<const char*>(miss_dsts[j]), miss_lengths[j]));
  }
  return misses_copied < miss_keys.size() ? miss_index[misses_copied] : keys.size();
}

absl::Status Store::GetChainAbstracts(const v1::GetChainAbstractsRequest& req, v1::GetChainAbstractsResponse* resp) {
  ASSIGN_OR_RETURN(const std::vector<Hash128> chain, ParseChain(req.chain()));
  // 1. Under mu_: which leading nodes are stored with every layer, how many bytes their
  //    abstracts take (the index knows each size), an arena block for them and a lease on it.
  std::vector<PageKey> keys;
  std::vector<uint32_t> lengths;
  uint64_t total = 0, block = 0, lease = 0, session_id = 0;
  uint32_t nodes = 0, layers = 0;
  bool limited = false;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
    session_id = session.first;
    const Session& s = *session.second;
    layers = s.layout.num_layers;
    for (const Hash128& h : chain) {
      const NodeKey node{s.fp_id, h};
      const ChainIndex::Node* n = index_.Find(node);
      if (n == nullptr || n->layers.size() != layers) break;  // layers are < num_layers: size says all
      uint64_t node_bytes = 0;
      for (uint32_t layer = 0; layer < layers; ++layer) node_bytes += n->layers.at(layer).abstract_bytes;
      if (total + node_bytes > options_.max_abstract_region_bytes) {
        limited = true;
        break;
      }
      for (uint32_t layer = 0; layer < layers; ++layer) {
        keys.push_back(PageKey{node, layer});
        lengths.push_back(n->layers.at(layer).abstract_bytes);
      }
      index_.Touch(node);
      total += node_bytes;
      ++nodes;
    }
    if (nodes == 0 && limited) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "the abstracts of one chain node exceed the reply limit of %d bytes", options_.max_abstract_region_bytes));
    }
    if (total > 0) {
      std::optional<uint64_t> off = AllocateBlock(total);
      if (!off.has_value()) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "arena full: cannot place %d bytes of abstracts (arena %d bytes, %d in use by leases and staging); "
            "release leases or ask for fewer nodes",
            total, arena_.capacity(), arena_.used_bytes()));
      }
      block = *off;
      lease = leases_.Create(session_id, {block}, absl::Now() + options_.lease_timeout);
    }
  }
  // 2. Without mu_: copy the abstracts into the block (the block is pinned by our lease).
  if (!keys.empty() && total > 0) {
    std::vector<uint8_t*> dsts(keys.size());
    uint64_t at = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      dsts[i] = arena_file_.data() + block + at;
      at += lengths[i];
    }
    absl::StatusOr<size_t> copied = CopyAbstracts(keys, lengths, dsts);
    if (!copied.ok()) {
      absl::MutexLock l(&mu_);
      UnrefAll(leases_.Release(lease));
      return copied.status();
    }
    // A node evicted or dropped since step 1 cuts the answer there.
    if (*copied < keys.size()) {
      nodes = static_cast<uint32_t>(*copied / layers);
      limited = false;
      keys.resize(size_t{nodes} * layers);
      lengths.resize(keys.size());
      total = 0;
      for (uint32_t len : lengths) total += len;
      if (total == 0) {
        absl::MutexLock l(&mu_);
        UnrefAll(leases_.Release(lease));
        lease = 0;
      }
    }
  }
  resp->set_num_nodes(nodes);
  resp->set_limited(limited);
  if (lease != 0) {
    resp->set_lease_id(lease);
    resp->mutable_region()->set_offset(block);
    resp->mutable_region()->set_length(total);
    resp->set_lease_expires_in_ms(absl::ToInt64Milliseconds(options_.lease_timeout));
  }
  resp->mutable_abstract_bytes()->Reserve(static_cast<int>(lengths.size()));
  for (uint32_t len : lengths) resp->add_abstract_bytes(len);
  return absl::OkStatus();
}

}  // namespace leoam::kvstore
