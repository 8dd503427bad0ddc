// The tiered paged KV against the real leoam-kvstore (started on a unix socket in a temp dir):
// with a device page budget of 25% of the KV, leoam at a full-context budget and offload-all
// must reproduce dense generation token for token (stories260K's reference greedy generations),
// and the statistics must show that pages really went to the store and came back.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "compute/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/sampled_prompt.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/reference_generations.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

using kvstore::testing::KvStoreProcess;

class TieredKvTest : public ::testing::Test {
 protected:
  void Start(const std::string& model_path, int page_size, int prefill_chunk) {
    auto proc = KvStoreProcess::Start({.dir = dir_.path(), .extra_flags = {}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    auto backend = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    auto model = LlamaModel::Load(model_path, *backend_, {.prefill_chunk = prefill_chunk});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    auto tokenizer = Tokenizer::FromGguf(model_->file());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    fingerprint_ = ModelFingerprint(GgufContentHash(model_->file()), model_->config(), {.page_size = page_size});
    kvstore::ClientOptions o;
    o.target = proc_->target();
    auto client = kvstore::KvStoreClient::Connect(
        o, std::string(fingerprint_.begin(), fingerprint_.end()), KvStoreLayout(model_->config(), page_size));
    ASSERT_TRUE(client.ok()) << client.status() << "\n" << proc_->Log();
    client_ = std::move(*client);
  }

  // Paged options with a device budget of `fraction` of the KV of `capacity` positions.
  PagedKvOptions Tiered(SelectionMode mode, int page_size, int capacity, double fraction) const {
    const ModelConfig& c = model_->config();
    const int64_t pages = (capacity + page_size - 1) / page_size;
    const int64_t kv_bytes = pages * c.num_layers * 2 * int64_t{page_size} * c.kv_dim() * 4;
    PagedKvOptions o;
    o.mode = mode;
    o.page_size = page_size;
    o.budget_fraction = 1.0;
    o.device_budget_bytes = static_cast<int64_t>(kv_bytes * fraction);
    o.kvstore = client_.get();
    o.fingerprint = fingerprint_;
    return o;
  }

  // stories260K's reference generations under a 25% device budget, in leoam (full token budget)
  // and offload-all, with the prompt run in `order`: the tokens must be the references'.
  // `check(mode, result)` adds the caller's checks. Call after Start.
  void ExpectStoriesReferences(const std::string& jsonl_path, PrefillOrder order,
                               const std::function<void(SelectionMode, const GenerateResult&)>& check) {
    auto refs = testing::ReadReferenceGenerations(jsonl_path);
    ASSERT_TRUE(refs.ok()) << refs.status();
    for (const testing::ReferenceGeneration& ref : *refs) {
      for (SelectionMode mode : {SelectionMode::kLeoam, SelectionMode::kOffloadAll}) {
        SCOPED_TRACE(std::string(SelectionModeName(mode)) + " prompt: \"" + ref.prompt + "\"");
        GenerateOptions options;  // greedy
        options.max_tokens = ref.positions - static_cast<int32_t>(ref.prompt_ids.size()) + 1;
        options.max_context = ref.positions;
        options.paged_kv = Tiered(mode, 16, ref.positions, 0.25);
        options.prefill_order = order;
        auto result = Generate(*model_, tokenizer_.get(), ref.prompt_ids, options);
        ASSERT_TRUE(result.ok()) << result.status() << "\n" << proc_->Log();
        EXPECT_EQ(result->tokens, ref.generated_ids);
        check(mode, *result);
      }
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<KvStoreProcess> proc_;
  std::unique_ptr<kernels::CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  Hash128 fingerprint_{};
  std::unique_ptr<kvstore::KvStoreClient> client_;
};

void ExpectPagesMoved(const PagedKvStats& st, int64_t max_slots_pages) {
  EXPECT_GT(st.pages_written, 0);
  EXPECT_EQ(st.bytes_written % st.pages_written, 0);
  EXPECT_GT(st.cache_misses, 0);
  EXPECT_GT(st.pages_fetched_memory + st.pages_fetched_disk, 0);
  EXPECT_GE(st.pages_fetched_memory + st.pages_fetched_disk, st.cache_misses);
  EXPECT_GT(st.evictions, 0);
  // Every selected page of a decode step was either a hit or a miss.
  EXPECT_EQ(st.cache_hits + st.cache_misses, st.pages_selected);
  EXPECT_GT(max_slots_pages, 0);
}

TEST_F(TieredKvTest, QuarterBudgetReproducesStoriesReferences) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl_path, "models/stories260K.greedy.jsonl");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 16, 512));
  ExpectStoriesReferences(jsonl_path, PrefillOrder::kTokenMajor, [](SelectionMode mode, const GenerateResult& r) {
    const PagedKvStats& st = r.kv_stats;
    ExpectPagesMoved(st, 1);
    EXPECT_EQ(st.tokens_attended, st.context_tokens);
    if (mode == SelectionMode::kOffloadAll) {
      // Every full page of every layer came from the store at every step: only each layer's
      // newest page (being filled) can be a hit.
      EXPECT_LE(st.cache_hits, st.selections);
      EXPECT_GE(st.cache_misses, st.pages_selected - st.selections);
    }
  });
}

