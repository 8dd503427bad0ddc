// Prefix reuse against the real leoam-kvstore: a second request on the same long prompt restores
// the cached prefix (RestorePrefix: LookupPrefix + GetAbstracts) instead of computing it, and
// generates the same tokens; after the store restarts the pages come from its disk tier.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "gtest/gtest.h"
#include "tests/engine/sampled_prompt.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

using kvstore::testing::KvStoreProcess;

constexpr int kPageSize = 16;

class PrefixReuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
    ASSERT_NO_FATAL_FAILURE(StartStore());
    auto backend = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    // Chunks of 64: the first request's chunk boundaries differ from the second's remainder.
    auto model = LlamaModel::Load(model_path, *backend_, {.prefill_chunk = 64});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    fingerprint_ = ModelFingerprint(GgufContentHash(model_->file()), model_->config(), {.page_size = kPageSize});
    kvstore::ClientOptions o;
    o.target = proc_->target();
    auto client = kvstore::KvStoreClient::Connect(
        o, std::string(fingerprint_.begin(), fingerprint_.end()), KvStoreLayout(model_->config(), kPageSize));
    ASSERT_TRUE(client.ok()) << client.status() << "\n" << proc_->Log();
    client_ = std::move(*client);
    // A 300-token prompt sampled from the model (plus BOS).
    prompt_ = testing::SampledPrompt(*model_, 300, 11);
    ASSERT_EQ(prompt_.size(), 301u);
  }

  void StartStore() {
    auto proc = KvStoreProcess::Start({.dir = dir_.path(), .extra_flags = {}});
    ASSERT_TRUE(proc.ok()) << proc.status();
    proc_ = std::move(*proc);
  }

  // Tiered paged KV: a device budget of 30% of the KV of prompt + generation.
  GenerateOptions Options(SelectionMode mode, double budget_fraction, int max_tokens = 60) const {
    const ModelConfig& c = model_->config();
    const int64_t capacity = static_cast<int64_t>(prompt_.size()) + max_tokens;
    const int64_t pages = (capacity + kPageSize - 1) / kPageSize;
    GenerateOptions options;  // greedy
    options.max_tokens = max_tokens;
    options.stop_tokens = {};
    PagedKvOptions paged;
    paged.mode = mode;
    paged.page_size = kPageSize;
    paged.budget_fraction = budget_fraction;
    paged.device_budget_bytes = pages * c.num_layers * 2 * int64_t{kPageSize} * c.kv_dim() * 4 * 3 / 10;
    paged.kvstore = client_.get();
    paged.fingerprint = fingerprint_;
    options.paged_kv = paged;
    return options;
  }

  testing::TempDir dir_;
  std::unique_ptr<KvStoreProcess> proc_;
  std::unique_ptr<kernels::CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  Hash128 fingerprint_{};
  std::unique_ptr<kvstore::KvStoreClient> client_;
  std::vector<int32_t> prompt_;
};

TEST_F(PrefixReuseTest, SecondRequestSkipsCachedPrefillWithSameTokens) {
  const int layers = model_->config().num_layers;
  GenerateOptions dense_options;
  dense_options.max_tokens = 60;
  dense_options.stop_tokens = {};
  auto dense = Generate(*model_, nullptr, prompt_, dense_options);
  ASSERT_TRUE(dense.ok()) << dense.status();
  // Exact (full budget) and sparse selection; quest restores up to the last prompt token, leoam
  // keeps its probe's last 16 prompt tokens computed.
  struct Case {
    SelectionMode mode;
    double budget;
    int32_t expect_cached;
  };
  for (const Case& tc : {Case{SelectionMode::kQuest, 1.0, 288}, Case{SelectionMode::kLeoam, 0.3, 272}}) {
    SCOPED_TRACE(std::string(SelectionModeName(tc.mode)) + " budget " + std::to_string(tc.budget));
    ASSERT_TRUE(client_->DropAll().ok());
    const GenerateOptions options = Options(tc.mode, tc.budget);
    auto first = Generate(*model_, nullptr, prompt_, options);
    ASSERT_TRUE(first.ok()) << first.status() << "\n" << proc_->Log();
    EXPECT_EQ(first->prefix.cached_tokens, 0);
    if (tc.budget == 1.0) EXPECT_EQ(first->tokens, dense->tokens);

    auto second = Generate(*model_, nullptr, prompt_, options);
    ASSERT_TRUE(second.ok()) << second.status() << "\n" << proc_->Log();
    EXPECT_EQ(second->prefix.cached_tokens, tc.expect_cached);
    EXPECT_EQ(second->prefix.pages_memory, tc.expect_cached / kPageSize);
    EXPECT_EQ(second->prefix.pages_disk, 0);
    EXPECT_EQ(second->tokens, first->tokens);
    // The remainder's attention read every restored page of every layer back from the store.
    EXPECT_GE(second->prefill_kv_stats.pages_fetched_memory, int64_t{tc.expect_cached / kPageSize} * layers);
    // Only pages after the restored prefix were written.
    EXPECT_LT(second->prefill_kv_stats.pages_written, first->prefill_kv_stats.pages_written);
    EXPECT_EQ(second->prefill_kv_stats.pages_written,
              first->prefill_kv_stats.pages_written - int64_t{tc.expect_cached / kPageSize} * layers);

    // Ablation: reuse off recomputes everything (and still agrees).
    GenerateOptions off = options;
    off.reuse_prefix = false;
    auto third = Generate(*model_, nullptr, prompt_, off);
    ASSERT_TRUE(third.ok()) << third.status();
    EXPECT_EQ(third->prefix.cached_tokens, 0);
    EXPECT_EQ(third->tokens, first->tokens);
  }
}

