#include "kvstore/arena_allocator.h"

#include <cassert>

namespace leoam::kvstore {

ArenaAllocator::ArenaAllocator(uint64_t capacity, uint64_t alignment)
    : capacity_(capacity & ~(alignment - 1)), alignment_(alignment) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void ArenaAllocator::InsertFree(uint64_t offset, uint64_t length) {
  free_by_offset_.emplace(offset, length);
  free_by_size_.emplace(length, offset);
}

void ArenaAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

std::optional<uint64_t> ArenaAllocator::Allocate(uint64_t length) {
  if (length == 0 || length > capacity_) return std::nullopt;
  const uint64_t rounded = (length + alignment_ - 1) & ~(alignment_ - 1);
  auto fit = free_by_size_.lower_bound({rounded, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  const uint64_t offset = fit->second;
  const uint64_t free_len = fit->first;
  EraseFree(free_by_offset_.find(offset));
  if (free_len > rounded) InsertFree(offset + rounded, free_len - rounded);
  blocks_[offset] = Block{rounded, 1};
  used_ += rounded;
  return offset;
}

void ArenaAllocator::Ref(uint64_t offset) {
  auto it = blocks_.find(offset);
  assert(it != blocks_.end());
  if (it != blocks_.end()) ++it->second.refs;
}

bool ArenaAllocator::Unref(uint64_t offset) {
  auto it = blocks_.find(offset);
  assert(it != blocks_.end());
  if (it == blocks_.end()) return false;
  if (--it->second.refs > 0) return false;
  uint64_t start = offset;
  uint64_t length = it->second.length;
  used_ -= length;
  blocks_.erase(it);
  // Coalesce with the free neighbours.
  auto next = free_by_offset_.lower_bound(start);
  if (next != free_by_offset_.end() && next->first == start + length) {
    length += next->second;
    EraseFree(next);
  }
  auto after = free_by_offset_.lower_bound(start);
  if (after != free_by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == start) {
      start = prev->first;
      length += prev->second;
      EraseFree(prev);
    }
  }
  InsertFree(start, length);
  return true;
}

int ArenaAllocator::RefCount(uint64_t offset) const {
  auto it = blocks_.find(offset);
  return it == blocks_.end() ? 0 : it->second.refs;
}

uint64_t ArenaAllocator::BlockLength(uint64_t offset) const {
  auto it = blocks_.find(offset);
  return it == blocks_.end() ? 0 : it->second.length;
}

uint64_t ArenaAllocator::LargestFree() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace leoam::kvstore
