#include "kvstore/chain_index.h"

#include <algorithm>

namespace leoam::kvstore {

const ChainIndex::Node* ChainIndex::Find(const NodeKey& key) const {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : &it->second;
}

const PageInfo* ChainIndex::FindPage(const PageKey& key) const {
  const Node* node = Find(key.node);
  if (node == nullptr) return nullptr;
  auto it = node->layers.find(key.layer);
  return it == node->layers.end() ? nullptr : &it->second;
}

bool ChainIndex::AddPage(const PageKey& key, const std::optional<Hash128>& parent, const PageInfo& info) {
  auto it = nodes_.find(key.node);
  if (it == nodes_.end()) {
    it = nodes_.emplace(key.node, Node{}).first;
    it->second.parent = parent;
    it->second.last_use = ++tick_;
    leaves_.emplace(it->second.last_use, key.node);
    if (parent.has_value()) {
      auto p = nodes_.find(NodeKey{key.node.fp_id, *parent});
      if (p != nodes_.end()) {
        if (p->second.children.empty()) leaves_.erase({p->second.last_use, p->first});
        p->second.children.push_back(key.node.hash);
      }
    }
  }
  Node& node = it->second;
  if (!node.layers.emplace(key.layer, info).second) return false;
  const uint64_t b = uint64_t{info.payload_bytes} + info.abstract_bytes;
  node.bytes += b;
  bytes_ += b;
  ++pages_;
  return true;
}

void ChainIndex::Touch(const NodeKey& key) {
  auto it = nodes_.find(key);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  const bool leaf = node.children.empty();
  if (leaf) leaves_.erase({node.last_use, key});
  node.last_use = ++tick_;
  if (leaf) leaves_.emplace(node.last_use, key);
}

size_t ChainIndex::LeadingComplete(uint32_t fp_id, absl::Span<const Hash128> chain, uint32_t num_layers) const {
  size_t n = 0;
  for (size_t i = 0; i < chain.size(); ++i) {
    const Node* node = Find(NodeKey{fp_id, chain[i]});
    if (node == nullptr || node->layers.size() != num_layers) break;
    if (i == 0 ? node->parent.has_value() : !(node->parent.has_value() && *node->parent == chain[i - 1])) break;
    ++n;
  }
  return n;
}

std::vector<std::pair<uint32_t, PageInfo>> ChainIndex::RemoveLeaf(const NodeKey& key) {
  std::vector<std::pair<uint32_t, PageInfo>> pages;
  auto it = nodes_.find(key);
  if (it == nodes_.end() || !it->second.children.empty()) return pages;
  Node& node = it->second;
  leaves_.erase({node.last_use, key});
  for (const auto& [layer, info] : node.layers) pages.emplace_back(layer, info);
  bytes_ -= node.bytes;
  pages_ -= node.layers.size();
  if (node.parent.has_value()) {
    auto p = nodes_.find(NodeKey{key.fp_id, *node.parent});
    if (p != nodes_.end()) {
      auto& ch = p->second.children;
      ch.erase(std::remove(ch.begin(), ch.end(), key.hash), ch.end());
      if (ch.empty()) leaves_.emplace(p->second.last_use, p->first);
    }
  }
  nodes_.erase(it);
  return pages;
}

std::vector<NodeKey> ChainIndex::Subtree(const NodeKey& key) const {
  std::vector<NodeKey> out;
  if (Find(key) == nullptr) return out;
  out.push_back(key);
  for (size_t i = 0; i < out.size(); ++i) {
    for (const Hash128& child : Find(out[i])->children) out.push_back(NodeKey{key.fp_id, child});
  }
  return out;
}

std::vector<NodeKey> ChainIndex::NodesOf(uint32_t fp_id) const {
  std::vector<NodeKey> out;
  for (const auto& [key, node] : nodes_) {
    if (key.fp_id == fp_id) out.push_back(key);
  }
  return out;
}

}  // namespace leoam::kvstore
