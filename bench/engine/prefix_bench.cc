// leoam-bench-prefix: time to first token (TTFT) of a prompt whose prefix the KV store already
// holds, restored from its memory tier and from its disk tier, against computing the prompt.
//
// For each context C: a prompt of C random token ids. Rows:
//   recompute (dense)  the prompt's prefill in the dense contiguous cache: the fastest recompute
//   recompute (tiered) the same through the tiered engine (pages written through to the store)
//   restore (memory)   a second request on the same prompt: RestorePrefix + the remainder's prefill,
//                      whose attention reads every restored page back from the store's memory tier
//   restore (disk)     the same against a second store (--kvstore-disk) started with a memory limit
//                      too small for the prompt's pages, so they come from its disk tier (RocksDB;
//                      the OS page cache is not dropped, see the note the bench prints)
// TTFT = prefill_seconds of Generate with max_tokens 1 (restore included). Prints a markdown table.
//
//   leoam-kvstore --listen unix:///tmp/kv/mem.sock --data-dir /tmp/kv/mem --arena-size 3GiB &
//   leoam-kvstore --listen unix:///tmp/kv/disk.sock --data-dir /tmp/kv/disk --arena-size 512MiB
//       --memory-limit 16MiB &   (one command line)
//   leoam-bench-prefix --model llama124m.gguf --kvstore unix:///tmp/kv/mem.sock
//       --kvstore-disk unix:///tmp/kv/disk.sock --contexts 4096,8192   (one command line)
// The tiered recompute runs the prompt in --prefill-order (auto: layer-major when the prompt's KV
// exceeds the device budget, see GenerateOptions::prefill_order); the label says which ran.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "compute/engine/generate.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/backend_select.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"

ABSL_FLAG(std::string, model, "", "GGUF model (required), e.g. from leoam-synth --preset llama-124m.");
ABSL_FLAG(std::string, kvstore, "", "Target of a leoam-kvstore whose memory tier holds the prompt (required).");
ABSL_FLAG(std::string, kvstore_disk, "",
          "Target of a leoam-kvstore with a small --memory-limit, so restored pages come from its disk tier "
          "(optional; no disk row without it).");
ABSL_FLAG(std::string, contexts, "4096", "Comma-separated prompt lengths in tokens.");
ABSL_FLAG(std::string, mode, "leoam", "Paged mode of the tiered rows: leoam, quest or offload-all.");
ABSL_FLAG(double, device_fraction, 0.1, "Device page budget as a fraction of the prompt's KV.");
ABSL_FLAG(int32_t, page_size, 16, "Tokens per page.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: LEOAM_THREADS or every CPU).");
ABSL_FLAG(int32_t, prefill_chunk, 512, "Prompt tokens per forward pass.");
ABSL_FLAG(int64_t, seed, 1, "Seed of the random prompt.");
ABSL_FLAG(bool, skip_dense, false, "Leave out the dense recompute row.");
ABSL_FLAG(std::string, prefill_order, "auto",
          "Order of the tiered rows' prompt: auto, layer-major or token-major (GenerateOptions::prefill_order).");

