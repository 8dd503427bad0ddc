// MemoryTier: the page cache held in the arena, least recently used first out.
//
// Every page here is also on the disk tier (puts are written through), so evicting a page only
// drops a copy: the memory tier needs no chain rule, it evicts single pages in LRU order. A page
// whose arena block is also held by a lease or a staging commit (refcount > 1) is never chosen, so
// eviction never frees memory a client is reading. Thread-compatible.
#pragma once

#include <cstdint>
#include <list>

#include "absl/container/flat_hash_map.h"
#include "kvstore/arena_allocator.h"
#include "kvstore/page_key.h"

namespace leoam::kvstore {

struct MemoryPage {
  uint64_t offset = 0;  // arena block
  uint64_t length = 0;  // payload bytes
  uint8_t encoding = 0;
};

class MemoryTier {
 public:
  // `arena` must outlive the tier. limit_bytes: payload bytes kept at most (EnforceLimit).
  MemoryTier(ArenaAllocator* arena, uint64_t limit_bytes) : arena_(arena), limit_bytes_(limit_bytes) {}
  MemoryTier(const MemoryTier&) = delete;
  MemoryTier& operator=(const MemoryTier&) = delete;
  ~MemoryTier();

  // The page, marked most recently used; nullptr if absent.
  const MemoryPage* Lookup(const PageKey& key);
  // The page without touching the LRU order.
  const MemoryPage* Peek(const PageKey& key) const;
  // Adds a page, taking over one arena reference held by the caller. Returns false (and takes
  // nothing) when the key is already cached.
  bool Insert(const PageKey& key, const MemoryPage& page);
  // Drops the page (and its reference) if cached.
  void Erase(const PageKey& key);
  // Evicts the least recently used page that nobody else references; false if there is none.
  bool EvictOne();
  // Evicts until bytes() <= limit_bytes() or nothing more can go; returns pages evicted.
  size_t EnforceLimit();

  uint64_t bytes() const { return bytes_; }
  uint64_t pages() const { return map_.size(); }
  uint64_t limit_bytes() const { return limit_bytes_; }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    MemoryPage page;
    std::list<PageKey>::iterator lru;
  };
  ArenaAllocator* arena_;
  uint64_t limit_bytes_;
  uint64_t bytes_ = 0;
  uint64_t evictions_ = 0;
  std::list<PageKey> lru_;  // front: most recent
  absl::flat_hash_map<PageKey, Entry> map_;
};

}  // namespace leoam::kvstore
