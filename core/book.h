// Price levels of one instrument's order book.
//
// Design: each side is a vector of levels sorted so that the best level is at the back (bids
// ascending, asks descending). Activity clusters at the touch, so inserting or erasing near the
// best moves few elements, and the best level is found in O(1). Other levels are found by binary
// search: O(log L) for L levels. Orders of a level form a doubly linked FIFO through `prev` and
// `next` handles stored in the caller's order pool (`Pool` is any indexable container whose
// elements have `prev` and `next` members), so the book itself never allocates per order.
//
// Invariants: levels are strictly ordered by price; no level is empty; a level's volume is the sum
// of its orders' remaining volumes and `count` is their number.
#pragma once

#include <cstdint>
#include <vector>

#include "core/assert.h"
#include "core/types.h"

namespace qx::core {

using OrderHandle = std::uint32_t;
inline constexpr OrderHandle kNoOrder = 0xFFFF'FFFFu;

struct Level {
  PriceTicks price;
  Lots volume;
  OrderHandle head = kNoOrder;
  OrderHandle tail = kNoOrder;
  std::uint32_t count = 0;
};

class BookSide {
 public:
  explicit BookSide(bool is_bid = true) : is_bid_(is_bid) {}

  [[nodiscard]] bool empty() const { return levels_.empty(); }
  [[nodiscard]] std::size_t level_count() const { return levels_.size(); }
  [[nodiscard]] Level& best() {
    QX_ASSERT(!levels_.empty());
    return levels_.back();
  }
  [[nodiscard]] const Level& best() const {
    QX_ASSERT(!levels_.empty());
    return levels_.back();
  }
  // The i-th level from the best (0 = best).
  [[nodiscard]] const Level& from_best(std::size_t i) const {
    return levels_[levels_.size() - 1 - i];
  }
  // True when price p is at least as aggressive as q for this side.
  [[nodiscard]] bool better_or_equal(PriceTicks p, PriceTicks q) const {
    return is_bid_ ? p >= q : p <= q;
  }
  [[nodiscard]] bool is_bid() const { return is_bid_; }

  Level* find(PriceTicks p) {
    std::size_t i = lower(p);
    return i < levels_.size() && levels_[i].price == p ? &levels_[i] : nullptr;
  }
  Level& find_or_insert(PriceTicks p) {
    std::size_t i = lower(p);
    if (i < levels_.size() && levels_[i].price == p) return levels_[i];
    Level l;
    l.price = p;
    return *levels_.insert(levels_.begin() + static_cast<std::ptrdiff_t>(i), l);
  }
  void erase(PriceTicks p) {
    std::size_t i = lower(p);
    QX_ASSERT(i < levels_.size() && levels_[i].price == p);
    QX_ASSERT(levels_[i].count == 0);
    levels_.erase(levels_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  // Appends order h to the tail of level l.
  template <class Pool>
  static void push_back(Level& l, Pool& pool, OrderHandle h, Lots v) {
    auto& n = pool[h];
    n.prev = l.tail;
    n.next = kNoOrder;
    if (l.tail != kNoOrder) {
      pool[l.tail].next = h;
    } else {
      l.head = h;
    }
    l.tail = h;
    l.count += 1;
    l.volume += v;
  }
  // Unlinks order h (with remaining volume v) from level l.
  template <class Pool>
  static void unlink(Level& l, Pool& pool, OrderHandle h, Lots v) {
    auto& n = pool[h];
    if (n.prev != kNoOrder) {
      pool[n.prev].next = n.next;
    } else {
      l.head = n.next;
    }
    if (n.next != kNoOrder) {
      pool[n.next].prev = n.prev;
    } else {
      l.tail = n.prev;
    }
    n.prev = n.next = kNoOrder;
    QX_ASSERT(l.count > 0);
    l.count -= 1;
    l.volume -= v;
  }

 private:
  // Index of the first level whose price is not strictly better-placed-before p in storage order
  // (storage is worst-to-best).
  std::size_t lower(PriceTicks p) const {
    std::size_t lo = 0, hi = levels_.size();
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      bool before = is_bid_ ? levels_[mid].price < p : levels_[mid].price > p;
      if (before) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  std::vector<Level> levels_;
  bool is_bid_;
};

struct Book {
  BookSide bids{true};
  BookSide asks{false};
  BookSide& side(Direction d) { return d == Direction::kBuy ? bids : asks; }
  const BookSide& side(Direction d) const { return d == Direction::kBuy ? bids : asks; }
  BookSide& opposite(Direction d) { return d == Direction::kBuy ? asks : bids; }
  const BookSide& opposite(Direction d) const { return d == Direction::kBuy ? asks : bids; }
};

}  // namespace qx::core
