#include "compute/model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace leoam {

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(const std::string& path, kernels::Backend& backend,
                                                             const ModelOptions& options) {
  if (options.prefill_chunk <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("prefill_chunk must be positive, got %d", options.prefill_chunk));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<gguf::GgufFile> file, gguf::GgufFile::Open(path));
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromGguf(*file));
  ASSIGN_OR_RETURN(ModelWeights weights, ModelWeights::Load(*file, config, backend));
  std::unique_ptr<LlamaModel> model(
      new LlamaModel(std::move(file), std::move(config), std::move(weights), backend, options));

  // Rotary frequencies, computed in float as the reference implementations do:
  // inv_freq[i] = 1 / base^(2i / rope_dim), divided by Llama-3 frequency factors and linear scale.
  const ModelConfig& c = model->config_;
  std::vector<float> inv_freq(c.rope_dim / 2);
  for (int i = 0; i < c.rope_dim / 2; ++i) {
    float f = 1.0f / std::pow(c.rope_freq_base, static_cast<float>(2 * i) / static_cast<float>(c.rope_dim));
    if (!model->weights_.rope_freq_factors.empty()) f /= model->weights_.rope_freq_factors[i];
    inv_freq[i] = f / c.rope_linear_scale;
  }
  ASSIGN_OR_RETURN(model->inv_freq_, backend.Allocate(inv_freq.size() * sizeof(float)));
  RETURN_IF_ERROR(backend.CopyToDevice(model->inv_freq_.data(), inv_freq.data(), inv_freq.size() * sizeof(float)));
  model->rope_ = kernels::RopeParams{c.rope_style, c.rope_dim, model->inv_freq_.as<float>()};
  return model;
}

absl::Status LlamaModel::EnsureScratch(int32_t tokens) {
  if (scratch_.tokens >= tokens) return absl::OkStatus();
  const ModelConfig& c = config_;
  Scratch s;
  s.tokens = tokens;
  const size_t f = sizeof(float);
  ASSIGN_OR_RETURN(s.x, backend_.Allocate(size_t{1} * tokens * c.dim * f));
  ASSIGN_OR_RETURN(s.xn, backend_.Allocate(size_t{1} * tokens * std::max(c.dim, c.q_dim()) * f));
  ASSIGN_OR_RETURN(s.q, backend_.Allocate(size_t{1} * tokens * c.q_dim() * f));
  ASSIGN_OR_RETURN(s.k, backend_.Allocate(size_t{1} * tokens * c.kv_dim() * f));
  ASSIGN_OR_RETURN(s.v, backend_.Allocate(size_t{1} * tokens * c.kv_dim() * f));
  ASSIGN_OR_RETURN(s.att, backend_.Allocate(size_t{1} * tokens * c.q_dim() * f));
  ASSIGN_OR_RETURN(s.gate, backend_.Allocate(size_t{1} * tokens * c.ffn_dim * f));
  ASSIGN_OR_RETURN(s.up, backend_.Allocate(size_t{1} * tokens * c.ffn_dim * f));
  ASSIGN_OR_RETURN(s.logits, backend_.Allocate(size_t{1} * tokens * c.vocab_size * f));
  ASSIGN_OR_RETURN(s.ids, backend_.Allocate(size_t{1} * tokens * sizeof(int32_t)));
  ASSIGN_OR_RETURN(s.positions, backend_.Allocate(size_t{1} * tokens * sizeof(int32_t)));
  scratch_ = std::move(s);
  return absl::OkStatus();
}

