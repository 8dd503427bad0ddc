#include "compute/tokenizer/pretokenizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace leoam::tokenizer_internal {
namespace {

// The patterns below are the ones llama.cpp (src/llama-vocab.cpp) uses for each pre-type;
// they must stay byte-identical to keep token ids identical. Non-ASCII characters are written
// as \u escapes so that no editor normalization can change them.

// GPT-2's pattern. llama.cpp's hand-written matcher for it also has a trailing "\s+"
// alternative; leaving it out changes nothing, since an unmatched whitespace character
// becomes its own word anyway.
constexpr char kGpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr char kLlama3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kQwen2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kQwen35[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "
    "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kCjkDeepseek[] = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";
constexpr char kDeepseekLlmLetters[] =
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-"
    "\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481"
    "\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B"
    "\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B"
    "\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB"
    "\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128"
    "\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4"
    "\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF"
    "\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3"
    "\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF"
    "\U0001E900-\U0001E943]+";
constexpr char kDeepseekLlmPunct[] = "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+";
constexpr char kCjkKana[] = "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
constexpr char kDeepseekV3Words[] =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
constexpr char kPoro[] = " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+";
// Tekken and GPT-4o: llama.cpp spells \p{Lu}-style classes as lookaheads over [^a-z]/[^A-Z].
constexpr char kTekken[] =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])("
    "[^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kGpt4o[] =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'["
    "mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|"
    "'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!"
    "\\S)|\\s+";
constexpr char kBailing[] =
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
constexpr char kSeedCoder[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| "
    "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kExaoneMoe[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: "
    "\\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
constexpr char kMinicpm5[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

constexpr char kSpark25Words[] =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+";
constexpr char kYoutuCjk[] =
    "[\uAC00-\uD7A3\u3131-\u318E]+|[\uFF01\u2026\u201C\u201D\u2018\u2019\u2014\uFF1A\uFF1B\uFF0C\u3001-\u303F"
    "\uFE30-\uFE4F]+|[\u3105-\u312F]+|[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
constexpr char kYoutuWords[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'["
    "rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
    "\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r"
    "\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kUfakzeka[] =
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kJais2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!"
    "\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";
constexpr char kGraniteEmbMulti[] =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'["
    "vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z])"
    ")*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*["
    "\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Entry {
  std::vector<std::string> names;
  PreTokenizerSpec spec;
};

PreTokenizerSpec Spec(std::vector<std::string> regexes, bool clean_spaces = true) {
  PreTokenizerSpec s;
  s.regexes = std::move(regexes);
  s.clean_spaces = clean_spaces;
  return s;
}

const std::vector<Entry>& Table() {
  static const auto* table = [] {
    auto* t = new std::vector<Entry>();
    auto add = [&](std::vector<std::string> names, PreTokenizerSpec spec) {
      spec.name = names[0];
      t->push_back({std::move(names), std::move(spec)});
    };
    add({"default"}, Spec({"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}));
    {
      PreTokenizerSpec s = Spec({kLlama3});
      s.ignore_merges = true;
      s.add_bos = true;
      add({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
           "jina-v5-nano"},
          s);
    }
    add({"dbrx"}, Spec({kLlama3}));
    add({"smaug-bpe"}, Spec({kLlama3}));
    add({"deepseek-llm"}, Spec({"[\r\n]", kDeepseekLlmLetters, kDeepseekLlmPunct, "\\s+$", kCjkDeepseek, "\\p{N}+"},
                               false));
    add({"deepseek-coder"}, Spec({"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjkDeepseek, "\\p{N}"}, false));
    add({"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
        Spec({"\\p{N}{1,3}", kCjkKana, kDeepseekV3Words}, false));
    add({"falcon"}, Spec({"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}));
    for (const char* name : {"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"}) {
      add({name}, Spec({"\\p{N}", kGpt2}));
    }
    for (const char* name : {"command-r", "smollm"}) add({name}, Spec({"\\p{N}", kGpt2}, false));
    add({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
         "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
        Spec({kGpt2}));
    for (const char* name : {"trillion", "granite-docling"}) add({name}, Spec({kGpt2}, false));
    add({"stablelm2"}, Spec({kQwen2}));
    add({"megrez"}, Spec({kQwen2}));
    add({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"}, Spec({kQwen2}, false));
    add({"qwen35"}, Spec({kQwen35}, false));
    add({"poro-chat"}, Spec({kPoro}, false));
    add({"bloom", "gpt3-finnish"}, Spec({kPoro}));
    {
      PreTokenizerSpec s = Spec({kLlama3});
      s.clear_bos = true;
      add({"chatglm-bpe", "glm4"}, s);
    }
    add({"viking"}, Spec({kPoro, "\\p{N}"}, false));
    {
      PreTokenizerSpec s = Spec({kTekken}, false);
      s.ignore_merges = true;
      s.add_bos = true;
      add({"tekken"}, s);
    }
    {
      PreTokenizerSpec s = Spec({"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
                                 "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", kGpt2},
                                false);
      s.add_bos = true;
      add({"chameleon"}, s);
    }
    add({"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, Spec({kGpt4o}, false));
    add({"jais-2"}, Spec({kJais2}));
    add({"laguna"}, Spec({"[^\\n]+|[\\n]+", kQwen2}, false));
    add({"spark2_5"}, Spec({"\\p{N}{1,3}", kCjkKana, kSpark25Words, "\\p{N}"}, false));
    {
      PreTokenizerSpec s = Spec({kYoutuCjk, kYoutuWords}, false);
      s.ignore_merges = true;
      add({"youtu"}, s);
    }
    add({"ufakzeka"}, Spec({kUfakzeka}, false));
    {
      PreTokenizerSpec s = Spec({kGraniteEmbMulti}, false);
      s.ignore_merges = true;
      add({"granite-embed-multi-97m"}, s);
    }
    add({"superbpe"}, Spec({"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}, false));
    add({"bailingmoe", "bailingmoe2", "llada-moe"}, Spec({kBailing}, false));
    add({"seed-coder"}, Spec({kSeedCoder}, false));
    add({"exaone-moe"}, Spec({kExaoneMoe}));
    {
      PreTokenizerSpec s = Spec({"\\p{N}{1,3}", kMinicpm5});
      s.ignore_merges = true;
      add({"minicpm5"}, s);
    }
    return t;
  }();
  return *table;
}

}  // namespace

absl::StatusOr<PreTokenizerSpec> PreTokenizerFor(std::string_view pre) {
  if (pre.empty()) pre = "default";
  for (const Entry& e : Table()) {
    if (std::find(e.names.begin(), e.names.end(), pre) != e.names.end()) return e.spec;
  }
  return absl::UnimplementedError(absl::StrCat("tokenizer.ggml.pre '", std::string(pre), "' is not supported"));
}

std::vector<std::string> SupportedPreTokenizers() {
  std::vector<std::string> names;
  for (const Entry& e : Table()) names.insert(names.end(), e.names.begin(), e.names.end());
  return names;
}

}  // namespace leoam::tokenizer_internal
