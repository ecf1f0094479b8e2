// A pool of fixed-size records addressed by 32-bit handles, with a free list.
//
//   Pool<Order> orders;
//   std::uint32_t h = orders.allocate();  // a value-initialised record
//   orders[h].price = ...;
//   orders.release(h);                    // reset to a value-initialised record, reusable
//
// Design: records live in chunks of 1,024 that are never moved or freed while the pool lives,
// so a reference to a record stays valid across allocations and growth costs one chunk, not a
// copy of everything (a vector that doubles would, at ten million orders, copy gigabytes in one
// command and leave up to half its capacity unused). A handle is a chunk number and an offset.
// Handles are reused last-released first, so the set of live handles depends only on the
// sequence of calls.
//
// Limits: at most 2^32 - 1 records (the all-ones handle is reserved as "none" by callers).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/assert.h"

namespace qx::core {

template <class T>
class Pool {
 public:
  static constexpr std::uint32_t kChunkBits = 10;
  static constexpr std::uint32_t kChunkSize = 1u << kChunkBits;

  T& operator[](std::uint32_t h) { return chunks_[h >> kChunkBits][h & (kChunkSize - 1)]; }
  const T& operator[](std::uint32_t h) const {
    return chunks_[h >> kChunkBits][h & (kChunkSize - 1)];
  }

  // Handles ever handed out are [0, extent()); the free ones hold value-initialised records.
  [[nodiscard]] std::uint32_t extent() const { return extent_; }
  [[nodiscard]] std::size_t live() const { return extent_ - free_.size(); }

  std::uint32_t allocate() {
    if (!free_.empty()) {
      std::uint32_t h = free_.back();
      free_.pop_back();
      return h;
    }
    QX_ASSERT(extent_ < 0xFFFF'FFFFu);
    if ((extent_ >> kChunkBits) == chunks_.size()) {
      chunks_.push_back(std::make_unique<T[]>(kChunkSize));
    }
    return extent_++;
  }

  void release(std::uint32_t h) {
    QX_ASSERT(h < extent_);
    (*this)[h] = T{};
    free_.push_back(h);
  }

  // Makes room for n live records without further allocation.
  void reserve(std::size_t n) {
    chunks_.reserve((n + kChunkSize - 1) / kChunkSize);
    free_.reserve(n);
  }

  // Makes room for n live records and allocates their chunks now, so that allocate() and
  // release() do not allocate until n records are live at once.
  void preallocate(std::size_t n) {
    reserve(n);
    while (chunks_.size() * kChunkSize < n) chunks_.push_back(std::make_unique<T[]>(kChunkSize));
  }

  [[nodiscard]] std::size_t bytes() const {
    return chunks_.size() * kChunkSize * sizeof(T) + chunks_.capacity() * sizeof(chunks_[0]) +
           free_.capacity() * sizeof(std::uint32_t);
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::vector<std::uint32_t> free_;
  std::uint32_t extent_ = 0;
};

}  // namespace qx::core
