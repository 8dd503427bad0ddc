// GgufFile + GgufWriter: round trips of every metadata value type and tensor type, streamed
// tensors, getter errors, and reading the real stories260K model.
#include "compute/gguf/gguf_file.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "compute/gguf/gguf_writer.h"
#include "compute/gguf/quant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam::gguf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<GgufFile> WriteAndOpen(const GgufWriter& w, const std::string& path) {
  absl::Status s = w.WriteFile(path);
  EXPECT_TRUE(s.ok()) << s;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

TEST(GgufFileTest, RoundTripsEveryScalarValueType) {
  testing::TempDir dir;
  GgufWriter w;
  w.AddUint8("u8", 200);
  w.AddInt8("i8", -100);
  w.AddUint16("u16", 60000);
  w.AddInt16("i16", -30000);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -2000000000);
  w.AddUint64("u64", 1ull << 40);
  w.AddUint64("u64.big", (1ull << 63) + 5);
  w.AddInt64("i64", -(1ll << 50));
  w.AddFloat32("f32", 1.5f);
  w.AddFloat64("f64", -2.25e100);
  w.AddBool("yes", true);
  w.AddBool("no", false);
  w.AddString("str", "h\xc3\xa9llo");
  w.AddString("empty", "");
  auto f = WriteAndOpen(w, dir.File("scalars.gguf"));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_THAT(f->keys(), ElementsAre("u8", "i8", "u16", "i16", "u32", "i32", "u64", "u64.big", "i64", "f32", "f64",
                                     "yes", "no", "str", "empty"));
  EXPECT_EQ(f->Find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(*f->GetInt("u8"), 200);
  EXPECT_EQ(f->Find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(*f->GetInt("i8"), -100);
  EXPECT_EQ(*f->GetInt("u16"), 60000);
  EXPECT_EQ(f->Find("i16")->type, ValueType::kInt16);
  EXPECT_EQ(*f->GetInt("i16"), -30000);
  EXPECT_EQ(*f->GetInt("u32"), 4000000000ll);
  EXPECT_EQ(*f->GetInt("i32"), -2000000000);
  EXPECT_EQ(*f->GetInt("u64"), 1ll << 40);
  EXPECT_EQ(*f->GetUint64("u64"), 1ull << 40);
  EXPECT_EQ(*f->GetUint64("u64.big"), (1ull << 63) + 5);
  EXPECT_EQ(f->GetInt("u64.big").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*f->GetInt("i64"), -(1ll << 50));
  EXPECT_EQ(f->GetUint64("i64").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->Find("f32")->type, ValueType::kFloat32);
  EXPECT_EQ(*f->GetFloat("f32"), 1.5);
  EXPECT_EQ(f->Find("f64")->type, ValueType::kFloat64);
  EXPECT_EQ(*f->GetFloat("f64"), -2.25e100);
  EXPECT_EQ(*f->GetFloat("u16"), 60000.0);  // float getters accept integers
  EXPECT_TRUE(*f->GetBool("yes"));
  EXPECT_FALSE(*f->GetBool("no"));
  EXPECT_EQ(*f->GetString("str"), "h\xc3\xa9llo");
  EXPECT_EQ(*f->GetString("empty"), "");
}

TEST(GgufFileTest, RoundTripsEveryArrayElementType) {
  testing::TempDir dir;
  GgufWriter w;
  const std::vector<ValueType> int_types = {ValueType::kUint8, ValueType::kInt8,  ValueType::kUint16,
                                            ValueType::kInt16, ValueType::kUint32, ValueType::kInt32,
                                            ValueType::kUint64, ValueType::kInt64, ValueType::kBool};
  const std::vector<int64_t> values = {0, 1, 100};
  for (ValueType t : int_types) w.AddIntArray("ints." + std::to_string(static_cast<int>(t)), t, values);
  w.AddIntArray("neg.i16", ValueType::kInt16, {-5, 7, -32768});
  w.AddFloatArray("f64s", ValueType::kFloat64, {0.1, -1e300});
  w.AddFloat32Array("f32s", {0.5f, -3.0f, 1e-3f});
  w.AddInt32Array("i32s", {-1, 2, -3});
  w.AddStringArray("strs", {"a", "", "\xe2\x96\x81the"});
  w.AddStringArray("no.strs", {});
  auto f = WriteAndOpen(w, dir.File("arrays.gguf"));
  ASSERT_NE(f, nullptr);
  for (ValueType t : int_types) {
    const std::string key = "ints." + std::to_string(static_cast<int>(t));
    ASSERT_NE(f->Find(key), nullptr) << key;
    EXPECT_EQ(f->Find(key)->type, ValueType::kArray);
    EXPECT_EQ(f->Find(key)->array_type, t);
    EXPECT_THAT(*f->GetIntArray(key), ElementsAre(0, 1, t == ValueType::kBool ? 1 : 100)) << key;
  }
  EXPECT_THAT(*f->GetIntArray("neg.i16"), ElementsAre(-5, 7, -32768));
  EXPECT_THAT(*f->GetFloatArray("f64s"), ElementsAre(0.1, -1e300));
  EXPECT_THAT(*f->GetFloatArray("f32s"), ElementsAre(0.5, -3.0, static_cast<double>(1e-3f)));
  EXPECT_THAT(*f->GetIntArray("i32s"), ElementsAre(-1, 2, -3));
  EXPECT_THAT(*f->GetFloatArray("i32s"), ElementsAre(-1.0, 2.0, -3.0));
  EXPECT_THAT(*f->GetStringArray("strs"), ElementsAre("a", "", "\xe2\x96\x81the"));
  EXPECT_TRUE(f->GetStringArray("no.strs")->empty());
}

TEST(GgufFileTest, GettersReportMissingKeysAndWrongTypes) {
  testing::TempDir dir;
  GgufWriter w;
  w.AddString("name", "x");
  w.AddInt32Array("ids", {1});
  const std::string path = dir.File("getters.gguf");
  auto f = WriteAndOpen(w, path);
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->HasKey("missing"));
  EXPECT_EQ(f->Find("missing"), nullptr);
  absl::Status missing = f->GetInt("missing").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("missing"));
  EXPECT_THAT(std::string(missing.message()), HasSubstr(path));
  absl::Status wrong = f->GetInt("name").status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("'name' is not an integer"));
  EXPECT_EQ(f->GetBool("name").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetFloat("name").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetString("ids").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetStringArray("ids").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetIntArray("name").status().code(), absl::StatusCode::kInvalidArgument);
}

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

