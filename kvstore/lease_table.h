// LeaseTable: which arena blocks each open lease pins, and until when.
//
// FetchPages hands out a lease that holds one arena reference per page; the store drops those
// references when the lease is released, expires, or its session goes away. The table only keeps
// the books (ids, owners, deadlines); the caller owns the references. Thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace leoam::kvstore {

class LeaseTable {
 public:
  // Records a lease of `session` over `offsets` that expires at `expiry`; returns its id (never 0).
  uint64_t Create(uint64_t session, std::vector<uint64_t> offsets, absl::Time expiry);
  // True when `id` is an open lease of `session`.
  bool Owns(uint64_t id, uint64_t session) const;
  // Removes the lease and returns the offsets it pinned (empty if unknown).
  std::vector<uint64_t> Release(uint64_t id);
  // Removes every lease whose deadline is <= now; returns the offsets they pinned.
  std::vector<uint64_t> ExpireUpTo(absl::Time now);
  // Removes every lease of `session`; returns the offsets they pinned.
  std::vector<uint64_t> RemoveSession(uint64_t session);

  size_t size() const { return leases_.size(); }

 private:
  struct Lease {
    uint64_t session = 0;
    std::vector<uint64_t> offsets;
    absl::Time expiry;
  };
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, Lease> leases_;
};

}  // namespace leoam::kvstore
