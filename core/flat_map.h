// An open-addressing hash map from a 128-bit key (two 64-bit words) to a small value.
//
// Why our own: the engine must not use std::unordered_* (iteration order and std::hash are
// unspecified), and it needs O(1) lookup of orders by id and by (account, client order id).
// This map is never iterated for output, so its internal order cannot reach a hash or an effect.
// Linear probing with backward-shift deletion (no tombstones); capacity is a power of two and the
// load factor stays at or below 1/2. Lookups and updates are O(1) expected.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/assert.h"
#include "core/hash.h"

namespace qx::core {

template <class V>
class FlatMap {
 public:
  FlatMap() { slots_.resize(16); }

  [[nodiscard]] std::size_t size() const { return size_; }

  [[nodiscard]] std::optional<V> find(std::uint64_t a, std::uint64_t b = 0) const {
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = slot_of(a, b);; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (!s.used) return std::nullopt;
      if (s.a == a && s.b == b) return s.v;
    }
  }

  // Inserts; returns false (and changes nothing) when the key is present.
  bool insert(std::uint64_t a, std::uint64_t b, V v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = slot_of(a, b);; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = Slot{a, b, v, true};
        size_ += 1;
        return true;
      }
      if (s.a == a && s.b == b) return false;
    }
  }

  // Erases; returns false when the key is absent.
  bool erase(std::uint64_t a, std::uint64_t b = 0) {
    std::size_t mask = slots_.size() - 1;
    std::size_t i = slot_of(a, b);
    for (;; i = (i + 1) & mask) {
      if (!slots_[i].used) return false;
      if (slots_[i].a == a && slots_[i].b == b) break;
    }
    // Backward-shift: move later members of the probe run into the hole when that keeps them
    // reachable from their home slot.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask; slots_[j].used; j = (j + 1) & mask) {
      std::size_t home = slot_of(slots_[j].a, slots_[j].b);
      bool movable = ((j - home) & mask) >= ((j - hole) & mask);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].used = false;
    size_ -= 1;
    return true;
  }

  void clear() {
    for (Slot& s : slots_) s.used = false;
    size_ = 0;
  }

  void reserve(std::size_t n) {
    while (n * 2 > slots_.size()) grow();
  }

  [[nodiscard]] std::size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    V v{};
    bool used = false;
  };

  std::size_t slot_of(std::uint64_t a, std::uint64_t b) const {
    return static_cast<std::size_t>(mix64(a ^ mix64(b + 0x632b'e59b'd9b4'e019ull))) &
           (slots_.size() - 1);
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.resize(old.size() * 2);
    size_ = 0;
    for (const Slot& s : old) {
      if (s.used) insert(s.a, s.b, s.v);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace qx::core
