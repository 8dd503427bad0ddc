#include "compute/model/model_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace leoam {
namespace {

absl::StatusOr<int32_t> RequiredPositiveInt(const gguf::GgufFile& file, const std::string& key) {
  if (!file.HasKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing metadata key ", key));
  }
  ASSIGN_OR_RETURN(int64_t v, file.GetInt(key));
  if (v <= 0 || v > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: metadata %s = %d is out of range", file.path(), key, v));
  }
  return static_cast<int32_t>(v);
}

absl::StatusOr<int32_t> OptionalPositiveInt(const gguf::GgufFile& file, const std::string& key, int32_t fallback) {
  if (!file.HasKey(key)) return fallback;
  return RequiredPositiveInt(file, key);
}

absl::StatusOr<float> OptionalFloat(const gguf::GgufFile& file, const std::string& key, float fallback) {
  if (!file.HasKey(key)) return fallback;
  ASSIGN_OR_RETURN(double v, file.GetFloat(key));
  return static_cast<float>(v);
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromGguf(const gguf::GgufFile& file) {
  ModelConfig c;
  if (!file.HasKey("general.architecture")) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing metadata key general.architecture"));
  }
  ASSIGN_OR_RETURN(c.arch_name, file.GetString("general.architecture"));
  if (c.arch_name == "llama") {
    c.arch = Architecture::kLlama;
    c.rope_style = kernels::RopeStyle::kNormal;
  } else if (c.arch_name == "qwen2") {
    c.arch = Architecture::kQwen2;
    c.rope_style = kernels::RopeStyle::kNeox;
    c.has_qkv_bias = true;
  } else if (c.arch_name == "qwen3") {
    c.arch = Architecture::kQwen3;
    c.rope_style = kernels::RopeStyle::kNeox;
    c.has_qk_norm = true;
  } else {
    return absl::UnimplementedError(absl::StrCat(file.path(), ": architecture '", c.arch_name,
                                                 "' is not supported (supported: llama, qwen2, qwen3)"));
  }
  if (file.HasKey("general.name")) {
    ASSIGN_OR_RETURN(c.name, file.GetString("general.name"));
  }
  const std::string a = c.arch_name + ".";
  ASSIGN_OR_RETURN(c.dim, RequiredPositiveInt(file, a + "embedding_length"));
  ASSIGN_OR_RETURN(c.num_layers, RequiredPositiveInt(file, a + "block_count"));
  ASSIGN_OR_RETURN(c.num_heads, RequiredPositiveInt(file, a + "attention.head_count"));
  ASSIGN_OR_RETURN(c.num_kv_heads, OptionalPositiveInt(file, a + "attention.head_count_kv", c.num_heads));
  ASSIGN_OR_RETURN(c.ffn_dim, RequiredPositiveInt(file, a + "feed_forward_length"));
  ASSIGN_OR_RETURN(c.context_length, OptionalPositiveInt(file, a + "context_length", 2048));
  if (c.dim % c.num_heads != 0 && !file.HasKey(a + "attention.key_length")) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: embedding_length %d is not a multiple of head_count %d and attention.key_length is missing",
        file.path(), c.dim, c.num_heads));
  }
  ASSIGN_OR_RETURN(c.head_dim, OptionalPositiveInt(file, a + "attention.key_length", c.dim / c.num_heads));
  ASSIGN_OR_RETURN(int32_t value_dim, OptionalPositiveInt(file, a + "attention.value_length", c.head_dim));
  if (value_dim != c.head_dim) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: attention.value_length %d differs from key_length %d",
                                                      file.path(), value_dim, c.head_dim));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: head_count %d is not a multiple of head_count_kv %d",
                                                      file.path(), c.num_heads, c.num_kv_heads));
  }
  if (c.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: head dimension %d is odd", file.path(), c.head_dim));
  }
  ASSIGN_OR_RETURN(c.rms_eps, OptionalFloat(file, a + "attention.layer_norm_rms_epsilon", 1e-5f));
  ASSIGN_OR_RETURN(c.rope_freq_base, OptionalFloat(file, a + "rope.freq_base", 10000.0f));
  ASSIGN_OR_RETURN(c.rope_dim, OptionalPositiveInt(file, a + "rope.dimension_count", c.head_dim));
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: rope.dimension_count %d does not fit head dimension %d",
                                                      file.path(), c.rope_dim, c.head_dim));
  }
  if (!(c.rms_eps > 0.0f) || !(c.rope_freq_base > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": rms epsilon and rope.freq_base must be positive"));
  }
  if (file.HasKey(a + "rope.scaling.type")) {
    ASSIGN_OR_RETURN(std::string type, file.GetString(a + "rope.scaling.type"));
    if (type == "linear") {
      ASSIGN_OR_RETURN(c.rope_linear_scale, OptionalFloat(file, a + "rope.scaling.factor", 1.0f));
      if (!(c.rope_linear_scale > 0.0f)) {
        return absl::InvalidArgumentError(absl::StrCat(file.path(), ": rope.scaling.factor must be positive"));
      }
    } else if (type != "none" && type != "llama3") {
      // Llama 3 scaling arrives as the rope_freqs.weight tensor, read by ModelWeights.
      return absl::UnimplementedError(
          absl::StrCat(file.path(), ": rope scaling '", type, "' is not supported (supported: none, linear, llama3)"));
    }
  }
  const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing tensor token_embd.weight"));
  }
  if (embd->dims.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": token_embd.weight must be 2-D"));
  }
  c.vocab_size = static_cast<int32_t>(embd->dims[1]);
  c.tied_output = file.FindTensor("output.weight") == nullptr;
  return c;
}

}  // namespace leoam
