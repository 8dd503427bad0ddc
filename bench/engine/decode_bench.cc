// leoam-bench-decode: decode latency against context length for dense, offload-all, quest and
// leoam, with the KV tiers of a running leoam-kvstore and a device page budget well under the KV.
//
// For each context C: a prompt of C random token ids, then `generate` greedy decode steps per
// mode. dense keeps the whole KV resident in a contiguous cache (no store): the latency floor of
// this machine. offload-all, quest and leoam run the paged engine with a device budget of
// `device_fraction` of the KV (pages beyond it live in the kvstore and are fetched when selected;
// offload-all fetches every page of every layer at every step). Reports ms/token, KV tokens
// attended per layer-step, device cache hit rate and the bytes fetched per decode step from each
// tier of the store, plus the synchronous fetch (stall) time, the prefetch (DTP) hits and the
// per-layer policy probe time. Mode suffixes: +nopf (prefetch off), +comp (dynamic compression),
// +re (online re-estimation of leoam's policies; its time per step is reported).
// Paged modes after the first restore the prompt from the store (prefix reuse). Prints a markdown table.
//
//   leoam-kvstore --listen unix:///tmp/kv/kv.sock --data_dir /tmp/kv/data --arena_size 2GiB &
//   leoam-synth --preset llama-124m --out /tmp/llama124m.gguf
//   leoam-bench-decode --model /tmp/llama124m.gguf --kvstore unix:///tmp/kv/kv.sock --contexts 1024,2048,4096
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
ABSL_FLAG(std::string, kvstore, "", "Target of a running leoam-kvstore (required), e.g. unix:///tmp/kv/kv.sock.");
ABSL_FLAG(std::string, contexts, "1024,2048", "Comma-separated prompt lengths in tokens.");
ABSL_FLAG(int32_t, generate, 16, "Decode steps timed per mode and context.");
ABSL_FLAG(std::string, modes, "dense,offload-all,quest,leoam",
          "Comma-separated modes: dense, offload-all, quest, leoam (adaptive per layer: layers with flat attention "
          "run dense, on top of the budget), leoam-eq (adaptive, total over layers kept at layers x budget), "
          "leoam-fixed (no per-layer adaptivity). Suffixes (combinable): +nopf (no prefetch: the DTP ablation), "
          "+comp (dynamic page compression), +re (leoam: online re-estimation of the per-layer policies), +sticky "
          "(quest/leoam: keep resident pages unless beaten by --resident_margin), +stickyprev (the same for the "
          "previous step's pages), +pagewalk (leoam: the walk refines "
          "refine_factor x budget pages' worth of nodes per level), +l0store (leoam: the pyramid's level 0 lives in the "
          "store and candidates' abstracts are read back at each selection), e.g. "
          "leoam+nopf, offload-all+comp, leoam-eq+re.");
ABSL_FLAG(bool, reuse_prefix, true,
          "Paged modes after the first restore the prompt from the store (prefix reuse) instead of recomputing it; "
          "decode is unaffected (the restored pages are exactly the computed ones).");
ABSL_FLAG(std::string, budget, "0.1", "quest/leoam token budget per layer: tokens (512) or a fraction (0.1).");
ABSL_FLAG(double, device_fraction, 0.25, "Device page budget as a fraction of the KV of prompt + generated tokens.");
ABSL_FLAG(int32_t, page_size, 16, "Tokens per page.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: LEOAM_THREADS or every CPU).");
ABSL_FLAG(std::string, backend, "cpu", "Compute backend: cpu, cuda or auto (GPU when present).");
ABSL_FLAG(int32_t, prefill_chunk, 512, "Prompt tokens per forward pass.");
ABSL_FLAG(int64_t, seed, 1, "Seed of the random prompt.");
ABSL_FLAG(double, resident_margin, 1.0,
          "+sticky modes: SelectionOptions::resident_logit_margin (a page not on the device displaces a resident one "
          "only if its estimated mass is larger by exp(margin)).");

