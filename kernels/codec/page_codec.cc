#include "kernels/codec/page_codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "kernels/half.h"

namespace leoam::codec {
namespace {

// The byte layouts are little-endian; F32 pages are the host floats as they are.
static_assert(std::endian::native == std::endian::little, "page codecs assume a little-endian host");

using kernels::FloatToHalf;
using kernels::HalfToFloat;

void StoreU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Levels of a quantized encoding (codes 0..Q).
int QuantLevels(PageEncoding e) { return e == PageEncoding::kInt8 ? 255 : 15; }

// Offset of the params block: right after the codes.
size_t CodeBytes(PageEncoding e, PageShape s) {
  const size_t n = static_cast<size_t>(s.rows) * static_cast<size_t>(s.head_dim);
  return e == PageEncoding::kInt8 ? n : n / 2;
}

// Codes of one value; the caller packs them.
void QuantizeRow(const float* x, int64_t head_dim, int64_t group, int levels, uint8_t* codes,
                 uint8_t* params) {
  for (int64_t g0 = 0; g0 < head_dim; g0 += group) {
    float lo = x[g0], hi = x[g0];
    for (int64_t c = g0 + 1; c < g0 + group; ++c) {
      lo = std::min(lo, x[c]);
      hi = std::max(hi, x[c]);
    }
    const uint16_t min_h = FloatToHalf(lo);
    const float min_f = HalfToFloat(min_h);
    const uint16_t scale_h = FloatToHalf(std::max(0.0f, (hi - min_f) / static_cast<float>(levels)));
    const float scale = HalfToFloat(scale_h);
    const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    for (int64_t c = g0; c < g0 + group; ++c) {
      const float q = std::nearbyint((x[c] - min_f) * inv);
      codes[c] = static_cast<uint8_t>(std::clamp(q, 0.0f, static_cast<float>(levels)));
    }
    uint8_t* p = params + (g0 / group) * 4;
    StoreU16(p, scale_h);
    StoreU16(p + 2, min_h);
  }
}

}  // namespace

std::string_view PageEncodingName(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kFp16: return "fp16";
    case PageEncoding::kInt8: return "int8";
    case PageEncoding::kInt4: return "int4";
    case PageEncoding::kBf16: return "bf16";
    case PageEncoding::kF32: return "f32";
  }
  return "unknown";
}

bool IsValidPageEncoding(uint32_t value) { return value >= 1 && value <= 5; }

int64_t GroupSize(int64_t head_dim) { return std::min<int64_t>(32, head_dim); }

absl::StatusOr<size_t> EncodedPageBytes(PageEncoding encoding, PageShape shape) {
  if (shape.rows <= 0 || shape.head_dim <= 0 || shape.rows > (int64_t{1} << 24) ||
      shape.head_dim > (int64_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("page shape rows=%d head_dim=%d out of range", shape.rows, shape.head_dim));
  }
  const size_t n = static_cast<size_t>(shape.rows) * static_cast<size_t>(shape.head_dim);
  switch (encoding) {
    case PageEncoding::kFp16:
    case PageEncoding::kBf16:
      return n * 2;
    case PageEncoding::kF32:
      return n * 4;
    case PageEncoding::kInt8:
    case PageEncoding::kInt4: {
      const int64_t g = GroupSize(shape.head_dim);
      if (shape.head_dim % g != 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s needs head_dim (%d) to be a multiple of the group size %d", PageEncodingName(encoding),
            shape.head_dim, g));
      }
      if (encoding == PageEncoding::kInt4 && shape.head_dim % 2 != 0) {
        return absl::InvalidArgumentError(absl::StrFormat("int4 needs an even head_dim, got %d", shape.head_dim));
      }
      const size_t params = static_cast<size_t>(shape.rows) * static_cast<size_t>(shape.head_dim / g) * 4;
      return CodeBytes(encoding, shape) + params;
    }
  }
  return absl::InvalidArgumentError(absl::StrFormat("unknown page encoding %d", static_cast<int>(encoding)));
}

