// IoExecutor: a few threads that run disk reads, so a fetch of many pages keeps several reads in
// flight (an NVMe drive needs queue depth to reach its bandwidth) and Prefetch runs in the
// background. Blocking I/O wants more threads than cores; the default is 4.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace leoam::kvstore {

class IoExecutor {
 public:
  explicit IoExecutor(int num_threads);
  IoExecutor(const IoExecutor&) = delete;
  IoExecutor& operator=(const IoExecutor&) = delete;
  // Stops the threads; tasks not started are dropped (callers must not wait on them past this).
  ~IoExecutor();

  // Queues a task. Urgent tasks (a client is waiting) run before background ones.
  void Submit(std::function<void()> task, bool urgent);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> urgent_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> background_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace leoam::kvstore
