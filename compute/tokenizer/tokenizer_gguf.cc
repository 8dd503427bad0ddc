// Tokenizer::FromGguf: reads the tokenizer.ggml.* metadata into a TokenizerConfig.
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/tokenizer/tokenizer_config.h"

namespace leoam {
namespace {

// Every metadata problem is reported as INVALID_ARGUMENT naming the key.
absl::Status KeyError(std::string_view key, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(key), ": ", status.message()));
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const gguf::GgufFile& file, std::string_view key) {
  if (!file.HasKey(key)) return std::optional<int64_t>();
  auto v = file.GetInt(key);
  if (!v.ok()) return KeyError(key, v.status());
  return std::optional<int64_t>(*v);
}

absl::StatusOr<std::optional<bool>> OptionalBool(const gguf::GgufFile& file, std::string_view key) {
  if (!file.HasKey(key)) return std::optional<bool>();
  auto v = file.GetBool(key);
  if (!v.ok()) return KeyError(key, v.status());
  return std::optional<bool>(*v);
}

absl::StatusOr<std::string> RequiredString(const gguf::GgufFile& file, std::string_view key) {
  if (!file.HasKey(key)) return absl::InvalidArgumentError(absl::StrCat(std::string(key), " is missing"));
  auto v = file.GetString(key);
  if (!v.ok()) return KeyError(key, v.status());
  return *std::move(v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const gguf::GgufFile& file) {
  TokenizerConfig config;
  ASSIGN_OR_RETURN(config.model, RequiredString(file, "tokenizer.ggml.model"));
  if (config.model != "llama" && config.model != "gpt2") {
    return absl::UnimplementedError(absl::StrCat("tokenizer.ggml.model '", config.model, "' is not supported"));
  }
  if (file.HasKey("tokenizer.ggml.pre")) {
    ASSIGN_OR_RETURN(config.pre, RequiredString(file, "tokenizer.ggml.pre"));
  }

  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  if (!file.HasKey(kTokens)) return absl::InvalidArgumentError(absl::StrCat(std::string(kTokens), " is missing"));
  {
    auto tokens = file.GetStringArray(kTokens);
    if (!tokens.ok()) return KeyError(kTokens, tokens.status());
    config.tokens = *std::move(tokens);
  }
  constexpr std::string_view kScores = "tokenizer.ggml.scores";
  if (file.HasKey(kScores)) {
    auto scores = file.GetFloatArray(kScores);
    if (!scores.ok()) return KeyError(kScores, scores.status());
    config.scores.assign(scores->begin(), scores->end());
  }
  constexpr std::string_view kTypes = "tokenizer.ggml.token_type";
  if (file.HasKey(kTypes)) {
    auto types = file.GetIntArray(kTypes);
    if (!types.ok()) return KeyError(kTypes, types.status());
    config.token_types.reserve(types->size());
    for (int64_t t : *types) config.token_types.push_back(static_cast<int32_t>(t));
  }
  constexpr std::string_view kMerges = "tokenizer.ggml.merges";
  if (config.model == "gpt2") {
    if (!file.HasKey(kMerges)) return absl::InvalidArgumentError(absl::StrCat(std::string(kMerges), " is missing"));
    auto merges = file.GetStringArray(kMerges);
    if (!merges.ok()) return KeyError(kMerges, merges.status());
    config.merges = *std::move(merges);
  }

  ASSIGN_OR_RETURN(config.bos_id, OptionalInt(file, "tokenizer.ggml.bos_token_id"));
  ASSIGN_OR_RETURN(config.eos_id, OptionalInt(file, "tokenizer.ggml.eos_token_id"));
  ASSIGN_OR_RETURN(config.eot_id, OptionalInt(file, "tokenizer.ggml.eot_token_id"));
  ASSIGN_OR_RETURN(config.eom_id, OptionalInt(file, "tokenizer.ggml.eom_token_id"));
  ASSIGN_OR_RETURN(config.unk_id, OptionalInt(file, "tokenizer.ggml.unknown_token_id"));
  ASSIGN_OR_RETURN(config.sep_id, OptionalInt(file, "tokenizer.ggml.seperator_token_id"));
  ASSIGN_OR_RETURN(config.pad_id, OptionalInt(file, "tokenizer.ggml.padding_token_id"));
  ASSIGN_OR_RETURN(config.add_bos, OptionalBool(file, "tokenizer.ggml.add_bos_token"));
  ASSIGN_OR_RETURN(config.add_eos, OptionalBool(file, "tokenizer.ggml.add_eos_token"));
  ASSIGN_OR_RETURN(config.add_space_prefix, OptionalBool(file, "tokenizer.ggml.add_space_prefix"));
  if (file.HasKey("general.name")) {
    auto name = file.GetString("general.name");
    if (name.ok()) config.model_name = *name;
  }
  return NewTokenizer(config);
}

}  // namespace leoam