namespace leoam {
namespace {

absl::Status Run() {
  const std::string path = absl::GetFlag(FLAGS_model);
  const std::string target = absl::GetFlag(FLAGS_kvstore);
  if (path.empty() || target.empty()) return absl::InvalidArgumentError("--model and --kvstore are required");
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
                   CreateBackend(BackendChoice{absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_threads)}));
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> model,
                   LlamaModel::Load(path, *backend, {.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk)}));
  const ModelConfig& c = model->config();
  const int32_t page_size = absl::GetFlag(FLAGS_page_size);
  // Exact and compressed pages live under different fingerprints (the store keeps a page's first copy).
  const Hash128 content = GgufContentHash(model->file());
  const Hash128 fingerprints[2] = {ModelFingerprint(content, c, {.page_size = page_size}),
                                   ModelFingerprint(content, c, {.page_size = page_size, .dtype = kCompressedPagesDtype})};
  std::unique_ptr<kvstore::KvStoreClient> clients[2];
  for (int i = 0; i < 2; ++i) {
    kvstore::ClientOptions client_options;
    client_options.target = target;
    client_options.client_name = "leoam-bench-decode";
    const Hash128& fp = fingerprints[i];
    ASSIGN_OR_RETURN(clients[i], kvstore::KvStoreClient::Connect(client_options, std::string(fp.begin(), fp.end()),
                                                                 KvStoreLayout(c, page_size)));
  }

  const int32_t generate = absl::GetFlag(FLAGS_generate);
  const double MiB = 1024.0 * 1024.0;
  std::printf("model %s: %d layers, %d KV heads x %d, backend %s (%d threads); pages of %d tokens (fp32); "
              "quest/leoam budget %s; device budget %.0f%% of the KV\n\n",
              path.c_str(), c.num_layers, c.num_kv_heads, c.head_dim, std::string(backend->name()).c_str(),
              backend->num_threads(), page_size, absl::GetFlag(FLAGS_budget).c_str(),
              absl::GetFlag(FLAGS_device_fraction) * 100);
  std::printf("| context | mode | KV MiB | device MiB | decode ms/token | vs offload-all (same prefetch) | attended tok/layer-step | "
              "hit rate | fetched MiB/step (mem) | fetched MiB/step (disk) | written MiB/step | stall ms/step "
              "(of it RPC) | "
              "prefetch hits / misses | prefill s (cached tok) | policy probe s | re-estimation ms/step |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (absl::string_view ctx_text : absl::StrSplit(absl::GetFlag(FLAGS_contexts), ',')) {
    int32_t context = 0;
    if (!absl::SimpleAtoi(ctx_text, &context) || context <= 0) return absl::InvalidArgumentError("--contexts");
    std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
    std::uniform_int_distribution<int32_t> id(3, c.vocab_size - 1);
    std::vector<int32_t> prompt(context);
    for (int32_t& t : prompt) t = id(rng);
    const int32_t capacity = context + generate;
    const int64_t pages = (capacity + page_size - 1) / page_size;
    const int64_t kv_bytes = pages * c.num_layers * 2 * int64_t{page_size} * c.kv_dim() * 4;
    const int64_t device_bytes = static_cast<int64_t>(kv_bytes * absl::GetFlag(FLAGS_device_fraction));
    double offload_ms[2] = {0.0, 0.0};  // the latest offload-all row, [no_prefetch]
    for (absl::string_view mode_name : absl::StrSplit(absl::GetFlag(FLAGS_modes), ',')) {
      std::vector<std::string> parts = absl::StrSplit(mode_name, '+');
      const std::string base = parts[0];
      bool no_prefetch = false, compress = false, reestimate = false, sticky = false, sticky_prev = false,
           page_walk = false, level0_in_store = false;
      for (size_t i = 1; i < parts.size(); ++i) {
        if (parts[i] == "nopf") {
          no_prefetch = true;
        } else if (parts[i] == "re") {
          reestimate = true;
        } else if (parts[i] == "sticky") {
          sticky = true;
        } else if (parts[i] == "stickyprev") {
          sticky_prev = true;
        } else if (parts[i] == "pagewalk") {
          page_walk = true;
        } else if (parts[i] == "l0store") {
          level0_in_store = true;
        } else if (parts[i] == "comp") {
          compress = true;
        } else {
          return absl::InvalidArgumentError(absl::StrFormat("--modes: unknown suffix +%s", parts[i]));
        }
      }
      const bool eq = base == "leoam-eq", fixed = base == "leoam-fixed";
      ASSIGN_OR_RETURN(SelectionMode mode, ParseSelectionMode(eq || fixed ? "leoam" : base));
      GenerateOptions options;
      options.max_tokens = generate + 1;  // the first token comes from the prompt pass
      options.max_context = capacity + 1;
      options.stop_tokens = {};
      if (mode != SelectionMode::kDense) {
        PagedKvOptions paged;
        paged.mode = mode;
        paged.page_size = page_size;
        RETURN_IF_ERROR(ParseBudget(absl::GetFlag(FLAGS_budget), paged));
        paged.device_budget_bytes = device_bytes;
        paged.kvstore = clients[compress].get();
        paged.fingerprint = fingerprints[compress];
        paged.selection.equal_total_budget = eq;
        paged.selection.adaptive = !fixed;
        paged.prefetch = !no_prefetch;
        paged.compression.enabled = compress;
        paged.reestimation.enabled = reestimate;
        paged.selection.refine_by_pages = page_walk;
        paged.level0_in_store = level0_in_store;
        if (sticky || sticky_prev) {
          paged.selection.resident_logit_margin = static_cast<float>(absl::GetFlag(FLAGS_resident_margin));
        }
        if (sticky_prev) paged.selection.preferred_pages = SelectionOptions::PreferredPages::kPreviousSelection;
        options.paged_kv = paged;
        options.reuse_prefix = absl::GetFlag(FLAGS_reuse_prefix);
      }
      ASSIGN_OR_RETURN(GenerateResult r, Generate(*model, nullptr, prompt, options));
      const int64_t steps = static_cast<int64_t>(r.tokens.size()) - 1;
      if (steps <= 0) return absl::InternalError("no decode step ran");
      const double ms = r.decode_seconds * 1e3 / steps;
      // Speedups are against offload-all with the same prefetch setting, plain or +nopf.
      if (base == "offload-all" && !compress) offload_ms[no_prefetch] = ms;
      const double versus = offload_ms[no_prefetch];
      const PagedKvStats& st = r.kv_stats;
      const bool paged = mode != SelectionMode::kDense;
      const double attended = paged && st.selections > 0 ? static_cast<double>(st.tokens_attended) / st.selections
                                                         : context + generate / 2.0;
      const int64_t looked = st.cache_hits + st.cache_misses;
      std::printf("| %d | %s | %.0f | %s | %.1f | %s | %.0f | %s | %.2f | %.2f | %.2f | %.2f (%.2f) | %s | %.1f (%d) | %.1f | %s |\n",
                  context,
                  std::string(mode_name).c_str(), kv_bytes / MiB,
                  paged ? absl::StrFormat("%.0f", device_bytes / MiB).c_str() : "all",
                  ms, versus > 0 ? absl::StrFormat("%.2fx", versus / ms).c_str() : "-", attended,
                  looked > 0 ? absl::StrFormat("%.2f", static_cast<double>(st.cache_hits) / looked).c_str() : "-",
                  st.bytes_fetched_memory / MiB / steps, st.bytes_fetched_disk / MiB / steps,
                  st.bytes_written / MiB / steps, st.fetch_stall_seconds * 1e3 / steps,
                  st.fetch_rpc_seconds * 1e3 / steps,
                  paged ? absl::StrFormat("%d / %d", st.prefetch_hits, st.cache_misses).c_str() : "-",
                  r.prefill_seconds, r.prefix.cached_tokens, r.policy_seconds,
                  reestimate ? absl::StrFormat("%.2f (%d obs)", st.reestimate_seconds * 1e3 / steps,
                                               st.reestimate_observations).c_str()
                             : "-");
      std::fflush(stdout);
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "Decode ms/token vs context for dense / offload-all / quest / leoam with KV tiers.\n"
                    "  leoam-bench-decode --model m.gguf --kvstore unix:///tmp/kv/kv.sock --contexts 1024,2048");
  absl::Status status = leoam::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-bench-decode: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
