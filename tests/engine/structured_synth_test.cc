// Synthetic models with attention structure (SyntheticModelSpec::qk_scale / retrieval_logit):
// presets without it keep their exact bytes; a layer with planted retrieval heads concentrates its
// attention mass on few pages where a plain layer of the same model spreads it; the token traits
// are seeded; bad structure specs are refused.
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compute/engine/paged_kv.h"
#include "compute/model/llama_model.h"
#include "compute/synth/synthetic_model.h"
#include "compute/synth/synthetic_spec.h"
#include "compute/synth/weight_init.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

uint64_t Fnv1a64(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Regression: the attention-structure fields must not change models that do not use them. The
// value is the FNV-1a of tiny-llama (seed 0) written before the fields existed.
TEST(StructuredSynthTest, PresetsWithoutStructureKeepTheirBytes) {
  testing::TempDir dir;
  auto spec = synth::PresetSpec("tiny-llama");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->HasAttentionStructure());
  ASSERT_TRUE(synth::WriteSyntheticModel(*spec, dir.File("plain.gguf")).ok());
  EXPECT_EQ(Fnv1a64(dir.File("plain.gguf")), 0x8ab7f995033b009dull);
  // Explicit neutral values are no structure either.
  spec->qk_scale = {1.0f};
  spec->retrieval_logit = {0.0f, 0.0f, 0.0f};
  EXPECT_FALSE(spec->HasAttentionStructure());
  ASSERT_TRUE(synth::WriteSyntheticModel(*spec, dir.File("neutral.gguf")).ok());
  EXPECT_EQ(Fnv1a64(dir.File("neutral.gguf")), 0x8ab7f995033b009dull);
  // And a structured one differs.
  spec->retrieval_logit = {0.0f, 0.0f, 12.0f};
  EXPECT_TRUE(spec->HasAttentionStructure());
  ASSERT_TRUE(synth::WriteSyntheticModel(*spec, dir.File("structured.gguf")).ok());
  EXPECT_NE(Fnv1a64(dir.File("structured.gguf")), 0x8ab7f995033b009dull);
}

TEST(StructuredSynthTest, RefusesBadStructureSpecs) {
  synth::SyntheticModelSpec s;  // 3 layers
  s.qk_scale = {1.0f, 2.0f};    // neither one value nor one per layer
  EXPECT_FALSE(synth::ValidateSpec(s).ok());
  s.qk_scale = {0.0f};
  EXPECT_FALSE(synth::ValidateSpec(s).ok());
  s.qk_scale = {};
  s.retrieval_logit = {-1.0f};
  EXPECT_FALSE(synth::ValidateSpec(s).ok());
  s.retrieval_logit = {4.0f};
  s.topics = s.head_dim + 1;
  EXPECT_FALSE(synth::ValidateSpec(s).ok());
  s.topics = 4;
  s.retrieval_heads = s.kv_heads + 1;
  EXPECT_FALSE(synth::ValidateSpec(s).ok());
  s.retrieval_heads = 0;
  EXPECT_TRUE(synth::ValidateSpec(s).ok());
  EXPECT_FALSE(synth::ParseLayerList("1,x").ok());
  EXPECT_EQ(*synth::ParseLayerList("1, 2.5,0"), (std::vector<float>{1.0f, 2.5f, 0.0f}));
}

TEST(StructuredSynthTest, TokenTraitsAreSeededAndHitTheSalientFraction) {
  int salient = 0;
  std::vector<int> topics(4, 0);
  for (int t = 0; t < 20000; ++t) {
    const synth::TokenTraits a = synth::DrawTokenTraits(7, t, 4, 0.1f);
    const synth::TokenTraits b = synth::DrawTokenTraits(7, t, 4, 0.1f);
    ASSERT_EQ(a.salient, b.salient);
    ASSERT_EQ(a.topic, b.topic);
    ASSERT_EQ(a.want, b.want);
    salient += a.salient;
    ++topics[a.want];
  }
  EXPECT_NEAR(salient / 20000.0, 0.1, 0.01);
  for (int n : topics) EXPECT_NEAR(n / 20000.0, 0.25, 0.02);
}

// Layer 0 plain, layer 1 with retrieval heads: over random prompts, the share of layer 1's
// attention mass in its top 10% of pages is far above layer 0's (which stays near flat).
TEST(StructuredSynthTest, RetrievalLayerConcentratesAttention) {
  testing::TempDir dir;
  synth::SyntheticModelSpec spec = *synth::PresetSpec("tiny-llama");
  spec.layers = 2;
  spec.retrieval_logit = {0.0f, 16.0f};
  spec.salient_fraction = 0.05f;
  ASSERT_TRUE(synth::WriteSyntheticModel(spec, dir.File("m.gguf")).ok());
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto model = LlamaModel::Load(dir.File("m.gguf"), **backend, {});
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config();

  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> id(3, c.vocab_size - 1);
  std::vector<int32_t> prompt(480);
  for (int32_t& t : prompt) t = id(rng);
  PagedKvOptions o{.mode = SelectionMode::kDense, .collect_stats = true};
  auto seq = PagedKvSequence::Create(**backend, c, 512, o);
  ASSERT_TRUE(seq.ok()) << seq.status();
  std::vector<float> logits(c.vocab_size);
  ASSERT_TRUE((*model)->Forward(prompt, 0, **seq, false, logits.data()).ok());
  (*seq)->BeginDecode();
  for (int i = 0; i < 24; ++i) {
    const int32_t one[1] = {id(rng)};
    ASSERT_TRUE((*model)->Forward(one, static_cast<int32_t>(prompt.size()) + i, **seq, false, logits.data()).ok());
  }
  const PagedKvStats& st = (*seq)->stats();
  ASSERT_EQ(st.layer_mass_top_tenth.size(), 2u);
  const double plain = st.layer_mass_top_tenth[0] / 24, structured = st.layer_mass_top_tenth[1] / 24;
  EXPECT_LT(plain, 0.3);
  EXPECT_GT(structured, plain + 0.3);
  EXPECT_NEAR(st.mass_captured / st.selections, 1.0, 1e-3);  // dense attends everything
}

}  // namespace
}  // namespace leoam
