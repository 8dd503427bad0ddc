// stories260K (a real trained Llama model): our tokenizer and fp32 forward pass reproduce the
// reference greedy generations of llama2.c exactly, including the stop on a generated BOS.
#include <memory>
#include <vector>

#include "compute/engine/generate.h"
#include "compute/model/llama_model.h"
#include "compute/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/testing/reference_generations.h"
#include "tests/testing/shared_data.h"

namespace leoam {
namespace {


void CheckReferences(int threads, int prefill_chunk) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl_path, "models/stories260K.greedy.jsonl");
  auto refs = testing::ReadReferenceGenerations(jsonl_path);
  ASSERT_TRUE(refs.ok()) << refs.status();
  ASSERT_EQ(refs->size(), 5u);

  auto backend = kernels::CpuBackend::Create({.num_threads = threads});
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto model = LlamaModel::Load(model_path, **backend, {.prefill_chunk = prefill_chunk});
  ASSERT_TRUE(model.ok()) << model.status();
  auto tokenizer = Tokenizer::FromGguf((*model)->file());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  for (const testing::ReferenceGeneration& ref : *refs) {
    SCOPED_TRACE("prompt: \"" + ref.prompt + "\"");
    std::vector<int32_t> prompt = (*tokenizer)->Encode(ref.prompt, {.add_bos = true});
    EXPECT_EQ(prompt, ref.prompt_ids);
    GenerateOptions options;  // greedy by default
    // llama2.c runs `positions` forward passes; the last sampled token is not forwarded.
    options.max_tokens = ref.positions - static_cast<int32_t>(ref.prompt_ids.size()) + 1;
    options.max_context = ref.positions;
    auto result = Generate(**model, tokenizer->get(), ref.prompt_ids, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->tokens, ref.generated_ids);
    const bool reference_stopped_early =
        static_cast<int32_t>(ref.generated_ids.size()) < options.max_tokens;
    EXPECT_EQ(result->finish_reason, reference_stopped_early ? FinishReason::kStop : FinishReason::kLength);
  }
}

TEST(Stories260KTest, ReproducesReferenceGreedyGenerations) { CheckReferences(1, 512); }
TEST(Stories260KTest, ReproducesReferenceWithTwoThreads) { CheckReferences(2, 512); }
TEST(Stories260KTest, ReproducesReferenceTokenByTokenPrefill) { CheckReferences(2, 1); }

}  // namespace
}  // namespace leoam
