// leoam-run: generate text from a GGUF model in a single process; with --kvstore, KV pages that do
// not fit the device budget live in a running leoam-kvstore.
//
//   leoam-run --model M.gguf --prompt "..." --mode leoam --kvstore unix:///tmp/kv/kvstore.sock --device-budget 64MiB
//   leoam-run --model M.gguf --prompt "Once upon a time" --mode leoam --budget 0.1 --page-size 16
//   leoam-run --model M.gguf --prompt "Once upon a time" --max-tokens 64
//   leoam-run --model M.gguf --prompt-ids 1,403,407 --max-tokens 0 --logits-out logits.f32
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "compute/engine/generate.h"
#include "compute/model/backend_select.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "common/flags.h"
#include "compute/tokenizer/tokenizer.h"

ABSL_FLAG(std::string, model, "", "Path of the GGUF model (required).");
ABSL_FLAG(std::string, prompt, "", "Prompt text.");
ABSL_FLAG(std::string, prompt_file, "", "Read the prompt text from this file instead of --prompt.");
ABSL_FLAG(std::string, prompt_ids, "",
          "Comma-separated prompt token ids, used verbatim (no BOS is added); replaces --prompt.");
ABSL_FLAG(int32_t, max_tokens, 256, "Most tokens to generate (0: run the prompt only).");
ABSL_FLAG(int32_t, ctx, 0, "Context limit in tokens, prompt included (0: the model's context_length).");
ABSL_FLAG(double, temperature, 0.8, "Sampling temperature; 0 is greedy (argmax).");
ABSL_FLAG(int32_t, top_k, 40, "Keep the k most likely tokens (0: off).");
ABSL_FLAG(double, top_p, 0.95, "Nucleus sampling threshold in (0, 1] (1: off).");
ABSL_FLAG(double, min_p, 0.05, "Drop tokens below min_p times the top probability, in [0, 1) (0: off).");
ABSL_FLAG(int64_t, seed, -1, "Sampling seed; -1 picks one at random (printed with --json).");
ABSL_FLAG(std::string, stop_tokens, "", "Comma-separated token ids that also end generation.");
ABSL_FLAG(bool, no_bos, false, "Do not prepend BOS to a text prompt.");
ABSL_FLAG(bool, parse_special, false, "Recognize special-token text such as <|im_start|> in the prompt.");
ABSL_FLAG(bool, json, false,
          "Print one JSON object (prompt_ids, generated_ids, text, finish_reason, timings) instead of streaming text.");
ABSL_FLAG(std::string, logits_out, "",
          "Write the float32 logits of every prompt position, [prompt_tokens, vocab] row-major little-endian.");
ABSL_FLAG(int32_t, prefill_chunk, 512, "Prompt tokens per forward pass (1 runs the prompt token by token).");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: LEOAM_THREADS or every CPU).");
ABSL_FLAG(std::string, backend, "auto", "Compute backend: auto (GPU when present), cpu or cuda.");
ABSL_FLAG(std::string, mode, "dense",
          "KV mode: dense (contiguous cache, full attention), quest (pages, top-k pages by key bound), leoam "
          "(pages, adaptive pyramid selection) or offload-all (pages, every page fetched from --kvstore at every "
          "step, FlexGen-like). Prefill is exact in every mode.");
ABSL_FLAG(std::string, budget, "0.1",
          "quest/leoam: KV tokens attended per layer per decode step: an integer (tokens, e.g. 512) or a fraction of "
          "the context with a decimal point (e.g. 0.1; 1.0 attends everything).");
ABSL_FLAG(int32_t, page_size, 16, "quest/leoam: tokens per KV page.");
ABSL_FLAG(std::string, kvstore, "",
          "Target of a running leoam-kvstore, e.g. unix:///tmp/leoam-kvstore/kvstore.sock: enables the KV tiers "
          "(full pages are written through to the store; pages beyond --device-budget are fetched back). Needed by "
          "--mode offload-all and by --device-budget.");
