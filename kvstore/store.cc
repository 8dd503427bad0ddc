// Store: open/restore, sessions, lookups, release, stats, drop, expiry. Data paths (staging, put,
// fetch, prefetch, abstracts) are in store_data.cc.
#include "kvstore/store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace leoam::kvstore {
namespace {

bool ValidLayout(const v1::KvLayout& l, std::string* why) {
  auto in = [](uint32_t v, uint32_t lo, uint32_t hi) { return v >= lo && v <= hi; };
  if (!in(l.num_layers(), 1, 4096)) *why = "num_layers must be in 1..4096";
  else if (!in(l.page_size(), 1, 65536)) *why = "page_size must be in 1..65536";
  else if (!in(l.num_kv_heads(), 1, 4096)) *why = "num_kv_heads must be in 1..4096";
  else if (!in(l.head_dim(), 1, 65536)) *why = "head_dim must be in 1..65536";
  else if (l.dtype() < v1::KV_DTYPE_F16 || l.dtype() > v1::KV_DTYPE_F32) *why = "dtype is unspecified or unknown";
  // Any encoding may be put under any dtype, so the largest (F32, 4 bytes a value) must fit.
  else if (uint64_t{2} * l.page_size() * l.num_kv_heads() * l.head_dim() * 4 > (1ull << 30)) *why = "an f32 page would exceed 1 GiB";
  else return true;
  return false;
}

std::string Hex64(uint64_t v) { return absl::StrFormat("%016x", v); }

}  // namespace

Store::Store(const StoreOptions& options)
    : options_(options),
      abstracts_(options.abstract_cache_bytes),
      arena_(options.arena_bytes, kSegmentAlign),  // disk reads go straight into blocks with O_DIRECT
      memory_(&arena_, options.memory_limit_bytes != 0 ? options.memory_limit_bytes : options.arena_bytes / 4 * 3) {}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  if (options.arena_bytes < (1u << 20)) return absl::InvalidArgumentError("the arena must be at least 1 MiB");
  if (options.memory_limit_bytes > options.arena_bytes) {
    return absl::InvalidArgumentError("the memory limit cannot exceed the arena size");
  }
  if (options.io_threads < 1) return absl::InvalidArgumentError("io_threads must be >= 1");
  std::unique_ptr<Store> store(new Store(options));
  RETURN_IF_ERROR(store->Init());
  return store;
}

