// Test helpers: run the real leoam-kvstore binary on a unix socket in a temp dir, and make
// deterministic page contents to check what comes back.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "leoam/kvstore/kvstore_client.h"
#include "tests/testing/child_process.h"

namespace leoam::kvstore::testing {

struct ProcessOptions {
  std::string dir;                       // temp dir: data/, kvstore.sock, kvstore.log live here
  std::vector<std::string> extra_flags;  // e.g. "--disk_limit=4MiB"
};

class KvStoreProcess {
 public:
  // Starts leoam-kvstore and waits until it answers RPCs.
  static absl::StatusOr<std::unique_ptr<KvStoreProcess>> Start(const ProcessOptions& options);
  ~KvStoreProcess();  // stops (SIGTERM) the process if it still runs

  std::string target() const { return "unix://" + socket_; }
  pid_t pid() const { return child_.pid(); }
  // True while the process has not exited.
  bool Alive();
  // SIGKILL and reap.
  void Kill9();
  // SIGTERM and wait; returns the exit status (0 on a clean stop).
  int Stop();
  // The server's log so far (for failure messages).
  std::string Log() const;

 private:
  leoam::testing::ChildProcess child_;
  std::string socket_;
  std::string log_;
};

// A small layout for tests: 2 layers, 16 tokens, 2 KV heads, head_dim 32 -> 4096-byte fp16 pages.
KvLayout TestLayout();
// Hash of node `pos` of chain `chain` (any 16 distinct bytes will do for the store).
PageHash ChainHash(uint32_t chain, uint32_t pos);
// Deterministic payload byte for (chain, pos, layer, byte index).
void FillPayload(uint32_t chain, uint32_t pos, uint32_t layer, uint8_t* dst, size_t n);
bool PayloadMatches(uint32_t chain, uint32_t pos, uint32_t layer, const uint8_t* data, size_t n);
std::string AbstractFor(uint32_t chain, uint32_t pos, uint32_t layer);

// Puts nodes [first, first+count) of `chain` (all layers) in one AllocStaging + PutPages.
absl::Status PutNodes(KvStoreClient& client, uint32_t chain, uint32_t first, uint32_t count);
// Fetches nodes [first, first+count) of `chain` (all layers); counts pages found intact in *ok
// and fails with DATA_LOSS if any found page's bytes differ.
absl::Status FetchAndCheck(KvStoreClient& client, uint32_t chain, uint32_t first, uint32_t count, size_t* ok);

}  // namespace leoam::kvstore::testing

namespace leoam::kvstore::testing {

// A client workload for concurrency tests (run in threads and in separate processes): opens its
// own session, puts `chains` private chains of `len` nodes (ids worker*1000 + i) and the shared
// chain 999999 (same content from every worker, racing), fetching everything back and checking
// bytes as it goes.
absl::Status RunWorkload(const std::string& target, uint32_t worker, uint32_t chains, uint32_t len);

}  // namespace leoam::kvstore::testing
