#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_format.h"
#include "kernels/cpu/q8_0.h"

extern "C" char* openblas_get_corename(void);

namespace leoam::kernels::cpu {
namespace {

// Matvecs run over row blocks of about this size: the unit threads claim, and with several
// tokens the unit read once from memory and then from cache.
constexpr int64_t kMatVecBlockBytes = 64 * 1024;

// Below this many multiply-adds a GEMM runs on the calling thread only.
constexpr int64_t kMinGemmMacsPerThread = int64_t{4} << 20;

// y[:, r0:r1] for fp32 W: sgemm straight on the weights.
void GemmSliceF32(const float* x, const Matrix& w, int32_t n, int64_t r0, int64_t r1, float* y) {
  const float* wp = static_cast<const float*>(w.data) + r0 * w.cols;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, static_cast<int>(r1 - r0), static_cast<int>(w.cols), 1.0f, x,
              static_cast<int>(w.cols), wp, static_cast<int>(w.cols), 0.0f, y + r0, static_cast<int>(w.rows));
}

// y[:, r0:r1] for F16/BF16/Q8_0 W: blocks of rows (and, for very wide rows, of columns) are
// converted into `scratch` and multiplied there. Column blocks accumulate with beta = 1.
void GemmSliceConverted(const CpuContext& ctx, const float* x, const Matrix& w, int32_t n, int64_t r0, int64_t r1,
                        float* scratch, float* y) {
  const int64_t cap = static_cast<int64_t>(ctx.gemm_scratch_floats);
  // Column block: all columns when 16 rows of them fit, else a multiple of 32 (Q8_0 blocks).
  int64_t col_block = w.cols;
  if (16 * col_block > cap) col_block = std::max<int64_t>(32, (cap / 16) & ~int64_t{31});
  const int64_t row_block = std::max<int64_t>(1, std::min<int64_t>(r1 - r0, cap / col_block));
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    for (int64_t cb = 0; cb < w.cols; cb += col_block) {
      const int64_t ce = std::min(w.cols, cb + col_block);
      ctx.simd->convert_block(w, rb, re, cb, ce, scratch);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, static_cast<int>(re - rb), static_cast<int>(ce - cb),
                  1.0f, x + cb, static_cast<int>(w.cols), scratch, static_cast<int>(ce - cb), cb == 0 ? 0.0f : 1.0f,
                  y + rb, static_cast<int>(w.rows));
    }
  }
}

absl::Status CheckMatrix(const Matrix& w) {
  if (w.data == nullptr || w.rows <= 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("MatMul: empty weight matrix [%d, %d]", w.rows, w.cols));
  }
  if (w.type == DType::kQ8_0 && w.cols % kQ8Block != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("MatMul: Q8_0 needs cols %% 32 == 0, got %d", w.cols));
  }
  if (w.rows > INT32_MAX || w.cols > INT32_MAX) return absl::InvalidArgumentError("MatMul: matrix too large");
  return absl::OkStatus();
}

}  // namespace

absl::Status MatMul(const CpuContext& ctx, const float* x, const Matrix& w, int32_t n, float* y) {
  if (absl::Status s = CheckMatrix(w); !s.ok()) return s;
  if (n <= 0) return n == 0 ? absl::OkStatus() : absl::InvalidArgumentError("MatMul: n < 0");
  if (x == nullptr || y == nullptr) return absl::InvalidArgumentError("MatMul: null input or output");

  if (n <= ctx.max_matvec_batch) {
    // Decode (and small batches): bandwidth-bound. Threads claim blocks of ~kMatVecBlockBytes rows;
    // with several tokens, each block is read from memory once and from cache for the others.
    const int64_t row_bytes = static_cast<int64_t>(RowBytes(w.type, w.cols));
    const int64_t block_rows = std::max<int64_t>(4, kMatVecBlockBytes / row_bytes) & ~int64_t{3};
    const int64_t blocks = (w.rows + block_rows - 1) / block_rows;
    const int64_t max_threads = std::max<int64_t>(1, w.rows * row_bytes * n / kMinBytesPerThread);
    const SimdKernels* simd = ctx.simd;
    RunDynamic(ctx, blocks, max_threads, [&](int64_t block, int) {
      const int64_t b = block * block_rows;
      const int64_t e = std::min(w.rows, b + block_rows);
      if (n > 1 && simd->matvec_rows_batch != nullptr) {
        simd->matvec_rows_batch(w, x, n, b, e, y);
      } else {
        for (int32_t t = 0; t < n; ++t) simd->matvec_rows(w, x + t * w.cols, b, e, y + t * w.rows);
      }
    });
    return absl::OkStatus();
  }

  const int64_t macs_per_row = static_cast<int64_t>(n) * w.cols;
  if (ctx.simd->gemm_rows != nullptr) {
    // Own GEMM (AVX-512): threads claim whole panels.
    const int64_t granule = ctx.simd->gemm_rows_granule;
    const int64_t panels = (w.rows + granule - 1) / granule;
    const int64_t max_threads = std::max<int64_t>(1, w.rows * macs_per_row / kMinGemmMacsPerThread);
    RunDynamic(ctx, panels, max_threads, [&](int64_t panel, int thread) {
      ctx.simd->gemm_rows(x, n, w, panel * granule, std::min(w.rows, (panel + 1) * granule), y,
                          ctx.gemm_scratch + thread * ctx.gemm_scratch_floats, ctx.gemm_scratch_floats);
    });
    return absl::OkStatus();
  }

  // OpenBLAS. Slices are multiples of 16 rows so that sgemm's N-dimension stays panel-friendly.
  const int64_t min_rows = std::max<int64_t>(16, kMinGemmMacsPerThread / macs_per_row);
  const int64_t row_groups = (w.rows + 15) / 16;
  ctx.pool->ParallelFor(
      row_groups,
      [&](int64_t begin, int64_t end, int thread) {
        const int64_t r0 = begin * 16;
        const int64_t r1 = std::min(w.rows, end * 16);
        if (w.type == DType::kF32) {
          GemmSliceF32(x, w, n, r0, r1, y);
        } else {
          GemmSliceConverted(ctx, x, w, n, r0, r1, ctx.gemm_scratch + thread * ctx.gemm_scratch_floats, y);
        }
      },
      (min_rows + 15) / 16);
  return absl::OkStatus();
}

const char* ConfigureOpenBlas() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Our pool splits each GEMM; OpenBLAS threads on top would fight it for the same cores.
    openblas_set_num_threads(1);
  });
  // OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know AMD family 26 (Zen 5) and runs its AVX2
  // "Haswell" kernels there (this environment also pins OPENBLAS_CORETYPE=Haswell): about 105
  // GFLOP/s per core against about 190 for its AVX-512 "SkylakeX" kernels (sgemm 512x768x768).
  // The core is fixed when libopenblas loads, so rather than patching OpenBLAS internals, MatMul
  // uses its own AVX-512 GEMM (gemm_avx512.cc, ~175 GFLOP/s per core) wherever AVX-512 exists;
  // OpenBLAS keeps the AVX2/scalar machines and attention's small GEMMs.
  return openblas_get_corename();
}

}  // namespace leoam::kernels::cpu
