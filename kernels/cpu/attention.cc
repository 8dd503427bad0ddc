#include "kernels/cpu/attention.h"

#include <cblas.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_format.h"

namespace leoam::kernels::cpu {
namespace {

// Per-thread regions start on a cache line.
constexpr int64_t kAlignFloats = 16;
int64_t AlignUp(int64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

// --- decode plan ---
constexpr int64_t kMinDecodeChunk = 256;  // keys per chunk at least (below, merging costs more than it saves)
// Below this many multiply-adds (q.k plus p*v over all heads) decode runs inline.
constexpr int64_t kMinDecodeMacsPerThread = 256 * 1024;
// Below this many multiply-adds per thread prefill attention runs inline.
constexpr int64_t kMinPrefillMacsPerThread = int64_t{4} << 20;

struct DecodePlan {
  int64_t keys = 0;            // first_position + 1
  int64_t group = 0;           // query heads per kv head
  int64_t num_chunks = 1;      // key chunks per kv head
  int64_t chunk = 0;           // keys per chunk (last one may be shorter)
  int64_t partial_floats = 0;  // per (kv head, chunk): per query head max, sum, acc[head_dim]
  int64_t scores_floats = 0;   // per thread: group x chunk scores
};

DecodePlan MakeDecodePlan(const AttentionParams& p, int threads) {
  DecodePlan plan;
  plan.keys = int64_t{p.first_position} + 1;
  plan.group = p.num_heads / p.num_kv_heads;
  if (threads > 1 && p.num_kv_heads < 4 * threads) {
    const int64_t wanted = (4 * threads + p.num_kv_heads - 1) / p.num_kv_heads;
    plan.num_chunks = std::clamp<int64_t>(plan.keys / kMinDecodeChunk, 1, wanted);
  }
  plan.chunk = (plan.keys + plan.num_chunks - 1) / plan.num_chunks;
  plan.partial_floats = plan.group * (p.head_dim + 2);
  plan.scores_floats = AlignUp(plan.group * plan.chunk);
  return plan;
}

int64_t DecodeWorkspaceFloats(const DecodePlan& plan, const AttentionParams& p, int threads) {
  return AlignUp(int64_t{p.num_kv_heads} * plan.num_chunks * plan.partial_floats) + threads * plan.scores_floats;
}

// --- prefill plan ---
constexpr int64_t kMaxQueryBlock = 64;
constexpr int64_t kScoreTileFloats = int64_t{4} << 20;  // 16 MiB of scores per thread at most

struct PrefillPlan {
  int64_t keys = 0;   // first_position + num_queries
  int64_t block = 0;  // queries per block
  int64_t num_blocks = 0;
  int64_t tile_floats = 0;  // per thread: block x keys
};

PrefillPlan MakePrefillPlan(const AttentionParams& p) {
  PrefillPlan plan;
  plan.keys = int64_t{p.first_position} + p.num_queries;
  plan.block = std::clamp<int64_t>(kScoreTileFloats / plan.keys, 1, std::min<int64_t>(kMaxQueryBlock, p.num_queries));
  plan.num_blocks = (p.num_queries + plan.block - 1) / plan.block;
  plan.tile_floats = AlignUp(plan.block * plan.keys);
  return plan;
}

absl::Status Validate(const AttentionParams& p) {
  if (p.num_queries < 0 || p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0 || p.first_position < 0 ||
      p.num_heads % p.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Attention: bad params (queries %d, heads %d, kv heads %d, head_dim %d, first_position %d)",
                        p.num_queries, p.num_heads, p.num_kv_heads, p.head_dim, p.first_position));
  }
  return absl::OkStatus();
}

void Decode(const CpuContext& ctx, const AttentionParams& p, const float* q, const float* k, const float* v, float* out,
            float* ws) {
  const int threads = ctx.num_threads();
  const DecodePlan plan = MakeDecodePlan(p, threads);
  const SimdKernels& simd = *ctx.simd;
  const int64_t d = p.head_dim;
  const int64_t kv_stride = int64_t{p.num_kv_heads} * d;  // between consecutive cache rows
  float* partials = ws;
  float* scores_base = ws + AlignUp(int64_t{p.num_kv_heads} * plan.num_chunks * plan.partial_floats);
  const int64_t items = int64_t{p.num_kv_heads} * plan.num_chunks;
  const bool parallel = int64_t{p.num_heads} * plan.keys * d * 2 >= kMinDecodeMacsPerThread * 2;

  RunDynamic(ctx, items, parallel ? ctx.num_threads() : 1, [&](int64_t item, int thread) {
    const int64_t g = item / plan.num_chunks;
    const int64_t c = item % plan.num_chunks;
    const int64_t k0 = c * plan.chunk;
    const int64_t len = std::min(plan.keys, k0 + plan.chunk) - k0;
    float* scores = scores_base + thread * plan.scores_floats;  // [group, len]
    float* part = partials + item * plan.partial_floats;        // [group][max, sum, acc[d]]
    for (int64_t h = 0; h < plan.group; ++h) {
      const float* qh = q + (g * plan.group + h) * d;
      float* s = scores + h * len;
      simd.attn_scores(qh, k + k0 * kv_stride + g * d, kv_stride, len, d, p.scale, s);
      float* ph = part + h * (d + 2);
      ph[0] = simd.max(s, len);
      ph[1] = simd.exp_sub_sum(s, len, ph[0]);
      std::fill(ph + 2, ph + 2 + d, 0.0f);
    }
    for (int64_t h = 0; h < plan.group; ++h) {
      simd.attn_weighted_sum(scores + h * len, v + k0 * kv_stride + g * d, kv_stride, len, d, part + h * (d + 2) + 2);
    }
  });

  // Merge the chunks of each query head: rescale to the common max.
  for (int64_t head = 0; head < p.num_heads; ++head) {
    const int64_t g = head / plan.group;
    const int64_t h = head % plan.group;
    float* o = out + head * d;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < plan.num_chunks; ++c)
      m = std::max(m, partials[(g * plan.num_chunks + c) * plan.partial_floats + h * (d + 2)]);
    float l = 0.0f;
    std::fill(o, o + d, 0.0f);
    for (int64_t c = 0; c < plan.num_chunks; ++c) {
      const float* ph = partials + (g * plan.num_chunks + c) * plan.partial_floats + h * (d + 2);
      const float w = plan.num_chunks == 1 ? 1.0f : std::exp(ph[0] - m);
      l += w * ph[1];
      simd.axpy(w, ph + 2, o, d);
    }
    simd.scale(1.0f / l, o, d);
  }
}

