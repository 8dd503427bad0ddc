// Scheduler: the one thread that runs the model for every request of leoam-compute.
//
// Requests wait in an admission queue until a batch slot (at most max_batch) is free; then their
// KV is allocated and their prompt prefilled in chunks of prefill_chunk tokens. Each loop turn
// runs at most one prefill chunk (of the oldest prefilling request) and then one batched decode
// step of every decoding request (LlamaModel::ForwardDecodeBatch), so a long prompt never stalls
// running decodes for more than one chunk. A tiered prompt whose KV exceeds the device budget runs
// layer-major (LayerMajorPrefill: one chunk of one layer per turn), so that only one layer's KV
// needs the device at a time instead of every earlier chunk being fetched back for each layer. Sampling, stop tokens and strings, max_tokens, time
// limits, cancellation and Abort are checked per request; a finished request's KV is freed at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "compute/server/kvstore_link.h"
#include "compute/server/request_builder.h"
#include "compute/server/request_channel.h"
#include "compute/server/server_options.h"
#include "compute/tokenizer/tokenizer.h"

namespace leoam::server {

struct SchedulerStats {
  int32_t running = 0;  // holding a batch slot
  int32_t queued = 0;   // waiting for one
  int64_t served = 0;
  int64_t tokens_generated = 0;
  int64_t cached_tokens_memory = 0;
  int64_t cached_tokens_disk = 0;
};

class Scheduler {
 public:
  // `link` may be null (no KV store). Model, tokenizer, options and link outlive the scheduler.
  Scheduler(LlamaModel& model, const Tokenizer& tokenizer, const ServerOptions& options, KvStoreLink* link,
            const Hash128& fingerprint);
  ~Scheduler();  // Shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; its messages arrive on `channel`. Returns the request id (assigned when
  // the request has none). ALREADY_EXISTS for the id of a request still running,
  // RESOURCE_EXHAUSTED over max_concurrent, UNAVAILABLE when its KV needs the store and the
  // store is down, or after Shutdown.
  absl::StatusOr<std::string> Submit(PreparedRequest request, std::shared_ptr<RequestChannel> channel);
  // Stops a queued or running request (its stream ends with FINISH_REASON_CANCELLED).
  absl::Status Abort(const std::string& request_id);
  SchedulerStats stats() const;
  // Stops the thread; requests still open end with UNAVAILABLE.
  void Shutdown();

  // KV bytes a request of `positions` positions holds in device memory when all of it is resident.
  int64_t KvBytes(int32_t positions) const;

 private:
  struct Request;
  void Loop();
  absl::Status CheckKvAvailable(const PreparedRequest& p) const;
  absl::Status Admit(Request& r);
  // The request's KV: dense, paged, or tiered through the store with its cached prefix restored.
  absl::Status CreateKv(Request& r);
  void PrefillStep(Request& r);
  void DecodeStep(std::vector<Request*>& batch);
  // Samples from r.logits and applies the stop rules; may finish the request.
  void TakeToken(Request& r);
  void Finish(Request& r, leoam::v1::FinishReason reason, const std::string& error = "");
  void Fail(Request& r, const absl::Status& status);
  // Marks `r` done and frees what it holds (KV, id, running count); Retire also ends its stream.
  void ReleaseRequest(Request& r);
  void Retire(Request& r, absl::Status close_status);

  LlamaModel& model_;
  const Tokenizer& tokenizer_;
  const ServerOptions& options_;
  KvStoreLink* link_;
  Hash128 fingerprint_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<std::shared_ptr<Request>> queue_;                            // guarded by mu_
  absl::flat_hash_map<std::string, std::shared_ptr<Request>> by_id_;      // guarded by mu_
  int64_t next_id_ = 1;                                                   // guarded by mu_
  std::vector<std::shared_ptr<Request>> active_;                          // loop thread only

  std::atomic<int32_t> running_{0};
  std::atomic<int64_t> served_{0}, tokens_generated_{0}, cached_memory_{0}, cached_disk_{0};
  std::thread thread_;
};

}  // namespace leoam::server
