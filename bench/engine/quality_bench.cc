// leoam-bench-quality: how close sparse KV selection (quest, leoam) stays to dense attention.
//
// For a model and a context length: build a prompt (sampled from the model itself, or random ids),
// run it dense and generate N greedy tokens; then, per mode and budget, run the same prompt and
// feed dense's tokens (teacher forcing, so positions stay aligned) and compare each decode step's
// next-token distribution with dense's: top-1 agreement, mean KL(dense || mode), and the share
// of the true attention mass (exact softmax over the whole context, mean over query heads) that
// falls on the selected pages, averaged over layers and steps. Prints a markdown table.
//
//   leoam-bench-quality --model stories260K.gguf --context 400 --generate 64 --budgets 0.25,0.5
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "compute/engine/generate.h"
#include "compute/engine/paged_kv.h"
#include "compute/model/backend_select.h"
#include "compute/model/fingerprint.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama_model.h"

ABSL_FLAG(std::string, model, "", "GGUF model (required).");
ABSL_FLAG(std::string, label, "", "Name of the model in the table (default: the file name).");
ABSL_FLAG(int32_t, context, 400, "Positions in all: prompt + generated tokens.");
ABSL_FLAG(int32_t, generate, 64, "Decode steps compared (teacher-forced with dense's greedy tokens).");
ABSL_FLAG(std::string, budgets, "0.25,0.5",
          "Comma-separated budgets per layer: tokens (512) or fractions of the context (0.1).");
ABSL_FLAG(std::string, modes, "quest,leoam,leoam-eq,leoam-fixed",
          "Comma-separated modes: quest, leoam (adaptive per layer; dense layers come on top of the budget), "
          "leoam-eq (adaptive, total over layers kept at layers x budget), leoam-fixed (no per-layer "
          "adaptivity: every layer sparse at the base budget). Suffix +tier: tiered through --kvstore (pages beyond "
          "the device budget fetched back; must equal the plain mode); +comp: tiered with dynamic page compression "
          "(its quality cost); +re: online re-estimation of the per-layer policies (leoam modes; combinable, e.g. "
          "leoam-eq+re+tier); +sticky: tiered with the resident-page hysteresis of --resident_margin; +stickyprev: the same "
          "hysteresis for the previous step's pages (tiered or not); +pagewalk: leoam's walk refines "
          "refine_factor x budget pages' worth of nodes per level (SelectionOptions::refine_by_pages).");
ABSL_FLAG(int32_t, page_size, 16, "Tokens per page.");
ABSL_FLAG(std::string, prompt, "model",
          "Prompt source: model (BOS + tokens sampled from the model at temperature 1) or random (uniform ids).");
ABSL_FLAG(int64_t, seed, 1, "Seed of the prompt.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: LEOAM_THREADS or every CPU).");
ABSL_FLAG(int32_t, prefill_chunk, 512, "Prompt tokens per forward pass.");
ABSL_FLAG(bool, header, true, "Print the table header.");
ABSL_FLAG(std::string, kvstore, "",
          "Target of a running leoam-kvstore: needed by modes with a +tier or +comp suffix (device page budget of "
          "--device-fraction; +comp: dynamic page compression).");
ABSL_FLAG(double, device_fraction, 0.25, "+tier / +comp modes: device page budget as a fraction of the KV.");
ABSL_FLAG(double, resident_margin, 1.0,
          "+sticky (tiered quest/leoam): SelectionOptions::resident_logit_margin, the hysteresis that keeps resident "
          "pages unless a page not on the device beats them by this many logits.");
ABSL_FLAG(double, fp16_gap, 2.0, "+comp: pages within this many logits of the layer's top bound are stored fp16.");
ABSL_FLAG(double, int8_gap, 6.0, "+comp: ... within this many int8, the rest int4.");
ABSL_FLAG(int32_t, re_interval, 8, "+re: decode steps between two observations of a layer.");
ABSL_FLAG(double, re_smoothing, 0.3, "+re: weight of a new observation in the moving averages.");
ABSL_FLAG(int32_t, re_dense_interval, 32, "+re: decode steps between two observations of a dense layer.");
ABSL_FLAG(bool, re_start_level, true, "+re: let re-estimation set start levels (false: the ablation).");
ABSL_FLAG(bool, re_budget, true, "+re: let re-estimation move budget between layers (false: the ablation).");
ABSL_FLAG(bool, layer_report, false,
          "After the table, per row and layer: attention mass captured, mass in the top 10% of pages, and (leoam) "
          "the final policy (dense / budget scale / start level).");

