// leoam-synth: writes a synthetic (random-weight, seeded) Llama-family model as a GGUF file.
//
//   leoam-synth --preset tiny-llama --out /tmp/tiny.gguf
//   leoam-synth --preset llama3.1-8b --dtype q8_0 --seed 7 --out llama8b-shape.gguf
//   leoam-synth --arch qwen3 --dim 256 --layers 4 --heads 8 --kv-heads 2 --head-dim 64 --out m.gguf
//   leoam-synth --preset llama-124m-structured --out structured.gguf   (attention with structure)
//   leoam-synth --preset llama-124m --qk-scale 2 --retrieval-logit 0,0,8,12,... --out m.gguf
//   leoam-synth --list-presets
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "compute/synth/synthetic_model.h"
#include "compute/synth/synthetic_spec.h"

ABSL_FLAG(std::string, preset, "",
          "Preset to start from (see --list_presets); empty: a custom model from the flags below, starting from "
          "the tiny-llama shape");
ABSL_FLAG(bool, list_presets, false, "Print the presets and exit");
ABSL_FLAG(std::string, out, "", "Output GGUF path (required unless --list_presets)");
ABSL_FLAG(std::optional<std::string>, arch, std::nullopt, "Architecture: llama, qwen2 or qwen3 (overrides the preset) (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, dim, std::nullopt, "Embedding size (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, layers, std::nullopt, "Number of transformer blocks (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, heads, std::nullopt, "Attention (query) heads (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, kv_heads, std::nullopt, "Key/value heads (must divide --heads) (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, head_dim, std::nullopt, "Per-head size (default for a custom model: dim / heads) (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, ffn, std::nullopt, "Feed-forward hidden size (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, vocab, std::nullopt, "Vocabulary size (exact) (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, context, std::nullopt, "Context length written to the GGUF (unset: the preset's value)");
ABSL_FLAG(std::optional<float>, rope_base, std::nullopt, "RoPE frequency base (unset: the preset's value)");
ABSL_FLAG(std::optional<bool>, llama3_rope_scaling, std::nullopt, "Write Llama-3 rope_freqs factors (unset: the preset's value)");
ABSL_FLAG(std::optional<bool>, tied_output, std::nullopt, "Reuse token_embd as the output projection (unset: the preset's value)");
ABSL_FLAG(std::optional<std::string>, dtype, std::nullopt, "Weight matrix type: f32, f16, bf16 or q8_0 (unset: the preset's value)");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the weights (same seed and shape: same bytes)");
ABSL_FLAG(std::optional<std::string>, qk_scale, std::nullopt,
          "Attention temperature: multiplies a layer's attention logits (attn_q, attn_k drawn sqrt(S) x wider). "
          "One value for every layer or a comma-separated value per layer (unset: the preset's value, 1 = plain "
          "random attention, which is flat)");
ABSL_FLAG(std::optional<std::string>, retrieval_logit, std::nullopt,
          "Planted retrieval heads: the extra logit (about) that a query gives the earlier salient tokens of the "
          "topic its token wants; one value or one per layer, 0 = none (unset: the preset's value). Tokens get "
          "seeded topics; the pattern lives in the heads' lowest-frequency RoPE channels, so it is sparse, "
          "query-dependent and findable from per-page key boxes. See SyntheticModelSpec in synthetic_spec.h");
ABSL_FLAG(std::optional<int>, retrieval_heads, std::nullopt,
          "KV heads per layer made retrieval heads (the first ones); 0 = all (unset: the preset's value)");
ABSL_FLAG(std::optional<int>, topics, std::nullopt, "Topics of the retrieval pattern (unset: the preset's value, 4)");
ABSL_FLAG(std::optional<float>, salient_fraction, std::nullopt,
          "Share of the vocabulary that is salient (retrievable) (unset: the preset's value, 0.02)");
ABSL_FLAG(std::optional<float>, topic_amplitude, std::nullopt,
          "Embedding coordinates planted for the topics (unset: the preset's value, 8)");
ABSL_FLAG(int, threads, 0, "Generator threads (0: LEOAM_THREADS or all CPUs)");

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "leoam-synth: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
      "Writes a synthetic (random-weight, seeded) Llama-family model as a GGUF v3 file with llama.cpp tensor and "
      "key names and a working tokenizer.\n"
      "Usage: leoam-synth [--preset NAME] [shape flags] [--dtype f32|f16|bf16|q8_0] [--seed N] --out FILE\n"
      "Flags override the preset's fields. Dashes and underscores in flag names are interchangeable "
      "(--kv-heads = --kv_heads).\n"
      "Random weights give flat attention; --qk-scale (temperature) and --retrieval-logit (planted retrieval "
      "heads) give it per-layer structure (preset llama-124m-structured), off by default.");

  using leoam::synth::SyntheticModelSpec;
  if (absl::GetFlag(FLAGS_list_presets)) {
    for (const std::string& name : leoam::synth::PresetNames()) {
      const SyntheticModelSpec spec = *leoam::synth::PresetSpec(name);
      std::printf("%-12s %s\n", name.c_str(), leoam::synth::DescribeSpec(spec).c_str());
    }
    return 0;
  }

  SyntheticModelSpec spec;
  const std::string preset = absl::GetFlag(FLAGS_preset);
  bool custom_shape = false;
  if (!preset.empty()) {
    auto p = leoam::synth::PresetSpec(preset);
    if (!p.ok()) return Fail(std::string(p.status().message()));
    spec = *p;
  }
  auto apply_int = [&custom_shape](const std::optional<int>& flag, int& field) {
    if (flag.has_value()) {
      custom_shape = custom_shape || *flag != field;
      field = *flag;
    }
  };
  if (auto arch = absl::GetFlag(FLAGS_arch)) {
    custom_shape = custom_shape || *arch != spec.arch;
    spec.arch = *arch;
  }
  apply_int(absl::GetFlag(FLAGS_dim), spec.dim);
  apply_int(absl::GetFlag(FLAGS_layers), spec.layers);
  apply_int(absl::GetFlag(FLAGS_heads), spec.heads);
  apply_int(absl::GetFlag(FLAGS_kv_heads), spec.kv_heads);
  if (absl::GetFlag(FLAGS_head_dim).has_value()) {
    apply_int(absl::GetFlag(FLAGS_head_dim), spec.head_dim);
  } else if (preset.empty() && spec.heads > 0) {
    spec.head_dim = spec.dim / spec.heads;
  }
  apply_int(absl::GetFlag(FLAGS_ffn), spec.ffn);
  apply_int(absl::GetFlag(FLAGS_vocab), spec.vocab);
  apply_int(absl::GetFlag(FLAGS_context), spec.context);
  if (auto v = absl::GetFlag(FLAGS_rope_base)) {
    custom_shape = custom_shape || *v != spec.rope_base;
    spec.rope_base = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_llama3_rope_scaling)) {
    custom_shape = custom_shape || *v != spec.llama3_rope_scaling;
    spec.llama3_rope_scaling = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_tied_output)) {
    custom_shape = custom_shape || *v != spec.tied_output;
    spec.tied_output = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_dtype)) {
    auto type = leoam::synth::ParseWeightType(*v);
    if (!type.ok()) return Fail(std::string(type.status().message()));
    spec.weight_type = *type;
  }
  bool custom_structure = false;
  for (auto [flag, field] : {std::pair{absl::GetFlag(FLAGS_qk_scale), &spec.qk_scale},
                             std::pair{absl::GetFlag(FLAGS_retrieval_logit), &spec.retrieval_logit}}) {
    if (!flag.has_value()) continue;
    auto list = leoam::synth::ParseLayerList(*flag);
    if (!list.ok()) return Fail(std::string(list.status().message()));
    custom_structure = custom_structure || *list != *field;
    *field = *list;
  }
  if (auto v = absl::GetFlag(FLAGS_retrieval_heads)) {
    custom_structure = custom_structure || *v != spec.retrieval_heads;
    spec.retrieval_heads = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_topics)) {
    custom_structure = custom_structure || *v != spec.topics;
    spec.topics = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_salient_fraction)) {
    custom_structure = custom_structure || *v != spec.salient_fraction;
    spec.salient_fraction = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_topic_amplitude)) {
    custom_structure = custom_structure || *v != spec.topic_amplitude;
    spec.topic_amplitude = *v;
  }
  custom_shape = custom_shape || custom_structure;
  spec.seed = absl::GetFlag(FLAGS_seed);
  if (preset.empty()) {
    spec.name = "custom-" + spec.arch;
  } else if (custom_shape) {
    spec.name = preset + " (modified)";
  }

  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Fail("--out is required (see --help)");
  if (absl::Status s = leoam::synth::ValidateSpec(spec); !s.ok()) return Fail(std::string(s.message()));

  std::printf("writing synthetic %s: %s\n", spec.name.c_str(), leoam::synth::DescribeSpec(spec).c_str());
  std::fflush(stdout);
  leoam::synth::SynthWriteOptions options;
  options.num_threads = absl::GetFlag(FLAGS_threads);
  const absl::Time start = absl::Now();
  auto result = leoam::synth::WriteSyntheticModel(spec, out, options);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("wrote %s: %llu parameters (%.2fM), %llu bytes (%.2f GiB) in %.1f s (%.0f MiB/s), seed %llu\n",
              out.c_str(), static_cast<unsigned long long>(result->parameters),
              static_cast<double>(result->parameters) / 1e6, static_cast<unsigned long long>(result->file_bytes),
              static_cast<double>(result->file_bytes) / (1ull << 30), seconds,
              static_cast<double>(result->file_bytes) / (1 << 20) / std::max(seconds, 1e-9),
              static_cast<unsigned long long>(spec.seed));
  return 0;
}
