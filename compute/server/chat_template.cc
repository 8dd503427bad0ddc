#include "compute/server/chat_template.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leoam::server {

std::string_view ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kNone: return "none";
    case ChatFormat::kChatml: return "chatml";
    case ChatFormat::kLlama2: return "llama-2";
    case ChatFormat::kLlama3: return "llama-3";
    case ChatFormat::kGemma: return "gemma";
    case ChatFormat::kPhi3: return "phi-3";
  }
  return "unknown";
}

namespace {
bool Contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }
}  // namespace

absl::StatusOr<ChatFormat> DetectChatFormat(std::string_view t) {
  if (t.empty()) return ChatFormat::kNone;
  // Same markers, in the same order of precedence, as llama.cpp's llm_chat_detect_template.
  if (Contains(t, "<|im_start|>")) return ChatFormat::kChatml;
  if (Contains(t, "<|start_header_id|>") && Contains(t, "<|end_header_id|>")) {
    return ChatFormat::kLlama3;
  }
  if (Contains(t, "<start_of_turn>")) return ChatFormat::kGemma;
  if (Contains(t, "<|assistant|>") && Contains(t, "<|end|>")) return ChatFormat::kPhi3;
  if (Contains(t, "[INST]")) return ChatFormat::kLlama2;
  return absl::UnimplementedError(
      "the model's chat template is not one of the recognized formats (chatml, llama-2, llama-3, gemma, phi-3); "
      "send a text prompt rendered by the client instead");
}

absl::StatusOr<std::string> RenderChat(ChatFormat format, const std::vector<ChatTurn>& turns) {
  if (format == ChatFormat::kNone) {
    return absl::InvalidArgumentError("the model has no chat template; send text or token_ids instead of messages");
  }
  if (turns.empty()) return absl::InvalidArgumentError("messages is empty");
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string& r = turns[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "messages[%d].role is \"%s\"; it must be \"system\", \"user\" or \"assistant\"", i, r));
    }
  }
  std::string out;
  switch (format) {
    case ChatFormat::kChatml:
      for (const ChatTurn& t : turns) absl::StrAppend(&out, "<|im_start|>", t.role, "\n", t.content, "<|im_end|>\n");
      absl::StrAppend(&out, "<|im_start|>assistant\n");
      break;
    case ChatFormat::kLlama3:
      for (const ChatTurn& t : turns) {
        absl::StrAppend(&out, "<|start_header_id|>", t.role, "<|end_header_id|>\n\n", t.content, "<|eot_id|>");
      }
      absl::StrAppend(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case ChatFormat::kLlama2: {
      // [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant}</s><s>[INST] {user} [/INST]
      bool inside_turn = true;
      out = "[INST] ";
      for (const ChatTurn& t : turns) {
        if (!inside_turn && t.role != "assistant") {
          absl::StrAppend(&out, "<s>[INST] ");
          inside_turn = true;
        }
        if (t.role == "system") {
          absl::StrAppend(&out, "<<SYS>>\n", t.content, "\n<</SYS>>\n\n");
        } else if (t.role == "user") {
          absl::StrAppend(&out, t.content, " [/INST]");
        } else {
          absl::StrAppend(&out, " ", t.content, "</s>");
          inside_turn = false;
        }
      }
      break;
    }
    case ChatFormat::kGemma: {
      // Gemma has no system role: the system text is prepended to the next user turn.
      std::string system;
      for (const ChatTurn& t : turns) {
        if (t.role == "system") {
          absl::StrAppend(&system, t.content, "\n\n");
          continue;
        }
        const std::string role = t.role == "assistant" ? "model" : "user";
        absl::StrAppend(&out, "<start_of_turn>", role, "\n", t.role == "user" ? system : "", t.content,
                        "<end_of_turn>\n");
        if (t.role == "user") system.clear();
      }
      absl::StrAppend(&out, "<start_of_turn>model\n");
      break;
    }
    case ChatFormat::kPhi3:
      for (const ChatTurn& t : turns) absl::StrAppend(&out, "<|", t.role, "|>\n", t.content, "<|end|>\n");
      absl::StrAppend(&out, "<|assistant|>\n");
      break;
    case ChatFormat::kNone:
      break;
  }
  return out;
}

}  // namespace leoam::server