ABSL_FLAG(std::string, device_budget, "0",
          "quest/leoam/offload-all: bytes of KV pages kept in device memory (host memory on the CPU backend), "
          "e.g. 64MiB; 0 keeps every page resident. Needs --kvstore.");
ABSL_FLAG(bool, compress_pages, false,
          "With --kvstore: dynamic compression of the pages written to the store (fp16 / int8 / int4 by each page's "
          "estimated importance, sink pages exact; decoded when fetched back). Off: pages are stored exact (f32).");
ABSL_FLAG(bool, prefetch, true,
          "With --kvstore: while a layer computes, fetch the pages the next layer is predicted to select (DTP). "
          "--noprefetch is the ablation; it changes timing only.");
ABSL_FLAG(std::string, prefill_order, "auto",
          "Order the prompt runs in: token-major (each chunk of --prefill-chunk tokens through every layer), "
          "layer-major (each layer over the whole prompt, chunk by chunk: only one layer's KV plus the prompt's "
          "hidden states need device memory; last-token logits only, so not with --logits-out) or auto "
          "(layer-major when a paged mode with --device-budget (not offload-all) gets a prompt of more than one "
          "chunk whose KV exceeds the device budget; token-major otherwise). Same logits either way.");
ABSL_FLAG(bool, equal_total_budget, false,
          "leoam: keep the total budget over layers at layers x --budget (layers measured flat run dense only as far "
          "as that total pays for; leoam-bench-decode's leoam-eq). Off: flat layers run dense on top of the budget.");
ABSL_FLAG(int32_t, score_retention_steps, 0,
          "quest/leoam with --device-budget: score-aware replacement of the device page cache. A selected page "
          "outlives up to N decode steps of pages selected after it, in proportion to its share of the step's "
          "estimated attention mass (e.g. 8); 0 is plain least-recently-selected (default: no gain measured yet).");
ABSL_FLAG(double, resident_margin, 0.0,
          "quest/leoam with --device-budget: hysteresis against the device page cache. A page on the device keeps "
          "its place in a decode selection unless another page's estimated mass is larger by e^margin (logit "
          "units; 1 is what bench/results/engine_leoam.md section 6 measures: fewer misses, a small quality cost). "
          "The selection then depends on what is resident. 0: off (default).");
ABSL_FLAG(bool, level0_in_store, false,
          "leoam with --kvstore and --device-budget: keep the abstract pyramid's lowest level in the store (freed here "
          "once a page is written through; selection reads its candidates' back each step): half the abstract memory, "
          "one more store round trip per layer and step. Off by default.");
ABSL_FLAG(bool, reestimate, false,
          "leoam: re-estimate the per-layer policies online from the exact attention over the selected pages "
          "(budget moved between layers, total kept; dense layers may turn sparse and the reverse). Off: the "
          "policies measured at the end of the prompt stay fixed (default: no quality gain measured yet).");
ABSL_FLAG(int32_t, reestimate_interval, 8, "With --reestimate: decode steps between two observations of a layer.");
ABSL_FLAG(bool, reuse_prefix, true,
          "With --kvstore and a tiered mode: restore the longest prompt prefix the store already holds (pages of "
          "earlier requests, also after a store restart) instead of recomputing it.");

namespace leoam {
namespace {

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", part, "' is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read prompt file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status Run() {
  const std::string model_path = absl::GetFlag(FLAGS_model);
  if (model_path.empty()) return absl::InvalidArgumentError("--model is required (see --help)");

  BackendChoice choice{absl::GetFlag(FLAGS_backend), absl::GetFlag(FLAGS_threads)};
  absl::StatusOr<std::unique_ptr<kernels::Backend>> backend = CreateBackend(choice);
  if (!backend.ok()) return backend.status();

