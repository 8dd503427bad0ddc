#include "compute/synth/synthetic_spec.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace leoam::synth {
namespace {

using gguf::TensorType;

struct Preset {
  const char* name;
  SyntheticModelSpec spec;
};

SyntheticModelSpec Make(const char* name, const char* arch, int dim, int layers, int heads, int kv_heads, int head_dim,
                        int ffn, int vocab, int context, float rope_base, TensorType type) {
  SyntheticModelSpec s;
  s.name = name;
  s.arch = arch;
  s.dim = dim;
  s.layers = layers;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.ffn = ffn;
  s.vocab = vocab;
  s.context = context;
  s.rope_base = rope_base;
  s.weight_type = type;
  return s;
}

const std::vector<Preset>& Presets() {
  static const std::vector<Preset>* const presets = [] {
    auto* p = new std::vector<Preset>();
    // Small but non-trivial shapes for tests: GQA 2:1, several layers, a real tokenizer.
    p->push_back({"tiny-llama", Make("tiny-llama", "llama", 128, 3, 4, 2, 32, 256, 512, 4096, 10000.0f, TensorType::kF32)});
    p->push_back({"tiny-qwen2", Make("tiny-qwen2", "qwen2", 128, 3, 4, 2, 32, 256, 600, 4096, 1e6f, TensorType::kF32)});
    // head_dim 48 != dim / heads, so loaders must read attention.key_length.
    p->push_back({"tiny-qwen3", Make("tiny-qwen3", "qwen3", 128, 3, 4, 2, 48, 256, 600, 4096, 1e6f, TensorType::kF32)});
    p->push_back({"llama-124m",
                  Make("llama-124m", "llama", 768, 12, 12, 12, 64, 2048, 24000, 8192, 10000.0f, TensorType::kF16)});
    // llama-124m with attention structure, so per-layer adaptivity has something to find: layers 0-1
    // plain (flat attention), retrieval heads everywhere else, strong in 2, 3, 5, 7, 10, medium in
    // 6, 9, 11, and layers 4 and 8 "hot but scattered" (temperature 2.5, weak retrieval). The planted
    // logits grow with depth because the residual stream grows and dilutes them (measured at 1K
    // tokens, the share of attention mass in the top 10% of pages is 0.13 in layers 0-1, 0.3 in 4
    // and 8, 0.6-0.8 in 6, 9, 11 and 0.9-1.0 in the others).
    SyntheticModelSpec structured =
        Make("llama-124m-structured", "llama", 768, 12, 12, 12, 64, 2048, 24000, 8192, 10000.0f, TensorType::kF16);
    structured.qk_scale = {1, 1, 1, 1, 2.5f, 1, 1, 1, 2.5f, 1, 1, 1};
    structured.retrieval_logit = {0, 0, 22, 38, 10, 56, 31, 80, 20, 65, 86, 72};
    p->push_back({"llama-124m-structured", structured});
    SyntheticModelSpec l3 = Make("llama3.1-8b", "llama", 4096, 32, 32, 8, 128, 14336, 128256, 131072, 500000.0f,
                                 TensorType::kF16);
    l3.llama3_rope_scaling = true;
    p->push_back({"llama3.1-8b", l3});
    p->push_back({"qwen2.5-7b",
                  Make("qwen2.5-7b", "qwen2", 3584, 28, 28, 4, 128, 18944, 152064, 32768, 1e6f, TensorType::kBF16)});
    p->push_back({"qwen3-8b",
                  Make("qwen3-8b", "qwen3", 4096, 36, 32, 8, 128, 12288, 151936, 40960, 1e6f, TensorType::kBF16)});
    return p;
  }();
  return *presets;
}

}  // namespace

namespace {
float LayerValue(const std::vector<float>& list, int layer, float unset) {
  if (list.empty()) return unset;
  if (list.size() == 1) return list[0];
  return layer >= 0 && layer < static_cast<int>(list.size()) ? list[layer] : unset;
}
}  // namespace

float SyntheticModelSpec::LayerQkScale(int layer) const { return LayerValue(qk_scale, layer, 1.0f); }
float SyntheticModelSpec::LayerRetrievalLogit(int layer) const { return LayerValue(retrieval_logit, layer, 0.0f); }

bool SyntheticModelSpec::AnyRetrieval() const {
  for (int l = 0; l < layers; ++l) {
    if (LayerRetrievalLogit(l) > 0.0f) return true;
  }
  return false;
}

