#include "kvstore/segment_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/log.h"

namespace leoam::kvstore {
namespace {

constexpr char kMagic[8] = {'L', 'E', 'O', 'A', 'M', 'S', 'E', 'G'};
constexpr size_t kHeaderFields = 8 + 4 + 8;
constexpr int kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;

// Zeros for padding writes (one padding is < kSegmentAlign bytes).
const uint8_t* Zeros() {
  alignas(kSegmentAlign) static const uint8_t zeros[kSegmentAlign] = {};
  return zeros;
}

std::string ErrnoText(int err) { return std::strerror(err); }

// pwritev/preadv until every byte moved (regular files may still return short counts).
// Returns bytes moved, or -errno.
template <typename Op>
int64_t Fully(Op op, int fd, std::vector<iovec> iov, uint64_t offset) {
  int64_t done = 0;
  size_t first = 0;
  while (first < iov.size()) {
    const int n = static_cast<int>(std::min<size_t>(iov.size() - first, kMaxIov));
    const ssize_t r = op(fd, iov.data() + first, n, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return done;  // end of file
    done += r;
    size_t left = static_cast<size_t>(r);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left > 0) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return done;
}

void SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0) LEOAM_LOG(WARNING, "fsync of %s failed: %s", dir, ErrnoText(errno));
  ::close(fd);
}

}  // namespace

struct SegmentStore::Segment {
  uint64_t id = 0;
  int fd = -1;          // read-write, through the page cache
  int direct_fd = -1;   // O_DIRECT reads, -1 when unsupported
  int direct_write_fd = -1;  // O_DIRECT appends of padded payloads (active segment), -1 when unsupported
  bool usable = false;  // header checked
  uint64_t file_bytes = 0;
  uint64_t live_bytes = 0;
  std::string path;
  ~Segment() {
    if (fd >= 0) ::close(fd);
    if (direct_fd >= 0) ::close(direct_fd);
    if (direct_write_fd >= 0) ::close(direct_write_fd);
  }
};

std::string SegmentStore::PathOf(uint64_t id) const { return absl::StrFormat("%s/seg-%016x.dat", options_.dir, id); }

absl::StatusOr<std::unique_ptr<SegmentStore>> SegmentStore::Open(const SegmentStoreOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("segment directory is empty");
  std::unique_ptr<SegmentStore> s(new SegmentStore(options));
  absl::Status st = s->Init();
  if (!st.ok()) return st;
  return s;
}

SegmentStore::~SegmentStore() = default;

absl::Status SegmentStore::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("cannot create %s: %s", options_.dir, ec.message()));
  uint64_t max_id = 0;
  absl::MutexLock l(&mu_);
  for (const auto& e : std::filesystem::directory_iterator(options_.dir, ec)) {
    const std::string name = e.path().filename().string();
    uint64_t id = 0;
    if (name.size() != 4 + 16 + 4 || name.rfind("seg-", 0) != 0 || name.substr(20) != ".dat" ||
        !absl::SimpleHexAtoi(name.substr(4, 16), &id) || id == 0) {
      continue;
    }
    auto seg = std::make_shared<Segment>();
    seg->id = id;
    seg->path = e.path().string();
    seg->fd = ::open(seg->path.c_str(), O_RDWR | O_CLOEXEC);
    if (seg->fd < 0) return absl::InternalError(absl::StrFormat("cannot open %s: %s", seg->path, ErrnoText(errno)));
    struct stat sb {};
    if (::fstat(seg->fd, &sb) != 0) return absl::InternalError("fstat " + seg->path);
    seg->file_bytes = static_cast<uint64_t>(sb.st_size);
    char header[kHeaderFields] = {};
    const bool whole = ::pread(seg->fd, header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header));
    uint32_t version = 0;
    uint64_t stored_id = 0;
    std::memcpy(&version, header + 8, 4);
    std::memcpy(&stored_id, header + 12, 8);
    if (whole && std::memcmp(header, kMagic, 8) == 0 && version != kSegmentFormatVersion) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s has segment format version %d; this leoam-kvstore reads version %d (use another --data_dir or "
          "the matching leoam-kvstore)",
          seg->path, version, kSegmentFormatVersion));
    }
    seg->usable = whole && std::memcmp(header, kMagic, 8) == 0 && stored_id == id &&
                  seg->file_bytes >= kSegmentAlign;
    if (!seg->usable) LEOAM_LOG(WARNING, "%s has no valid segment header; its pages are unreadable", seg->path);
    if (options_.direct_reads) seg->direct_fd = ::open(seg->path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    file_bytes_ += seg->file_bytes;
    max_id = std::max(max_id, id);
    segments_[id] = std::move(seg);
  }
  if (ec) return absl::InternalError(absl::StrFormat("cannot list %s: %s", options_.dir, ec.message()));
  return StartSegment(max_id + 1);
}

