// Synthetic models: every tiny preset in every dtype makes a valid GGUF with the llama.cpp tensor
// table and keys, deterministic bytes per seed, a consistent tokenizer, and accurate Q8_0/F16/BF16.
#include "compute/synth/synthetic_model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kernels/half.h"
#include "compute/gguf/gguf_file.h"
#include "compute/gguf/quant.h"
#include "compute/synth/synthetic_spec.h"
#include "compute/synth/synthetic_vocab.h"
#include "compute/synth/weight_init.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace leoam::synth {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;
using gguf::TensorType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<GgufFile> WriteAndOpen(const SyntheticModelSpec& spec, const std::string& path,
                                       SynthWriteOptions options = {}) {
  auto result = WriteSyntheticModel(spec, path, options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return nullptr;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  EXPECT_EQ((*file)->file_size(), result->file_bytes);
  EXPECT_EQ(result->parameters, ParameterCount(spec));
  return std::move(*file);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<float> ToFloats(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.NumElements()));
  const int64_t cols = t.dims[0];
  const uint64_t row_bytes = gguf::RowBytes(t.type, cols);
  for (int64_t r = 0; r < t.NumElements() / cols; ++r) {
    EXPECT_TRUE(gguf::DequantizeRow(t.type, t.data + r * row_bytes, cols, out.data() + r * cols).ok());
  }
  return out;
}

// The expected tensor table: name -> (dims, type).
std::map<std::string, std::pair<std::vector<int64_t>, TensorType>> ExpectedTensors(const SyntheticModelSpec& s) {
  const TensorType w = s.weight_type, f32 = TensorType::kF32;
  const int64_t q = int64_t{s.heads} * s.head_dim, kv = int64_t{s.kv_heads} * s.head_dim;
  std::map<std::string, std::pair<std::vector<int64_t>, TensorType>> t;
  t["token_embd.weight"] = {{s.dim, s.vocab}, w};
  t["output_norm.weight"] = {{s.dim}, f32};
  if (!s.tied_output) t["output.weight"] = {{s.dim, s.vocab}, w};
  if (s.llama3_rope_scaling) t["rope_freqs.weight"] = {{s.head_dim / 2}, f32};
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    t[p + "attn_norm.weight"] = {{s.dim}, f32};
    t[p + "attn_q.weight"] = {{s.dim, q}, w};
    t[p + "attn_k.weight"] = {{s.dim, kv}, w};
    t[p + "attn_v.weight"] = {{s.dim, kv}, w};
    t[p + "attn_output.weight"] = {{q, s.dim}, w};
    t[p + "ffn_norm.weight"] = {{s.dim}, f32};
    t[p + "ffn_gate.weight"] = {{s.dim, s.ffn}, w};
    t[p + "ffn_up.weight"] = {{s.dim, s.ffn}, w};
    t[p + "ffn_down.weight"] = {{s.ffn, s.dim}, w};
    if (s.arch == "qwen2") {
      t[p + "attn_q.bias"] = {{q}, f32};
      t[p + "attn_k.bias"] = {{kv}, f32};
      t[p + "attn_v.bias"] = {{kv}, f32};
    }
    if (s.arch == "qwen3") {
      t[p + "attn_q_norm.weight"] = {{s.head_dim}, f32};
      t[p + "attn_k_norm.weight"] = {{s.head_dim}, f32};
    }
  }
  return t;
}

class TinyPresetTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(TinyPresetTest, WritesAValidModelWithTheLlamaCppLayout) {
  const auto& [preset, dtype] = GetParam();
  auto spec = PresetSpec(preset);
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->weight_type = *ParseWeightType(dtype);
  spec->seed = 11;
  testing::TempDir dir;
  auto f = WriteAndOpen(*spec, dir.File("m.gguf"));
  ASSERT_NE(f, nullptr);
  const std::string& a = spec->arch;

