// KvStoreLink: leoam-compute's connection to leoam-kvstore, kept alive across store restarts.
//
// A background thread watches the session (a cheap session-scoped call every probe interval)
// and, while the store is unreachable, tries to open a new session every retry interval. A new
// session is a new KvStoreClient (new channel, new arena mapping) rather than Reconnect() of the
// old one: KV sequences of requests still running hold the old client (shared_ptr), and the old
// arena mapping must stay valid until they are gone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leoam/kvstore/kvstore_client.h"

namespace leoam::server {

struct KvStoreLinkOptions {
  kvstore::ClientOptions client;  // target, client name, rpc timeout
  std::string fingerprint;        // 16 bytes
  kvstore::KvLayout layout;
  absl::Duration probe_interval = absl::Seconds(1);  // how often a connected session is checked
  absl::Duration retry_interval = absl::Milliseconds(500);  // how often a lost store is retried
};

class KvStoreLink {
 public:
  // Tries to connect once (a store that is down at start is not an error: the link retries).
  explicit KvStoreLink(KvStoreLinkOptions options);
  ~KvStoreLink();
  KvStoreLink(const KvStoreLink&) = delete;
  KvStoreLink& operator=(const KvStoreLink&) = delete;

  // The current client when connected, else null.
  std::shared_ptr<kvstore::KvStoreClient> client() const;
  bool connected() const;
  // Times a new session was opened after the store went away.
  int32_t reconnects() const { return reconnects_.load(); }
  const std::string& target() const { return options_.client.target; }

  // A request using `which` saw `status`: when `which` is still the current client and no longer
  // answers a probe, the link is marked down and the background thread re-attaches.
  void ReportFailure(const kvstore::KvStoreClient* which, const absl::Status& status);

  // The store's tier statistics (UNAVAILABLE when not connected).
  absl::StatusOr<kvstore::StoreStats> Stats() const;

 private:
  void Run();
  bool TryConnect();

  KvStoreLinkOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<kvstore::KvStoreClient> client_;  // null while down
  bool ever_connected_ = false;
  bool stop_ = false;
  std::atomic<int32_t> reconnects_{0};
  std::thread thread_;
};

}  // namespace leoam::server
