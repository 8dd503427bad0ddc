#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "kernels/cpu/q8_0.h"

namespace leoam::kernels::cpu {
namespace {

// Items per slice so that a slice moves at least kMinBytesPerThread.
int64_t MinItems(int64_t bytes_per_item) {
  return std::max<int64_t>(1, kMinBytesPerThread / std::max<int64_t>(1, bytes_per_item));
}

}  // namespace

absl::Status Embed(const CpuContext& ctx, const Matrix& table, const int32_t* ids, int32_t n, float* out) {
  if (table.data == nullptr || table.rows <= 0 || table.cols <= 0)
    return absl::InvalidArgumentError("Embed: empty table");
  if (table.type == DType::kQ8_0 && table.cols % kQ8Block != 0) {
    return absl::InvalidArgumentError("Embed: Q8_0 table needs cols % 32 == 0");
  }
  if (n < 0) return absl::InvalidArgumentError("Embed: n < 0");
  for (int32_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= table.rows) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Embed: token id %d at %d outside the table's %d rows", ids[i], i, table.rows));
    }
  }
  ctx.pool->ParallelFor(
      n,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
          ctx.simd->convert_block(table, ids[i], ids[i] + 1, 0, table.cols, out + i * table.cols);
        }
      },
      MinItems(table.cols * 4));
  return absl::OkStatus();
}

absl::Status RmsNorm(const CpuContext& ctx, const float* x, const float* weight, int32_t rows, int32_t dim, float eps,
                     float* y) {
  if (rows < 0 || dim <= 0) return absl::InvalidArgumentError("RmsNorm: bad shape");
  ctx.pool->ParallelFor(
      rows,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          const float* xr = x + r * dim;
          float* yr = y + r * dim;
          // Four double partial sums: accurate, and not one long dependency chain.
          double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          int32_t i = 0;
          for (; i + 4 <= dim; i += 4) {
            s0 += static_cast<double>(xr[i]) * xr[i];
            s1 += static_cast<double>(xr[i + 1]) * xr[i + 1];
            s2 += static_cast<double>(xr[i + 2]) * xr[i + 2];
            s3 += static_cast<double>(xr[i + 3]) * xr[i + 3];
          }
          for (; i < dim; ++i) s0 += static_cast<double>(xr[i]) * xr[i];
          const float mean = static_cast<float>((s0 + s1 + s2 + s3) / dim);
          const float scale = 1.0f / std::sqrt(mean + eps);
          for (i = 0; i < dim; ++i) yr[i] = (xr[i] * scale) * weight[i];
        }
      },
      MinItems(int64_t{dim} * 8));
  return absl::OkStatus();
}

absl::Status AddBias(const CpuContext& ctx, float* y, const float* bias, int32_t n, int32_t dim) {
  if (n < 0 || dim < 0) return absl::InvalidArgumentError("AddBias: bad shape");
  ctx.pool->ParallelFor(
      n,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          float* yr = y + r * dim;
          for (int32_t i = 0; i < dim; ++i) yr[i] += bias[i];
        }
      },
      MinItems(int64_t{dim} * 8));
  return absl::OkStatus();
}

absl::Status Add(const CpuContext& ctx, float* x, const float* y, size_t count) {
  ctx.pool->ParallelFor(
      static_cast<int64_t>(count),
      [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) x[i] += y[i];
      },
      MinItems(12));
  return absl::OkStatus();
}

absl::Status SwiGlu(const CpuContext& ctx, const float* gate, const float* up, size_t count, float* out) {
  // exp dominates: count it as ~10 loads' worth per element.
  ctx.pool->ParallelFor(
      static_cast<int64_t>(count),
      [&](int64_t begin, int64_t end, int) { ctx.simd->swiglu(gate + begin, up + begin, end - begin, out + begin); },
      MinItems(64));
  return absl::OkStatus();
}

absl::Status Rope(const CpuContext& ctx, float* x, const int32_t* positions, int32_t n, int32_t num_heads,
                  int32_t head_dim, const RopeParams& rope) {
  if (n < 0 || num_heads <= 0 || head_dim <= 0) return absl::InvalidArgumentError("Rope: bad shape");
  if (rope.rot_dim <= 0 || rope.rot_dim > head_dim || rope.rot_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Rope: rot_dim %d must be even and in (0, head_dim = %d]", rope.rot_dim, head_dim));
  }
  if (rope.inv_freq == nullptr) return absl::InvalidArgumentError("Rope: no inv_freq table");
  const int32_t half = rope.rot_dim / 2;
  // The cos/sin of one token are shared by its heads; computed in chunks of kChunk pairs on the
  // stack (no allocation).
  constexpr int32_t kChunk = 256;
  ctx.pool->ParallelFor(
      n,
      [&](int64_t begin, int64_t end, int) {
        float cos_t[kChunk], sin_t[kChunk];
        for (int64_t t = begin; t < end; ++t) {
          const float p = static_cast<float>(positions[t]);
          float* xt = x + t * num_heads * head_dim;
          for (int32_t i0 = 0; i0 < half; i0 += kChunk) {
            const int32_t i1 = std::min(half, i0 + kChunk);
            for (int32_t i = i0; i < i1; ++i) {
              // As llama.cpp: the angle in float, then float cos/sin.
              const float theta = p * rope.inv_freq[i];
              cos_t[i - i0] = std::cos(theta);
              sin_t[i - i0] = std::sin(theta);
            }
            for (int32_t h = 0; h < num_heads; ++h) {
              float* xh = xt + h * head_dim;
              for (int32_t i = i0; i < i1; ++i) {
                const int32_t a = rope.style == RopeStyle::kNormal ? 2 * i : i;
                const int32_t b = rope.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
                const float x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * cos_t[i - i0] - x1 * sin_t[i - i0];
                xh[b] = x0 * sin_t[i - i0] + x1 * cos_t[i - i0];
              }
            }
          }
        }
      },
      MinItems(int64_t{num_heads} * head_dim * 8 + half * 40));
  return absl::OkStatus();
}

}  // namespace leoam::kernels::cpu
