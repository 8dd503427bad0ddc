// AbstractCache: page abstracts kept in the store's memory, least recently used first out.
//
// A prefix restore reads the abstracts of every layer of a whole chain. From RocksDB those are
// random reads (keys are chain hashes, so a chain's abstracts are scattered over the SSTs): ~100
// MB/s the first time, even from the OS page cache, while flushes and compactions compete for
// the CPU. Puts insert here, so recent chains are served from memory; misses read RocksDB and
// are inserted. A page's abstract never changes (its key names its content), so an entry can
// only be stale in being kept for a page that is gone; Erase on eviction and drop keeps that rare,
// the byte limit bounds it. Thread-safe (its own mutex; copies happen outside the store's lock).
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "kvstore/page_key.h"

namespace leoam::kvstore {

class AbstractCache {
 public:
  explicit AbstractCache(uint64_t limit_bytes) : limit_bytes_(limit_bytes) {}
  AbstractCache(const AbstractCache&) = delete;
  AbstractCache& operator=(const AbstractCache&) = delete;

  // Stores (or refreshes) an abstract, evicting least recently used ones beyond the limit. An
  // abstract larger than the limit is not kept.
  void Insert(const PageKey& key, std::string_view abstract);
  // Stores it only if it fits without evicting anything (warming at start); returns false when full.
  bool InsertIfRoom(const PageKey& key, std::string_view abstract);
  // Copies the abstract to dst if it is cached with exactly `length` bytes; marks it used.
  bool CopyTo(const PageKey& key, uint32_t length, uint8_t* dst);
  void Erase(const PageKey& key);

  uint64_t bytes() const;
  uint64_t entries() const;
  uint64_t limit_bytes() const { return limit_bytes_; }

 private:
  struct Entry {
    std::string bytes;
    std::list<PageKey>::iterator lru;  // position in lru_ (front: most recent)
  };
  void EvictTo(uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t limit_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<PageKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<PageKey> lru_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leoam::kvstore
