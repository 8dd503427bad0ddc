// Causal GQA attention over a contiguous fp32 cache on the CPU; exact softmax in fp32.
//
// Decode (num_queries == 1), flash-decoding style: work items are (kv head, key chunk); an item
// scores its chunk for all query heads sharing the kv head (each K/V row is read once), keeps
// (max, sum, weighted V) per head, and a merge combines the chunks. Chunks exist only when there
// are fewer kv heads than threads x 4 and the context is long.
//
// Prefill (num_queries > 1): work items are (query head, query block); an item computes its
// scores with one sgemm (Q_blk K^T over the keys the block can see), a row-wise softmax with the
// causal mask, and O_blk = P V with a second sgemm. Scores live in the caller's workspace:
// one [block, keys] tile per thread, with the block shrunk for very long contexts so the tile
// stays within kScoreTileFloats.
//
// Items are handed out dynamically (largest first), so causal blocks of unequal size balance.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_context.h"

namespace leoam::kernels::cpu {

// Floats of workspace Attention() needs for `params` on `num_threads` threads.
size_t AttentionWorkspaceFloats(const AttentionParams& params, int num_threads);

//   q: [n, num_heads, head_dim]; k, v: [>= first_position + n, num_kv_heads, head_dim];
//   out: [n, num_heads, head_dim]; workspace: AttentionWorkspaceFloats(params, threads) floats.
absl::Status Attention(const CpuContext& ctx, const AttentionParams& params, const float* q, const float* k,
                       const float* v, float* out, float* workspace);

}  // namespace leoam::kernels::cpu
