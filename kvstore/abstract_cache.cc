#include "kvstore/abstract_cache.h"

#include <cstring>

namespace leoam::kvstore {

void AbstractCache::EvictTo(uint64_t bytes) {
  while (bytes_ > bytes && !lru_.empty()) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second.bytes.size();
    entries_.erase(it);
    lru_.pop_back();
  }
}

void AbstractCache::Insert(const PageKey& key, std::string_view abstract) {
  if (abstract.size() > limit_bytes_) return;
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;  // same key, same content
  }
  EvictTo(limit_bytes_ - abstract.size());
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::string(abstract), lru_.begin()});
  bytes_ += abstract.size();
}

bool AbstractCache::InsertIfRoom(const PageKey& key, std::string_view abstract) {
  absl::MutexLock l(&mu_);
  if (bytes_ + abstract.size() > limit_bytes_) return false;
  if (entries_.contains(key)) return true;
  lru_.push_back(key);  // warmed entries are the first to go
  entries_.emplace(key, Entry{std::string(abstract), std::prev(lru_.end())});
  bytes_ += abstract.size();
  return true;
}

bool AbstractCache::CopyTo(const PageKey& key, uint32_t length, uint8_t* dst) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.bytes.size() != length) return false;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  std::memcpy(dst, it->second.bytes.data(), length);
  return true;
}

void AbstractCache::Erase(const PageKey& key) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes.size();
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

uint64_t AbstractCache::bytes() const {
  absl::MutexLock l(&mu_);
  return bytes_;
}

uint64_t AbstractCache::entries() const {
  absl::MutexLock l(&mu_);
  return entries_.size();
}

}  // namespace leoam::kvstore