absl::Status LlamaModel::CheckPrompt(std::span<const int32_t> tokens, int32_t start_position,
                                     const KvSequence& cache, const char* what) const {
  const int32_t n = static_cast<int32_t>(tokens.size());
  if (n == 0) return absl::InvalidArgumentError(absl::StrFormat("%s: no tokens", what));
  if (start_position < 0 || start_position + n > cache.capacity()) {
    return absl::OutOfRangeError(absl::StrFormat("%s: positions [%d, %d) exceed the KV cache capacity %d", what,
                                                 start_position, start_position + n, cache.capacity()));
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d is outside the vocabulary [0, %d)", id, config_.vocab_size));
    }
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::Forward(std::span<const int32_t> tokens, int32_t start_position, KvSequence& cache,
                                 bool all_logits, float* logits) {
  RETURN_IF_ERROR(CheckPrompt(tokens, start_position, cache, "Forward"));
  const int32_t n = static_cast<int32_t>(tokens.size());
  for (int32_t done = 0; done < n; done += options_.prefill_chunk) {
    const int32_t len = std::min(options_.prefill_chunk, n - done);
    const bool last_chunk = done + len == n;
    float* chunk_logits = all_logits ? logits + static_cast<size_t>(done) * config_.vocab_size : logits;
    // Intermediate chunks only fill the cache unless every position's logits are wanted.
    RETURN_IF_ERROR(ForwardChunk(tokens.subspan(done, len), start_position + done, cache, all_logits,
                                 (all_logits || last_chunk) ? chunk_logits : nullptr));
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::PrefillLayerMajor(std::span<const int32_t> tokens, int32_t start_position,
                                           KvSequence& cache, int32_t chunk, float* logits) {
  if (logits == nullptr) return absl::InvalidArgumentError("PrefillLayerMajor: null logits");
  ASSIGN_OR_RETURN(LayerMajorPrefill prefill, StartLayerMajor(tokens, start_position, cache, chunk));
  while (!prefill.done()) RETURN_IF_ERROR(prefill.Step());
  return prefill.Logits(logits);
}

absl::StatusOr<LayerMajorPrefill> LlamaModel::StartLayerMajor(std::span<const int32_t> tokens,
                                                              int32_t start_position, KvSequence& cache,
                                                              int32_t chunk) {
  RETURN_IF_ERROR(CheckPrompt(tokens, start_position, cache, "PrefillLayerMajor"));
  if (chunk < 0) return absl::InvalidArgumentError(absl::StrFormat("PrefillLayerMajor: chunk %d < 0", chunk));
  const ModelConfig& c = config_;
  const int32_t n = static_cast<int32_t>(tokens.size());
  if (chunk == 0) chunk = options_.prefill_chunk;
  chunk = std::min(chunk, n);
  RETURN_IF_ERROR(EnsureScratch(chunk));
  LayerMajorPrefill p;
  p.model_ = this;
  p.cache_ = &cache;
  p.n_ = n;
  p.start_position_ = start_position;
  p.chunk_ = chunk;
  p.steps_total_ = c.num_layers * ((n + chunk - 1) / chunk);
  p.positions_.resize(chunk);
  // The prompt's hidden states between layers; freed with the prefill (device memory is for KV).
  ASSIGN_OR_RETURN(p.hidden_, backend_.Allocate(static_cast<size_t>(n) * c.dim * sizeof(float)));
  float* hidden = p.hidden_.as<float>();
  int32_t* ids = scratch_.ids.as<int32_t>();
  for (int32_t done = 0; done < n; done += chunk) {
    const int32_t len = std::min(chunk, n - done);
    RETURN_IF_ERROR(backend_.CopyToDevice(ids, tokens.data() + done, len * sizeof(int32_t)));
    RETURN_IF_ERROR(backend_.Embed(weights_.token_embd, ids, len, hidden + static_cast<size_t>(done) * c.dim));
  }
  return p;
}

absl::Status LayerMajorPrefill::Step() {
  if (done()) return absl::FailedPreconditionError("LayerMajorPrefill::Step: the prefill is done");
  LlamaModel& m = *model_;
  const int32_t chunks = (n_ + chunk_ - 1) / chunk_;
  const int32_t layer = steps_done_ / chunks;
  const int32_t done = (steps_done_ % chunks) * chunk_;
  const int32_t len = std::min(chunk_, n_ - done);
  const int32_t start = start_position_ + done;
  // Other requests' forward passes may have run on the model since the last step: its scratch is
  // transient, only the hidden states carry over.
  RETURN_IF_ERROR(m.EnsureScratch(chunk_));
  int32_t* pos = m.scratch_.positions.as<int32_t>();
  std::iota(positions_.begin(), positions_.begin() + len, start);
  RETURN_IF_ERROR(m.backend_.CopyToDevice(pos, positions_.data(), len * sizeof(int32_t)));
  RETURN_IF_ERROR(m.LayerChunk(layer, len, start, pos, hidden_.as<float>() + static_cast<size_t>(done) * m.config_.dim,
                               *cache_));
  ++steps_done_;
  return absl::OkStatus();
}

absl::Status LayerMajorPrefill::Logits(float* logits) {
  if (!done()) return absl::FailedPreconditionError("LayerMajorPrefill::Logits: the prefill is not done");
  if (logits == nullptr) return absl::InvalidArgumentError("LayerMajorPrefill::Logits: null logits");
  LlamaModel& m = *model_;
  return m.Logits(hidden_.as<float>() + static_cast<size_t>(n_ - 1) * m.config_.dim, 1, logits);
}

absl::Status LlamaModel::EnsureAttentionWorkspace(size_t bytes) {
  if (bytes <= scratch_.attn_workspace_bytes) return absl::OkStatus();
  ASSIGN_OR_RETURN(scratch_.attn_workspace, backend_.Allocate(bytes));
  scratch_.attn_workspace_bytes = bytes;
  return absl::OkStatus();
}

absl::Status LlamaModel::AttentionInputs(const LayerWeights& w, int32_t n, const int32_t* positions, const float* x,
                                         float* q, float* k, float* v) {
  const ModelConfig& c = config_;
  kernels::Backend& b = backend_;
  float* xn = scratch_.xn.as<float>();
  RETURN_IF_ERROR(b.RmsNorm(x, w.attn_norm, n, c.dim, c.rms_eps, xn));
  {
    const kernels::Matrix qkv[3] = {w.wq, w.wk, w.wv};
    float* const out[3] = {q, k, v};
    RETURN_IF_ERROR(b.MatMulMany(xn, qkv, n, out));
  }
  if (c.has_qkv_bias) {
    RETURN_IF_ERROR(b.AddBias(q, w.bq, n, c.q_dim()));
    RETURN_IF_ERROR(b.AddBias(k, w.bk, n, c.kv_dim()));
    RETURN_IF_ERROR(b.AddBias(v, w.bv, n, c.kv_dim()));
  }
  if (c.has_qk_norm) {  // qwen3: per-head RMSNorm of q and k before RoPE
    RETURN_IF_ERROR(b.RmsNorm(q, w.q_norm, n * c.num_heads, c.head_dim, c.rms_eps, q));
    RETURN_IF_ERROR(b.RmsNorm(k, w.k_norm, n * c.num_kv_heads, c.head_dim, c.rms_eps, k));
  }
  RETURN_IF_ERROR(b.Rope(q, positions, n, c.num_heads, c.head_dim, rope_));
  return b.Rope(k, positions, n, c.num_kv_heads, c.head_dim, rope_);
}

absl::Status LlamaModel::AttentionOutputAndFfn(const LayerWeights& w, int32_t n, const float* att, float* x) {
  const ModelConfig& c = config_;
  kernels::Backend& b = backend_;
  float* xn = scratch_.xn.as<float>();
  float* gate = scratch_.gate.as<float>();
  float* up = scratch_.up.as<float>();
  RETURN_IF_ERROR(b.MatMul(att, w.wo, n, xn));
  RETURN_IF_ERROR(b.Add(x, xn, static_cast<size_t>(n) * c.dim));
  RETURN_IF_ERROR(b.RmsNorm(x, w.ffn_norm, n, c.dim, c.rms_eps, xn));
  {
    const kernels::Matrix gate_up[2] = {w.w_gate, w.w_up};
    float* const out[2] = {gate, up};
    RETURN_IF_ERROR(b.MatMulMany(xn, gate_up, n, out));
  }
  RETURN_IF_ERROR(b.SwiGlu(gate, up, static_cast<size_t>(n) * c.ffn_dim, gate));
  RETURN_IF_ERROR(b.MatMul(gate, w.w_down, n, xn));
  return b.Add(x, xn, static_cast<size_t>(n) * c.dim);
}

absl::Status LlamaModel::LayerChunk(int32_t l, int32_t n, int32_t start, const int32_t* pos, float* x,
                                    KvSequence& cache) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  const kernels::AttentionParams attn{n, c.num_heads, c.num_kv_heads, c.head_dim, start,
                                      1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  RETURN_IF_ERROR(EnsureAttentionWorkspace(kernels::AttentionWorkspaceBytes(attn, backend_.num_threads())));
  // New keys and values go straight into their cache rows when the sequence allows it.
  const KvSequence::Rows rows = cache.InPlaceRows(l, start, n);
  float* k = rows.k != nullptr ? rows.k : scratch_.k.as<float>();
  float* v = rows.v != nullptr ? rows.v : scratch_.v.as<float>();
  float* q = scratch_.q.as<float>();
  float* att = scratch_.att.as<float>();
  RETURN_IF_ERROR(AttentionInputs(w, n, pos, x, q, k, v));
  RETURN_IF_ERROR(cache.Append(l, start, n, k, v));
  RETURN_IF_ERROR(cache.Attend(l, attn, q, att, scratch_.attn_workspace.data()));
  return AttentionOutputAndFfn(w, n, att, x);
}

absl::Status LlamaModel::Logits(const float* x, int32_t rows, float* logits) {
  const ModelConfig& c = config_;
  float* xn = scratch_.xn.as<float>();
  float* out = scratch_.logits.as<float>();
  RETURN_IF_ERROR(backend_.RmsNorm(x, weights_.output_norm, rows, c.dim, c.rms_eps, xn));
  RETURN_IF_ERROR(backend_.MatMul(xn, weights_.output, rows, out));
  return backend_.CopyToHost(logits, out, static_cast<size_t>(rows) * c.vocab_size * sizeof(float));
}

absl::Status LlamaModel::ForwardChunk(std::span<const int32_t> tokens, int32_t start, KvSequence& cache,
                                      bool all_logits, float* logits) {
  const ModelConfig& c = config_;
  const int32_t n = static_cast<int32_t>(tokens.size());
  RETURN_IF_ERROR(EnsureScratch(n));
  std::vector<int32_t> positions(n);
  std::iota(positions.begin(), positions.end(), start);
  int32_t* ids = scratch_.ids.as<int32_t>();
  int32_t* pos = scratch_.positions.as<int32_t>();
  RETURN_IF_ERROR(backend_.CopyToDevice(ids, tokens.data(), n * sizeof(int32_t)));
  RETURN_IF_ERROR(backend_.CopyToDevice(pos, positions.data(), n * sizeof(int32_t)));
  float* x = scratch_.x.as<float>();
  RETURN_IF_ERROR(backend_.Embed(weights_.token_embd, ids, n, x));
  for (int32_t l = 0; l < c.num_layers; ++l) RETURN_IF_ERROR(LayerChunk(l, n, start, pos, x, cache));
  if (logits == nullptr) return absl::OkStatus();
  // Every row, or only the last one.
  return all_logits ? Logits(x, n, logits) : Logits(x + static_cast<size_t>(n - 1) * c.dim, 1, logits);
}

absl::Status LlamaModel::ForwardDecodeBatch(std::span<const DecodeItem> items, float* logits) {
  const ModelConfig& c = config_;
  const int32_t n = static_cast<int32_t>(items.size());
  if (n == 0) return absl::InvalidArgumentError("ForwardDecodeBatch: no items");
  if (logits == nullptr) return absl::InvalidArgumentError("ForwardDecodeBatch: null logits");
  std::vector<int32_t> ids(n), positions(n);
  for (int32_t i = 0; i < n; ++i) {
    const DecodeItem& it = items[i];
    if (it.cache == nullptr) return absl::InvalidArgumentError(absl::StrFormat("ForwardDecodeBatch: item %d has no cache", i));
    if (it.token < 0 || it.token >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d is outside the vocabulary [0, %d)", it.token, c.vocab_size));
    }
    if (it.position < 0 || it.position + 1 > it.cache->capacity()) {
      return absl::OutOfRangeError(absl::StrFormat("ForwardDecodeBatch: position %d exceeds the KV cache capacity %d",
                                                   it.position, it.cache->capacity()));
    }
    for (int32_t j = 0; j < i; ++j) {
      if (items[j].cache == it.cache) return absl::InvalidArgumentError("ForwardDecodeBatch: two items share a cache");
    }
    ids[i] = it.token;
    positions[i] = it.position;
  }
  RETURN_IF_ERROR(EnsureScratch(n));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  size_t ws_bytes = 0;
  for (int32_t i = 0; i < n; ++i) {
    kernels::AttentionParams p{1, c.num_heads, c.num_kv_heads, c.head_dim, items[i].position, scale};
    ws_bytes = std::max(ws_bytes, kernels::AttentionWorkspaceBytes(p, backend_.num_threads()));
  }
  RETURN_IF_ERROR(EnsureAttentionWorkspace(ws_bytes));
  int32_t* dev_ids = scratch_.ids.as<int32_t>();
  int32_t* pos = scratch_.positions.as<int32_t>();
  RETURN_IF_ERROR(backend_.CopyToDevice(dev_ids, ids.data(), n * sizeof(int32_t)));
  RETURN_IF_ERROR(backend_.CopyToDevice(pos, positions.data(), n * sizeof(int32_t)));

  float* x = scratch_.x.as<float>();
  float* q = scratch_.q.as<float>();
  float* k = scratch_.k.as<float>();
  float* v = scratch_.v.as<float>();
  float* att = scratch_.att.as<float>();
  kernels::Backend& b = backend_;
  const size_t q_dim = c.q_dim(), kv_dim = c.kv_dim();

  // Dense caches (every item a KvCache): each layer's new rows go to their caches in one call and
  // the attention of all items runs as one batch, instead of two calls per item and layer.
  bool all_dense = true;
  for (const DecodeItem& it : items) all_dense = all_dense && it.cache->DenseRows(0).k != nullptr;
  std::vector<float*> k_dst(all_dense ? n : 0), v_dst(all_dense ? n : 0);
  std::vector<kernels::Backend::DecodeRows> rows(all_dense ? n : 0);
  const kernels::AttentionParams batch_params{1, c.num_heads, c.num_kv_heads, c.head_dim, 0, scale};

  RETURN_IF_ERROR(b.Embed(weights_.token_embd, dev_ids, n, x));
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // Each row rotates by its own position.
    RETURN_IF_ERROR(AttentionInputs(w, n, pos, x, q, k, v));
    if (all_dense) {
      for (int32_t i = 0; i < n; ++i) {
        const KvSequence::Rows cache = items[i].cache->DenseRows(l);
        k_dst[i] = cache.k + static_cast<size_t>(items[i].position) * kv_dim;
        v_dst[i] = cache.v + static_cast<size_t>(items[i].position) * kv_dim;
        rows[i] = {cache.k, cache.v, items[i].position + 1};
      }
      RETURN_IF_ERROR(b.ScatterRows(k_dst, v_dst, k, v, static_cast<int32_t>(kv_dim)));
      RETURN_IF_ERROR(b.DecodeAttentionBatch(batch_params, rows, q, att, scratch_.attn_workspace.data()));
      RETURN_IF_ERROR(AttentionOutputAndFfn(w, n, att, x));
      continue;
    }
    for (int32_t i = 0; i < n; ++i) {
      const DecodeItem& it = items[i];
      kernels::AttentionParams p{1, c.num_heads, c.num_kv_heads, c.head_dim, it.position, scale};
      RETURN_IF_ERROR(it.cache->Append(l, it.position, 1, k + i * kv_dim, v + i * kv_dim));
      RETURN_IF_ERROR(it.cache->Attend(l, p, q + i * q_dim, att + i * q_dim, scratch_.attn_workspace.data()));
    }
    RETURN_IF_ERROR(AttentionOutputAndFfn(w, n, att, x));
  }
  return Logits(x, n, logits);
}

}  // namespace leoam
