// leoam: the command-line client of leoam-compute (leoam.v1.Generation over gRPC).
//
//   leoam generate "Once upon a time" --max-tokens 64     streamed text; progress bar, TTFT and tokens/s on stderr
//   leoam chat [--message "Hi"] [--system "..."]          interactive (one line per turn) or one message
//   leoam tokenize "some text" [--add-special]            token ids, comma-separated
//   leoam detokenize 1,403,407 [--render-special]         text
//   leoam info                                            model and server
//   leoam stats                                           running requests, KV store connection and tiers
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/cli_output.h"
#include "common/flags.h"
#include "grpcpp/grpcpp.h"
#include "leoam/v1/generation.grpc.pb.h"

ABSL_FLAG(std::string, server, "unix:///tmp/leoam/compute.sock", "Address of leoam-compute (unix:///path or host:port).");
ABSL_FLAG(int32_t, max_tokens, 0, "Most tokens to generate (0: the server's default).");
ABSL_FLAG(double, temperature, 0.0, "Sampling temperature; 0 is greedy.");
ABSL_FLAG(int32_t, top_k, 0, "Keep the k most likely tokens (0: off).");
ABSL_FLAG(double, top_p, 0.0, "Nucleus sampling mass in [0, 1] (0 or 1: off).");
ABSL_FLAG(double, min_p, 0.0, "Drop tokens below min_p x the top probability (0: off).");
ABSL_FLAG(int64_t, seed, -1, "Sampling seed; -1 lets the server pick one (printed at the end).");
ABSL_FLAG(std::vector<std::string>, stop, {}, "Comma-separated stop strings.");
ABSL_FLAG(std::string, stop_ids, "", "Comma-separated token ids that also end generation.");
ABSL_FLAG(std::string, ids, "", "generate: comma-separated prompt token ids instead of text (no BOS added).");
ABSL_FLAG(bool, ignore_eos, false, "Do not stop at the model's end-of-generation tokens.");
ABSL_FLAG(int64_t, time_limit_ms, 0, "Per-request time limit in milliseconds (0: none).");
ABSL_FLAG(double, timeout_s, 0, "gRPC deadline of the call in seconds (0: none).");
ABSL_FLAG(bool, progress, true, "Show a prefill progress bar on stderr.");
ABSL_FLAG(std::string, request_id, "", "Request id (for Abort from another client); empty: the server assigns one.");
ABSL_FLAG(std::string, message, "", "chat: send this one message instead of reading turns from stdin.");
ABSL_FLAG(std::string, system, "", "chat: a system message first.");
ABSL_FLAG(bool, add_special, false, "tokenize: prepend BOS when the model asks for it.");
ABSL_FLAG(bool, render_special, false, "detokenize: render control tokens as text.");

namespace leoam::cli {
namespace {

namespace v1 = ::leoam::v1;

int Fail(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "leoam: %s: %s (%d)\n", what.c_str(), s.error_message().c_str(), static_cast<int>(s.error_code()));
  return 1;
}

void SetDeadline(grpc::ClientContext& ctx) {
  const double t = absl::GetFlag(FLAGS_timeout_s);
  if (t > 0) ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(t * 1e3)));
}

bool ParseIds(const std::string& text, std::vector<int32_t>* out) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      std::fprintf(stderr, "leoam: '%s' is not a token id\n", std::string(part).c_str());
      return false;
    }
    out->push_back(id);
  }
  return true;
}

bool FillCommon(v1::GenerateRequest& req) {
  req.set_request_id(absl::GetFlag(FLAGS_request_id));
  req.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  v1::SamplingParams* s = req.mutable_sampling();
  s->set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  s->set_top_k(absl::GetFlag(FLAGS_top_k));
  s->set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  s->set_min_p(static_cast<float>(absl::GetFlag(FLAGS_min_p)));
  if (absl::GetFlag(FLAGS_seed) >= 0) {
    s->set_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
    s->set_has_seed(true);
  }
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) req.add_stop_strings(stop);
  std::vector<int32_t> stop_ids;
  if (!ParseIds(absl::GetFlag(FLAGS_stop_ids), &stop_ids)) return false;
  for (int32_t id : stop_ids) req.add_stop_token_ids(id);
  req.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  req.set_time_limit_ms(absl::GetFlag(FLAGS_time_limit_ms));
  req.set_report_progress(absl::GetFlag(FLAGS_progress));
  return true;
}

