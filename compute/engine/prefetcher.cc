#include "compute/engine/prefetcher.h"

#include <utility>

#include "absl/time/clock.h"

namespace leoam {

PagePrefetcher::PagePrefetcher(kvstore::KvStoreClient& store) : store_(store) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

PagePrefetcher::~PagePrefetcher() {
  Drop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
  if (!to_release_.empty()) (void)store_.Release(to_release_);  // best effort: leases also time out
}

void PagePrefetcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (pending_ && !ready_); });
    if (stop_) return;
    // The batch is ours until ready_: the caller only reads it after ready_ is set.
    std::vector<kvstore::PageRef> refs = batch_.refs;
    std::vector<uint64_t> release;
    release.swap(to_release_);
    lock.unlock();
    const absl::Time start = absl::Now();
    absl::StatusOr<kvstore::FetchResult> fetched = store_.FetchPages(refs, release);
    if (!fetched.ok() && !release.empty()) {
      // A lease the store no longer knows (timed out) fails the whole call: fetch without them.
      (void)store_.Release(release);
      fetched = store_.FetchPages(refs);
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    lock.lock();
    if (fetched.ok()) {
      batch_.fetched = std::move(*fetched);
    } else {
      batch_.status = fetched.status();
    }
    batch_.fetch_seconds = seconds;
    if (abandoned_) {
      Retire(batch_);
      pending_ = false;
      abandoned_ = false;
    } else {
      ready_ = true;
    }
    cv_.notify_all();
  }
}

void PagePrefetcher::Retire(Batch& batch) {
  if (batch.fetched.lease_id != 0) to_release_.push_back(batch.fetched.lease_id);
  batch = Batch{};
}

void PagePrefetcher::ReleaseLater(uint64_t lease_id) {
  if (lease_id == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  to_release_.push_back(lease_id);
}

double PagePrefetcher::Drop() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!pending_) return 0.0;
  const absl::Time start = absl::Now();
  abandoned_ = false;  // the destructor waits for it instead
  cv_.wait(lock, [&] { return ready_; });
  const double waited = absl::ToDoubleSeconds(absl::Now() - start);
  Retire(batch_);
  pending_ = false;
  ready_ = false;
  return waited;
}

bool PagePrefetcher::Start(int32_t layer, std::vector<int32_t> pages, std::vector<kvstore::PageRef> refs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_ && !ready_) {  // still fetching a batch nobody took: let it go, start nothing
      abandoned_ = true;
      return false;
    }
    if (pending_) Retire(batch_);  // fetched but unused
    pending_ = false;
    ready_ = false;
    if (pages.empty()) return true;
    batch_.layer = layer;
    batch_.pages_of = std::move(pages);
    batch_.refs = std::move(refs);
    pending_ = true;
  }
  cv_.notify_all();
  return true;
}

const PagePrefetcher::Batch* PagePrefetcher::Take(int32_t layer, const std::vector<int32_t>& misses, double* waited) {
  *waited = 0.0;
  std::unique_lock<std::mutex> lock(mu_);
  if (!pending_ || abandoned_ || batch_.layer != layer) return nullptr;
  if (!ready_) {
    // Waiting pays only when the batch holds most of what this layer must fetch anyway.
    size_t covered = 0;
    for (size_t i = 0, j = 0; i < misses.size() && j < batch_.pages_of.size();) {
      if (misses[i] == batch_.pages_of[j]) {
        ++covered, ++i, ++j;
      } else if (misses[i] < batch_.pages_of[j]) {
        ++i;
      } else {
        ++j;
      }
    }
    if (2 * covered < misses.size()) {
      abandoned_ = true;
      return nullptr;
    }
  }
  const absl::Time start = absl::Now();
  cv_.wait(lock, [&] { return ready_; });
  *waited = absl::ToDoubleSeconds(absl::Now() - start);
  return &batch_;
}

void PagePrefetcher::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_ || !ready_) return;
  Retire(batch_);
  pending_ = false;
  ready_ = false;
}

}  // namespace leoam
