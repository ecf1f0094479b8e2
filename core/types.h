// Core value types of the engine: strong ids, quantities and the enums of the domain.
//
// Every quantity is an integer with its unit in its name:
//   - prices are counts of the instrument's price tick (`PriceTicks`);
//   - volumes are counts of the instrument's lot (`Lots`);
//   - money is an integer count of minor units of the exchange's one currency, 10^decimals
//     minor units per currency unit (SetCurrency; by default CNY with 4 decimals, kMoneyScale);
//   - rates (margin ratios, fees by notional, price bands) are parts per billion (`kPpb`).
//
// Example: IF2501 with a 0.2 tick and multiplier 300 has a tick value of 60 CNY per lot, so
// `tick_value_minor = 60 * kMoneyScale`. One lot at 3800.0 is 19000 ticks; its notional is
// 19000 * 600000 = 11,400,000,000 minor units (1,140,000.00 CNY), and a 10% margin ratio
// (100,000,000 ppb) freezes 114,000.00 CNY.
//
// Enums have explicit values and 0 means invalid, so a zeroed field never passes for a real value.
// Reject and cancel reason codes are stable: they are journaled in effects and shown to clients.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace qx::core {

// Minor money units per currency unit of an exchange that never set its currency (CNY, 4
// decimal places). An exchange that did (SetCurrency) has its own: Engine::money_scale().
inline constexpr std::int64_t kMoneyScale = 10'000;
inline constexpr std::uint32_t kMoneyDecimalsDefault = 4;
// The most decimals a currency may have: enough for Binance USD-M's finest tick values (a
// 0.0000001 USDT tick on a 1-unit lot is 10 minor units at 8 decimals; docs/semantics.md).
inline constexpr std::uint32_t kMoneyDecimalsMax = 8;
// 10^decimals, for decimals <= 18.
constexpr std::int64_t pow10(std::uint32_t decimals) {
  std::int64_t v = 1;
  for (std::uint32_t i = 0; i < decimals; ++i) v *= 10;
  return v;
}
// Parts per billion: the unit of every rate.
inline constexpr std::int64_t kPpb = 1'000'000'000;
// Fixed-point scale of decimal instrument parameters given as text (price tick, multiplier).
inline constexpr std::int64_t kDecimalScale = 100'000'000;

// A strongly typed integer: arithmetic only with its own kind, comparison, explicit access.
template <class Tag, class Rep = std::int64_t>
struct Quantity {
  Rep value{};
  constexpr Quantity() = default;
  constexpr explicit Quantity(Rep v) : value(v) {}
  constexpr auto operator<=>(const Quantity&) const = default;
  constexpr Quantity operator+(Quantity o) const { return Quantity(value + o.value); }
  constexpr Quantity operator-(Quantity o) const { return Quantity(value - o.value); }
  constexpr Quantity& operator+=(Quantity o) {
    value += o.value;
    return *this;
  }
  constexpr Quantity& operator-=(Quantity o) {
    value -= o.value;
    return *this;
  }
  constexpr Quantity operator-() const { return Quantity(-value); }
};

struct PriceTag {};
struct LotsTag {};
struct MoneyTag {};
using PriceTicks = Quantity<PriceTag>;
using Lots = Quantity<LotsTag>;
using Money = Quantity<MoneyTag>;

// Identifiers. Instrument and account ids are dense indexes assigned by the engine in creation
// order; order and trade ids are counters in state; client order ids are chosen by the client.
enum class InstrumentId : std::uint32_t {};
enum class AccountId : std::uint32_t {};
enum class UserId : std::uint32_t {};
enum class OrderId : std::uint64_t {};
enum class TradeId : std::uint64_t {};
enum class ClientOrderId : std::uint64_t {};
enum class Seq : std::uint64_t {};

template <class E>
constexpr auto raw(E e) {
  return static_cast<std::underlying_type_t<E>>(e);
}

