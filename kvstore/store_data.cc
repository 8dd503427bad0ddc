// Store data paths: AllocStaging, PutPages (with disk-tier eviction), FetchPages, Prefetch.
// Abstracts: store_abstracts.cc.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "kvstore/crc32c.h"
#include "kvstore/store.h"

namespace leoam::kvstore {
namespace {

// The codec's encodings are the wire values (PutPage.encoding is cast to codec::PageEncoding).
static_assert(static_cast<int>(codec::PageEncoding::kFp16) == v1::PAGE_ENCODING_FP16);
static_assert(static_cast<int>(codec::PageEncoding::kInt8) == v1::PAGE_ENCODING_INT8);
static_assert(static_cast<int>(codec::PageEncoding::kInt4) == v1::PAGE_ENCODING_INT4);
static_assert(static_cast<int>(codec::PageEncoding::kBf16) == v1::PAGE_ENCODING_BF16);
static_assert(static_cast<int>(codec::PageEncoding::kF32) == v1::PAGE_ENCODING_F32);
static_assert(v1::PageEncoding_MAX == v1::PAGE_ENCODING_F32, "a new wire encoding needs a codec");

// The largest encoded page of a layout: any encoding is valid for any dtype (the engine picks
// one per page), so it is the F32 page.
uint64_t MaxPageBytes(const Layout& layout) {
  absl::StatusOr<size_t> b = layout.PageBytes(codec::kLargestPageEncoding);
  return b.ok() ? *b : 0;
}

absl::Status ParsePageKeys(const google::protobuf::RepeatedPtrField<v1::PageKey>& in, uint32_t fp_id,
                           const Layout& layout, std::vector<PageKey>* out) {
  out->resize(in.size());
  for (int i = 0; i < in.size(); ++i) {
    if (!Hash128::FromBytes(in[i].hash(), &(*out)[i].node.hash)) {
      return absl::InvalidArgumentError(absl::StrFormat("pages[%d].hash is %d bytes, want 16", i, in[i].hash().size()));
    }
    if (in[i].layer() >= layout.num_layers) {
      return absl::InvalidArgumentError(
          absl::StrFormat("pages[%d].layer %d >= num_layers %d", i, in[i].layer(), layout.num_layers));
    }
    (*out)[i].node.fp_id = fp_id;
    (*out)[i].layer = in[i].layer();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Store::AllocStaging(const v1::AllocStagingRequest& req, v1::AllocStagingResponse* resp) {
  if (static_cast<uint32_t>(req.sizes_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError(absl::StrFormat("%d staging buffers in one request; the limit is %d",
                                                        req.sizes_size(), options_.max_pages_per_request));
  }
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
  const uint64_t max_bytes = MaxPageBytes(session.second->layout);
  uint64_t total = 0;
  for (int i = 0; i < req.sizes_size(); ++i) {
    if (req.sizes(i) == 0 || req.sizes(i) > max_bytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sizes[%d] = %d; a page of this layout takes 1..%d bytes", i, req.sizes(i), max_bytes));
    }
    total += req.sizes(i);
  }
  if (total > arena_.capacity()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%d staging bytes requested; the arena has %d", total, arena_.capacity()));
  }
  const absl::Time expiry = absl::Now() + options_.lease_timeout;
  std::vector<uint64_t> got;
  for (int i = 0; i < req.sizes_size(); ++i) {
    std::optional<uint64_t> off = AllocateBlock(req.sizes(i));
    if (!off.has_value()) {
      UnrefAll(got);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "arena full: cannot stage %d bytes (arena %d bytes, %d in use, most of it leased or staged)", total,
          arena_.capacity(), arena_.used_bytes()));
    }
    got.push_back(*off);
  }
  for (int i = 0; i < req.sizes_size(); ++i) {
    staging_[got[i]] = Staging{session.first, req.sizes(i), expiry};
    staging_bytes_ += req.sizes(i);
    v1::ArenaRegion* r = resp->add_buffers();
    r->set_offset(got[i]);
    r->set_length(req.sizes(i));
  }
  resp->set_expires_in_ms(absl::ToInt64Milliseconds(options_.lease_timeout));
  return absl::OkStatus();
}

absl::Status Store::PutPages(const v1::PutPagesRequest& req, v1::PutPagesResponse* resp) {
  if (static_cast<uint32_t>(req.pages_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError(absl::StrFormat("%d pages in one PutPages; the limit is %d",
                                                        req.pages_size(), options_.max_pages_per_request));
  }
  absl::ReaderMutexLock wl(&write_mu_);  // shared: puts write concurrently (see store.h)
  std::vector<PageWrite> writes;
  std::vector<uint64_t> write_offsets;  // staging block of each write (we hold one extra ref)
  std::vector<uint64_t> skipped_offsets;  // staging of pages already stored (or being stored)
  std::vector<PageKey> awaited;           // pages another put in flight is writing
  uint64_t new_bytes = 0;
  absl::flat_hash_set<NodeKey> keep;
  uint64_t session_id = 0;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
    session_id = session.first;
    const Session& s = *session.second;
    absl::flat_hash_set<PageKey> in_batch;
    absl::flat_hash_map<NodeKey, std::optional<Hash128>> batch_nodes;
    absl::flat_hash_set<uint64_t> used_staging;
    for (int i = 0; i < req.pages_size(); ++i) {
      const v1::PutPage& p = req.pages(i);
      PageKey key;
      key.node.fp_id = s.fp_id;
      key.layer = p.layer();
      if (!Hash128::FromBytes(p.hash(), &key.node.hash)) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d].hash is %d bytes, want 16", i, p.hash().size()));
      }
      std::optional<Hash128> parent;
      if (!p.parent_hash().empty()) {
        Hash128 h;
        if (!Hash128::FromBytes(p.parent_hash(), &h)) {
          return absl::InvalidArgumentError(absl::StrFormat("pages[%d].parent_hash is %d bytes, want 0 or 16", i,
                                                            p.parent_hash().size()));
        }
        if (h == key.node.hash) return absl::InvalidArgumentError(absl::StrFormat("pages[%d] is its own parent", i));
        parent = h;
      }
      if (p.layer() >= s.layout.num_layers) {
        return absl::InvalidArgumentError(
            absl::StrFormat("pages[%d].layer %d >= num_layers %d", i, p.layer(), s.layout.num_layers));
      }
      if (!codec::IsValidPageEncoding(static_cast<uint32_t>(p.encoding()))) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d].encoding %d is unknown", i, p.encoding()));
      }
      const auto enc = static_cast<codec::PageEncoding>(p.encoding());
      absl::StatusOr<size_t> want = s.layout.PageBytes(enc);
      if (!want.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d]: %s", i, want.status().message()));
      }
      if (p.length() != *want) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "pages[%d].length %d contradicts the layout: a %s page is %d bytes", i, p.length(),
            codec::PageEncodingName(enc), *want));
      }
      auto st = staging_.find(p.staging_offset());
      if (st == staging_.end() || st->second.session != session_id) {
        return absl::NotFoundError(
            absl::StrFormat("pages[%d].staging_offset %d is not a staging buffer of this session", i, p.staging_offset()));
      }
      if (!used_staging.insert(p.staging_offset()).second) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d] reuses staging offset %d", i, p.staging_offset()));
      }
      if (p.length() > st->second.length) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d].length %d exceeds its staging buffer (%d bytes)",
                                                          i, p.length(), st->second.length));
      }
      if (p.abstract().size() > options_.max_abstract_bytes) {
        return absl::InvalidArgumentError(absl::StrFormat("pages[%d].abstract is %d bytes; the limit is %d", i,
                                                          p.abstract().size(), options_.max_abstract_bytes));
      }
      // The node's parent must agree with what is stored / in flight / earlier in this request.
      const ChainIndex::Node* existing = index_.Find(key.node);
      const std::optional<Hash128>* known_parent = existing != nullptr ? &existing->parent : nullptr;
      auto bn = batch_nodes.find(key.node);
      if (known_parent == nullptr && bn != batch_nodes.end()) known_parent = &bn->second;
      auto inf = inflight_nodes_.find(key.node);
      if (known_parent == nullptr && inf != inflight_nodes_.end() && inf->second.writes) {
        known_parent = &inf->second.parent;
      }
      if (known_parent != nullptr && *known_parent != parent) {
        return absl::InvalidArgumentError(
            absl::StrFormat("pages[%d]: parent_hash differs from the node's stored parent", i));
      }
      if (parent.has_value()) {
        const NodeKey pk{s.fp_id, *parent};
        if (index_.Find(pk) == nullptr && !batch_nodes.contains(pk)) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "pages[%d]: parent page is not stored; put a chain in order (its first page has no parent)", i));
        }
        keep.insert(pk);
      }
      batch_nodes.emplace(key.node, parent);
      keep.insert(key.node);
      if (index_.FindPage(key) != nullptr || !in_batch.insert(key).second) {
        skipped_offsets.push_back(p.staging_offset());
        continue;
      }
      if (inflight_pages_.contains(key)) {  // another put is writing it: wait for that one below
        skipped_offsets.push_back(p.staging_offset());
        awaited.push_back(key);
        continue;
      }
      PageWrite w;
      w.key = key;
      w.parent = parent;
      w.info.encoding = static_cast<uint8_t>(enc);
      w.info.payload_bytes = static_cast<uint32_t>(p.length());
      w.info.abstract_bytes = static_cast<uint32_t>(p.abstract().size());
      w.payload = arena_file_.data() + p.staging_offset();
      w.abstract = p.abstract();
      writes.push_back(w);
      write_offsets.push_back(p.staging_offset());
      new_bytes += uint64_t{w.info.payload_bytes} + w.info.abstract_bytes;
    }
    if (new_bytes > options_.disk_limit_bytes) {
      return absl::ResourceExhaustedError(absl::StrFormat("%d bytes in one PutPages exceed the disk limit of %d",
                                                          new_bytes, options_.disk_limit_bytes));
    }
    // Hold the staging blocks through the write even if the session expires meanwhile.
    for (uint64_t off : write_offsets) arena_.Ref(off);
    // Register the write as in flight: its nodes and parents are safe from eviction, its pages
    // count as present for concurrent puts, its bytes count against the disk limit.
    for (const NodeKey& k : keep) {
      InflightNode& n = inflight_nodes_[k];
      ++n.refs;
      auto bn = batch_nodes.find(k);
      if (bn != batch_nodes.end() && !n.writes) {
        n.writes = true;
        n.parent = bn->second;
      }
    }
    for (const PageWrite& w : writes) inflight_pages_.insert(w.key);
    inflight_bytes_ += new_bytes;
  }
  // Ends the in-flight registration (under mu_), whatever the outcome.
  auto finish_inflight = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const NodeKey& k : keep) {
      auto it = inflight_nodes_.find(k);
      if (--it->second.refs == 0) inflight_nodes_.erase(it);
    }
    for (const PageWrite& w : writes) inflight_pages_.erase(w.key);
    inflight_bytes_ -= new_bytes;
  };

  // Make room on disk: drop least recently used leaves (never a node a put in flight needs).
  std::vector<DiskPageRef> deletes;
  {
    absl::MutexLock l(&mu_);
    while (index_.bytes() + inflight_bytes_ > options_.disk_limit_bytes) {
      std::optional<NodeKey> victim = index_.LruLeaf(inflight_nodes_);
      if (!victim.has_value()) break;
      std::vector<DiskPageRef> keys = ForgetLeaf(*victim);
      disk_evictions_ += keys.size();
      deletes.insert(deletes.end(), keys.begin(), keys.end());
    }
    if (index_.bytes() + inflight_bytes_ > options_.disk_limit_bytes) {
      UnrefAll(write_offsets);
      finish_inflight();
      // Evicted nodes (if any) are gone from the index; delete them on disk too.
      if (!deletes.empty()) {
        absl::Status s = disk_->Write({}, deletes);
        if (!s.ok()) LEOAM_LOG(ERROR, "deleting evicted pages failed: %s", s.ToString());
      }
      return absl::ResourceExhaustedError(
          "disk tier full: everything else stored is part of chains being written right now");
    }
  }

  // Our own checksum (hardware CRC32C), checked when the page is read back (disk_tier.h).
  for (PageWrite& w : writes) {
    w.info.payload_crc = Crc32c(w.payload, w.info.payload_bytes);
    // Staging blocks are kSegmentAlign-aligned arena blocks of at least the padded length: zero
    // the padding so the segment write can go with O_DIRECT straight from the arena.
    std::memset(const_cast<uint8_t*>(w.payload) + w.info.payload_bytes, 0,
                SegmentPadded(w.info.payload_bytes) - w.info.payload_bytes);
    w.payload_padded = true;
  }
  absl::Status s = disk_->Write(absl::MakeSpan(writes), deletes);

  absl::MutexLock l(&mu_);
  if (!s.ok()) {
    UnrefAll(write_offsets);
    finish_inflight();
    LEOAM_LOG(ERROR, "PutPages failed: %s", s.ToString());
    return s;
  }
  // Request order has parents before children (validation demands it), and every parent outside
  // the request is in the index and pinned by our in-flight registration.
  for (size_t i = 0; i < writes.size(); ++i) {
    index_.AddPage(writes[i].key, writes[i].parent, writes[i].info);
    abstracts_.Insert(writes[i].key, writes[i].abstract);
    // The staging block becomes the cached copy: no copy, our extra reference moves to the tier.
    if (memory_.Insert(writes[i].key, MemoryPage{write_offsets[i], writes[i].info.payload_bytes,
                                                 writes[i].info.encoding})) {
      mem_write_bytes_ += writes[i].info.payload_bytes;
    } else {
      arena_.Unref(write_offsets[i]);
    }
  }
  auto drop_staging = [&](uint64_t off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = staging_.find(off);
    if (it == staging_.end() || it->second.session != session_id) return;  // expired meanwhile
    staging_bytes_ -= it->second.length;
    staging_.erase(it);
    arena_.Unref(off);
  };
  for (uint64_t off : write_offsets) drop_staging(off);
  for (uint64_t off : skipped_offsets) drop_staging(off);
  finish_inflight();
  memory_.EnforceLimit();
  // Acknowledge pages another put was writing only once that write is durable too.
  if (!awaited.empty()) {
    auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const PageKey& k : awaited) {
        if (inflight_pages_.contains(k)) return false;
      }
      return true;
    };
    mu_.Await(absl::Condition(&settled));
    for (const PageKey& k : awaited) {
      if (index_.FindPage(k) == nullptr) {
        return absl::AbortedError("a concurrent PutPages of the same page failed; put it again");
      }
    }
  }
  resp->set_num_committed(static_cast<uint32_t>(writes.size()));
  resp->set_num_already_present(static_cast<uint32_t>(skipped_offsets.size()));
  return absl::OkStatus();
}

