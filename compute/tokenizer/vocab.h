// Vocab: the immutable vocabulary shared by the SPM and BPE encoders: token texts, scores,
// attributes (llama.cpp's token attrs, including the fix-ups it applies at load time),
// special ids, the end-of-generation set, and the special-token partitioning of input text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "compute/tokenizer/pretokenizer.h"
#include "compute/tokenizer/tokenizer_config.h"

namespace leoam::tokenizer_internal {

// llama.cpp's llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
  kAttrLstrip = 1 << 7,
  kAttrRstrip = 1 << 8,
};

enum class VocabKind { kSpm, kBpe };

// A piece of input after special-token partitioning: raw text or one special token.
struct Fragment {
  bool is_token = false;
  TokenId token = -1;
  size_t offset = 0, length = 0;  // raw text: byte range of the input
};

class Vocab {
 public:
  static absl::StatusOr<Vocab> Create(const TokenizerConfig& config);

  VocabKind kind() const { return kind_; }
  int32_t size() const { return static_cast<int32_t>(texts_.size()); }
  const std::string& text(TokenId id) const { return texts_[id]; }
  float score(TokenId id) const { return scores_[id]; }
  uint32_t attr(TokenId id) const { return attrs_[id]; }
  TokenType type(TokenId id) const { return types_[id]; }
  bool Valid(TokenId id) const { return id >= 0 && id < size(); }

  // -1 when absent.
  TokenId Find(std::string_view text) const {
    auto it = token_to_id_.find(absl::string_view(text.data(), text.size()));
    return it == token_to_id_.end() ? -1 : it->second;
  }
  // BPE merge rank of (left, right), -1 when absent. `scratch` avoids an allocation per call.
  int MergeRank(std::string_view left, std::string_view right, std::string* scratch) const;

  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }
  bool ignore_merges() const { return ignore_merges_; }
  const PreTokenizerSpec& pre() const { return pre_; }
  bool IsEog(TokenId id) const { return eog_.contains(id); }

  // Splits `text` around special tokens as llama.cpp's tokenizer_st_partition does: longest
  // special texts first; control/unknown ones only when `parse_special`, user-defined ones
  // always; lstrip/rstrip attributes eat adjacent whitespace.
  std::vector<Fragment> Partition(std::string_view text, bool parse_special) const;

  // llama.cpp's token_to_piece (without lstrip).
  std::string Piece(TokenId id, bool show_special) const;
  // llama.cpp's detokenize(remove_special = false).
  std::string Detokenize(const std::vector<TokenId>& ids, bool show_special) const;

 private:
  Vocab() = default;
  absl::Status Init(const TokenizerConfig& config);
  void ApplyLoadTimeFixups(const TokenizerConfig& config, TokenId eot, TokenId eom);

  VocabKind kind_ = VocabKind::kSpm;
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  std::vector<TokenType> types_;
  absl::flat_hash_map<std::string, TokenId> token_to_id_;
  absl::flat_hash_map<std::string, int> merge_ranks_;  // "left right" -> rank
  std::vector<TokenId> special_cache_;                 // partition order: longest text first
  absl::flat_hash_set<TokenId> eog_;
  PreTokenizerSpec pre_;
  TokenId bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false, clean_spaces_ = false;
  bool ignore_merges_ = false;
};

}  // namespace leoam::tokenizer_internal
