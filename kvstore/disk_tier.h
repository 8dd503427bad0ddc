// DiskTier: the persistent tier, a RocksDB database with four column families:
//   pages      fp_id | write sequence number | page key -> payload bytes (BlobDB: values >=
//              min_blob_bytes live in blob files). BlobDB writes blob files at flush, in key
//              order: keying payloads by write order keeps the pages of a chain, put together,
//              next to each other in a blob file, so a fetch of them reads the file sequentially
//              (keyed by hash alone they were scattered over the file: random 64 KiB reads).
//              Pages written before this change keep their old 24-byte key (disk_seq 0).
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
  // O_DIRECT reads of SSTs and blob files. With it, ReadPages' MultiGet merges the blobs of
  // consecutive pages (written together, so adjacent in a blob file) into one large read, and
  // pages do not pass through (and evict others from) the page cache. Default on.
  bool direct_reads = true;
};

struct FingerprintRecord {
  std::string fingerprint;
  uint32_t fp_id = 0;
  Layout layout;
};

// A stored page as the disk tier addresses it.
struct DiskPageRef {
  PageKey key;
  uint64_t disk_seq = 0;  // PageInfo::disk_seq
};

// One page to write (info.disk_seq: a number no other stored page of the fingerprint has, >= 1).
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
  absl::Status Write(absl::Span<const PageWrite> puts, absl::Span<const DiskPageRef> deletes);
  // Deletes every page of a fingerprint (its record stays).
  absl::Status DeleteFingerprintPages(uint32_t fp_id);

  // Copies a page's payload into dst (exactly `length` bytes). NOT_FOUND if absent, DATA_LOSS if
  // the stored length differs.
  // info: the page's PageInfo as written (payload_bytes, disk_seq, payload_crc). Pages with a
  // disk_seq are checked against payload_crc (DATA_LOSS on mismatch) with our hardware CRC32C
  // instead of RocksDB's software one; older pages keep RocksDB's blob checksum.
  absl::Status ReadPage(const PageKey& key, const PageInfo& info, uint8_t* dst);
  // Reads many pages with one RocksDB MultiGet (blob reads of one file are sorted, batched and,
  // with direct_reads, merged). dsts[i] receives exactly infos[i].payload_bytes bytes;
  // (*statuses)[i] is OK, NOT_FOUND or DATA_LOSS as for ReadPage.
  void ReadPages(absl::Span<const PageKey> keys, absl::Span<const PageInfo> infos, absl::Span<uint8_t* const> dsts,
                 std::vector<absl::Status>* statuses);
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
