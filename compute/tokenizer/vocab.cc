#include "compute/tokenizer/vocab.h"

#include <algorithm>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "compute/tokenizer/unicode.h"

namespace leoam::tokenizer_internal {
namespace {

constexpr absl::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

bool IsCSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

uint32_t AttrOfType(int32_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

// Token texts llama.cpp recognizes at load time (src/llama-vocab.cpp).
bool OneOf(std::string_view s, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), s) != list.end();
}
bool LooksLikeEot(std::string_view s) {
  return OneOf(s, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                   "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                   "<end_of_utterance>"});
}
#define FW "\xEF\xBD\x9C"  // U+FF5C, DeepSeek's fullwidth bar
#define LB "\xE2\x96\x81"  // U+2581
bool LooksLikeFimPre(std::string_view s) {
  return OneOf(s, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<" FW "fim" LB "begin" FW ">", "<PRE>",
                   LB "<PRE>", "<|code_prefix|>", "<|prefix|>"});
}
bool LooksLikeFimSuf(std::string_view s) {
  return OneOf(s, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<" FW "fim" LB "hole" FW ">", "<SUF>",
                   LB "<SUF>", "<|code_suffix|>", "<|suffix|>"});
}
bool LooksLikeFimMid(std::string_view s) {
  return OneOf(s, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<" FW "fim" LB "end" FW ">", "<MID>",
                   LB "<MID>", "<|code_middle|>", "<|middle|>"});
}
#undef FW
#undef LB
bool LooksLikeFimPad(std::string_view s) {
  return OneOf(s, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
}
bool LooksLikeFimRep(std::string_view s) {
  return OneOf(s, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
}
bool LooksLikeFimSep(std::string_view s) { return s == "<|file_sep|>"; }
bool LooksLikeEog(std::string_view s) {
  return OneOf(s, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                   "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                   "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                   "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["});
}

}  // namespace

absl::StatusOr<Vocab> Vocab::Create(const TokenizerConfig& config) {
  Vocab v;
  RETURN_IF_ERROR(v.Init(config));
  return v;
}

