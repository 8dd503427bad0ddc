// Units of compute/server that need no model: chat templates and the stop-string filter.
#include "compute/server/chat_template.h"
#include "compute/server/stop_strings.h"
#include "gtest/gtest.h"

namespace leoam::server {
namespace {

TEST(ChatTemplateTest, DetectsCommonFormatsByTheirMarkers) {
  EXPECT_EQ(*DetectChatFormat(""), ChatFormat::kNone);
  EXPECT_EQ(*DetectChatFormat("{% for m in messages %}<|im_start|>{{m.role}}\n{{m.content}}<|im_end|>{% endfor %}"),
            ChatFormat::kChatml);
  EXPECT_EQ(*DetectChatFormat("<|start_header_id|>{{ role }}<|end_header_id|>\n\n{{ content }}<|eot_id|>"),
            ChatFormat::kLlama3);
  EXPECT_EQ(*DetectChatFormat("{{ bos_token + '[INST] ' + content + ' [/INST]' }}"), ChatFormat::kLlama2);
  EXPECT_EQ(*DetectChatFormat("<start_of_turn>{{ role }}\n"), ChatFormat::kGemma);
  EXPECT_EQ(*DetectChatFormat("<|user|>\n{{ c }}<|end|>\n<|assistant|>\n"), ChatFormat::kPhi3);
  absl::StatusOr<ChatFormat> unknown = DetectChatFormat("{{ messages | tojson }}");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(ChatTemplateTest, RendersChatml) {
  auto s = RenderChat(ChatFormat::kChatml, {{"system", "Be brief."}, {"user", "Hi"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, RendersLlama3AndLlama2) {
  auto l3 = RenderChat(ChatFormat::kLlama3, {{"user", "Hi"}});
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(*l3, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  auto l2 = RenderChat(ChatFormat::kLlama2, {{"system", "S"}, {"user", "A"}, {"assistant", "B"}, {"user", "C"}});
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(*l2, "[INST] <<SYS>>\nS\n<</SYS>>\n\nA [/INST] B</s><s>[INST] C [/INST]");
}

TEST(ChatTemplateTest, RejectsBadRolesAndMissingTemplates) {
  EXPECT_EQ(RenderChat(ChatFormat::kChatml, {{"robot", "x"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChat(ChatFormat::kNone, {{"user", "x"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderChat(ChatFormat::kChatml, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StopStringFilterTest, HoldsBackPossibleStartsAndCutsAtTheMatch) {
  StopStringFilter f({"STOP"});
  EXPECT_EQ(f.Push("hello S"), "hello ");  // "S" may start "STOP"
  EXPECT_EQ(f.Push("T"), "");
  EXPECT_EQ(f.Push("x"), "STx");  // not a match after all
  EXPECT_EQ(f.Push(" and ST"), " and ");
  EXPECT_EQ(f.Push("OP tail"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.Push("more"), "");
  EXPECT_EQ(f.Flush(), "");
}

TEST(StopStringFilterTest, EarliestOfSeveralStopsWinsAndFlushReturnsTheRest) {
  StopStringFilter f({"world", "lo w"});
  EXPECT_EQ(f.Push("hello world"), "hel");
  StopStringFilter g({"xyz"});
  EXPECT_EQ(g.Push("abcx"), "abc");
  EXPECT_FALSE(g.stopped());
  EXPECT_EQ(g.Flush(), "x");
  StopStringFilter none({});
  EXPECT_EQ(none.Push("anything"), "anything");
}

}  // namespace
}  // namespace leoam::server