absl::Status Store::FetchPages(const v1::FetchPagesRequest& req, v1::FetchPagesResponse* resp) {
  if (static_cast<uint32_t>(req.pages_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError(absl::StrFormat("%d pages in one FetchPages; the limit is %d",
                                                        req.pages_size(), options_.max_pages_per_request));
  }
  struct Pending {
    PageInfo info;
    uint64_t offset = 0;
    bool found = false;
    bool from_disk = false;
  };
  std::vector<PageKey> keys;
  std::vector<Pending> pending(req.pages_size());
  std::vector<LoadTask> ahead;  // readahead of the chain's next pages, started after our own reads
  absl::flat_hash_set<PageKey> waited;  // pages that were loading (a Prefetch, a readahead) when asked for
  uint64_t session_id = 0;
  if (static_cast<uint32_t>(req.release_lease_ids_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError("too many release_lease_ids in one FetchPages");
  }
  {
    absl::MutexLock l(&mu_);
    absl::flat_hash_set<uint64_t> releases;
    // Pages a Prefetch is loading right now are waited for (at most twice), not read again.
    for (int round = 0;; ++round) {
      ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
      session_id = session.first;
      releases.clear();
      for (uint64_t id : req.release_lease_ids()) {
        if (!leases_.Owns(id, session_id)) return absl::NotFoundError(absl::StrFormat("unknown lease %d", id));
        if (!releases.insert(id).second) return absl::InvalidArgumentError(absl::StrFormat("lease %d listed twice", id));
      }
      RETURN_IF_ERROR(ParsePageKeys(req.pages(), session.second->fp_id, session.second->layout, &keys));
      std::vector<PageKey> loading;
      for (const PageKey& k : keys) {
        if (loading_.contains(k)) loading.push_back(k);
      }
      waited.insert(loading.begin(), loading.end());
      if (loading.empty() || round == 2) break;
      auto loaded = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        for (const PageKey& k : loading) {
          if (loading_.contains(k)) return false;
        }
        return true;
      };
      mu_.Await(absl::Condition(&loaded));  // releases mu_ meanwhile: check everything again
    }
    // Released first: the fetch may need the arena space they pinned.
    for (uint64_t id : releases) UnrefAll(leases_.Release(id));
    std::vector<uint64_t> taken;
    for (size_t i = 0; i < keys.size(); ++i) {
      const PageInfo* info = index_.FindPage(keys[i]);
      if (info == nullptr) {
        ++mem_misses_;
        ++disk_misses_;
        continue;
      }
      index_.Touch(keys[i].node);
      pending[i].info = *info;
      pending[i].found = true;
      if (const MemoryPage* mp = memory_.Lookup(keys[i])) {
        ++mem_hits_;
        mem_read_bytes_ += mp->length;
        arena_.Ref(mp->offset);
        pending[i].offset = mp->offset;
      } else {
        ++mem_misses_;
        std::optional<uint64_t> off = AllocateBlock(info->payload_bytes);
        if (!off.has_value()) {
          UnrefAll(taken);
          return absl::ResourceExhaustedError(absl::StrFormat(
              "arena full: cannot load a %d-byte page (arena %d bytes, %d in use by leases and staging); "
              "release leases or fetch fewer pages at once",
              info->payload_bytes, arena_.capacity(), arena_.used_bytes()));
        }
        pending[i].offset = *off;
        pending[i].from_disk = true;
      }
      taken.push_back(pending[i].offset);
    }
    std::vector<bool> streamed(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      streamed[i] = pending[i].from_disk || waited.contains(keys[i]) || readahead_loaded_.erase(keys[i]) > 0;
    }
    PlanReadahead(keys, streamed, &ahead);
  }
  // Disk reads without holding mu_, several in flight on the I/O threads; the blocks are ours
  // alone until published below. Adjacent pages (a chain's, put together) are read with one
  // O_DIRECT preadv straight into their arena blocks.
  std::vector<absl::Status> read_status(keys.size());
  std::vector<LoadTask> reads;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (pending[i].from_disk) reads.push_back(LoadTask{keys[i], pending[i].info, pending[i].offset});
  }
  const std::vector<std::pair<size_t, size_t>> slices = SliceReads(&reads);
  std::vector<absl::Status> slice_status(reads.size());
  auto read_slice = [&](size_t k) {
    const auto [begin, end] = slices[k];
    std::vector<PageInfo> infos;
    std::vector<uint8_t*> dsts;
    for (size_t j = begin; j < end; ++j) {
      infos.push_back(reads[j].info);
      dsts.push_back(arena_file_.data() + reads[j].offset);
    }
    std::vector<absl::Status> st;
    disk_->ReadPages(infos, dsts, &st);
    for (size_t j = begin; j < end; ++j) slice_status[j] = std::move(st[j - begin]);
  };
  if (slices.size() == 1) {
    read_slice(0);
  } else if (slices.size() > 1) {
    absl::BlockingCounter done(static_cast<int>(slices.size() - 1));
    for (size_t k = 1; k < slices.size(); ++k) {
      io_->Submit([&, k] {
        read_slice(k);
        done.DecrementCount();
      }, /*urgent=*/true);
    }
    read_slice(0);  // the RPC thread takes the first slice itself
    done.Wait();
  }
  {
    // Back to request order: each disk read has its own arena block, so match by offset.
    absl::flat_hash_map<uint64_t, size_t> by_offset;
    for (size_t j = 0; j < reads.size(); ++j) by_offset[reads[j].offset] = j;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (pending[i].from_disk) read_status[i] = std::move(slice_status[by_offset[pending[i].offset]]);
    }
  }

  // The next pages of the chain load while the client copies these (one background read per
  // slice of adjacent pages); a FetchPages that asks for them meanwhile waits for the load.
  for (const auto& [begin, end] : SliceReads(&ahead)) {
    std::vector<LoadTask> slice(ahead.begin() + begin, ahead.begin() + end);
    io_->Submit([this, slice = std::move(slice)] { LoadIntoMemory(slice, /*readahead=*/true); }, /*urgent=*/false);
  }
  std::vector<uint64_t> lease_offsets;
  std::vector<NodeKey> corrupt;
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!pending[i].from_disk) continue;
      if (!read_status[i].ok()) {
        // NOT_FOUND: evicted or dropped between the index check and the read.
        if (!absl::IsNotFound(read_status[i])) {
          LEOAM_LOG(ERROR, "page read failed: %s", read_status[i].ToString());
          if (absl::IsDataLoss(read_status[i])) corrupt.push_back(keys[i].node);
        }
        arena_.Unref(pending[i].offset);
        pending[i].found = false;
        ++disk_misses_;
        continue;
      }
      ++disk_hits_;
      if (index_.FindPage(keys[i]) != nullptr) {
        arena_.Ref(pending[i].offset);
        if (memory_.Insert(keys[i], MemoryPage{pending[i].offset, pending[i].info.payload_bytes,
                                               pending[i].info.encoding})) {
          mem_write_bytes_ += pending[i].info.payload_bytes;
        } else {
          arena_.Unref(pending[i].offset);
        }
      }
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (pending[i].found) lease_offsets.push_back(pending[i].offset);
    }
    memory_.EnforceLimit();
    if (!req.inline_payload() && !lease_offsets.empty()) {
      resp->set_lease_id(leases_.Create(session_id, lease_offsets, absl::Now() + options_.lease_timeout));
      resp->set_lease_expires_in_ms(absl::ToInt64Milliseconds(options_.lease_timeout));
    }
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    v1::PageDescriptor* d = resp->add_pages();
    if (!pending[i].found) continue;
    d->set_found(true);
    d->set_length(pending[i].info.payload_bytes);
    d->set_encoding(static_cast<v1::PageEncoding>(pending[i].info.encoding));
    d->set_tier(pending[i].from_disk ? v1::TIER_DISK : v1::TIER_MEMORY);
    if (req.inline_payload()) {
      d->set_payload(arena_file_.data() + pending[i].offset, pending[i].info.payload_bytes);
    } else {
      d->set_offset(pending[i].offset);
    }
  }
  if (req.inline_payload()) {
    absl::MutexLock l(&mu_);
    UnrefAll(lease_offsets);
  }
  if (!corrupt.empty()) ForgetCorrupt(corrupt);
  return absl::OkStatus();
}

