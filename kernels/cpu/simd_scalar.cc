// Portable fallback of the SIMD kernel table (CPUs without AVX2/FMA/F16C, or LEOAM_SIMD=scalar).
#include <algorithm>
#include <cmath>

#include "kernels/cpu/q8_0.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/half.h"

namespace leoam::kernels::cpu::scalar {
namespace {

// Converts w[r, c0:c1] to fp32.
void ConvertRow(const Matrix& w, int64_t r, int64_t c0, int64_t c1, float* dst) {
  const size_t row_bytes = RowBytes(w.type, w.cols);
  const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(r) * row_bytes;
  switch (w.type) {
    case DType::kF32: {
      const float* src = reinterpret_cast<const float*>(row);
      std::copy(src + c0, src + c1, dst);
      break;
    }
    case DType::kF16: {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
      for (int64_t c = c0; c < c1; ++c) dst[c - c0] = HalfToFloat(src[c]);
      break;
    }
    case DType::kBF16: {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
      for (int64_t c = c0; c < c1; ++c) dst[c - c0] = Bf16ToFloat(src[c]);
      break;
    }
    case DType::kQ8_0: {
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
      for (int64_t c = c0; c < c1; ++c) {
        const BlockQ8_0& b = blocks[c / kQ8Block];
        dst[c - c0] = HalfToFloat(b.d) * static_cast<float>(b.qs[c % kQ8Block]);
      }
      break;
    }
  }
}

void MatVecRows(const Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  const size_t row_bytes = RowBytes(w.type, w.cols);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(r) * row_bytes;
    float acc = 0.0f;
    switch (w.type) {
      case DType::kF32: {
        const float* src = reinterpret_cast<const float*>(row);
        for (int64_t c = 0; c < w.cols; ++c) acc += src[c] * x[c];
        break;
      }
      case DType::kF16: {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
        for (int64_t c = 0; c < w.cols; ++c) acc += HalfToFloat(src[c]) * x[c];
        break;
      }
      case DType::kBF16: {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
        for (int64_t c = 0; c < w.cols; ++c) acc += Bf16ToFloat(src[c]) * x[c];
        break;
      }
      case DType::kQ8_0: {
        const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
        for (int64_t b = 0; b < w.cols / kQ8Block; ++b) {
          float sum = 0.0f;
          for (int i = 0; i < kQ8Block; ++i) sum += static_cast<float>(blocks[b].qs[i]) * x[b * kQ8Block + i];
          acc += HalfToFloat(blocks[b].d) * sum;
        }
        break;
      }
    }
    y[r] = acc;
  }
}

void ConvertBlock(const Matrix& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) {
  for (int64_t r = r0; r < r1; ++r) ConvertRow(w, r, c0, c1, dst + (r - r0) * (c1 - c0));
}

float Dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void Scale(float a, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

float Max(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float ExpSubSum(float* x, int64_t n, float sub) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - sub);
    sum += x[i];
  }
  return sum;
}

void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void AttnScores(const float* q, const float* k, int64_t stride, int64_t len, int64_t d, float scale, float* scores) {
  for (int64_t j = 0; j < len; ++j) scores[j] = scale * Dot(q, k + j * stride, d);
}

void AttnWeightedSum(const float* p, const float* v, int64_t stride, int64_t len, int64_t d, float* acc) {
  for (int64_t j = 0; j < len; ++j) Axpy(p[j], v + j * stride, acc, d);
}

void BoxBoundHeads(const float* q_pos, const float* q_neg, int32_t num_heads, int32_t group, const float* mn,
                   const float* mx, int64_t d, float* out) {
  for (int32_t h = 0; h < num_heads; ++h) {
    const float* qp = q_pos + static_cast<size_t>(h) * d;
    const float* qn = q_neg + static_cast<size_t>(h) * d;
    const size_t kv = static_cast<size_t>(h / group) * d;
    float s = 0.0f;
    for (int64_t i = 0; i < d; ++i) s += qp[i] * mx[kv + i] + qn[i] * mn[kv + i];
    out[h] = s;
  }
}

}  // namespace

const SimdKernels kKernels = {MatVecRows, ConvertBlock,    Dot,     Axpy, Scale, Max, ExpSubSum, SwiGlu,
                              AttnScores, AttnWeightedSum, nullptr, 1,       nullptr, nullptr, BoxBoundHeads};

}  // namespace leoam::kernels::cpu::scalar
