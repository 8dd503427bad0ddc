// leoam-compute: the LeoAM generation service (leoam.v1.Generation over gRPC, plus grpc.health.v1
// and server reflection). One process serves one GGUF model; with --kvstore, KV pages beyond the
// per-request device budget live in a running leoam-kvstore.
//
//   leoam-compute --model M.gguf                                  # unix:///tmp/leoam/compute.sock
//   leoam-compute --model M.gguf --mode leoam --kvstore unix:///tmp/leoam/kvstore.sock --device-budget 64MiB
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/flags.h"
#include "common/log.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/backend_select.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "compute/server/chat_template.h"
#include "compute/server/generation_service.h"
#include "compute/server/kvstore_link.h"
#include "compute/server/request_builder.h"
#include "compute/server/scheduler.h"
#include "compute/server/server_options.h"
#include "compute/tokenizer/tokenizer.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

ABSL_FLAG(std::string, model, "", "Path of the GGUF model to serve (required).");
ABSL_FLAG(std::string, listen, "unix:///tmp/leoam/compute.sock",
          "Address to serve on: unix:///path/to/socket (default; the directory is created) or host:port for TCP.");
ABSL_FLAG(std::string, kvstore, "",
          "Address of a running leoam-kvstore (e.g. unix:///tmp/leoam/kvstore.sock); empty = no store. With it, "
          "each request's KV pages are written through to the store and only --device-budget bytes of them stay in "
          "device memory; a prompt prefix whose pages the store already holds is restored instead of prefilled. "
          "Needs a paged --mode and --device-budget (or --mode offload-all). When the store goes "
          "away, requests whose KV fits the device budget are still served, longer ones get UNAVAILABLE, and the "
          "service re-attaches when the store is back.");
ABSL_FLAG(std::string, mode, "dense",
          "KV mode: dense (contiguous cache, full attention), quest, leoam (paged KV, page selection at decode) or "
          "offload-all (every page fetched from --kvstore at every step). Prefill is exact in every mode.");
ABSL_FLAG(std::string, budget, "0.1",
          "quest/leoam: KV tokens attended per layer per decode step: an integer (tokens) or a fraction of the "
          "context with a decimal point (0.1; 1.0 attends everything).");
ABSL_FLAG(int32_t, page_size, 16, "Paged modes: tokens per KV page.");
ABSL_FLAG(std::string, device_budget, "0",
          "Paged modes with --kvstore: bytes of KV pages EACH request keeps in device memory (host memory on the "
          "CPU backend), e.g. 64MiB, so up to --max-batch times this in all. 0 keeps every page resident.");
ABSL_FLAG(bool, reestimate, false,
          "leoam: re-estimate the per-layer policies online from the exact attention over the selected pages "
          "(budget moved between layers, total kept; dense layers may turn sparse and the reverse). Off: the "
          "policies measured at the end of the prompt stay fixed (default: no quality gain measured yet).");
ABSL_FLAG(int32_t, reestimate_interval, 8, "With --reestimate: decode steps between two observations of a layer.");
ABSL_FLAG(double, resident_margin, 0.0,
          "quest/leoam with --device-budget: hysteresis against the device page cache — a page on the device keeps "
          "its place in a decode selection unless another page's estimated mass is larger by e^margin (logit units; "
          "1 is what bench/results/engine_leoam.md section 6 measures). 0: off (default).");
ABSL_FLAG(int32_t, threads, 0, "CPU threads of the compute backend (0: LEOAM_THREADS or every CPU).");
ABSL_FLAG(std::string, backend, "auto", "Compute backend: auto (GPU when present), cpu or cuda.");
ABSL_FLAG(int32_t, max_prompt_tokens, 0, "Longest prompt in tokens (0: the model's context length).");
ABSL_FLAG(int32_t, max_tokens_limit, 4096, "Largest max_tokens a request may ask for (more: RESOURCE_EXHAUSTED).");
ABSL_FLAG(int32_t, default_max_tokens, 256, "max_tokens of a request that does not set it.");
ABSL_FLAG(int32_t, max_concurrent, 64,
          "Requests open at once (running plus queued); more are answered RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, max_batch, 16,
          "Requests holding a batch slot (KV allocated, prefilling or decoding) at once; their decode steps run as "
          "one batched forward pass. Others wait in the queue.");
ABSL_FLAG(int32_t, prefill_chunk, 256,
          "Prompt tokens per prefill chunk; between chunks the running requests make a decode step.");
