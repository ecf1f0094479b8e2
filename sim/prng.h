// A deterministic pseudo-random number generator that we own, for simulation and workloads.
//
//   qx::sim::Prng rng(42);
//   std::int64_t price = rng.uniform(19'000, 19'100);   // inclusive, no modulo bias
//   bool cancel = rng.bernoulli(3, 100);                  // true with odds 3 in 100
//
// Design: xoshiro256** (Blackman and Vigna) for the stream, seeded by expanding one 64-bit seed
// through splitmix64, as the algorithm's authors recommend; both written here from the published
// descriptions. Why not <random>: its distributions are implementation-defined, so the same seed
// gives different numbers with libstdc++ and libc++, and simulation runs must be reproducible on
// every build (DESIGN.md section 6). Everything is integer arithmetic: no floating point.
//
// Uniform integers use Lemire's multiply-and-reject method: the 128-bit product of a raw word and
// the range size maps words onto the range, and the few words that would make some outputs more
// likely than others are rejected, so every value in [lo, hi] is exactly equally likely.
//
// Not cryptographic. Not thread-safe (one generator per thread of use, as with any value type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qx::sim {

// GNU extension; the __extension__ keyword keeps -Wpedantic quiet.
__extension__ typedef unsigned __int128 Uint128;

// One step of splitmix64: advances `state` and returns a well-mixed word.
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) {
  state += 0x9e37'79b9'7f4a'7c15ull;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58'476d'1ce4'e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d0'49bb'1331'11ebull;
  return z ^ (z >> 31);
}

class Prng {
 public:
  // Seeds the four state words from splitmix64(seed); every seed (including 0) is valid, because
  // splitmix64 never yields four zero words in a row from one state.
  explicit constexpr Prng(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (std::uint64_t& w : s_) w = splitmix64_next(sm);
  }

  // Seeds the state words directly (for tests against the reference algorithm). Must not be all
  // zero, the one state xoshiro never leaves.
  static constexpr Prng from_state(std::uint64_t a, std::uint64_t b, std::uint64_t c,
                                   std::uint64_t d) {
    Prng p(0);
    p.s_[0] = a;
    p.s_[1] = b;
    p.s_[2] = c;
    p.s_[3] = d;
    return p;
  }

  // The next raw 64-bit word (xoshiro256**).
  constexpr std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) for n >= 1, without bias.
  constexpr std::uint64_t below(std::uint64_t n) {
    Uint128 m = static_cast<Uint128>(next()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      // Words whose low product half falls below (2^64 mod n) would over-represent some outputs.
      const std::uint64_t threshold = (~n + 1) % n;
      while (low < threshold) {
        m = static_cast<Uint128>(next()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  // Uniform in [lo, hi] (both inclusive, lo <= hi), without bias; the full int64 range works.
  constexpr std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    // Two's-complement differences in unsigned arithmetic are exact for any lo <= hi.
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    const std::uint64_t offset = span == ~std::uint64_t{0} ? next() : below(span + 1);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + offset);
  }

  // Uniform in [lo, hi] for unsigned values.
  constexpr std::uint64_t uniform_u(std::uint64_t lo, std::uint64_t hi) {
    const std::uint64_t span = hi - lo;
    return lo + (span == ~std::uint64_t{0} ? next() : below(span + 1));
  }

  // True with probability numerator / denominator (0 <= numerator <= denominator, denominator > 0).
  constexpr bool bernoulli(std::uint64_t numerator, std::uint64_t denominator) {
    return below(denominator) < numerator;
  }

  // An index into `weights` chosen with probability proportional to its weight. The weights
  // must not all be zero; a zero weight is never chosen.
  constexpr std::size_t weighted(std::span<const std::uint32_t> weights) {
    std::uint64_t total = 0;
    for (std::uint32_t w : weights) total += w;
    std::uint64_t x = below(total);
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    return weights.size() - 1;  // unreachable when total > 0
  }

  // A generator for an independent sub-stream, seeded from this one's next word.
  constexpr Prng fork() { return Prng(next()); }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4]{};
};

}  // namespace qx::sim