// Chunked prefill with odd pages: the prompt's own attention reads pages that were already
// evicted (fetched straight into the gather rows), and sparse selection under a small device
// budget computes exactly what it computes with every page resident.
TEST_F(TieredKvTest, ChunkedPrefillSparseSelectionMatchesResident) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 7, 13));
  // A 250-token prompt sampled from the model: longer than the budget holds for one layer pass.
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 250, 7);
  GenerateOptions options;
  options.max_tokens = 200;
  options.stop_tokens = {};
  // Every mode runs the whole prompt (the store holds it after the first: no prefix reuse here).
  options.reuse_prefix = false;
  // Token-major, whose later chunks read the earlier chunks' evicted pages (layer-major reads none:
  // LayerMajorPrefillMatchesTokenMajorWithoutPromptFetches).
  options.prefill_order = PrefillOrder::kTokenMajor;
  auto dense = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(dense.ok()) << dense.status();
  ASSERT_EQ(dense->tokens.size(), 200u);
  const int capacity = static_cast<int>(prompt.size()) + 199;
  // Tiering must not change what is computed: with a sparse token budget (and leoam's per-layer
  // adaptivity, which this long prompt turns on), the tiered run equals the same mode with every
  // page resident; offload-all equals dense.
  for (SelectionMode mode : {SelectionMode::kLeoam, SelectionMode::kQuest, SelectionMode::kOffloadAll}) {
    SCOPED_TRACE(SelectionModeName(mode));
    std::vector<int32_t> want = dense->tokens;
    if (mode != SelectionMode::kOffloadAll) {
      options.paged_kv = PagedKvOptions{.page_size = 7, .mode = mode, .budget_fraction = 0.3};
      auto resident = Generate(*model_, nullptr, prompt, options);
      ASSERT_TRUE(resident.ok()) << resident.status();
      want = resident->tokens;
    }
    options.paged_kv = Tiered(mode, 7, capacity, 0.3);
    if (mode != SelectionMode::kOffloadAll) options.paged_kv->budget_fraction = 0.3;
    auto tiered = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(tiered.ok()) << tiered.status() << "\n" << proc_->Log();
    EXPECT_EQ(tiered->tokens, want);
    ExpectPagesMoved(tiered->kv_stats, 1);
    if (mode != SelectionMode::kOffloadAll) {
      EXPECT_LT(tiered->kv_stats.tokens_attended, tiered->kv_stats.context_tokens);  // really sparse
      EXPECT_GT(tiered->kv_stats.cache_hits, 0);
    }
    // The prompt (chunks of 13 over pages of 7 under a 30% budget) already wrote pages through and
    // read evicted ones back for its own attention.
    EXPECT_GT(tiered->prefill_kv_stats.pages_written, 0);
    EXPECT_GT(tiered->prefill_kv_stats.pages_fetched_memory + tiered->prefill_kv_stats.pages_fetched_disk, 0);
  }
}