enum class Direction : std::uint8_t { kBuy = 1, kSell = 2 };
enum class Offset : std::uint8_t { kOpen = 1, kClose = 2, kCloseToday = 3, kCloseYesterday = 4 };
// LIMIT rests at its price; MARKET takes the book within the band (remainder cancelled);
// BEST is a limit at the best opposite price at arrival.
enum class PriceType : std::uint8_t { kLimit = 1, kMarket = 2, kBest = 3 };
// GFD expires at settlement; GTC survives it; IOC (FAK) cancels what does not fill at once.
enum class TimeCondition : std::uint8_t { kGfd = 1, kGtc = 2, kIoc = 3 };
// ALL with IOC is FOK: fill the whole volume at once or nothing.
enum class VolumeCondition : std::uint8_t { kAny = 1, kAll = 2 };
enum class InstrumentStatus : std::uint8_t { kTrading = 1, kHalted = 2, kDelisted = 3 };
enum class OrderStatus : std::uint8_t { kAlive = 1, kFinished = 2 };

// Self-trade prevention: what happens when an incoming order would trade with a resting order of
// its own account (scope ACCOUNT) or of any account of the same user (scope USER). The incoming
// order's setting decides (docs/semantics.md, "Self-trade prevention").
enum class StpMode : std::uint8_t {
  kCancelNewest = 1,  // the incoming order's remainder is cancelled; the resting order stays
  kCancelOldest = 2,  // the resting order is cancelled and matching goes on
  kCancelBoth = 3,    // both
};
enum class StpScope : std::uint8_t { kAccount = 1, kUser = 2 };
struct SelfTradePrevention {
  StpMode mode = StpMode::kCancelNewest;
  StpScope scope = StpScope::kAccount;
  bool operator==(const SelfTradePrevention&) const = default;
};
// Stop and take-profit orders (docs/semantics.md, "Stop orders"): an order held out of the book
// until a reference price reaches its trigger price, then entered as LIMIT or MARKET. A STOP buys
// when the price rises to the trigger (sells when it falls to it); a TAKE_PROFIT buys when it
// falls to it (sells when it rises to it).
enum class TriggerKind : std::uint8_t { kStop = 1, kTakeProfit = 2 };
// LAST: the instrument's last trade price (none before the day's first trade); MARK: the price
// positions are marked at (the last trade price, else the previous settlement price).
enum class TriggerSource : std::uint8_t { kLast = 1, kMark = 2 };
struct StopTrigger {
  TriggerKind kind = TriggerKind::kStop;
  TriggerSource source = TriggerSource::kLast;
  PriceTicks price{};
  bool operator==(const StopTrigger&) const = default;
};
constexpr bool trigger_ok(const StopTrigger& t) {
  const auto kind = static_cast<unsigned>(t.kind);
  const auto source = static_cast<unsigned>(t.source);
  return kind >= 1 && kind <= 2 && source >= 1 && source <= 2;
}
// Trading sessions (docs/semantics.md, "Sessions and call auctions"). What an instrument takes in
// each phase: CONTINUOUS everything; AUCTION (a call auction's order entry) LIMIT GFD/GTC orders,
// which rest without matching, amendments and cancels, and the book uncrosses at one price when the
// phase ends; PRE_OPEN nothing (the book is frozen, e.g. between an opening call and the open);
// BREAK and CLOSED cancels only.
enum class TradingPhase : std::uint8_t {
  kContinuous = 1,
  kAuction = 2,
  kPreOpen = 3,
  kBreak = 4,
  kClosed = 5,
};
constexpr bool phase_ok(TradingPhase p) {
  const auto v = static_cast<unsigned>(p);
  return v >= 1 && v <= 5;
}
// From `start_s` seconds after the exchange's local midnight, until the next entry's start (the
// last entry runs past midnight until the first one's start the next day).
struct SessionEntry {
  std::uint32_t start_s{};
  TradingPhase phase{};
  bool operator==(const SessionEntry&) const = default;
};
inline constexpr std::size_t kSessionEntriesMax = 16;
inline constexpr std::int64_t kNoPhaseChange = INT64_MAX;  // a schedule without entries
inline constexpr std::int32_t kUtcOffsetMax = 18 * 3600;
// An instrument's daily schedule; local time = UTC + utc_offset_s. No entries: always CONTINUOUS.
struct SessionSchedule {
  std::int32_t utc_offset_s{};
  std::vector<SessionEntry> entries;  // strictly increasing start_s, each below 86,400
  bool operator==(const SessionSchedule&) const = default;
};

// Whether the trigger fires when the reference price is at or above its price (else at or below).
constexpr bool fires_rising(Direction d, TriggerKind k) {
  return (d == Direction::kBuy) == (k == TriggerKind::kStop);
}

