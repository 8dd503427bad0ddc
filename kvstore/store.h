// Store: the KV store's logic behind the gRPC service — sessions, the arena, the memory tier, the
// disk tier, the chain index, leases and staging — with absl::Status errors. The service only
// converts statuses; tests can drive a Store in-process.
//
// Locking: mu_ guards the in-memory state and is never held across disk I/O. Puts hold write_mu_
// shared and run their RocksDB writes concurrently (so RocksDB can group-commit them); what they
// are about to write is registered as "in flight" under mu_ (eviction skips those nodes, other
// puts treat those pages as present). Drop and new fingerprints hold write_mu_ exclusively.
// Lock order: write_mu_, then mu_.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvstore/abstract_cache.h"
#include "kvstore/arena_allocator.h"
#include "kvstore/chain_index.h"
#include "kvstore/disk_tier.h"
#include "kvstore/fetch_channel.h"
#include "kvstore/io_executor.h"
#include "kvstore/layout.h"
#include "kvstore/lease_table.h"
#include "kvstore/memory_tier.h"
#include "kvstore/shared_memory.h"
#include "leoam/v1/kvstore.pb.h"

namespace leoam::kvstore {

inline constexpr uint32_t kProtocolVersion = 1;

enum class Durability {
  // An acknowledged put's payloads are fdatasync'ed in their segment, then its metadata is in
  // the fsynced WAL, before the reply: survives power loss.
  kSync,
  // An acknowledged put's payloads and metadata were written (in the OS page cache) before the
  // reply: survives a crash or kill -9 of the store, not a crash of the machine (see disk_tier.h).
  kAsync,
};

struct StoreOptions {
  std::string data_dir;                       // RocksDB directory; required
  std::string arena_dir = "/dev/shm";         // where the arena file is created (a tmpfs)
  uint64_t arena_bytes = 1ull << 30;          // shared-memory arena size; default 1 GiB
  uint64_t memory_limit_bytes = 0;            // memory-tier payload bytes; 0: 3/4 of the arena
  uint64_t disk_limit_bytes = 64ull << 30;    // disk-tier payload+abstract bytes; default 64 GiB
  int io_threads = 4;                         // threads reading pages from disk (fetch misses, Prefetch)
  Durability durability = Durability::kAsync;
  absl::Duration lease_timeout = absl::Seconds(60);    // leases and staging buffers
  absl::Duration session_timeout = absl::Minutes(10);  // idle sessions are closed
  bool direct_reads = true;                   // O_DIRECT disk-tier reads (see DiskTierOptions)
  uint64_t segment_bytes = 128ull << 20;      // size of a disk-tier segment file (see segment_store.h)
  uint32_t max_pages_per_request = 4096;      // pages / sizes / leases in one request
  uint32_t max_chain_length = 1u << 18;       // hashes in one LookupPrefix
  uint32_t max_sessions = 1024;
  uint32_t max_fingerprints = 4096;
  uint32_t max_abstract_bytes = 1u << 20;
  uint64_t max_abstract_region_bytes = 64ull << 20;  // arena bytes one GetChainAbstracts reply may pin
  // Abstracts kept in memory (kvstore/abstract_cache.h): filled by puts, reads and, at start, a
  // background scan of the disk tier's abstracts. Default 512 MiB; 0 turns the cache off.
  uint64_t abstract_cache_bytes = 512ull << 20;
  uint32_t max_fetch_channels = 64;  // open fetch channels (one server thread each), all sessions
  // How long a channel's thread spins for the next request before sleeping on its futex. Longer
  // saves the wakeup (tens of us on a VM) of clients that stream, at the price of a busy core.
  int64_t fetch_channel_spin_us = 20;
  // A FetchPages that streams a chain from disk (consecutive nodes, read from disk or loaded by an
  // earlier readahead) also starts loading, in the background, the chain's next nodes with the
  // same layers: as many pages as it asked for, at most this many. 0 (default): never.
  uint32_t readahead_pages = 0;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  absl::Status Hello(const v1::HelloRequest& req, v1::HelloResponse* resp);
  absl::Status LookupPrefix(const v1::LookupPrefixRequest& req, v1::LookupPrefixResponse* resp);
  absl::Status AllocStaging(const v1::AllocStagingRequest& req, v1::AllocStagingResponse* resp);
  absl::Status PutPages(const v1::PutPagesRequest& req, v1::PutPagesResponse* resp);
  absl::Status GetAbstracts(const v1::GetAbstractsRequest& req, v1::GetAbstractsResponse* resp);
  absl::Status GetChainAbstracts(const v1::GetChainAbstractsRequest& req, v1::GetChainAbstractsResponse* resp);
  absl::Status FetchPages(const v1::FetchPagesRequest& req, v1::FetchPagesResponse* resp);
  absl::Status OpenFetchChannel(const v1::OpenFetchChannelRequest& req, v1::OpenFetchChannelResponse* resp);
  absl::Status Prefetch(const v1::PrefetchRequest& req, v1::PrefetchResponse* resp);
  absl::Status Release(const v1::ReleaseRequest& req, v1::ReleaseResponse* resp);
  absl::Status Stats(const v1::StatsRequest& req, v1::StatsResponse* resp);
  absl::Status Drop(const v1::DropRequest& req, v1::DropResponse* resp);

  // Ends leases and staging buffers past their deadline and sessions idle past the session
  // timeout. A background thread calls it every 100 ms.
  void ExpireUpTo(absl::Time now);

  const std::string& arena_path() const { return arena_file_.path(); }
  const std::string& instance_id() const { return instance_id_; }
  const StoreOptions& options() const { return options_; }

