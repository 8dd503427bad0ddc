// DiskTier: the persistent tier. On-disk format version kDiskFormatVersion (3), in the data dir:
//   FORMAT      "leoam-kvstore disk format 3\n": a data dir of any other version (or an unversioned
//               one, written before versions existed) is refused at start with FAILED_PRECONDITION.
//   segments/   page payloads in append-only segment files (kvstore/segment_store.h), written at
//               put, read with O_DIRECT straight into the arena.
//   db/         RocksDB (WAL always on) with three column families:
//     meta       page key -> PageMeta v3: parent hash, encoding, sizes, {segment, offset}, CRC32C
//                of the payload (the chain index is rebuilt from it at start)
//     abstracts  page key -> abstract blob (small, hot; zstd-compressed SSTs)
//     default    "fp/<fingerprint>" -> fingerprint id + layout
//
// Write order of a put (Write): payloads appended to the active segment (fdatasync'ed with
// sync_writes), THEN one RocksDB WriteBatch with the metadata + abstracts of every page of the
// request (WAL fsynced with sync_writes). So metadata never points at bytes that were not written
// before it, a page is either wholly there or not at all, and every read is checked against the
// page's CRC32C, so torn or lost payload bytes (e.g. async durability and a power loss) are
// DATA_LOSS, never served. Deletes: metadata first, then the segment is deleted once none of its
// pages is live; at start, pages whose segment bytes are missing are dropped.
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
#include "kvstore/segment_store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace leoam::kvstore {

inline constexpr uint32_t kDiskFormatVersion = 3;

struct DiskTierOptions {
  std::string path;                // data directory (created if missing); required
  bool sync_writes = false;        // fdatasync segments + fsync the WAL before Write returns (--durability=sync)
  int background_jobs = 2;         // RocksDB flush + compaction threads
  uint64_t block_cache_bytes = 128ull << 20;  // LRU cache of SST blocks (abstracts, metadata)
  // O_DIRECT segment reads: adjacent pages are read with one large preadv straight into the
  // destination, without passing through (and evicting others from) the page cache. Default on;
  // falls back to buffered reads where the file system refuses O_DIRECT (tmpfs).
  bool direct_reads = true;
  uint64_t segment_bytes = 128ull << 20;  // size at which a new segment file is started
};

struct FingerprintRecord {
  std::string fingerprint;
  uint32_t fp_id = 0;
  Layout layout;
};

// A stored page as the disk tier addresses it (info as the index holds it: location, length).
struct DiskPageRef {
  PageKey key;
  PageInfo info;
};

// One page to write. Write fills info.where.
struct PageWrite {
  PageKey key;
  std::optional<Hash128> parent;
  PageInfo info;  // encoding, payload_bytes, abstract_bytes, payload_crc set by the caller
  const uint8_t* payload = nullptr;  // info.payload_bytes bytes
  std::string_view abstract;
  // The payload is kSegmentAlign-aligned and zero-padded to SegmentPadded(payload_bytes) (an
  // arena block): written with O_DIRECT when every page of the Write is.
  bool payload_padded = false;
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

  // Calls fn for every stored page whose payload is in a segment; the others (their segment
  // is gone or truncated) are deleted. Every page reported counts as live until deleted with
  // Write; call FinishLoad afterwards.
  absl::Status ScanPages(const std::function<void(const PageKey&, const std::optional<Hash128>&, const PageInfo&)>& fn);
  // Deletes segment files without live pages (after ScanPages and orphan deletes).
  void FinishLoad();

  // Writes `puts` (payloads to a segment, then metadata and abstracts in one atomic batch, see
  // above; fills each info.where) and deletes `deletes` in the same batch.
  absl::Status Write(absl::Span<PageWrite> puts, absl::Span<const DiskPageRef> deletes);
  // Deletes every page of a fingerprint (its record stays); `pages` are its stored pages (for
  // segment space accounting).
  absl::Status DeleteFingerprintPages(uint32_t fp_id, absl::Span<const DiskPageRef> pages);

  // Reads pages; dsts[i] receives infos[i].payload_bytes bytes (with O_DIRECT, dsts[i] must be
  // kSegmentAlign-aligned with room for SegmentPadded(payload_bytes): arena blocks are).
  // Adjacent pages are read with one preadv. (*statuses)[i]: OK, NOT_FOUND (segment deleted:
  // the page was evicted or dropped meanwhile) or DATA_LOSS (CRC32C mismatch, short file).
  void ReadPages(absl::Span<const PageInfo> infos, absl::Span<uint8_t* const> dsts, std::vector<absl::Status>* statuses);
  absl::Status ReadPage(const PageInfo& info, uint8_t* dst);
  // Abstracts of pages; nullopt where absent.
  absl::Status ReadAbstracts(absl::Span<const PageKey> keys, std::vector<std::optional<std::string>>* out);
  // Copies the abstract of keys[i] (exactly lengths[i] bytes) to dsts[i], in order, and stops at
  // the first key that is not stored: returns how many were copied. A stored abstract of another
  // length is DATA_LOSS.
  absl::StatusOr<size_t> CopyAbstracts(absl::Span<const PageKey> keys, absl::Span<const uint32_t> lengths,
                                       absl::Span<uint8_t* const> dsts);

  // Calls fn(key, abstract) for every stored abstract in key order until fn returns false.
  absl::Status ScanAbstracts(const std::function<bool(const PageKey&, std::string_view)>& fn);

  uint64_t read_bytes() const { return read_bytes_.load(std::memory_order_relaxed); }
  uint64_t write_bytes() const { return write_bytes_.load(std::memory_order_relaxed); }
  // Bytes of segment files + SSTs on disk (dead pages in segments that still hold live ones
  // are not reclaimed; see segment_store.h).
  uint64_t FilesBytes() const;
  const SegmentStore& segments() const { return *segments_; }

 private:
  DiskTier() = default;
  absl::Status Init(const DiskTierOptions& options);

  DiskTierOptions options_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, abstracts, meta
  std::unique_ptr<SegmentStore> segments_;
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bytes_{0};
};

}  // namespace leoam::kvstore