  // Metadata.
  EXPECT_EQ(*f->GetString("general.architecture"), a);
  EXPECT_EQ(*f->GetString("general.name"), "synthetic " + preset);
  EXPECT_EQ(*f->GetUint64("leoam.synthetic.seed"), 11u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(*f->GetInt(a + ".embedding_length"), spec->dim);
  EXPECT_EQ(*f->GetInt(a + ".block_count"), spec->layers);
  EXPECT_EQ(*f->GetInt(a + ".feed_forward_length"), spec->ffn);
  EXPECT_EQ(*f->GetInt(a + ".attention.head_count"), spec->heads);
  EXPECT_EQ(*f->GetInt(a + ".attention.head_count_kv"), spec->kv_heads);
  EXPECT_EQ(*f->GetInt(a + ".attention.key_length"), spec->head_dim);
  EXPECT_EQ(*f->GetInt(a + ".attention.value_length"), spec->head_dim);
  EXPECT_EQ(*f->GetInt(a + ".rope.dimension_count"), spec->head_dim);
  EXPECT_EQ(*f->GetInt(a + ".context_length"), spec->context);
  EXPECT_EQ(*f->GetInt(a + ".vocab_size"), spec->vocab);
  EXPECT_FLOAT_EQ(static_cast<float>(*f->GetFloat(a + ".rope.freq_base")), spec->rope_base);
  EXPECT_FLOAT_EQ(static_cast<float>(*f->GetFloat(a + ".attention.layer_norm_rms_epsilon")),
                  a == "llama" ? 1e-5f : 1e-6f);
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.tokens")->size(), static_cast<size_t>(spec->vocab));

  // Tensor table: exactly the expected names, shapes and types.
  const auto expected = ExpectedTensors(*spec);
  EXPECT_EQ(f->tensors().size(), expected.size());
  for (const auto& [name, shape_type] : expected) {
    const TensorInfo* t = f->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dims, shape_type.first) << name;
    EXPECT_EQ(t->type, shape_type.second) << name;
  }
  // Values are finite and not degenerate.
  for (const TensorInfo& t : f->tensors()) {
    const std::vector<float> v = ToFloats(t);
    double sum_sq = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x)) << t.name;
      sum_sq += double{x} * x;
    }
    EXPECT_GT(sum_sq, 0.0) << t.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTinyPresetsAndDtypes, TinyPresetTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3"),
                                            ::testing::Values("f32", "f16", "bf16", "q8_0")),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& c : name) c = (c == '-' ? '_' : c);
                           return name;
                         });

TEST(SyntheticModelTest, SameSeedSameBytesRegardlessOfThreadsAndChunks) {
  SyntheticModelSpec spec = *PresetSpec("tiny-qwen2");
  spec.weight_type = TensorType::kQ8_0;
  spec.seed = 1234;
  testing::TempDir dir;
  SynthWriteOptions one_thread, two_threads_small_chunks;
  one_thread.num_threads = 1;
  two_threads_small_chunks.num_threads = 2;
  two_threads_small_chunks.chunk_bytes = 1000;  // a few rows per step
  ASSERT_TRUE(WriteSyntheticModel(spec, dir.File("a.gguf"), one_thread).ok());
  ASSERT_TRUE(WriteSyntheticModel(spec, dir.File("b.gguf"), two_threads_small_chunks).ok());
  const std::string a = ReadFile(dir.File("a.gguf"));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == ReadFile(dir.File("b.gguf")));
}

TEST(SyntheticModelTest, AnotherSeedGivesOtherWeights) {
  SyntheticModelSpec spec = *PresetSpec("tiny-llama");
  testing::TempDir dir;
  spec.seed = 1;
  auto a = WriteAndOpen(spec, dir.File("a.gguf"));
  spec.seed = 2;
  auto b = WriteAndOpen(spec, dir.File("b.gguf"));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const TensorInfo& ta = a->tensors()[i];
    const TensorInfo& tb = b->tensors()[i];
    ASSERT_EQ(ta.bytes, tb.bytes);
    EXPECT_NE(std::memcmp(ta.data, tb.data, ta.bytes), 0) << ta.name;
  }
}

