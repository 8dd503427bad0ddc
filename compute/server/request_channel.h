// RequestChannel: hands one request's stream messages from the scheduler thread to the gRPC
// handler thread that writes them, and the handler's cancellation back to the scheduler.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "leoam/v1/generation.pb.h"

namespace leoam::server {

class RequestChannel {
 public:
  // Scheduler side.
  void Push(leoam::v1::GenerateResponse message) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(message));
    }
    cv_.notify_all();
  }
  // The last call for the request: OK after a FinalResult message, or the call's error status.
  void Close(absl::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      status_ = std::move(status);
    }
    cv_.notify_all();
  }
  bool cancel_requested() const { return cancel_.load(std::memory_order_relaxed); }

  // Handler side: asks the scheduler to stop the request (client cancelled, deadline, Abort).
  void RequestCancel() { cancel_.store(true, std::memory_order_relaxed); }
  // Waits up to `timeout` for messages and moves them out. *closed is set once the channel is
  // closed and every message was taken; *status is then the call's status.
  std::vector<leoam::v1::GenerateResponse> Take(absl::Duration timeout, bool* closed, absl::Status* status) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [this] { return !messages_.empty() || closed_; });
    std::vector<leoam::v1::GenerateResponse> out(std::make_move_iterator(messages_.begin()),
                                                 std::make_move_iterator(messages_.end()));
    messages_.clear();
    *closed = closed_;
    if (closed_) *status = status_;
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<leoam::v1::GenerateResponse> messages_;
  bool closed_ = false;
  absl::Status status_;
  std::atomic<bool> cancel_{false};
};

}  // namespace leoam::server
