#include "kvstore/disk_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

enum Cf { kDefault = 0, kPages = 1, kAbstracts = 2, kMeta = 3 };
constexpr std::string_view kFingerprintPrefix = "fp/";
// Version 1: no disk_seq (payload keyed by the page key); version 2 appends disk_seq (8) and
// payload_crc (4).
constexpr uint8_t kMetaVersion = 2;
constexpr size_t kMetaV1Bytes = 1 + 1 + kHashBytes + 1 + 4 + 4;
constexpr size_t kMetaBytes = kMetaV1Bytes + 8 + 4;

// Key of a payload in the pages column family: fp_id | disk_seq (8, big-endian) | page key
// (which starts with fp_id again; kept whole so the key is self-describing). disk_seq 0: the
// legacy key, the page key alone.
std::string PayloadKey(const DiskPageRef& p) {
  std::string page_key = EncodePageKey(p.key);
  if (p.disk_seq == 0) return page_key;
  std::string s(12, '\0');
  PutBigEndian32(p.key.node.fp_id, s.data());
  PutBigEndian32(static_cast<uint32_t>(p.disk_seq >> 32), s.data() + 4);
  PutBigEndian32(static_cast<uint32_t>(p.disk_seq), s.data() + 8);
  return s + page_key;
}

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
  s[0] = static_cast<char>(kMetaVersion);
  s[1] = parent.has_value() ? 1 : 0;
  if (parent.has_value()) std::memcpy(s.data() + 2, parent->bytes.data(), kHashBytes);
  s[2 + kHashBytes] = static_cast<char>(info.encoding);
  PutBigEndian32(info.payload_bytes, s.data() + 3 + kHashBytes);
  PutBigEndian32(info.abstract_bytes, s.data() + 7 + kHashBytes);
  PutBigEndian32(static_cast<uint32_t>(info.disk_seq >> 32), s.data() + kMetaV1Bytes);
  PutBigEndian32(static_cast<uint32_t>(info.disk_seq), s.data() + kMetaV1Bytes + 4);
  PutBigEndian32(info.payload_crc, s.data() + kMetaV1Bytes + 8);
  return s;
}

bool DecodeMeta(std::string_view s, std::optional<Hash128>* parent, PageInfo* info) {
  const uint8_t version = s.empty() ? 0 : static_cast<uint8_t>(s[0]);
  if (!(version == 1 && s.size() == kMetaV1Bytes) && !(version == 2 && s.size() == kMetaBytes)) return false;
  if (s[1] != 0) {
    Hash128 h;
    std::memcpy(h.bytes.data(), s.data() + 2, kHashBytes);
    *parent = h;
  } else {
    parent->reset();
  }
  info->encoding = static_cast<uint8_t>(s[2 + kHashBytes]);
  info->payload_bytes = GetBigEndian32(s.data() + 3 + kHashBytes);
  info->abstract_bytes = GetBigEndian32(s.data() + 7 + kHashBytes);
  info->disk_seq = version == 1 ? 0
                                : (uint64_t{GetBigEndian32(s.data() + kMetaV1Bytes)} << 32) |
                                      GetBigEndian32(s.data() + kMetaV1Bytes + 4);
  info->payload_crc = version == 1 ? 0 : GetBigEndian32(s.data() + kMetaV1Bytes + 8);
  return true;
}

std::string EncodeFingerprintValue(const FingerprintRecord& r) {
  std::string s(24, '\0');
  const uint32_t fields[6] = {r.fp_id, r.layout.num_layers, r.layout.page_size,
                              r.layout.num_kv_heads, r.layout.head_dim, r.layout.dtype};
  for (int i = 0; i < 6; ++i) PutBigEndian32(fields[i], s.data() + 4 * i);
  return s;
}

// Whether files in `dir` can be opened with O_DIRECT (tmpfs, for one, refuses it with EINVAL).
bool DirectIoWorks(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string probe = dir + "/.direct_io_probe";
  const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  const int err = errno;
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0 || err != EINVAL;
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
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.background_jobs;
  db_options.max_total_wal_size = 256ull << 20;  // bound WAL replay time after a crash
  db_options.keep_log_file_num = 4;
  // Pages of a chain are written together, so they sit next to each other in a blob file and are
  // read in that order: let the kernel read ahead instead of advising random access.
  db_options.advise_random_on_open = false;
  db_options.use_direct_reads = options.direct_reads;
  if (options.direct_reads && !DirectIoWorks(options.path)) {
    LEOAM_LOG(WARNING, "%s does not support O_DIRECT (tmpfs?); the disk tier reads through the page cache",
              options.path);
    db_options.use_direct_reads = false;
  }

  // One block cache for every column family: abstracts and metadata are small and hot.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  std::shared_ptr<rocksdb::TableFactory> table_factory(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::ColumnFamilyOptions small;  // default, abstracts, meta: small values, zstd pays
  small.table_factory = table_factory;
  small.compression = rocksdb::kZSTD;
  small.bottommost_compression = rocksdb::kZSTD;
  small.write_buffer_size = 16 << 20;

  rocksdb::ColumnFamilyOptions pages;
  pages.table_factory = table_factory;
  pages.compression = rocksdb::kNoCompression;  // keys only in SSTs once blobs are on
  pages.enable_blob_files = true;
  pages.min_blob_size = options.min_blob_bytes;
  pages.blob_file_size = 256ull << 20;
  pages.blob_compression_type = options.compress_pages ? rocksdb::kZSTD : rocksdb::kNoCompression;
  pages.enable_blob_garbage_collection = true;  // reclaim space of evicted pages
  pages.blob_garbage_collection_age_cutoff = 0.5;
  pages.write_buffer_size = 64 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, small}, {"pages", pages}, {"abstracts", small}, {"meta", small}};
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(db_options, options.path, cfs, &handles_, &db);
  if (!rs.ok()) return FromRocks(rs, "cannot open the disk tier at " + options.path);
  db_ = db;
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
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kMeta]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    PageKey key;
    std::optional<Hash128> parent;
    PageInfo info;
    if (!DecodePageKey(std::string_view(it->key().data(), it->key().size()), &key) ||
        !DecodeMeta(std::string_view(it->value().data(), it->value().size()), &parent, &info)) {
      return absl::DataLossError("malformed page metadata in the disk tier");
    }
    fn(key, parent, info);
  }
  return FromRocks(it->status(), "scanning page metadata");
}