TEST(SyntheticModelTest, HalfAndQuantizedWeightsMatchTheF32Weights) {
  SyntheticModelSpec spec = *PresetSpec("tiny-llama");
  spec.seed = 5;
  testing::TempDir dir;
  auto f32 = WriteAndOpen(spec, dir.File("f32.gguf"));
  spec.weight_type = TensorType::kF16;
  auto f16 = WriteAndOpen(spec, dir.File("f16.gguf"));
  spec.weight_type = TensorType::kBF16;
  auto bf16 = WriteAndOpen(spec, dir.File("bf16.gguf"));
  spec.weight_type = TensorType::kQ8_0;
  auto q8 = WriteAndOpen(spec, dir.File("q8.gguf"));
  ASSERT_TRUE(f32 && f16 && bf16 && q8);
  for (const char* name : {"token_embd.weight", "blk.1.attn_q.weight", "blk.2.ffn_down.weight", "output.weight"}) {
    const std::vector<float> ref = ToFloats(*f32->FindTensor(name));
    const TensorInfo& h = *f16->FindTensor(name);
    const TensorInfo& b = *bf16->FindTensor(name);
    const auto* hbits = reinterpret_cast<const uint16_t*>(h.data);
    const auto* bbits = reinterpret_cast<const uint16_t*>(b.data);
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(hbits[i], kernels::FloatToHalf(ref[i])) << name << " " << i;
      ASSERT_EQ(bbits[i], kernels::FloatToBf16(ref[i])) << name << " " << i;
    }
    // Q8_0: each element within half a quantization step of its block's scale; small RMS error.
    const TensorInfo& q = *q8->FindTensor(name);
    const std::vector<float> deq = ToFloats(q);
    const auto* blocks = reinterpret_cast<const gguf::BlockQ8_0*>(q.data);
    double err_sq = 0, ref_sq = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const float d = kernels::HalfToFloat(blocks[i / 32].d);
      ASSERT_LE(std::fabs(deq[i] - ref[i]), 0.5f * d + 1e-3f * std::fabs(ref[i])) << name << " " << i;
      err_sq += (deq[i] - ref[i]) * double{deq[i] - ref[i]};
      ref_sq += double{ref[i]} * ref[i];
    }
    EXPECT_LT(std::sqrt(err_sq / ref_sq), 0.01) << name;
  }
}

TEST(SyntheticModelTest, InitializationScales) {
  SyntheticModelSpec spec = *PresetSpec("tiny-qwen2");
  testing::TempDir dir;
  auto f = WriteAndOpen(spec, dir.File("m.gguf"));
  ASSERT_NE(f, nullptr);
  auto stats = [&](const char* name) {
    const std::vector<float> v = ToFloats(*f->FindTensor(name));
    double sum = 0, sum_sq = 0;
    for (float x : v) sum += x;
    const double mean = sum / v.size();
    for (float x : v) sum_sq += (x - mean) * (x - mean);
    return std::make_pair(mean, std::sqrt(sum_sq / v.size()));
  };
  const auto [embd_mean, embd_std] = stats("token_embd.weight");
  EXPECT_NEAR(embd_mean, 0.0, 0.02);
  EXPECT_NEAR(embd_std, 1.0, 0.02);
  const auto [q_mean, q_std] = stats("blk.0.attn_q.weight");
  EXPECT_NEAR(q_std, 1.0 / std::sqrt(128.0), 0.005);
  const auto [down_mean, down_std] = stats("blk.2.ffn_down.weight");
  EXPECT_NEAR(down_std, 1.0 / 16.0, 0.003);
  const auto [norm_mean, norm_std] = stats("blk.1.attn_norm.weight");
  EXPECT_NEAR(norm_mean, 1.0, 0.03);
  EXPECT_NEAR(norm_std, 0.1, 0.03);
  const auto [bias_mean, bias_std] = stats("blk.1.attn_k.bias");
  EXPECT_NEAR(bias_std, 0.1, 0.04);
}

TEST(SyntheticModelTest, Llama3RopeFactorsMatchTheConverter) {
  // Values from llama.cpp's convert_hf_to_gguf computation (PyTorch float32) for Llama 3.1 8B
  // (head_dim 128, rope_theta 500000): 29 ones, 6 interpolated, 29 eights.
  const std::vector<float> f = Llama3RopeFactors(128, 500000.0f);
  ASSERT_EQ(f.size(), 64u);
  for (int i = 0; i < 29; ++i) EXPECT_EQ(f[i], 1.0f) << i;
  const float ramp[] = {1.2074838876724243f, 1.5534145832061768f, 2.026313066482544f,
                        2.6945300102233887f, 3.684253215789795f,  5.257327079772949f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(f[29 + i], ramp[i], 1e-5f * ramp[i]) << i;
  for (int i = 35; i < 64; ++i) EXPECT_EQ(f[i], 8.0f) << i;

  SyntheticModelSpec spec = *PresetSpec("tiny-llama");
  spec.llama3_rope_scaling = true;
  spec.rope_base = 500000.0f;
  testing::TempDir dir;
  auto file = WriteAndOpen(spec, dir.File("m.gguf"));
  ASSERT_NE(file, nullptr);
  const TensorInfo* t = file->FindTensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->dims, ElementsAre(16));
  EXPECT_EQ(ToFloats(*t), Llama3RopeFactors(32, 500000.0f));
}

TEST(SyntheticModelTest, TiedOutputHasNoOutputTensor) {
  SyntheticModelSpec spec = *PresetSpec("tiny-qwen3");
  spec.tied_output = true;
  testing::TempDir dir;
  auto f = WriteAndOpen(spec, dir.File("m.gguf"));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->FindTensor("output.weight"), nullptr);
  EXPECT_NE(f->FindTensor("token_embd.weight"), nullptr);
}

