// ThreadPool: a fixed set of worker threads for data-parallel loops with low dispatch latency.
//
// Decode-time ops are small (a matvec of a few hundred KB takes microseconds), so waking workers
// through a condition variable for each would cost more than the work. Workers spin briefly on an
// epoch counter after each job and only then sleep, so back-to-back ParallelFor calls dispatch in
// well under a microsecond. The calling thread takes part in every loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace leoam {

class ThreadPool {
 public:
  // `num_threads` counts the caller: 1 means no workers (everything runs inline).
  explicit ThreadPool(int num_threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end, thread_index) over contiguous slices covering [0, n) and returns when all
  // are done. Slices hold at least `min_per_thread` items (fewer threads are used for small n).
  // Not reentrant: fn must not call ParallelFor on the same pool.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t min_per_thread = 1);

 private:
  void WorkerLoop();
  // Claims and runs slices of the job published under `epoch` until none are left; returns
  // false when that job is no longer current.
  void RunSlices(uint32_t epoch);

  std::vector<std::thread> workers_;
  // The current job. Its fields are written before ticket_ publishes it and stay unchanged
  // until all its slices are done.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  // ticket_ = epoch (32 bits) | slices (16) | next unclaimed slice (16). Threads claim a slice by
  // CAS, so a claim can only succeed for the job it read; the caller runs whatever slices the
  // workers have not claimed yet, and waits only for claimed slices to finish, never for a worker
  // that has not woken up (on a loaded machine that can take a scheduler slice).
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::atomic<int> sleepers_{0};
};

// Default thread count: LEOAM_THREADS if set, else the number of online CPUs.
int DefaultThreadCount();

}  // namespace leoam
