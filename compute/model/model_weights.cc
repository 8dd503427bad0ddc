#include "compute/model/model_weights.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "kernels/half.h"

namespace leoam {
namespace {

std::string ShapeString(const std::vector<int64_t>& dims) { return absl::StrCat("[", absl::StrJoin(dims, ", "), "]"); }

absl::StatusOr<kernels::DType> ToDType(const gguf::TensorInfo& t, const std::string& path) {
  switch (t.type) {
    case gguf::TensorType::kF32: return kernels::DType::kF32;
    case gguf::TensorType::kF16: return kernels::DType::kF16;
    case gguf::TensorType::kBF16: return kernels::DType::kBF16;
    case gguf::TensorType::kQ8_0: return kernels::DType::kQ8_0;
    default:
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, " has type ",
                                                     std::string(gguf::TensorTypeName(t.type)),
                                                     ", which LeoAM does not support (F32, F16, BF16, Q8_0)"));
  }
}

class Loader {
 public:
  Loader(const gguf::GgufFile& file, kernels::Backend& backend) : file_(file), backend_(backend) {}

  absl::StatusOr<const gguf::TensorInfo*> Find(const std::string& name, const std::vector<int64_t>& dims) {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": missing tensor ", name));
    if (t->dims != dims) {
      return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor ", name, " has shape ",
                                                     ShapeString(t->dims), " but the metadata implies ",
                                                     ShapeString(dims)));
    }
    bytes_ += t->bytes;
    return t;
  }

  // A matrix W[rows=dims[1], cols=dims[0]] used in place.
  absl::StatusOr<kernels::Matrix> Matrix(const std::string& name, int64_t cols, int64_t rows) {
    ASSIGN_OR_RETURN(const gguf::TensorInfo* t, Find(name, {cols, rows}));
    ASSIGN_OR_RETURN(kernels::DType type, ToDType(*t, file_.path()));
    ASSIGN_OR_RETURN(const void* data, backend_.UploadConstant(t->data, t->bytes, /*host_outlives_backend=*/true));
    return kernels::Matrix{type, data, rows, cols};
  }

  // A vector converted to fp32 on the host (norm weights and biases are small).
  absl::StatusOr<std::vector<float>> HostVector(const std::string& name, int64_t n) {
    ASSIGN_OR_RETURN(const gguf::TensorInfo* t, Find(name, {n}));
    std::vector<float> out(n);
    switch (t->type) {
      case gguf::TensorType::kF32:
        std::memcpy(out.data(), t->data, n * sizeof(float));
        break;
      case gguf::TensorType::kF16:
        for (int64_t i = 0; i < n; ++i) out[i] = kernels::HalfToFloat(reinterpret_cast<const uint16_t*>(t->data)[i]);
        break;
      case gguf::TensorType::kBF16:
        for (int64_t i = 0; i < n; ++i) out[i] = kernels::Bf16ToFloat(reinterpret_cast<const uint16_t*>(t->data)[i]);
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor ", name, " has type ",
                                                       std::string(gguf::TensorTypeName(t->type)),
                                                       "; vectors must be F32, F16 or BF16"));
    }
    return out;
  }

  absl::StatusOr<const float*> Vector(const std::string& name, int64_t n) {
    ASSIGN_OR_RETURN(std::vector<float> host, HostVector(name, n));
    ASSIGN_OR_RETURN(const void* data, backend_.UploadConstant(host.data(), host.size() * sizeof(float),
                                                               /*host_outlives_backend=*/false));
    return static_cast<const float*>(data);
  }

  uint64_t bytes() const { return bytes_; }

 private:
  const gguf::GgufFile& file_;
  kernels::Backend& backend_;
  uint64_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<ModelWeights> ModelWeights::Load(const gguf::GgufFile& file, const ModelConfig& c,
                                                kernels::Backend& backend) {
  Loader load(file, backend);
  ModelWeights w;
  ASSIGN_OR_RETURN(w.token_embd, load.Matrix("token_embd.weight", c.dim, c.vocab_size));
  ASSIGN_OR_RETURN(w.output_norm, load.Vector("output_norm.weight", c.dim));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    ASSIGN_OR_RETURN(w.output, load.Matrix("output.weight", c.dim, c.vocab_size));
  }
  if (file.FindTensor("rope_freqs.weight") != nullptr) {
    ASSIGN_OR_RETURN(w.rope_freq_factors, load.HostVector("rope_freqs.weight", c.rope_dim / 2));
  }
  w.layers.resize(c.num_layers);
  for (int i = 0; i < c.num_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    ASSIGN_OR_RETURN(l.attn_norm, load.Vector(p + "attn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(l.wq, load.Matrix(p + "attn_q.weight", c.dim, c.q_dim()));
    ASSIGN_OR_RETURN(l.wk, load.Matrix(p + "attn_k.weight", c.dim, c.kv_dim()));
    ASSIGN_OR_RETURN(l.wv, load.Matrix(p + "attn_v.weight", c.dim, c.kv_dim()));
    ASSIGN_OR_RETURN(l.wo, load.Matrix(p + "attn_output.weight", c.q_dim(), c.dim));
    if (c.has_qkv_bias) {
      ASSIGN_OR_RETURN(l.bq, load.Vector(p + "attn_q.bias", c.q_dim()));
      ASSIGN_OR_RETURN(l.bk, load.Vector(p + "attn_k.bias", c.kv_dim()));
      ASSIGN_OR_RETURN(l.bv, load.Vector(p + "attn_v.bias", c.kv_dim()));
    }
    if (c.has_qk_norm) {
      ASSIGN_OR_RETURN(l.q_norm, load.Vector(p + "attn_q_norm.weight", c.head_dim));
      ASSIGN_OR_RETURN(l.k_norm, load.Vector(p + "attn_k_norm.weight", c.head_dim));
    }
    ASSIGN_OR_RETURN(l.ffn_norm, load.Vector(p + "ffn_norm.weight", c.dim));
    ASSIGN_OR_RETURN(l.w_gate, load.Matrix(p + "ffn_gate.weight", c.dim, c.ffn_dim));
    ASSIGN_OR_RETURN(l.w_up, load.Matrix(p + "ffn_up.weight", c.dim, c.ffn_dim));
    ASSIGN_OR_RETURN(l.w_down, load.Matrix(p + "ffn_down.weight", c.ffn_dim, c.dim));
  }
  w.weight_bytes = load.bytes();
  return w;
}

}  // namespace leoam
