// The bounds that keep every money computation of the engine inside 64 bits.
//
// Money is stored in int64 minor units (types.h). Rather than check every addition, the engine
// bounds its inputs so that no accepted order, fill or settlement can produce a value out of
// range, and checks the few running totals that grow with the number of events (a day's
// close_profit and commission, deposits, withdrawals, the new pre_balance at settlement).
// docs/semantics.md ("Bounds") carries the argument; in short:
//
//   - a position side (plus the resting OPEN orders that could add to it) is at most
//     position_limit lots, and every price the instrument can trade or settle at is at most its
//     price ceiling, fixed at creation: ceiling = floor(kSideValueMax / (position_limit x
//     tick_value)). So a side's value, its margin (ratio <= 100%) and its fees (per-lot fee x
//     position_limit <= kSideValueMax, rate <= 100%) are each at most kSideValueMax, 2 x
//     kSideValueMax for a fee;
//   - an account holds positions or OPEN orders in at most kInstrumentsPerAccountMax instruments,
//     so its margin, frozen margin, frozen commission and position profit are each below
//     2 x 2 x 128 x 2e15 = 1.03e18;
//   - the stored running totals are each kept within kMoneyMax (checked where they grow).
// Then balance (6 terms) and available (9 terms) are below 9e18 < 2^63 without further checks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qx::core {

// The largest magnitude of a stored running total (pre_balance, deposit, withdraw, close_profit,
// commission) and of an instrument's day turnover.
inline constexpr std::int64_t kMoneyMax = 1'000'000'000'000'000'000;  // 1e18 minor units
// The largest value of one position side at the instrument's price ceiling.
inline constexpr std::int64_t kSideValueMax = 1'000'000'000'000'000;  // 1e15 minor units
// Instruments in which one account may hold positions or OPEN orders at once.
inline constexpr std::size_t kInstrumentsPerAccountMax = 128;
// The margin a fill of a side can realise into close_profit or commission is at most this much,
// so a running total within kMoneyMax - kFillMoneyMax stays within kMoneyMax after any fill.
inline constexpr std::int64_t kFillMoneyMax = 2 * kSideValueMax;

// The engine's configurable capacity (SetLimits); 0 = no limit. Orders count live orders and
// pending stops alike.
struct EngineLimits {
  std::uint32_t instruments = 0;         // listed instruments, delisted ones included
  std::uint32_t accounts = 0;            // accounts
  std::uint32_t orders = 0;              // live orders and pending stops, exchange-wide
  std::uint32_t orders_per_account = 0;  // for accounts whose own max_open_orders is 0
  std::uint32_t orders_per_level = 0;    // resting orders at one price of one side of a book
  bool operator==(const EngineLimits&) const = default;
};
// The largest limits SetLimits accepts: what the engine reserves for them stays within
// kReserveBytesMax (docs/semantics.md, "Engine limits").
inline constexpr std::uint32_t kInstrumentsLimitMax = 1'000'000;
inline constexpr std::uint32_t kAccountsLimitMax = 100'000'000;
inline constexpr std::uint32_t kOrdersLimitMax = 100'000'000;
inline constexpr std::uint64_t kReserveBytesMax = std::uint64_t{32} << 30;  // 32 GiB
// The budget per item the reservation is counted at (an upper bound of what the engine keeps).
inline constexpr std::uint64_t kInstrumentBytes = 1024;
inline constexpr std::uint64_t kAccountBytes = 256;
inline constexpr std::uint64_t kOrderBytes = 256;

// The memory limits l budget (docs/semantics.md, "Engine limits").
constexpr std::uint64_t reserve_budget(const EngineLimits& l) {
  return std::uint64_t{l.instruments} * kInstrumentBytes +
         std::uint64_t{l.accounts} * kAccountBytes + std::uint64_t{l.orders} * kOrderBytes;
}
// Whether SetLimits accepts l: each within its maximum and the budget within kReserveBytesMax.
constexpr bool limits_ok(const EngineLimits& l) {
  return l.instruments <= kInstrumentsLimitMax && l.accounts <= kAccountsLimitMax &&
         l.orders <= kOrdersLimitMax && reserve_budget(l) <= kReserveBytesMax;
}

}  // namespace qx::core