void Store::PlanReadahead(const std::vector<PageKey>& keys, const std::vector<bool>& streamed,
                          std::vector<LoadTask>* ahead) {
  if (options_.readahead_pages == 0) return;
  // Only a request that streams a chain from disk (its pages read from disk or loaded by an
  // earlier readahead, their nodes consecutive in the chain, in order) is followed: a client
  // picking scattered pages would not want the ones after the last.
  absl::flat_hash_set<PageKey> requested;
  std::vector<uint32_t> layers;
  std::optional<NodeKey> last;
  size_t pages = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!streamed[i]) continue;
    ++pages;
    requested.insert(keys[i]);
    if (std::find(layers.begin(), layers.end(), keys[i].layer) == layers.end()) layers.push_back(keys[i].layer);
    if (last.has_value() && keys[i].node == *last) continue;
    if (last.has_value()) {
      const ChainIndex::Node* node = index_.Find(keys[i].node);
      if (node == nullptr || !node->parent.has_value() || !(*node->parent == last->hash)) return;
    }
    last = keys[i].node;
  }
  if (!last.has_value()) return;
  const size_t budget = std::min<size_t>(pages, options_.readahead_pages);
  NodeKey cur = *last;
  while (ahead->size() < budget) {
    const ChainIndex::Node* node = index_.Find(cur);
    if (node == nullptr || node->children.size() != 1) return;  // the chain ends or forks: no guess
    cur = NodeKey{cur.fp_id, node->children[0]};
    for (uint32_t layer : layers) {
      const PageKey key{cur, layer};
      const PageInfo* info = index_.FindPage(key);
      if (info == nullptr || requested.contains(key) || loading_.contains(key) || memory_.Peek(key) != nullptr) continue;
      std::optional<uint64_t> off = AllocateBlock(info->payload_bytes);
      if (!off.has_value()) return;  // arena full of pinned pages: readahead is best effort
      loading_.insert(key);
      ahead->push_back(LoadTask{key, *info, *off});
    }
  }
}

