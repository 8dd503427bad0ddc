#include "compute/gguf/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace leoam::gguf {
namespace {

template <typename T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian host (x86-64, aarch64)
  out.append(buf, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out.append(s.data(), s.size());
}

uint64_t AlignUp(uint64_t x, uint64_t alignment) { return (x + alignment - 1) / alignment * alignment; }

bool IsIntegerType(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
    case ValueType::kBool:
      return true;
    default:
      return false;
  }
}

void PutInt(std::string& out, ValueType t, int64_t v) {
  switch (t) {
    case ValueType::kUint8: Put<uint8_t>(out, static_cast<uint8_t>(v)); break;
    case ValueType::kInt8: Put<int8_t>(out, static_cast<int8_t>(v)); break;
    case ValueType::kUint16: Put<uint16_t>(out, static_cast<uint16_t>(v)); break;
    case ValueType::kInt16: Put<int16_t>(out, static_cast<int16_t>(v)); break;
    case ValueType::kUint32: Put<uint32_t>(out, static_cast<uint32_t>(v)); break;
    case ValueType::kInt32: Put<int32_t>(out, static_cast<int32_t>(v)); break;
    case ValueType::kUint64: Put<uint64_t>(out, static_cast<uint64_t>(v)); break;
    case ValueType::kInt64: Put<int64_t>(out, v); break;
    case ValueType::kBool: Put<uint8_t>(out, v != 0 ? 1 : 0); break;
    default: break;
  }
}

// Closes the descriptor and removes the temp file unless released.
class TempFile {
 public:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  absl::Status CloseAndRename(const std::string& target) {
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return Error("close");
    if (::rename(path_.c_str(), target.c_str()) != 0) return Error("rename to " + target);
    committed_ = true;
    return absl::OkStatus();
  }
  absl::Status Error(const std::string& what) const {
    return absl::InternalError(absl::StrFormat("%s: %s failed: %s", path_, what, std::strerror(errno)));
  }

 private:
  int fd_;
  std::string path_;
  bool committed_ = false;
};

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 30)) {
    Fail(absl::StrFormat("alignment %d is not a power of two up to 2^30", alignment));
    alignment_ = kDefaultAlignment;
  } else if (alignment != kDefaultAlignment) {
    AddUint32("general.alignment", static_cast<uint32_t>(alignment));
  }
}

void GgufWriter::Fail(std::string message) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat("GgufWriter: ", message));
}

bool GgufWriter::BeginKey(std::string_view key, ValueType type) {
  if (key.empty()) {
    Fail("empty metadata key");
    return false;
  }
  if (!keys_.insert(std::string(key)).second) {
    Fail(absl::StrFormat("duplicate metadata key '%s'", key));
    return false;
  }
  ++num_kv_;
  PutString(kv_bytes_, key);
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
  return true;
}

void GgufWriter::AddUint8(std::string_view key, uint8_t v) {
  if (BeginKey(key, ValueType::kUint8)) Put(kv_bytes_, v);
}
void GgufWriter::AddInt8(std::string_view key, int8_t v) {
  if (BeginKey(key, ValueType::kInt8)) Put(kv_bytes_, v);
}
void GgufWriter::AddUint16(std::string_view key, uint16_t v) {
  if (BeginKey(key, ValueType::kUint16)) Put(kv_bytes_, v);
}
void GgufWriter::AddInt16(std::string_view key, int16_t v) {
  if (BeginKey(key, ValueType::kInt16)) Put(kv_bytes_, v);
}
void GgufWriter::AddUint32(std::string_view key, uint32_t v) {
  if (BeginKey(key, ValueType::kUint32)) Put(kv_bytes_, v);
}
void GgufWriter::AddInt32(std::string_view key, int32_t v) {
  if (BeginKey(key, ValueType::kInt32)) Put(kv_bytes_, v);
}
void GgufWriter::AddUint64(std::string_view key, uint64_t v) {
  if (BeginKey(key, ValueType::kUint64)) Put(kv_bytes_, v);
}
void GgufWriter::AddInt64(std::string_view key, int64_t v) {
  if (BeginKey(key, ValueType::kInt64)) Put(kv_bytes_, v);
}
void GgufWriter::AddFloat32(std::string_view key, float v) {
  if (BeginKey(key, ValueType::kFloat32)) Put(kv_bytes_, v);
}
void GgufWriter::AddFloat64(std::string_view key, double v) {
  if (BeginKey(key, ValueType::kFloat64)) Put(kv_bytes_, v);
}
void GgufWriter::AddBool(std::string_view key, bool v) {
  if (BeginKey(key, ValueType::kBool)) Put<uint8_t>(kv_bytes_, v ? 1 : 0);
}
void GgufWriter::AddString(std::string_view key, std::string_view v) {
  if (BeginKey(key, ValueType::kString)) PutString(kv_bytes_, v);
}

