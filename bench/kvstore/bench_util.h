// Helpers shared by the kvstore_bench sources.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "leoam/kvstore/kvstore_client.h"

namespace leoam::kvstore::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Exits with a message: a bench has nothing to measure after a failed call.
inline void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "kvstore_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// Chain hash of page `pos` of bench chain `chain`.
inline PageHash H(uint32_t chain, uint32_t pos) {
  PageHash h{};
  std::memcpy(h.data(), &chain, 4);
  std::memcpy(h.data() + 4, &pos, 4);
  h[15] = 0xbe;
  return h;
}

}  // namespace leoam::kvstore::bench
