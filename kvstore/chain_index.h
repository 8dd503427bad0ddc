// ChainIndex: the in-memory picture of what the disk tier holds, by chain node.
//
// A node is one page position of one model's hash chain; it holds up to num_layers pages. Nodes
// know their parent and children, so the store can keep the invariant "a stored node's parent is
// stored": puts need the parent present, and eviction only removes leaves (nodes without
// children), least recently used leaf first. Touching a node refreshes only that node, so a chain
// is eaten from its cold tail. Rebuilt from the metadata column family at start. Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "kvstore/page_key.h"
#include "kvstore/segment_store.h"

namespace leoam::kvstore {

// What the index knows of one stored page.
struct PageInfo {
  uint8_t encoding = 0;
  uint32_t payload_bytes = 0;
  uint32_t abstract_bytes = 0;
  // Where the payload lies in the disk tier's segment files (kvstore/segment_store.h).
  SegmentLocation where;
  // CRC32C of the payload (kvstore/crc32c.h), checked on every disk read.
  uint32_t payload_crc = 0;
};

class ChainIndex {
 public:
  struct Node {
    std::optional<Hash128> parent;  // nullopt: first page of a chain
    absl::InlinedVector<Hash128, 1> children;
    absl::flat_hash_map<uint32_t, PageInfo> layers;  // layer -> page
    uint64_t bytes = 0;                              // payload + abstract bytes of its pages
    uint64_t last_use = 0;                           // LRU tick
  };

  // The node or nullptr.
  const Node* Find(const NodeKey& key) const;
  // The page or nullptr.
  const PageInfo* FindPage(const PageKey& key) const;

  // Records a page. Creates the node (linking it under its parent, which must exist unless
  // `parent` is nullopt) when new. Returns false if the page was already recorded.
  bool AddPage(const PageKey& key, const std::optional<Hash128>& parent, const PageInfo& info);

  // Marks the node most recently used.
  void Touch(const NodeKey& key);

  // How many leading hashes of `chain` are nodes linked parent-to-child (the first with no parent)
  // holding all `num_layers` layers.
  size_t LeadingComplete(uint32_t fp_id, absl::Span<const Hash128> chain, uint32_t num_layers) const;

  // The least recently used leaf not in `keep` (any container with contains(NodeKey)), or nullopt.
  template <typename Keep>
  std::optional<NodeKey> LruLeaf(const Keep& keep) const {
    for (const auto& [tick, key] : leaves_) {
      if (!keep.contains(key)) return key;
    }
    return std::nullopt;
  }

  // Removes a node that has no children; returns its pages (layer, info). Its parent may become a leaf.
  std::vector<std::pair<uint32_t, PageInfo>> RemoveLeaf(const NodeKey& key);

  // The node and all its descendants, children after parents.
  std::vector<NodeKey> Subtree(const NodeKey& key) const;
  // Every node of a fingerprint.
  std::vector<NodeKey> NodesOf(uint32_t fp_id) const;

  uint64_t bytes() const { return bytes_; }
  uint64_t pages() const { return pages_; }
  size_t nodes() const { return nodes_.size(); }

 private:

  uint64_t tick_ = 0;
  uint64_t bytes_ = 0;
  uint64_t pages_ = 0;
  absl::flat_hash_map<NodeKey, Node> nodes_;
  // Leaves ordered by last use: (tick, fp_id, hash bytes) so that ties are deterministic.
  struct LeafOrder {
    bool operator()(const std::pair<uint64_t, NodeKey>& a, const std::pair<uint64_t, NodeKey>& b) const {
      if (a.first != b.first) return a.first < b.first;
      if (a.second.fp_id != b.second.fp_id) return a.second.fp_id < b.second.fp_id;
      return a.second.hash.bytes < b.second.hash.bytes;
    }
  };
  std::set<std::pair<uint64_t, NodeKey>, LeafOrder> leaves_;
};

}  // namespace leoam::kvstore
