#include "common/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#define LEOAM_CPU_RELAX() _mm_pause()
#else
#define LEOAM_CPU_RELAX() std::this_thread::yield()
#endif

namespace leoam {
namespace {
// Spin iterations (~tens of microseconds) before a worker sleeps.
constexpr int kSpinIterations = 20000;

uint32_t EpochOf(uint64_t t) { return static_cast<uint32_t>(t >> 32); }
uint32_t SlicesOf(uint64_t t) { return static_cast<uint32_t>((t >> 16) & 0xffff); }
uint32_t NextOf(uint64_t t) { return static_cast<uint32_t>(t & 0xffff); }
}  // namespace

int DefaultThreadCount() {
  if (const char* env = std::getenv("LEOAM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool::ThreadPool(int num_threads) {
  num_threads = std::clamp(num_threads, 1, 0xffff);
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    const uint64_t t = ticket_.load();
    ticket_.store(static_cast<uint64_t>(EpochOf(t) + 1) << 32);  // a job with no slices
  }
  sleep_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunSlices(uint32_t epoch) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  while (EpochOf(t) == epoch && NextOf(t) < SlicesOf(t)) {
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const int slice = static_cast<int>(NextOf(t));
    const int slices = static_cast<int>(SlicesOf(t));
    const int64_t begin = job_n_ * slice / slices;
    const int64_t end = job_n_ * (slice + 1) / slices;
    if (begin < end) (*job_)(begin, end, slice);
    done_.fetch_add(1, std::memory_order_acq_rel);
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;  // the epoch at construction: a worker that starts late still sees later jobs and stop
  while (true) {
    uint32_t epoch = EpochOf(ticket_.load(std::memory_order_acquire));
    for (int spin = 0; epoch == seen && spin < kSpinIterations; ++spin) {
      LEOAM_CPU_RELAX();
      epoch = EpochOf(ticket_.load(std::memory_order_acquire));
    }
    if (epoch == seen) {
      std::unique_lock<std::mutex> lock(sleep_mu_);
      sleepers_.fetch_add(1);
      sleep_cv_.wait(lock, [&] { return EpochOf(ticket_.load()) != seen; });
      sleepers_.fetch_sub(1);
      epoch = EpochOf(ticket_.load(std::memory_order_acquire));
    }
    seen = epoch;
    if (stop_.load()) return;
    RunSlices(epoch);
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                             int64_t min_per_thread) {
  if (n <= 0) return;
  int64_t max_slices = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
  int slices = static_cast<int>(std::min<int64_t>(num_threads(), max_slices));
  if (slices == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t epoch = EpochOf(ticket_.load(std::memory_order_relaxed)) + 1;
  // Publish (seq_cst), then look for sleepers: a worker registers as a sleeper before re-checking
  // the ticket under the lock, so either it sees the new epoch or we see it and notify.
  ticket_.store((static_cast<uint64_t>(epoch) << 32) | (static_cast<uint64_t>(slices) << 16));
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(sleep_mu_); }
    sleep_cv_.notify_all();
  }
  RunSlices(epoch);  // our share, plus every slice no worker has claimed yet
  while (done_.load(std::memory_order_acquire) < slices) LEOAM_CPU_RELAX();
}

}  // namespace leoam
