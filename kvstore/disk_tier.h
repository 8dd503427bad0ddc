// DiskTier: the persistent tier, a RocksDB database with four column families:
//   pages      page key -> payload bytes (BlobDB: values >= min_blob_bytes live in blob files)
//   abstracts  page key -> abstract blob (small, hot; zstd-compressed SSTs)
//   meta       page key -> PageMeta (parent hash, encoding, sizes; the index is rebuilt from it)
//   default    "fp/<fingerprint>" -> fingerprint id + layout
// A put writes payload + abstract + meta of every page of a request in ONE WriteBatch, so after a
// crash a page is either wholly there or not at all. The WAL is always on; with sync_writes each
// batch is fsynced before Write returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kvstore/chain_index.h"
#include "kvstore/layout.h"
#include "kvstore/page_key.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace leoam::kvstore {

struct DiskTierOptions {
  std::string path;                // database directory (created if missing); required
  bool sync_writes = false;        // fsync the WAL before each Write returns (--durability=sync)
  bool compress_pages = false;     // zstd on page blobs (KV payloads rarely shrink; default off)
  uint64_t min_blob_bytes = 512;   // page values at least this large go to blob files
  int background_jobs = 2;         // RocksDB flush + compaction threads
  uint64_t block_cache_bytes = 128ull << 20;  // LRU cache of SST blocks (abstracts, metadata, blob indexes)
};

struct FingerprintRecord {
  std::string fingerprint;
  uint32_t fp_id = 0;
  Layout layout;
};

// One page to write.
struct PageWrite {
  PageKey key;
  std::optional<Hash128> parent;
  PageInfo info;
  const uint8_t* payload = nullptr;  // info.payload_bytes bytes
  std::string_view abstract;
};

class DiskTier {
 public:
  static absl::StatusOr<std::unique_ptr<DiskTier>> Open(const DiskTierOptions& options);
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;
  ~DiskTier();

  absl::Status LoadFingerprints(std::vector<FingerprintRecord>* out);
  // Durable (synced) regardless of sync_writes: it happens once per fingerprint.
  absl::Status PutFingerprint(const FingerprintRecord& record);

  // Calls fn for every stored page's metadata.
  absl::Status ScanPages(const std::function<void(const PageKey&, const std::optional<Hash128>&, const PageInfo&)>& fn);

  // Writes `puts` and deletes every column family's entry of `deletes`, atomically.
  absl::Status Write(absl::Span<const PageWrite> puts, absl::Span<const PageKey> deletes);
  // Deletes every page of a fingerprint (its record stays).
  absl::Status DeleteFingerprintPages(uint32_t fp_id);

  // Copies a page's payload into dst (exactly `length` bytes). NOT_FOUND if absent, DATA_LOSS if
  // the stored length differs.
  absl::Status ReadPage(const PageKey& key, uint8_t* dst, size_t length);
  // Abstracts of pages; nullopt where absent.
  absl::Status ReadAbstracts(absl::Span<const PageKey> keys, std::vector<std::optional<std::string>>* out);

  uint64_t read_bytes() const { return read_bytes_.load(std::memory_order_relaxed); }
  uint64_t write_bytes() const { return write_bytes_.load(std::memory_order_relaxed); }
  // Bytes of SST + blob files on disk (RocksDB's own view, lags deletes until compaction/GC).
  uint64_t FilesBytes() const;

 private:
  DiskTier() = default;
  absl::Status Init(const DiskTierOptions& options);

  DiskTierOptions options_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, pages, abstracts, meta
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bytes_{0};
};

}  // namespace leoam::kvstore