TEST(GgufFileTest, RoundTripsTensorsOfEverySupportedType) {
  testing::TempDir dir;
  std::vector<float> f32(3 * 5);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = 0.25f * static_cast<float>(i) - 1.0f;
  std::vector<uint16_t> f16(7 * 2), bf16(7 * 2);
  for (size_t i = 0; i < f16.size(); ++i) {
    f16[i] = kernels::FloatToHalf(static_cast<float>(i) / 3.0f);
    bf16[i] = kernels::FloatToBf16(-static_cast<float>(i) * 7.0f);
  }
  std::vector<float> q_src(64 * 3);
  for (size_t i = 0; i < q_src.size(); ++i) q_src[i] = std::sin(static_cast<float>(i));
  std::string q8(RowBytes(TensorType::kQ8_0, 64) * 3, '\0');
  ASSERT_TRUE(QuantizeRow(TensorType::kQ8_0, q_src.data(), 64 * 3, q8.data()).ok());

  GgufWriter w(64);
  w.AddString("general.architecture", "test");
  w.AddTensor("a.f32", {5, 3}, TensorType::kF32, Bytes(f32.data(), f32.size() * 4));
  w.AddTensor("b.f16", {7, 2}, TensorType::kF16, Bytes(f16.data(), f16.size() * 2));
  w.AddTensor("c.bf16", {7, 1, 2, 1}, TensorType::kBF16, Bytes(bf16.data(), bf16.size() * 2));
  w.AddTensor("d.q8", {64, 3}, TensorType::kQ8_0, q8);
  ASSERT_TRUE(w.status().ok()) << w.status();
  const std::string path = dir.File("tensors.gguf");
  auto f = WriteAndOpen(w, path);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(*f->GetInt("general.alignment"), 64);
  EXPECT_EQ(f->file_size(), w.FileSize());
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->data_offset() % 64, 0u);

  const TensorInfo* a = f->FindTensor("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(a->dims, ElementsAre(5, 3));
  EXPECT_EQ(a->type, TensorType::kF32);
  EXPECT_EQ(a->NumElements(), 15);
  EXPECT_EQ(a->bytes, 60u);
  EXPECT_EQ(Bytes(a->data, a->bytes), Bytes(f32.data(), 60));

  const TensorInfo* b = f->FindTensor("b.f16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, TensorType::kF16);
  EXPECT_EQ(b->offset % 64, 0u);
  EXPECT_EQ(Bytes(b->data, b->bytes), Bytes(f16.data(), 28));

  const TensorInfo* c = f->FindTensor("c.bf16");
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(c->dims, ElementsAre(7, 1, 2, 1));
  EXPECT_EQ(c->type, TensorType::kBF16);
  std::vector<float> row(7);
  ASSERT_TRUE(DequantizeRow(TensorType::kBF16, c->data + 14, 7, row.data()).ok());
  EXPECT_EQ(row[0], -49.0f);  // element 7 = -7 * 7, exact in bf16

  const TensorInfo* d = f->FindTensor("d.q8");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->type, TensorType::kQ8_0);
  EXPECT_EQ(d->bytes, 3u * 2 * 34);
  EXPECT_EQ(Bytes(d->data, d->bytes), q8);
  EXPECT_EQ(f->FindTensor("nope"), nullptr);
  // Tensor data pointers point into the mapping.
  EXPECT_EQ(a->data, f->file_data() + f->data_offset() + a->offset);
}