  const absl::Time load_start = absl::Now();
  ModelOptions model_options;
  model_options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  absl::StatusOr<std::unique_ptr<LlamaModel>> model = LlamaModel::Load(model_path, **backend, model_options);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromGguf((*model)->file());
  if (!tokenizer.ok()) return tokenizer.status();
  const double load_seconds = absl::ToDoubleSeconds(absl::Now() - load_start);

  // Prompt: ids verbatim, or text through the tokenizer.
  std::vector<int32_t> prompt;
  std::string prompt_text;
  if (!absl::GetFlag(FLAGS_prompt_ids).empty()) {
    absl::StatusOr<std::vector<int32_t>> ids = ParseIds(absl::GetFlag(FLAGS_prompt_ids), "prompt_ids");
    if (!ids.ok()) return ids.status();
    prompt = *ids;
    prompt_text = (*tokenizer)->Decode(prompt);
  } else {
    prompt_text = absl::GetFlag(FLAGS_prompt);
    if (!absl::GetFlag(FLAGS_prompt_file).empty()) {
      absl::StatusOr<std::string> text = ReadFile(absl::GetFlag(FLAGS_prompt_file));
      if (!text.ok()) return text.status();
      prompt_text = *text;
    }
    EncodeOptions encode;
    encode.add_bos = !absl::GetFlag(FLAGS_no_bos);
    encode.parse_special = absl::GetFlag(FLAGS_parse_special);
    prompt = (*tokenizer)->Encode(prompt_text, encode);
  }
  if (prompt.empty()) {
    return absl::InvalidArgumentError("the prompt is empty (give --prompt, --prompt-file or --prompt-ids)");
  }

