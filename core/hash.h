// A small, fast, deterministic 64-bit hash for state and effect hashing.
//
// Not cryptographic (the journal's chain hash is, and lives in replay/). It must be identical on
// every platform and build, so it is defined here over 64-bit words with explicit mixing rather
// than taken from std::hash, whose values are unspecified. Words are folded with a multiply-rotate
// round and the result passes through a multiply-xorshift finalizer, so single-bit changes
// avalanche.
#pragma once

#include <cstdint>
#include <string_view>

namespace qx::core {

inline constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

class Hasher {
 public:
  explicit Hasher(std::uint64_t seed = 0x51ed'270b'2a3f'9c41ull) : h_(seed) {}
  // One multiply-rotate round per word (cheap enough for every effect on the hot path); the
  // word count is folded in at the end so that streams of different lengths differ.
  void word(std::uint64_t w) {
    h_ ^= w * 0x87c3'7b91'1142'53d5ull;
    h_ = ((h_ << 31) | (h_ >> 33)) * 0x4cf5'ad43'2745'937full + 0x52dc'e729'da3e'd0b1ull;
    n_ += 1;
  }
  void i64(std::int64_t v) { word(static_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    word(s.size());
    std::uint64_t w = 0;
    unsigned k = 0;
    for (char c : s) {
      w |= static_cast<std::uint64_t>(static_cast<unsigned char>(c)) << (8 * k);
      if (++k == 8) {
        word(w);
        w = 0;
        k = 0;
      }
    }
    if (k != 0) word(w);
  }
  [[nodiscard]] std::uint64_t finish() const { return mix64(h_ ^ n_); }

 private:
  std::uint64_t h_;
  std::uint64_t n_ = 0;
};

}  // namespace qx::core