absl::Status Store::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("cannot create %s: %s", options_.data_dir, ec.message()));
  const std::string canonical = std::filesystem::canonical(options_.data_dir, ec).string();
  std::random_device rd;
  {
    absl::MutexLock l(&mu_);
    rng_.seed((uint64_t{rd()} << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
    instance_id_ = Hex64(rng_());
  }

  // The disk tier first: its lock file keeps a second server off this data dir before that
  // server could replace the arena file of the first.
  DiskTierOptions dopt;
  dopt.path = options_.data_dir;
  dopt.sync_writes = options_.durability == Durability::kSync;
  dopt.direct_reads = options_.direct_reads;
  dopt.segment_bytes = options_.segment_bytes;
  ASSIGN_OR_RETURN(disk_, DiskTier::Open(dopt));
  // One arena file per data dir: a restarted server replaces the file its killed predecessor left.
  const std::string arena_path = absl::StrFormat("%s/leoam-kvstore-%016x.arena", options_.arena_dir,
                                                 std::hash<std::string>()(canonical));
  ASSIGN_OR_RETURN(arena_file_, SharedMemoryFile::Create(arena_path, options_.arena_bytes));
  RETURN_IF_ERROR(LoadIndex());

  io_ = std::make_unique<IoExecutor>(options_.io_threads);
  if (options_.abstract_cache_bytes > 0) io_->Submit([this] { WarmAbstractCache(); }, /*urgent=*/false);
  reaper_ = std::thread([this] { ReaperLoop(); });
  return absl::OkStatus();
}

absl::Status Store::LoadIndex() {
  std::vector<FingerprintRecord> fps;
  RETURN_IF_ERROR(disk_->LoadFingerprints(&fps));
  struct Loaded {
    std::optional<Hash128> parent;
    std::vector<std::pair<uint32_t, PageInfo>> layers;
  };
  absl::flat_hash_map<NodeKey, Loaded> nodes;
  RETURN_IF_ERROR(disk_->ScanPages([&](const PageKey& k, const std::optional<Hash128>& parent, const PageInfo& info) {
    Loaded& n = nodes[k.node];
    if (n.layers.empty()) n.parent = parent;
    n.layers.emplace_back(k.layer, info);
  }));

  absl::MutexLock l(&mu_);
  for (const FingerprintRecord& r : fps) {
    fingerprints_[r.fingerprint] = Fingerprint{r.fp_id, r.layout};
    layouts_[r.fp_id] = r.layout;
    next_fp_id_ = std::max(next_fp_id_, r.fp_id + 1);
  }
  // Insert parents before children; a node whose ancestry does not reach a chain start (or whose
  // fingerprint is unknown) is an orphan and is deleted, to keep "present implies predecessors present".
  std::vector<DiskPageRef> orphans;
  absl::flat_hash_set<NodeKey> done, bad;
  for (const auto& [start, unused] : nodes) {
    std::vector<NodeKey> path;
    NodeKey cur = start;
    bool ok = true;
    while (!done.contains(cur)) {
      auto it = nodes.find(cur);
      if (it == nodes.end() || bad.contains(cur) || !layouts_.contains(cur.fp_id)) {
        ok = false;
        break;
      }
      path.push_back(cur);
      if (!it->second.parent.has_value()) break;
      cur = NodeKey{cur.fp_id, *it->second.parent};
      if (path.size() > nodes.size()) {  // a cycle: impossible with real hashes
        ok = false;
        break;
      }
    }
    for (auto p = path.rbegin(); p != path.rend(); ++p) {
      if (!ok) {
        bad.insert(*p);
        for (const auto& [layer, info] : nodes[*p].layers) orphans.push_back(DiskPageRef{PageKey{*p, layer}, info});
        continue;
      }
      const Loaded& n = nodes[*p];
      for (const auto& [layer, info] : n.layers) index_.AddPage(PageKey{*p, layer}, n.parent, info);
      done.insert(*p);
    }
  }
  if (!orphans.empty()) {
    LEOAM_LOG(WARNING, "deleting %d orphaned pages (no stored predecessor)", orphans.size());
    RETURN_IF_ERROR(disk_->Write({}, orphans));
  }
  disk_->FinishLoad();
  LEOAM_LOG(INFO, "disk tier at %s: %d fingerprints, %d chain nodes, %d pages, %d bytes", options_.data_dir,
            fps.size(), index_.nodes(), index_.pages(), index_.bytes());
  return absl::OkStatus();
}

Store::~Store() {
  {
    absl::MutexLock l(&stop_mu_);
    stopping_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, entry] : channels_) {
      entry.channel->Stop();
      closing_channels_.push_back(std::move(entry));
    }
    channels_.clear();
  }
  ReapChannels();  // channel threads call into the store (and io_): they end first
  io_.reset();  // joins the I/O threads; queued prefetches are dropped with the arena
}

std::vector<std::pair<size_t, size_t>> Store::SliceReads(std::vector<LoadTask>* tasks) const {
  std::sort(tasks->begin(), tasks->end(), [](const LoadTask& a, const LoadTask& b) {
    const SegmentLocation &x = a.info.where, &y = b.info.where;
    return x.segment != y.segment ? x.segment < y.segment : x.offset < y.offset;
  });
  // O_DIRECT: slices of at least kMinSliceBytes keep reads large; several slices keep several in
  // flight. Buffered reads: one slice, read in order, so the kernel's readahead sees one
  // sequential stream (concurrent readers of one file confuse it) and reads ahead of the next fetch.
  constexpr uint64_t kMinSliceBytes = 1 << 20;
  uint64_t total = 0;
  for (const LoadTask& t : *tasks) total += t.info.payload_bytes;
  const uint64_t max_slices = disk_->segments().direct_reads() ? static_cast<uint64_t>(options_.io_threads) : 1;
  const size_t n = std::max<size_t>(1, std::min<uint64_t>({max_slices, (total + kMinSliceBytes - 1) / kMinSliceBytes,
                                                           tasks->size()}));
  std::vector<std::pair<size_t, size_t>> slices;
  if (tasks->empty()) return slices;
  // Cut at byte boundaries (page sizes may differ).
  size_t begin = 0;
  uint64_t acc = 0;
  for (size_t i = 0; i < tasks->size(); ++i) {
    acc += (*tasks)[i].info.payload_bytes;
    if (slices.size() + 1 < n && acc * n >= total * (slices.size() + 1)) {
      slices.emplace_back(begin, i + 1);
      begin = i + 1;
    }
  }
  if (begin < tasks->size()) slices.emplace_back(begin, tasks->size());
  return slices;
}