namespace leoam {
namespace {

struct Store {
  std::string label;
  std::unique_ptr<kvstore::KvStoreClient> client;
};

absl::Status Run() {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty() || absl::GetFlag(FLAGS_kvstore).empty()) {
    return absl::InvalidArgumentError("--model and --kvstore are required");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
                   CreateBackend(BackendChoice{"cpu", absl::GetFlag(FLAGS_threads)}));
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> model,
                   LlamaModel::Load(path, *backend, {.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk)}));
  const ModelConfig& c = model->config();
  const int32_t page_size = absl::GetFlag(FLAGS_page_size);
  ASSIGN_OR_RETURN(const SelectionMode mode, ParseSelectionMode(absl::GetFlag(FLAGS_mode)));
  ASSIGN_OR_RETURN(const PrefillOrder prefill_order, ParsePrefillOrder(absl::GetFlag(FLAGS_prefill_order)));
  const Hash128 fingerprint = ModelFingerprint(GgufContentHash(model->file()), c, {.page_size = page_size});
  std::vector<Store> stores;
  for (const auto& [label, target] : {std::pair<std::string, std::string>{"memory", absl::GetFlag(FLAGS_kvstore)},
                                      {"disk", absl::GetFlag(FLAGS_kvstore_disk)}}) {
    if (target.empty()) continue;
    kvstore::ClientOptions client_options;
    client_options.target = target;
    client_options.client_name = "leoam-bench-prefix";
    ASSIGN_OR_RETURN(std::unique_ptr<kvstore::KvStoreClient> client,
                     kvstore::KvStoreClient::Connect(client_options,
                                                     std::string(fingerprint.begin(), fingerprint.end()),
                                                     KvStoreLayout(c, page_size)));
    stores.push_back({label, std::move(client)});
  }

  const double MiB = 1024.0 * 1024.0;
  std::printf("model %s: %d layers, %d KV heads x %d, backend %s (%d threads); pages of %d tokens (fp32); mode %s, "
              "device budget %.0f%% of the KV\n\n",
              path.c_str(), c.num_layers, c.num_kv_heads, c.head_dim, std::string(backend->name()).c_str(),
              backend->num_threads(), page_size, std::string(SelectionModeName(mode)).c_str(),
              absl::GetFlag(FLAGS_device_fraction) * 100);
  std::printf("| context | path | TTFT ms | speedup vs recompute (dense) | cached tokens | pages mem / disk | "
              "restore ms | read back MiB (mem / disk) |\n|---|---|---|---|---|---|---|---|\n");
  for (absl::string_view ctx_text : absl::StrSplit(absl::GetFlag(FLAGS_contexts), ',')) {
    int32_t context = 0;
    if (!absl::SimpleAtoi(ctx_text, &context) || context <= 1) return absl::InvalidArgumentError("--contexts");
    std::mt19937_64 rng(absl::GetFlag(FLAGS_seed) + context);
    std::uniform_int_distribution<int32_t> id(3, c.vocab_size - 1);
    std::vector<int32_t> prompt(context);
    for (int32_t& t : prompt) t = id(rng);
    const int64_t pages = (context + page_size - 1) / page_size;
    const int64_t kv_bytes = pages * c.num_layers * 2 * int64_t{page_size} * c.kv_dim() * 4;
    GenerateOptions base;
    base.max_tokens = 1;  // the first token: TTFT
    base.max_context = context;
    base.stop_tokens = {};
    double dense_ms = 0.0;
    auto row = [&](const std::string& label, const GenerateResult& r) {
      const double ms = r.prefill_seconds * 1e3;
      std::printf("| %d | %s | %.1f | %s | %d | %d / %d | %.1f | %.1f / %.1f |\n", context, label.c_str(), ms,
                  dense_ms > 0 ? absl::StrFormat("%.1fx", dense_ms / ms).c_str() : "-", r.prefix.cached_tokens,
                  r.prefix.pages_memory, r.prefix.pages_disk, r.prefix.seconds * 1e3,
                  r.prefill_kv_stats.bytes_fetched_memory / MiB, r.prefill_kv_stats.bytes_fetched_disk / MiB);
      std::fflush(stdout);
    };
    if (!absl::GetFlag(FLAGS_skip_dense)) {
      ASSIGN_OR_RETURN(GenerateResult dense, Generate(*model, nullptr, prompt, base));
      dense_ms = dense.prefill_seconds * 1e3;
      row("recompute (dense)", dense);
    }
    for (Store& store : stores) {
      RETURN_IF_ERROR(store.client->DropAll().status());
      GenerateOptions options = base;
      PagedKvOptions paged;
      paged.mode = mode;
      paged.page_size = page_size;
      paged.device_budget_bytes =
          std::max<int64_t>(static_cast<int64_t>(kv_bytes * absl::GetFlag(FLAGS_device_fraction)),
                            int64_t{c.num_layers + 2} * 2 * page_size * c.kv_dim() * 4);
      paged.kvstore = store.client.get();
      paged.fingerprint = fingerprint;
      options.paged_kv = paged;
      options.prefill_order = prefill_order;
      ASSIGN_OR_RETURN(GenerateResult first, Generate(*model, nullptr, prompt, options));
      if (first.prefix.cached_tokens != 0) return absl::InternalError("the store held the prompt after DropAll");
      row(absl::StrFormat("recompute (tiered, %s, %s store)", first.layer_major_prefill ? "layer-major" : "token-major",
                          store.label),
          first);
      ASSIGN_OR_RETURN(GenerateResult second, Generate(*model, nullptr, prompt, options));
      if (first.tokens != second.tokens) {
        return absl::InternalError("the restored prefix gave another first token than computing it");
      }
      row(absl::StrFormat("restore (%s store)", store.label), second);
    }
  }
  std::printf("\nKV of the prompt: fp32 pages. The disk store's RocksDB files may sit in the OS page cache "
              "(caches are not dropped): its rows measure the store's disk-tier path, not cold NVMe reads.\n");
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "TTFT of a cached prompt prefix (kvstore memory / disk tier) vs recomputing it.\n"
                    "  leoam-bench-prefix --model m.gguf --kvstore unix:///tmp/kv/mem.sock "
                    "--kvstore-disk unix:///tmp/kv/disk.sock --contexts 4096,8192");
  absl::Status status = leoam::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-bench-prefix: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
