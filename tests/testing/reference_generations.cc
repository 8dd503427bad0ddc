#include "tests/testing/reference_generations.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace leoam::testing {
namespace {

// Position just after `"key": ` in line, or npos.
size_t ValueStart(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  size_t p = line.find(needle);
  if (p == std::string::npos) return p;
  p += needle.size();
  while (p < line.size() && line[p] == ' ') ++p;
  return p;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

absl::StatusOr<std::string> ParseString(const std::string& line, const std::string& key) {
  size_t p = ValueStart(line, key);
  if (p == std::string::npos || line[p] != '"') return absl::InvalidArgumentError("missing string " + key);
  std::string out;
  for (++p; p < line.size() && line[p] != '"'; ++p) {
    if (line[p] != '\\') {
      out += line[p];
      continue;
    }
    char e = line[++p];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'u': {
        uint32_t cp = std::stoul(line.substr(p + 1, 4), nullptr, 16);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && line.compare(p + 1, 2, "\\u") == 0) {
          uint32_t lo = std::stoul(line.substr(p + 3, 4), nullptr, 16);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        AppendUtf8(cp, out);
        break;
      }
      default: out += e;
    }
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ParseIntArray(const std::string& line, const std::string& key) {
  size_t p = ValueStart(line, key);
  if (p == std::string::npos || line[p] != '[') return absl::InvalidArgumentError("missing array " + key);
  size_t end = line.find(']', p);
  std::vector<int32_t> out;
  for (absl::string_view part : absl::StrSplit(line.substr(p + 1, end - p - 1), ',', absl::SkipWhitespace())) {
    int32_t v;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v)) return absl::InvalidArgumentError("bad int in " + key);
    out.push_back(v);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ReferenceGeneration>> ReadReferenceGenerations(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::vector<ReferenceGeneration> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ReferenceGeneration g;
    auto prompt = ParseString(line, "prompt");
    auto prompt_ids = ParseIntArray(line, "prompt_ids");
    auto generated = ParseIntArray(line, "generated_ids");
    if (!prompt.ok()) return prompt.status();
    if (!prompt_ids.ok()) return prompt_ids.status();
    if (!generated.ok()) return generated.status();
    size_t p = ValueStart(line, "positions");
    if (p == std::string::npos) return absl::InvalidArgumentError("missing positions");
    g.positions = std::stoi(line.substr(p));
    g.prompt = *prompt;
    g.prompt_ids = *prompt_ids;
    g.generated_ids = *generated;
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace leoam::testing