// Streams one generation: text to stdout, progress and the summary to stderr. Returns the text.
int Stream(v1::Generation::Stub& stub, const v1::GenerateRequest& req, std::string* text) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub.Generate(&ctx, req);
  v1::GenerateResponse m;
  bool bar_shown = false;
  bool have_final = false;
  v1::FinalResult final;
  while (reader->Read(&m)) {
    if (m.has_progress()) {
      std::fprintf(stderr, "\r%s", ProgressBar(m.progress()).c_str());
      bar_shown = true;
    } else if (m.has_chunk()) {
      if (bar_shown) {
        std::fprintf(stderr, "\n");
        bar_shown = false;
      }
      std::fwrite(m.chunk().text().data(), 1, m.chunk().text().size(), stdout);
      std::fflush(stdout);
      if (text != nullptr) *text += m.chunk().text();
    } else if (m.has_final()) {
      final = m.final();
      have_final = true;
    }
  }
  if (bar_shown) std::fprintf(stderr, "\n");
  grpc::Status status = reader->Finish();
  std::fprintf(stdout, "\n");
  std::fflush(stdout);  // the text's last line before the summary on stderr
  if (!status.ok()) return Fail("generate", status);
  if (have_final) std::fprintf(stderr, "[leoam] %s\n", Summary(final).c_str());
  return have_final && final.finish_reason() == v1::FINISH_REASON_ERROR ? 1 : 0;
}

int Generate(v1::Generation::Stub& stub, const std::vector<std::string>& words) {
  v1::GenerateRequest req;
  if (!FillCommon(req)) return 2;
  if (!absl::GetFlag(FLAGS_ids).empty()) {
    std::vector<int32_t> ids;
    if (!ParseIds(absl::GetFlag(FLAGS_ids), &ids)) return 2;
    for (int32_t id : ids) req.add_token_ids(id);
  } else {
    req.set_text(absl::StrJoin(words, " "));
  }
  return Stream(stub, req, nullptr);
}

int Chat(v1::Generation::Stub& stub) {
  v1::GenerateRequest base;
  if (!FillCommon(base)) return 2;
  std::vector<std::pair<std::string, std::string>> history;
  if (!absl::GetFlag(FLAGS_system).empty()) history.emplace_back("system", absl::GetFlag(FLAGS_system));
  auto turn = [&](const std::string& user) {
    history.emplace_back("user", user);
    v1::GenerateRequest req = base;
    for (const auto& [role, content] : history) {
      v1::ChatMessage* m = req.add_messages();
      m->set_role(role);
      m->set_content(content);
    }
    std::string reply;
    const int rc = Stream(stub, req, &reply);
    history.emplace_back("assistant", reply);
    return rc;
  };
  if (!absl::GetFlag(FLAGS_message).empty()) return turn(absl::GetFlag(FLAGS_message));
  std::string line;
  int rc = 0;
  while (true) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    rc = turn(line);
    if (rc != 0) break;
  }
  return rc;
}

int Tokenize(v1::Generation::Stub& stub, const std::vector<std::string>& words) {
  v1::TokenizeRequest req;
  req.set_text(absl::StrJoin(words, " "));
  req.set_add_special(absl::GetFlag(FLAGS_add_special));
  v1::TokenizeResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = stub.Tokenize(&ctx, req, &resp);
  if (!s.ok()) return Fail("tokenize", s);
  std::printf("%s\n", absl::StrJoin(resp.token_ids(), ",").c_str());
  return 0;
}

int Detokenize(v1::Generation::Stub& stub, const std::vector<std::string>& words) {
  v1::DetokenizeRequest req;
  std::vector<int32_t> ids;
  if (!ParseIds(absl::StrJoin(words, ","), &ids)) return 2;
  for (int32_t id : ids) req.add_token_ids(id);
  req.set_render_special(absl::GetFlag(FLAGS_render_special));
  v1::DetokenizeResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = stub.Detokenize(&ctx, req, &resp);
  if (!s.ok()) return Fail("detokenize", s);
  std::printf("%s\n", resp.text().c_str());
  return 0;
}

void PrintTier(const char* name, const v1::KvTierStats& t) {
  std::printf("  %-6s %lld pages, %.1f of %.1f MiB; hits %lld, misses %lld, evictions %lld; read %.1f MiB, written %.1f MiB\n",
              name, static_cast<long long>(t.pages()), t.bytes() / 1048576.0, t.capacity_bytes() / 1048576.0,
              static_cast<long long>(t.hits()), static_cast<long long>(t.misses()),
              static_cast<long long>(t.evictions()), t.read_bytes() / 1048576.0, t.write_bytes() / 1048576.0);
}

