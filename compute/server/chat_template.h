// Chat templates: renders chat messages into a prompt the way a model's chat template would.
//
// A full Jinja engine is out of scope. Like llama.cpp's built-in templates, the GGUF's
// tokenizer.chat_template text is recognized by telltale markers and the matching format is
// rendered natively: chatml, llama-2, llama-3, gemma and phi-3. Anything else is UNIMPLEMENTED
// at detection and INVALID_ARGUMENT when a request brings chat messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::server {

enum class ChatFormat { kNone, kChatml, kLlama2, kLlama3, kGemma, kPhi3 };
std::string_view ChatFormatName(ChatFormat format);

struct ChatTurn {
  std::string role;  // system, user or assistant
  std::string content;
};

// The format of a chat template text: kNone for an empty template; UNIMPLEMENTED naming the
// supported formats when the text is not recognized.
absl::StatusOr<ChatFormat> DetectChatFormat(std::string_view chat_template);

// Renders `turns` plus the assistant prefix. The result contains control-token texts (e.g.
// "<|im_start|>") and must be tokenized with parse_special; BOS is left to the tokenizer.
// INVALID_ARGUMENT for no turns, an unknown role, or format kNone.
absl::StatusOr<std::string> RenderChat(ChatFormat format, const std::vector<ChatTurn>& turns);

}  // namespace leoam::server
