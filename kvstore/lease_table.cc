#include "kvstore/lease_table.h"

#include <utility>

namespace leoam::kvstore {

uint64_t LeaseTable::Create(uint64_t session, std::vector<uint64_t> offsets, absl::Time expiry) {
  const uint64_t id = next_id_++;
  leases_.emplace(id, Lease{session, std::move(offsets), expiry});
  return id;
}

bool LeaseTable::Owns(uint64_t id, uint64_t session) const {
  auto it = leases_.find(id);
  return it != leases_.end() && it->second.session == session;
}

std::vector<uint64_t> LeaseTable::Release(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  std::vector<uint64_t> offsets = std::move(it->second.offsets);
  leases_.erase(it);
  return offsets;
}

std::vector<uint64_t> LeaseTable::ExpireUpTo(absl::Time now) {
  std::vector<uint64_t> offsets;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expiry <= now) {
      offsets.insert(offsets.end(), it->second.offsets.begin(), it->second.offsets.end());
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  return offsets;
}

std::vector<uint64_t> LeaseTable::RemoveSession(uint64_t session) {
  std::vector<uint64_t> offsets;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.session == session) {
      offsets.insert(offsets.end(), it->second.offsets.begin(), it->second.offsets.end());
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  return offsets;
}

}  // namespace leoam::kvstore