TEST_F(PrefixReuseTest, AfterStoreRestartPagesComeFromDisk) {
  const GenerateOptions options = Options(SelectionMode::kQuest, 0.3);
  auto first = Generate(*model_, nullptr, prompt_, options);
  ASSERT_TRUE(first.ok()) << first.status() << "\n" << proc_->Log();
  EXPECT_EQ(first->prefix.cached_tokens, 0);

  EXPECT_EQ(proc_->Stop(), 0) << proc_->Log();
  proc_.reset();
  ASSERT_NO_FATAL_FAILURE(StartStore());
  ASSERT_TRUE(client_->Reconnect().ok());

  auto second = Generate(*model_, nullptr, prompt_, options);
  ASSERT_TRUE(second.ok()) << second.status() << "\n" << proc_->Log();
  EXPECT_EQ(second->prefix.cached_tokens, 288);
  EXPECT_EQ(second->prefix.pages_disk, 288 / kPageSize);
  EXPECT_EQ(second->prefix.pages_memory, 0);
  EXPECT_GT(second->prefill_kv_stats.pages_fetched_disk, 0);
  EXPECT_EQ(second->tokens, first->tokens);
}

// A prompt that shares only its first 100 tokens with a cached one restores the 6 whole pages
// they fill and computes the rest: the same tokens as computing all of it.
TEST_F(PrefixReuseTest, SharedLeadingPagesOnly) {
  const GenerateOptions options = Options(SelectionMode::kQuest, 0.3);
  auto first = Generate(*model_, nullptr, prompt_, options);
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<int32_t> other(prompt_.begin(), prompt_.begin() + 100);
  for (size_t i = 100; i < prompt_.size(); ++i) other.push_back(prompt_[i] == 5 ? 6 : 5);  // a different tail
  GenerateOptions off = options;
  off.reuse_prefix = false;
  auto want = Generate(*model_, nullptr, other, off);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(client_->DropAll().ok());
  ASSERT_TRUE(Generate(*model_, nullptr, prompt_, options).ok());
  auto got = Generate(*model_, nullptr, other, options);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->prefix.cached_tokens, 96);
  EXPECT_EQ(got->tokens, want->tokens);
}

// The restored abstracts are the computed ones, bit for bit, and a prompt of whole pages keeps
// its last page computed (its last token's logits are needed).
TEST_F(PrefixReuseTest, RestoredAbstractsEqualComputedOnes) {
  const ModelConfig& c = model_->config();
  const std::span<const int32_t> head(prompt_.data(), 64);
  PagedKvOptions paged = *Options(SelectionMode::kQuest, 1.0).paged_kv;
  auto computed = PagedKvSequence::Create(*backend_, c, 128, paged);
  ASSERT_TRUE(computed.ok()) << computed.status();
  std::vector<float> logits(c.vocab_size);
  (*computed)->PushTokens(head);
  ASSERT_TRUE(model_->Forward(head, 0, **computed, false, logits.data()).ok());

  auto restored = PagedKvSequence::Create(*backend_, c, 128, paged);
  ASSERT_TRUE(restored.ok()) << restored.status();
  auto r = (*restored)->RestorePrefix(head);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cached_tokens, 48);
  const size_t width = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
  for (int l = 0; l < c.num_layers; ++l) {
    const AbstractPyramid& a = (*restored)->abstracts(l);
    const AbstractPyramid& b = (*computed)->abstracts(l);
    ASSERT_EQ(a.num_pages(), 3);
    for (int page = 0; page < 3; ++page) {
      EXPECT_EQ(std::memcmp(a.min(0, page), b.min(0, page), width * sizeof(float)), 0) << l << " " << page;
      EXPECT_EQ(std::memcmp(a.max(0, page), b.max(0, page), width * sizeof(float)), 0) << l << " " << page;
    }
    // Level 1 node 0 covers pages 0 and 1 in both.
    EXPECT_EQ(std::memcmp(a.min(1, 0), b.min(1, 0), width * sizeof(float)), 0) << l;
    EXPECT_EQ(std::memcmp(a.max(1, 0), b.max(1, 0), width * sizeof(float)), 0) << l;
    EXPECT_EQ((*restored)->page_table(l), (std::vector<int32_t>{-1, -1, -1}));
  }
  // A non-empty sequence cannot restore.
  EXPECT_EQ((*restored)->RestorePrefix(head).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace leoam
