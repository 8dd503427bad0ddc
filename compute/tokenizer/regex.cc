#include "compute/tokenizer/regex.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "compute/tokenizer/regex_syntax.h"
#include "compute/tokenizer/unicode.h"

namespace leoam::tokenizer_internal {
namespace {

using regex_syntax::CharSet;
using regex_syntax::KeyOf;
using regex_syntax::Node;

// ---------------------------------------------------------------- program

struct Inst {
  enum Op : uint8_t { kSet, kSplit, kJmp, kMatch, kBegin, kEnd, kLook } op;
  bool negate = false;  // kLook
  int arg = 0;          // kSet: set index; kSplit/kJmp: first target; kLook: continuation pc
  int arg2 = 0;         // kSplit: second (lower priority) target
};

void Emit(const Node& n, std::vector<Inst>* prog) {
  auto pc = [&] { return static_cast<int>(prog->size()); };
  switch (n.kind) {
    case Node::kSet: prog->push_back({Inst::kSet, false, n.set, 0}); break;
    case Node::kCat:
      for (const auto& k : n.kids) Emit(*k, prog);
      break;
    case Node::kAlt: {
      std::vector<int> jumps;
      for (size_t i = 0; i < n.kids.size(); ++i) {
        if (i + 1 < n.kids.size()) {
          const int split = pc();
          prog->push_back({Inst::kSplit, false, split + 1, 0});
          Emit(*n.kids[i], prog);
          jumps.push_back(pc());
          prog->push_back({Inst::kJmp, false, 0, 0});
          (*prog)[split].arg2 = pc();
        } else {
          Emit(*n.kids[i], prog);
        }
      }
      for (int j : jumps) (*prog)[j].arg = pc();
      break;
    }
    case Node::kRepeat: {
      const Node& body = *n.kids[0];
      for (int i = 0; i < n.min; ++i) Emit(body, prog);
      auto split_to = [&](int split, int body_pc, int out_pc) {
        (*prog)[split].arg = n.greedy ? body_pc : out_pc;
        (*prog)[split].arg2 = n.greedy ? out_pc : body_pc;
      };
      if (n.max < 0) {
        const int loop = pc();
        prog->push_back({Inst::kSplit, false, 0, 0});
        Emit(body, prog);
        prog->push_back({Inst::kJmp, false, loop, 0});
        split_to(loop, loop + 1, pc());
      } else {
        std::vector<int> splits;
        for (int i = n.min; i < n.max; ++i) {
          splits.push_back(pc());
          prog->push_back({Inst::kSplit, false, 0, 0});
          Emit(body, prog);
        }
        for (int s : splits) split_to(s, s + 1, pc());
      }
      break;
    }
    case Node::kLook: {
      const int look = pc();
      prog->push_back({Inst::kLook, n.negate, 0, 0});
      Emit(*n.kids[0], prog);
      prog->push_back({Inst::kMatch, false, 0, 0});
      (*prog)[look].arg = pc();
      break;
    }
    case Node::kBegin: prog->push_back({Inst::kBegin, false, 0, 0}); break;
    case Node::kEnd: prog->push_back({Inst::kEnd, false, 0, 0}); break;
  }
}

}  // namespace

struct SplitRegex::Program {
  std::string pattern;
  bool collapsed = false;
  std::vector<CharSet> sets;
  std::vector<Inst> insts;

  // Visited (pc, pos) states; a state reached twice in one search already failed.
  struct Memo {
    size_t base = 0, width = 0;
    std::vector<uint64_t> bits;
    bool TestAndSet(int pc, size_t pos) {
      const size_t idx = static_cast<size_t>(pc) * width + (pos - base);
      const uint64_t mask = uint64_t{1} << (idx & 63);
      const bool seen = bits[idx >> 6] & mask;
      bits[idx >> 6] |= mask;
      return seen;
    }
  };
  struct Thread {
    int pc;
    size_t pos;
  };
  struct Scratch {
    std::vector<Thread> stack;
    Memo* memo = nullptr;
    int64_t budget = 0;  // steps left before the memo is switched on (when memo == nullptr)
    bool reject_empty = false;
  };

