// LlamaModel::ForwardDecodeBatch against Forward of each item alone (stories260K, CPU backend).
#include <cstring>
#include <memory>
#include <vector>

#include "compute/engine/paged_kv.h"
#include "compute/model/backend_select.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"
#include "compute/sampling/sampler.h"
#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {

// Distinct prompts of distinct lengths, so the items of a batch sit at different positions.
std::vector<int32_t> Prompt(int i) {
  std::vector<int32_t> p = {1};
  for (int t = 0; t < 3 + (2 * i) % 23; ++t) p.push_back(260 + (i * 37 + t * 11) % 240);  // <= 25 tokens
  return p;
}

struct Fixture {
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<LlamaModel> model;
};

std::unique_ptr<KvSequence> NewCache(LlamaModel& model, bool paged, int32_t capacity) {
  if (paged) {
    PagedKvOptions o;
    o.mode = SelectionMode::kLeoam;
    o.budget_fraction = 1.0;
    o.page_size = 4;
    auto seq = PagedKvSequence::Create(model.backend(), model.config(), capacity, o);
    EXPECT_TRUE(seq.ok()) << seq.status();
    return std::move(*seq);
  }
  auto dense = KvCache::Create(model.backend(), model.config(), capacity);
  EXPECT_TRUE(dense.ok()) << dense.status();
  return std::make_unique<KvCache>(std::move(*dense));
}

// Runs `steps` greedy decode steps for `n` sequences, batched (one ForwardDecodeBatch per step)
// and each alone (Forward), and compares logits at every step: exactly when `exact`, else within
// `tolerance` (absolute, on logits of magnitude ~10).
void CompareBatchedWithSolo(LlamaModel& model, int n, bool paged, int steps, bool exact, float tolerance) {
  const int32_t vocab = model.config().vocab_size;
  const int32_t capacity = 64;
  std::vector<std::unique_ptr<KvSequence>> solo(n), batch(n);
  std::vector<int32_t> next_solo(n), next_batch(n), position(n);
  std::vector<float> logits(vocab);
  for (int i = 0; i < n; ++i) {
    const std::vector<int32_t> prompt = Prompt(i);
    solo[i] = NewCache(model, paged, capacity);
    batch[i] = NewCache(model, paged, capacity);
    for (auto* c : {solo[i].get(), batch[i].get()}) {
      if (paged) static_cast<PagedKvSequence*>(c)->PushTokens(prompt);
      ASSERT_TRUE(model.Forward(prompt, 0, *c, false, logits.data()).ok());
      if (paged) static_cast<PagedKvSequence*>(c)->BeginDecode();
    }
    next_solo[i] = next_batch[i] = Argmax(logits.data(), vocab);
    position[i] = static_cast<int32_t>(prompt.size());
  }
  std::vector<float> batch_logits(static_cast<size_t>(n) * vocab);
  for (int step = 0; step < steps; ++step) {
    std::vector<DecodeItem> items;
    for (int i = 0; i < n; ++i) {
      const int32_t one[1] = {next_batch[i]};
      if (paged) static_cast<PagedKvSequence*>(batch[i].get())->PushTokens(one);
      items.push_back({next_batch[i], position[i], batch[i].get()});
    }
    ASSERT_TRUE(model.ForwardDecodeBatch(items, batch_logits.data()).ok());
    for (int i = 0; i < n; ++i) {
      const int32_t one[1] = {next_solo[i]};
      if (paged) static_cast<PagedKvSequence*>(solo[i].get())->PushTokens(one);
      ASSERT_TRUE(model.Forward(one, position[i], *solo[i], false, logits.data()).ok());
      const float* b = batch_logits.data() + static_cast<size_t>(i) * vocab;
      if (exact) {
        ASSERT_EQ(std::memcmp(b, logits.data(), vocab * sizeof(float)), 0)
            << "batch of " << n << ", item " << i << ", step " << step;
      } else {
        for (int32_t t = 0; t < vocab; ++t) {
          ASSERT_NEAR(b[t], logits[t], tolerance) << "batch of " << n << ", item " << i << ", step " << step;
        }
      }
      next_solo[i] = Argmax(logits.data(), vocab);
      next_batch[i] = Argmax(b, vocab);
      ASSERT_EQ(next_solo[i], next_batch[i]) << "greedy token differs: batch of " << n << ", item " << i;
      ++position[i];
    }
  }
}

class BatchedDecodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOAM_REQUIRE_SHARED(path, "models/stories260K.gguf");
    auto backend = CreateBackend({"cpu", 2});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    auto model = LlamaModel::Load(path, *backend_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<LlamaModel> model_;
};

// Up to max_matvec_batch (32) rows the CPU MatMul runs the batch matvec, whose every row is bit for
// bit the single-row result: batched decode is bit-exact.
TEST_F(BatchedDecodeTest, UpToThirtyTwoItemsAreBitExactDense) {
  for (int n : {1, 2, 5, 8, 16, 32}) CompareBatchedWithSolo(*model_, n, /*paged=*/false, 20, /*exact=*/true, 0);
}

TEST_F(BatchedDecodeTest, UpToThirtyTwoItemsAreBitExactPaged) {
  for (int n : {3, 8, 17}) CompareBatchedWithSolo(*model_, n, /*paged=*/true, 20, /*exact=*/true, 0);
}

// Larger batches take the GEMM path: other summation order, fp32 rounding differences only.
TEST_F(BatchedDecodeTest, FortyItemsAgreeWithinFp32Rounding) {
  CompareBatchedWithSolo(*model_, 40, /*paged=*/false, 20, /*exact=*/false, 1e-4f);
}

TEST_F(BatchedDecodeTest, RejectsBadItems) {
  auto cache = NewCache(*model_, false, 8);
  std::vector<float> logits(2 * model_->config().vocab_size);
  DecodeItem bad_token{model_->config().vocab_size, 0, cache.get()};
  EXPECT_EQ(model_->ForwardDecodeBatch({&bad_token, 1}, logits.data()).code(), absl::StatusCode::kInvalidArgument);
  DecodeItem past_end{5, 8, cache.get()};
  EXPECT_EQ(model_->ForwardDecodeBatch({&past_end, 1}, logits.data()).code(), absl::StatusCode::kOutOfRange);
  DecodeItem twice[2] = {{5, 0, cache.get()}, {6, 0, cache.get()}};
  EXPECT_EQ(model_->ForwardDecodeBatch(twice, logits.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->ForwardDecodeBatch({}, logits.data()).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leoam
