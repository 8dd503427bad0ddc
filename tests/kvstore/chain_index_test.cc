#include "kvstore/chain_index.h"

#include <vector>

#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

Hash128 H(uint32_t chain, uint32_t pos) {
  Hash128 h;
  PutBigEndian32(chain, reinterpret_cast<char*>(h.bytes.data()));
  PutBigEndian32(pos, reinterpret_cast<char*>(h.bytes.data()) + 4);
  return h;
}

// Adds `layers` pages of every node of chain `c` with `len` nodes.
void AddChain(ChainIndex& idx, uint32_t c, uint32_t len, uint32_t layers) {
  for (uint32_t l = 0; l < layers; ++l) {
    for (uint32_t i = 0; i < len; ++i) {
      std::optional<Hash128> parent;
      if (i > 0) parent = H(c, i - 1);
      idx.AddPage(PageKey{NodeKey{1, H(c, i)}, l}, parent, PageInfo{1, 10, 2, {}, 0});
    }
  }
}

std::vector<Hash128> Chain(uint32_t c, uint32_t len) {
  std::vector<Hash128> v;
  for (uint32_t i = 0; i < len; ++i) v.push_back(H(c, i));
  return v;
}

TEST(ChainIndexTest, LeadingCompleteNeedsAllLayersAndLinks) {
  ChainIndex idx;
  AddChain(idx, 1, 5, 2);
  EXPECT_EQ(idx.LeadingComplete(1, Chain(1, 5), 2), 5u);
  EXPECT_EQ(idx.LeadingComplete(1, Chain(1, 8), 2), 5u);
  EXPECT_EQ(idx.LeadingComplete(1, Chain(1, 5), 3), 0u);   // a third layer is missing everywhere
  EXPECT_EQ(idx.LeadingComplete(2, Chain(1, 5), 2), 0u);   // other fingerprint
  std::vector<Hash128> broken = Chain(1, 5);
  std::swap(broken[1], broken[2]);                         // not linked parent to child
  EXPECT_EQ(idx.LeadingComplete(1, broken, 2), 1u);
  EXPECT_EQ(idx.pages(), 10u);
  EXPECT_EQ(idx.bytes(), 120u);
}

TEST(ChainIndexTest, EvictionTakesLeavesSoChainsStayWhole) {
  ChainIndex idx;
  AddChain(idx, 1, 4, 1);  // older
  AddChain(idx, 2, 4, 1);  // newer
  absl::flat_hash_set<NodeKey> keep;
  // Evict 5 nodes one leaf at a time: chain 1 goes first, from its tail, then chain 2's tail.
  std::vector<NodeKey> order;
  for (int i = 0; i < 5; ++i) {
    std::optional<NodeKey> v = idx.LruLeaf(keep);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(idx.Find(*v)->children.size(), 0u);
    idx.RemoveLeaf(*v);
    order.push_back(*v);
    // Invariant: every remaining node's parent is present.
    for (uint32_t c : {1u, 2u}) {
      for (uint32_t p = 0; p < 4; ++p) {
        const ChainIndex::Node* n = idx.Find(NodeKey{1, H(c, p)});
        if (n != nullptr && n->parent.has_value()) {
          ASSERT_NE(idx.Find(NodeKey{1, *n->parent}), nullptr);
        }
      }
    }
  }
  EXPECT_EQ(order[0].hash, H(1, 3));
  EXPECT_EQ(order[3].hash, H(1, 0));
  EXPECT_EQ(order[4].hash, H(2, 3));
  EXPECT_EQ(idx.LeadingComplete(1, Chain(2, 4), 1), 3u);
}

TEST(ChainIndexTest, TouchProtectsARecentlyUsedChain) {
  ChainIndex idx;
  AddChain(idx, 1, 3, 1);
  AddChain(idx, 2, 3, 1);
  idx.Touch(NodeKey{1, H(1, 2)});  // chain 1's leaf is now the most recent
  EXPECT_EQ(idx.LruLeaf(absl::flat_hash_set<NodeKey>{})->hash, H(2, 2));
  absl::flat_hash_set<NodeKey> keep = {NodeKey{1, H(2, 2)}};
  EXPECT_EQ(idx.LruLeaf(keep)->hash, H(1, 2));
}

TEST(ChainIndexTest, SubtreeListsParentsBeforeChildren) {
  ChainIndex idx;
  AddChain(idx, 1, 4, 1);
  // A branch off node 1.
  idx.AddPage(PageKey{NodeKey{1, H(9, 0)}, 0}, H(1, 1), PageInfo{1, 10, 0, {}, 0});
  std::vector<NodeKey> sub = idx.Subtree(NodeKey{1, H(1, 1)});
  ASSERT_EQ(sub.size(), 4u);
  EXPECT_EQ(sub[0].hash, H(1, 1));
  for (auto it = sub.rbegin(); it != sub.rend(); ++it) EXPECT_FALSE(idx.RemoveLeaf(*it).empty());
  EXPECT_EQ(idx.nodes(), 1u);
  EXPECT_EQ(idx.LeadingComplete(1, Chain(1, 4), 1), 1u);
}

}  // namespace
}  // namespace leoam::kvstore
