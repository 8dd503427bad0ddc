// leoam-compute runs a long tiered prompt layer-major (one chunk of one layer per scheduler turn)
// when its KV exceeds the device budget: the progress messages say so and move layer by layer,
// and the tokens are the ones the token-major order gives (each server with its own store, so
// neither reuses the other's pages).
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/service/compute_process.h"
#include "tests/service/service_client.h"
#include "tests/testing/temp_dir.h"

namespace leoam::service::testing {
namespace {

namespace v1 = ::leoam::v1;
using ::leoam::kvstore::testing::KvStoreProcess;

// Starts a store and a compute process on `model` with `order`, runs the long prompt once.
Outcome RunWithOrder(const ::leoam::testing::TempDir& dir, const std::string& model, const std::string& order) {
  const std::string kv_dir = dir.File("kv-" + order);
  std::filesystem::create_directories(kv_dir);
  auto store = KvStoreProcess::Start({kv_dir, {}});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return {};
  // ~18 KiB of KV per position: 2 MiB hold ~113 positions, the 300-token prompt needs ~5.4 MiB (and
  // a layer leoam keeps dense attends all 19 of its pages at once).
  auto proc = ComputeProcess::Start({dir.path(), model,
                                     {"--mode=leoam", "--kvstore=" + (*store)->target(), "--device-budget=2MiB",
                                      "--prefill-chunk=64", "--prefill-order=" + order}});
  EXPECT_TRUE(proc.ok()) << proc.status();
  if (!proc.ok()) return {};
  auto stub = (*proc)->NewStub();
  EXPECT_TRUE(WaitForServer(*stub, [](const auto& r) { return r.kvstore_connected(); }, absl::Seconds(10)));
  v1::GenerateRequest request = Greedy(LongPrompt(300), 12);
  request.set_ignore_eos(true);
  request.set_report_progress(true);
  Outcome o = RunGenerate(*stub, request);
  EXPECT_TRUE(o.status.ok()) << o.status.error_message() << (*proc)->Log();
  EXPECT_EQ(o.final.finish_reason(), v1::FINISH_REASON_LENGTH) << o.final.error() << (*proc)->Log();
  EXPECT_EQ((*proc)->Stop(), 0) << (*proc)->Log();
  return o;
}

TEST(LayerMajorServiceTest, LongTieredPromptRunsLayerMajorWithTheSameTokens) {
  ::leoam::testing::TempDir dir;
  const std::string model = dir.File("slow.gguf");
  ASSERT_TRUE(MakeSlowSyntheticModel(model, dir.path()).ok());

  Outcome layer_major = RunWithOrder(dir, model, "auto");
  ASSERT_EQ(layer_major.tokens.size(), 12u);
  ASSERT_FALSE(layer_major.progress.empty());
  int32_t layers = 0, last_layers_done = -1, last_processed = -1;
  for (const v1::PrefillProgress& p : layer_major.progress) {
    EXPECT_TRUE(p.layer_major());
    EXPECT_EQ(p.prompt_tokens(), 300);
    layers = p.num_layers();
    EXPECT_GE(p.layers_done(), last_layers_done);
    EXPECT_GE(p.processed_tokens(), last_processed);
    last_layers_done = p.layers_done();
    last_processed = p.processed_tokens();
  }
  ASSERT_GT(layers, 1);
  EXPECT_EQ(last_layers_done, layers);
  EXPECT_EQ(last_processed, 300);
  // One message per (layer, chunk): 300 tokens in chunks of 64 are 5 chunks per layer.
  EXPECT_EQ(layer_major.progress.size(), static_cast<size_t>(layers * 5));

  Outcome token_major = RunWithOrder(dir, model, "token-major");
  ASSERT_EQ(token_major.tokens.size(), 12u);
  for (const v1::PrefillProgress& p : token_major.progress) EXPECT_FALSE(p.layer_major());
  EXPECT_EQ(token_major.progress.size(), 5u);
  EXPECT_EQ(layer_major.tokens, token_major.tokens);
}

}  // namespace
}  // namespace leoam::service::testing
