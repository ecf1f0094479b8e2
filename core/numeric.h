// Checked integer arithmetic and explicit rounding.
//
// Every product that can exceed 64 bits (price * lots * tick value * rate) is computed in 128 bits
// and narrowed with a check. Rounding rules, used consistently:
//   - margins and fees round up (`mul_div_ceil`): the exchange never under-collects;
//   - pro-rata releases round down (`mul_div_floor`), and the last release takes the remainder, so
//     a frozen amount is always released exactly in full.
#pragma once

#include <cstdint>
#include <optional>

#include "core/types.h"

namespace qx::core {

__extension__ typedef __int128 i128;  // GNU extension; __extension__ silences -Wpedantic
__extension__ typedef unsigned __int128 u128;

inline constexpr std::int64_t kInt64Max = 0x7FFF'FFFF'FFFF'FFFFll;

inline std::optional<std::int64_t> narrow(i128 v) {
  if (v > static_cast<i128>(kInt64Max) || v < -static_cast<i128>(kInt64Max)) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

// n / d for n >= 0 and d > 0. When both fit in 64 bits (nearly always: a notional times a rate
// in ppb stays below 2^64 up to ~1.8e10 minor units of notional), the division is done in 64
// bits, which the compiler turns into a multiply for a constant divisor; the 128-bit library
// division is many times slower. Both paths give the same quotient.
inline i128 div_nonneg(i128 n, i128 d) {
  if ((static_cast<u128>(n) | static_cast<u128>(d)) >> 64 == 0) {
    return static_cast<i128>(static_cast<std::uint64_t>(n) / static_cast<std::uint64_t>(d));
  }
  return n / d;
}

// ceil(a * b / d) for a, b >= 0 and d > 0.
inline i128 mul_div_ceil(i128 a, i128 b, i128 d) {
  return div_nonneg(a * b + d - 1, d);
}
// floor(a * b / d) for a, b >= 0 and d > 0.
inline i128 mul_div_floor(i128 a, i128 b, i128 d) {
  return div_nonneg(a * b, d);
}

// Notional of `lots` at `price` in money: price * lots * tick value (exact, 128-bit).
inline i128 notional(PriceTicks price, Lots lots, Money tick_value) {
  return static_cast<i128>(price.value) * lots.value * tick_value.value;
}

// The share of `total` that `part` of `whole` carries, rounded down; all of it when part == whole.
inline Money pro_rata(Money total, Lots part, Lots whole) {
  if (part == whole) return total;
  return Money(static_cast<std::int64_t>(mul_div_floor(total.value, part.value, whole.value)));
}

}  // namespace qx::core
