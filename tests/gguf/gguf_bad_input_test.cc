// Malformed GGUF files: each must get INVALID_ARGUMENT (NOT_FOUND for a missing file) with a
// message that names the file and the problem, and never a crash or an out-of-bounds read.
// Run it once under -fsanitize=address to check the "never reads out of bounds" part.
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "compute/gguf/gguf_file.h"
#include "compute/gguf/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace leoam::gguf {
namespace {

using ::testing::HasSubstr;

// Raw little-endian GGUF bytes, for headers the writer would refuse to produce.
class Raw {
 public:
  Raw& U8(uint8_t v) { return Put(v); }
  Raw& U32(uint32_t v) { return Put(v); }
  Raw& U64(uint64_t v) { return Put(v); }
  Raw& Str(const std::string& s) {
    U64(s.size());
    bytes_ += s;
    return *this;
  }
  Raw& Header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) { return U32(kMagic).U32(version).U64(tensors).U64(kvs); }
  Raw& KvU32(const std::string& key, uint32_t v) { return Str(key).U32(static_cast<uint32_t>(ValueType::kUint32)).U32(v); }
  Raw& KvStr(const std::string& key, const std::string& v) {
    return Str(key).U32(static_cast<uint32_t>(ValueType::kString)).Str(v);
  }
  Raw& TensorInfo(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  Raw& PadTo(uint64_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  Raw& Zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  template <typename T>
  Raw& Put(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  std::string bytes_;
};

class BadInputTest : public ::testing::Test {
 protected:
  std::string WriteBytes(const std::string& bytes, const std::string& name = "bad.gguf") {
    const std::string path = dir_.File(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // Opens `bytes` as a file and expects INVALID_ARGUMENT naming the path and `problem`.
  void ExpectInvalid(const std::string& bytes, const std::string& problem) {
    const std::string path = WriteBytes(bytes);
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << "accepted a file that should fail with: " << problem;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(problem));
  }
  void ExpectValid(const std::string& bytes) {
    auto f = GgufFile::Open(WriteBytes(bytes));
    EXPECT_TRUE(f.ok()) << f.status();
  }

  // A small valid file with metadata of several kinds and two tensors, the last ending on the
  // alignment (so the file has no trailing padding and every shorter prefix is incomplete).
  static std::string SmallValidFile() {
    GgufWriter w;
    w.AddString("general.architecture", "llama");
    w.AddUint32("llama.block_count", 2);
    w.AddFloat32("llama.rope.freq_base", 10000.0f);
    w.AddBool("tokenizer.ggml.add_bos_token", true);
    w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "a"});
    w.AddFloat32Array("tokenizer.ggml.scores", {0, 0, -1});
    w.AddUint64("leoam.synthetic.seed", 7);
    w.AddTensor("a", {3}, TensorType::kF32, std::string(12, '\x01'));
    w.AddTensor("b", {32, 2}, TensorType::kQ8_0, std::string(68, '\x02'));  // ends at 32 + 68 = 100: padded
    w.AddTensor("c", {4, 7}, TensorType::kF32, std::string(112, '\x03'));     // 128 + 112 = 240: padded to 256
    w.AddTensor("d", {16}, TensorType::kF16, std::string(32, '\x04'));        // 256 + 32 = 288: ends aligned
    return w.Serialize();
  }

  testing::TempDir dir_;
};

TEST_F(BadInputTest, SmallValidFileIsValid) {
  const std::string bytes = SmallValidFile();
  ASSERT_FALSE(bytes.empty());
  ExpectValid(bytes);
}

TEST_F(BadInputTest, NotGguf) {
  ExpectInvalid("\x7f" "ELF\x02\x01\x01\x00 definitely not a model file", "not a GGUF file (magic 0x464c457f");
  ExpectInvalid("GGU", "not a GGUF file (only 3 bytes)");
}

TEST_F(BadInputTest, EmptyFile) { ExpectInvalid("", "empty file"); }

TEST_F(BadInputTest, MissingFileIsNotFound) {
  const std::string path = dir_.File("missing.gguf");
  absl::Status s = GgufFile::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
}

TEST_F(BadInputTest, DirectoryIsNotAFile) {
  absl::Status s = GgufFile::Open(dir_.path()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a regular file"));
}

TEST_F(BadInputTest, EveryTruncationIsAnError) {
  const std::string full = SmallValidFile();
  ASSERT_EQ(full.size() % 32, 0u);
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string path = WriteBytes(full.substr(0, n), "prefix.gguf");
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " of " << full.size() << " bytes was accepted";
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(f.status().message()), ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("runs past the end"),
                                                      HasSubstr("impossible in a file"), HasSubstr("outside the file"),
                                                      HasSubstr("not a GGUF file"), HasSubstr("empty file")))
        << "prefix " << n << ": " << f.status();
  }
}

