// stories260K (a real SPM model): prompts encode to the reference prompt_ids, and the reference
// continuations decode to the reference text.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/shared_data.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace leoam {
namespace {

// Minimal reader for the flat JSON objects of stories260K.greedy.jsonl.
bool ParseJsonString(const std::string& line, const std::string& key, std::string* out) {
  size_t pos = line.find("\"" + key + "\":");
  if (pos == std::string::npos) return false;
  pos = line.find('"', pos + key.size() + 3);
  if (pos == std::string::npos) return false;
  out->clear();
  for (size_t i = pos + 1; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') return true;
    if (c == '\\' && i + 1 < line.size()) {
      c = line[++i];
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c == 'u') return false;  // not needed by this file
    }
    out->push_back(c);
  }
  return false;
}

bool ParseJsonIntArray(const std::string& line, const std::string& key, std::vector<TokenId>* out) {
  size_t pos = line.find("\"" + key + "\":");
  if (pos == std::string::npos) return false;
  const size_t open = line.find('[', pos), close = line.find(']', pos);
  if (open == std::string::npos || close == std::string::npos) return false;
  out->clear();
  std::string body = line.substr(open + 1, close - open - 1);
  for (char& c : body) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(body);
  for (long v; in >> v;) out->push_back(static_cast<TokenId>(v));
  return true;
}

struct Reference {
  std::string prompt, text;
  std::vector<TokenId> prompt_ids, generated_ids;
};

std::vector<Reference> ReadReferences(const std::string& path) {
  std::vector<Reference> refs;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    Reference r;
    EXPECT_TRUE(ParseJsonString(line, "prompt", &r.prompt)) << line;
    EXPECT_TRUE(ParseJsonString(line, "text", &r.text)) << line;
    EXPECT_TRUE(ParseJsonIntArray(line, "prompt_ids", &r.prompt_ids)) << line;
    EXPECT_TRUE(ParseJsonIntArray(line, "generated_ids", &r.generated_ids)) << line;
    refs.push_back(std::move(r));
  }
  return refs;
}

TEST(Stories260K, OnceUponATime) {
  LEOAM_REQUIRE_SHARED(path, "models/stories260K.gguf");
  auto tokenizer = testing::LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 512);
  EXPECT_EQ((*tokenizer)->bos_id(), 1);
  EXPECT_EQ((*tokenizer)->eos_id(), 2);
  EXPECT_TRUE((*tokenizer)->adds_bos());
  EXPECT_EQ((*tokenizer)->Encode("Once upon a time", {}), (std::vector<TokenId>{1, 403, 407, 261, 378}));
  EncodeOptions no_bos;
  no_bos.add_bos = false;
  EXPECT_EQ((*tokenizer)->Encode("Once upon a time", no_bos), (std::vector<TokenId>{403, 407, 261, 378}));
  EXPECT_TRUE((*tokenizer)->IsEndOfGeneration(2));
  EXPECT_FALSE((*tokenizer)->IsEndOfGeneration(403));
}

TEST(Stories260K, EveryReferencePromptEncodes) {
  LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl, "models/stories260K.greedy.jsonl");
  auto tokenizer = testing::LoadTokenizer(model);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto refs = ReadReferences(jsonl);
  ASSERT_FALSE(refs.empty());
  for (const Reference& r : refs) {
    EXPECT_EQ((*tokenizer)->Encode(r.prompt, {}), r.prompt_ids) << "prompt '" << r.prompt << "'";
  }
}

TEST(Stories260K, ReferenceContinuationsDecodeToReferenceText) {
  LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl, "models/stories260K.greedy.jsonl");
  auto tokenizer = testing::LoadTokenizer(model);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const Reference& r : ReadReferences(jsonl)) {
    // Without the BOS, the first piece's dummy-prefix space is dropped, as the reference prints.
    std::vector<TokenId> ids(r.prompt_ids.begin() + 1, r.prompt_ids.end());
    ids.insert(ids.end(), r.generated_ids.begin(), r.generated_ids.end());
    EXPECT_EQ((*tokenizer)->Decode(ids), r.text) << "prompt '" << r.prompt << "'";
  }
}

// Streaming the whole sequence (BOS, prompt, continuation) from the start of the text prints what
// the reference printed.
TEST(Stories260K, StreamingWholeSequenceGivesReferenceText) {
  LEOAM_REQUIRE_SHARED(model, "models/stories260K.gguf");
  LEOAM_REQUIRE_SHARED(jsonl, "models/stories260K.greedy.jsonl");
  auto tokenizer = testing::LoadTokenizer(model);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const Reference& r : ReadReferences(jsonl)) {
    StreamingDetokenizer stream(**tokenizer, /*at_text_start=*/true);
    std::string text;
    for (TokenId id : r.prompt_ids) text += stream.Push(id);
    for (TokenId id : r.generated_ids) text += stream.Push(id);
    text += stream.Flush();
    EXPECT_EQ(text, r.text) << "prompt '" << r.prompt << "'";
  }
}

}  // namespace
}  // namespace leoam
