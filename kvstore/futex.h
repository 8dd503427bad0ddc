// Futex wait/wake on a 32-bit word in memory shared between processes (the arena), for the fetch
// channel's doorbells (fetch_channel_format.h). Not FUTEX_PRIVATE: the waiter and the waker are
// different processes.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace leoam::kvstore {

inline std::atomic_ref<uint32_t> SharedWord(uint32_t& word) { return std::atomic_ref<uint32_t>(word); }

// Sleeps while *word == expected, at most timeout_us (spurious and early returns happen: callers
// re-check their condition).
inline void FutexWait(uint32_t* word, uint32_t expected, int64_t timeout_us) {
  timespec ts{static_cast<time_t>(timeout_us / 1000000), static_cast<long>((timeout_us % 1000000) * 1000)};
  ::syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

inline void FutexWakeAll(uint32_t* word) { ::syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0); }

// Publishes `value` in `word` and wakes its sleeper if `sleeping` says there is one. The waiter
// sets `sleeping` before its last check of `word` (both seq_cst), so no wakeup is lost.
inline void PublishAndWake(uint32_t& word, uint32_t value, uint32_t& sleeping) {
  SharedWord(word).store(value, std::memory_order_seq_cst);
  if (SharedWord(sleeping).load(std::memory_order_seq_cst) != 0) FutexWakeAll(&word);
}

// Waits until `word` != `seen` or `done()`: spins spin_us, then sleeps on the futex in slices of
// at most slice_us until deadline_us (CLOCK_MONOTONIC microseconds; 0: no deadline). Returns the
// word's value (== seen when it gave up).
template <typename Done>
uint32_t WaitForChange(uint32_t& word, uint32_t seen, uint32_t& sleeping, int64_t spin_us, int64_t slice_us,
                       int64_t deadline_us, Done done) {
  auto now_us = [] {
    timespec t;
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return int64_t{t.tv_sec} * 1000000 + t.tv_nsec / 1000;
  };
  const int64_t spin_end = now_us() + spin_us;
  uint32_t v;
  int iter = 0;
  while ((v = SharedWord(word).load(std::memory_order_acquire)) == seen) {
    if (done()) return v;
    if ((++iter & 63) == 0 && now_us() >= spin_end) break;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  while (v == seen) {
    int64_t wait = slice_us;
    if (deadline_us != 0) {
      const int64_t left = deadline_us - now_us();
      if (left <= 0) return v;
      wait = wait < left ? wait : left;
    }
    SharedWord(sleeping).store(1, std::memory_order_seq_cst);
    v = SharedWord(word).load(std::memory_order_seq_cst);
    if (v == seen && !done()) FutexWait(&word, seen, wait);
    SharedWord(sleeping).store(0, std::memory_order_relaxed);
    v = SharedWord(word).load(std::memory_order_acquire);
    if (v == seen && done()) return v;
  }
  return v;
}

inline int64_t MonotonicMicros() {
  timespec t;
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t{t.tv_sec} * 1000000 + t.tv_nsec / 1000;
}

}  // namespace leoam::kvstore
