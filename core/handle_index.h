// An open-addressing hash index from a key to a 32-bit handle, for keys stored in the records
// the handles name (orders by id, orders by account and client order id).
//
//   HandleIndex by_id;
//   by_id.insert(key_hash(id), h, [&](OrderHandle x) { return orders[x].id == id; });
//   auto h = by_id.find(key_hash(id), [&](OrderHandle x) { return orders[x].id == id; });
//
// Design: a slot is 8 bytes, the handle and the top 32 bits of the key's hash (its tag), instead
// of a copy of the key: the caller's record already holds the key, so a lookup compares tags and
// asks the caller to confirm the key only when a tag matches, which it is about to read anyway.
// The tag also gives the slot a key hashes to (its top bits), so deletion and growth never need
// the key. Linear probing with backward-shift deletion (no tombstones); capacity is a power of
// two and the load stays at or below 3/4. The index is never iterated, so its layout cannot
// reach an output: the caller's hash must be deterministic, nothing else is required of it.
//
// Limits: at most 3 * 2^30 keys (capacity 2^32 slots); the all-ones handle marks an empty slot.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/assert.h"

namespace qx::core {

class HandleIndex {
 public:
  static constexpr std::uint32_t kEmpty = 0xFFFF'FFFFu;

  HandleIndex() { resize(kMinBits); }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

  // Grows the table so that n keys fit without a further resize (never shrinks it).
  void reserve(std::size_t n) {
    std::uint32_t bits = bits_;
    while (bits < kMaxBits && n * 4 > (std::size_t{1} << bits) * 3) bits += 1;
    if (bits != bits_) resize(bits);
  }

  // The handle whose key has hash `key_hash` and satisfies `same`, if any.
  template <class Same>
  [[nodiscard]] std::optional<std::uint32_t> find(std::uint64_t key_hash, Same&& same) const {
    std::uint32_t tag = tag_of(key_hash);
    for (std::size_t i = home(tag);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.handle == kEmpty) return std::nullopt;
      if (s.tag == tag && same(s.handle)) return s.handle;
    }
  }

  // Adds handle h under its key; returns false (and changes nothing) when `same` accepts a
  // handle already present, i.e. the key is taken.
  template <class Same>
  bool insert(std::uint64_t key_hash, std::uint32_t h, Same&& same) {
    QX_ASSERT(h != kEmpty);
    if ((size_ + 1) * 4 > slots_.size() * 3) resize(bits_ + 1);
    std::uint32_t tag = tag_of(key_hash);
    std::size_t i = home(tag);
    for (; slots_[i].handle != kEmpty; i = (i + 1) & mask_) {
      if (slots_[i].tag == tag && same(slots_[i].handle)) return false;
    }
    slots_[i] = Slot{h, tag};
    size_ += 1;
    return true;
  }

  // Removes the handle whose key has hash `key_hash` and satisfies `same`; false when absent.
  template <class Same>
  bool erase(std::uint64_t key_hash, Same&& same) {
    std::uint32_t tag = tag_of(key_hash);
    std::size_t i = home(tag);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].handle == kEmpty) return false;
      if (slots_[i].tag == tag && same(slots_[i].handle)) break;
    }
    // Backward shift: move later members of the probe run into the hole when that keeps them
    // reachable from their home slot.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask_; slots_[j].handle != kEmpty; j = (j + 1) & mask_) {
      std::size_t h = home(slots_[j].tag);
      if (((j - h) & mask_) >= ((j - hole) & mask_)) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    size_ -= 1;
    return true;
  }

 private:
  static constexpr std::uint32_t kMinBits = 4;
  static constexpr std::uint32_t kMaxBits = 32;

  struct Slot {
    std::uint32_t handle = kEmpty;
    std::uint32_t tag = 0;
  };

  static std::uint32_t tag_of(std::uint64_t key_hash) {
    return static_cast<std::uint32_t>(key_hash >> 32);
  }
  // The slot a tag hashes to: its top bits_ bits.
  std::size_t home(std::uint32_t tag) const {
    return static_cast<std::size_t>(static_cast<std::uint64_t>(tag) >> (32 - bits_));
  }

  // Allocates the new table before touching the old one, so a failed allocation (std::bad_alloc)
  // leaves the index as it was.
  void resize(std::uint32_t bits) {
    QX_ASSERT(bits <= kMaxBits);
    std::vector<Slot> fresh(std::size_t{1} << bits, Slot{});
    bits_ = bits;
    const std::size_t mask = fresh.size() - 1;
    for (const Slot& s : slots_) {
      if (s.handle == kEmpty) continue;
      std::size_t i = home(s.tag);
      while (fresh[i].handle != kEmpty) i = (i + 1) & mask;
      fresh[i] = s;
    }
    slots_.swap(fresh);
    mask_ = mask;
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
  std::uint32_t bits_ = 0;
};

}  // namespace qx::core