TEST(SyntheticVocabTest, SpmVocabIsConsistent) {
  SyntheticModelSpec spec = *PresetSpec("tiny-llama");
  testing::TempDir dir;
  auto f = WriteAndOpen(spec, dir.File("m.gguf"));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->GetString("tokenizer.ggml.model"), "llama");
  const auto tokens = *f->GetStringArray("tokenizer.ggml.tokens");
  const auto scores = *f->GetFloatArray("tokenizer.ggml.scores");
  const auto types = *f->GetIntArray("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 512u);
  ASSERT_EQ(scores.size(), 512u);
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(*f->GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*f->GetInt("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(*f->GetInt("tokenizer.ggml.unknown_token_id"), 0);
  EXPECT_TRUE(*f->GetBool("tokenizer.ggml.add_bos_token"));
  EXPECT_THAT(std::vector<std::string>(tokens.begin(), tokens.begin() + 3), ElementsAre("<unk>", "<s>", "</s>"));
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  for (int b = 0; b < 256; ++b) {
    char expect[8];
    std::snprintf(expect, sizeof(expect), "<0x%02X>", b);
    EXPECT_EQ(tokens[3 + b], expect);
    EXPECT_EQ(types[3 + b], 6);
  }
  absl::flat_hash_map<std::string, size_t> ids;
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_TRUE(ids.emplace(tokens[i], i).second) << "duplicate " << tokens[i];
  EXPECT_TRUE(ids.contains("\xe2\x96\x81the"));
  EXPECT_TRUE(ids.contains("\xe2\x96\x81"));
  // Every multi-character normal piece splits into two tokens that exist (so SPM merges reach it).
  int merged = 0;
  for (size_t i = 259; i < tokens.size(); ++i) {
    ASSERT_EQ(types[i], 1) << tokens[i];
    const std::string& t = tokens[i];
    if (t == "\xe2\x96\x81" || t.size() == 1) continue;
    bool splits = false;
    for (size_t cut = 1; cut < t.size() && !splits; ++cut) {
      splits = ids.contains(t.substr(0, cut)) && ids.contains(t.substr(cut));
    }
    EXPECT_TRUE(splits) << t;
    ++merged;
  }
  EXPECT_GT(merged, 100);
}

TEST(SyntheticVocabTest, Gpt2VocabAndMergesAreConsistent) {
  for (const char* preset : {"tiny-qwen2", "tiny-qwen3"}) {
    SyntheticModelSpec spec = *PresetSpec(preset);
    testing::TempDir dir;
    auto f = WriteAndOpen(spec, dir.File("m.gguf"));
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(*f->GetString("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(*f->GetString("tokenizer.ggml.pre"), "qwen2");
    EXPECT_FALSE(*f->GetBool("tokenizer.ggml.add_bos_token"));
    EXPECT_THAT(*f->GetString("tokenizer.chat_template"), HasSubstr("<|im_start|>"));
    const auto tokens = *f->GetStringArray("tokenizer.ggml.tokens");
    const auto types = *f->GetIntArray("tokenizer.ggml.token_type");
    const auto merges = *f->GetStringArray("tokenizer.ggml.merges");
    ASSERT_EQ(tokens.size(), 600u);
    ASSERT_EQ(types.size(), 600u);
    EXPECT_EQ(merges.size(), 600u - 256 - 3);
    EXPECT_EQ(tokens[0], "!");
    EXPECT_EQ(tokens[599], "<|im_end|>");
    EXPECT_EQ(tokens[598], "<|im_start|>");
    EXPECT_EQ(tokens[597], "<|endoftext|>");
    for (int i = 597; i < 600; ++i) EXPECT_EQ(types[i], 3);
    EXPECT_EQ(*f->GetInt("tokenizer.ggml.eos_token_id"), 599);
    absl::flat_hash_map<std::string, size_t> ids;
    for (size_t i = 0; i < tokens.size(); ++i) ASSERT_TRUE(ids.emplace(tokens[i], i).second) << tokens[i];
    // The 256 byte tokens: GPT-2 byte-to-unicode form.
    for (int b = 0; b < 256; ++b) EXPECT_TRUE(ids.contains(ByteToUnicode(static_cast<uint8_t>(b)))) << b;
    EXPECT_TRUE(ids.contains("\xc4\xa0"));  // "Ġ" = space
    EXPECT_EQ(ByteToUnicode(' '), "\xc4\xa0");
    EXPECT_EQ(ByteToUnicode('\n'), "\xc4\x8a");  // "Ċ"
    EXPECT_TRUE(ids.contains("\xc4\xa0the"));
    // Merge k is "left right": both exist before the merged token, which is token 256 + k.
    for (size_t k = 0; k < merges.size(); ++k) {
      const size_t space = merges[k].find(' ');
      ASSERT_NE(space, std::string::npos) << merges[k];
      const std::string left = merges[k].substr(0, space), right = merges[k].substr(space + 1);
      ASSERT_TRUE(ids.contains(left)) << merges[k];
      ASSERT_TRUE(ids.contains(right)) << merges[k];
      EXPECT_EQ(tokens[256 + k], left + right);
      EXPECT_LT(ids[left], 256 + k);
      EXPECT_LT(ids[right], 256 + k);
    }
  }
}

TEST(SyntheticVocabTest, RealSizedVocabsAreExactUniqueAndConsistent) {
  // The vocab sizes of the llama3.1-8b and qwen2.5-7b presets.
  const SyntheticVocab spm = MakeSpmVocab(128256);
  ASSERT_EQ(spm.tokens.size(), 128256u);
  ASSERT_EQ(spm.scores.size(), 128256u);
  absl::flat_hash_map<std::string, size_t> ids;
  for (size_t i = 0; i < spm.tokens.size(); ++i) ASSERT_TRUE(ids.emplace(spm.tokens[i], i).second) << spm.tokens[i];
  for (int32_t type : spm.token_types) ASSERT_NE(type, 5) << "padding tokens were needed";

  const SyntheticVocab bpe = MakeGpt2Vocab(152064);
  ASSERT_EQ(bpe.tokens.size(), 152064u);
  ASSERT_EQ(bpe.merges.size(), 152064u - 259);
  ids.clear();
  for (size_t i = 0; i < bpe.tokens.size(); ++i) ASSERT_TRUE(ids.emplace(bpe.tokens[i], i).second) << bpe.tokens[i];
  for (size_t k = 0; k < bpe.merges.size(); ++k) {
    const size_t space = bpe.merges[k].find(' ');
    const std::string left = bpe.merges[k].substr(0, space), right = bpe.merges[k].substr(space + 1);
    ASSERT_LT(ids.at(left), 256 + k);
    ASSERT_LT(ids.at(right), 256 + k);
    ASSERT_EQ(bpe.tokens[256 + k], left + right);
  }
}

TEST(SyntheticSpecTest, PresetsAndValidation) {
  EXPECT_EQ(PresetSpec("no-such-model").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(PresetSpec("no-such-model").status().message()), HasSubstr("tiny-llama"));
  for (const std::string& name : PresetNames()) {
    auto spec = PresetSpec(name);
    ASSERT_TRUE(spec.ok()) << name;
    EXPECT_TRUE(ValidateSpec(*spec).ok()) << name << ": " << ValidateSpec(*spec);
  }
  // Published parameter counts of the real models these shapes copy (rope_freqs excluded).
  EXPECT_EQ(ParameterCount(*PresetSpec("llama3.1-8b")) - 64, 8030261248u);
  EXPECT_EQ(ParameterCount(*PresetSpec("qwen2.5-7b")), 7615616512u);
  EXPECT_EQ(ParameterCount(*PresetSpec("qwen3-8b")), 8190735360u);

  SyntheticModelSpec s = *PresetSpec("tiny-llama");
  s.weight_type = TensorType::kQ8_0;
  s.dim = 120;
  s.head_dim = 30;
  EXPECT_THAT(std::string(ValidateSpec(s).message()), HasSubstr("q8_0 needs row lengths that are multiples of 32"));
  s = *PresetSpec("tiny-llama");
  s.kv_heads = 3;
  EXPECT_THAT(std::string(ValidateSpec(s).message()), HasSubstr("not a multiple of kv_heads"));
  s = *PresetSpec("tiny-llama");
  s.arch = "gpt-j";
  EXPECT_THAT(std::string(ValidateSpec(s).message()), HasSubstr("unknown arch"));
  s = *PresetSpec("tiny-llama");
  s.vocab = 300;
  EXPECT_THAT(std::string(ValidateSpec(s).message()), HasSubstr("too small"));
  testing::TempDir dir;
  EXPECT_EQ(WriteSyntheticModel(s, dir.File("x.gguf")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWeightType("Q8_0").value(), TensorType::kQ8_0);
  EXPECT_FALSE(ParseWeightType("q4_k").ok());
}

}  // namespace
}  // namespace leoam::synth