absl::Status Vocab::Init(const TokenizerConfig& config) {
  TokenId bos, eos, unk;
  if (config.model == "llama") {
    kind_ = VocabKind::kSpm;
    bos = 1, eos = 2, unk = 0;
    add_space_prefix_ = true;
    add_bos_ = true;
    clean_spaces_ = false;
    pre_.name = config.pre.empty() ? "default" : config.pre;
  } else if (config.model == "gpt2") {
    kind_ = VocabKind::kBpe;
    ASSIGN_OR_RETURN(pre_, PreTokenizerFor(config.pre));
    bos = pre_.clear_bos ? -1 : 11, eos = 11, unk = -1;
    add_space_prefix_ = false;
    add_bos_ = pre_.add_bos.value_or(false);
    clean_spaces_ = pre_.clean_spaces;
    ignore_merges_ = pre_.ignore_merges;
  } else {
    return absl::UnimplementedError(absl::StrCat("tokenizer.ggml.model '", config.model, "' is not supported"));
  }
  if (config.add_space_prefix) add_space_prefix_ = *config.add_space_prefix;

  const size_t n = config.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return absl::InvalidArgumentError("tokenizer.ggml.tokens is too large");
  if (!config.scores.empty() && config.scores.size() < n) {
    return absl::InvalidArgumentError(absl::StrFormat("tokenizer.ggml.scores has %d entries for %d tokens",
                                                      config.scores.size(), n));
  }
  if (!config.token_types.empty() && config.token_types.size() < n) {
    return absl::InvalidArgumentError(absl::StrFormat("tokenizer.ggml.token_type has %d entries for %d tokens",
                                                      config.token_types.size(), n));
  }
  texts_.resize(n);
  scores_.assign(n, 0.0f);
  attrs_.assign(n, kAttrNormal);
  types_.assign(n, TokenType::kNormal);
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string text = config.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]") : config.tokens[i];
    auto [it, inserted] = token_to_id_.emplace(text, static_cast<TokenId>(i));
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tokenizer.ggml.tokens: duplicate token '%s' has ids %d and %d", text, it->second, i));
    }
    texts_[i] = std::move(text);
    if (!config.scores.empty()) scores_[i] = config.scores[i];
    if (!config.token_types.empty()) {
      const int32_t t = config.token_types[i];
      attrs_[i] = AttrOfType(t);
      types_[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kUndefined;
    }
  }

  if (kind_ == VocabKind::kBpe) {
    merge_ranks_.reserve(config.merges.size());
    for (size_t i = 0; i < config.merges.size(); ++i) {
      const std::string& m = config.merges[i];
      const size_t pos = m.find(' ', 1);
      std::string key = pos == std::string::npos ? std::string(" ") : m;
      merge_ranks_.emplace(std::move(key), static_cast<int>(i));  // the first rank of a pair wins
    }
  }

  auto pick = [&](TokenId fallback, const std::optional<int64_t>& given) -> TokenId {
    if (fallback >= static_cast<int64_t>(n)) fallback = -1;
    if (given && *given >= 0 && *given < static_cast<int64_t>(n)) return static_cast<TokenId>(*given);
    return fallback;
  };
  bos_ = pick(bos, config.bos_id);
  eos_ = pick(eos, config.eos_id);
  unk_ = pick(unk, config.unk_id);
  const TokenId eot = pick(-1, config.eot_id);
  const TokenId eom = pick(-1, config.eom_id);

  if (config.add_bos) add_bos_ = *config.add_bos;
  if (config.add_eos) add_eos_ = *config.add_eos;
  if (add_bos_ && bos_ < 0) {
    return absl::InvalidArgumentError(
        "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
  }
  if (add_eos_ && eos_ < 0) {
    return absl::InvalidArgumentError(
        "tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
  }
  ApplyLoadTimeFixups(config, eot, eom);
  return absl::OkStatus();
}

void Vocab::ApplyLoadTimeFixups(const TokenizerConfig& config, TokenId eot, TokenId eom) {
  const TokenId n = size();
  TokenId fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  // Like llama.cpp, control-looking tokens get the control attribute even when the file says
  // otherwise. (llama.cpp walks a hash map here; where several texts qualify for one role its
  // pick is unspecified, ours is the lowest id.)
  for (TokenId id = 0; id < n; ++id) {
    const std::string& t = texts_[id];
    if (eot < 0 && LooksLikeEot(t)) eot = id, attrs_[id] |= kAttrControl;
    if (eom < 0 && t == "<|eom_id|>") eom = id, attrs_[id] |= kAttrControl;
    if (fim_pre < 0 && LooksLikeFimPre(t)) fim_pre = id, attrs_[id] |= kAttrControl;
    if (fim_suf < 0 && LooksLikeFimSuf(t)) fim_suf = id, attrs_[id] |= kAttrControl;
    if (fim_mid < 0 && LooksLikeFimMid(t)) fim_mid = id, attrs_[id] |= kAttrControl;
    if (fim_pad < 0 && LooksLikeFimPad(t)) fim_pad = id, attrs_[id] |= kAttrControl;
    if (fim_rep < 0 && LooksLikeFimRep(t)) fim_rep = id, attrs_[id] |= kAttrControl;
    if (fim_sep < 0 && LooksLikeFimSep(t)) fim_sep = id, attrs_[id] |= kAttrControl;
  }
  for (TokenId id = 0; id < n; ++id) {
    if ((attrs_[id] & kAttrControl) && absl::StrContains(texts_[id], "unused")) attrs_[id] |= kAttrUnused;
  }
  for (TokenId id : {fim_pad, fim_rep, fim_sep}) {
    if (id >= 0) eog_.insert(id);
  }
  for (TokenId id = 0; id < n; ++id) {
    if (LooksLikeEog(texts_[id])) {
      eog_.insert(id);
      attrs_[id] |= kAttrControl;
    }
  }
  for (TokenId id = 0; id < n; ++id) {
    const std::string& t = texts_[id];
    if (t == "<|channel|>" || t == "<|message|>" || t == "<|start|>" || t == "<|constrain|>") {
      attrs_[id] = kAttrUserDefined;
    }
  }
  for (TokenId id : {eos_, eot, eom}) {
    if (id >= 0) eog_.insert(id);
  }
  // o200k_harmony / solar-open: "<|end|>" is not an end of generation there.
  {
    bool has_return = false, has_call = false, has_flush = false;
    TokenId end_id = -1;
    for (TokenId id : eog_) {
      const std::string& t = texts_[id];
      if (t == "<|return|>") has_return = true;
      else if (t == "<|call|>" || t == "<|calls|>") has_call = true;
      else if (t == "<|flush|>") has_flush = true;
      else if (t == "<|end|>") end_id = id;
    }
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
      eog_.erase(end_id);
      attrs_[end_id] = kAttrUserDefined;
    }
  }
  // gemma4 / paddleocr: "</s>" is not an end of generation when "<|tool_response>" is.
  {
    bool has_tool_response = false;
    TokenId s_id = -1;
    for (TokenId id : eog_) {
      if (texts_[id] == "<|tool_response>") has_tool_response = true;
      else if (texts_[id] == "</s>") s_id = id;
    }
    if (has_tool_response && s_id >= 0) {
      eog_.erase(s_id);
      attrs_[s_id] = kAttrNormal;
    }
  }

  for (TokenId id = 0; id < n; ++id) {
    if (attrs_[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_cache_.push_back(id);
  }
  // Longest first; equal lengths by id so the order is deterministic.
  std::stable_sort(special_cache_.begin(), special_cache_.end(),
                   [&](TokenId a, TokenId b) { return texts_[a].size() > texts_[b].size(); });

  // Per-model attributes llama.cpp sets by name.
  std::string name = config.model_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (absl::StrContains(name, "phi-3") || absl::StrContains(name, "phi3")) {
    for (TokenId id : special_cache_) attrs_[id] |= kAttrRstrip;
    auto set_rstrip = [&](std::string_view text, bool on) {
      const TokenId id = Find(text);
      if (id < 0) return;
      attrs_[id] = on ? (attrs_[id] | kAttrRstrip) : (attrs_[id] & ~kAttrRstrip);
    };
    set_rstrip("</s>", true);
    for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) set_rstrip(t, false);
  }
}

int Vocab::MergeRank(std::string_view left, std::string_view right, std::string* scratch) const {
  scratch->assign(left);
  scratch->push_back(' ');
  scratch->append(right);
  auto it = merge_ranks_.find(*scratch);
  return it == merge_ranks_.end() ? -1 : it->second;
}

std::vector<Fragment> Vocab::Partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({false, -1, 0, text.size()});
  std::vector<Fragment> next;
  for (TokenId special : special_cache_) {
    const uint32_t attr = attrs_[special];
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& st = texts_[special];
    // Cheap rejection: most special texts never occur in the input.
    if (text.find(st) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.is_token) {
        next.push_back(f);
        continue;
      }
      size_t off = f.offset, len = f.length;
      while (true) {
        const size_t match = text.substr(0, off + len).find(st, off);
        if (match == std::string_view::npos) {
          if (len > 0) next.push_back({false, -1, off, len});
          break;
        }
        if (match > off) {
          size_t left_len = match - off;
          if (attr & kAttrLstrip) {
            while (left_len > 0 && IsCSpace(text[off + left_len - 1])) --left_len;
          }
          if (left_len > 0) next.push_back({false, -1, off, left_len});
        }
        next.push_back({true, special, 0, 0});
        if (match + st.size() >= off + len) break;
        size_t right_off = match + st.size();
        size_t right_len = off + len - right_off;
        if (attr & kAttrRstrip) {
          while (right_len > 0 && IsCSpace(text[right_off])) ++right_off, --right_len;
        }
        off = right_off;
        len = right_len;
      }
    }
    frags.swap(next);
  }
  return frags;
}