TEST_F(BadInputTest, TruncationMessagesNameThePlace) {
  ExpectInvalid(SmallValidFile().substr(0, 6), "truncated in header (version)");
  // One key: cut 3 bytes into its 4-byte value.
  const std::string one_key = Raw().Header(0, 1).KvU32("llama.block_count", 2).bytes();
  ExpectInvalid(one_key.substr(0, one_key.size() - 1), "truncated in metadata key 0 (llama.block_count) (value)");
  // One tensor: cut inside its offset field.
  const std::string one_tensor = Raw().Header(1, 0).TensorInfo("w", {4}, 0, 0).bytes();
  ExpectInvalid(one_tensor.substr(0, one_tensor.size() - 1), "truncated in tensor table (tensor 0 w, offset)");
  // Whole tensor table, but the data section cut short.
  const std::string full = SmallValidFile();
  auto f = GgufFile::Open(WriteBytes(full));
  ASSERT_TRUE(f.ok());
  ExpectInvalid(full.substr(0, (*f)->data_offset() + 10),
                "tensor a: data [0, 12) of the data section lies outside the file (data section has 10 bytes)");
  ExpectInvalid(full.substr(0, (*f)->data_offset() + 200), "tensor c: data [128, 240)");
  // Counts that the rest of the file cannot hold are rejected before anything is read.
  ExpectInvalid(full.substr(0, 101), "metadata count 7 is impossible in a file of 101 bytes");
}

TEST_F(BadInputTest, CorruptingAnyHeaderByteNeverCrashes) {
  const std::string full = SmallValidFile();
  auto good = GgufFile::Open(WriteBytes(full, "good.gguf"));
  ASSERT_TRUE(good.ok());
  const size_t header_end = (*good)->data_offset();
  int rejected = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0x7f}, uint8_t{0xff}}) {
      std::string bytes = full;
      if (static_cast<uint8_t>(bytes[i]) == v) continue;
      bytes[i] = static_cast<char>(v);
      auto f = GgufFile::Open(WriteBytes(bytes, "corrupt.gguf"));
      if (!f.ok()) {
        ++rejected;
        EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
      } else {
        // Accepted (e.g. a changed string character): every tensor must still lie in the file.
        for (const TensorInfo& t : (*f)->tensors()) {
          EXPECT_LE(t.data + t.bytes, (*f)->file_data() + (*f)->file_size());
        }
      }
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST_F(BadInputTest, UnsupportedVersions) {
  ExpectInvalid(Raw().Header(0, 0, 2).bytes(), "GGUF version 2 is not supported");
  ExpectInvalid(Raw().Header(0, 0, 1).bytes(), "GGUF version 1 is not supported");
  ExpectInvalid(Raw().Header(0, 0, 4).bytes(), "unknown GGUF version 4");
  ExpectInvalid(Raw().Header(0, 0, 0x03000000).bytes(), "big-endian");
  ExpectValid(Raw().Header(0, 0, 3).bytes());
}

TEST_F(BadInputTest, UnsupportedTensorType) {
  const std::string bytes =
      Raw().Header(1, 0).TensorInfo("blk.0.attn_q.weight", {256, 4}, 12, 0).PadTo(32).Zeros(4096).bytes();
  ExpectInvalid(bytes, "tensor blk.0.attn_q.weight has type Q4_K, which LeoAM does not support "
                       "(supported: F32, F16, BF16, Q8_0)");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("x", {4}, 99, 0).PadTo(32).Zeros(64).bytes(),
                "tensor x has type type 99");
}

TEST_F(BadInputTest, TensorDataOutOfBounds) {
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {8, 8}, 0, 0).PadTo(32).Zeros(255).bytes(),
                "tensor w: data [0, 256) of the data section lies outside the file");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {4}, 0, 1ull << 40).PadTo(32).Zeros(64).bytes(),
                "lies outside the file");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {4}, 0, ~0ull - 31).PadTo(32).Zeros(64).bytes(),
                "lies outside the file");
  ExpectValid(Raw().Header(1, 0).TensorInfo("w", {8, 8}, 0, 0).PadTo(32).Zeros(256).bytes());
}

