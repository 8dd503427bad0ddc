#include "bench/kvstore/raw_disk.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "bench/kvstore/bench_util.h"

namespace leoam::kvstore::bench {

void DropFromPageCache(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

namespace {

double SequentialRead(const std::string& path, size_t block, void* buf, size_t bytes, bool direct) {
  const int fd = open(path.c_str(), O_RDONLY | (direct ? O_DIRECT : 0));
  if (fd < 0) return -1;
  const auto t0 = Clock::now();
  size_t got = 0;
  for (ssize_t r; (r = read(fd, buf, block)) > 0;) got += static_cast<size_t>(r);
  const double s = Seconds(Clock::now() - t0);
  close(fd);
  return got == bytes ? s : -1;
}

}  // namespace

// Raw bandwidth of the same disk: writes a file of `bytes`, syncs it, drops it from the page
// cache and reads it back with O_DIRECT in 1 MiB and in 64 KiB blocks.
RawDisk MeasureRawDisk(const std::string& path, size_t bytes) {
  constexpr size_t kBlock = 1 << 20;
  RawDisk out;
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, kBlock) != 0) return out;
  std::memset(buf, 0x5a, kBlock);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const auto t0 = Clock::now();
  for (size_t done = 0; done < bytes; done += kBlock) {
    if (write(fd, buf, kBlock) != static_cast<ssize_t>(kBlock)) return out;
  }
  fdatasync(fd);
  out.write_s = Seconds(Clock::now() - t0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  out.read_1m_s = SequentialRead(path, kBlock, buf, bytes, true);
  out.read_64k_s = SequentialRead(path, 64 << 10, buf, bytes, true);
  const int dfd = open(path.c_str(), O_RDONLY);
  posix_fadvise(dfd, 0, 0, POSIX_FADV_DONTNEED);
  close(dfd);
  out.read_buffered_s = SequentialRead(path, kBlock, buf, bytes, false);
  unlink(path.c_str());
  free(buf);
  return out;
}

// Raw O_DIRECT sequential read (1 MiB blocks) of the store's own segment files: the same bytes, in
// the same state of the (virtual) device, as the disk-tier rows read. Dropped from the page cache
// first. Returns GB/s (0 when nothing could be read).
double RawReadOfSegments(const std::string& segments_dir) {
  constexpr size_t kBlock = 1 << 20;
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, kBlock) != 0) return 0;
  uint64_t bytes = 0;
  double seconds = 0;
  for (const auto& e : std::filesystem::directory_iterator(segments_dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = open(e.path().c_str(), O_RDONLY | O_DIRECT);
    if (fd < 0) continue;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    const auto t0 = Clock::now();
    for (ssize_t r; (r = read(fd, buf, kBlock)) > 0;) bytes += static_cast<uint64_t>(r);
    seconds += Seconds(Clock::now() - t0);
    close(fd);
  }
  free(buf);
  return seconds > 0 ? bytes / seconds / 1e9 : 0;
}

}  // namespace leoam::kvstore::bench
