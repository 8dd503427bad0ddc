#include "compute/server/kvstore_link.h"

#include <chrono>

#include "common/log.h"

namespace leoam::server {

KvStoreLink::KvStoreLink(KvStoreLinkOptions options) : options_(std::move(options)) {
  TryConnect();
  thread_ = std::thread([this] { Run(); });
}

KvStoreLink::~KvStoreLink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<kvstore::KvStoreClient> KvStoreLink::client() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_;
}

bool KvStoreLink::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_ != nullptr;
}

void KvStoreLink::ReportFailure(const kvstore::KvStoreClient* which, const absl::Status& status) {
  std::shared_ptr<kvstore::KvStoreClient> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (client_ == nullptr || client_.get() != which) return;
    current = client_;
  }
  // A request can fail for reasons of its own (a device budget too small for its prompt, a bad
  // page): only a store that no longer answers its session marks the link down.
  if (current->LookupPrefix({}).ok()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (client_.get() != which) return;
    client_.reset();
  }
  LEOAM_LOG(WARNING, "kvstore %s: %s; serving from device memory only until it is back", options_.client.target,
            status.ToString());
  cv_.notify_all();
}

absl::StatusOr<kvstore::StoreStats> KvStoreLink::Stats() const {
  std::shared_ptr<kvstore::KvStoreClient> c = client();
  if (c == nullptr) return absl::UnavailableError("the KV store is not connected");
  return c->Stats();
}

bool KvStoreLink::TryConnect() {
  absl::StatusOr<std::unique_ptr<kvstore::KvStoreClient>> c =
      kvstore::KvStoreClient::Connect(options_.client, options_.fingerprint, options_.layout);
  if (!c.ok()) return false;
  std::shared_ptr<kvstore::KvStoreClient> fresh(std::move(*c));
  bool again = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    client_ = fresh;
    again = ever_connected_;
    ever_connected_ = true;
  }
  if (again) reconnects_.fetch_add(1);
  LEOAM_LOG(INFO, "kvstore %s: %s session %s (arena %s)", options_.client.target, again ? "re-attached," : "attached,",
            fresh->hello().session_id, fresh->hello().arena_path);
  return true;
}

void KvStoreLink::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const bool up = client_ != nullptr;
    const absl::Duration wait = up ? options_.probe_interval : options_.retry_interval;
    cv_.wait_for(lock, absl::ToChronoMilliseconds(wait));
    if (stop_) break;
    std::shared_ptr<kvstore::KvStoreClient> c = client_;
    lock.unlock();
    if (c != nullptr) {
      // A session-scoped call: after a store restart the old session is unknown (NOT_FOUND).
      absl::StatusOr<kvstore::PrefixInfo> probe = c->LookupPrefix({});
      if (!probe.ok()) ReportFailure(c.get(), probe.status());
    } else {
      TryConnect();
    }
    lock.lock();
  }
}

}  // namespace leoam::server
