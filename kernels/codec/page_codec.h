// Page codecs: how a KV page is laid out in bytes for each encoding (CPU reference).
//
// A page is viewed as `rows` vectors of `head_dim` channels. For a KV page of the LeoAM layout,
// rows = 2 * page_size * num_kv_heads (K then V; the order of rows is the caller's business: the
// codec treats each row independently). Quantized encodings work on groups of G consecutive
// channels of one row, G = GroupSize(head_dim) = min(32, head_dim), and head_dim % G == 0.
//
// Byte layouts (all little-endian, no padding, no header):
//   FP16: values  [rows][head_dim] fp16                       -> rows*head_dim*2 bytes
//   BF16: values  [rows][head_dim] bf16                       -> rows*head_dim*2 bytes
//   F32:  values  [rows][head_dim] IEEE binary32 (exact)      -> rows*head_dim*4 bytes
//   INT8: codes   [rows][head_dim] uint8                      -> rows*head_dim bytes
//         params  [rows][head_dim/G] {fp16 scale, fp16 min}   -> rows*(head_dim/G)*4 bytes
//   INT4: codes   [rows][head_dim/2] uint8, channel 2j in the low nibble, 2j+1 in the high nibble
//                                                             -> rows*head_dim/2 bytes (head_dim even)
//         params  [rows][head_dim/G] {fp16 scale, fp16 min}   -> rows*(head_dim/G)*4 bytes
// Quantization is asymmetric min/max per group: with the group's min m and max M (after rounding m
// to fp16), scale = (M - m) / Q (Q = 255 for int8, 15 for int4, then rounded to fp16), code =
// clamp(round((x - m) / scale), 0, Q), and decode x' = m + code * scale. A group whose values are
// all equal gets scale 0 and decodes exactly. Error bound per value: |x - x'| <= scale/2 plus the
// fp16 rounding of m and scale (tests check <= 0.5*scale + 2^-10 * (|m| + Q*scale) ).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace leoam::codec {

// Values match leoam.v1.PageEncoding.
// Any encoding may be used with any KvDtype (the engine picks one per page): a page's size
// follows from its own encoding and the page shape, never from the layout's dtype.
enum class PageEncoding : uint8_t { kFp16 = 1, kInt8 = 2, kInt4 = 3, kBf16 = 4, kF32 = 5 };

// The encoding with the most bytes per page (every shape valid for any encoding is valid for it).
inline constexpr PageEncoding kLargestPageEncoding = PageEncoding::kF32;

std::string_view PageEncodingName(PageEncoding encoding);
// True for the values above.
bool IsValidPageEncoding(uint32_t value);

struct PageShape {
  int64_t rows = 0;      // vectors in the page, > 0
  int64_t head_dim = 0;  // channels per vector, > 0
};

// Channels per quantization group for a head_dim: min(32, head_dim).
int64_t GroupSize(int64_t head_dim);

// Bytes of one encoded page; INVALID_ARGUMENT when the shape does not suit the encoding
// (non-positive sizes, head_dim not a multiple of the group, odd head_dim for int4).
absl::StatusOr<size_t> EncodedPageBytes(PageEncoding encoding, PageShape shape);

// Encodes rows*head_dim floats ([rows][head_dim]) into `out` (exactly EncodedPageBytes bytes).
absl::Status EncodePage(PageEncoding encoding, PageShape shape, absl::Span<const float> in,
                        absl::Span<uint8_t> out);

// Decodes an encoded page into rows*head_dim floats.
absl::Status DecodePage(PageEncoding encoding, PageShape shape, absl::Span<const uint8_t> in,
                        absl::Span<float> out);

}  // namespace leoam::codec