namespace leoam {
namespace {

int32_t Argmax(const std::vector<float>& x) {
  return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());
}

std::vector<double> LogSoftmax(const std::vector<float>& x) {
  const double m = *std::max_element(x.begin(), x.end());
  double sum = 0.0;
  for (float v : x) sum += std::exp(v - m);
  const double lse = m + std::log(sum);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - lse;
  return out;
}

double Kl(const std::vector<double>& logp, const std::vector<double>& logq) {
  double kl = 0.0;
  for (size_t i = 0; i < logp.size(); ++i) kl += std::exp(logp[i]) * (logp[i] - logq[i]);
  return std::max(0.0, kl);
}

absl::StatusOr<std::vector<int32_t>> MakePrompt(LlamaModel& model, int32_t length) {
  const ModelConfig& c = model.config();
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  if (absl::GetFlag(FLAGS_prompt) == "random") {
    std::uniform_int_distribution<int32_t> id(3, c.vocab_size - 1);
    std::vector<int32_t> prompt(length);
    for (int32_t& t : prompt) t = id(rng);
    return prompt;
  }
  if (absl::GetFlag(FLAGS_prompt) != "model") return absl::InvalidArgumentError("--prompt: model or random");
  const std::vector<int32_t> bos = {1};
  GenerateOptions options;
  options.max_tokens = length - 1;
  options.sampling.temperature = 1.0f;
  options.sampling.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  ASSIGN_OR_RETURN(GenerateResult r, Generate(model, nullptr, bos, options));  // no tokenizer: runs to length
  std::vector<int32_t> prompt = bos;
  prompt.insert(prompt.end(), r.tokens.begin(), r.tokens.end());
  return prompt;
}

struct Row {
  std::string mode, budget;
  double agree = 0, kl = 0, mass = 0, attended = 0, context = 0, abstracts = 0;
  double oracle = 0, top_tenth = 0;  // best pages of the selected count; top 10% of the pages
  double re_ms_per_step = -1;        // +re: re-estimation time per decode step (all layers)
  int dense_layers = -1;
  std::vector<double> layer_mass, layer_top_tenth;  // per layer, means over its selections
  std::vector<LayerPolicy> policies;                // leoam: the final policies
  std::string stored = "-";  // tiered: bytes written vs f32, and the encoding mix
  std::string hit_rate = "-";  // tiered: selected pages found on the device during decode
};

absl::Status Run() {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty()) return absl::InvalidArgumentError("--model is required (see --help)");
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
                   CreateBackend(BackendChoice{"cpu", absl::GetFlag(FLAGS_threads)}));
  ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> model,
                   LlamaModel::Load(path, *backend, {.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk)}));
  const ModelConfig& c = model->config();
  const int32_t context = absl::GetFlag(FLAGS_context);
  const int32_t steps = absl::GetFlag(FLAGS_generate);
  if (steps < 1 || context <= steps + 1) return absl::InvalidArgumentError("need --context > --generate + 1 >= 2");
  ASSIGN_OR_RETURN(std::vector<int32_t> prompt, MakePrompt(*model, context - steps));

  // Dense reference: greedy tokens and the logits of each decode step.
  std::vector<float> logits(c.vocab_size);
  std::vector<int32_t> tokens;               // tokens[i] is fed at decode step i
  std::vector<std::vector<double>> ref_logp;  // [steps][vocab]
  {
    ASSIGN_OR_RETURN(KvCache cache, KvCache::Create(*backend, c, context));
    RETURN_IF_ERROR(model->Forward(prompt, 0, cache, false, logits.data()));
    for (int32_t i = 0; i < steps; ++i) {
      tokens.push_back(Argmax(logits));
      const int32_t one[1] = {tokens.back()};
      RETURN_IF_ERROR(model->Forward(one, static_cast<int32_t>(prompt.size()) + i, cache, false, logits.data()));
      ref_logp.push_back(LogSoftmax(logits));
    }
  }

  // Tiered rows: exact and compressed pages under their own fingerprints.
  std::unique_ptr<kvstore::KvStoreClient> clients[2];
  Hash128 fingerprints[2] = {};
  if (!absl::GetFlag(FLAGS_kvstore).empty()) {
    const Hash128 content = GgufContentHash(model->file());
    const int32_t ps = absl::GetFlag(FLAGS_page_size);
    fingerprints[0] = ModelFingerprint(content, c, {.page_size = ps});
    fingerprints[1] = ModelFingerprint(content, c, {.page_size = ps, .dtype = kCompressedPagesDtype});
    for (int i = 0; i < 2; ++i) {
      kvstore::ClientOptions co;
      co.target = absl::GetFlag(FLAGS_kvstore);
      co.client_name = "leoam-bench-quality";
      const Hash128& fp = fingerprints[i];
      ASSIGN_OR_RETURN(clients[i],
                       kvstore::KvStoreClient::Connect(co, std::string(fp.begin(), fp.end()), KvStoreLayout(c, ps)));
    }
  }
  std::vector<Row> rows;
  for (absl::string_view budget : absl::StrSplit(absl::GetFlag(FLAGS_budgets), ',', absl::SkipWhitespace())) {
    for (absl::string_view mode_name : absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipWhitespace())) {
      PagedKvOptions o;
      o.page_size = absl::GetFlag(FLAGS_page_size);
      o.collect_stats = true;
      RETURN_IF_ERROR(ParseBudget(std::string(budget), o));
      const std::vector<std::string> parts = absl::StrSplit(mode_name, '+');
      const std::string base = parts[0];
      bool tier = false, comp = false, re = false, sticky = false, sticky_prev = false, page_walk = false;
      for (size_t i = 1; i < parts.size(); ++i) {
        if (parts[i] == "tier") {
          tier = true;
        } else if (parts[i] == "sticky") {
          tier = sticky = true;
        } else if (parts[i] == "stickyprev") {
          sticky_prev = true;
        } else if (parts[i] == "pagewalk") {
          page_walk = true;
        } else if (parts[i] == "comp") {
          tier = comp = true;
        } else if (parts[i] == "re") {
          re = true;
        } else {
          return absl::InvalidArgumentError(absl::StrCat("--modes: bad suffix '", parts[i], "' in ", mode_name));
        }
      }
      if (tier && clients[0] == nullptr) return absl::InvalidArgumentError("+tier / +comp modes need --kvstore");
      const bool fixed = base == "leoam-fixed";
      const bool equal = base == "leoam-eq";
      ASSIGN_OR_RETURN(o.mode, ParseSelectionMode(fixed || equal ? "leoam" : base));
      o.selection.adaptive = !fixed;
      o.selection.equal_total_budget = equal;
      o.selection.refine_by_pages = page_walk;
      if (sticky || sticky_prev) {
        o.selection.resident_logit_margin = static_cast<float>(absl::GetFlag(FLAGS_resident_margin));
      }
      if (sticky_prev) o.selection.preferred_pages = SelectionOptions::PreferredPages::kPreviousSelection;
      if (re) {
        if (o.mode != SelectionMode::kLeoam) return absl::InvalidArgumentError("+re needs a leoam mode");
        o.reestimation.enabled = true;
        o.reestimation.interval = absl::GetFlag(FLAGS_re_interval);
        o.reestimation.dense_interval = absl::GetFlag(FLAGS_re_dense_interval);
        o.reestimation.smoothing = static_cast<float>(absl::GetFlag(FLAGS_re_smoothing));
        o.reestimation.adjust_start_level = absl::GetFlag(FLAGS_re_start_level);
        o.reestimation.move_budget = absl::GetFlag(FLAGS_re_budget);
      }
      if (tier) {
        const int64_t pages = (context + o.page_size - 1) / o.page_size;
        o.device_budget_bytes = static_cast<int64_t>(pages * c.num_layers * 2 * int64_t{o.page_size} * c.kv_dim() *
                                                     4 * absl::GetFlag(FLAGS_device_fraction));
        o.kvstore = clients[comp].get();
        o.fingerprint = fingerprints[comp];
        o.compression.enabled = comp;
        o.compression.fp16_gap = static_cast<float>(absl::GetFlag(FLAGS_fp16_gap));
        o.compression.int8_gap = static_cast<float>(absl::GetFlag(FLAGS_int8_gap));
        // Pages are written by this run (the store keeps a page's first copy).
        RETURN_IF_ERROR(o.kvstore->DropAll().status());
      }
      ASSIGN_OR_RETURN(std::unique_ptr<PagedKvSequence> seq, PagedKvSequence::Create(*backend, c, context, o));
      seq->PushTokens(prompt);
      RETURN_IF_ERROR(model->Forward(prompt, 0, *seq, false, logits.data()));
      seq->BeginDecode();
      Row row;
      row.mode = std::string(mode_name);
      row.budget = std::string(budget);
      for (int32_t i = 0; i < steps; ++i) {
        const int32_t one[1] = {tokens[i]};
        seq->PushTokens(one);
        RETURN_IF_ERROR(model->Forward(one, static_cast<int32_t>(prompt.size()) + i, *seq, false, logits.data()));
        const std::vector<double> logp = LogSoftmax(logits);
        const int32_t ref_top = static_cast<int32_t>(std::max_element(ref_logp[i].begin(), ref_logp[i].end()) -
                                                     ref_logp[i].begin());
        row.agree += Argmax(logits) == ref_top ? 1.0 : 0.0;
        row.kl += Kl(ref_logp[i], logp);
      }
      const PagedKvStats& st = seq->stats();
      if (tier) {
        int64_t written = seq->prefill_stats().bytes_written + st.bytes_written;
        int64_t exact = seq->prefill_stats().bytes_written_exact + st.bytes_written_exact;
        std::array<int64_t, 6> by = seq->prefill_stats().pages_written_by_encoding;
        for (size_t e = 0; e < by.size(); ++e) by[e] += st.pages_written_by_encoding[e];
        row.stored = absl::StrFormat("%.2f (f32/fp16/int8/int4 %d/%d/%d/%d)",
                                     exact > 0 ? static_cast<double>(written) / exact : 0.0, by[5], by[1], by[2], by[3]);
        const int64_t looked = st.cache_hits + st.cache_misses;
        if (looked > 0) row.hit_rate = absl::StrFormat("%.3f", static_cast<double>(st.cache_hits) / looked);
      }
      row.agree /= steps;
      row.kl /= steps;
      const double n = static_cast<double>(std::max<int64_t>(1, st.selections));
      row.mass = st.mass_captured / n;
      row.attended = st.tokens_attended / n;
      row.context = st.context_tokens / n;
      row.abstracts = st.counters.abstracts_read / n;
      row.oracle = st.mass_oracle / n;
      row.top_tenth = st.mass_top_tenth / n;
      if (re) row.re_ms_per_step = st.reestimate_seconds * 1e3 / steps;
      const double per_layer = static_cast<double>(std::max<int64_t>(1, st.selections / c.num_layers));
      for (size_t l = 0; l < st.layer_mass_captured.size(); ++l) {
        row.layer_mass.push_back(st.layer_mass_captured[l] / per_layer);
        row.layer_top_tenth.push_back(st.layer_mass_top_tenth[l] / per_layer);
      }
      if (o.mode == SelectionMode::kLeoam) {
        row.policies = seq->policies();
        row.dense_layers = static_cast<int>(std::count_if(seq->policies().begin(), seq->policies().end(),
                                                          [](const LayerPolicy& p) { return p.dense; }));
      }
      rows.push_back(row);
    }
  }

  std::string label = absl::GetFlag(FLAGS_label);
  if (label.empty()) label = path.substr(path.find_last_of('/') + 1);
  if (absl::GetFlag(FLAGS_header)) {
    std::printf("| model | context | steps | budget | mode | top-1 agree | mean KL(dense‖mode) | attn mass captured | "
                "oracle mass (same pages) | mass in top 10%% pages | tokens attended / layer | abstracts read / layer | "
                "dense layers (end) | re-est ms/step | stored bytes vs f32 | device cache hit rate |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  for (const Row& r : rows) {
    std::printf("| %s | %d | %d | %s | %s | %.3f | %.4f | %.3f | %.3f | %.3f | %.1f of %.1f | %.1f | %s | %s | %s | %s |\n",
                label.c_str(), context, steps, r.budget.c_str(), r.mode.c_str(), r.agree, r.kl, r.mass, r.oracle,
                r.top_tenth, r.attended, r.context, r.abstracts,
                r.dense_layers < 0 ? "-" : absl::StrFormat("%d of %d", r.dense_layers, c.num_layers).c_str(),
                r.re_ms_per_step < 0 ? "-" : absl::StrFormat("%.2f", r.re_ms_per_step).c_str(), r.stored.c_str(),
                r.hit_rate.c_str());
  }
  if (absl::GetFlag(FLAGS_layer_report)) {
    std::printf("\nPer layer: mass captured / mass in the top 10%% of pages [/ leoam policy: D dense or budget scale, "
                "start level]\n\n");
    for (const Row& r : rows) {
      std::string line = absl::StrFormat("%s %s:", r.budget, r.mode);
      for (size_t l = 0; l < r.layer_mass.size(); ++l) {
        absl::StrAppendFormat(&line, " L%d %.2f/%.2f", l, r.layer_mass[l], r.layer_top_tenth[l]);
        if (l < r.policies.size()) {
          const LayerPolicy& p = r.policies[l];
          if (p.dense) {
            absl::StrAppend(&line, "/D");
          } else {
            absl::StrAppendFormat(&line, "/x%.2f,s%d", p.budget_scale, p.start_level);
          }
        }
      }
      std::printf("%s\n", line.c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace leoam

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "Compares sparse KV selection (quest, leoam) with dense attention: top-1 agreement, KL and "
                    "attention mass captured, teacher-forced.\n"
                    "  leoam-bench-quality --model m.gguf --context 400 --generate 64 --budgets 0.25,0.5");
  absl::Status status = leoam::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-bench-quality: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
