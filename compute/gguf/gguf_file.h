// GgufFile: a read-only, memory-mapped GGUF v3 file: its metadata and its tensor table.
//
// Open() validates the whole structure up front (magic, version, counts, string lengths, tensor
// dims, types, offsets, alignment, that every tensor lies inside the file) so that a malformed or
// truncated file gets one clear error and never a crash later. Tensor data stays in the mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/gguf/gguf_types.h"

namespace leoam::gguf {

// One metadata value. Arrays hold a homogeneous list; nested arrays are rejected at Open().
struct MetadataValue {
  ValueType type = ValueType::kUint8;
  ValueType array_type = ValueType::kUint8;  // element type when type == kArray
  // Scalars: integers in `i`, floats in `f`, bools in `i` (0/1), strings in `s`. A uint64 value
  // above INT64_MAX is kept in `u` (and `i` holds its bits); GetInt rejects it, GetUint64 reads it.
  // Arrays: `ints`, `floats` or `strings` by element type; `int_overflow` is set when a uint64
  // array holds values above INT64_MAX (GetIntArray then fails).
  int64_t i = 0;
  uint64_t u = 0;
  bool int_overflow = false;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

struct TensorInfo {
  std::string name;
  // GGUF/ggml order: dims[0] is the fastest-varying (row length). A weight matrix for
  // y = W x with x of size `in` and y of size `out` has dims {in, out}.
  std::vector<int64_t> dims;
  TensorType type = TensorType::kF32;
  uint64_t offset = 0;         // from the start of the tensor data section
  const uint8_t* data = nullptr;  // into the mapping
  uint64_t bytes = 0;

  int64_t NumElements() const;
};

class GgufFile {
 public:
  // Maps and validates `path`. Errors name the file and the problem, e.g.
  // "model.gguf: not a GGUF file (magic 0x464c457f)" or "...: truncated in tensor table".
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  // Open() errors: NOT_FOUND when the file does not exist, PERMISSION_DENIED when it cannot be
  // read, INVALID_ARGUMENT for everything about its content; messages start with the path.

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Offset of the tensor data section from the start of the file.
  uint64_t data_offset() const { return data_offset_; }

  // The whole mapped file (for content fingerprints).
  const uint8_t* file_data() const { return base_; }
  uint64_t file_size() const { return size_; }

  // Metadata. Getters fail with NOT_FOUND when the key is absent and INVALID_ARGUMENT when the
  // value has another type; integer getters accept any integer type, float getters any float
  // or integer type.
  bool HasKey(std::string_view key) const;
  const MetadataValue* Find(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  // Any non-negative integer value, including uint64 values above INT64_MAX.
  absl::StatusOr<uint64_t> GetUint64(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;
  // Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }

  // Tensors in file order; FindTensor returns nullptr when absent.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;

  std::string path_;
  int fd_ = -1;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  absl::flat_hash_map<std::string, MetadataValue> metadata_;
  std::vector<TensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;

  friend class GgufParser;
};

}  // namespace leoam::gguf
