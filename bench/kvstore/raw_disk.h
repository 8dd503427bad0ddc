// kvstore_bench's disk baselines: dropping files from the page cache, and raw sequential reads
// and writes of the same disk.
#pragma once

#include <string>

namespace leoam::kvstore::bench {

// fdatasync + posix_fadvise(DONTNEED) on every file under dir (no root needed for our own files).
void DropFromPageCache(const std::string& dir);

struct RawDisk {
  double write_s = -1;          // sequential 1 MiB writes + fdatasync
  double read_1m_s = -1;        // O_DIRECT sequential reads, 1 MiB
  double read_64k_s = -1;       // O_DIRECT sequential reads, 64 KiB (the page size)
  double read_buffered_s = -1;  // buffered sequential 1 MiB reads after fadvise(DONTNEED) (kernel readahead)
};

// Writes a file of `bytes` at path, syncs it, drops it from the page cache and reads it back with
// O_DIRECT in 1 MiB and 64 KiB blocks and buffered; deletes it.
RawDisk MeasureRawDisk(const std::string& path, size_t bytes);

// Raw O_DIRECT sequential read (1 MiB blocks) of every file in segments_dir, dropped from the
// page cache first. GB/s, 0 when nothing could be read.
double RawReadOfSegments(const std::string& segments_dir);

}  // namespace leoam::kvstore::bench
