// The generation loop: stop conditions, context limit, seeded sampling, and that running a prompt
// in one chunk or token by token gives the same logits.
#include <cmath>
#include <memory>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/llama_model.h"
#include "compute/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {

class GenerateTest : public ::testing::Test {
 protected:
  void Load(int prefill_chunk = 512) {
    LEOAM_REQUIRE_SHARED(path, "models/stories260K.gguf");
    auto backend = kernels::CpuBackend::Create({.num_threads = 1});
    ASSERT_TRUE(backend.ok());
    backend_ = std::move(*backend);
    auto model = LlamaModel::Load(path, *backend_, {.prefill_chunk = prefill_chunk});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    auto tokenizer = Tokenizer::FromGguf(model_->file());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    prompt_ = tokenizer_->Encode("Once upon a time", {.add_bos = true});
  }
  std::unique_ptr<kernels::CpuBackend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int32_t> prompt_;
};

TEST_F(GenerateTest, MaxTokensEndsWithLength) {
  Load();
  if (!model_) return;
  auto r = Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = 7});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens.size(), 7u);
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->prompt_tokens, static_cast<int32_t>(prompt_.size()));
}

TEST_F(GenerateTest, StopTokenEndsGenerationAndIsNotEmitted) {
  Load();
  if (!model_) return;
  auto greedy = Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = 20});
  ASSERT_TRUE(greedy.ok());
  ASSERT_GE(greedy->tokens.size(), 5u);
  const int32_t stop = greedy->tokens[4];
  // Stop at the first occurrence of that token.
  size_t first = 0;
  while (greedy->tokens[first] != stop) ++first;
  auto r = Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = 20, .stop_tokens = {stop}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kStop);
  EXPECT_EQ(r->tokens, std::vector<int32_t>(greedy->tokens.begin(), greedy->tokens.begin() + first));
}

TEST_F(GenerateTest, ContextLimitEndsWithContextFull) {
  Load();
  if (!model_) return;
  const int32_t limit = static_cast<int32_t>(prompt_.size()) + 3;
  auto r = Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = 50, .max_context = limit});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish_reason, FinishReason::kContextFull);
  // The cache holds `limit` positions; one more token is sampled from the last one.
  EXPECT_EQ(r->tokens.size(), 4u);
  auto too_long = Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = 5, .max_context = 2});
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(GenerateTest, SeededSamplingIsDeterministic) {
  Load();
  if (!model_) return;
  GenerateOptions options{.max_tokens = 40, .sampling = {.temperature = 1.0f, .top_k = 40, .top_p = 0.95f, .seed = 11}};
  auto a = Generate(*model_, tokenizer_.get(), prompt_, options);
  auto b = Generate(*model_, tokenizer_.get(), prompt_, options);
  options.sampling.seed = 12;
  auto c = Generate(*model_, tokenizer_.get(), prompt_, options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_NE(a->tokens, c->tokens);
}

TEST_F(GenerateTest, BadOptionsAreRejected) {
  Load();
  if (!model_) return;
  EXPECT_EQ(Generate(*model_, tokenizer_.get(), {}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(*model_, tokenizer_.get(), prompt_, {.max_tokens = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(*model_, tokenizer_.get(), prompt_, {.sampling = {.temperature = -1.0f}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_EQ(Generate(*model_, tokenizer_.get(), bad, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GenerateTest, ChunkedAndTokenByTokenPrefillGiveTheSameLogits) {
  Load(/*prefill_chunk=*/512);
  if (!model_) return;
  std::vector<int32_t> prompt = tokenizer_->Encode(
      "Lily and Tom went to the park. They saw a big dog and a small cat. The dog was happy.", {.add_bos = true});
  auto whole = Generate(*model_, tokenizer_.get(), prompt, {.max_tokens = 0, .keep_prompt_logits = true});
  ASSERT_TRUE(whole.ok());
  Load(/*prefill_chunk=*/1);
  auto stepwise = Generate(*model_, tokenizer_.get(), prompt, {.max_tokens = 0, .keep_prompt_logits = true});
  ASSERT_TRUE(stepwise.ok());
  ASSERT_EQ(whole->prompt_logits.size(), stepwise->prompt_logits.size());
  ASSERT_EQ(whole->prompt_logits.size(), prompt.size() * model_->config().vocab_size);
  double max_diff = 0.0;
  for (size_t i = 0; i < whole->prompt_logits.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(whole->prompt_logits[i]) - stepwise->prompt_logits[i]));
  }
  // Same math, different summation order (GEMM vs matvec): fp32 rounding only.
  EXPECT_LT(max_diff, 1e-3);
}

}  // namespace
}  // namespace leoam
