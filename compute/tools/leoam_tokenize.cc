// leoam-tokenize: text <-> token ids with the tokenizer of a GGUF file (tokenizer-only GGUFs
// work too). Reads stdin, writes stdout.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "compute/gguf/gguf_file.h"
#include "compute/tokenizer/tokenizer.h"

namespace {

constexpr char kUsage[] =
    "Usage: leoam-tokenize --model MODEL.gguf [options] < input\n"
    "\n"
    "Encodes the text on stdin with the model's tokenizer and prints the token ids, space\n"
    "separated, on one line. One trailing newline of the input (as `echo` adds) is removed.\n"
    "\n"
    "Options:\n"
    "  --model PATH       GGUF file with tokenizer.ggml.* metadata (required; weights not needed)\n"
    "  --no-bos           do not prepend BOS (by default it is added when the model asks for it)\n"
    "  --parse-special    recognize special-token texts such as <|im_start|> in the input\n"
    "  --keep-newline     keep a trailing newline of the input\n"
    "  --decode           instead: read whitespace-separated ids and print the decoded text\n"
    "  --show-special     with --decode: print the text of control tokens (<s>, ...) too\n"
    "  --help             show this help\n"
    "\n"
    "Exit status: 0 on success, 1 on errors (unreadable model, unknown ids), 2 on bad usage.\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "leoam-tokenize: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  bool no_bos = false, parse_special = false, decode = false, show_special = false, keep_newline = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--model") {
      if (i + 1 >= argc) return UsageError("--model needs a path");
      model = argv[++i];
    } else if (arg.rfind("--model=", 0) == 0) {
      model = arg.substr(8);
    } else if (arg == "--no-bos") {
      no_bos = true;
    } else if (arg == "--parse-special") {
      parse_special = true;
    } else if (arg == "--decode") {
      decode = true;
    } else if (arg == "--show-special") {
      show_special = true;
    } else if (arg == "--keep-newline") {
      keep_newline = true;
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }
  if (model.empty()) return UsageError("--model is required");

  auto file = leoam::gguf::GgufFile::Open(model);
  if (!file.ok()) {
    std::fprintf(stderr, "leoam-tokenize: %s\n", file.status().ToString().c_str());
    return 1;
  }
  auto tokenizer = leoam::Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "leoam-tokenize: %s: %s\n", model.c_str(), tokenizer.status().ToString().c_str());
    return 1;
  }

  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (decode) {
    std::istringstream in(input);
    std::vector<leoam::TokenId> ids;
    std::string word;
    while (in >> word) {
      char* end = nullptr;
      const long id = std::strtol(word.c_str(), &end, 10);
      if (*end != '\0' || id < 0 || id >= (*tokenizer)->vocab_size()) {
        std::fprintf(stderr, "leoam-tokenize: '%s' is not a token id of this vocabulary (size %d)\n", word.c_str(),
                     (*tokenizer)->vocab_size());
        return 1;
      }
      ids.push_back(static_cast<leoam::TokenId>(id));
    }
    const std::string text = (*tokenizer)->Decode(ids, show_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }

  if (!keep_newline && !input.empty() && input.back() == '\n') {
    input.pop_back();
    if (!input.empty() && input.back() == '\r') input.pop_back();
  }
  leoam::EncodeOptions options;
  options.add_bos = !no_bos;
  options.parse_special = parse_special;
  const std::vector<leoam::TokenId> ids = (*tokenizer)->Encode(input, options);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}
