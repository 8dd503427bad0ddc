#include "kvstore/disk_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "kvstore/crc32c.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace leoam::kvstore {
namespace {

enum Cf { kDefault = 0, kAbstracts = 1, kMeta = 2 };
constexpr std::string_view kFingerprintPrefix = "fp/";
constexpr std::string_view kFormatPrefix = "leoam-kvstore disk format ";

// PageMeta v3: version (1) | has_parent (1) | parent (16) | encoding (1) | payload_bytes (4) |
// abstract_bytes (4) | segment (8) | offset (8) | payload_crc (4); integers big-endian.
constexpr uint8_t kMetaVersion = 3;
constexpr size_t kMetaBytes = 1 + 1 + kHashBytes + 1 + 4 + 4 + 8 + 8 + 4;

void PutBigEndian64(uint64_t v, char* p) {
  PutBigEndian32(static_cast<uint32_t>(v >> 32), p);
  PutBigEndian32(static_cast<uint32_t>(v), p + 4);
}
uint64_t GetBigEndian64(const char* p) { return (uint64_t{GetBigEndian32(p)} << 32) | GetBigEndian32(p + 4); }

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrFormat("%s: %s", what, s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() && s.subcode() == rocksdb::Status::kNoSpace) return absl::ResourceExhaustedError(msg);
  if (s.IsIOError()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

std::string EncodeMeta(const std::optional<Hash128>& parent, const PageInfo& info) {
  std::string s(kMetaBytes, '\0');
  char* p = s.data();
  p[0] = static_cast<char>(kMetaVersion);
  p[1] = parent.has_value() ? 1 : 0;
  if (parent.has_value()) std::memcpy(p + 2, parent->bytes.data(), kHashBytes);
  p += 2 + kHashBytes;
  p[0] = static_cast<char>(info.encoding);
  PutBigEndian32(info.payload_bytes, p + 1);
  PutBigEndian32(info.abstract_bytes, p + 5);
  PutBigEndian64(info.where.segment, p + 9);
  PutBigEndian64(info.where.offset, p + 17);
  PutBigEndian32(info.payload_crc, p + 25);
  return s;
}

bool DecodeMeta(std::string_view s, std::optional<Hash128>* parent, PageInfo* info) {
  if (s.size() != kMetaBytes || static_cast<uint8_t>(s[0]) != kMetaVersion) return false;
  if (s[1] != 0) {
    Hash128 h;
    std::memcpy(h.bytes.data(), s.data() + 2, kHashBytes);
    *parent = h;
  } else {
    parent->reset();
  }
  const char* p = s.data() + 2 + kHashBytes;
  info->encoding = static_cast<uint8_t>(p[0]);
  info->payload_bytes = GetBigEndian32(p + 1);
  info->abstract_bytes = GetBigEndian32(p + 5);
  info->where.segment = GetBigEndian64(p + 9);
  info->where.offset = GetBigEndian64(p + 17);
  info->payload_crc = GetBigEndian32(p + 25);
  return true;
}

std::string EncodeFingerprintValue(const FingerprintRecord& r) {
  std::string s(24, '\0');
  const uint32_t fields[6] = {r.fp_id, r.layout.num_layers, r.layout.page_size,
                              r.layout.num_kv_heads, r.layout.head_dim, r.layout.dtype};
  for (int i = 0; i < 6; ++i) PutBigEndian32(fields[i], s.data() + 4 * i);
  return s;
}

absl::Status SyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrFormat("cannot open %s: %s", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrFormat("fsync %s: %s", path, std::strerror(err)));
  return absl::OkStatus();
}

// Checks (or, in a new data dir, writes) the FORMAT file.
absl::Status CheckFormat(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("cannot create %s: %s", dir, ec.message()));
  const std::string path = dir + "/FORMAT";
  if (fs::exists(path, ec)) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    uint32_t version = 0;
    if (text.rfind(kFormatPrefix, 0) != 0 ||
        !absl::SimpleAtoi(absl::string_view(text).substr(kFormatPrefix.size()), &version)) {
      return absl::FailedPreconditionError(absl::StrFormat("%s is not a leoam-kvstore FORMAT file", path));
    }
    if (version != kDiskFormatVersion) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s holds leoam-kvstore disk format %d; this leoam-kvstore reads format %d. Use the matching "
          "leoam-kvstore, or another (or emptied) --data_dir: the store is a cache, its pages can be recomputed",
          dir, version, kDiskFormatVersion));
    }
    return absl::OkStatus();
  }
  // No FORMAT file: a new data dir, or one written before format versions existed (RocksDB
  // directly in the data dir, payloads inside RocksDB).
  if (fs::exists(dir + "/CURRENT", ec) || fs::exists(dir + "/db", ec) || fs::exists(dir + "/segments", ec)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s holds a leoam-kvstore disk tier without a FORMAT file (written by an older leoam-kvstore, formats 1-2: "
        "payloads inside RocksDB); this leoam-kvstore reads format %d only. Its pages cannot be read: empty the "
        "directory or use another --data_dir (the store is a cache, its pages can be recomputed)",
        dir, kDiskFormatVersion));
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << kFormatPrefix << kDiskFormatVersion << "\n";
    if (!f.flush()) return absl::InternalError("cannot write " + tmp);
  }
  absl::Status s = SyncPath(tmp, O_RDONLY);
  if (!s.ok()) return s;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrFormat("cannot create %s: %s", path, ec.message()));
  return SyncPath(dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DiskTier>> DiskTier::Open(const DiskTierOptions& options) {
  std::unique_ptr<DiskTier> tier(new DiskTier());
  absl::Status s = tier->Init(options);
  if (!s.ok()) return s;
  return tier;
}

absl::Status DiskTier::Init(const DiskTierOptions& options) {
  options_ = options;
  if (options.path.empty()) return absl::InvalidArgumentError("disk tier path is empty");
  absl::Status fs = CheckFormat(options.path);
  if (!fs.ok()) return fs;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.background_jobs;
  db_options.max_total_wal_size = 64ull << 20;  // bound WAL replay time after a crash
  db_options.keep_log_file_num = 4;

  // One block cache for every column family: abstracts and metadata are small and hot.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  std::shared_ptr<rocksdb::TableFactory> table_factory(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::ColumnFamilyOptions small;  // small values, zstd pays
  small.table_factory = table_factory;
  small.compression = rocksdb::kZSTD;
  small.bottommost_compression = rocksdb::kZSTD;
  small.write_buffer_size = 16 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, small}, {"abstracts", small}, {"meta", small}};
  rocksdb::DB* db = nullptr;
  // RocksDB's LOCK file keeps a second server off this data dir: open it before the segments.
  const std::string db_path = options.path + "/db";
  rocksdb::Status rs = rocksdb::DB::Open(db_options, db_path, cfs, &handles_, &db);
  if (!rs.ok()) return FromRocks(rs, "cannot open the disk tier at " + db_path);
  db_ = db;

  SegmentStoreOptions so;
  so.dir = options.path + "/segments";
  so.direct_reads = options.direct_reads;
  so.segment_bytes = options.segment_bytes;
  absl::StatusOr<std::unique_ptr<SegmentStore>> segs = SegmentStore::Open(so);
  if (!segs.ok()) return segs.status();
  segments_ = std::move(*segs);
  return absl::OkStatus();
}