absl::Status SegmentStore::StartSegment(uint64_t id) {
  auto seg = std::make_shared<Segment>();
  seg->id = id;
  seg->path = PathOf(id);
  seg->fd = ::open(seg->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (seg->fd < 0) return absl::InternalError(absl::StrFormat("cannot create %s: %s", seg->path, ErrnoText(errno)));
  alignas(kSegmentAlign) static thread_local uint8_t header[kSegmentAlign];
  std::memset(header, 0, sizeof(header));
  std::memcpy(header, kMagic, 8);
  const uint32_t version = kSegmentFormatVersion;
  std::memcpy(header + 8, &version, 4);
  std::memcpy(header + 12, &id, 8);
  if (::pwrite(seg->fd, header, kSegmentAlign, 0) != static_cast<ssize_t>(kSegmentAlign) || ::fdatasync(seg->fd) != 0) {
    const int err = errno;
    ::unlink(seg->path.c_str());
    return absl::UnavailableError(absl::StrFormat("cannot write %s: %s", seg->path, ErrnoText(err)));
  }
  SyncDir(options_.dir);  // the file's name must survive a crash before any metadata points into it
  if (options_.direct_reads) {
    seg->direct_fd = ::open(seg->path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (seg->direct_fd < 0 && !direct_.load()) {
      LEOAM_LOG(WARNING, "%s: O_DIRECT unsupported (%s); segment reads go through the page cache", options_.dir,
                ErrnoText(errno));
    }
  }
  direct_.store(seg->direct_fd >= 0);
  if (seg->direct_fd >= 0) seg->direct_write_fd = ::open(seg->path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  seg->usable = true;
  seg->file_bytes = kSegmentAlign;
  file_bytes_ += kSegmentAlign;
  const uint64_t previous = active_ ? active_->id : 0;
  segments_[id] = seg;
  active_ = std::move(seg);
  tail_ = kSegmentAlign;
  if (previous != 0) DeleteIfDead(previous);
  return absl::OkStatus();
}

absl::Status SegmentStore::Append(absl::Span<const uint8_t* const> payloads, absl::Span<const uint32_t> lengths,
                                  bool sync, std::vector<SegmentLocation>* where, bool padded) {
  where->clear();
  uint64_t total = 0;
  for (uint32_t n : lengths) total += SegmentPadded(n);
  if (payloads.empty()) return absl::OkStatus();
  std::shared_ptr<Segment> seg;
  uint64_t start = 0;
  {
    absl::MutexLock l(&mu_);
    if (tail_ > kSegmentAlign && tail_ + total > options_.segment_bytes) {
      absl::Status s = StartSegment(active_->id + 1);
      if (!s.ok()) return s;
    }
    seg = active_;
    start = tail_;
    tail_ += total;
    seg->file_bytes = tail_;
    seg->live_bytes += total;
    file_bytes_ += total;
    live_bytes_ += total;
  }
  bool direct = padded && seg->direct_write_fd >= 0;
  for (const uint8_t* p : payloads) direct = direct && reinterpret_cast<uintptr_t>(p) % kSegmentAlign == 0;
  std::vector<iovec> iov;
  iov.reserve(payloads.size() * 2);
  uint64_t at = start;
  for (size_t i = 0; i < payloads.size(); ++i) {
    where->push_back(SegmentLocation{seg->id, at});
    const uint64_t pad = SegmentPadded(lengths[i]) - lengths[i];
    if (direct) {
      iov.push_back(iovec{const_cast<uint8_t*>(payloads[i]), SegmentPadded(lengths[i])});
    } else {
      iov.push_back(iovec{const_cast<uint8_t*>(payloads[i]), lengths[i]});
      if (pad > 0) iov.push_back(iovec{const_cast<uint8_t*>(Zeros()), pad});
    }
    at += SegmentPadded(lengths[i]);
  }
  const int64_t wrote = Fully(::pwritev, direct ? seg->direct_write_fd : seg->fd, std::move(iov), start);
  absl::Status status;
  if (wrote != static_cast<int64_t>(total)) {
    status = absl::UnavailableError(absl::StrFormat("writing %s: %s", seg->path,
                                                    wrote < 0 ? ErrnoText(static_cast<int>(-wrote)) : "short write"));
  } else if (sync && ::fdatasync(seg->fd) != 0) {
    status = absl::UnavailableError(absl::StrFormat("fdatasync %s: %s", seg->path, ErrnoText(errno)));
  }
  if (!status.ok()) {
    for (size_t i = 0; i < where->size(); ++i) Release((*where)[i], lengths[i]);
    where->clear();
  }
  return status;
}

std::shared_ptr<SegmentStore::Segment> SegmentStore::Find(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = segments_.find(id);
  return it == segments_.end() ? nullptr : it->second;
}

void SegmentStore::Read(absl::Span<const SegmentRead> reads, std::vector<absl::Status>* statuses) {
  statuses->assign(reads.size(), absl::OkStatus());
  std::vector<size_t> order(reads.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const SegmentLocation &x = reads[a].where, &y = reads[b].where;
    return x.segment != y.segment ? x.segment < y.segment : x.offset < y.offset;
  });
  auto aligned = [](const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) % kSegmentAlign == 0; };
  std::shared_ptr<Segment> seg;
  for (size_t i = 0; i < order.size();) {
    const SegmentRead& first = reads[order[i]];
    if (!seg || seg->id != first.where.segment) seg = Find(first.where.segment);
    if (!seg || !seg->usable) {
      (*statuses)[order[i]] = absl::NotFoundError(absl::StrFormat("segment %d is gone", first.where.segment));
      ++i;
      continue;
    }
    const bool direct = seg->direct_fd >= 0 && aligned(first.dst) && first.where.offset % kSegmentAlign == 0;
    // The run: following pages of the same segment that start where the previous one's padding
    // ends (and, for O_DIRECT, have aligned destinations). Buffered reads skip the padding into
    // a scratch buffer; O_DIRECT reads it into the (padded) destination.
    size_t end = i + 1;
    uint64_t bytes = SegmentPadded(first.length);
    while (end < order.size() && end - i < static_cast<size_t>(kMaxIov) / 2) {
      const SegmentRead& prev = reads[order[end - 1]];
      const SegmentRead& next = reads[order[end]];
      if (next.where.segment != first.where.segment || (direct && !aligned(next.dst)) ||
          next.where.offset != prev.where.offset + SegmentPadded(prev.length) ||
          bytes + SegmentPadded(next.length) > options_.max_read_bytes) {
        break;
      }
      bytes += SegmentPadded(next.length);
      ++end;
    }
    alignas(kSegmentAlign) static thread_local uint8_t scratch[kSegmentAlign];
    std::vector<iovec> iov;
    for (size_t j = i; j < end; ++j) {
      const SegmentRead& r = reads[order[j]];
      if (direct) {
        iov.push_back(iovec{r.dst, SegmentPadded(r.length)});
      } else {
        iov.push_back(iovec{r.dst, r.length});
        // The last page's padding is not needed.
        if (j + 1 < end && SegmentPadded(r.length) > r.length) iov.push_back(iovec{scratch, SegmentPadded(r.length) - r.length});
      }
    }
    const int64_t got = Fully(::preadv, direct ? seg->direct_fd : seg->fd, std::move(iov), first.where.offset);
    uint64_t at = 0;
    for (size_t j = i; j < end; ++j) {
      const SegmentRead& r = reads[order[j]];
      at += (direct || j + 1 < end) ? SegmentPadded(r.length) : r.length;
      if (got < 0) {
        (*statuses)[order[j]] = absl::DataLossError(
            absl::StrFormat("reading %s: %s", seg->path, ErrnoText(static_cast<int>(-got))));
      } else if (static_cast<uint64_t>(got) < at - ((direct || j + 1 < end) ? SegmentPadded(r.length) - r.length : 0)) {
        (*statuses)[order[j]] = absl::DataLossError(
            absl::StrFormat("%s ends before the page at offset %d", seg->path, r.where.offset));
      }
    }
    i = end;
  }
}

bool SegmentStore::Contains(const SegmentLocation& where, uint32_t length) const {
  absl::MutexLock l(&mu_);
  auto it = segments_.find(where.segment);
  if (it == segments_.end()) return false;
  const Segment& seg = *it->second;
  return seg.usable && where.offset >= kSegmentAlign && where.offset % kSegmentAlign == 0 &&
         where.offset + SegmentPadded(length) <= seg.file_bytes;
}

void SegmentStore::AddLive(const SegmentLocation& where, uint32_t length) {
  absl::MutexLock l(&mu_);
  auto it = segments_.find(where.segment);
  if (it == segments_.end()) return;
  it->second->live_bytes += SegmentPadded(length);
  live_bytes_ += SegmentPadded(length);
}

void SegmentStore::Release(const SegmentLocation& where, uint32_t length) {
  absl::MutexLock l(&mu_);
  auto it = segments_.find(where.segment);
  if (it == segments_.end()) return;
  const uint64_t n = std::min(it->second->live_bytes, SegmentPadded(length));
  it->second->live_bytes -= n;
  live_bytes_ -= n;
  DeleteIfDead(where.segment);
}

void SegmentStore::DeleteIfDead(uint64_t id) {
  auto it = segments_.find(id);
  if (it == segments_.end() || it->second->live_bytes != 0 || it->second == active_) return;
  if (::unlink(it->second->path.c_str()) != 0 && errno != ENOENT) {
    LEOAM_LOG(WARNING, "cannot delete dead segment %s: %s", it->second->path, ErrnoText(errno));
    return;
  }
  file_bytes_ -= std::min(file_bytes_, it->second->file_bytes);
  segments_.erase(it);  // readers holding the shared_ptr keep the descriptors until they finish
}

size_t SegmentStore::CollectGarbage() {
  absl::MutexLock l(&mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, seg] : segments_) ids.push_back(id);
  const size_t before = segments_.size();
  for (uint64_t id : ids) DeleteIfDead(id);
  return before - segments_.size();
}

uint64_t SegmentStore::file_bytes() const {
  absl::MutexLock l(&mu_);
  return file_bytes_;
}

uint64_t SegmentStore::live_bytes() const {
  absl::MutexLock l(&mu_);
  return live_bytes_;
}

size_t SegmentStore::num_segments() const {
  absl::MutexLock l(&mu_);
  return segments_.size();
}

}  // namespace leoam::kvstore