TEST(GgufFileTest, StreamedTensorsMatchInMemoryTensors) {
  testing::TempDir dir;
  const int64_t cols = 96, rows = 37;
  std::string data(static_cast<size_t>(cols * rows * 2), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  GgufWriter in_memory, streamed;
  in_memory.AddTensor("t", {cols, rows}, TensorType::kF16, data);
  std::vector<std::pair<int64_t, int64_t>> calls;
  streamed.AddTensor("t", {cols, rows}, TensorType::kF16,
                     [&](int64_t begin, int64_t end, uint8_t* out) {
                       calls.emplace_back(begin, end);
                       std::memcpy(out, data.data() + begin * cols * 2, static_cast<size_t>((end - begin) * cols * 2));
                       return absl::OkStatus();
                     });
  WriteOptions small_chunks;
  small_chunks.chunk_bytes = cols * 2 * 10;  // 10 rows per call
  ASSERT_TRUE(in_memory.WriteFile(dir.File("a.gguf")).ok());
  ASSERT_TRUE(streamed.WriteFile(dir.File("b.gguf"), small_chunks).ok());
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls.front(), std::make_pair(int64_t{0}, int64_t{10}));
  EXPECT_EQ(calls.back(), std::make_pair(int64_t{30}, int64_t{37}));
  auto a = GgufFile::Open(dir.File("a.gguf"));
  auto b = GgufFile::Open(dir.File("b.gguf"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->file_size(), (*b)->file_size());
  EXPECT_EQ(0, std::memcmp((*a)->file_data(), (*b)->file_data(), (*a)->file_size()));
}

TEST(GgufFileTest, ProducerErrorFailsTheWriteAndLeavesNoFile) {
  testing::TempDir dir;
  GgufWriter w;
  w.AddTensor("t", {4}, TensorType::kF32,
              [](int64_t, int64_t, uint8_t*) { return absl::InternalError("disk of random numbers is full"); });
  const std::string path = dir.File("x.gguf");
  absl::Status s = w.WriteFile(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor t"));
  EXPECT_EQ(GgufFile::Open(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(GgufFileTest, WriterRejectsMistakes) {
  {
    GgufWriter w;
    w.AddUint32("k", 1);
    w.AddString("k", "again");
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("duplicate metadata key 'k'"));
    EXPECT_EQ(w.Serialize(), "");
  }
  {
    GgufWriter w;
    w.AddTensor("t", {4}, TensorType::kF32, std::string(16, '\0'));
    w.AddTensor("t", {4}, TensorType::kF32, std::string(16, '\0'));
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("duplicate tensor name 't'"));
  }
  {
    GgufWriter w;
    w.AddTensor("t", {4, 2}, TensorType::kF32, std::string(16, '\0'));
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("16 data bytes, the shape needs 32"));
  }
  {
    GgufWriter w;
    w.AddTensor("q", {48}, TensorType::kQ8_0, std::string(34, '\0'));
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    GgufWriter w;
    w.AddTensor("k", {32}, TensorType::kQ4_K, std::string(18, '\0'));
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("Q4_K"));
  }
  {
    GgufWriter w(48);
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("alignment 48"));
  }
  testing::TempDir dir;
  GgufWriter w;
  w.AddTensor("t", {0}, TensorType::kF32, std::string());
  EXPECT_EQ(w.WriteFile(dir.File("bad.gguf")).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufFileTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  const std::string path = dir.File("does-not-exist.gguf");
  absl::Status s = GgufFile::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
}

TEST(GgufFileTest, ReadsStories260K) {
  LEOAM_REQUIRE_SHARED(path, "models/stories260K.gguf");
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.file_size(), 1185376u);
  EXPECT_EQ(*g.GetString("general.architecture"), "llama");
  EXPECT_EQ(*g.GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(*g.GetInt("llama.block_count"), 5);
  EXPECT_EQ(*g.GetInt("llama.feed_forward_length"), 172);
  EXPECT_EQ(*g.GetInt("llama.attention.head_count"), 8);
  EXPECT_EQ(*g.GetInt("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), "llama");
  auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ(g.GetFloatArray("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(g.GetIntArray("tokenizer.ggml.token_type")->size(), 512u);
  ASSERT_EQ(g.tensors().size(), 48u);
  for (const TensorInfo& t : g.tensors()) {
    EXPECT_EQ(t.type, TensorType::kF32) << t.name;
    EXPECT_EQ(t.bytes, static_cast<uint64_t>(t.NumElements()) * 4) << t.name;
    EXPECT_LE(t.data + t.bytes, g.file_data() + g.file_size()) << t.name;
  }
  const TensorInfo* embd = g.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_THAT(embd->dims, ElementsAre(64, 512));
  const TensorInfo* wq = g.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(wq, nullptr);
  EXPECT_THAT(wq->dims, ElementsAre(64, 64));
  const TensorInfo* wk = g.FindTensor("blk.4.attn_k.weight");
  ASSERT_NE(wk, nullptr);
  EXPECT_THAT(wk->dims, ElementsAre(64, 32));  // 4 KV heads x head_dim 8
  // Weights are trained values: finite and not all zero.
  const float* w = reinterpret_cast<const float*>(embd->data);
  double sum_sq = 0;
  for (int64_t i = 0; i < embd->NumElements(); ++i) {
    ASSERT_TRUE(std::isfinite(w[i]));
    sum_sq += double{w[i]} * w[i];
  }
  EXPECT_GT(sum_sq, 1.0);
}

}  // namespace
}  // namespace leoam::gguf