std::string Vocab::Piece(TokenId id, bool show_special) const {
  if (!Valid(id)) return "";
  const uint32_t attr = attrs_[id];
  if (!show_special && (attr & (kAttrUnknown | kAttrControl))) return "";
  const std::string& text = texts_[id];
  if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return text;
  if (attr & kAttrNormal) {
    if (kind_ == VocabKind::kSpm) return absl::StrReplaceAll(text, {{kSpaceMarker, " "}});
    std::string out;
    out.reserve(text.size());
    for (uint32_t cp : unicode::DecodeUtf8(text)) {
      const int byte = unicode::UnicodeToByte(cp);
      if (byte >= 0) {
        out.push_back(static_cast<char>(byte));
      } else {
        // Not in the byte alphabet: llama.cpp writes a marker naming the bytes.
        std::string utf8;
        unicode::AppendUtf8(cp, &utf8);
        out += "[UNK_BYTE_0x";
        for (unsigned char c : utf8) out += absl::StrFormat("%02x", c);
        out += text + "]";
      }
    }
    return out;
  }
  if (attr & kAttrByte) {
    if (text.size() >= 6) return std::string(1, static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16)));
    return "";
  }
  return "";
}

std::string Vocab::Detokenize(const std::vector<TokenId>& ids, bool show_special) const {
  std::string text;
  bool remove_space = add_space_prefix_;
  for (TokenId id : ids) {
    std::string piece = Piece(id, show_special);
    size_t skip = (remove_space && !piece.empty() && piece[0] == ' ') ? 1 : 0;
    text.append(piece, skip, std::string::npos);
    remove_space = false;
  }
  if (!clean_spaces_ || text.empty()) return text;

  // llama.cpp's three in-place clean-up passes, kept in their in-place form so that corner
  // cases (" ' ' ", ...) come out identical.
  int32_t total = static_cast<int32_t>(text.size());
  char* t = text.data();
  {  // " ?", " !", " .", " ,": drop the space
    const int32_t total1 = total;
    total = 1;
    for (int32_t i = 1; i < total1; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
      t[total++] = x;
    }
  }
  {  // " ' ": drop both spaces
    const int32_t total2 = total;
    total = 1;
    for (int32_t i = 1; i < total2; ++i) {
      const char x = t[i];
      if (x == '\'' && i + 1 < total2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
        --total;
        t[++i] = '\0';
      }
      t[total++] = x;
    }
  }
  {  // " 's", " 'm", " 're", " 've": drop the space
    const int32_t total3 = total;
    total = 1;
    for (int32_t i = 1; i < total3; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
        const char x1 = t[i + 1];
        if (x1 == 's' || x1 == 'm') {
          --total;
        } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
          const char x2 = t[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
        }
      }
      t[total++] = x;
    }
  }
  text.resize(total);
  return text;
}

}  // namespace leoam::tokenizer_internal
