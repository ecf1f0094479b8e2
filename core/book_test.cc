// BookSide: level ordering on both sides, FIFO links, totals.
#include "core/book.h"

#include <gtest/gtest.h>

#include <vector>

namespace qx::core {
namespace {

struct Node {
  OrderHandle prev = kNoOrder;
  OrderHandle next = kNoOrder;
};

TEST(BookSide, BidsBestIsHighestAsksBestIsLowest) {
  BookSide bids(true), asks(false);
  for (std::int64_t p : {100, 103, 101, 102}) {
    bids.find_or_insert(PriceTicks(p));
    asks.find_or_insert(PriceTicks(p));
  }
  EXPECT_EQ(bids.best().price, PriceTicks(103));
  EXPECT_EQ(asks.best().price, PriceTicks(100));
  EXPECT_EQ(bids.from_best(3).price, PriceTicks(100));
  EXPECT_EQ(asks.from_best(1).price, PriceTicks(101));
  EXPECT_EQ(bids.level_count(), 4u);
  bids.find_or_insert(PriceTicks(101));  // existing level: no duplicate
  EXPECT_EQ(bids.level_count(), 4u);
  EXPECT_EQ(bids.find(PriceTicks(99)), nullptr);
}

TEST(BookSide, FifoLinksAndTotals) {
  std::vector<Node> pool(4);
  BookSide side(true);
  Level& l = side.find_or_insert(PriceTicks(10));
  BookSide::push_back(l, pool, 0, Lots(1));
  BookSide::push_back(l, pool, 1, Lots(2));
  BookSide::push_back(l, pool, 2, Lots(3));
  EXPECT_EQ(l.volume, Lots(6));
  EXPECT_EQ(l.count, 3u);
  BookSide::unlink(l, pool, 1, Lots(2));  // middle
  EXPECT_EQ(pool[0].next, 2u);
  EXPECT_EQ(pool[2].prev, 0u);
  BookSide::unlink(l, pool, 0, Lots(1));  // head
  EXPECT_EQ(l.head, 2u);
  BookSide::unlink(l, pool, 2, Lots(3));  // last
  EXPECT_EQ(l.head, kNoOrder);
  EXPECT_EQ(l.tail, kNoOrder);
  EXPECT_EQ(l.volume, Lots(0));
  side.erase(PriceTicks(10));
  EXPECT_TRUE(side.empty());
}

}  // namespace
}  // namespace qx::core
