// Loading a model that contradicts itself fails with one clear error naming the problem.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compute/gguf/gguf_writer.h"
#include "compute/model/llama_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

using ::testing::HasSubstr;

struct TinySpec {
  std::string arch = "llama";
  int dim = 32, layers = 1, heads = 4, kv_heads = 2, ffn = 64, vocab = 40;
  std::string skip_tensor;            // omit this tensor
  std::string wrong_shape_tensor;     // give this tensor a wrong second dimension
  gguf::TensorType matrix_type = gguf::TensorType::kF32;
};

std::string F32Bytes(int64_t n) { return std::string(n * sizeof(float), '\0'); }

absl::Status WriteTiny(const TinySpec& s, const std::string& path) {
  gguf::GgufWriter w;
  w.AddString("general.architecture", s.arch);
  const std::string a = s.arch + ".";
  w.AddUint32(a + "embedding_length", s.dim);
  w.AddUint32(a + "block_count", s.layers);
  w.AddUint32(a + "attention.head_count", s.heads);
  w.AddUint32(a + "attention.head_count_kv", s.kv_heads);
  w.AddUint32(a + "feed_forward_length", s.ffn);
  w.AddFloat32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  const int hd = s.dim / s.heads;
  auto add = [&](const std::string& name, std::vector<int64_t> dims, gguf::TensorType type) {
    if (name == s.skip_tensor) return;
    if (name == s.wrong_shape_tensor) dims.back() += 1;
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::string bytes = type == gguf::TensorType::kF32 ? F32Bytes(n) : std::string(n / 32 * 34, '\0');
    w.AddTensor(name, dims, type, bytes);
  };
  add("token_embd.weight", {s.dim, s.vocab}, gguf::TensorType::kF32);
  add("output_norm.weight", {s.dim}, gguf::TensorType::kF32);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    add(p + "attn_norm.weight", {s.dim}, gguf::TensorType::kF32);
    add(p + "attn_q.weight", {s.dim, s.heads * hd}, s.matrix_type);
    add(p + "attn_k.weight", {s.dim, s.kv_heads * hd}, s.matrix_type);
    add(p + "attn_v.weight", {s.dim, s.kv_heads * hd}, s.matrix_type);
    add(p + "attn_output.weight", {s.heads * hd, s.dim}, s.matrix_type);
    add(p + "ffn_norm.weight", {s.dim}, gguf::TensorType::kF32);
    add(p + "ffn_gate.weight", {s.dim, s.ffn}, s.matrix_type);
    add(p + "ffn_up.weight", {s.dim, s.ffn}, s.matrix_type);
    add(p + "ffn_down.weight", {s.ffn, s.dim}, s.matrix_type);
  }
  return w.WriteFile(path);
}

class ModelLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }
  absl::Status Load(const TinySpec& spec) {
    const std::string path = dir_.File("m.gguf");
    if (absl::Status s = WriteTiny(spec, path); !s.ok()) return s;
    return LlamaModel::Load(path, *backend_).status();
  }
  testing::TempDir dir_;
  std::unique_ptr<kernels::CpuBackend> backend_;
};

TEST_F(ModelLoadTest, ValidTinyModelLoadsAndRuns) {
  TinySpec spec;
  const std::string path = dir_.File("ok.gguf");
  ASSERT_TRUE(WriteTiny(spec, path).ok());
  auto model = LlamaModel::Load(path, *backend_);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->config().tied_output);
  auto cache = KvCache::Create(*backend_, (*model)->config(), 8);
  ASSERT_TRUE(cache.ok());
  std::vector<float> logits(spec.vocab);
  const int32_t tokens[] = {1, 2, 3};
  EXPECT_TRUE((*model)->Forward(tokens, 0, *cache, false, logits.data()).ok());
}

TEST_F(ModelLoadTest, MissingTensorIsNamed) {
  absl::Status s = Load({.skip_tensor = "blk.0.ffn_up.weight"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing tensor blk.0.ffn_up.weight"));
}

TEST_F(ModelLoadTest, ShapeContradictingMetadataIsNamed) {
  absl::Status s = Load({.wrong_shape_tensor = "blk.0.attn_k.weight"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("blk.0.attn_k.weight has shape [32, 17]"));
  EXPECT_THAT(s.message(), HasSubstr("[32, 16]"));
}

TEST_F(ModelLoadTest, UnknownArchitectureIsNamed) {
  absl::Status s = Load({.arch = "mamba"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("architecture 'mamba' is not supported"));
}

TEST_F(ModelLoadTest, HeadCountNotMultipleOfKvHeadsIsRejected) {
  absl::Status s = Load({.heads = 4, .kv_heads = 3});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a multiple of head_count_kv"));
}

TEST_F(ModelLoadTest, OutOfVocabularyTokenIsRejectedWithoutRunning) {
  const std::string path = dir_.File("ok.gguf");
  ASSERT_TRUE(WriteTiny({}, path).ok());
  auto model = LlamaModel::Load(path, *backend_);
  ASSERT_TRUE(model.ok());
  auto cache = KvCache::Create(*backend_, (*model)->config(), 4);
  std::vector<float> logits(40);
  const int32_t bad[] = {1, 40};
  absl::Status s = (*model)->Forward(bad, 0, *cache, false, logits.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("token id 40"));
  const int32_t too_many[] = {1, 2, 3, 4, 5};
  EXPECT_EQ((*model)->Forward(too_many, 0, *cache, false, logits.data()).code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace leoam