  // Runs from (pc0, pos0) inside keys[begin, end); true with *out_end at the first kMatch.
  // Returns false with scratch->budget < 0 when it gave up (no memo, too many steps).
  bool Run(const uint32_t* keys, size_t begin, size_t end, int pc0, size_t pos0, bool top, Scratch* s,
           size_t* out_end) const {
    const size_t floor = s->stack.size();
    s->stack.push_back({pc0, pos0});
    Memo* memo = top ? s->memo : nullptr;
    while (s->stack.size() > floor) {
      Thread t = s->stack.back();
      s->stack.pop_back();
      while (true) {
        if (memo != nullptr) {
          if (memo->TestAndSet(t.pc, t.pos)) break;
        } else if (--s->budget < 0) {
          s->stack.resize(floor);
          return false;
        }
        const Inst& in = insts[t.pc];
        bool alive = true;
        switch (in.op) {
          case Inst::kSet:
            if (t.pos < end && sets[in.arg].Contains(keys[t.pos])) {
              ++t.pc, ++t.pos;
            } else {
              alive = false;
            }
            break;
          case Inst::kSplit:
            s->stack.push_back({in.arg2, t.pos});
            t.pc = in.arg;
            break;
          case Inst::kJmp: t.pc = in.arg; break;
          case Inst::kMatch:
            if (top && s->reject_empty && t.pos == pos0) {
              alive = false;  // match_not_null: keep backtracking for a non-empty match
              break;
            }
            *out_end = t.pos;
            s->stack.resize(floor);
            return true;
          case Inst::kBegin:
            if (t.pos == begin) ++t.pc; else alive = false;
            break;
          case Inst::kEnd:
            if (t.pos == end) ++t.pc; else alive = false;
            break;
          case Inst::kLook: {
            size_t ignored;
            const bool found = Run(keys, begin, end, t.pc + 1, t.pos, /*top=*/false, s, &ignored);
            if (!found && memo == nullptr && s->budget < 0) {
              s->stack.resize(floor);
              return false;
            }
            if (found != in.negate) t.pc = in.arg; else alive = false;
            break;
          }
        }
        if (!alive) break;
      }
    }
    return false;
  }

  bool Search(const uint32_t* keys, size_t begin, size_t end, size_t from, bool not_null_at_from,
              size_t* mb, size_t* me) const {
    Scratch s;
    // First try without the memo; fall back to it when the search turns out expensive.
    s.budget = (int64_t{1} << 16) + 64 * static_cast<int64_t>(end - from);
    Memo memo;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (attempt == 1) {
        memo.base = from;
        memo.width = end - from + 1;
        memo.bits.assign((insts.size() * memo.width + 63) / 64, 0);
        s.memo = &memo;
        s.stack.clear();
        s.budget = INT64_MAX;  // with the memo the search is polynomial: no step limit
      }
      bool gave_up = false;
      for (size_t start = from; start <= end; ++start) {
        size_t match_end;
        // regex_iterator after an empty match: at the same place only a non-empty match counts.
        s.reject_empty = not_null_at_from && start == from;
        if (Run(keys, begin, end, 0, start, /*top=*/true, &s, &match_end)) {
          *mb = start;
          *me = match_end;
          return true;
        }
        if (s.memo == nullptr && s.budget < 0) {
          gave_up = true;
          break;
        }
      }
      if (!gave_up) return false;
    }
    return false;
  }
};

SplitRegex::SplitRegex(std::unique_ptr<Program> program) : program_(std::move(program)) {}
SplitRegex::SplitRegex(SplitRegex&&) noexcept = default;
SplitRegex& SplitRegex::operator=(SplitRegex&&) noexcept = default;
SplitRegex::~SplitRegex() = default;

const std::string& SplitRegex::pattern() const { return program_->pattern; }
bool SplitRegex::collapsed() const { return program_->collapsed; }

absl::StatusOr<SplitRegex> SplitRegex::Compile(std::string_view pattern) {
  auto program = std::make_unique<Program>();
  program->pattern = std::string(pattern);
  program->collapsed = regex_syntax::UsesCategories(pattern);
  auto ast = regex_syntax::ParsePattern(pattern, program->collapsed, &program->sets);
  if (!ast.ok()) {
    return absl::Status(ast.status().code(),
                        absl::StrCat(ast.status().message(), " in pattern '", std::string(pattern), "'"));
  }
  Emit(**ast, &program->insts);
  program->insts.push_back({Inst::kMatch, false, 0, 0});
  return SplitRegex(std::move(program));
}

namespace {
std::vector<uint32_t> KeysOf(const std::vector<uint32_t>& cps, bool collapsed) {
  std::vector<uint32_t> keys(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) keys[i] = KeyOf(cps[i], collapsed);
  return keys;
}
}  // namespace

bool SplitRegex::Search(const std::vector<uint32_t>& cps, size_t begin, size_t end, size_t from, size_t* match_begin,
                        size_t* match_end) const {
  const std::vector<uint32_t> keys = KeysOf(cps, program_->collapsed);
  return program_->Search(keys.data(), begin, end, from, false, match_begin, match_end);
}

std::vector<size_t> SplitRegex::Split(const std::vector<uint32_t>& cps, const std::vector<size_t>& lengths) const {
  const std::vector<uint32_t> keys = KeysOf(cps, program_->collapsed);
  std::vector<size_t> out;
  out.reserve(lengths.size());
  size_t begin = 0;
  for (size_t len : lengths) {
    const size_t end = begin + len;
    size_t prev_end = begin;  // end of the last match (start of the pending gap)
    size_t from = begin;
    bool after_empty = false;
    size_t mb, me;
    while (from <= end && program_->Search(keys.data(), begin, end, from, after_empty, &mb, &me)) {
      if (mb > prev_end) out.push_back(mb - prev_end);
      if (me > mb) out.push_back(me - mb);  // empty matches produce empty words: skip them
      prev_end = me;
      after_empty = me == mb;
      from = me;
      if (after_empty && me == end) break;
    }
    if (prev_end < end) out.push_back(end - prev_end);
    begin = end;
  }
  return out;
}

}  // namespace leoam::tokenizer_internal