absl::Status Store::Prefetch(const v1::PrefetchRequest& req, v1::PrefetchResponse* resp) {
  if (static_cast<uint32_t>(req.pages_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError(absl::StrFormat("%d pages in one Prefetch; the limit is %d",
                                                        req.pages_size(), options_.max_pages_per_request));
  }
  std::vector<LoadTask> tasks;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
    std::vector<PageKey> keys;
    RETURN_IF_ERROR(ParsePageKeys(req.pages(), session.second->fp_id, session.second->layout, &keys));
    uint32_t in_memory = 0, missing = 0;
    for (const PageKey& key : keys) {
      const PageInfo* info = index_.FindPage(key);
      if (info == nullptr) {
        ++missing;
      } else if (memory_.Lookup(key) != nullptr || loading_.contains(key)) {
        ++in_memory;
      } else {
        std::optional<uint64_t> off = AllocateBlock(info->payload_bytes);
        if (!off.has_value()) break;  // arena full of pinned pages: prefetch is best effort
        loading_.insert(key);
        tasks.push_back(LoadTask{key, *info, *off});
      }
    }
    resp->set_num_queued(static_cast<uint32_t>(tasks.size()));
    resp->set_num_in_memory(in_memory);
    resp->set_num_missing(missing);
  }
  // One background read per slice of adjacent pages.
  for (const auto& [begin, end] : SliceReads(&tasks)) {
    std::vector<LoadTask> slice(tasks.begin() + begin, tasks.begin() + end);
    io_->Submit([this, slice = std::move(slice)] { LoadIntoMemory(slice); }, /*urgent=*/false);
  }
  return absl::OkStatus();
}

}  // namespace leoam::kvstore