absl::Status EncodePage(PageEncoding encoding, PageShape shape, absl::Span<const float> in,
                        absl::Span<uint8_t> out) {
  absl::StatusOr<size_t> bytes = EncodedPageBytes(encoding, shape);
  if (!bytes.ok()) return bytes.status();
  const size_t n = static_cast<size_t>(shape.rows * shape.head_dim);
  if (in.size() != n || out.size() != *bytes) {
    return absl::InvalidArgumentError(absl::StrFormat("EncodePage: got %d values / %d bytes, want %d / %d",
                                                      in.size(), out.size(), n, *bytes));
  }
  switch (encoding) {
    case PageEncoding::kFp16:
      for (size_t i = 0; i < n; ++i) StoreU16(out.data() + 2 * i, FloatToHalf(in[i]));
      return absl::OkStatus();
    case PageEncoding::kBf16:
      for (size_t i = 0; i < n; ++i) StoreU16(out.data() + 2 * i, kernels::FloatToBf16(in[i]));
      return absl::OkStatus();
    case PageEncoding::kF32:  // little-endian host: the bytes are the floats
      std::memcpy(out.data(), in.data(), n * sizeof(float));
      return absl::OkStatus();
    case PageEncoding::kInt8:
    case PageEncoding::kInt4: {
      const int64_t d = shape.head_dim, g = GroupSize(d);
      const int levels = QuantLevels(encoding);
      uint8_t* params = out.data() + CodeBytes(encoding, shape);
      std::vector<uint8_t> row_codes(static_cast<size_t>(d));
      for (int64_t r = 0; r < shape.rows; ++r) {
        QuantizeRow(in.data() + r * d, d, g, levels, row_codes.data(), params + r * (d / g) * 4);
        if (encoding == PageEncoding::kInt8) {
          std::memcpy(out.data() + r * d, row_codes.data(), static_cast<size_t>(d));
        } else {
          uint8_t* dst = out.data() + r * (d / 2);
          for (int64_t j = 0; j < d / 2; ++j) {
            dst[j] = static_cast<uint8_t>(row_codes[2 * j] | (row_codes[2 * j + 1] << 4));
          }
        }
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown page encoding");
}

absl::Status DecodePage(PageEncoding encoding, PageShape shape, absl::Span<const uint8_t> in,
                        absl::Span<float> out) {
  absl::StatusOr<size_t> bytes = EncodedPageBytes(encoding, shape);
  if (!bytes.ok()) return bytes.status();
  const size_t n = static_cast<size_t>(shape.rows * shape.head_dim);
  if (out.size() != n || in.size() != *bytes) {
    return absl::InvalidArgumentError(absl::StrFormat("DecodePage: got %d bytes / %d values, want %d / %d",
                                                      in.size(), out.size(), *bytes, n));
  }
  switch (encoding) {
    case PageEncoding::kFp16:
      for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(LoadU16(in.data() + 2 * i));
      return absl::OkStatus();
    case PageEncoding::kBf16:
      for (size_t i = 0; i < n; ++i) out[i] = kernels::Bf16ToFloat(LoadU16(in.data() + 2 * i));
      return absl::OkStatus();
    case PageEncoding::kF32:
      std::memcpy(out.data(), in.data(), n * sizeof(float));
      return absl::OkStatus();
    case PageEncoding::kInt8:
    case PageEncoding::kInt4: {
      const int64_t d = shape.head_dim, g = GroupSize(d);
      const uint8_t* params = in.data() + CodeBytes(encoding, shape);
      for (int64_t r = 0; r < shape.rows; ++r) {
        const uint8_t* rp = params + r * (d / g) * 4;
        for (int64_t c = 0; c < d; ++c) {
          const uint8_t* p = rp + (c / g) * 4;
          const float scale = HalfToFloat(LoadU16(p));
          const float mn = HalfToFloat(LoadU16(p + 2));
          uint32_t code;
          if (encoding == PageEncoding::kInt8) {
            code = in[r * d + c];
          } else {
            const uint8_t b = in[r * (d / 2) + c / 2];
            code = (c % 2 == 0) ? (b & 0x0f) : (b >> 4);
          }
          out[r * d + c] = mn + static_cast<float>(code) * scale;
        }
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown page encoding");
}

}  // namespace leoam::codec