bool SyntheticModelSpec::HasAttentionStructure() const {
  if (AnyRetrieval()) return true;
  for (int l = 0; l < layers; ++l) {
    if (LayerQkScale(l) != 1.0f) return true;
  }
  return false;
}

absl::StatusOr<std::vector<float>> ParseLayerList(std::string_view text) {
  std::vector<float> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    float v = 0.0f;
    if (!absl::SimpleAtof(absl::StripAsciiWhitespace(part), &v)) {
      return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a number in the per-layer list '%s'", part, text));
    }
    out.push_back(v);
  }
  return out;
}

std::string DescribeAttentionStructure(const SyntheticModelSpec& s) {
  if (!s.HasAttentionStructure()) return "";
  std::string d = absl::StrFormat("qk_scale %s", s.qk_scale.empty() ? "1" : absl::StrJoin(s.qk_scale, ","));
  if (s.AnyRetrieval()) {
    absl::StrAppendFormat(&d, ", retrieval_logit %s (kv heads %s, %d topics, salient %g, amplitude %g)",
                          absl::StrJoin(s.retrieval_logit, ","),
                          s.retrieval_heads == 0 ? "all" : absl::StrCat(s.retrieval_heads), s.topics,
                          s.salient_fraction, s.topic_amplitude);
  }
  return d;
}

float SyntheticModelSpec::EffectiveRmsNormEps() const {
  if (rms_norm_eps > 0.0f) return rms_norm_eps;
  return is_qwen() ? 1e-6f : 1e-5f;
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : Presets()) names.push_back(p.name);
  return names;
}

std::string DescribeSpec(const SyntheticModelSpec& s) {
  std::string d = absl::StrFormat(
      "%s: dim %d, %d layers, %d heads / %d kv heads, head_dim %d, ffn %d, vocab %d, context %d, rope base %g%s, "
      "%s, %s, %.1fM params",
      s.arch, s.dim, s.layers, s.heads, s.kv_heads, s.head_dim, s.ffn, s.vocab, s.context, s.rope_base,
      s.llama3_rope_scaling ? " + llama3 scaling" : "", s.tied_output ? "tied output" : "untied output",
      WeightTypeFlagName(s.weight_type), static_cast<double>(ParameterCount(s)) / 1e6);
  if (s.HasAttentionStructure()) absl::StrAppend(&d, "; attention structure: ", DescribeAttentionStructure(s));
  return d;
}

absl::StatusOr<SyntheticModelSpec> PresetSpec(std::string_view name) {
  for (const Preset& p : Presets()) {
    if (name == p.name) return p.spec;
  }
  return absl::NotFoundError(absl::StrFormat("unknown preset '%s' (presets: %s)", name,
                                             absl::StrJoin(PresetNames(), ", ")));
}