void GgufWriter::AddStringArray(std::string_view key, const std::vector<std::string>& v) {
  if (!BeginKey(key, ValueType::kArray)) return;
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::kString));
  Put<uint64_t>(kv_bytes_, v.size());
  for (const std::string& s : v) PutString(kv_bytes_, s);
}

void GgufWriter::AddFloat32Array(std::string_view key, const std::vector<float>& v) {
  if (!BeginKey(key, ValueType::kArray)) return;
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::kFloat32));
  Put<uint64_t>(kv_bytes_, v.size());
  for (float f : v) Put(kv_bytes_, f);
}

void GgufWriter::AddInt32Array(std::string_view key, const std::vector<int32_t>& v) {
  if (!BeginKey(key, ValueType::kArray)) return;
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::kInt32));
  Put<uint64_t>(kv_bytes_, v.size());
  for (int32_t x : v) Put(kv_bytes_, x);
}

void GgufWriter::AddIntArray(std::string_view key, ValueType element_type, const std::vector<int64_t>& v) {
  if (!IsIntegerType(element_type)) {
    Fail(absl::StrFormat("AddIntArray '%s': element type %d is not an integer type", key,
                         static_cast<uint32_t>(element_type)));
    return;
  }
  if (!BeginKey(key, ValueType::kArray)) return;
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(element_type));
  Put<uint64_t>(kv_bytes_, v.size());
  for (int64_t x : v) PutInt(kv_bytes_, element_type, x);
}

void GgufWriter::AddFloatArray(std::string_view key, ValueType element_type, const std::vector<double>& v) {
  if (element_type != ValueType::kFloat32 && element_type != ValueType::kFloat64) {
    Fail(absl::StrFormat("AddFloatArray '%s': element type %d is not a float type", key,
                         static_cast<uint32_t>(element_type)));
    return;
  }
  if (!BeginKey(key, ValueType::kArray)) return;
  Put<uint32_t>(kv_bytes_, static_cast<uint32_t>(element_type));
  Put<uint64_t>(kv_bytes_, v.size());
  for (double x : v) {
    if (element_type == ValueType::kFloat32) {
      Put<float>(kv_bytes_, static_cast<float>(x));
    } else {
      Put<double>(kv_bytes_, x);
    }
  }
}

bool GgufWriter::AddTensorInfo(std::string_view name, std::vector<int64_t>& dims, TensorType type, Tensor& t) {
  if (name.empty()) {
    Fail("empty tensor name");
    return false;
  }
  if (!tensor_names_.insert(std::string(name)).second) {
    Fail(absl::StrFormat("duplicate tensor name '%s'", name));
    return false;
  }
  if (!IsSupportedTensorType(type)) {
    Fail(absl::StrFormat("tensor %s: type %s is not supported", name, TensorTypeName(type)));
    return false;
  }
  if (dims.empty() || dims.size() > 4) {
    Fail(absl::StrFormat("tensor %s: %d dimensions (1 to 4 supported)", name, dims.size()));
    return false;
  }
  int64_t rows = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] <= 0 || (i > 0 && __builtin_mul_overflow(rows, dims[i], &rows))) {
      Fail(absl::StrFormat("tensor %s: bad dims [%s]", name, absl::StrJoin(dims, ", ")));
      return false;
    }
  }
  const uint64_t row_bytes = RowBytes(type, dims[0]);
  uint64_t bytes = 0;
  if (row_bytes == 0 || __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(rows), &bytes)) {
    Fail(absl::StrFormat("tensor %s: row length %d does not fit type %s", name, dims[0], TensorTypeName(type)));
    return false;
  }
  t.name = std::string(name);
  t.dims = std::move(dims);
  t.type = type;
  t.offset = data_bytes_;
  t.bytes = bytes;
  t.row_bytes = row_bytes;
  t.rows = rows;
  data_bytes_ = AlignUp(data_bytes_ + bytes, alignment_);
  num_elements_ += static_cast<uint64_t>(rows) * static_cast<uint64_t>(t.dims[0]);
  return true;
}

void GgufWriter::AddTensor(std::string_view name, std::vector<int64_t> dims, TensorType type, std::string data) {
  Tensor t;
  if (!AddTensorInfo(name, dims, type, t)) return;
  if (data.size() != t.bytes) {
    Fail(absl::StrFormat("tensor %s: %d data bytes, the shape needs %d", name, data.size(), t.bytes));
    return;
  }
  t.data = std::move(data);
  tensors_.push_back(std::move(t));
}

void GgufWriter::AddTensor(std::string_view name, std::vector<int64_t> dims, TensorType type,
                           RowProducer producer) {
  Tensor t;
  if (!producer) {
    Fail(absl::StrFormat("tensor %s: no producer", name));
    return;
  }
  if (!AddTensorInfo(name, dims, type, t)) return;
  t.producer = std::move(producer);
  tensors_.push_back(std::move(t));
}