TEST_F(BadInputTest, MisalignedOffsetsAndBadAlignment) {
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {4}, 0, 8).PadTo(32).Zeros(64).bytes(),
                "tensor w: data offset 8 is not a multiple of the alignment 32");
  ExpectInvalid(Raw().Header(0, 1).KvU32("general.alignment", 3).bytes(),
                "general.alignment 3 is not a power of two");
  ExpectInvalid(Raw().Header(0, 1).KvU32("general.alignment", 0).bytes(), "general.alignment 0 is not a power of two");
  ExpectInvalid(Raw().Header(0, 1).KvStr("general.alignment", "32").bytes(),
                "general.alignment has type string, expected an integer");
  // A valid non-default alignment is honoured: offset 16 is fine with alignment 16.
  Raw ok;
  ok.Header(2, 1).KvU32("general.alignment", 16).TensorInfo("a", {2}, 0, 0).TensorInfo("b", {2}, 0, 16).PadTo(16).Zeros(32);
  const std::string path = WriteBytes(ok.bytes());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->alignment(), 16u);
}

TEST_F(BadInputTest, AbsurdCountsAndLengths) {
  ExpectInvalid(Raw().Header(1ull << 60, 0).bytes(), "tensor count 1152921504606846976 is impossible");
  ExpectInvalid(Raw().Header(0, 1ull << 60).bytes(), "metadata count 1152921504606846976 is impossible");
  // A string array claiming 2^60 strings.
  ExpectInvalid(Raw().Header(0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(1ull << 60).Str("a").bytes(),
                "array of 1152921504606846976 string elements runs past the end of the file");
  // A string claiming 2^60 bytes, as a key, a value and an array element.
  ExpectInvalid(Raw().Header(0, 1).U64(1ull << 60).Zeros(16).bytes(), "metadata key 0: name length runs past");
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(8).U64(1ull << 60).Zeros(16).bytes(),
                "metadata key 0 (k): string length runs past the end of the file");
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(9).U32(8).U64(2).Str("x").U64(~0ull).Zeros(16).bytes(),
                "string 1 of the array runs past the end of the file");
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(9).U32(11).U64(~0ull / 8).Zeros(64).bytes(),
                "array of 2305843009213693951 int64 elements runs past the end of the file");
  ExpectInvalid(Raw().Header(1, 0).U64(~0ull).Zeros(64).bytes(), "tensor 0: name length runs past");
}

TEST_F(BadInputTest, BadDims) {
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {1ull << 31, 1ull << 31}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w: byte size of dims [2147483648, 2147483648] overflows");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {1ull << 32, 1ull << 32}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w: element count of dims [4294967296, 4294967296] overflows int64");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {32, 1ull << 30, 1ull << 30, 1ull << 30}, 8, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w: element count of dims [32, 1073741824, 1073741824, 1073741824] overflows int64");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {4, 0}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w has dimension 1 of size 0 (must be positive)");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {1ull << 63}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "must be positive");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {1, 1, 1, 1, 1}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w has 5 dimensions (1 to 4 supported)");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("w", {}, 0, 0).PadTo(32).Zeros(64).bytes(),
                "tensor w has 0 dimensions");
  ExpectInvalid(Raw().Header(1, 0).TensorInfo("q", {48, 2}, 8, 0).PadTo(32).Zeros(256).bytes(),
                "tensor q: row length 48 is not a multiple of the Q8_0 block size 32");
}

TEST_F(BadInputTest, NestedArraysAndUnknownValueTypes) {
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(9).U32(9).U64(1).Zeros(32).bytes(),
                "metadata key 0 (k): nested arrays are not supported");
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(13).Zeros(32).bytes(), "metadata key 0 (k): unknown value type 13");
  ExpectInvalid(Raw().Header(0, 1).Str("k").U32(9).U32(77).U64(1).Zeros(32).bytes(),
                "unknown array element type 77");
}

TEST_F(BadInputTest, DuplicatesAndOverlaps) {
  ExpectInvalid(Raw().Header(0, 2).KvU32("a", 1).KvU32("a", 2).bytes(), "duplicate metadata key 'a'");
  ExpectInvalid(Raw().Header(2, 0).TensorInfo("w", {4}, 0, 0).TensorInfo("w", {4}, 0, 32).PadTo(32).Zeros(64).bytes(),
                "duplicate tensor name 'w'");
  ExpectInvalid(Raw().Header(2, 0).TensorInfo("a", {16}, 0, 0).TensorInfo("b", {4}, 0, 32).PadTo(32).Zeros(128).bytes(),
                "tensors a and b overlap");
  ExpectInvalid(Raw().Header(0, 1).KvU32("", 1).bytes(), "metadata key 0 has an empty name");
}

}  // namespace
}  // namespace leoam::gguf