// The pyramid's lowest level in the store (PagedKvOptions::level0_in_store): leoam frees the
// level-0 abstracts of written-through pages and reads its candidates' back from the store at each
// selection. The tokens are those of the same run with level 0 held here, also after the prompt
// comes back from the store as a restored prefix.
TEST_F(TieredKvTest, Level0InStoreSelectsTheSamePages) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 8, 64));
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 300, 11);
  GenerateOptions options;
  options.max_tokens = 120;
  options.stop_tokens = {};
  const int capacity = static_cast<int>(prompt.size()) + 119;
  options.paged_kv = Tiered(SelectionMode::kLeoam, 8, capacity, 0.3);
  options.paged_kv->budget_fraction = 0.2;
  options.reuse_prefix = false;
  auto held = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->kv_stats.counters.abstracts_from_store, 0);
  EXPECT_LT(held->kv_stats.tokens_attended, held->kv_stats.context_tokens);  // really sparse

  options.paged_kv->level0_in_store = true;
  for (bool restored : {false, true}) {
    SCOPED_TRACE(restored ? "prompt restored from the store" : "prompt computed");
    options.reuse_prefix = restored;
    auto in_store = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(in_store.ok()) << in_store.status() << "\n" << proc_->Log();
    EXPECT_EQ(in_store->tokens, held->tokens);
    const PagedKvStats& st = in_store->kv_stats;
    EXPECT_GT(st.counters.abstracts_from_store, 0);
    EXPECT_LT(st.counters.abstracts_from_store, st.counters.abstracts_read);  // candidates only
    EXPECT_GT(st.level0_bytes_from_store, 0);
  }

  // Combinations that read every page's level 0 are refused.
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    PagedKvOptions bad = Tiered(mode, 8, capacity, 0.3);
    bad.level0_in_store = true;
    if (mode == SelectionMode::kLeoam) bad.compression.enabled = true;
    auto seq = PagedKvSequence::Create(*backend_, model_->config(), capacity, bad);
    EXPECT_EQ(seq.status().code(), absl::StatusCode::kInvalidArgument) << SelectionModeName(mode);
  }
}

// Dynamic compression: pages written to the store in fp16 / int8 / int4 by importance (the sink
// exact) and decoded when read back. The prompt's chunks read evicted pages back, so its logits
// show the (small) cost against exact pages.
TEST_F(TieredKvTest, CompressedPagesDecodeCloseToExact) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 8, 24));
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 300, 3);
  const int vocab = model_->config().vocab_size;
  const size_t n = prompt.size();

  GenerateOptions options;
  options.max_tokens = 0;
  options.keep_prompt_logits = true;
  auto dense = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(dense.ok()) << dense.status();
  // Share of positions whose argmax agrees with dense, mean KL(dense || got) of the next-token
  // distributions, and the largest logit difference.
  auto log_softmax = [&](const float* x) {
    const double m = *std::max_element(x, x + vocab);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(x[i] - m);
    std::vector<double> out(vocab);
    for (int i = 0; i < vocab; ++i) out[i] = x[i] - m - std::log(sum);
    return out;
  };
  double kl = 0;
  auto compare = [&](const std::vector<float>& got, double* agree, double* max_diff) {
    *agree = 0;
    *max_diff = 0;
    kl = 0;
    for (size_t t = 0; t < n; ++t) {
      const float* a = dense->prompt_logits.data() + t * vocab;
      const float* b = got.data() + t * vocab;
      *agree += (std::max_element(a, a + vocab) - a) == (std::max_element(b, b + vocab) - b);
      for (int i = 0; i < vocab; ++i) *max_diff = std::max<double>(*max_diff, std::fabs(a[i] - b[i]));
      const std::vector<double> p = log_softmax(a), q = log_softmax(b);
      for (int i = 0; i < vocab; ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
    }
    *agree /= n;
    kl /= n;
  };

  // Every page fp16 (gaps never exceeded) except the sink, then the default mix.
  for (const float fp16_gap : {1e30f, 2.0f}) {
    SCOPED_TRACE(fp16_gap);
    options.paged_kv = Tiered(SelectionMode::kQuest, 8, static_cast<int>(n), 0.25);
    options.paged_kv->compression.enabled = true;
    options.paged_kv->compression.fp16_gap = fp16_gap;
    options.paged_kv->compression.int8_gap = std::max(fp16_gap, 6.0f);
    // The store keeps the first copy of a page: start empty so these pages are written here.
    ASSERT_TRUE(client_->DropAll().ok());
    auto got = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(got.ok()) << got.status() << "\n" << proc_->Log();
    const PagedKvStats& st = got->prefill_kv_stats;
    const auto& by = st.pages_written_by_encoding;
    const int layers = model_->config().num_layers;
    EXPECT_EQ(by[static_cast<int>(codec::PageEncoding::kF32)], layers);  // the sink page of each layer
    EXPECT_EQ(by[1] + by[2] + by[3] + by[5], st.pages_written);
    EXPECT_LT(st.bytes_written, st.bytes_written_exact);
    if (fp16_gap > 1e29f) {
      EXPECT_EQ(by[static_cast<int>(codec::PageEncoding::kFp16)], st.pages_written - layers);
    } else {
      EXPECT_GT(by[static_cast<int>(codec::PageEncoding::kInt8)] + by[static_cast<int>(codec::PageEncoding::kInt4)],
                0);
    }
    EXPECT_GT(st.pages_fetched_memory + st.pages_fetched_disk, 0);
    double agree = 0, max_diff = 0;
    compare(got->prompt_logits, &agree, &max_diff);
    EXPECT_GT(max_diff, 0.0);  // lossy pages really were read back
    EXPECT_GE(agree, fp16_gap > 1e29f ? 0.99 : 0.9);
    EXPECT_LT(kl, fp16_gap > 1e29f ? 1e-4 : 0.05);
    std::printf("fp16_gap %g: pages f32/fp16/int8/int4 %lld/%lld/%lld/%lld, bytes %.2f of f32, top-1 agree %.3f, "
                "mean KL %.5f, max logit diff %.4f\n",
                fp16_gap, static_cast<long long>(by[5]), static_cast<long long>(by[1]),
                static_cast<long long>(by[2]), static_cast<long long>(by[3]),
                static_cast<double>(st.bytes_written) / st.bytes_written_exact, agree, kl, max_diff);
  }
  // Off: exact pages, bit-identical logits.
  options.paged_kv = Tiered(SelectionMode::kQuest, 8, static_cast<int>(n), 0.25);
  ASSERT_TRUE(client_->DropAll().ok());
  auto exact = Generate(*model_, nullptr, prompt, options);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->prefill_kv_stats.bytes_written, exact->prefill_kv_stats.bytes_written_exact);
  double agree = 0, max_diff = 0;
  compare(exact->prompt_logits, &agree, &max_diff);
  std::printf("exact: top-1 agree %.3f, max logit diff %.6f\n", agree, max_diff);
  EXPECT_EQ(exact->prompt_logits, dense->prompt_logits);
}

