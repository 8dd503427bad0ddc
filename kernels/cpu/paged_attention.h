// Sparse decode attention over selected KV pages on the CPU: one query token, exact fp32 softmax
// over every token of the selected pages (see PagedAttentionParams in kernels/backend.h).
//
// Work items are query heads: an item scores all selected tokens of its KV head into its own
// workspace row, takes the softmax and accumulates the weighted values. Scores stay in the
// caller's workspace, so the op allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_context.h"

namespace leoam::kernels::cpu {

// Floats of workspace PagedAttention() needs for selections of up to `max_pages` pages.
size_t PagedAttentionWorkspaceFloats(const PagedAttentionParams& params, int32_t max_pages);

//   q: [num_heads, head_dim]; k_pages, v_pages: [num_slots, page_size, num_kv_heads, head_dim];
//   page_ids: [num_pages]; out: [num_heads, head_dim];
//   workspace: PagedAttentionWorkspaceFloats(params, >= num_pages) floats.
absl::Status PagedAttention(const CpuContext& ctx, const PagedAttentionParams& params, const float* q,
                            const float* k_pages, const float* v_pages, const int32_t* page_ids, float* out,
                            float* workspace);

}  // namespace leoam::kernels::cpu
