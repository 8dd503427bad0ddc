#include "compute/synth/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/thread_pool.h"
#include "compute/gguf/gguf_writer.h"
#include "compute/gguf/quant.h"
#include "compute/synth/synthetic_vocab.h"
#include "compute/synth/weight_init.h"

namespace leoam::synth {
namespace {

using gguf::GgufWriter;
using gguf::TensorType;

// llama.cpp's general.file_type (llama_ftype) for a model whose matrices are `type`.
uint32_t FileType(TensorType type) {
  switch (type) {
    case TensorType::kF16: return 1;    // LLAMA_FTYPE_MOSTLY_F16
    case TensorType::kQ8_0: return 7;   // LLAMA_FTYPE_MOSTLY_Q8_0
    case TensorType::kBF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    default: return 0;                  // LLAMA_FTYPE_ALL_F32
  }
}

// Adds streamed tensors whose rows are generated on `pool`.
class TensorEmitter {
 public:
  TensorEmitter(GgufWriter& writer, ThreadPool& pool, uint64_t seed) : writer_(writer), pool_(pool), seed_(seed) {}

  // Changes row `row` ([cols] values, drawn already) of a tensor: the planted attention structure.
  using RowPlanter = std::function<void(int64_t row, float* values)>;

  void Add(const std::string& name, std::vector<int64_t> dims, TensorType type, InitParams init,
           RowPlanter plant = nullptr) {
    const int64_t cols = dims[0];
    const uint64_t row_bytes = gguf::RowBytes(type, cols);
    TensorRng rng(seed_, name);
    ThreadPool* pool = &pool_;
    writer_.AddTensor(name, std::move(dims), type,
                      [pool, rng, init, type, cols, row_bytes, plant](int64_t begin, int64_t end, uint8_t* out) {
                        std::vector<std::vector<float>> scratch(pool->num_threads());
                        std::vector<absl::Status> errors(pool->num_threads());
                        pool->ParallelFor(end - begin, [&](int64_t lo, int64_t hi, int slice) {
                          std::vector<float>& row = scratch[slice];
                          row.resize(static_cast<size_t>(cols));
                          for (int64_t r = lo; r < hi; ++r) {
                            rng.Fill(static_cast<uint64_t>(begin + r) * static_cast<uint64_t>(cols), cols, init,
                                     row.data());
                            if (plant) plant(begin + r, row.data());
                            absl::Status s = gguf::QuantizeRow(type, row.data(), cols, out + r * row_bytes);
                            if (!s.ok()) errors[slice] = s;
                          }
                        }, /*min_per_thread=*/1);
                        for (const absl::Status& s : errors) {
                          if (!s.ok()) return s;
                        }
                        return absl::OkStatus();
                      });
  }

  // A fixed F32 vector (rope factors).
  void AddValues(const std::string& name, const std::vector<float>& values) {
    std::string data(values.size() * sizeof(float), '\0');
    std::memcpy(data.data(), values.data(), data.size());
    writer_.AddTensor(name, {static_cast<int64_t>(values.size())}, TensorType::kF32, std::move(data));
  }