DiskTier::~DiskTier() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    rocksdb::Status s = db_->DestroyColumnFamilyHandle(h);
    if (!s.ok()) LEOAM_LOG(WARNING, "closing a column family: %s", s.ToString());
  }
  rocksdb::Status s = db_->Close();
  if (!s.ok()) LEOAM_LOG(WARNING, "closing the disk tier: %s", s.ToString());
  delete db_;
}

absl::Status DiskTier::LoadFingerprints(std::vector<FingerprintRecord>* out) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kDefault]));
  for (it->Seek(rocksdb::Slice(kFingerprintPrefix.data(), kFingerprintPrefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(kFingerprintPrefix.data(), kFingerprintPrefix.size()));
       it->Next()) {
    const rocksdb::Slice v = it->value();
    if (v.size() != 24) return absl::DataLossError("malformed fingerprint record in the disk tier");
    FingerprintRecord r;
    r.fingerprint = it->key().ToString().substr(kFingerprintPrefix.size());
    uint32_t f[6];
    for (int i = 0; i < 6; ++i) f[i] = GetBigEndian32(v.data() + 4 * i);
    r.fp_id = f[0];
    r.layout = Layout{f[1], f[2], f[3], f[4], f[5]};
    out->push_back(std::move(r));
  }
  return FromRocks(it->status(), "reading fingerprints");
}

absl::Status DiskTier::PutFingerprint(const FingerprintRecord& record) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Put(wo, handles_[kDefault], std::string(kFingerprintPrefix) + record.fingerprint,
                            EncodeFingerprintValue(record)),
                   "writing a fingerprint record");
}

