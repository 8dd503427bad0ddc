#include "kvstore/abstract_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace leoam::kvstore {
namespace {

PageKey Key(uint8_t n, uint32_t layer) {
  PageKey k;
  k.node.fp_id = 1;
  k.node.hash.bytes[0] = n;
  k.layer = layer;
  return k;
}

std::string Read(AbstractCache& c, const PageKey& k, uint32_t len) {
  std::string out(len, '\0');
  return c.CopyTo(k, len, reinterpret_cast<uint8_t*>(out.data())) ? out : "<miss>";
}

TEST(AbstractCacheTest, KeepsTheMostRecentlyUsedWithinItsLimit) {
  AbstractCache c(10);
  c.Insert(Key(1, 0), "aaaa");
  c.Insert(Key(2, 0), "bbbb");
  EXPECT_EQ(Read(c, Key(1, 0), 4), "aaaa");  // 1 is now the most recent
  c.Insert(Key(3, 0), "cccc");               // 12 bytes > 10: the least recent (2) goes
  EXPECT_EQ(Read(c, Key(2, 0), 4), "<miss>");
  EXPECT_EQ(Read(c, Key(1, 0), 4), "aaaa");
  EXPECT_EQ(Read(c, Key(3, 0), 4), "cccc");
  EXPECT_EQ(c.bytes(), 8u);
  EXPECT_EQ(Read(c, Key(3, 0), 3), "<miss>");  // a length that does not match is a miss
  c.Erase(Key(1, 0));
  EXPECT_EQ(Read(c, Key(1, 0), 4), "<miss>");
  EXPECT_EQ(c.bytes(), 4u);
  c.Insert(Key(4, 0), std::string(11, 'x'));  // larger than the whole cache: not kept
  EXPECT_EQ(c.entries(), 1u);
}

TEST(AbstractCacheTest, InsertIfRoomNeverEvicts) {
  AbstractCache c(8);
  EXPECT_TRUE(c.InsertIfRoom(Key(1, 0), "aaaa"));
  EXPECT_TRUE(c.InsertIfRoom(Key(1, 1), "bbbb"));
  EXPECT_FALSE(c.InsertIfRoom(Key(2, 0), "c"));
  EXPECT_EQ(Read(c, Key(1, 0), 4), "aaaa");
  EXPECT_EQ(Read(c, Key(1, 1), 4), "bbbb");
}

}  // namespace
}  // namespace leoam::kvstore