  GenerateOptions options;
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  options.max_context = absl::GetFlag(FLAGS_ctx);
  options.sampling.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  options.sampling.top_k = absl::GetFlag(FLAGS_top_k);
  options.sampling.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  options.sampling.min_p = static_cast<float>(absl::GetFlag(FLAGS_min_p));
  int64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed < 0) seed = static_cast<int64_t>(std::random_device{}() >> 1);
  options.sampling.seed = static_cast<uint64_t>(seed);
  absl::StatusOr<std::vector<int32_t>> stops = ParseIds(absl::GetFlag(FLAGS_stop_tokens), "stop_tokens");
  if (!stops.ok()) return stops.status();
  options.stop_tokens = *stops;
  absl::StatusOr<SelectionMode> mode = ParseSelectionMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return absl::InvalidArgumentError(absl::StrCat("--mode: ", mode.status().message()));
  std::unique_ptr<kvstore::KvStoreClient> kvstore_client;  // outlives the generation
  if (*mode != SelectionMode::kDense) {
    PagedKvOptions paged;
    paged.mode = *mode;
    paged.page_size = absl::GetFlag(FLAGS_page_size);
    if (absl::Status s = ParseBudget(absl::GetFlag(FLAGS_budget), paged); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--budget: ", s.message()));
    }
    absl::StatusOr<int64_t> device_budget = ParseByteSize(absl::GetFlag(FLAGS_device_budget));
    if (!device_budget.ok()) return absl::InvalidArgumentError(absl::StrCat("--device-budget: ", device_budget.status().message()));
    paged.device_budget_bytes = *device_budget;
    paged.compression.enabled = absl::GetFlag(FLAGS_compress_pages);
    paged.prefetch = absl::GetFlag(FLAGS_prefetch);
    paged.score_retention_steps = absl::GetFlag(FLAGS_score_retention_steps);
    paged.selection.equal_total_budget = absl::GetFlag(FLAGS_equal_total_budget);
    paged.selection.resident_logit_margin = static_cast<float>(absl::GetFlag(FLAGS_resident_margin));
    paged.level0_in_store = absl::GetFlag(FLAGS_level0_in_store);
    if (!(paged.selection.resident_logit_margin >= 0.0f)) return absl::InvalidArgumentError("--resident-margin must be >= 0");
    paged.reestimation.enabled = absl::GetFlag(FLAGS_reestimate);
    paged.reestimation.interval = absl::GetFlag(FLAGS_reestimate_interval);
    if (paged.reestimation.interval <= 0) return absl::InvalidArgumentError("--reestimate-interval must be > 0");
    if (paged.score_retention_steps < 0) return absl::InvalidArgumentError("--score-retention-steps must be >= 0");
    const std::string target = absl::GetFlag(FLAGS_kvstore);
    if (!target.empty()) {
      const absl::Time fp_start = absl::Now();
      paged.fingerprint = ModelFingerprint(GgufContentHash((*model)->file()), (*model)->config(),
                                           {.page_size = paged.page_size,
                                            .dtype = paged.compression.enabled ? kCompressedPagesDtype : "f32"});
      kvstore::ClientOptions client_options;
      client_options.target = target;
      client_options.client_name = "leoam-run";
      const Hash128& fp = paged.fingerprint;
      absl::StatusOr<std::unique_ptr<kvstore::KvStoreClient>> client = kvstore::KvStoreClient::Connect(
          client_options, std::string(fp.begin(), fp.end()), KvStoreLayout((*model)->config(), paged.page_size));
      if (!client.ok()) {
        return absl::Status(client.status().code(),
                            absl::StrCat("--kvstore ", target, ": ", client.status().message()));
      }
      kvstore_client = std::move(*client);
      paged.kvstore = kvstore_client.get();
      std::fprintf(stderr, "[kv] model fingerprint %s (hashed in %.0f ms); kvstore %s\n", HashHex(fp).c_str(),
                   absl::ToDoubleMilliseconds(absl::Now() - fp_start), target.c_str());
    } else if (paged.device_budget_bytes > 0 || paged.mode == SelectionMode::kOffloadAll) {
      return absl::InvalidArgumentError("--device-budget and --mode offload-all need --kvstore");
    }
    options.paged_kv = paged;
  } else if (!absl::GetFlag(FLAGS_kvstore).empty()) {
    return absl::InvalidArgumentError("--kvstore needs a paged mode (--mode leoam, quest or offload-all)");
  }
  options.reuse_prefix = absl::GetFlag(FLAGS_reuse_prefix);
  absl::StatusOr<PrefillOrder> order = ParsePrefillOrder(absl::GetFlag(FLAGS_prefill_order));
  if (!order.ok()) return absl::InvalidArgumentError(absl::StrCat("--prefill-order: ", order.status().message()));
  options.prefill_order = *order;
  const std::string logits_out = absl::GetFlag(FLAGS_logits_out);
  options.keep_prompt_logits = !logits_out.empty();
  if (options.keep_prompt_logits && options.prefill_order == PrefillOrder::kLayerMajor) {
    return absl::InvalidArgumentError("--logits-out needs every prompt position's logits: not with --prefill-order "
                                      "layer-major (use auto or token-major)");
  }

  // Check everything before echoing the prompt, so a bad flag prints only its error.
  if (absl::Status s = ValidateSamplingParams(options.sampling); !s.ok()) return s;
  const bool json = absl::GetFlag(FLAGS_json);
  StreamingDetokenizer detok(**tokenizer, /*at_text_start=*/prompt_text.empty());
  std::string generated_text;
  if (!json) {
    std::fwrite(prompt_text.data(), 1, prompt_text.size(), stdout);
    std::fflush(stdout);
  }
  auto on_token = [&](int32_t id) {
    std::string piece = detok.Push(id);
    generated_text += piece;
    if (!json && !piece.empty()) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  };
  absl::StatusOr<GenerateResult> result = Generate(**model, tokenizer->get(), prompt, options, on_token);
  if (!result.ok()) return result.status();
  std::string tail = detok.Flush();
  generated_text += tail;

  if (!logits_out.empty()) {
    std::ofstream out(logits_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(result->prompt_logits.data()),
              static_cast<std::streamsize>(result->prompt_logits.size() * sizeof(float)));
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", logits_out));
  }