 private:
  struct Session {
    uint32_t fp_id = 0;
    Layout layout;
    absl::Time last_used;
  };
  struct Staging {
    uint64_t session = 0;
    uint64_t length = 0;
    absl::Time expiry;
  };
  struct Fingerprint {
    uint32_t id = 0;
    Layout layout;
  };
  // A chain node that a PutPages in flight reads (as a parent) or writes: eviction must not take
  // it, and concurrent puts must agree on its parent.
  struct InflightNode {
    int refs = 0;
    std::optional<Hash128> parent;
    bool writes = false;  // the node itself is being written (parent is meaningful)
  };
  struct LoadTask {
    PageKey key;
    PageInfo info;
    uint64_t offset = 0;
  };

  explicit Store(const StoreOptions& options);
  absl::Status Init();
  absl::Status LoadIndex();

  // The chain hashes of a LookupPrefix / GetChainAbstracts request: at most max_chain_length,
  // each exactly 16 bytes (RESOURCE_EXHAUSTED / INVALID_ARGUMENT otherwise).
  absl::StatusOr<std::vector<Hash128>> ParseChain(const google::protobuf::RepeatedPtrField<std::string>& chain) const;
  absl::StatusOr<std::pair<uint64_t, Session*>> FindSession(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Allocates an arena block, evicting unpinned memory-tier pages as needed.
  std::optional<uint64_t> AllocateBlock(uint64_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnrefAll(const std::vector<uint64_t>& offsets) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a node from the index and the memory tier; returns its pages (to delete on disk).
  std::vector<DiskPageRef> ForgetLeaf(const NodeKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseSession(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sorts disk reads by location and splits them into up to io_threads slices of adjacent pages
  // ([begin, end) ranges), each large enough to be read with few large reads.
  std::vector<std::pair<size_t, size_t>> SliceReads(std::vector<LoadTask>* tasks) const;
  // Readahead (StoreOptions::readahead_pages): the pages after the ones a fetch streams from disk
  // (keys[i] with streamed[i]), given arena blocks and marked loading; the caller submits them.
  void PlanReadahead(const std::vector<PageKey>& keys, const std::vector<bool>& streamed,
                     std::vector<LoadTask>* ahead) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Background load of pages into the memory tier (Prefetch): one read per slice of adjacent pages.
  // readahead: the pages are remembered (readahead_loaded_) so that fetching them streams on.
  void LoadIntoMemory(const std::vector<LoadTask>& tasks, bool readahead = false);
  // Drops nodes whose payload failed its CRC32C (and their descendants) from the index and the
  // disk, so LookupPrefix stops reporting them. Takes write_mu_ and mu_.
  void ForgetCorrupt(const std::vector<NodeKey>& nodes);
  void ReaperLoop();
  // Joins the threads of channels whose session closed (outside mu_: they may be waiting for it),
  // then frees their arena blocks.
  void ReapChannels() ABSL_LOCKS_EXCLUDED(mu_);
  // Fills the abstract cache from the disk tier until it is full (a background task at start).
  void WarmAbstractCache();
  // Copies abstracts (keys[i], exactly lengths[i] bytes) to dsts[i]: from the cache, the rest from
  // RocksDB (several MultiGets in flight), which are then cached. Returns how many leading keys
  // were copied (it stops at the first one not stored).
  absl::StatusOr<size_t> CopyAbstracts(absl::Span<const PageKey> keys, absl::Span<const uint32_t> lengths,
                                       absl::Span<uint8_t* const> dsts);
  bool stopping() ABSL_LOCKS_EXCLUDED(stop_mu_);

  const StoreOptions options_;
  std::string instance_id_;
  SharedMemoryFile arena_file_;
  std::unique_ptr<DiskTier> disk_;
  AbstractCache abstracts_;

  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  ArenaAllocator arena_ ABSL_GUARDED_BY(mu_);
  MemoryTier memory_ ABSL_GUARDED_BY(mu_);
  ChainIndex index_ ABSL_GUARDED_BY(mu_);
  LeaseTable leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Staging> staging_ ABSL_GUARDED_BY(mu_);  // by arena offset
  absl::flat_hash_map<uint64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Fingerprint> fingerprints_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, Layout> layouts_ ABSL_GUARDED_BY(mu_);  // by fp_id
  uint32_t next_fp_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_set<PageKey> loading_ ABSL_GUARDED_BY(mu_);
  // Pages a readahead loaded that no fetch has asked for yet (bounded: cleared when large).
  absl::flat_hash_set<PageKey> readahead_loaded_ ABSL_GUARDED_BY(mu_);
  // Puts in flight (between validation and publication), so that puts can write concurrently
  // (RocksDB groups their WAL writes and fsyncs) without breaking the chain invariant.
  absl::flat_hash_map<NodeKey, InflightNode> inflight_nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<PageKey> inflight_pages_ ABSL_GUARDED_BY(mu_);
  uint64_t inflight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t staging_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  struct ChannelEntry {
    uint64_t session = 0;
    uint64_t offset = 0;  // arena block
    std::unique_ptr<FetchChannel> channel;
  };
  absl::flat_hash_map<uint64_t, ChannelEntry> channels_ ABSL_GUARDED_BY(mu_);  // by channel id
  std::vector<ChannelEntry> closing_channels_ ABSL_GUARDED_BY(mu_);          // stopped, to join

  // Counters (guarded by mu_).
  uint64_t mem_hits_ ABSL_GUARDED_BY(mu_) = 0, mem_misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t mem_read_bytes_ ABSL_GUARDED_BY(mu_) = 0, mem_write_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t disk_hits_ ABSL_GUARDED_BY(mu_) = 0, disk_misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t disk_evictions_ ABSL_GUARDED_BY(mu_) = 0;

  std::unique_ptr<IoExecutor> io_;
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread reaper_;
};

}  // namespace leoam::kvstore
