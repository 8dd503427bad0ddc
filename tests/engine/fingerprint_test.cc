// Model fingerprint and page chain keys: content-based, layout-dependent, chained.
#include "compute/model/fingerprint.h"

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "compute/gguf/gguf_file.h"
#include "compute/model/model_config.h"
#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/temp_dir.h"

namespace leoam {
namespace {

TEST(HashBytes128Test, DependsOnEveryByteLengthAndSeed) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  std::set<Hash128> seen;
  seen.insert(HashBytes128(data.data(), data.size()));
  seen.insert(HashBytes128(data.data(), data.size(), 1));
  for (size_t n : {0, 1, 15, 16, 17, 999}) seen.insert(HashBytes128(data.data(), n));
  for (size_t i : {0, 500, 999}) {
    std::vector<uint8_t> flipped = data;
    flipped[i] ^= 1;
    seen.insert(HashBytes128(flipped.data(), flipped.size()));
  }
  EXPECT_EQ(seen.size(), 11u);
  EXPECT_EQ(HashBytes128(data.data(), data.size()), HashBytes128(data.data(), data.size()));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FingerprintTest, ContentHashSeesTensorBytesAndIgnoresThreads) {
  LEOAM_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  auto file = gguf::GgufFile::Open(model_path);
  ASSERT_TRUE(file.ok()) << file.status();
  const Hash128 one = GgufContentHash(**file, 1);
  EXPECT_EQ(GgufContentHash(**file, 3), one);

  // The same file with one tensor byte changed (the last byte of the data section).
  testing::TempDir dir;
  std::string bytes = ReadAll(model_path);
  ASSERT_EQ(bytes.size(), (*file)->file_size());
  bytes.back() ^= 0x5a;
  const std::string copy = dir.File("changed.gguf");
  std::ofstream(copy, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto changed = gguf::GgufFile::Open(copy);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_NE(GgufContentHash(**changed, 2), one);

  // The layout is part of the fingerprint.
  auto config = ModelConfig::FromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  const Hash128 fp16 = ModelFingerprint(one, *config, {.page_size = 16});
  EXPECT_EQ(ModelFingerprint(one, *config, {.page_size = 16}), fp16);
  EXPECT_NE(ModelFingerprint(one, *config, {.page_size = 32}), fp16);
  EXPECT_NE(ModelFingerprint(one, *config, {.page_size = 16, .dtype = "f16"}), fp16);
  ModelConfig other_rope = *config;
  other_rope.rope_freq_base *= 2;
  EXPECT_NE(ModelFingerprint(one, other_rope, {.page_size = 16}), fp16);
  EXPECT_EQ(HashHex(fp16).size(), 32u);
}

TEST(PageChainHashTest, ChainsOverParentAndTokens) {
  Hash128 fp{};
  fp[0] = 1;
  const std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
  const Hash128 h0 = PageChainHash(fp, nullptr, a);
  EXPECT_EQ(PageChainHash(fp, nullptr, a), h0);
  EXPECT_NE(PageChainHash(fp, nullptr, b), h0);
  Hash128 fp2 = fp;
  fp2[15] = 9;
  EXPECT_NE(PageChainHash(fp2, nullptr, a), h0);
  const Hash128 h1 = PageChainHash(fp, &h0, b);
  const Hash128 other_parent = PageChainHash(fp, nullptr, b);
  EXPECT_NE(PageChainHash(fp, &other_parent, b), h1);
  EXPECT_NE(h1, other_parent);  // a first page and a later page with the same tokens differ
}

}  // namespace
}  // namespace leoam
