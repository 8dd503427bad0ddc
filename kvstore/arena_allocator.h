// ArenaAllocator: hands out reference-counted blocks of the shared-memory arena by offset.
//
// Best fit over a free list that coalesces neighbours; blocks are aligned to `alignment` bytes. A
// block starts with one reference; every holder (the memory tier, a staging buffer, each lease)
// owns one, and the block is free only when the last is dropped — so memory that a client may
// still be copying from is never reused. Thread-compatible: the store serializes calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace leoam::kvstore {

class ArenaAllocator {
 public:
  // Manages [0, capacity). alignment must be a power of two (default 64, a cache line).
  explicit ArenaAllocator(uint64_t capacity, uint64_t alignment = 64);

  // A block of at least `length` bytes (length > 0) with one reference, or nullopt when no free
  // range is large enough.
  std::optional<uint64_t> Allocate(uint64_t length);
  // Adds a reference to the block starting at `offset` (which must be allocated).
  void Ref(uint64_t offset);
  // Drops a reference; returns true when this freed the block.
  bool Unref(uint64_t offset);

  // References of the block at `offset`, 0 if none starts there.
  int RefCount(uint64_t offset) const;
  // Rounded length of the block at `offset`, 0 if none starts there.
  uint64_t BlockLength(uint64_t offset) const;

  uint64_t capacity() const { return capacity_; }
  uint64_t used_bytes() const { return used_; }
  size_t num_blocks() const { return blocks_.size(); }
  // Largest free range (for diagnostics).
  uint64_t LargestFree() const;

 private:
  struct Block {
    uint64_t length = 0;
    int refs = 0;
  };
  void InsertFree(uint64_t offset, uint64_t length);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t alignment_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;         // offset -> length
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (length, offset)
  absl::flat_hash_map<uint64_t, Block> blocks_;         // offset -> block
};

}  // namespace leoam::kvstore