// DTP prefetch changes timing only: the same tokens with and without it, and the misses it
// predicted were served from its batches (offload-all's prediction is exact).
TEST_F(TieredKvTest, PrefetchServesPredictedMissesWithSameTokens) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 16, 64));
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 250, 5);
  GenerateOptions options;
  options.max_tokens = 100;
  options.stop_tokens = {};
  const int capacity = static_cast<int>(prompt.size()) + 99;
  for (SelectionMode mode : {SelectionMode::kOffloadAll, SelectionMode::kLeoam, SelectionMode::kQuest}) {
    SCOPED_TRACE(SelectionModeName(mode));
    options.paged_kv = Tiered(mode, 16, capacity, 0.3);
    options.paged_kv->budget_fraction = mode == SelectionMode::kOffloadAll ? 1.0 : 0.3;
    options.paged_kv->prefetch = false;
    auto off = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(off.ok()) << off.status() << "\n" << proc_->Log();
    EXPECT_EQ(off->kv_stats.prefetch_pages, 0);
    EXPECT_EQ(off->kv_stats.prefetch_hits, 0);
    options.paged_kv->prefetch = true;
    auto on = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(on.ok()) << on.status() << "\n" << proc_->Log();
    EXPECT_EQ(on->tokens, off->tokens);
    const PagedKvStats& st = on->kv_stats;
    EXPECT_GT(st.prefetch_pages, 0);
    EXPECT_GT(st.prefetch_hits, 0);
    EXPECT_LE(st.prefetch_hits, st.cache_misses);
    EXPECT_LE(st.prefetch_hits, st.prefetch_pages);
    EXPECT_GE(st.pages_fetched_memory + st.pages_fetched_disk, st.cache_misses);  // leoam's probe reads more
    if (mode == SelectionMode::kOffloadAll) {
      // Every miss but those of the first step's first layer was predicted.
      EXPECT_GE(st.prefetch_hits, st.cache_misses * 9 / 10);
    }
    std::printf("%s: prefetched %lld pages, %lld of %lld misses served by prefetch\n",
                std::string(SelectionModeName(mode)).c_str(), static_cast<long long>(st.prefetch_pages),
                static_cast<long long>(st.prefetch_hits), static_cast<long long>(st.cache_misses));
  }
}