absl::Status ValidateSpec(const SyntheticModelSpec& s) {
  auto bad = [](const std::string& problem) {
    return absl::InvalidArgumentError("synthetic model spec: " + problem);
  };
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3") {
    return bad(absl::StrFormat("unknown arch '%s' (llama, qwen2 or qwen3)", s.arch));
  }
  const struct {
    const char* name;
    int value;
  } sizes[] = {{"dim", s.dim},           {"layers", s.layers}, {"heads", s.heads},
               {"kv_heads", s.kv_heads}, {"head_dim", s.head_dim}, {"ffn", s.ffn},
               {"vocab", s.vocab},       {"context", s.context}};
  for (const auto& size : sizes) {
    if (size.value <= 0) return bad(absl::StrFormat("%s must be positive (got %d)", size.name, size.value));
  }
  if (s.heads % s.kv_heads != 0) {
    return bad(absl::StrFormat("heads %d is not a multiple of kv_heads %d", s.heads, s.kv_heads));
  }
  if (s.head_dim % 2 != 0) return bad(absl::StrFormat("head_dim %d must be even (RoPE rotates pairs)", s.head_dim));
  if (!(s.rope_base > 1.0f)) return bad(absl::StrFormat("rope_base %g must be > 1", s.rope_base));
  if (!gguf::IsSupportedTensorType(s.weight_type)) {
    return bad(absl::StrFormat("weight type %s is not supported", gguf::TensorTypeName(s.weight_type)));
  }
  if (s.weight_type == TensorType::kQ8_0) {
    const struct {
      const char* name;
      int64_t value;
    } rows[] = {{"dim", s.dim}, {"heads*head_dim", int64_t{s.heads} * s.head_dim}, {"ffn", s.ffn}};
    for (const auto& r : rows) {
      if (r.value % gguf::kQ8_0BlockSize != 0) {
        return bad(absl::StrFormat("q8_0 needs row lengths that are multiples of 32, but %s is %d", r.name, r.value));
      }
    }
  }
  // The tokenizer needs its fixed tokens: llama 3 specials + 256 bytes + 95 characters; gpt2 256
  // bytes + 3 specials (+1 so that there is at least one merge).
  const int min_vocab = s.arch == "llama" ? 3 + 256 + 95 : 256 + 3 + 1;
  if (s.vocab < min_vocab) {
    return bad(absl::StrFormat("vocab %d is too small for the %s tokenizer (at least %d)", s.vocab, s.arch, min_vocab));
  }
  if (s.vocab > (1 << 24)) return bad(absl::StrFormat("vocab %d is too large (at most 2^24)", s.vocab));
  const struct {
    const char* name;
    const std::vector<float>& list;
  } lists[] = {{"qk_scale", s.qk_scale}, {"retrieval_logit", s.retrieval_logit}};
  for (const auto& l : lists) {
    if (l.list.size() > 1 && static_cast<int>(l.list.size()) != s.layers) {
      return bad(absl::StrFormat("%s has %d values; give one, or one per layer (%d)", l.name, l.list.size(), s.layers));
    }
  }
  for (int l = 0; l < s.layers; ++l) {
    if (!(s.LayerQkScale(l) > 0.0f)) return bad(absl::StrFormat("qk_scale of layer %d must be > 0", l));
    if (!(s.LayerRetrievalLogit(l) >= 0.0f)) return bad(absl::StrFormat("retrieval_logit of layer %d must be >= 0", l));
  }
  if (s.AnyRetrieval()) {
    if (s.topics < 1 || s.topics > s.head_dim || 2 * s.topics > s.dim) {
      return bad(absl::StrFormat("topics %d must be in [1, head_dim] with 2 x topics <= dim", s.topics));
    }
    if (s.retrieval_heads < 0 || s.retrieval_heads > s.kv_heads) {
      return bad(absl::StrFormat("retrieval_heads %d must be in [0, kv_heads %d]", s.retrieval_heads, s.kv_heads));
    }
    if (!(s.salient_fraction > 0.0f && s.salient_fraction <= 1.0f)) {
      return bad(absl::StrFormat("salient_fraction %g must be in (0, 1]", s.salient_fraction));
    }
    if (!(s.topic_amplitude > 0.0f)) return bad(absl::StrFormat("topic_amplitude %g must be > 0", s.topic_amplitude));
  }
  return absl::OkStatus();
}

uint64_t ParameterCount(const SyntheticModelSpec& s) {
  const uint64_t dim = s.dim, q = static_cast<uint64_t>(s.heads) * s.head_dim, kv = static_cast<uint64_t>(s.kv_heads) * s.head_dim;
  uint64_t per_layer = 2 * dim                    // attn_norm, ffn_norm
                       + dim * q + 2 * dim * kv   // q, k, v
                       + q * dim                  // attn_output
                       + 3 * dim * static_cast<uint64_t>(s.ffn);  // gate, up, down
  if (s.arch == "qwen2") per_layer += q + 2 * kv;
  if (s.arch == "qwen3") per_layer += 2 * static_cast<uint64_t>(s.head_dim);
  uint64_t total = per_layer * s.layers + dim /*output_norm*/ + dim * s.vocab /*token_embd*/;
  if (!s.tied_output) total += dim * s.vocab;
  if (s.llama3_rope_scaling) total += s.head_dim / 2;
  return total;
}

absl::StatusOr<gguf::TensorType> ParseWeightType(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  if (lower == "f32") return TensorType::kF32;
  if (lower == "f16") return TensorType::kF16;
  if (lower == "bf16") return TensorType::kBF16;
  if (lower == "q8_0") return TensorType::kQ8_0;
  return absl::InvalidArgumentError(absl::StrFormat("unknown dtype '%s' (f32, f16, bf16 or q8_0)", name));
}

std::string WeightTypeFlagName(gguf::TensorType type) {
  switch (type) {
    case TensorType::kF32: return "f32";
    case TensorType::kF16: return "f16";
    case TensorType::kBF16: return "bf16";
    case TensorType::kQ8_0: return "q8_0";
    default: return std::string(gguf::TensorTypeName(type));
  }
}

}  // namespace leoam::synth
