// GgufWriter: builds a GGUF v3 file (metadata, tensor table, aligned tensor data) and writes it.
// Used by leoam-synth and by tests.
//
// Tensors are either held in memory (AddTensor with `data`) or streamed: AddTensor with a
// RowProducer is called at write time for consecutive row ranges, so multi-GB models are written
// with a bounded buffer (see WriteOptions). Mistakes (a duplicate key or tensor name, bad dims, a
// data length that does not match the shape, an unsupported type) are remembered and returned by
// WriteFile()/status(), so the Add* calls need no error handling of their own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/gguf/gguf_types.h"

namespace leoam::gguf {

// Fills `out` with rows [row_begin, row_end) of a tensor: (row_end - row_begin) rows of
// RowBytes(type, dims[0]) bytes each. Rows are the product of dims[1..]. May be called from the
// writing thread only, with ranges in increasing order; it may parallelize internally.
using RowProducer = std::function<absl::Status(int64_t row_begin, int64_t row_end, uint8_t* out)>;

struct WriteOptions {
  // Bytes of tensor data produced per RowProducer call (at least one row). Default 64 MiB.
  uint64_t chunk_bytes = 64ull << 20;
  // fsync the file before renaming it into place. Default true.
  // (Streamed tensors are double-buffered: one chunk is written while the next is produced, so
  // peak memory is about 2 * chunk_bytes.)
  bool sync = true;
};

class GgufWriter {
 public:
  // `alignment` of the tensor data; when not the default 32 it is also written as general.alignment.
  explicit GgufWriter(uint64_t alignment = kDefaultAlignment);

  // Scalars.
  void AddUint8(std::string_view key, uint8_t v);
  void AddInt8(std::string_view key, int8_t v);
  void AddUint16(std::string_view key, uint16_t v);
  void AddInt16(std::string_view key, int16_t v);
  void AddUint32(std::string_view key, uint32_t v);
  void AddInt32(std::string_view key, int32_t v);
  void AddUint64(std::string_view key, uint64_t v);
  void AddInt64(std::string_view key, int64_t v);
  void AddFloat32(std::string_view key, float v);
  void AddFloat64(std::string_view key, double v);
  void AddBool(std::string_view key, bool v);
  void AddString(std::string_view key, std::string_view v);

  // Arrays.
  void AddStringArray(std::string_view key, const std::vector<std::string>& v);
  void AddFloat32Array(std::string_view key, const std::vector<float>& v);
  void AddInt32Array(std::string_view key, const std::vector<int32_t>& v);
  // Integer or bool array of any integer element type (kUint8..kInt64, kBool); values are
  // truncated to the element type.
  void AddIntArray(std::string_view key, ValueType element_type, const std::vector<int64_t>& v);
  // Float array of element type kFloat32 or kFloat64.
  void AddFloatArray(std::string_view key, ValueType element_type, const std::vector<double>& v);

  // `dims` in GGUF order (dims[0] fastest); `data` must be RowBytes(type, dims[0]) * rows long.
  void AddTensor(std::string_view name, std::vector<int64_t> dims, TensorType type, std::string data);
  // Streamed tensor: `producer` supplies the data at write time (see RowProducer).
  void AddTensor(std::string_view name, std::vector<int64_t> dims, TensorType type, RowProducer producer);

  // The first mistake made by an Add* call, or OK.
  const absl::Status& status() const { return status_; }

  // Total bytes the file will have.
  uint64_t FileSize() const;
  // Number of tensor elements over all tensors.
  uint64_t NumTensorElements() const { return num_elements_; }

  // Writes the file atomically (temp file in the same directory + rename).
  absl::Status WriteFile(const std::string& path, const WriteOptions& options = {}) const;
  // The file's bytes (for tests that corrupt them). Empty if status() is not OK or a producer fails.
  std::string Serialize() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    TensorType type;
    uint64_t offset = 0;  // within the data section
    uint64_t bytes = 0;
    uint64_t row_bytes = 0;
    int64_t rows = 0;
    std::string data;      // in-memory tensors
    RowProducer producer;  // streamed tensors
  };
  using Sink = std::function<absl::Status(const void* data, uint64_t bytes)>;

  bool BeginKey(std::string_view key, ValueType type);
  bool AddTensorInfo(std::string_view name, std::vector<int64_t>& dims, TensorType type, Tensor& t);
  void Fail(std::string message);
  std::string HeaderBytes() const;
  absl::Status WriteAll(const Sink& sink, const WriteOptions& options) const;

  uint64_t alignment_;
  uint64_t num_kv_ = 0;
  std::string kv_bytes_;  // serialized key/value pairs
  absl::flat_hash_set<std::string> keys_;
  absl::flat_hash_set<std::string> tensor_names_;
  std::vector<Tensor> tensors_;
  uint64_t data_bytes_ = 0;  // tensor data section size, padding included
  uint64_t num_elements_ = 0;
  absl::Status status_;
};

}  // namespace leoam::gguf
