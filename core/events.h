// Input events: everything that can change engine state, exactly as the sequencer journals it.
//
// The engine is a pure function of a sequence of `Event`s. Each carries a header stamped by the
// sequencer (sequence number, time, source); the engine reads time from nowhere else. Admin events
// (instruments, users, accounts, money, risk, halts, settlement) and trading events (new order,
// amend, cancel) share one stream, so every parameter that affects a decision is itself journaled.
//
// The Cap'n Proto schema in journals/schema/ mirrors these types field by field; conversion lives
// in replay/codec, never here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/limits.h"
#include "core/types.h"

namespace qx::core {

struct EventHeader {
  Seq seq{};                    // 1, 2, 3, ... with no gaps
  std::int64_t timestamp_ns{};  // sequencer time, nanoseconds since the Unix epoch
  std::uint32_t source{};       // who submitted it (session id, 0 = operator / simulator)
};

// Fees charged per fill: per_lot_minor * lots + ceil(notional_minor * rate_ppb / 1e9), each
// part computed and rounded up separately. Opening, closing history and closing today have
// separate rates (Chinese exchanges often charge close-today differently).
struct FeeSchedule {
  Money open_per_lot{};
  std::int64_t open_ppb{};
  Money close_per_lot{};
  std::int64_t close_ppb{};
  Money close_today_per_lot{};
  std::int64_t close_today_ppb{};
  bool operator==(const FeeSchedule&) const = default;
};

// Tradable parameters of an instrument, set at creation and changeable by UpdateInstrument.
struct InstrumentParams {
  // Decimal parameters in units of 1e-8 (kDecimalScale), as given in text by the operator.
  std::int64_t price_tick_e8{};  // e.g. 0.2 -> 20,000,000
  std::int64_t multiplier_e8{};  // contract size per lot; e.g. 300 -> 30,000,000,000
  std::int64_t margin_long_ppb{};
  std::int64_t margin_short_ppb{};
  FeeSchedule fees{};
  // Limit up/down around the previous settlement price; nullopt means no band.
  std::optional<std::int64_t> price_band_ppb{};
  Lots max_order_volume{};  // largest single order
  Lots position_limit{};    // largest long or short position of one account
  // The engine trading day (Engine::trading_day(): 1 until the first settlement) whose Settle
  // expires the instrument: its orders are cancelled, its positions delivered in cash at the
  // final settlement price, and it is delisted. 0: it never expires (e.g. a perpetual).
  std::uint32_t last_trading_day{};
  bool operator==(const InstrumentParams&) const = default;
};

struct CreateInstrument {
  std::string code;      // e.g. "IF2501"; at most 31 bytes, unique
  std::string exchange;  // e.g. "CFFEX"; at most 15 bytes
  InstrumentParams params;
  PriceTicks pre_settlement{};  // reference price for the band until the first settlement
};
struct UpdateInstrument {
  InstrumentId instrument{};
  InstrumentParams params;
};
struct SetInstrumentStatus {
  InstrumentId instrument{};
  InstrumentStatus status{};
};
struct CreateUser {
  std::string name;  // at most 31 bytes, unique
};
struct CreateAccount {
  UserId user{};
  std::string name;  // at most 31 bytes, unique
};
struct Deposit {
  AccountId account{};
  Money amount{};
};
struct Withdraw {
  AccountId account{};
  Money amount{};
};
// Per-account limits and switch; a disabled account may only cancel. `stp` is the account's
// self-trade prevention, used by its orders that do not choose their own.
struct SetAccountRisk {
  AccountId account{};
  std::uint32_t max_open_orders{};
  bool enabled{true};
  SelfTradePrevention stp{};
};
// Exchange-wide risk parameters.
struct SetRiskParams {
  // Forced liquidation starts when margin / balance >= this ratio (1e9 = 100%).
  std::int64_t liquidation_ratio_ppb{};
  // The insurance fund: the account that pays what a fully liquidated account still owes (its
  // negative balance), as far as its own available funds go. None: deficits stay where they are.
  std::optional<AccountId> insurance_account{};
};
struct SettlementPrice {
  InstrumentId instrument{};
  PriceTicks price{};
};
// Daily settlement. Instruments not listed settle at their last trade price (or, with no
// trade yet, at the previous settlement price).
struct Settle {
  std::vector<SettlementPrice> prices;
};

struct NewOrder {
  AccountId account{};
  InstrumentId instrument{};
  ClientOrderId client_order_id{};
  Direction direction{};
  Offset offset{};
  PriceType price_type{};
  PriceTicks price{};  // LIMIT only; ignored for MARKET and BEST
  Lots volume{};
  TimeCondition time_condition{};
  VolumeCondition volume_condition{};
  bool post_only{};
  std::optional<SelfTradePrevention> stp{};  // none: the account's (SetAccountRisk)
  // A stop or take-profit order: held out of the book until the trigger fires, then entered as
  // this order without the trigger (docs/semantics.md, "Stop orders"). LIMIT or MARKET only.
  std::optional<StopTrigger> trigger{};
  bool operator==(const NewOrder&) const = default;
};

// Identifies a live order either by the exchange's id or by the client's id within the account.
struct OrderRef {
  std::optional<OrderId> order_id;
  ClientOrderId client_order_id{};
};
struct AmendOrder {
  AccountId account{};
  OrderRef ref;
  PriceTicks new_price{};
  Lots new_volume_left{};  // remaining volume after the amendment
};
struct CancelOrder {
  AccountId account{};
  OrderRef ref;
};

// Risk between an account's own trades: every account holding a position in an instrument that
// has traded since the last settlement is checked for forced liquidation, marked at the last
// trade price. The sequencer submits it on a timer (`qx serve`: mark_interval_ms).
struct MarkToMarket {};

// The exchange's one currency: every Money in the journal (deposits, fees per lot, balances) is
// a count of 10^-decimals of it, and an instrument's tick value (tick x multiplier) must be a
// whole number of those. Accepted only before the first instrument or account exists
// (CURRENCY_FIXED after); an exchange that never sets it keeps CNY with 4 decimals.
struct SetCurrency {
  std::string code;          // 1 to 7 bytes, A-Z and 0-9, e.g. "USDT"
  std::uint32_t decimals{};  // 0 to kMoneyDecimalsMax
};

// The engine's capacity (docs/semantics.md, "Engine limits"): what it refuses past each limit,
// and the memory it reserves up front so that order entry, matching and cancels do not allocate
// until a limit is reached. Each may be set any time; a lower limit refuses new entries and keeps
// what exists. 0 means no limit (and no reservation).
struct SetLimits {
  EngineLimits limits;
};

// An instrument's trading sessions (docs/semantics.md, "Sessions and call auctions"): the daily
// schedule of its phases, in force from this event on. Phase changes happen at the first event
// whose timestamp reaches a boundary (the live server journals a MarkToMarket there).
struct SetSession {
  InstrumentId instrument{};
  SessionSchedule schedule;
};

// The start of a leadership term of a replicated exchange (docs/cluster.md): the first event a
// leader journals in its term, so the journal itself shows who led when. The epoch grows with every
// term (the leader takes the etcd revision at which it won the leadership key); a term whose epoch
// is not above the current one is refused (STALE_EPOCH) and changes nothing. It changes no
// trading state: only the engine's record of the current term (epoch() and leader()).
struct LeaderTerm {
  std::uint64_t epoch{};  // 1 or more
  std::uint32_t node{};   // the leader's node id (docs/cluster.md), 1 or more
};

using EventBody =
    std::variant<CreateInstrument, UpdateInstrument, SetInstrumentStatus, CreateUser, CreateAccount,
                 Deposit, Withdraw, SetAccountRisk, SetRiskParams, Settle, NewOrder, AmendOrder,
                 CancelOrder, MarkToMarket, SetCurrency, SetLimits, SetSession, LeaderTerm>;

struct Event {
  EventHeader header;
  EventBody body;
};

}  // namespace qx::core
