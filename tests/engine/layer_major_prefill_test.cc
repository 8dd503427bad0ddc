// Layer-major prefill (LlamaModel::PrefillLayerMajor) against token-major Forward, without KV tiers:
// with the same chunks the last-token logits are bit-identical (same layer body, same per-chunk
// attention), and generation after it is the same for the dense cache and the paged modes; the
// leoam skew probe, recorded per layer during the prompt's attention, measures the same policies.
// (The tiered cases, with a device budget and the kvstore, are in tiered_kv_test.cc.)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/engine/sampled_prompt.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {

class LayerMajorPrefillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
    auto backend = kernels::CpuBackend::Create({.num_threads = 2});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    // Chunks of 13 over a 250-token prompt: 20 chunks, the last one partial.
    auto model = LlamaModel::Load(model_path, *backend_, {.prefill_chunk = 13});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    prompt_ = testing::SampledPrompt(*model_, 250, 21);
    ASSERT_EQ(prompt_.size(), 251u);
  }

  std::unique_ptr<kernels::CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::vector<int32_t> prompt_;
};

TEST_F(LayerMajorPrefillTest, SameChunksGiveBitIdenticalLogitsAndCache) {
  const ModelConfig& c = model_->config();
  const int32_t n = static_cast<int32_t>(prompt_.size());
  auto token_major = KvCache::Create(*backend_, c, n);
  auto layer_major = KvCache::Create(*backend_, c, n);
  ASSERT_TRUE(token_major.ok() && layer_major.ok());
  std::vector<float> want(c.vocab_size), got(c.vocab_size, -1.0f);
  ASSERT_TRUE(model_->Forward(prompt_, 0, *token_major, false, want.data()).ok());
  ASSERT_TRUE(model_->PrefillLayerMajor(prompt_, 0, *layer_major, /*chunk=*/0, got.data()).ok());
  EXPECT_EQ(got, want);
  // Every layer's keys and values too: the next forward pass sees the same cache.
  auto big_t = KvCache::Create(*backend_, c, n + 1);
  auto big_l = KvCache::Create(*backend_, c, n + 1);
  ASSERT_TRUE(big_t.ok() && big_l.ok());
  ASSERT_TRUE(model_->Forward(prompt_, 0, *big_t, false, want.data()).ok());
  ASSERT_TRUE(model_->PrefillLayerMajor(prompt_, 0, *big_l, 0, got.data()).ok());
  const int32_t next[1] = {prompt_[5]};
  std::vector<float> a(c.vocab_size), b(c.vocab_size);
  ASSERT_TRUE(model_->Forward(next, n, *big_t, false, a.data()).ok());
  ASSERT_TRUE(model_->Forward(next, n, *big_l, false, b.data()).ok());
  EXPECT_EQ(a, b);
}

// Other chunks change how the prompt's attention is split (the per-chunk kernel's summation order),
// so the logits agree to float rounding only.
TEST_F(LayerMajorPrefillTest, OtherChunksAgreeWithinFloatTolerance) {
  const ModelConfig& c = model_->config();
  const int32_t n = static_cast<int32_t>(prompt_.size());
  auto ref_cache = KvCache::Create(*backend_, c, n);
  ASSERT_TRUE(ref_cache.ok());
  std::vector<float> want(c.vocab_size);
  ASSERT_TRUE(model_->Forward(prompt_, 0, *ref_cache, false, want.data()).ok());
  for (int32_t chunk : {1, 64, 1000}) {
    SCOPED_TRACE(chunk);
    auto cache = KvCache::Create(*backend_, c, n);
    ASSERT_TRUE(cache.ok());
    std::vector<float> got(c.vocab_size);
    ASSERT_TRUE(model_->PrefillLayerMajor(prompt_, 0, *cache, chunk, got.data()).ok());
    float max_diff = 0.0f;
    for (int i = 0; i < c.vocab_size; ++i) max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
    EXPECT_LT(max_diff, 1e-3f);
    std::printf("layer-major chunk %d vs token-major chunk 13: max |logit diff| %.3g\n", chunk, max_diff);
    EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
              std::max_element(want.begin(), want.end()) - want.begin());
  }
}

