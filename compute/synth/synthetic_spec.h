// SyntheticModelSpec: the shape and settings of a synthetic (random-weight) Llama-family model,
// and the named presets that leoam-synth offers (tiny test models and real-model shapes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/gguf/gguf_types.h"

namespace leoam::synth {

struct SyntheticModelSpec {
  // Label written as general.name = "synthetic <name>". Default "custom".
  std::string name = "custom";
  // Architecture: "llama", "qwen2" (adds QKV biases) or "qwen3" (adds Q/K RMSNorm). Default llama.
  std::string arch = "llama";
  int dim = 128;       // embedding_length
  int layers = 3;      // block_count
  int heads = 4;       // attention.head_count
  int kv_heads = 2;    // attention.head_count_kv (divides heads)
  int head_dim = 32;   // attention.key_length = value_length = rope.dimension_count
  int ffn = 256;       // feed_forward_length
  int vocab = 512;     // tokenizer size (exact)
  int context = 4096;  // context_length
  float rope_base = 10000.0f;
  // Llama-3 rope scaling (factor 8, low 1, high 4, original context 8192) as rope_freqs.weight.
  bool llama3_rope_scaling = false;
  // When true there is no output.weight: the output projection reuses token_embd.weight.
  bool tied_output = false;
  // Element type of the weight matrices (F32, F16, BF16 or Q8_0); norms and biases are always F32.
  gguf::TensorType weight_type = gguf::TensorType::kF32;
  // RMSNorm epsilon; 0 means the architecture default (1e-5 llama, 1e-6 qwen2/qwen3).
  float rms_norm_eps = 0.0f;
  // Seed of the weights: the same spec and seed give the same bytes.
  uint64_t seed = 0;

  // Attention structure. Random weights give flat attention (every page of a long context gets
  // about its uniform share), which cannot tell KV selection policies apart. These fields, all off
  // by default (the bytes of a model without them are unchanged), give it structure:
  //
  // qk_scale: attention temperature per layer (empty: 1 for every layer; one value: every layer;
  // else one per layer). attn_q and attn_k are drawn with sqrt(scale) x their usual stddev, so the
  // layer's logits are `scale` x as spread and its softmax more peaked.
  std::vector<float> qk_scale;
  // retrieval_logit: planted retrieval heads per layer (same list rules; 0: none). Tokens get a
  // seeded "topic" and "want" in [0, topics); a salient_fraction of the vocabulary is salient. The
  // token embedding of token t gets +topic_amplitude on coordinate topic(t) if t is salient, and on
  // coordinate topics + want(t) always. In a retrieval head, the last `topics` channels of the head
  // (the lowest RoPE frequencies, which barely rotate over the context) read those coordinates:
  // query channel k reads "wants topic k", key channel k reads "is a salient token of topic k", so
  // a query attends to the earlier salient tokens of the topic its token wants with an extra logit
  // of about retrieval_logit (before the residual stream's growth in deeper layers dilutes it; the
  // rest of the head stays random). That is a content-addressed, sparse, query-dependent pattern
  // whose pages the per-page key boxes can find, like the retrieval heads of real models.
  std::vector<float> retrieval_logit;
  // KV heads of a structured layer (the first ones, with their query heads) that are retrieval
  // heads; 0: all. Default 0.
  int retrieval_heads = 0;
  int topics = 4;                  // topics of the retrieval pattern (2 x topics <= dim, topics <= head_dim)
  float salient_fraction = 0.02f;  // share of the vocabulary that is salient
  float topic_amplitude = 8.0f;    // embedding coordinates added (token_embd is N(0, 1) otherwise)

  // Whether any attention structure field is set (qk_scale != 1 or retrieval_logit > 0 somewhere).
  bool HasAttentionStructure() const;
  float LayerQkScale(int layer) const;         // qk_scale of `layer` (1 if unset)
  float LayerRetrievalLogit(int layer) const;  // retrieval_logit of `layer` (0 if unset)
  bool AnyRetrieval() const;

  float EffectiveRmsNormEps() const;
  bool is_qwen() const { return arch == "qwen2" || arch == "qwen3"; }
};

// Names of the presets, in the order leoam-synth --list-presets prints them.
std::vector<std::string> PresetNames();
// One-line description of a preset (shape and default dtype).
std::string DescribeSpec(const SyntheticModelSpec& spec);

// The spec of a named preset; NOT_FOUND (listing the presets) for an unknown name.
absl::StatusOr<SyntheticModelSpec> PresetSpec(std::string_view name);

// INVALID_ARGUMENT naming the problem when the spec cannot make a valid model (unknown arch,
// non-positive sizes, heads not a multiple of kv_heads, odd head_dim, Q8_0 with a row length
// not a multiple of 32, a vocab too small for the tokenizer, ...).
absl::Status ValidateSpec(const SyntheticModelSpec& spec);

// Parses a per-layer list flag: "2" (every layer) or "1,1,4,8" (one per layer).
absl::StatusOr<std::vector<float>> ParseLayerList(std::string_view text);
// "qk_scale 1,4 retrieval_logit 0,8 (heads all, 4 topics, salient 0.02, amplitude 8)", "" if none.
std::string DescribeAttentionStructure(const SyntheticModelSpec& spec);

// Number of weight elements of the model the spec describes.
uint64_t ParameterCount(const SyntheticModelSpec& spec);

// "f32" | "f16" | "bf16" | "q8_0" (case-insensitive) <-> tensor type.
absl::StatusOr<gguf::TensorType> ParseWeightType(std::string_view name);
std::string WeightTypeFlagName(gguf::TensorType type);

}  // namespace leoam::synth