absl::Status DiskTier::ScanPages(
    const std::function<void(const PageKey&, const std::optional<Hash128>&, const PageInfo&)>& fn) {
  std::vector<PageKey> lost;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kMeta]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      PageKey key;
      std::optional<Hash128> parent;
      PageInfo info;
      if (!DecodePageKey(std::string_view(it->key().data(), it->key().size()), &key) ||
          !DecodeMeta(std::string_view(it->value().data(), it->value().size()), &parent, &info)) {
        return absl::DataLossError("malformed page metadata in the disk tier");
      }
      if (!segments_->Contains(info.where, info.payload_bytes)) {
        lost.push_back(key);
        continue;
      }
      segments_->AddLive(info.where, info.payload_bytes);
      fn(key, parent, info);
    }
    absl::Status s = FromRocks(it->status(), "scanning page metadata");
    if (!s.ok()) return s;
  }
  if (lost.empty()) return absl::OkStatus();
  LEOAM_LOG(WARNING, "disk tier: %d pages point at missing segment bytes; deleting their metadata", lost.size());
  rocksdb::WriteBatch batch;
  for (const PageKey& k : lost) {
    const std::string kb = EncodePageKey(k);
    for (int cf : {kAbstracts, kMeta}) {
      rocksdb::Status s = batch.Delete(handles_[cf], kb);
      if (!s.ok()) return FromRocks(s, "building a delete batch");
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &batch), "deleting pages without payload");
}

void DiskTier::FinishLoad() {
  const size_t n = segments_->CollectGarbage();
  LEOAM_LOG(INFO, "disk tier: %d segment files (%d bytes, %d live), %d dead ones deleted, %s reads",
            segments_->num_segments(), segments_->file_bytes(), segments_->live_bytes(), n,
            segments_->direct_reads() ? "O_DIRECT" : "buffered");
}

