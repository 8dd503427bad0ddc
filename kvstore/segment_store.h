// SegmentStore: page payloads in append-only segment files, read with O_DIRECT straight into the
// caller's (arena) memory.
//
// Why not RocksDB values: a RocksDB put writes every payload byte twice (WAL, then blob file)
// through software CRCs and several copies, and a read goes aligned buffer -> blob value ->
// arena. Here a put is one pwritev of the pages' arena buffers at the tail of a segment, and a
// fetch of pages that lie next to each other is one preadv (O_DIRECT) into their arena blocks.
//
// File format (kSegmentFormatVersion): <dir>/seg-<16 hex digits id>.dat. The first kSegmentAlign
// bytes are a header: "LEOAMSEG" | format version (u32 LE) | segment id (u64 LE) | zeros. Then
// payloads, each starting at a multiple of kSegmentAlign and padded with zeros to the next one.
// A file holds no index of its own: where a page is (segment id, offset, length, CRC32C) lives in
// the disk tier's RocksDB metadata, committed after the payload is written.
//
// Space: the segment being appended to is "active"; a segment is deleted when no live page is
// left in it (the caller reports deaths with Release). Dead pages in a segment that still holds
// live ones are NOT reclaimed (no compaction). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace leoam::kvstore {

inline constexpr uint32_t kSegmentFormatVersion = 1;
// File offsets, read lengths and (for O_DIRECT) destination addresses are multiples of this.
inline constexpr uint64_t kSegmentAlign = 4096;

inline uint64_t SegmentPadded(uint64_t length) { return (length + kSegmentAlign - 1) & ~(kSegmentAlign - 1); }

struct SegmentLocation {
  uint64_t segment = 0;  // segment id (>= 1)
  uint64_t offset = 0;   // byte offset of the payload in the file
  friend bool operator==(const SegmentLocation&, const SegmentLocation&) = default;
};

struct SegmentStoreOptions {
  std::string dir;                         // created if missing; required
  bool direct_reads = true;                // O_DIRECT reads where the file system supports them
  uint64_t segment_bytes = 128ull << 20;   // a new segment starts when the active one would pass this
  uint64_t max_read_bytes = 8ull << 20;    // largest single preadv of adjacent pages
};

// One payload to read: `length` bytes at `where` into `dst`. With O_DIRECT, dst must be
// kSegmentAlign-aligned and have room for SegmentPadded(length) bytes (the padding is read too);
// other destinations are read through the page cache, exactly `length` bytes.
struct SegmentRead {
  SegmentLocation where;
  uint32_t length = 0;
  uint8_t* dst = nullptr;
};

class SegmentStore {
 public:
  // Opens the directory: checks every segment's header (a file of another format version is
  // FAILED_PRECONDITION; a truncated or foreign header makes the file unusable, not an error) and
  // starts a new active segment. Every existing segment starts with no live pages: the caller
  // registers live pages with AddLive, then calls CollectGarbage.
  static absl::StatusOr<std::unique_ptr<SegmentStore>> Open(const SegmentStoreOptions& options);
  ~SegmentStore();
  SegmentStore(const SegmentStore&) = delete;
  SegmentStore& operator=(const SegmentStore&) = delete;

  // Appends payloads back to back (each padded) to the active segment, with one pwritev per
  // IOV_MAX pieces; *where gets each one's location. With sync, fdatasync before returning.
  // padded: every payload is kSegmentAlign-aligned and followed by zeros up to
  // SegmentPadded(length) (arena blocks, see Store::PutPages), so it is written with O_DIRECT
  // straight from there (no page-cache copy); otherwise through the page cache.
  // The pages count as live from here on (Release them if their metadata is never committed).
  absl::Status Append(absl::Span<const uint8_t* const> payloads, absl::Span<const uint32_t> lengths, bool sync,
                      std::vector<SegmentLocation>* where, bool padded = false);

  // Reads payloads; adjacent ones of one segment (sorted here) become one preadv of up to
  // max_read_bytes. (*statuses)[i]: OK, NOT_FOUND (segment deleted) or DATA_LOSS (short file, I/O error).
  // Bytes are not checked here (the caller holds the CRCs).
  void Read(absl::Span<const SegmentRead> reads, std::vector<absl::Status>* statuses);

  // Whether [offset, offset + length) lies in the data area of a usable segment.
  bool Contains(const SegmentLocation& where, uint32_t length) const;
  // Registers a stored page as live (at load).
  void AddLive(const SegmentLocation& where, uint32_t length);
  // A page is dead (deleted, or its put failed). A non-active segment left with no live page is
  // deleted (open readers keep their descriptor).
  void Release(const SegmentLocation& where, uint32_t length);
  // Deletes every non-active segment without live pages (after the load); returns how many.
  size_t CollectGarbage();

  // Bytes of segment files on disk, and how many of them are live payload (padded).
  uint64_t file_bytes() const;
  uint64_t live_bytes() const;
  size_t num_segments() const;
  bool direct_reads() const { return direct_.load(std::memory_order_relaxed); }

 private:
  struct Segment;
  explicit SegmentStore(const SegmentStoreOptions& options) : options_(options) {}
  absl::Status Init();
  // Creates segment `id`, makes it the active one.
  absl::Status StartSegment(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Segment> Find(uint64_t id) const;
  void DeleteIfDead(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PathOf(uint64_t id) const;

  const SegmentStoreOptions options_;
  std::atomic<bool> direct_{false};  // set when a segment is started (under mu_)
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Segment> active_ ABSL_GUARDED_BY(mu_);
  uint64_t tail_ ABSL_GUARDED_BY(mu_) = 0;  // next append offset in the active segment
  uint64_t file_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leoam::kvstore