constexpr bool stp_ok(SelfTradePrevention s) {
  const auto mode = static_cast<unsigned>(s.mode);
  const auto scope = static_cast<unsigned>(s.scope);
  return mode >= 1 && mode <= 3 && scope >= 1 && scope <= 2;
}

// Stable reject codes, grouped by subsystem (never renumber; only append).
enum class RejectReason : std::uint16_t {
  // 1xx: the request itself.
  kInvalidVolume = 101,
  kInvalidPrice = 102,
  kInvalidCombination = 103,  // e.g. FOK without IOC, post-only with IOC or MARKET
  kDuplicateClientOrderId = 104,
  kNumericOverflow = 105,
  kInvalidParameter = 106,  // admin parameters out of range
  kDuplicateName = 107,     // instrument code or user name already exists
  kNameTooLong = 108,
  // 2xx: instrument and market state.
  kUnknownInstrument = 201,
  kInstrumentHalted = 202,
  kInstrumentDelisted = 203,
  // 204 (PRICE_NOT_TICK_MULTIPLE) is retired: core prices are ticks by construction, and front
  // ends refuse an off-tick decimal price before it is journaled.
  kPriceOutsideBand = 205,
  kNoLiquidity = 206,  // MARKET or BEST with an empty opposite side
  kPostOnlyWouldCross = 207,
  kFokUnfillable = 208,
  kCurrencyFixed = 209,     // SetCurrency after the first instrument or account exists
  kStopWouldTrigger = 210,  // a stop whose trigger condition already holds at placement
  kPriceLevelFull = 211,    // the order would rest at a price holding orders_per_level orders
  kInstrumentLimit = 212,   // the exchange lists its maximum number of instruments (SetLimits)
  kMarketClosed = 213,      // the instrument's trading phase takes no such request now
  kAuctionOrderType = 214,  // in a call auction only LIMIT GFD / GTC orders, never post-only
  kStaleEpoch = 215,        // a LeaderTerm whose epoch is not above the current term's
  // 3xx: account and risk.
  kUnknownAccount = 301,
  kUnknownUser = 302,
  kAccountDisabled = 303,
  kInsufficientFunds = 304,
  kInsufficientPosition = 305,
  kPositionLimitExceeded = 306,
  kOrderVolumeLimitExceeded = 307,
  kTooManyOpenOrders = 308,
  kWithdrawExceedsAvailable = 309,
  kTooManyInstruments = 310,  // an account may hold positions or OPEN orders in 128 at most
  kAccountLimit = 311,        // the exchange has its maximum number of accounts (SetLimits)
  kOrderLimit = 312,  // the exchange holds its maximum number of live orders and stops (SetLimits)
  // 4xx: order references.
  kUnknownOrder = 401,
  kOrderNotOwned = 402,
  kAmendNoChange = 403,
  kStopNotAmendable = 404,  // a pending stop order can be cancelled, not amended
};

// Why an order left the book (or never rested).
enum class CancelReason : std::uint16_t {
  kUserRequest = 1,
  kIocRemainder = 2,  // IOC / MARKET / BEST-IOC volume that found no counterparty
  kSelfTradePrevention = 3,
  kExpired = 4,            // GFD order at settlement
  kForcedLiquidation = 5,  // an account's orders cancelled before liquidating it
  kInstrumentDelisted = 6,
  // 7 (BAND_REMAINDER) is retired: resting orders are always inside the band (a moved band
  // cancels those it leaves outside), so a MARKET order's remainder is always IOC_REMAINDER.
  kOutsideBand = 8,         // a resting order left outside a moved price band
  kMoneyLimit = 9,          // a fill would take an account's day totals past the money bound
  kInstrumentExpired = 10,  // the instrument's last trading day was settled
};

const char* to_string(RejectReason r);
const char* to_string(CancelReason r);
const char* to_string(Direction d);
const char* to_string(Offset o);
const char* to_string(PriceType p);
const char* to_string(TimeCondition t);
const char* to_string(VolumeCondition v);
const char* to_string(InstrumentStatus s);
const char* to_string(StpMode m);
const char* to_string(StpScope s);
const char* to_string(TriggerKind k);
const char* to_string(TriggerSource s);
const char* to_string(TradingPhase p);

}  // namespace qx::core