void Prefill(const CpuContext& ctx, const AttentionParams& p, const float* q, const float* k, const float* v,
             float* out, float* ws) {
  const PrefillPlan plan = MakePrefillPlan(p);
  const SimdKernels& simd = *ctx.simd;
  const int64_t d = p.head_dim;
  const int64_t group = p.num_heads / p.num_kv_heads;
  const int64_t q_stride = int64_t{p.num_heads} * d;
  const int64_t kv_stride = int64_t{p.num_kv_heads} * d;
  const int64_t items = plan.num_blocks * p.num_heads;
  // Causal work is about heads * queries * (first_position + queries / 2) * head_dim * 2.
  const int64_t macs =
      int64_t{p.num_heads} * p.num_queries * (int64_t{p.first_position} + p.num_queries / 2 + 1) * d * 2;
  const bool parallel = macs >= 2 * kMinPrefillMacsPerThread;

  RunDynamic(ctx, items, parallel ? ctx.num_threads() : 1, [&](int64_t item, int thread) {
    // Last query blocks (the most keys) first.
    const int64_t b = plan.num_blocks - 1 - item / p.num_heads;
    const int64_t head = item % p.num_heads;
    const int64_t g = head / group;
    const int64_t q0 = b * plan.block;
    const int64_t nq = std::min<int64_t>(p.num_queries, q0 + plan.block) - q0;
    const int64_t nk = p.first_position + q0 + nq;  // keys visible to the block's last query
    float* s = ws + thread * plan.tile_floats;      // [nq, nk]
    const float* qb = q + q0 * q_stride + head * d;
    const float* kg = k + g * d;
    const float* vg = v + g * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(nk),
                static_cast<int>(d), p.scale, qb, static_cast<int>(q_stride), kg, static_cast<int>(kv_stride), 0.0f, s,
                static_cast<int>(nk));
    for (int64_t i = 0; i < nq; ++i) {
      float* row = s + i * nk;
      const int64_t visible = p.first_position + q0 + i + 1;
      const float m = simd.max(row, visible);
      const float l = simd.exp_sub_sum(row, visible, m);
      simd.scale(1.0f / l, row, visible);
      std::fill(row + visible, row + nk, 0.0f);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nq), static_cast<int>(d),
                static_cast<int>(nk), 1.0f, s, static_cast<int>(nk), vg, static_cast<int>(kv_stride), 0.0f,
                out + q0 * q_stride + head * d, static_cast<int>(q_stride));
  });
}

}  // namespace

size_t AttentionWorkspaceFloats(const AttentionParams& params, int num_threads) {
  if (!Validate(params).ok() || params.num_queries == 0) return 0;
  num_threads = std::max(1, num_threads);
  if (params.num_queries == 1) {
    return static_cast<size_t>(DecodeWorkspaceFloats(MakeDecodePlan(params, num_threads), params, num_threads));
  }
  return static_cast<size_t>(num_threads * MakePrefillPlan(params).tile_floats);
}

absl::Status Attention(const CpuContext& ctx, const AttentionParams& params, const float* q, const float* k,
                       const float* v, float* out, float* workspace) {
  if (absl::Status s = Validate(params); !s.ok()) return s;
  if (params.num_queries == 0) return absl::OkStatus();
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr || workspace == nullptr) {
    return absl::InvalidArgumentError("Attention: null pointer");
  }
  if (params.num_queries == 1) {
    Decode(ctx, params, q, k, v, out, workspace);
  } else {
    Prefill(ctx, params, q, k, v, out, workspace);
  }
  return absl::OkStatus();
}

}  // namespace leoam::kernels::cpu
