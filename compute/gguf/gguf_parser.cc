#include "compute/gguf/gguf_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace leoam::gguf {
namespace {

// Smallest header: magic, version, tensor count, metadata count.
constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;
// Smallest encodings, used to reject counts that cannot fit in the rest of the file before
// anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, 1 dim, type, offset
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxAlignment = 1ull << 30;

// Fixed byte size of a scalar value type; 0 for strings, arrays and unknown types.
uint64_t ScalarBytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

std::string ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return absl::StrCat("type ", static_cast<uint32_t>(t));
}

// Bounds-checked little-endian reader over the mapping. Read* return false at end of data.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  bool ReadBytes(void* out, uint64_t n) {
    if (n > remaining()) return false;
    std::memcpy(out, base_ + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool Read(T& out) {
    return ReadBytes(&out, sizeof(T));
  }
  // A GGUF string: uint64 length then bytes. `too_long` is set when the length exceeds the file.
  bool ReadString(std::string& out, bool& too_long) {
    too_long = false;
    uint64_t len;
    if (!Read(len)) return false;
    if (len > remaining()) {
      too_long = true;
      return false;
    }
    out.assign(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return true;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// What a successful parse yields; moved into the GgufFile at the end.
struct Parsed {
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<std::string> keys;
  absl::flat_hash_map<std::string, MetadataValue> metadata;
  std::vector<TensorInfo> tensors;
  absl::flat_hash_map<std::string, size_t> tensor_index;
};

class Parser {
 public:
  Parser(const std::string& path, const uint8_t* base, uint64_t size, Parsed& out)
      : path_(path), base_(base), file_(out), cur_(base, size), size_(size) {}

  absl::Status Error(const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", problem));
  }

  absl::Status ParseHeader(uint64_t& tensor_count, uint64_t& kv_count, uint32_t& version) {
    if (size_ == 0) return Error("empty file, not a GGUF file");
    uint32_t magic = 0;
    if (size_ < 4) return Error(absl::StrFormat("not a GGUF file (only %d bytes)", size_));
    cur_.Read(magic);
    if (magic != kMagic) return Error(absl::StrFormat("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")", magic, kMagic));
    if (!cur_.Read(version)) return Error("truncated in header (version)");
    if (version != kSupportedVersion) {
      if ((version & 0xffffu) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3) {
        return Error(absl::StrFormat("big-endian GGUF (version %d byte-swapped) is not supported", version >> 24));
      }
      if (version == 1 || version == 2) {
        return Error(absl::StrFormat(
            "GGUF version %d is not supported (LeoAM reads version 3; re-convert the model with a current llama.cpp)",
            version));
      }
      return Error(absl::StrFormat("unknown GGUF version %d (LeoAM reads version 3)", version));
    }
    if (!cur_.Read(tensor_count)) return Error("truncated in header (tensor count)");
    if (!cur_.Read(kv_count)) return Error("truncated in header (metadata count)");
    const uint64_t rest = cur_.remaining();
    if (kv_count > rest / kMinKvBytes) {
      return Error(absl::StrFormat("metadata count %d is impossible in a file of %d bytes", kv_count, size_));
    }
    if (tensor_count > rest / kMinTensorInfoBytes) {
      return Error(absl::StrFormat("tensor count %d is impossible in a file of %d bytes", tensor_count, size_));
    }
    return absl::OkStatus();
  }

  absl::Status ParseMetadata(uint64_t kv_count) {
    file_.keys.reserve(kv_count);
    for (uint64_t k = 0; k < kv_count; ++k) {
      std::string key;
      bool too_long = false;
      if (!cur_.ReadString(key, too_long)) {
        return Error(too_long ? absl::StrFormat("metadata key %d: name length runs past the end of the file", k)
                              : absl::StrFormat("truncated in metadata key %d", k));
      }
      if (key.empty()) return Error(absl::StrFormat("metadata key %d has an empty name", k));
      const std::string where = absl::StrFormat("metadata key %d (%s)", k, key);
      uint32_t raw_type;
      if (!cur_.Read(raw_type)) return Error(absl::StrCat("truncated in ", where, " (value type)"));
      if (!IsKnownValueType(raw_type)) return Error(absl::StrFormat("%s: unknown value type %d", where, raw_type));
      MetadataValue value;
      value.type = static_cast<ValueType>(raw_type);
      if (absl::Status s = ParseValue(value, where); !s.ok()) return s;
      if (file_.metadata.contains(key)) return Error(absl::StrCat("duplicate metadata key '", key, "'"));
      file_.keys.push_back(key);
      file_.metadata.emplace(std::move(key), std::move(value));
    }
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfos(uint64_t tensor_count) {
    file_.tensors.reserve(tensor_count);
    for (uint64_t t = 0; t < tensor_count; ++t) {
      TensorInfo info;
      bool too_long = false;
      if (!cur_.ReadString(info.name, too_long)) {
        return Error(too_long ? absl::StrFormat("tensor %d: name length runs past the end of the file", t)
                              : absl::StrFormat("truncated in tensor table (tensor %d name)", t));
      }
      if (info.name.empty()) return Error(absl::StrFormat("tensor %d has an empty name", t));
      const std::string where = absl::StrCat("tensor ", info.name);
      const auto truncated = [&](const char* field) {
        return Error(absl::StrFormat("truncated in tensor table (tensor %d %s, %s)", t, info.name, field));
      };
      uint32_t n_dims;
      if (!cur_.Read(n_dims)) return truncated("dimension count");
      if (n_dims < 1 || n_dims > kMaxDims) {
        return Error(absl::StrFormat("%s has %d dimensions (1 to %d supported)", where, n_dims, kMaxDims));
      }
      uint64_t raw_dims[kMaxDims];
      for (uint32_t d = 0; d < n_dims; ++d) {
        if (!cur_.Read(raw_dims[d])) return truncated("dims");
      }
      int64_t elements = 1;
      bool overflow = false;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t dim = raw_dims[d];
        if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Error(absl::StrFormat("%s has dimension %d of size %d (must be positive)", where, d, dim));
        }
        info.dims.push_back(static_cast<int64_t>(dim));
        overflow = overflow || __builtin_mul_overflow(elements, static_cast<int64_t>(dim), &elements);
      }
      if (overflow) {
        return Error(absl::StrFormat("%s: element count of dims [%s] overflows int64", where,
                                     absl::StrJoin(info.dims, ", ")));
      }
      uint32_t raw_type;
      if (!cur_.Read(raw_type)) return truncated("type");
      info.type = static_cast<TensorType>(raw_type);
      if (!IsSupportedTensorType(info.type)) {
        return Error(absl::StrFormat("%s has type %s, which LeoAM does not support (supported: F32, F16, BF16, Q8_0)",
                                     where, TensorTypeName(info.type)));
      }
      if (info.dims[0] % BlockSize(info.type) != 0) {
        return Error(absl::StrFormat("%s: row length %d is not a multiple of the %s block size %d", where,
                                     info.dims[0], TensorTypeName(info.type), BlockSize(info.type)));
      }
      const uint64_t row_bytes = RowBytes(info.type, info.dims[0]);
      const uint64_t rows = static_cast<uint64_t>(elements / info.dims[0]);
      if (row_bytes == 0 || __builtin_mul_overflow(row_bytes, rows, &info.bytes)) {
        return Error(absl::StrFormat("%s: byte size of dims [%s] overflows", where, absl::StrJoin(info.dims, ", ")));
      }
      if (!cur_.Read(info.offset)) return truncated("offset");
      if (file_.tensor_index.contains(info.name)) {
        return Error(absl::StrCat("duplicate tensor name '", info.name, "'"));
      }
      file_.tensor_index.emplace(info.name, file_.tensors.size());
      file_.tensors.push_back(std::move(info));
    }
    return absl::OkStatus();
  }

  absl::Status ParseAlignment() {
    auto it = file_.metadata.find("general.alignment");
    if (it == file_.metadata.end()) return absl::OkStatus();
    const MetadataValue* v = &it->second;
    if (ScalarBytes(v->type) == 0 || v->type == ValueType::kFloat32 || v->type == ValueType::kFloat64 ||
        v->type == ValueType::kBool) {
      return Error(absl::StrCat("general.alignment has type ", ValueTypeName(v->type), ", expected an integer"));
    }
    const uint64_t a = v->u;
    if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment || (v->i < 0 && v->type != ValueType::kUint64)) {
      const std::string shown = v->type == ValueType::kUint64 ? absl::StrCat(v->u) : absl::StrCat(v->i);
      return Error(absl::StrCat("general.alignment ", shown, " is not a power of two between 1 and 2^30"));
    }
    file_.alignment = a;
    return absl::OkStatus();
  }

  absl::Status CheckTensorData() {
    const uint64_t a = file_.alignment;
    const uint64_t end_of_table = cur_.pos();
    const uint64_t data_offset = (end_of_table + a - 1) / a * a;
    file_.data_offset = data_offset;
    if (file_.tensors.empty()) return absl::OkStatus();
    if (data_offset > size_) {
      return Error(absl::StrFormat("truncated before the tensor data (data starts at %d, file has %d bytes)",
                                   data_offset, size_));
    }
    const uint64_t data_size = size_ - data_offset;
    std::vector<const TensorInfo*> by_offset;
    for (TensorInfo& t : file_.tensors) {
      if (t.offset % a != 0) {
        return Error(absl::StrFormat("tensor %s: data offset %d is not a multiple of the alignment %d", t.name,
                                     t.offset, a));
      }
      if (t.offset > data_size || t.bytes > data_size - t.offset) {
        return Error(absl::StrFormat(
            "tensor %s: data [%d, %d) of the data section lies outside the file (data section has %d bytes)",
            t.name, t.offset, t.offset + std::min(t.bytes, UINT64_MAX - t.offset), data_size));
      }
      t.data = base_ + data_offset + t.offset;
      by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* x, const TensorInfo* y) { return x->offset < y->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& prev = *by_offset[i - 1];
      if (prev.offset + prev.bytes > by_offset[i]->offset) {
        return Error(absl::StrFormat("tensors %s and %s overlap in the data section", prev.name, by_offset[i]->name));
      }
    }
    return absl::OkStatus();
  }

 private:
  // Reads one scalar of fixed-size type `t` into v (i/u/f).
  static void DecodeScalar(ValueType t, const uint8_t* p, MetadataValue& v) {
    auto load = [p](auto& x) { std::memcpy(&x, p, sizeof(x)); };
    switch (t) {
      case ValueType::kUint8: { uint8_t x; load(x); v.i = x; break; }
      case ValueType::kInt8: { int8_t x; load(x); v.i = x; break; }
      case ValueType::kUint16: { uint16_t x; load(x); v.i = x; break; }
      case ValueType::kInt16: { int16_t x; load(x); v.i = x; break; }
      case ValueType::kUint32: { uint32_t x; load(x); v.i = x; break; }
      case ValueType::kInt32: { int32_t x; load(x); v.i = x; break; }
      case ValueType::kUint64: {
        uint64_t x; load(x); v.i = static_cast<int64_t>(x); v.u = x;
        v.int_overflow = x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        return;
      }
      case ValueType::kInt64: { int64_t x; load(x); v.i = x; break; }
      case ValueType::kBool: { uint8_t x; load(x); v.i = x != 0 ? 1 : 0; break; }
      case ValueType::kFloat32: { float x; load(x); v.f = x; return; }
      case ValueType::kFloat64: { double x; load(x); v.f = x; return; }
      default: return;
    }
    v.u = static_cast<uint64_t>(v.i);
  }

  absl::Status ParseValue(MetadataValue& value, const std::string& where) {
    if (value.type == ValueType::kString) {
      bool too_long = false;
      if (!cur_.ReadString(value.s, too_long)) {
        return Error(too_long ? absl::StrCat(where, ": string length runs past the end of the file")
                              : absl::StrCat("truncated in ", where, " (string length)"));
      }
      return absl::OkStatus();
    }
    if (value.type != ValueType::kArray) {
      uint8_t buf[8];
      const uint64_t n = ScalarBytes(value.type);
      if (!cur_.ReadBytes(buf, n)) return Error(absl::StrCat("truncated in ", where, " (value)"));
      DecodeScalar(value.type, buf, value);
      return absl::OkStatus();
    }
    uint32_t raw_elem;
    if (!cur_.Read(raw_elem)) return Error(absl::StrCat("truncated in ", where, " (array element type)"));
    if (!IsKnownValueType(raw_elem)) {
      return Error(absl::StrFormat("%s: unknown array element type %d", where, raw_elem));
    }
    value.array_type = static_cast<ValueType>(raw_elem);
    if (value.array_type == ValueType::kArray) return Error(absl::StrCat(where, ": nested arrays are not supported"));
    uint64_t count;
    if (!cur_.Read(count)) return Error(absl::StrCat("truncated in ", where, " (array length)"));
    const uint64_t elem_bytes = value.array_type == ValueType::kString ? 8 : ScalarBytes(value.array_type);
    if (count > cur_.remaining() / elem_bytes) {
      return Error(absl::StrFormat("%s: array of %d %s elements runs past the end of the file", where, count,
                                   ValueTypeName(value.array_type)));
    }
    if (value.array_type == ValueType::kString) {
      value.strings.resize(count);
      for (uint64_t e = 0; e < count; ++e) {
        bool too_long = false;
        if (!cur_.ReadString(value.strings[e], too_long)) {
          return Error(too_long ? absl::StrFormat("%s: string %d of the array runs past the end of the file", where, e)
                                : absl::StrFormat("truncated in %s (array string %d)", where, e));
        }
      }
      return absl::OkStatus();
    }
    const bool is_float = value.array_type == ValueType::kFloat32 || value.array_type == ValueType::kFloat64;
    if (is_float) {
      value.floats.resize(count);
    } else {
      value.ints.resize(count);
    }
    uint8_t buf[8];
    MetadataValue scalar;
    for (uint64_t e = 0; e < count; ++e) {
      cur_.ReadBytes(buf, elem_bytes);  // in bounds: checked against remaining() above
      DecodeScalar(value.array_type, buf, scalar);
      if (is_float) {
        value.floats[e] = scalar.f;
      } else {
        value.ints[e] = scalar.i;
        value.int_overflow |= scalar.int_overflow;
      }
    }
    return absl::OkStatus();
  }

  const std::string& path_;
  const uint8_t* base_;
  Parsed& file_;
  Cursor cur_;
  uint64_t size_;
};

}  // namespace

absl::Status GgufParser::Parse(GgufFile& file) {
  Parsed parsed;
  Parser p(file.path_, file.base_, file.size_, parsed);
  uint64_t tensor_count = 0, kv_count = 0;
  if (absl::Status s = p.ParseHeader(tensor_count, kv_count, parsed.version); !s.ok()) return s;
  if (absl::Status s = p.ParseMetadata(kv_count); !s.ok()) return s;
  if (absl::Status s = p.ParseTensorInfos(tensor_count); !s.ok()) return s;
  if (absl::Status s = p.ParseAlignment(); !s.ok()) return s;
  if (absl::Status s = p.CheckTensorData(); !s.ok()) return s;
  file.version_ = parsed.version;
  file.alignment_ = parsed.alignment;
  file.data_offset_ = parsed.data_offset;
  file.keys_ = std::move(parsed.keys);
  file.metadata_ = std::move(parsed.metadata);
  file.tensors_ = std::move(parsed.tensors);
  file.tensor_index_ = std::move(parsed.tensor_index);
  return absl::OkStatus();
}

}  // namespace leoam::gguf