void Store::LoadIntoMemory(const std::vector<LoadTask>& tasks, bool readahead) {
  std::vector<PageInfo> infos;
  std::vector<uint8_t*> dsts;
  for (const LoadTask& t : tasks) {
    infos.push_back(t.info);
    dsts.push_back(arena_file_.data() + t.offset);
  }
  std::vector<absl::Status> st;
  disk_->ReadPages(infos, dsts, &st);
  std::vector<NodeKey> corrupt;
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < tasks.size(); ++i) {
      const LoadTask& task = tasks[i];
      if (absl::IsDataLoss(st[i])) corrupt.push_back(task.key.node);
      loading_.erase(task.key);
      const PageInfo* still = index_.FindPage(task.key);
      if (st[i].ok() && still != nullptr &&
          memory_.Insert(task.key, MemoryPage{task.offset, task.info.payload_bytes, task.info.encoding})) {
        ++disk_hits_;
        mem_write_bytes_ += task.info.payload_bytes;
        if (readahead) {
          if (readahead_loaded_.size() >= (1u << 16)) readahead_loaded_.clear();
          readahead_loaded_.insert(task.key);
        }
      } else {
        if (!st[i].ok() && !absl::IsNotFound(st[i])) LEOAM_LOG(ERROR, "prefetch read failed: %s", st[i].ToString());
        arena_.Unref(task.offset);
      }
    }
    memory_.EnforceLimit();
  }
  if (!corrupt.empty()) ForgetCorrupt(corrupt);
}

void Store::ForgetCorrupt(const std::vector<NodeKey>& nodes) {
  absl::MutexLock wl(&write_mu_);  // no put is in flight: no node is pinned as someone's parent
  std::vector<DiskPageRef> deleted;
  {
    absl::MutexLock l(&mu_);
    for (const NodeKey& node : nodes) {
      if (index_.Find(node) == nullptr) continue;  // already gone (a duplicate, or evicted meanwhile)
      std::vector<NodeKey> sub = index_.Subtree(node);
      for (auto it = sub.rbegin(); it != sub.rend(); ++it) {
        std::vector<DiskPageRef> keys = ForgetLeaf(*it);
        deleted.insert(deleted.end(), keys.begin(), keys.end());
      }
    }
  }
  if (deleted.empty()) return;
  LEOAM_LOG(ERROR, "dropping %d pages: a payload failed its CRC32C check (they and their successors are gone)",
            deleted.size());
  absl::Status s = disk_->Write({}, deleted);
  if (!s.ok()) LEOAM_LOG(ERROR, "deleting corrupt pages failed (%s); they return on restart", s.ToString());
}

bool Store::stopping() {
  absl::MutexLock l(&stop_mu_);
  return stopping_;
}

void Store::WarmAbstractCache() {
  const absl::Time start = absl::Now();
  uint64_t n = 0;
  absl::Status s = disk_->ScanAbstracts([&](const PageKey& key, std::string_view abstract) {
    if (!abstracts_.InsertIfRoom(key, abstract)) return false;
    ++n;
    return (n % 1024 != 0) || !stopping();
  });
  if (!s.ok()) {
    LEOAM_LOG(WARNING, "warming the abstract cache: %s", s.ToString());
    return;
  }
  LEOAM_LOG(INFO, "abstract cache warmed with %d abstracts (%d bytes) in %s", n, abstracts_.bytes(),
            absl::FormatDuration(absl::Now() - start));
}

void Store::ReaperLoop() {
  for (;;) {
    {
      absl::MutexLock l(&stop_mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stop_mu_) { return stopping_; };
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(100))) return;
    }
    ExpireUpTo(absl::Now());
    ReapChannels();
  }
}

