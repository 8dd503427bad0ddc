// Helpers shared by the tokenizer tests: loading a tokenizer from a GGUF file, and reading
// llama.cpp's vocab test vectors (NAME.gguf.inp / NAME.gguf.out).
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/gguf/gguf_file.h"
#include "compute/tokenizer/tokenizer.h"

namespace leoam::testing {

inline absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

inline bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

struct VocabCase {
  std::string input;
  std::vector<TokenId> expected;
};

// Inputs are separated by "\n__ggml_vocab_test__\n" (the file ends with one); the .out file
// has one line of space-separated ids per input. Mirrors llama.cpp's test-tokenizer-0.
inline bool ReadVocabCases(const std::string& inp_path, const std::string& out_path, std::vector<VocabCase>* cases,
                           std::string* error) {
  std::string raw, out;
  if (!ReadFile(inp_path, &raw) || !ReadFile(out_path, &out)) {
    *error = "cannot read " + inp_path + " or " + out_path;
    return false;
  }
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<TokenId>> outputs;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<TokenId> v;
    for (long id; ids >> id;) v.push_back(static_cast<TokenId>(id));
    outputs.push_back(std::move(v));
  }
  if (inputs.size() != outputs.size()) {
    *error = "input and output files have different numbers of cases (" + std::to_string(inputs.size()) + " vs " +
             std::to_string(outputs.size()) + ")";
    return false;
  }
  for (size_t i = 0; i < inputs.size(); ++i) cases->push_back({inputs[i], outputs[i]});
  return true;
}

}  // namespace leoam::testing