 private:
  GgufWriter& writer_;
  ThreadPool& pool_;
  uint64_t seed_;
};

void AddModelMetadata(const SyntheticModelSpec& s, GgufWriter& w) {
  const std::string& a = s.arch;
  w.AddString("general.architecture", a);
  w.AddString("general.name", "synthetic " + s.name);
  w.AddUint32("general.file_type", FileType(s.weight_type));
  if (s.weight_type == TensorType::kQ8_0) w.AddUint32("general.quantization_version", 2);
  w.AddUint64("leoam.synthetic.seed", s.seed);
  w.AddString("leoam.synthetic.preset", s.name);
  if (s.HasAttentionStructure()) w.AddString("leoam.synthetic.attention_structure", DescribeAttentionStructure(s));
  w.AddUint32(a + ".context_length", static_cast<uint32_t>(s.context));
  w.AddUint32(a + ".embedding_length", static_cast<uint32_t>(s.dim));
  w.AddUint32(a + ".block_count", static_cast<uint32_t>(s.layers));
  w.AddUint32(a + ".feed_forward_length", static_cast<uint32_t>(s.ffn));
  w.AddUint32(a + ".attention.head_count", static_cast<uint32_t>(s.heads));
  w.AddUint32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  w.AddUint32(a + ".attention.key_length", static_cast<uint32_t>(s.head_dim));
  w.AddUint32(a + ".attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.AddFloat32(a + ".attention.layer_norm_rms_epsilon", s.EffectiveRmsNormEps());
  w.AddFloat32(a + ".rope.freq_base", s.rope_base);
  w.AddUint32(a + ".rope.dimension_count", static_cast<uint32_t>(s.head_dim));
  w.AddUint32(a + ".vocab_size", static_cast<uint32_t>(s.vocab));
  AddVocabMetadata(s.arch == "llama" ? MakeSpmVocab(s.vocab) : MakeGpt2Vocab(s.vocab), w);
}

// The planted retrieval pattern (SyntheticModelSpec::retrieval_logit). Token embeddings: salient
// tokens +amplitude on coordinate topic, every token +amplitude on coordinate topics + want.
TensorEmitter::RowPlanter EmbeddingPlanter(const SyntheticModelSpec& s) {
  if (!s.AnyRetrieval()) return nullptr;
  return [seed = s.seed, topics = s.topics, fraction = s.salient_fraction, amp = s.topic_amplitude](
             int64_t token, float* row) {
    const TokenTraits t = DrawTokenTraits(seed, token, topics, fraction);
    if (t.salient) row[t.topic] += amp;
    row[topics + t.want] += amp;
  };
}

// attn_q (query) or attn_k (!query) rows of layer `layer`: in retrieval heads the last `topics`
// channels of the head read one embedding coordinate each (query: "wants topic k", key: "is a
// salient token of topic k") with a weight g such that a match adds ~retrieval_logit to the logit:
// (g x amplitude)^2 / sqrt(head_dim) = retrieval_logit.
TensorEmitter::RowPlanter ProjectionPlanter(const SyntheticModelSpec& s, int layer, bool query) {
  const float logit = s.LayerRetrievalLogit(layer);
  if (!(logit > 0.0f)) return nullptr;
  const int group = s.heads / s.kv_heads;
  const int kv_heads = s.retrieval_heads == 0 ? s.kv_heads : s.retrieval_heads;
  const float g = std::sqrt(logit * std::sqrt(static_cast<float>(s.head_dim))) / s.topic_amplitude;
  return [=, head_dim = s.head_dim, topics = s.topics, dim = s.dim](int64_t row, float* values) {
    const int head = static_cast<int>(row / head_dim), channel = static_cast<int>(row % head_dim);
    const int kv_head = query ? head / group : head;
    const int k = channel - (head_dim - topics);
    if (kv_head >= kv_heads || k < 0) return;
    std::fill(values, values + dim, 0.0f);
    values[query ? topics + k : k] = g;
  };
}

void AddModelTensors(const SyntheticModelSpec& s, TensorEmitter& e) {
  const TensorType wt = s.weight_type;
  const int64_t dim = s.dim, q = int64_t{s.heads} * s.head_dim, kv = int64_t{s.kv_heads} * s.head_dim;
  const auto normal = [](double std) { return InitParams{0.0f, static_cast<float>(std)}; };
  const InitParams norm_init{1.0f, 0.1f};
  const InitParams bias_init{0.0f, 0.1f};
  const double out_std = 3.0 / std::sqrt(static_cast<double>(dim));

  e.Add("token_embd.weight", {dim, s.vocab}, wt, s.tied_output ? normal(out_std) : normal(1.0), EmbeddingPlanter(s));
  if (s.llama3_rope_scaling) e.AddValues("rope_freqs.weight", Llama3RopeFactors(s.head_dim, s.rope_base));
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = absl::StrCat("blk.", i, ".");
    e.Add(p + "attn_norm.weight", {dim}, TensorType::kF32, norm_init);
    // The temperature multiplies the stddev only when set, so plain models keep their exact bytes.
    const float qk = s.LayerQkScale(i);
    const double qk_std = qk == 1.0f ? 1.0 / std::sqrt(double(dim)) : std::sqrt(double(qk)) / std::sqrt(double(dim));
    e.Add(p + "attn_q.weight", {dim, q}, wt, normal(qk_std), ProjectionPlanter(s, i, /*query=*/true));
    e.Add(p + "attn_k.weight", {dim, kv}, wt, normal(qk_std), ProjectionPlanter(s, i, /*query=*/false));
    e.Add(p + "attn_v.weight", {dim, kv}, wt, normal(1.0 / std::sqrt(double(dim))));
    if (s.arch == "qwen2") {
      e.Add(p + "attn_q.bias", {q}, TensorType::kF32, bias_init);
      e.Add(p + "attn_k.bias", {kv}, TensorType::kF32, bias_init);
      e.Add(p + "attn_v.bias", {kv}, TensorType::kF32, bias_init);
    }
    if (s.arch == "qwen3") {
      e.Add(p + "attn_q_norm.weight", {s.head_dim}, TensorType::kF32, norm_init);
      e.Add(p + "attn_k_norm.weight", {s.head_dim}, TensorType::kF32, norm_init);
    }
    e.Add(p + "attn_output.weight", {q, dim}, wt, normal(1.0 / std::sqrt(double(q))));
    e.Add(p + "ffn_norm.weight", {dim}, TensorType::kF32, norm_init);
    e.Add(p + "ffn_gate.weight", {dim, s.ffn}, wt, normal(1.0 / std::sqrt(double(dim))));
    e.Add(p + "ffn_up.weight", {dim, s.ffn}, wt, normal(1.0 / std::sqrt(double(dim))));
    e.Add(p + "ffn_down.weight", {s.ffn, dim}, wt, normal(1.0 / std::sqrt(double(s.ffn))));
  }
  e.Add("output_norm.weight", {dim}, TensorType::kF32, norm_init);
  if (!s.tied_output) e.Add("output.weight", {dim, s.vocab}, wt, normal(out_std));
}

}  // namespace

absl::StatusOr<SynthWriteResult> WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path,
                                                     const SynthWriteOptions& options) {
  if (absl::Status s = ValidateSpec(spec); !s.ok()) return s;
  ThreadPool pool(options.num_threads > 0 ? options.num_threads : DefaultThreadCount());
  GgufWriter writer;
  AddModelMetadata(spec, writer);
  TensorEmitter emitter(writer, pool, spec.seed);
  AddModelTensors(spec, emitter);
  if (!writer.status().ok()) return writer.status();
  gguf::WriteOptions write_options;
  write_options.chunk_bytes = options.chunk_bytes;
  write_options.sync = options.sync;
  if (absl::Status s = writer.WriteFile(path, write_options); !s.ok()) return s;
  SynthWriteResult result;
  result.parameters = writer.NumTensorElements();
  result.file_bytes = writer.FileSize();
  return result;
}

absl::Status WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path) {
  return WriteSyntheticModel(spec, path, SynthWriteOptions{}).status();
}

}  // namespace leoam::synth
