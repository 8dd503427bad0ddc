#include "compute/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compute/gguf/gguf_parser.h"

namespace leoam::gguf {

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // cannot overflow: checked at Open()
  return n;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  file->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd_ < 0) {
    const int err = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  struct stat st;
  if (::fstat(file->fd_, &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot stat: ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, file->fd_, 0);
    if (p == MAP_FAILED) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot map: ", std::strerror(errno)));
    }
    file->base_ = static_cast<const uint8_t*>(p);
  }
  if (absl::Status s = GgufParser::Parse(*file); !s.ok()) return s;
  return file;
}

GgufFile::~GgufFile() {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
  if (fd_ >= 0) ::close(fd_);
}

namespace {
// Debian's Abseil has its own string_view type; flat_hash_map lookups need it.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

bool GgufFile::HasKey(std::string_view key) const { return metadata_.contains(AbslView(key)); }

const MetadataValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_.find(AbslView(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {

bool IsIntType(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}
bool IsFloatType(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

}  // namespace

// Shared lookup: NOT_FOUND when absent.
#define LEOAM_GGUF_FIND_OR_RETURN(v, key)                                                          \
  const MetadataValue* v = Find(key);                                                              \
  if (v == nullptr) {                                                                              \
    return absl::NotFoundError(absl::StrFormat("%s: metadata key '%s' not found", path_, key));   \
  }

namespace {
absl::Status WrongType(const std::string& path, std::string_view key, std::string_view wanted) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: metadata key '%s' is not %s", path, key, wanted));
}
}  // namespace

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (!IsIntType(v->type)) return WrongType(path_, key, "an integer");
  if (v->int_overflow) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: metadata key '%s' value %d does not fit in int64", path_, key, v->u));
  }
  return v->i;
}

absl::StatusOr<uint64_t> GgufFile::GetUint64(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (!IsIntType(v->type)) return WrongType(path_, key, "an integer");
  if (!v->int_overflow && v->i < 0) return WrongType(path_, key, "a non-negative integer");
  return v->u;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (IsFloatType(v->type)) return v->f;
  if (IsIntType(v->type)) return v->int_overflow ? static_cast<double>(v->u) : static_cast<double>(v->i);
  return WrongType(path_, key, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (v->type != ValueType::kBool) return WrongType(path_, key, "a bool");
  return v->i != 0;
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (v->type != ValueType::kString) return WrongType(path_, key, "a string");
  return v->s;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (v->type != ValueType::kArray || v->array_type != ValueType::kString) {
    return WrongType(path_, key, "an array of strings");
  }
  return v->strings;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (v->type != ValueType::kArray || !(IsIntType(v->array_type) || v->array_type == ValueType::kBool)) {
    return WrongType(path_, key, "an array of integers");
  }
  if (v->int_overflow) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: metadata key '%s' holds uint64 values that do not fit in int64", path_, key));
  }
  return v->ints;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  LEOAM_GGUF_FIND_OR_RETURN(v, key);
  if (v->type != ValueType::kArray) return WrongType(path_, key, "an array of numbers");
  if (IsFloatType(v->array_type)) return v->floats;
  if (IsIntType(v->array_type) && !v->int_overflow) return std::vector<double>(v->ints.begin(), v->ints.end());
  return WrongType(path_, key, "an array of numbers");
}

#undef LEOAM_GGUF_FIND_OR_RETURN

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(AbslView(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace leoam::gguf