void Store::ExpireUpTo(absl::Time now) {
  absl::MutexLock l(&mu_);
  UnrefAll(leases_.ExpireUpTo(now));
  for (auto it = staging_.begin(); it != staging_.end();) {
    if (it->second.expiry <= now) {
      staging_bytes_ -= it->second.length;
      arena_.Unref(it->first);
      staging_.erase(it++);
    } else {
      ++it;
    }
  }
  std::vector<uint64_t> idle;
  for (const auto& [id, s] : sessions_) {
    if (s.last_used + options_.session_timeout <= now) idle.push_back(id);
  }
  for (uint64_t id : idle) {
    LEOAM_LOG(INFO, "session %s closed after %s idle", Hex64(id), absl::FormatDuration(options_.session_timeout));
    CloseSession(id);
  }
}

void Store::CloseSession(uint64_t id) {
  UnrefAll(leases_.RemoveSession(id));
  for (auto it = staging_.begin(); it != staging_.end();) {
    if (it->second.session == id) {
      staging_bytes_ -= it->second.length;
      arena_.Unref(it->first);
      staging_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = channels_.begin(); it != channels_.end();) {
    if (it->second.session == id) {
      it->second.channel->Stop();
      closing_channels_.push_back(std::move(it->second));
      channels_.erase(it++);
    } else {
      ++it;
    }
  }
  sessions_.erase(id);
}

void Store::UnrefAll(const std::vector<uint64_t>& offsets) {
  for (uint64_t off : offsets) arena_.Unref(off);
}

absl::StatusOr<std::pair<uint64_t, Store::Session*>> Store::FindSession(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("session_id is empty: call Hello first");
  uint64_t v = 0;
  if (id.size() != 16 || !absl::SimpleHexAtoi(id, &v)) return absl::NotFoundError("unknown session " + id);
  auto it = sessions_.find(v);
  if (it == sessions_.end()) return absl::NotFoundError("unknown session " + id + " (expired, or the store restarted)");
  it->second.last_used = absl::Now();
  return std::make_pair(v, &it->second);
}

std::optional<uint64_t> Store::AllocateBlock(uint64_t length) {
  for (;;) {
    if (std::optional<uint64_t> off = arena_.Allocate(length)) return off;
    if (!memory_.EvictOne()) return std::nullopt;
  }
}

std::vector<DiskPageRef> Store::ForgetLeaf(const NodeKey& key) {
  std::vector<DiskPageRef> keys;
  for (const auto& [layer, info] : index_.RemoveLeaf(key)) {
    keys.push_back(DiskPageRef{PageKey{key, layer}, info});
    memory_.Erase(keys.back().key);
    abstracts_.Erase(keys.back().key);
  }
  return keys;
}

absl::Status Store::Hello(const v1::HelloRequest& req, v1::HelloResponse* resp) {
  if (req.protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "protocol version %d is not supported; this leoam-kvstore speaks version %d", req.protocol_version(),
        kProtocolVersion));
  }
  if (req.model_fingerprint().empty() || req.model_fingerprint().size() > 64) {
    return absl::InvalidArgumentError("model_fingerprint must be 1..64 bytes");
  }
  std::string why;
  if (!ValidLayout(req.layout(), &why)) return absl::InvalidArgumentError("invalid layout: " + why);
  const Layout layout{req.layout().num_layers(), req.layout().page_size(), req.layout().num_kv_heads(),
                      req.layout().head_dim(), static_cast<uint32_t>(req.layout().dtype())};

  absl::MutexLock wl(&write_mu_);
  uint32_t fp_id = 0;
  bool known = false;
  {
    absl::MutexLock l(&mu_);
    if (sessions_.size() >= options_.max_sessions) {
      return absl::ResourceExhaustedError(absl::StrFormat("too many sessions (limit %d)", options_.max_sessions));
    }
    auto it = fingerprints_.find(req.model_fingerprint());
    if (it != fingerprints_.end()) {
      if (!(it->second.layout == layout)) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "fingerprint already stored with layout layers=%d page_size=%d kv_heads=%d head_dim=%d dtype=%d; "
            "this Hello asks for layers=%d page_size=%d kv_heads=%d head_dim=%d dtype=%d",
            it->second.layout.num_layers, it->second.layout.page_size, it->second.layout.num_kv_heads,
            it->second.layout.head_dim, it->second.layout.dtype, layout.num_layers, layout.page_size,
            layout.num_kv_heads, layout.head_dim, layout.dtype));
      }
      fp_id = it->second.id;
      known = true;
    } else {
      if (fingerprints_.size() >= options_.max_fingerprints) {
        return absl::ResourceExhaustedError("too many model fingerprints in this store");
      }
      fp_id = next_fp_id_;
    }
  }
  if (!known) {
    RETURN_IF_ERROR(disk_->PutFingerprint(FingerprintRecord{req.model_fingerprint(), fp_id, layout}));
  }
  absl::MutexLock l(&mu_);
  if (!known) {
    fingerprints_[req.model_fingerprint()] = Fingerprint{fp_id, layout};
    layouts_[fp_id] = layout;
    next_fp_id_ = fp_id + 1;
  }
  uint64_t sid = 0;
  do sid = rng_(); while (sid == 0 || sessions_.contains(sid));
  sessions_[sid] = Session{fp_id, layout, absl::Now()};
  resp->set_session_id(Hex64(sid));
  resp->set_protocol_version(kProtocolVersion);
  resp->set_arena_path(arena_file_.path());
  resp->set_arena_bytes(arena_file_.size());
  resp->set_server_instance_id(instance_id_);
  resp->set_lease_timeout_ms(absl::ToInt64Milliseconds(options_.lease_timeout));
  resp->set_max_pages_per_request(options_.max_pages_per_request);
  resp->set_fingerprint_known(known);
  LEOAM_LOG(INFO, "session %s opened by '%s' (fingerprint id %d, %s)", Hex64(sid), req.client_name(), fp_id,
            known ? "known" : "new");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Hash128>> Store::ParseChain(
    const google::protobuf::RepeatedPtrField<std::string>& hashes) const {
  if (static_cast<uint32_t>(hashes.size()) > options_.max_chain_length) {
    return absl::ResourceExhaustedError(absl::StrFormat("chain of %d hashes exceeds the limit of %d", hashes.size(),
                                                        options_.max_chain_length));
  }
  std::vector<Hash128> chain(hashes.size());
  for (int i = 0; i < hashes.size(); ++i) {
    if (!Hash128::FromBytes(hashes.Get(i), &chain[i])) {
      return absl::InvalidArgumentError(absl::StrFormat("chain[%d] is %d bytes, want 16", i, hashes.Get(i).size()));
    }
  }
  return chain;
}

