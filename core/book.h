// Price levels of one instrument's order book.
//
// Design: a paged price ladder. Prices are whole ticks and activity clusters near the touch, so
// each side keeps a sorted vector of pages; a page covers 64 consecutive prices with a bitmap of
// the prices that have a level and a block of 64 level slots. Finding a level is a bit test in
// the page, which is found by binary search over the pages (few: each spans 64 ticks) or, most
// of the time, from the page found last (an amend moves an order by a tick or two). Adding or
// removing a level is O(1) unless it creates or empties a page, which moves a few page entries;
// the best level is the extreme set bit of the best page. Orders of a level form a doubly linked
// FIFO through `prev` and `next` handles stored in the caller's order pool (`Pool` is anything
// indexable whose elements have `prev` and `next` members), so the book never allocates per order.
//
// Invariants: pages are strictly ordered by key, worst first (bids ascending, asks descending),
// and none is empty; a set bit is a level with at least one order; a level's volume is the sum
// of its orders' remaining volumes and `count` is their number; unused slots are zero.
//
// Limits: a page holds 64 level slots (1.5 KiB) however few of its prices are used, so a side
// whose levels are spread 64 or more ticks apart uses up to 64 times the memory of its levels.
// Blocks of emptied pages are reused; the block store never shrinks.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "core/assert.h"
#include "core/types.h"

namespace qx::core {

using OrderHandle = std::uint32_t;
inline constexpr OrderHandle kNoOrder = 0xFFFF'FFFFu;

struct Level {
  Lots volume;
  OrderHandle head = kNoOrder;
  OrderHandle tail = kNoOrder;
  std::uint32_t count = 0;
};

class BookSide {
 public:
  explicit BookSide(bool is_bid = true) : is_bid_(is_bid) {}

  [[nodiscard]] bool empty() const { return pages_.empty(); }
  [[nodiscard]] std::size_t level_count() const { return levels_; }
  [[nodiscard]] bool is_bid() const { return is_bid_; }
  // True when price p is at least as aggressive as q for this side.
  [[nodiscard]] bool better_or_equal(PriceTicks p, PriceTicks q) const {
    return is_bid_ ? p >= q : p <= q;
  }

  [[nodiscard]] PriceTicks best_price() const {
    QX_ASSERT(!pages_.empty());
    const Page& pg = pages_.back();
    return price_of(pg.key, extreme_slot(pg.bits));
  }
  [[nodiscard]] Level& best() {
    QX_ASSERT(!pages_.empty());
    const Page& pg = pages_.back();
    return at(pg, extreme_slot(pg.bits));
  }

