// Unicode helpers for the tokenizers: UTF-8 <-> code points, the major general-category class
// of a code point, White_Space, and GPT-2's byte <-> printable-character alphabet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace leoam::unicode {

// Major general-category class (the first letter of the category, with Cn split from the
// other C* categories), as llama.cpp's code point flags see it.
enum class CharClass : uint8_t {
  kUndefined,    // Cn: unassigned
  kControl,      // Cc Cf Co Cs
  kLetter,       // L*
  kMark,         // M*
  kNumber,       // N*
  kPunctuation,  // P*
  kSymbol,       // S*
  kSeparator,    // Z*
};

CharClass ClassOf(uint32_t cp);
// The Unicode White_Space property (what llama.cpp's \s matches).
bool IsWhitespace(uint32_t cp);
inline bool IsLetter(uint32_t cp) { return ClassOf(cp) == CharClass::kLetter; }
inline bool IsNumber(uint32_t cp) { return ClassOf(cp) == CharClass::kNumber; }

// Unicode version of the category data (see unicode_data.cc).
const char* DataVersion();

// Length of the UTF-8 sequence that starts with `lead`, from its high bits alone (1 for a
// stray continuation byte), as llama.cpp's unicode_len_utf8 does.
inline size_t Utf8SequenceLength(char lead) {
  static constexpr uint8_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[static_cast<uint8_t>(lead) >> 4];
}

// Decodes UTF-8; each byte of an invalid or truncated sequence becomes U+FFFD.
std::vector<uint32_t> DecodeUtf8(std::string_view text);
void AppendUtf8(uint32_t cp, std::string* out);
std::string EncodeUtf8(const uint32_t* cps, size_t n);

// Number of bytes at the end of `bytes` that form an incomplete (but so far valid) UTF-8
// sequence, i.e. what a streaming decoder must hold back. 0 when `bytes` ends on a boundary or
// with bytes that can never complete.
size_t IncompleteUtf8Suffix(std::string_view bytes);
// Replaces every byte that is not part of a well-formed UTF-8 sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// GPT-2 byte-level alphabet: each byte maps to one printable code point.
const std::string& ByteToUnicodeUtf8(uint8_t byte);
// Inverse of ByteToUnicodeUtf8 on code points; -1 when `cp` is not in the alphabet.
int UnicodeToByte(uint32_t cp);

namespace internal {
struct CategoryRange {
  uint32_t start;
  CharClass cls;
};
extern const CategoryRange kCategoryRanges[];
extern const size_t kNumCategoryRanges;
extern const char kUnicodeVersion[];
}  // namespace internal

}  // namespace leoam::unicode
