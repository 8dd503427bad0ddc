#include "kvstore/memory_tier.h"

namespace leoam::kvstore {

MemoryTier::~MemoryTier() {
  for (auto& [key, entry] : map_) arena_->Unref(entry.page.offset);
}

const MemoryPage* MemoryTier::Lookup(const PageKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.page;
}

const MemoryPage* MemoryTier::Peek(const PageKey& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second.page;
}

bool MemoryTier::Insert(const PageKey& key, const MemoryPage& page) {
  if (map_.contains(key)) return false;
  lru_.push_front(key);
  map_.emplace(key, Entry{page, lru_.begin()});
  bytes_ += page.length;
  return true;
}

void MemoryTier::Erase(const PageKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  bytes_ -= it->second.page.length;
  arena_->Unref(it->second.page.offset);
  lru_.erase(it->second.lru);
  map_.erase(it);
}

bool MemoryTier::EvictOne() {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    auto entry = map_.find(*it);
    if (arena_->RefCount(entry->second.page.offset) > 1) continue;  // pinned by a lease
    const PageKey victim = *it;
    Erase(victim);
    ++evictions_;
    return true;
  }
  return false;
}

size_t MemoryTier::EnforceLimit() {
  size_t n = 0;
  while (bytes_ > limit_bytes_ && EvictOne()) ++n;
  return n;
}

}  // namespace leoam::kvstore