TEST_F(LayerMajorPrefillTest, RejectsBadArguments) {
  const ModelConfig& c = model_->config();
  auto cache = KvCache::Create(*backend_, c, 16);
  ASSERT_TRUE(cache.ok());
  std::vector<float> logits(c.vocab_size);
  const std::vector<int32_t> none;
  EXPECT_EQ(model_->PrefillLayerMajor(none, 0, *cache, 0, logits.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->PrefillLayerMajor(prompt_, 0, *cache, 0, logits.data()).code(), absl::StatusCode::kOutOfRange);
  const std::vector<int32_t> bad = {1, c.vocab_size};
  EXPECT_EQ(model_->PrefillLayerMajor(bad, 0, *cache, 0, logits.data()).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> one = {1};
  EXPECT_EQ(model_->PrefillLayerMajor(one, 0, *cache, 0, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->PrefillLayerMajor(one, 0, *cache, -1, logits.data()).code(), absl::StatusCode::kInvalidArgument);
  // Generate: layer-major gives no per-position logits.
  GenerateOptions options;
  options.max_tokens = 0;
  options.keep_prompt_logits = true;
  options.prefill_order = PrefillOrder::kLayerMajor;
  EXPECT_EQ(Generate(*model_, nullptr, prompt_, options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePrefillOrder("layer-major").value(), PrefillOrder::kLayerMajor);
  EXPECT_EQ(ParsePrefillOrder("token-major").value(), PrefillOrder::kTokenMajor);
  EXPECT_EQ(ParsePrefillOrder("auto").value(), PrefillOrder::kAuto);
  EXPECT_FALSE(ParsePrefillOrder("layers").ok());
}

// Greedy generation after a layer-major prompt equals generation after a token-major one, for the
// dense cache and each paged mode at a sparse budget; auto stays token-major without KV tiers.
TEST_F(LayerMajorPrefillTest, GenerationMatchesTokenMajorInEveryMode) {
  GenerateOptions options;
  options.max_tokens = 120;
  options.stop_tokens = {};
  std::vector<std::optional<PagedKvOptions>> kvs = {std::nullopt};
  for (SelectionMode mode : {SelectionMode::kDense, SelectionMode::kQuest, SelectionMode::kLeoam}) {
    kvs.push_back(PagedKvOptions{.page_size = 7, .mode = mode, .budget_fraction = 0.3});
  }
  for (const std::optional<PagedKvOptions>& kv : kvs) {
    SCOPED_TRACE(kv.has_value() ? std::string(SelectionModeName(kv->mode)) : "contiguous cache");
    options.paged_kv = kv;
    options.prefill_order = PrefillOrder::kAuto;
    auto automatic = Generate(*model_, nullptr, prompt_, options);
    ASSERT_TRUE(automatic.ok()) << automatic.status();
    EXPECT_FALSE(automatic->layer_major_prefill);
    options.prefill_order = PrefillOrder::kLayerMajor;
    auto layer_major = Generate(*model_, nullptr, prompt_, options);
    ASSERT_TRUE(layer_major.ok()) << layer_major.status();
    EXPECT_TRUE(layer_major->layer_major_prefill);
    ASSERT_EQ(layer_major->tokens.size(), 120u);
    EXPECT_EQ(layer_major->tokens, automatic->tokens);
    if (kv.has_value() && kv->mode != SelectionMode::kDense) {
      // Really sparse, and the same pages attended.
      EXPECT_LT(layer_major->kv_stats.tokens_attended, layer_major->kv_stats.context_tokens);
      EXPECT_EQ(layer_major->kv_stats.tokens_attended, automatic->kv_stats.tokens_attended);
      EXPECT_EQ(layer_major->kv_stats.counters.abstracts_read, automatic->kv_stats.counters.abstracts_read);
    }
  }
}

// leoam's skew probe keeps each layer's last prompt queries as that layer's attention runs; layers
// running one after another (layer-major) must leave it the same queries as chunks do.
TEST_F(LayerMajorPrefillTest, LeoamProbeMeasuresTheSamePolicies) {
  const ModelConfig& c = model_->config();
  const int32_t n = static_cast<int32_t>(prompt_.size());
  PagedKvOptions o{.page_size = 7, .mode = SelectionMode::kLeoam, .budget_fraction = 0.3};
  auto token_major = PagedKvSequence::Create(*backend_, c, n, o);
  auto layer_major = PagedKvSequence::Create(*backend_, c, n, o);
  ASSERT_TRUE(token_major.ok() && layer_major.ok());
  std::vector<float> want(c.vocab_size), got(c.vocab_size);
  ASSERT_TRUE(model_->Forward(prompt_, 0, **token_major, false, want.data()).ok());
  ASSERT_TRUE(model_->PrefillLayerMajor(prompt_, 0, **layer_major, 0, got.data()).ok());
  EXPECT_EQ(got, want);
  ASSERT_TRUE((*token_major)->FinishPrefill().ok());
  ASSERT_TRUE((*layer_major)->FinishPrefill().ok());
  int measured = 0;
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerPolicy& a = (*token_major)->policies()[l];
    const LayerPolicy& b = (*layer_major)->policies()[l];
    SCOPED_TRACE(l);
    measured += a.desert_rate >= 0;
    EXPECT_EQ(a.desert_rate, b.desert_rate);
    EXPECT_EQ(a.dense, b.dense);
    EXPECT_EQ(a.start_level, b.start_level);
    EXPECT_EQ(a.budget_scale, b.budget_scale);
  }
  EXPECT_EQ(measured, c.num_layers);  // the probe really ran on every layer
}

}  // namespace
}  // namespace leoam