// Layer-major prefill under a device budget of 30% of the KV (one layer's KV is 20%): the same
// tokens as token-major in every mode, and the prompt's attention no longer reads its own evicted
// pages back from the store (token-major fetches them at every later chunk of every layer);
// offload-all drops every stored page after each attention, so it fetches in either order.
TEST_F(TieredKvTest, LayerMajorPrefillMatchesTokenMajorWithoutPromptFetches) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 7, 13));
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 250, 7);
  GenerateOptions options;
  options.max_tokens = 100;
  options.stop_tokens = {};
  options.reuse_prefix = false;
  const int capacity = static_cast<int>(prompt.size()) + 99;
  for (SelectionMode mode : {SelectionMode::kDense, SelectionMode::kQuest, SelectionMode::kLeoam,
                             SelectionMode::kOffloadAll}) {
    SCOPED_TRACE(SelectionModeName(mode));
    options.paged_kv = Tiered(mode, 7, capacity, 0.3);
    if (mode == SelectionMode::kQuest || mode == SelectionMode::kLeoam) options.paged_kv->budget_fraction = 0.3;
    options.prefill_order = PrefillOrder::kTokenMajor;
    auto token_major = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(token_major.ok()) << token_major.status() << "\n" << proc_->Log();
    EXPECT_FALSE(token_major->layer_major_prefill);
    options.prefill_order = PrefillOrder::kAuto;  // a tiered prompt of 20 chunks whose KV exceeds the budget
    auto layer_major = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(layer_major.ok()) << layer_major.status() << "\n" << proc_->Log();
    EXPECT_EQ(layer_major->layer_major_prefill, mode != SelectionMode::kOffloadAll);
    if (mode == SelectionMode::kOffloadAll) {
      options.prefill_order = PrefillOrder::kLayerMajor;
      layer_major = Generate(*model_, nullptr, prompt, options);
      ASSERT_TRUE(layer_major.ok()) << layer_major.status() << "\n" << proc_->Log();
    }
    ASSERT_EQ(layer_major->tokens.size(), 100u);
    EXPECT_EQ(layer_major->tokens, token_major->tokens);
    EXPECT_EQ(layer_major->kv_stats.tokens_attended, token_major->kv_stats.tokens_attended);
    const PagedKvStats& tm = token_major->prefill_kv_stats;
    const PagedKvStats& lm = layer_major->prefill_kv_stats;
    EXPECT_EQ(lm.pages_written, tm.pages_written);
    EXPECT_GT(tm.pages_fetched_memory + tm.pages_fetched_disk, 0);
    const int64_t lm_fetched = lm.pages_fetched_memory + lm.pages_fetched_disk;
    if (mode == SelectionMode::kOffloadAll) {
      EXPECT_GT(lm_fetched, 0);
    } else if (mode == SelectionMode::kLeoam) {
      // Only leoam's skew probe (FinishPrefill) reads pages back: each layer's absent prompt pages
      // once, to score its last queries exactly.
      const int64_t prompt_pages = (static_cast<int64_t>(prompt.size()) + 6) / 7;
      EXPECT_LE(lm_fetched, prompt_pages * model_->config().num_layers);
      EXPECT_LT(lm_fetched, tm.pages_fetched_memory + tm.pages_fetched_disk);
    } else {
      EXPECT_EQ(lm_fetched, 0);
    }
    // Decode afterwards really runs on the tiers.
    ExpectPagesMoved(layer_major->kv_stats, 1);
    std::printf("%s: prompt pages fetched token-major %lld, layer-major %lld\n",
                std::string(SelectionModeName(mode)).c_str(),
                static_cast<long long>(tm.pages_fetched_memory + tm.pages_fetched_disk),
                static_cast<long long>(lm.pages_fetched_memory + lm.pages_fetched_disk));
  }
}

// stories260K's reference generations with the prompt run layer-major in chunks of 4 tokens under
// a 25% device budget: leoam at a full budget and offload-all reproduce them token for token.
TEST_F(TieredKvTest, LayerMajorPrefillReproducesStoriesReferences) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl_path, "models/stories260K.greedy.jsonl");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 16, 4));
  ExpectStoriesReferences(jsonl_path, PrefillOrder::kLayerMajor,
                          [](SelectionMode, const GenerateResult& r) { EXPECT_TRUE(r.layer_major_prefill); });
}