absl::Status Store::LookupPrefix(const v1::LookupPrefixRequest& req, v1::LookupPrefixResponse* resp) {
  ASSIGN_OR_RETURN(const std::vector<Hash128> chain, ParseChain(req.chain()));
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
  const Session& s = *session.second;
  const size_t present = index_.LeadingComplete(s.fp_id, chain, s.layout.num_layers);
  size_t in_memory = 0;
  for (; in_memory < present; ++in_memory) {
    bool all = true;
    for (uint32_t layer = 0; layer < s.layout.num_layers && all; ++layer) {
      all = memory_.Peek(PageKey{NodeKey{s.fp_id, chain[in_memory]}, layer}) != nullptr;
    }
    if (!all) break;
  }
  resp->set_num_present(static_cast<uint32_t>(present));
  resp->set_num_in_memory(static_cast<uint32_t>(in_memory));
  return absl::OkStatus();
}

absl::Status Store::Release(const v1::ReleaseRequest& req, v1::ReleaseResponse* resp) {
  if (static_cast<uint32_t>(req.lease_ids_size() + req.staging_offsets_size()) > options_.max_pages_per_request) {
    return absl::ResourceExhaustedError("too many leases/staging buffers in one Release");
  }
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
  // Check everything first so that a bad id changes nothing.
  absl::flat_hash_set<uint64_t> leases, staging;
  for (uint64_t id : req.lease_ids()) {
    if (!leases_.Owns(id, session.first)) return absl::NotFoundError(absl::StrFormat("unknown lease %d", id));
    if (!leases.insert(id).second) return absl::InvalidArgumentError(absl::StrFormat("lease %d listed twice", id));
  }
  for (uint64_t off : req.staging_offsets()) {
    auto it = staging_.find(off);
    if (it == staging_.end() || it->second.session != session.first) {
      return absl::NotFoundError(absl::StrFormat("no staging buffer of this session at offset %d", off));
    }
    if (!staging.insert(off).second) return absl::InvalidArgumentError("staging offset listed twice");
  }
  for (uint64_t id : leases) UnrefAll(leases_.Release(id));
  for (uint64_t off : staging) {
    staging_bytes_ -= staging_[off].length;
    staging_.erase(off);
    arena_.Unref(off);
  }
  resp->set_num_released(static_cast<uint32_t>(leases.size()));
  return absl::OkStatus();
}