int ServerInfo(v1::Generation::Stub& stub, v1::GetServerInfoResponse* out) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = stub.GetServerInfo(&ctx, v1::GetServerInfoRequest(), out);
  if (!s.ok()) return Fail("server info", s);
  return 0;
}

int Stats(v1::Generation::Stub& stub) {
  v1::GetServerInfoResponse r;
  if (int rc = ServerInfo(stub, &r); rc != 0) return rc;
  std::printf("requests: %d running, %d queued, %lld served; %lld tokens generated\n", r.running_requests(),
              r.queued_requests(), static_cast<long long>(r.requests_served()),
              static_cast<long long>(r.tokens_generated()));
  std::printf("prompt tokens from cache: %lld (memory tier), %lld (disk tier)\n",
              static_cast<long long>(r.cached_tokens_memory()), static_cast<long long>(r.cached_tokens_disk()));
  if (r.kvstore_address().empty()) {
    std::printf("kvstore: none\n");
  } else {
    std::printf("kvstore: %s, %s, %d reconnects\n", r.kvstore_address().c_str(),
                r.kvstore_connected() ? "connected" : "NOT connected", r.kvstore_reconnects());
    PrintTier("memory", r.memory_tier());
    PrintTier("disk", r.disk_tier());
  }
  return 0;
}

int Info(v1::Generation::Stub& stub) {
  v1::GetModelInfoResponse m;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status s = stub.GetModelInfo(&ctx, v1::GetModelInfoRequest(), &m);
  if (!s.ok()) return Fail("model info", s);
  std::printf("model: %s (%s)\n", m.name().c_str(), m.model_path().c_str());
  std::printf("  %s, %lld parameters (%s), %d layers, hidden %d, %d heads / %d KV heads of %d, vocab %d, context %d\n",
              m.architecture().c_str(), static_cast<long long>(m.parameter_count()), m.weight_type().c_str(),
              m.num_layers(), m.hidden_dim(), m.num_heads(), m.num_kv_heads(), m.head_dim(), m.vocab_size(),
              m.context_length());
  std::printf("  bos %d, eos [%s], chat template: %s, fingerprint %s\n", m.bos_token_id(),
              absl::StrJoin(m.eos_token_ids(), ",").c_str(), m.chat_template().empty() ? "none" : "yes",
              m.fingerprint().c_str());
  v1::GetServerInfoResponse r;
  if (int rc = ServerInfo(stub, &r); rc != 0) return rc;
  std::printf("server: leoam-compute %s, backend %s, mode %s, device budget %lld bytes per request\n",
              r.version().c_str(), r.backend().c_str(), r.mode().c_str(),
              static_cast<long long>(r.device_budget_bytes()));
  std::printf("  limits: prompt %d tokens, max_tokens %d (default %d), %d concurrent, batch %d\n",
              r.max_prompt_tokens(), r.max_tokens_limit(), r.default_max_tokens(), r.max_concurrent_requests(),
              r.max_batch());
  return 0;
}

int Main(const std::vector<char*>& args) {
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: leoam [--server ADDR] generate|chat|tokenize|detokenize|info|stats [args] (see --help)\n");
    return 2;
  }
  const std::string command = args[1];
  std::vector<std::string> words(args.begin() + 2, args.end());
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), channel_args);
  std::unique_ptr<v1::Generation::Stub> stub = v1::Generation::NewStub(channel);
  if (command == "generate") return Generate(*stub, words);
  if (command == "chat") return Chat(*stub);
  if (command == "tokenize") return Tokenize(*stub, words);
  if (command == "detokenize") return Detokenize(*stub, words);
  if (command == "info") return Info(*stub);
  if (command == "stats") return Stats(*stub);
  std::fprintf(stderr, "leoam: unknown command '%s' (generate, chat, tokenize, detokenize, info, stats)\n",
               command.c_str());
  return 2;
}

}  // namespace
}  // namespace leoam::cli

int main(int argc, char** argv) {
  std::vector<char*> args = leoam::ParseFlags(
      argc, argv,
      "The LeoAM command-line client.\n"
      "  leoam [--server unix:///tmp/leoam/compute.sock] COMMAND [args]\n"
      "  generate TEXT...   stream a completion (--max-tokens, --temperature, --seed, --stop, --ids, ...)\n"
      "  chat               interactive chat (or --message TEXT), rendered with the model's chat template\n"
      "  tokenize TEXT...   token ids          detokenize IDS   text\n"
      "  info               model and server   stats            requests, KV store and tier statistics\n"
      "Flags may be written with dashes or underscores and go before or after the command.");
  return leoam::cli::Main(args);
}
