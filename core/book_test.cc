// BookSide: level ordering on both sides, FIFO links, totals, and the paged ladder against an
// ordered map as a model (pages created, emptied and reused; far-apart and huge prices).
#include "core/book.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

namespace qx::core {
namespace {

struct Node {
  OrderHandle prev = kNoOrder;
  OrderHandle next = kNoOrder;
};

std::vector<std::int64_t> prices_from_best(const BookSide& side) {
  std::vector<std::int64_t> out;
  side.for_each_level([&](PriceTicks p, const Level&) {
    out.push_back(p.value);
    return true;
  });
  return out;
}

TEST(BookSide, BidsBestIsHighestAsksBestIsLowest) {
  BookSide bids(true), asks(false);
  for (std::int64_t p : {100, 103, 101, 102}) {
    bids.find_or_insert(PriceTicks(p));
    asks.find_or_insert(PriceTicks(p));
  }
  EXPECT_EQ(bids.best_price(), PriceTicks(103));
  EXPECT_EQ(asks.best_price(), PriceTicks(100));
  EXPECT_EQ(prices_from_best(bids), (std::vector<std::int64_t>{103, 102, 101, 100}));
  EXPECT_EQ(prices_from_best(asks), (std::vector<std::int64_t>{100, 101, 102, 103}));
  EXPECT_EQ(bids.level_count(), 4u);
  bids.find_or_insert(PriceTicks(101));  // existing level: no duplicate
  EXPECT_EQ(bids.level_count(), 4u);
  EXPECT_EQ(bids.find(PriceTicks(99)), nullptr);
  EXPECT_EQ(bids.find(PriceTicks(99 + 64)), nullptr);
}

TEST(BookSide, IterationStopsWhenAsked) {
  BookSide asks(false);
  for (std::int64_t p : {5, 70, 700, 7000}) asks.find_or_insert(PriceTicks(p));
  std::vector<std::int64_t> seen;
  asks.for_each_level([&](PriceTicks p, const Level&) {
    seen.push_back(p.value);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::int64_t>{5, 70}));
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
  EXPECT_EQ(side.level_count(), 0u);
}

// Random inserts and erases over clustered, page-boundary and far-apart prices; after each step
// the side must list exactly the model's prices, best first, with each level's own data.
TEST(BookSide, AgreesWithOrderedMapUnderChurn) {
  for (bool is_bid : {true, false}) {
    BookSide side(is_bid);
    std::map<std::int64_t, std::int64_t> model;  // price -> volume stored in its level
    std::uint64_t x = 987654321;
    for (int step = 0; step < 60'000; ++step) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      std::int64_t p = 0;
      switch ((x >> 61) & 3) {
        case 0: p = 10'000 + static_cast<std::int64_t>((x >> 20) % 300); break;
        case 1:
          p = 64 * static_cast<std::int64_t>((x >> 20) % 40) + ((x >> 40) % 2 ? 63 : 0);
          break;
        case 2: p = 1 + static_cast<std::int64_t>((x >> 10) % 1'000'000'000'000ull); break;
        default: p = 10'000 + static_cast<std::int64_t>((x >> 20) % 20); break;
      }
      bool add = ((x >> 33) % 5) < 3;
      if (add) {
        Level& l = side.find_or_insert(PriceTicks(p));
        if (model.count(p) == 0) {
          EXPECT_EQ(l.count, 0u);
          EXPECT_EQ(l.volume.value, 0);
          l.volume = Lots(p % 1000 + 1);
          l.count = 1;
          model[p] = p % 1000 + 1;
        }
      } else if (!model.empty()) {
        auto it = model.lower_bound(p);
        if (it == model.end()) it = model.begin();
        Level* l = side.find(PriceTicks(it->first));
        ASSERT_NE(l, nullptr);
        EXPECT_EQ(l->volume.value, it->second);
        l->volume = Lots(0);
        l->count = 0;
        side.erase(PriceTicks(it->first));
        model.erase(it);
      }
      ASSERT_EQ(side.level_count(), model.size());
      if (model.empty()) {
        ASSERT_TRUE(side.empty());
        continue;
      }
      std::int64_t best = is_bid ? model.rbegin()->first : model.begin()->first;
      ASSERT_EQ(side.best_price().value, best);
      ASSERT_EQ(side.best().volume.value, model[best]);
      if (step % 97 == 0) {
        std::vector<std::int64_t> want;
        for (const auto& [price, v] : model) want.push_back(price);
        if (is_bid) std::reverse(want.begin(), want.end());
        ASSERT_EQ(prices_from_best(side), want);
        for (std::int64_t q : {p, p + 1, p - 1}) {
          ASSERT_EQ(side.find(PriceTicks(q)) != nullptr, model.count(q) == 1);
        }
      }
    }
  }
}

}  // namespace
}  // namespace qx::core
