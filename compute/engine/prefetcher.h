// PagePrefetcher: the fetch half of LeoAM's pipeline (DTP) — while layer l computes, a worker
// thread asks the kvstore for the pages layer l+1 is predicted to select (FetchPages: the store
// loads disk-tier pages into its arena and pins them under a lease), so that when layer l+1
// selects, its misses that were predicted only need the copy out of the arena (the host-to-device
// transfer on a GPU), not a round trip and a disk read.
//
// One batch is in flight at a time, and the compute thread never waits for one it does not need:
// Start() skips a new batch while the worker is still on an unused one (which is then abandoned:
// the worker releases it when done); Take() waits for the batch of a layer only when it covers at
// least half of that layer's misses (otherwise the misses are fetched directly), and its pages
// stay valid until Finish(). Leases of finished batches (and any the caller hands over with
// ReleaseLater) are ended in the worker's next FetchPages round trip, off the compute thread; the
// destructor ends what is left. The worker touches only the store client (thread-safe) and its
// own batch; everything else stays on the caller's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "leoam/kvstore/kvstore_client.h"

namespace leoam {

class PagePrefetcher {
 public:
  explicit PagePrefetcher(kvstore::KvStoreClient& store);
  ~PagePrefetcher();  // waits for the worker, releases any lease
  PagePrefetcher(const PagePrefetcher&) = delete;
  PagePrefetcher& operator=(const PagePrefetcher&) = delete;

  // A fetched batch: pages[i] answers refs[i] (page index pages_of[i] of `layer`).
  struct Batch {
    int32_t layer = -1;
    std::vector<int32_t> pages_of;
    std::vector<kvstore::PageRef> refs;
    kvstore::FetchResult fetched;
    absl::Status status;
    double fetch_seconds = 0.0;  // the worker's time in FetchPages
  };

  // Starts fetching `pages` (page indices of `layer`, increasing; keys in `refs`). A finished
  // batch nobody took is released; while the worker is still busy, nothing starts (returns false).
  bool Start(int32_t layer, std::vector<int32_t> pages, std::vector<kvstore::PageRef> refs);
  // The batch of `layer`, if one was started and it holds at least half of `misses` (page
  // indices, increasing): waits until it is fetched (*waited: seconds) and returns it; otherwise
  // null. It stays valid until Finish().
  const Batch* Take(int32_t layer, const std::vector<int32_t>& misses, double* waited);
  // Done with the taken batch: its lease is released with the next fetch.
  void Finish();
  // Ends `lease_id` with the worker's next fetch (or at destruction).
  void ReleaseLater(uint64_t lease_id);

 private:
  void WorkerLoop();
  // Waits for the in-flight batch and releases it unused. Returns seconds waited.
  double Drop();
  // Queues the batch's lease for release and clears it (mu_ held).
  void Retire(Batch& batch);

  kvstore::KvStoreClient& store_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool pending_ = false;  // a batch is queued or being fetched
  bool ready_ = false;    // the batch is fetched
  bool abandoned_ = false;  // nobody will take the batch being fetched: the worker releases it
  Batch batch_;
  std::vector<uint64_t> to_release_;  // leases to end with the next FetchPages
  std::thread worker_;
};

}  // namespace leoam