absl::Status DiskTier::Write(absl::Span<const PageWrite> puts, absl::Span<const DiskPageRef> deletes) {
  rocksdb::WriteBatch batch;
  uint64_t bytes = 0;
  for (const DiskPageRef& d : deletes) {
    const std::string k = EncodePageKey(d.key);
    rocksdb::Status s = batch.Delete(handles_[kPages], PayloadKey(d));
    for (int cf : {kAbstracts, kMeta}) {
      if (s.ok()) s = batch.Delete(handles_[cf], k);
    }
    if (!s.ok()) return FromRocks(s, "building a write batch");
  }
  for (const PageWrite& p : puts) {
    const std::string k = EncodePageKey(p.key);
    rocksdb::Status s = batch.Put(handles_[kPages], PayloadKey(DiskPageRef{p.key, p.info.disk_seq}),
                                  rocksdb::Slice(reinterpret_cast<const char*>(p.payload), p.info.payload_bytes));
    if (s.ok()) s = batch.Put(handles_[kAbstracts], k, rocksdb::Slice(p.abstract.data(), p.abstract.size()));
    if (s.ok()) s = batch.Put(handles_[kMeta], k, EncodeMeta(p.parent, p.info));
    if (!s.ok()) return FromRocks(s, "building a write batch");
    bytes += p.info.payload_bytes;
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  rocksdb::Status ws = db_->Write(wo, &batch);
  if (!ws.ok()) return FromRocks(ws, "writing pages to the disk tier");
  write_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status DiskTier::DeleteFingerprintPages(uint32_t fp_id) {
  rocksdb::WriteBatch batch;
  const std::string begin = FingerprintRangeStart(fp_id), end = FingerprintRangeLimit(fp_id);
  for (int cf : {kPages, kAbstracts, kMeta}) {
    rocksdb::Status s = batch.DeleteRange(handles_[cf], begin, end);
    if (!s.ok()) return FromRocks(s, "building a delete batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return FromRocks(db_->Write(wo, &batch), "deleting a fingerprint's pages");
}

absl::Status DiskTier::ReadPage(const PageKey& key, const PageInfo& info, uint8_t* dst) {
  std::vector<absl::Status> st;
  ReadPages({key}, {info}, {dst}, &st);
  return st[0];
}

namespace {

// Checks a read payload: length, and our CRC32C for pages that carry one.
absl::Status CheckPayload(const rocksdb::Slice& value, const PageInfo& info) {
  if (value.size() != info.payload_bytes) {
    return absl::DataLossError(
        absl::StrFormat("stored page has %d bytes, metadata says %d", value.size(), info.payload_bytes));
  }
  if (info.disk_seq != 0 && Crc32c(value.data(), value.size()) != info.payload_crc) {
    return absl::DataLossError("stored page payload fails its CRC32C check");
  }
  return absl::OkStatus();
}

}  // namespace

void DiskTier::ReadPages(absl::Span<const PageKey> keys, absl::Span<const PageInfo> infos,
                         absl::Span<uint8_t* const> dsts, std::vector<absl::Status>* statuses) {
  statuses->assign(keys.size(), absl::OkStatus());
  if (keys.empty()) return;
  std::vector<std::string> key_bytes;
  key_bytes.reserve(keys.size());
  bool legacy = false;
  for (size_t i = 0; i < keys.size(); ++i) {
    key_bytes.push_back(PayloadKey(DiskPageRef{keys[i], infos[i].disk_seq}));
    legacy |= infos[i].disk_seq == 0;
  }
  std::vector<rocksdb::Slice> slices(key_bytes.begin(), key_bytes.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> rs(keys.size());
  rocksdb::ReadOptions ro;
  // Our own (hardware) CRC32C covers pages with a disk_seq; pages from before it existed have
  // only RocksDB's blob checksum, so verify that when any is in the batch.
  ro.verify_checksums = legacy;
  db_->MultiGet(ro, handles_[kPages], keys.size(), slices.data(), values.data(), rs.data());
  uint64_t bytes = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!rs[i].ok()) {
      (*statuses)[i] = FromRocks(rs[i], "reading a page");
      continue;
    }
    (*statuses)[i] = CheckPayload(values[i], infos[i]);
    if (!(*statuses)[i].ok()) {
      LEOAM_LOG(ERROR, "disk tier: %s", (*statuses)[i].ToString());
      continue;
    }
    std::memcpy(dsts[i], values[i].data(), infos[i].payload_bytes);
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

uint64_t DiskTier::FilesBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    if (db_->GetIntProperty(h, "rocksdb.total-blob-file-size", &v)) total += v;
  }
  return total;
}

}  // namespace leoam::kvstore