// Prefix reuse then layer-major: the restored prefix's pages are read from the store by each
// chunk of the remainder, layer by layer; the tokens equal those of computing the whole prompt.
TEST_F(TieredKvTest, LayerMajorRemainderAfterRestoredPrefix) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 16, 16));
  const std::vector<int32_t> prompt = testing::SampledPrompt(*model_, 250, 9);
  const std::vector<int32_t> head(prompt.begin(), prompt.begin() + 130);
  GenerateOptions options;
  options.max_tokens = 80;
  options.stop_tokens = {};
  const int capacity = static_cast<int>(prompt.size()) + 79;
  for (SelectionMode mode : {SelectionMode::kQuest, SelectionMode::kLeoam}) {
    SCOPED_TRACE(SelectionModeName(mode));
    ASSERT_TRUE(client_->DropAll().ok());
    options.paged_kv = Tiered(mode, 16, capacity, 0.3);
    options.paged_kv->budget_fraction = 0.3;
    options.reuse_prefix = false;
    options.prefill_order = PrefillOrder::kTokenMajor;
    auto want = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(client_->DropAll().ok());
    // The store learns the first 130 tokens (8 whole pages); the full prompt then restores them.
    options.max_tokens = 1;
    ASSERT_TRUE(Generate(*model_, nullptr, head, options).ok());
    options.max_tokens = 80;
    options.reuse_prefix = true;
    options.prefill_order = PrefillOrder::kLayerMajor;
    auto got = Generate(*model_, nullptr, prompt, options);
    ASSERT_TRUE(got.ok()) << got.status() << "\n" << proc_->Log();
    EXPECT_EQ(got->prefix.cached_tokens, 128);
    EXPECT_TRUE(got->layer_major_prefill);
    EXPECT_EQ(got->tokens, want->tokens);
    EXPECT_GT(got->prefill_kv_stats.pages_fetched_memory, 0);  // the restored pages, read by the remainder
  }
}

// A budget too small for one layer's attention fails with a clear error instead of corrupting.
TEST_F(TieredKvTest, TooSmallBudgetIsResourceExhausted) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  ASSERT_NO_FATAL_FAILURE(Start(model_path, 16, 512));
  std::vector<int32_t> prompt = tokenizer_->Encode("Once upon a time, there was a little dog", {.add_bos = true});
  GenerateOptions options;
  options.max_tokens = 200;
  options.stop_tokens = {};
  options.paged_kv = Tiered(SelectionMode::kOffloadAll, 16, 256, 0.1);
  auto result = Generate(*model_, nullptr, prompt, options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted) << result.status();
}

