#include "kvstore/io_executor.h"

#include <utility>

namespace leoam::kvstore {

IoExecutor::IoExecutor(int num_threads) {
  for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { Loop(); });
}

IoExecutor::~IoExecutor() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void IoExecutor::Submit(std::function<void()> task, bool urgent) {
  absl::MutexLock l(&mu_);
  (urgent ? urgent_ : background_).push_back(std::move(task));
}

void IoExecutor::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !urgent_.empty() || !background_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      auto& q = urgent_.empty() ? background_ : urgent_;
      task = std::move(q.front());
      q.pop_front();
    }
    task();
  }
}

}  // namespace leoam::kvstore
