// A small hand-made SPM vocabulary for tests that need exact control over the tokens.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "compute/tokenizer/tokenizer_config.h"

namespace leoam::testing {

// ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the `pieces` (normal, scores
// decreasing in order: earlier pieces merge first), then <|im_end|> (control) and <|user|>
// (user-defined).
inline TokenizerConfig SyntheticSpmConfig(const std::vector<std::string>& pieces) {
  TokenizerConfig c;
  c.model = "llama";
  auto add = [&](const std::string& text, float score, TokenType type) {
    c.tokens.push_back(text);
    c.scores.push_back(score);
    c.token_types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    add(hex, 0, TokenType::kByte);
  }
  float score = -1;
  for (const std::string& p : pieces) add(p, score--, TokenType::kNormal);
  add("<|im_end|>", 0, TokenType::kControl);
  add("<|user|>", 0, TokenType::kUserDefined);
  return c;
}

inline constexpr int kFirstPiece = 259;

}  // namespace leoam::testing