// Score-aware replacement: one layer, pages of 16 tokens, a device cache of 6 pages and a quest
// budget of 4 pages (sink, two local pages, one chosen). Step 1's query puts nearly all its mass on
// page 3; then a scan of six steps each selects a different marginal page (a small share of its
// step's mass). Least-recently-selected replacement evicts page 3 on the scan's third miss; with
// scores, the scan's own pages go first and page 3 is still resident when it is selected again.
// The replacement tests: one layer with one head of 8 channels, pages of 16 tokens, a 12-page
// prompt, a real store and a client of it.
class OneLayerStoreTest : public ::testing::Test {
 protected:
  static constexpr int kPage = 16, kPromptPages = 12;
  void SetUp() override {
    auto proc = KvStoreProcess::Start({.dir = dir_.path(), .extra_flags = {}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
    auto backend = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(backend.ok());
    backend_ = std::move(*backend);
    c_.num_layers = 1;
    c_.num_heads = 1;
    c_.num_kv_heads = 1;
    c_.head_dim = 8;
    c_.dim = 8;
    fingerprint_[0] = 42;
    kvstore::ClientOptions co;
    co.target = proc_->target();
    auto client = kvstore::KvStoreClient::Connect(co, std::string(fingerprint_.begin(), fingerprint_.end()),
                                                  KvStoreLayout(c_, kPage));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  testing::TempDir dir_;
  std::unique_ptr<KvStoreProcess> proc_;
  std::unique_ptr<kernels::CpuBackend> backend_;
  ModelConfig c_;
  Hash128 fingerprint_{};
  std::unique_ptr<kvstore::KvStoreClient> client_;
};

TEST_F(OneLayerStoreTest, HighScoringPageSurvivesScanOfLowScoringPages) {
  constexpr int kHot = 3;
  const ModelConfig& c = c_;
  const int64_t slot_bytes = 2 * kPage * c.kv_dim() * 4;

  // Keys: page kHot along channel 0 (10), scan page 4 + i along channel 1 + i (1), the rest zero.
  const int d = c.head_dim;
  std::vector<float> keys(kPromptPages * kPage * d, 0.0f), values(keys.size(), 0.5f);
  for (int t = 0; t < kPage; ++t) {
    keys[(kHot * kPage + t) * d + 0] = 10.0f;
    for (int i = 0; i < 6; ++i) keys[((4 + i) * kPage + t) * d + 1 + i] = 1.0f;
  }
  auto run = [&](int32_t retention_steps, bool* hot_resident_after_scan, int64_t* last_step_misses) {
    PagedKvOptions o;
    o.mode = SelectionMode::kQuest;
    o.page_size = kPage;
    o.budget_tokens = 4 * kPage;
    o.device_budget_bytes = 6 * slot_bytes;
    o.kvstore = client_.get();
    o.fingerprint = fingerprint_;
    o.prefetch = false;
    o.score_retention_steps = retention_steps;
    ASSERT_TRUE(client_->DropAll().ok());
    auto seq_or = PagedKvSequence::Create(*backend_, c, (kPromptPages + 1) * kPage, o);
    ASSERT_TRUE(seq_or.ok()) << seq_or.status();
    PagedKvSequence& seq = **seq_or;
    ASSERT_EQ(seq.num_slots(), 6);
    std::vector<int32_t> tokens(kPromptPages * kPage);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % 50);
    seq.PushTokens(tokens);
    const absl::Status appended = seq.Append(0, 0, kPromptPages * kPage, keys.data(), values.data());
    ASSERT_TRUE(appended.ok()) << appended;
    seq.BeginDecode();
    std::vector<float> zero(d, 0.0f), out(d);
    int32_t pos = kPromptPages * kPage;
    auto step = [&](int channel, float strength) {
      const int32_t tok[1] = {7};
      seq.PushTokens(tok);
      ASSERT_TRUE(seq.Append(0, pos, 1, zero.data(), zero.data()).ok());
      std::vector<float> q(d, 0.0f);
      q[channel] = strength;
      const kernels::AttentionParams params{1, 1, 1, d, pos, 1.0f};
      ASSERT_TRUE(seq.Attend(0, params, q.data(), out.data(), nullptr).ok());
      ++pos;
    };
    ASSERT_NO_FATAL_FAILURE(step(0, 1.0f));  // page kHot: ~all of the step's mass
    ASSERT_EQ(seq.last_selection(0), (std::vector<int32_t>{0, kHot, kPromptPages - 1, kPromptPages}));
    for (int i = 0; i < 6; ++i) {  // the scan: pages 4..9, each a small share of its step
      ASSERT_NO_FATAL_FAILURE(step(1 + i, 0.3f));
      ASSERT_EQ(seq.last_selection(0)[1], 4 + i);
    }
    *hot_resident_after_scan = seq.page_table(0)[kHot] >= 0;
    const int64_t misses_before = seq.stats().cache_misses;
    ASSERT_NO_FATAL_FAILURE(step(0, 1.0f));
    ASSERT_EQ(seq.last_selection(0)[1], kHot);
    *last_step_misses = seq.stats().cache_misses - misses_before;
  };
  bool lru_kept = true, scored_kept = false;
  int64_t lru_misses = -1, scored_misses = -1;
  ASSERT_NO_FATAL_FAILURE(run(0, &lru_kept, &lru_misses));
  ASSERT_NO_FATAL_FAILURE(run(8, &scored_kept, &scored_misses));
  EXPECT_FALSE(lru_kept);
  EXPECT_EQ(lru_misses, 1);
  EXPECT_TRUE(scored_kept);
  EXPECT_EQ(scored_misses, 0);
}

// Hysteresis (SelectionOptions::resident_logit_margin): one layer, pages of 16 tokens, a device
// cache of 6 pages, a quest budget of 4 pages (sink, two local pages, one chosen). Page 3's keys
// point along channel 0, page 5's along channel 1. Step 1 (query along channel 0) fetches page 3;
// step 2's query prefers page 5 by 0.1 logit: without a margin it is fetched, with a margin of 1
// page 3 (resident) stays; step 3's query prefers page 5 by 2 logits, which beats the margin.
// Preferring the previous step's pages instead does the same, also without tiers.
TEST_F(OneLayerStoreTest, ResidentPageStaysUnlessBeatenByTheMargin) {
  const ModelConfig& c = c_;
  const int d = c.head_dim;
  std::vector<float> keys(kPromptPages * kPage * d, 0.0f), values(keys.size(), 0.5f);
  for (int t = 0; t < kPage; ++t) {
    keys[(3 * kPage + t) * d + 0] = 1.0f;
    keys[(5 * kPage + t) * d + 1] = 1.0f;
  }
  // Per step: the chosen page (the one besides sink and local pages) and the step's misses.
  using Preferred = SelectionOptions::PreferredPages;
  auto run = [&](float margin, Preferred preferred, bool tiered, std::vector<int32_t>* chosen,
                 std::vector<int64_t>* misses) {
    PagedKvOptions o;
    o.mode = SelectionMode::kQuest;
    o.page_size = kPage;
    o.budget_tokens = 4 * kPage;
    if (tiered) {
      o.device_budget_bytes = 6 * int64_t{2 * kPage * 8 * 4};
      o.kvstore = client_.get();
      o.fingerprint = fingerprint_;
    }
    o.prefetch = false;
    o.selection.resident_logit_margin = margin;
    o.selection.preferred_pages = preferred;
    ASSERT_TRUE(client_->DropAll().ok());
    auto seq_or = PagedKvSequence::Create(*backend_, c, (kPromptPages + 1) * kPage, o);
    ASSERT_TRUE(seq_or.ok()) << seq_or.status();
    PagedKvSequence& seq = **seq_or;
    std::vector<int32_t> tokens(kPromptPages * kPage);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % 50);
    seq.PushTokens(tokens);
    ASSERT_TRUE(seq.Append(0, 0, kPromptPages * kPage, keys.data(), values.data()).ok());
    seq.BeginDecode();
    if (tiered) {
      ASSERT_LT(seq.page_table(0)[3], 0);  // the prompt's last pages hold the cache, not 3 or 5
      ASSERT_LT(seq.page_table(0)[5], 0);
    }
    std::vector<float> zero(d, 0.0f), out(d);
    int32_t pos = kPromptPages * kPage;
    for (const auto& [along0, along1] : {std::pair{1.0f, 0.0f}, {1.0f, 1.1f}, {1.0f, 3.0f}}) {
      const int32_t tok[1] = {7};
      seq.PushTokens(tok);
      ASSERT_TRUE(seq.Append(0, pos, 1, zero.data(), zero.data()).ok());
      std::vector<float> q(d, 0.0f);
      q[0] = along0;
      q[1] = along1;
      const int64_t before = seq.stats().cache_misses;
      const kernels::AttentionParams params{1, 1, 1, d, pos, 1.0f};
      ASSERT_TRUE(seq.Attend(0, params, q.data(), out.data(), nullptr).ok());
      ASSERT_EQ(seq.last_selection(0).size(), 4u);
      chosen->push_back(seq.last_selection(0)[1]);
      misses->push_back(seq.stats().cache_misses - before);
      ++pos;
    }
  };
  std::vector<int32_t> plain, sticky, previous, untiered;
  std::vector<int64_t> plain_misses, sticky_misses, previous_misses, untiered_misses;
  ASSERT_NO_FATAL_FAILURE(run(0.0f, Preferred::kResident, true, &plain, &plain_misses));
  ASSERT_NO_FATAL_FAILURE(run(1.0f, Preferred::kResident, true, &sticky, &sticky_misses));
  ASSERT_NO_FATAL_FAILURE(run(1.0f, Preferred::kPreviousSelection, true, &previous, &previous_misses));
  ASSERT_NO_FATAL_FAILURE(run(1.0f, Preferred::kPreviousSelection, false, &untiered, &untiered_misses));
  // Step 1 fetches the sink page too (the prompt's last pages held the cache).
  EXPECT_EQ(plain, (std::vector<int32_t>{3, 5, 5}));
  EXPECT_EQ(plain_misses, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(sticky, (std::vector<int32_t>{3, 3, 5}));
  EXPECT_EQ(sticky_misses, (std::vector<int64_t>{2, 0, 1}));
  EXPECT_EQ(previous, sticky);
  EXPECT_EQ(previous_misses, sticky_misses);
  EXPECT_EQ(untiered, sticky);
}

TEST(TieredKvOptionsTest, BudgetWithoutStoreIsRejected) {
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok());
  ModelConfig c;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 8;
  c.dim = 16;
  PagedKvOptions o;
  o.device_budget_bytes = 1 << 20;
  auto seq = PagedKvSequence::Create(**backend, c, 64, o);
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kFailedPrecondition);
  o.device_budget_bytes = 0;
  o.mode = SelectionMode::kOffloadAll;
  seq = PagedKvSequence::Create(**backend, c, 64, o);
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace leoam