  const double prefill_tps = result->prefill_seconds > 0 ? result->prompt_tokens / result->prefill_seconds : 0.0;
  const double decode_steps = result->tokens.empty() ? 0.0 : static_cast<double>(result->tokens.size() - 1);
  const double decode_tps = result->decode_seconds > 0 && decode_steps > 0 ? decode_steps / result->decode_seconds : 0.0;
  const PagedKvStats& stats = result->kv_stats;
  const double mean_attended = stats.selections > 0 ? static_cast<double>(stats.tokens_attended) / stats.selections : 0;
  const double mean_context = stats.selections > 0 ? static_cast<double>(stats.context_tokens) / stats.selections : 0;
  if (json) {
    std::cout << "{\"model\": " << JsonString(model_path) << ", \"backend\": " << JsonString((*backend)->name())
              << ", \"seed\": " << seed << ", \"prompt_ids\": [" << absl::StrJoin(prompt, ", ")
              << "], \"generated_ids\": [" << absl::StrJoin(result->tokens, ", ")
              << "], \"prompt\": " << JsonString(prompt_text) << ", \"text\": " << JsonString(generated_text)
              << ", \"finish_reason\": " << JsonString(FinishReasonName(result->finish_reason))
              << ", \"mode\": " << JsonString(absl::GetFlag(FLAGS_mode))
              << absl::StrFormat(", \"kv\": {\"selections\": %d, \"mean_tokens_attended\": %.2f, "
                                 "\"mean_context\": %.2f, \"abstracts_read\": %d, \"cache_hits\": %d, "
                                 "\"cache_misses\": %d, \"evictions\": %d, \"pages_written\": %d, "
                                 "\"bytes_fetched_memory\": %d, \"bytes_fetched_disk\": %d, \"fetch_stall_ms\": %.3f, "
                                 "\"bytes_written\": %d, \"bytes_written_f32\": %d, \"prefetch_pages\": %d, "
                                 "\"prefetch_hits\": %d, \"prefetch_wait_ms\": %.3f, \"reestimate_observations\": %d, "
                                 "\"reestimate_changes\": %d, \"reestimate_ms\": %.3f}",
                                 stats.selections, mean_attended, mean_context, stats.counters.abstracts_read,
                                 stats.cache_hits, stats.cache_misses, stats.evictions, stats.pages_written,
                                 stats.bytes_fetched_memory, stats.bytes_fetched_disk, stats.fetch_stall_seconds * 1e3,
                                 stats.bytes_written, stats.bytes_written_exact, stats.prefetch_pages,
                                 stats.prefetch_hits, stats.prefetch_wait_seconds * 1e3,
                                 stats.reestimate_observations, stats.reestimate_changes,
                                 stats.reestimate_seconds * 1e3)
              << absl::StrFormat(", \"prefix\": {\"cached_tokens\": %d, \"pages_memory\": %d, \"pages_disk\": %d, "
                                 "\"restore_ms\": %.3f, \"prefill_bytes_fetched_memory\": %d, "
                                 "\"prefill_bytes_fetched_disk\": %d, \"prefill_pages_fetched\": %d, "
                                 "\"prefill_fetch_stall_ms\": %.3f}",
                                 result->prefix.cached_tokens, result->prefix.pages_memory, result->prefix.pages_disk,
                                 result->prefix.seconds * 1e3, result->prefill_kv_stats.bytes_fetched_memory,
                                 result->prefill_kv_stats.bytes_fetched_disk,
                                 result->prefill_kv_stats.pages_fetched_memory +
                                     result->prefill_kv_stats.pages_fetched_disk,
                                 result->prefill_kv_stats.fetch_stall_seconds * 1e3)
              << ", \"prefill_order\": "
              << JsonString(result->layer_major_prefill ? "layer-major" : "token-major")
              << absl::StrFormat(
                     ", \"timings\": {\"load_ms\": %.3f, \"prefill_ms\": %.3f, \"policy_ms\": %.3f, "
                     "\"decode_ms\": %.3f, \"prefill_tokens_per_s\": %.2f, \"decode_tokens_per_s\": %.2f}}",
                     load_seconds * 1e3, result->prefill_seconds * 1e3, result->policy_seconds * 1e3,
                     result->decode_seconds * 1e3, prefill_tps, decode_tps)
              << std::endl;
  } else {
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fprintf(stdout, "\n");
    std::fprintf(stderr,
                 "\n[%s] prompt %d tokens, prefill (%s) %.1f ms (%.1f tok/s); generated %zu tokens, decode %.1f "
                 "tok/s; finish: %s; backend %s\n",
                 model_path.c_str(), result->prompt_tokens,
                 result->layer_major_prefill ? "layer-major" : "token-major", result->prefill_seconds * 1e3, prefill_tps,
                 result->tokens.size(), decode_tps, std::string(FinishReasonName(result->finish_reason)).c_str(),
                 std::string((*backend)->name()).c_str());
    if (stats.selections > 0) {
      std::fprintf(stderr, "[kv] mode %s: %.1f of %.1f context tokens attended per layer-step, %lld abstracts read\n",
                   absl::GetFlag(FLAGS_mode).c_str(), mean_attended, mean_context,
                   static_cast<long long>(stats.counters.abstracts_read));
    }
    if (stats.reestimate_observations > 0) {
      std::fprintf(stderr,
                   "[kv] re-estimation: %lld observations, %lld policy changes (%lld layers to sparse, %lld to dense), "
                   "%.1f ms\n",
                   static_cast<long long>(stats.reestimate_observations),
                   static_cast<long long>(stats.reestimate_changes),
                   static_cast<long long>(stats.reestimate_to_sparse), static_cast<long long>(stats.reestimate_to_dense),
                   stats.reestimate_seconds * 1e3);
    }
    if (kvstore_client != nullptr) {
      std::fprintf(stderr,
                   "[kv] prefix reuse: %d of %d prompt tokens restored from the kvstore (%d pages from memory, %d from "
                   "disk; restore %.1f ms, prompt read %.1f MiB back)\n",
                   result->prefix.cached_tokens, result->prompt_tokens, result->prefix.pages_memory,
                   result->prefix.pages_disk, result->prefix.seconds * 1e3,
                   (result->prefill_kv_stats.bytes_fetched_memory + result->prefill_kv_stats.bytes_fetched_disk) /
                       1048576.0);
      std::fprintf(stderr,
                   "[kv] device cache: %lld hits, %lld misses, %lld evictions; written %lld pages (%.1f MiB, %.0f%% of "
                   "f32); fetched %.1f MiB from memory tier, %.1f MiB from disk tier; fetch stall %.1f ms\n",
                   static_cast<long long>(stats.cache_hits), static_cast<long long>(stats.cache_misses),
                   static_cast<long long>(stats.evictions), static_cast<long long>(stats.pages_written),
                   stats.bytes_written / 1048576.0,
                   stats.bytes_written_exact > 0 ? 100.0 * stats.bytes_written / stats.bytes_written_exact : 100.0,
                   stats.bytes_fetched_memory / 1048576.0,
                   stats.bytes_fetched_disk / 1048576.0, stats.fetch_stall_seconds * 1e3);
      std::fprintf(stderr, "[kv] prefetch: %lld pages requested ahead, %lld of %lld misses served by them, waited %.1f ms\n",
                   static_cast<long long>(stats.prefetch_pages), static_cast<long long>(stats.prefetch_hits),
                   static_cast<long long>(stats.cache_misses), stats.prefetch_wait_seconds * 1e3);
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "Generates text from a GGUF model (llama, qwen2, qwen3; F32/F16/BF16/Q8_0) in one process.\n"
                    "  leoam-run --model model.gguf --prompt \"Once upon a time\" --max-tokens 64 [--temperature 0]\n"
                    "Flags may be written with dashes or underscores (--max-tokens, --max_tokens).");
  absl::Status status = leoam::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-run: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