  // The level at price p, or nullptr.
  Level* find(PriceTicks p) {
    std::size_t i = locate(key_of(p));
    if (i == kNone) return nullptr;
    const Page& pg = pages_[i];
    std::uint32_t s = slot_of(p);
    return (pg.bits >> s & 1u) != 0 ? &at(pg, s) : nullptr;
  }
  // The level at price p, created empty when there is none.
  Level& find_or_insert(PriceTicks p) {
    std::int64_t key = key_of(p);
    std::size_t i = locate(key);
    if (i == kNone) i = insert_page(key);
    Page& pg = pages_[i];
    std::uint32_t s = slot_of(p);
    if ((pg.bits >> s & 1u) == 0) {
      pg.bits |= std::uint64_t{1} << s;
      levels_ += 1;
    }
    return at(pg, s);
  }
  // Removes the (empty) level at price p.
  void erase(PriceTicks p) {
    std::size_t i = locate(key_of(p));
    QX_ASSERT(i != kNone);
    Page& pg = pages_[i];
    std::uint32_t s = slot_of(p);
    QX_ASSERT((pg.bits >> s & 1u) != 0);
    Level& l = at(pg, s);
    QX_ASSERT(l.count == 0 && l.head == kNoOrder && l.volume.value == 0);
    l = Level{};
    pg.bits &= ~(std::uint64_t{1} << s);
    levels_ -= 1;
    if (pg.bits == 0) {
      free_blocks_.push_back(pg.block);
      pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  // Calls f(price, level) for each level from the best to the worst until f returns false. The
  // side must not change meanwhile.
  template <class F>
  void for_each_level(F&& f) const {
    for (std::size_t i = pages_.size(); i-- > 0;) {
      const Page& pg = pages_[i];
      for (std::uint64_t bits = pg.bits; bits != 0;) {
        std::uint32_t s = extreme_slot(bits);
        bits &= ~(std::uint64_t{1} << s);
        if (!f(price_of(pg.key, s), at(pg, s))) return;
      }
    }
  }

  // Calls f(price, level) for each level from the worst to the best until f returns false.
  template <class F>
  void for_each_level_reverse(F&& f) const {
    for (const Page& pg : pages_) {
      for (std::uint64_t bits = pg.bits; bits != 0;) {
        std::uint32_t s = is_bid_ ? static_cast<std::uint32_t>(std::countr_zero(bits))
                                  : 63u - static_cast<std::uint32_t>(std::countl_zero(bits));
        bits &= ~(std::uint64_t{1} << s);
        if (!f(price_of(pg.key, s), at(pg, s))) return;
      }
    }
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
  static constexpr std::uint32_t kPageBits = 6;
  static constexpr std::uint32_t kPageSlots = 1u << kPageBits;
  static constexpr std::size_t kNone = ~std::size_t{0};

  struct Page {
    std::int64_t key = 0;     // price >> kPageBits
    std::uint64_t bits = 0;   // bit s: a level at price key * 64 + s
    std::uint32_t block = 0;  // its slots are slots_[block * 64, block * 64 + 64)
  };

  static std::int64_t key_of(PriceTicks p) { return p.value >> kPageBits; }
  static std::uint32_t slot_of(PriceTicks p) {
    return static_cast<std::uint32_t>(p.value & (kPageSlots - 1));
  }
  static PriceTicks price_of(std::int64_t key, std::uint32_t slot) {
    return PriceTicks(key * kPageSlots + slot);
  }
  Level& at(const Page& pg, std::uint32_t s) {
    return slots_[std::size_t{pg.block} * kPageSlots + s];
  }
  const Level& at(const Page& pg, std::uint32_t s) const {
    return slots_[std::size_t{pg.block} * kPageSlots + s];
  }
  // The best set bit: highest for bids, lowest for asks.
  std::uint32_t extreme_slot(std::uint64_t bits) const {
    return is_bid_ ? 63u - static_cast<std::uint32_t>(std::countl_zero(bits))
                   : static_cast<std::uint32_t>(std::countr_zero(bits));
  }
  // True when key a is stored before key b (storage runs from the worst price to the best).
  bool before(std::int64_t a, std::int64_t b) const { return is_bid_ ? a < b : a > b; }

  // Index of the first page not stored before `key`.
  std::size_t lower(std::int64_t key) const {
    std::size_t lo = 0, hi = pages_.size();
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (before(pages_[mid].key, key)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  // Index of the page with `key`, or kNone; remembers it for the next call. Tries the page found
  // last, then the place `key` would have if no page were missing between it and the worst
  // page (the usual case near the touch), then a binary search.
  std::size_t locate(std::int64_t key) {
    if (hint_ < pages_.size() && pages_[hint_].key == key) return hint_;
    if (pages_.empty()) return kNone;
    std::int64_t gap = is_bid_ ? key - pages_.front().key : pages_.front().key - key;
    if (gap >= 0 && static_cast<std::uint64_t>(gap) < pages_.size() &&
        pages_[static_cast<std::size_t>(gap)].key == key) {
      hint_ = static_cast<std::size_t>(gap);
      return hint_;
    }
    std::size_t i = lower(key);
    if (i == pages_.size() || pages_[i].key != key) return kNone;
    hint_ = i;
    return i;
  }
  std::size_t insert_page(std::int64_t key) {
    Page pg;
    pg.key = key;
    if (!free_blocks_.empty()) {
      pg.block = free_blocks_.back();
      free_blocks_.pop_back();
    } else {
      QX_ASSERT(slots_.size() / kPageSlots < 0xFFFF'FFFFu);
      pg.block = static_cast<std::uint32_t>(slots_.size() / kPageSlots);
      slots_.resize(slots_.size() + kPageSlots);
    }
    std::size_t i = lower(key);
    pages_.insert(pages_.begin() + static_cast<std::ptrdiff_t>(i), pg);
    hint_ = i;
    return i;
  }

  std::vector<Page> pages_;
  std::vector<Level> slots_;
  std::vector<std::uint32_t> free_blocks_;
  std::size_t levels_ = 0;
  std::size_t hint_ = 0;
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