std::string GgufWriter::HeaderBytes() const {
  std::string out;
  Put<uint32_t>(out, kMagic);
  Put<uint32_t>(out, kSupportedVersion);
  Put<uint64_t>(out, tensors_.size());
  Put<uint64_t>(out, num_kv_);
  out += kv_bytes_;
  for (const Tensor& t : tensors_) {
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<uint64_t>(out, static_cast<uint64_t>(d));
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, t.offset);
  }
  out.resize(AlignUp(out.size(), alignment_), '\0');
  return out;
}

uint64_t GgufWriter::FileSize() const {
  // Header size is cheap to compute exactly by building it (metadata dominates, tensors are few).
  return HeaderBytes().size() + data_bytes_;
}

absl::Status GgufWriter::WriteAll(const Sink& sink, const WriteOptions& options) const {
  if (!status_.ok()) return status_;
  // Streamed tensors are double-buffered: while one chunk is written (on a helper thread), the
  // producer fills the next, so generation and I/O overlap. All sink calls stay in file order.
  std::string buffers[2];  // declared before `pending`, whose destructor waits for the write
  int current = 0;
  std::future<absl::Status> pending;
  const auto wait_pending = [&pending]() -> absl::Status {
    if (!pending.valid()) return absl::OkStatus();
    return pending.get();
  };
  const auto write_now = [&](const void* data, uint64_t n) -> absl::Status {
    if (absl::Status s = wait_pending(); !s.ok()) return s;
    return sink(data, n);
  };

  const std::string header = HeaderBytes();
  if (absl::Status s = write_now(header.data(), header.size()); !s.ok()) return s;
  uint64_t written = 0;  // within the data section
  static const char kZeros[256] = {};
  for (const Tensor& t : tensors_) {
    while (written < t.offset) {  // padding of the previous tensor
      const uint64_t n = std::min<uint64_t>(t.offset - written, sizeof(kZeros));
      if (absl::Status s = write_now(kZeros, n); !s.ok()) return s;
      written += n;
    }
    if (!t.producer) {
      if (absl::Status s = write_now(t.data.data(), t.data.size()); !s.ok()) return s;
    } else {
      const int64_t rows_per_chunk =
          std::max<int64_t>(1, static_cast<int64_t>(std::min<uint64_t>(options.chunk_bytes / t.row_bytes, t.rows)));
      for (int64_t r = 0; r < t.rows; r += rows_per_chunk) {
        const int64_t end = std::min(t.rows, r + rows_per_chunk);
        const uint64_t n = static_cast<uint64_t>(end - r) * t.row_bytes;
        std::string& buffer = buffers[current];
        if (buffer.size() < n) buffer.resize(n);
        absl::Status produced = t.producer(r, end, reinterpret_cast<uint8_t*>(buffer.data()));
        if (absl::Status s = wait_pending(); !s.ok()) return s;
        if (!produced.ok()) {
          return absl::Status(produced.code(), absl::StrCat("tensor ", t.name, ": ", produced.message()));
        }
        const char* data = buffer.data();
        pending = std::async(std::launch::async, [&sink, data, n] { return sink(data, n); });
        current ^= 1;
      }
    }
    written += t.bytes;
  }
  while (written < data_bytes_) {
    const uint64_t n = std::min<uint64_t>(data_bytes_ - written, sizeof(kZeros));
    if (absl::Status s = write_now(kZeros, n); !s.ok()) return s;
    written += n;
  }
  return wait_pending();
}

absl::Status GgufWriter::WriteFile(const std::string& path, const WriteOptions& options) const {
  if (!status_.ok()) return status_;
  std::string tmp_path = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp_path.data());
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: cannot create a temp file beside it: %s", path, std::strerror(errno)));
  }
  ::fchmod(fd, 0644);
  TempFile file(fd, tmp_path);
  const Sink sink = [&file](const void* data, uint64_t bytes) -> absl::Status {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(file.fd(), p, std::min<uint64_t>(bytes, 1ull << 30));
      if (n < 0) {
        if (errno == EINTR) continue;
        return file.Error("write");
      }
      p += n;
      bytes -= static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  };
  if (absl::Status s = WriteAll(sink, options); !s.ok()) return s;
  if (options.sync && ::fsync(file.fd()) != 0) return file.Error("fsync");
  return file.CloseAndRename(path);
}

std::string GgufWriter::Serialize() const {
  std::string out;
  const Sink sink = [&out](const void* data, uint64_t bytes) {
    out.append(static_cast<const char*>(data), bytes);
    return absl::OkStatus();
  };
  if (!WriteAll(sink, WriteOptions{}).ok()) return std::string();
  return out;
}

}  // namespace leoam::gguf