absl::Status Store::Stats(const v1::StatsRequest& req, v1::StatsResponse* resp) {
  absl::MutexLock l(&mu_);
  if (!req.session_id().empty()) {
    ASSIGN_OR_RETURN(auto unused, FindSession(req.session_id()));
    (void)unused;
  }
  v1::TierStats* m = resp->mutable_memory();
  m->set_bytes(memory_.bytes());
  m->set_pages(memory_.pages());
  m->set_capacity_bytes(memory_.limit_bytes());
  m->set_hits(mem_hits_);
  m->set_misses(mem_misses_);
  m->set_evictions(memory_.evictions());
  m->set_read_bytes(mem_read_bytes_);
  m->set_write_bytes(mem_write_bytes_);
  v1::TierStats* d = resp->mutable_disk();
  d->set_bytes(index_.bytes());
  d->set_pages(index_.pages());
  d->set_capacity_bytes(options_.disk_limit_bytes);
  d->set_hits(disk_hits_);
  d->set_misses(disk_misses_);
  d->set_evictions(disk_evictions_);
  d->set_read_bytes(disk_->read_bytes());
  d->set_write_bytes(disk_->write_bytes());
  resp->set_arena_bytes(arena_.capacity());
  resp->set_staging_bytes(staging_bytes_);
  resp->set_arena_used_bytes(arena_.used_bytes());
  resp->set_sessions(static_cast<uint32_t>(sessions_.size()));
  resp->set_leases(static_cast<uint32_t>(leases_.size()));
  resp->set_chain_nodes(index_.nodes());
  resp->set_abstract_cache_bytes(abstracts_.bytes());
  resp->set_abstract_cache_entries(abstracts_.entries());
  resp->set_fetch_channels(static_cast<uint32_t>(channels_.size()));
  return absl::OkStatus();
}

absl::Status Store::Drop(const v1::DropRequest& req, v1::DropResponse* resp) {
  absl::MutexLock wl(&write_mu_);
  std::vector<DiskPageRef> deleted;
  uint32_t fp_id = 0;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
    fp_id = session.second->fp_id;
    std::vector<NodeKey> roots;
    if (req.target_case() == v1::DropRequest::kAll) {
      if (!req.all()) return absl::InvalidArgumentError("Drop: `all` must be true when set");
      for (const NodeKey& k : index_.NodesOf(fp_id)) {
        if (!index_.Find(k)->parent.has_value()) roots.push_back(k);
      }
    } else if (req.target_case() == v1::DropRequest::kChainHash) {
      Hash128 h;
      if (!Hash128::FromBytes(req.chain_hash(), &h)) return absl::InvalidArgumentError("chain_hash must be 16 bytes");
      if (index_.Find(NodeKey{fp_id, h}) == nullptr) return absl::NotFoundError("no such chain node");
      roots.push_back(NodeKey{fp_id, h});
    } else {
      return absl::InvalidArgumentError("Drop needs a target: all or chain_hash");
    }
    for (const NodeKey& root : roots) {
      std::vector<NodeKey> sub = index_.Subtree(root);
      for (auto it = sub.rbegin(); it != sub.rend(); ++it) {
        std::vector<DiskPageRef> keys = ForgetLeaf(*it);
        deleted.insert(deleted.end(), keys.begin(), keys.end());
      }
    }
  }
  absl::Status s = req.target_case() == v1::DropRequest::kAll ? disk_->DeleteFingerprintPages(fp_id, deleted)
                                                              : disk_->Write({}, deleted);
  if (!s.ok()) {
    LEOAM_LOG(ERROR, "Drop removed pages from the index but the disk delete failed (%s); they return on restart",
              s.ToString());
    return s;
  }
  resp->set_pages_dropped(deleted.size());
  return absl::OkStatus();
}

}  // namespace leoam::kvstore
