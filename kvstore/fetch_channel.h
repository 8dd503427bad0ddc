// FetchChannel: the server end of one fetch channel (kvstore/fetch_channel_format.h): a thread
// that waits on the slot's doorbell, serves each request through the same code as the FetchPages
// and Release RPCs (so the same checks and statuses apply) and writes the completion.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "kvstore/fetch_channel_format.h"
#include "leoam/v1/kvstore.pb.h"

namespace leoam::kvstore {

struct FetchChannelHandlers {
  std::function<absl::Status(const v1::FetchPagesRequest&, v1::FetchPagesResponse*)> fetch;
  std::function<absl::Status(const v1::ReleaseRequest&, v1::ReleaseResponse*)> release;
};

class FetchChannel {
 public:
  // `block` is the channel's arena memory (channel::BlockBytes(max_pages) bytes), which must stay
  // mapped and allocated until the channel is destroyed. Initializes the control block and starts
  // the thread.
  // spin_us: how long the thread spins on the doorbell after a request before it sleeps on the
  // futex (a wakeup costs tens of us on a VM; spinning holds a core).
  FetchChannel(uint8_t* block, uint64_t channel_id, uint32_t max_pages, std::string session_id,
               FetchChannelHandlers handlers, int64_t spin_us);
  // Stop() and joins the thread.
  ~FetchChannel();
  FetchChannel(const FetchChannel&) = delete;
  FetchChannel& operator=(const FetchChannel&) = delete;

  // Marks the channel closed (clients see `closed` and are woken) and asks the thread to end.
  void Stop();

  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  void Serve();

  uint8_t* const block_;
  channel::Control* const control_;
  const uint32_t max_pages_;
  const int64_t spin_us_;
  const std::string session_id_;
  const FetchChannelHandlers handlers_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::thread thread_;
};

}  // namespace leoam::kvstore