absl::Status DiskTier::Write(absl::Span<PageWrite> puts, absl::Span<const DiskPageRef> deletes) {
  // 1. Payloads, back to back in one segment (a chain's pages stay adjacent: one read later).
  std::vector<const uint8_t*> payloads;
  std::vector<uint32_t> lengths;
  uint64_t bytes = 0;
  bool padded = true;
  for (const PageWrite& p : puts) {
    padded = padded && p.payload_padded;
    payloads.push_back(p.payload);
    lengths.push_back(p.info.payload_bytes);
    bytes += p.info.payload_bytes;
  }
  std::vector<SegmentLocation> where;
  if (!puts.empty()) {
    absl::Status s = segments_->Append(payloads, lengths, options_.sync_writes, &where, padded);
    if (!s.ok()) return s;
    for (size_t i = 0; i < puts.size(); ++i) puts[i].info.where = where[i];
  }
  auto release_puts = [&] {
    for (size_t i = 0; i < where.size(); ++i) segments_->Release(where[i], lengths[i]);
  };
  // 2. Metadata + abstracts of every page, and the deletes, in one batch.
  rocksdb::WriteBatch batch;
  for (const DiskPageRef& d : deletes) {
    const std::string k = EncodePageKey(d.key);
    rocksdb::Status s = batch.Delete(handles_[kAbstracts], k);
    if (s.ok()) s = batch.Delete(handles_[kMeta], k);
    if (!s.ok()) {
      release_puts();
      return FromRocks(s, "building a write batch");
    }
  }
  for (const PageWrite& p : puts) {
    const std::string k = EncodePageKey(p.key);
    rocksdb::Status s = batch.Put(handles_[kAbstracts], k, rocksdb::Slice(p.abstract.data(), p.abstract.size()));
    if (s.ok()) s = batch.Put(handles_[kMeta], k, EncodeMeta(p.parent, p.info));
    if (!s.ok()) {
      release_puts();
      return FromRocks(s, "building a write batch");
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  rocksdb::Status ws = db_->Write(wo, &batch);
  if (!ws.ok()) {
    release_puts();
    return FromRocks(ws, "writing pages to the disk tier");
  }
  // 3. Deleted pages' segment space (a segment file goes once none of its pages is live).
  for (const DiskPageRef& d : deletes) segments_->Release(d.info.where, d.info.payload_bytes);
  write_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status DiskTier::DeleteFingerprintPages(uint32_t fp_id, absl::Span<const DiskPageRef> pages) {
  rocksdb::WriteBatch batch;
  const std::string begin = FingerprintRangeStart(fp_id), end = FingerprintRangeLimit(fp_id);
  for (int cf : {kAbstracts, kMeta}) {
    rocksdb::Status s = batch.DeleteRange(handles_[cf], begin, end);
    if (!s.ok()) return FromRocks(s, "building a delete batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  absl::Status s = FromRocks(db_->Write(wo, &batch), "deleting a fingerprint's pages");
  if (!s.ok()) return s;
  for (const DiskPageRef& d : pages) segments_->Release(d.info.where, d.info.payload_bytes);
  return absl::OkStatus();
}

absl::Status DiskTier::ReadPage(const PageInfo& info, uint8_t* dst) {
  std::vector<absl::Status> st;
  ReadPages({info}, {dst}, &st);
  return st[0];
}

void DiskTier::ReadPages(absl::Span<const PageInfo> infos, absl::Span<uint8_t* const> dsts,
                         std::vector<absl::Status>* statuses) {
  std::vector<SegmentRead> reads(infos.size());
  for (size_t i = 0; i < infos.size(); ++i) reads[i] = SegmentRead{infos[i].where, infos[i].payload_bytes, dsts[i]};
  segments_->Read(reads, statuses);
  uint64_t bytes = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!(*statuses)[i].ok()) continue;
    if (Crc32c(dsts[i], infos[i].payload_bytes) != infos[i].payload_crc) {
      (*statuses)[i] = absl::DataLossError(absl::StrFormat("page payload at segment %d offset %d fails its CRC32C check",
                                                           infos[i].where.segment, infos[i].where.offset));
      LEOAM_LOG(ERROR, "disk tier: %s", (*statuses)[i].ToString());
      continue;
    }
    bytes += infos[i].payload_bytes;
  }
  read_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

absl::Status DiskTier::ReadAbstracts(absl::Span<const PageKey> keys, std::vector<std::optional<std::string>>* out) {
  out->clear();
  out->resize(keys.size());
  std::vector<std::string> key_bytes;
  key_bytes.reserve(keys.size());
  for (const PageKey& k : keys) key_bytes.push_back(EncodePageKey(k));
  std::vector<rocksdb::Slice> slices(key_bytes.begin(), key_bytes.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), handles_[kAbstracts], keys.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      (*out)[i] = values[i].ToString();
    } else if (!statuses[i].IsNotFound()) {
      return FromRocks(statuses[i], "reading abstracts");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> DiskTier::CopyAbstracts(absl::Span<const PageKey> keys, absl::Span<const uint32_t> lengths,
                                               absl::Span<uint8_t* const> dsts) {
  // MultiGet in slices: bounded pinned memory, and RocksDB sorts each slice's keys for its lookups.
  constexpr size_t kSlice = 1024;
  std::vector<std::string> key_bytes;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values(std::min(kSlice, keys.size()));
  std::vector<rocksdb::Status> statuses(values.size());
  for (size_t begin = 0; begin < keys.size(); begin += kSlice) {
    const size_t n = std::min(kSlice, keys.size() - begin);
    key_bytes.clear();
    for (size_t i = 0; i < n; ++i) key_bytes.push_back(EncodePageKey(keys[begin + i]));
    slices.assign(key_bytes.begin(), key_bytes.end());
    for (size_t i = 0; i < n; ++i) values[i].Reset();
    db_->MultiGet(rocksdb::ReadOptions(), handles_[kAbstracts], n, slices.data(), values.data(), statuses.data());
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) return begin + i;
      if (!statuses[i].ok()) return FromRocks(statuses[i], "reading abstracts");
      if (values[i].size() != lengths[begin + i]) {
        return absl::DataLossError(absl::StrFormat("a stored abstract is %d bytes, its metadata says %d",
                                                   values[i].size(), lengths[begin + i]));
      }
      std::memcpy(dsts[begin + i], values[i].data(), values[i].size());
    }
  }
  return keys.size();
}

absl::Status DiskTier::ScanAbstracts(const std::function<bool(const PageKey&, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a scan: do not push the hot blocks out of the block cache
  ro.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[kAbstracts]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    PageKey key;
    if (!DecodePageKey(std::string_view(it->key().data(), it->key().size()), &key)) {
      return absl::DataLossError("malformed abstract key in the disk tier");
    }
    if (!fn(key, std::string_view(it->value().data(), it->value().size()))) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scanning abstracts");
}

uint64_t DiskTier::FilesBytes() const {
  uint64_t total = segments_->file_bytes();
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
  }
  return total;
}

}  // namespace leoam::kvstore
