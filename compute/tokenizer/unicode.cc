#include "compute/tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace leoam::unicode {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kFastTableSize = 0x10000;  // the BMP gets a direct lookup table

CharClass LookupRanges(uint32_t cp) {
  const internal::CategoryRange* begin = internal::kCategoryRanges;
  const internal::CategoryRange* end = begin + internal::kNumCategoryRanges;
  const auto* it = std::upper_bound(begin, end, cp, [](uint32_t value, const internal::CategoryRange& r) {
    return value < r.start;
  });
  return it == begin ? CharClass::kUndefined : (it - 1)->cls;
}

const std::array<CharClass, kFastTableSize>& FastTable() {
  static const auto* table = [] {
    auto* t = new std::array<CharClass, kFastTableSize>();
    for (uint32_t cp = 0; cp < kFastTableSize; ++cp) (*t)[cp] = LookupRanges(cp);
    return t;
  }();
  return *table;
}

struct ByteAlphabet {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 512> cp_to_byte;  // all alphabet code points are below 0x144
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* alphabet = [] {
    auto* a = new ByteAlphabet();
    a->cp_to_byte.fill(-1);
    // Printable Latin-1 bytes map to themselves; the rest are shifted to U+0100 and up, in
    // byte order (GPT-2's bytes_to_unicode).
    std::array<uint32_t, 256> cp_of{};
    std::array<bool, 256> kept{};
    for (int b = 0x21; b <= 0x7E; ++b) kept[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) kept[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) kept[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) cp_of[b] = kept[b] ? b : next++;
    for (int b = 0; b < 256; ++b) {
      AppendUtf8(cp_of[b], &a->byte_to_utf8[b]);
      a->cp_to_byte[cp_of[b]] = static_cast<int16_t>(b);
    }
    return a;
  }();
  return *alphabet;
}

}  // namespace

CharClass ClassOf(uint32_t cp) {
  if (cp < kFastTableSize) return FastTable()[cp];
  if (cp > kMaxCodePoint) return CharClass::kUndefined;
  return LookupRanges(cp);
}

bool IsWhitespace(uint32_t cp) {
  // The White_Space property (stable since Unicode 6.3).
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

const char* DataVersion() { return internal::kUnicodeVersion; }

std::vector<uint32_t> DecodeUtf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      i += 1;
    } else if ((b & 0xE0) == 0xC0 && cont(1)) {
      out.push_back(((b & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((b & 0xF0) == 0xE0 && cont(1) && cont(2)) {
      out.push_back(((b & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      i += 3;
    } else if ((b & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
      out.push_back(((b & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) |
                    (s[i + 3] & 0x3F));
      i += 4;
    } else {
      out.push_back(0xFFFD);  // as llama.cpp: skip one byte, emit a replacement character
      i += 1;
    }
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp <= 0x7F) {
    out->push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= kMaxCodePoint) {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    AppendUtf8(0xFFFD, out);
  }
}

std::string EncodeUtf8(const uint32_t* cps, size_t n) {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) AppendUtf8(cps[i], &out);
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[0..n), 0 if malformed, or -needed if it is a
// valid but truncated prefix. Follows RFC 3629 (no overlongs, no surrogates, <= U+10FFFF).
int WellFormedLength(const uint8_t* s, size_t n) {
  const uint8_t b = s[0];
  if (b < 0x80) return 1;
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (static_cast<size_t>(k) >= n) return -len;
    const uint8_t c = s[k];
    if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

size_t IncompleteUtf8Suffix(std::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  // A truncated sequence starts at most 3 bytes from the end.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t start = n - back;
    if ((s[start] & 0xC0) == 0x80) continue;  // continuation byte: look further back
    return WellFormedLength(s + start, back) < 0 ? back : 0;
  }
  return 0;
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    const int len = WellFormedLength(s + i, bytes.size() - i);
    if (len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      i += 1;
    }
  }
  return out;
}

const std::string& ByteToUnicodeUtf8(uint8_t byte) { return Alphabet().byte_to_utf8[byte]; }

int UnicodeToByte(uint32_t cp) { return cp < 512 ? Alphabet().cp_to_byte[cp] : -1; }

}  // namespace leoam::unicode