ABSL_FLAG(std::string, prefill_order, "auto",
          "Prompt order: auto, layer-major or token-major. auto runs a prompt layer-major (one layer over every "
          "prompt token, its pages streamed to the KV store, then the next layer; one chunk of one layer per "
          "scheduler turn) when its KV goes through the KV store and exceeds --device-budget, token-major (each "
          "chunk through every layer) otherwise; layer-major: every prompt of a paged mode longer than one chunk. Both "
          "orders give the same tokens.");

namespace leoam::server {
namespace {

// SIGTERM/SIGINT: a handler writes the signal number to a pipe that a watcher thread reads.
// (Blocking the signals and sigwait-ing is not enough here: OpenBLAS starts its threads when the
// library loads, before main, with the signals unblocked.)
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const char byte = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
}

absl::Status InstallSignalHandlers() {
  if (::pipe(g_signal_pipe) != 0) return absl::InternalError("pipe() failed");
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(SIGTERM, &sa, nullptr) != 0 || ::sigaction(SIGINT, &sa, nullptr) != 0) {
    return absl::InternalError("sigaction() failed");
  }
  return absl::OkStatus();
}

absl::Status Run() {
  ServerOptions options;
  options.model_path = absl::GetFlag(FLAGS_model);
  if (options.model_path.empty()) return absl::InvalidArgumentError("--model is required (see --help)");
  options.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  options.max_tokens_limit = absl::GetFlag(FLAGS_max_tokens_limit);
  options.default_max_tokens = absl::GetFlag(FLAGS_default_max_tokens);
  options.max_concurrent = absl::GetFlag(FLAGS_max_concurrent);
  options.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  if (options.max_prompt_tokens < 0) return absl::InvalidArgumentError("--max-prompt-tokens must be >= 0");
  if (options.max_tokens_limit <= 0) return absl::InvalidArgumentError("--max-tokens-limit must be > 0");
  if (options.default_max_tokens <= 0 || options.default_max_tokens > options.max_tokens_limit) {
    return absl::InvalidArgumentError("--default-max-tokens must be in [1, --max-tokens-limit]");
  }
  if (options.max_concurrent <= 0) return absl::InvalidArgumentError("--max-concurrent must be > 0");
  if (options.max_batch <= 0) return absl::InvalidArgumentError("--max-batch must be > 0");
  if (options.prefill_chunk <= 0) return absl::InvalidArgumentError("--prefill-chunk must be > 0");
  absl::StatusOr<PrefillOrder> order = ParsePrefillOrder(absl::GetFlag(FLAGS_prefill_order));
  if (!order.ok()) return absl::InvalidArgumentError(absl::StrCat("--prefill-order: ", order.status().message()));
  options.prefill_order = *order;

  options.mode_name = absl::GetFlag(FLAGS_mode);
  absl::StatusOr<SelectionMode> mode = ParseSelectionMode(options.mode_name);
  if (!mode.ok()) return absl::InvalidArgumentError(absl::StrCat("--mode: ", mode.status().message()));
  options.mode = *mode;
  options.paged.mode = *mode;
  options.paged.page_size = absl::GetFlag(FLAGS_page_size);
  options.budget_text = absl::GetFlag(FLAGS_budget);
  options.paged.reestimation.enabled = absl::GetFlag(FLAGS_reestimate);
  options.paged.selection.resident_logit_margin = static_cast<float>(absl::GetFlag(FLAGS_resident_margin));
  if (!(options.paged.selection.resident_logit_margin >= 0.0f)) {
    return absl::InvalidArgumentError("--resident-margin must be >= 0");
  }
  options.paged.reestimation.interval = absl::GetFlag(FLAGS_reestimate_interval);
  if (options.paged.reestimation.interval <= 0) {
    return absl::InvalidArgumentError("--reestimate-interval must be > 0");
  }
  if (absl::Status s = ParseBudget(options.budget_text, options.paged); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--budget: ", s.message()));
  }
  absl::StatusOr<int64_t> device_budget = ParseByteSize(absl::GetFlag(FLAGS_device_budget));
  if (!device_budget.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--device-budget: ", device_budget.status().message()));
  }
  options.paged.device_budget_bytes = *device_budget;
  options.kvstore_address = absl::GetFlag(FLAGS_kvstore);
  if (options.mode == SelectionMode::kDense) {
    if (!options.kvstore_address.empty()) {
      return absl::InvalidArgumentError("--kvstore needs a paged mode (--mode leoam, quest or offload-all)");
    }
  } else if (options.kvstore_address.empty()) {
    if (options.paged.device_budget_bytes > 0 || options.mode == SelectionMode::kOffloadAll) {
      return absl::InvalidArgumentError("--device-budget and --mode offload-all need --kvstore");
    }
  } else if (options.paged.device_budget_bytes <= 0 && options.mode != SelectionMode::kOffloadAll) {
    return absl::InvalidArgumentError("--kvstore needs --device-budget (bytes of KV each request keeps in device memory)");
  }

  BackendChoice choice{absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_threads)};
  absl::StatusOr<std::unique_ptr<kernels::Backend>> backend = CreateBackend(choice);
  if (!backend.ok()) return backend.status();
  options.backend_name = std::string((*backend)->name());
  ModelOptions model_options;
  model_options.prefill_chunk = options.prefill_chunk;
  absl::StatusOr<std::unique_ptr<LlamaModel>> model = LlamaModel::Load(options.model_path, **backend, model_options);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromGguf((*model)->file());
  if (!tokenizer.ok()) return tokenizer.status();
  const ModelConfig& config = (*model)->config();

  std::string chat_template;
  if (absl::StatusOr<std::string> t = (*model)->file().GetString("tokenizer.chat_template"); t.ok()) chat_template = *t;
  ChatFormat chat_format = ChatFormat::kNone;
  absl::Status chat_error;
  if (absl::StatusOr<ChatFormat> f = DetectChatFormat(chat_template); f.ok()) {
    chat_format = *f;
  } else {
    chat_error = f.status();
    LEOAM_LOG(WARNING, "%s", chat_error.message());
  }

  const Hash128 fingerprint = ModelFingerprint(GgufContentHash((*model)->file()), config,
                                               {.page_size = options.paged.page_size, .dtype = "f32"});
  std::unique_ptr<KvStoreLink> link;
  if (!options.kvstore_address.empty()) {
    KvStoreLinkOptions lo;
    lo.client.target = options.kvstore_address;
    lo.client.client_name = "leoam-compute";
    lo.client.rpc_timeout = absl::Seconds(10);
    lo.fingerprint = std::string(fingerprint.begin(), fingerprint.end());
    lo.layout = KvStoreLayout(config, options.paged.page_size);
    link = std::make_unique<KvStoreLink>(lo);
    if (!link->connected()) {
      LEOAM_LOG(WARNING, "kvstore %s is not reachable yet; serving what fits the device budget until it is",
                options.kvstore_address);
    }
  }

  RequestBuilder builder(config, **tokenizer, options, chat_format, chat_error);
  Scheduler scheduler(**model, **tokenizer, options, link.get(), fingerprint);
  GenerationService service(**model, **tokenizer, options, builder, scheduler, link.get(), fingerprint, chat_template);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (absl::StartsWith(listen, "unix:")) {
    std::string path = listen.substr(std::strlen("unix:"));
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::filesystem::remove(path, ec);  // a stale socket of a killed predecessor
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder server_builder;
  server_builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  server_builder.RegisterService(&service);
  server_builder.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = server_builder.BuildAndStart();
  if (server == nullptr) return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  LEOAM_LOG(INFO, "leoam-compute serving %s (%s, %d layers, vocab %d) on %s; backend %s, mode %s, chat template %s",
            options.model_path, config.arch_name, config.num_layers, config.vocab_size, listen, options.backend_name,
            options.mode_name, ChatFormatName(chat_format));

  std::thread signal_thread([&server, &scheduler] {
    char sig = 0;
    while (::read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    LEOAM_LOG(INFO, "signal %d: shutting down", static_cast<int>(sig));
    // Open streams end first (UNAVAILABLE), then the server stops taking calls.
    scheduler.Shutdown();
    // Streams are closed by now; unary calls get a moment to finish.
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  });
  server->Wait();
  signal_thread.join();
  server.reset();
  LEOAM_LOG(INFO, "leoam-compute stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam::server

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "The LeoAM generation service: serves leoam.v1.Generation, grpc.health.v1 and reflection.\n"
                    "  leoam-compute --model model.gguf [--listen unix:///tmp/leoam/compute.sock] [--mode leoam "
                    "--kvstore unix:///tmp/leoam/kvstore.sock --device-budget 64MiB]\n"
                    "Flags may be written with dashes or underscores (--max-batch, --max_batch).");
  absl::Status status = leoam::server::InstallSignalHandlers();
  if (status.ok()) status = leoam::server::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-compute: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
