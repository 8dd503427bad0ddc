// The CPU backend's small ops: Embed, RmsNorm, AddBias, Add, SwiGlu, Rope. Shapes are those of
// kernels/backend.h. Each runs inline below kMinBytesPerThread of work and over the pool above it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_context.h"

namespace leoam::kernels::cpu {

absl::Status Embed(const CpuContext& ctx, const Matrix& table, const int32_t* ids, int32_t n, float* out);
absl::Status RmsNorm(const CpuContext& ctx, const float* x, const float* weight, int32_t rows, int32_t dim, float eps,
                     float* y);
absl::Status AddBias(const CpuContext& ctx, float* y, const float* bias, int32_t n, int32_t dim);
absl::Status Add(const CpuContext& ctx, float* x, const float* y, size_t count);
absl::Status SwiGlu(const CpuContext& ctx, const float* gate, const float* up, size_t count, float* out);
absl::Status Rope(const CpuContext& ctx, float* x, const int32_t* positions, int32_t n, int32_t num_heads,
                  int32_t head_dim, const RopeParams& rope);

}  // namespace leoam::kernels::cpu
