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
  num_threads = std::max(1, num_threads);
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    epoch_.fetch_add(1);
  }
  sleep_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunSlice(int slice) {
  int64_t begin = job_n_ * slice / job_slices_;
  int64_t end = job_n_ * (slice + 1) / job_slices_;
  if (begin < end) (*job_)(begin, end, slice);
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t epoch = epoch_.load(std::memory_order_acquire);
    for (int spin = 0; epoch == seen && spin < kSpinIterations; ++spin) {
      LEOAM_CPU_RELAX();
      epoch = epoch_.load(std::memory_order_acquire);
    }
    if (epoch == seen) {
      std::unique_lock<std::mutex> lock(sleep_mu_);
      sleepers_.fetch_add(1);
      sleep_cv_.wait(lock, [&] { return epoch_.load() != seen; });
      sleepers_.fetch_sub(1);
      epoch = epoch_.load(std::memory_order_acquire);
    }
    seen = epoch;
    if (stop_.load()) return;
    if (index < job_slices_) RunSlice(index);
    // Every worker acknowledges every job, so none can still be reading this job's fields when
    // the next one is published.
    pending_.fetch_sub(1, std::memory_order_acq_rel);
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
  job_slices_ = slices;
  // Workers with index >= slices wake up, see no slice, acknowledge and go back to waiting.
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  // Publish first, then look for sleepers (both seq_cst): a worker registers as a sleeper before
  // re-checking the epoch under the lock, so either it sees the new epoch or we see it and notify.
  epoch_.fetch_add(1);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(sleep_mu_); }
    sleep_cv_.notify_all();
  }
  RunSlice(0);
  while (pending_.load(std::memory_order_acquire) > 0) LEOAM_CPU_RELAX();
}

}  // namespace leoam
