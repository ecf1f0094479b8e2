// rapidcheck generator of random but meaningful engine journals for the engine properties.
//
//   qx::property::Scenario s = *qx::property::gen_scenario({.risk_params = true});
//   for (const qx::core::Event& e : qx::property::to_events(s)) engine.apply(e, effects);
//
// A scenario is a setup (1-3 instruments shaped like IF, cu and rebar with varied fees by lot
// and by notional, margins, bands and limits; 2-5 accounts, some thin so that
// INSUFFICIENT_FUNDS happens) followed by 1-200 commands: orders of every price type, time and
// volume condition and offset, post-only; amends, cancels, deposits, withdrawals, settlements
// with and without prices, halts and resumes (rarely a delisting), account risk settings,
// MarkToMarket and, when asked, SetRiskParams for forced liquidation (most often at the end of the
// setup; ratios from next to nothing to 100x, mostly with an insurance fund; a punitive
// close-today fee drives liquidated accounts below zero). The commands are biased towards
// collisions: prices in a narrow tick range around the reference so that orders cross, client
// order ids from a pool of six so that duplicates occur, now and then an unknown account or
// instrument, a zero volume, a far or overflowing price.
//
// Design: commands are generated without state (so rapidcheck can drop any of them when
// shrinking) and then "steered" in order with the reference model's view of the state so far:
// most closes pick a position somebody holds, most amends and cancels a live order (by client
// id or order id, sometimes from the wrong account). The model is only a source of plausible
// targets here; were it wrong, a command would merely miss. The command count grows with
// rapidcheck's size, so early cases are short.
#pragma once

#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/events.h"
#include "core/numeric.h"
#include "core/types.h"
#include "tests/property/model.h"
#include "tests/property/model_compare.h"
#include "tests/property/model_steer.h"

namespace qx::property {

struct GenOptions {
  bool risk_params = false;  // include SetRiskParams (forced liquidation) among the commands
  bool sessions = false;     // every instrument alternates call auctions and continuous trading
  bool time_jumps = false;   // the clock jumps now and then (set per scenario by gen_scenario)
};

struct Scenario {
  std::vector<core::EventBody> events;  // setup then commands, applied with seq 1, 2, ...
  std::size_t setup_events = 0;
  // Each event's timestamp; empty: event_time_ns(index). With sessions the clock sometimes
  // jumps hours or days ahead, or steps back.
  std::vector<std::int64_t> times_ns;
};

// What the command generators need to know of the setup.
struct InstrumentShape {
  std::int64_t ref_ticks = 0;  // the initial previous settlement price
  std::int64_t max_order_volume = 0;
  std::int64_t price_max = 0;  // the price ceiling (docs/semantics.md, "Bounds")
};
struct World {
  std::vector<InstrumentShape> instruments;
  std::uint32_t accounts = 0;
};

// Event i (from 0) is stamped one second after event i - 1; the first at 2025-01-02 01:30:01 UTC
// (09:30:01 in UTC+8), so a scenario spans a few minutes and session schedules built around
// kScenarioStartS change phase while it runs.
inline constexpr std::int64_t kScenarioStartNs = 1'735'781'400'000'000'000;
inline constexpr std::uint32_t kScenarioStartS = 5'400;  // its UTC time of day, seconds
inline std::int64_t event_time_ns(std::size_t index) {
  return kScenarioStartNs + static_cast<std::int64_t>(index + 1) * 1'000'000'000;
}

inline std::vector<core::Event> to_events(const Scenario& s) {
  std::vector<core::Event> out;
  out.reserve(s.events.size());
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    const std::int64_t t = s.times_ns.size() == s.events.size() ? s.times_ns[i] : event_time_ns(i);
    out.push_back(core::Event{core::EventHeader{core::Seq(i + 1), t, 0}, s.events[i]});
  }
  return out;
}

namespace detail {

inline constexpr std::int64_t kCny = core::kMoneyScale;

inline rc::Gen<core::FeeSchedule> gen_fees() {
  constexpr auto schedule = fee_schedule;
  // A punitive close-today fee (weighted up): closing needs no funds, so liquidating a position
  // opened the same day can leave a leveraged account below zero (the insurance fund pays).
  return rc::gen::weightedElement<core::FeeSchedule>({
      {1, schedule(0, 23'010, 0, 23'010, 0, 345'000)},             // IF: dear close-today
      {1, schedule(0, 50'000, 0, 50'000, 0, 50'000)},              // cu: by notional
      {1, schedule(3 * kCny, 0, 3 * kCny, 0, 6 * kCny, 0)},        // per lot
      {1, schedule(kCny, 10'000, kCny, 10'000, 0, 0)},             // mixed, free close-today
      {1, schedule(0, 0, 0, 0, 0, 0)},                             // free
      {1, schedule(12'345, 33'333, 5'432, 77'777, 1, 999'999)},    // odd numbers that round
      {1, schedule(0, 50'000'000, 0, 50'000'000, 0, 50'000'000)},  // 5% of notional
      {3, schedule(0, 10'000, 0, 10'000, 0, 1'000'000'000)},       // 100% to close today
  });
}

// One instrument: IF-like, cu-like or rebar-like, with varied fees, margins, band and limits.
// `money_scale`: minor units per currency unit of the scenario's currency.
inline rc::Gen<std::pair<core::CreateInstrument, InstrumentShape>> gen_instrument(
    int index, std::int64_t money_scale) {
  return rc::gen::exec([index, money_scale] {
    struct Kind {
      std::int64_t tick_e8, multiplier_e8, ref_ticks;
    };
    // "huge" has a tick value of 1e11 minor units, so its price ceiling (1e15 / (limit x tick
    // value)) is a few ticks above its reference price and its notionals reach the money bounds.
    const Kind kind = *rc::gen::weightedElement<Kind>(
        {{4, Kind{20'000'000, 30'000'000'000, 19'000}},         // IF
         {4, Kind{1'000'000'000, 500'000'000, 7'000}},          // cu
         {4, Kind{100'000'000, 1'000'000'000, 3'500}},          // rebar
         {1, Kind{100'000'000, 1'000'000'000'000'000, 900}}});  // huge
    const bool huge = kind.ref_ticks == 900;
    core::InstrumentParams p;
    p.price_tick_e8 = kind.tick_e8;
    p.multiplier_e8 = kind.multiplier_e8;
    p.margin_long_ppb =
        *rc::gen::element<std::int64_t>(50'000'000, 100'000'000, 150'000'000, 1'000'000'000);
    p.margin_short_ppb =
        *rc::gen::element<std::int64_t>(50'000'000, 100'000'000, 120'000'000, 1'000'000'000);
    p.fees = *gen_fees();
    // Bands of 0.1% and 0.2% are a few ticks wide, so band rejects and MARKET capping happen.
    p.price_band_ppb = *rc::gen::element<std::optional<std::int64_t>>(std::nullopt, 1'000'000,
                                                                      2'000'000, 50'000'000);
    p.max_order_volume = core::Lots(*rc::gen::element<std::int64_t>(5, 10, 50));
    p.position_limit = core::Lots(huge ? *rc::gen::element<std::int64_t>(8, 10, 11)
                                       : *rc::gen::element<std::int64_t>(8, 20, 1'000));
    // Some expire at the first or second settlement (their positions are delivered).
    p.last_trading_day = *rc::gen::weightedElement<std::uint32_t>({{6, 0}, {2, 1}, {1, 2}});
    core::CreateInstrument c{"I" + std::to_string(index), "TEST", p,
                             core::PriceTicks(kind.ref_ticks)};
    const std::int64_t tick_value =
        static_cast<std::int64_t>(static_cast<core::i128>(kind.tick_e8) * kind.multiplier_e8 *
                                  money_scale / (core::i128{100'000'000} * 100'000'000));
    // 0 when the instrument cannot be listed at this scale (the engine refuses it).
    const std::int64_t price_max =
        tick_value == 0 ? 0 : 1'000'000'000'000'000 / (p.position_limit.value * tick_value);
    return std::make_pair(c, InstrumentShape{kind.ref_ticks, p.max_order_volume.value, price_max});
  });
}

// A session schedule whose boundaries fall within a scenario: entries from about `from_s` seconds
// after its start (local time, for one of three UTC offsets) a few seconds apart, phases biased
// towards call auctions and continuous trading; now and then one SetSession refuses (unsorted,
// past midnight, an undefined phase, an offset past 18 h), or none at all (back to continuous).
inline rc::Gen<core::SessionSchedule> gen_session(std::uint32_t from_s, bool calls_only = false) {
  return rc::gen::exec([from_s, calls_only] {
    core::SessionSchedule s;
    s.utc_offset_s = *rc::gen::element<std::int32_t>(0, 8 * 3600, -5 * 3600);
    const std::uint32_t start =
        (kScenarioStartS + 86'400 + static_cast<std::uint32_t>(s.utc_offset_s)) % 86'400;
    // Mostly calls and continuous trading in turn from a call already under way, else any
    // phases from a few seconds in.
    const bool calls = calls_only || *rc::gen::weightedElement<bool>({{3, true}, {2, false}});
    const int n = *rc::gen::inRange(calls ? 2 : 0, calls_only ? 17 : 7);
    std::uint32_t at =
        start + from_s + 86'400 - 5 + *rc::gen::inRange<std::uint32_t>(calls ? 0 : 5, 10);
    for (int i = 0; i < n; ++i) {
      const auto phase =
          calls
              ? (i % 2 == 0 ? core::TradingPhase::kAuction : core::TradingPhase::kContinuous)
              : *rc::gen::weightedElement<core::TradingPhase>({{5, core::TradingPhase::kAuction},
                                                               {5, core::TradingPhase::kContinuous},
                                                               {1, core::TradingPhase::kPreOpen},
                                                               {1, core::TradingPhase::kBreak},
                                                               {1, core::TradingPhase::kClosed}});
      s.entries.push_back({at % 86'400, phase});
      at += *rc::gen::inRange<std::uint32_t>(calls ? 3 : 5, calls ? 15 : 40);
    }
    // Entries must be increasing: one that wrapped past midnight moves to the front.
    std::sort(s.entries.begin(), s.entries.end(),
              [](const auto& x, const auto& y) { return x.start_s < y.start_s; });
    if (calls_only) return s;
    spoil_schedule(s, *rc::gen::weightedElement<int>({{12, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}}));
    return s;
  });
}

// Engine limits: mostly small enough to be reached, rarely past a maximum or the memory budget
// (INVALID_PARAMETER).
inline rc::Gen<core::EngineLimits> gen_limits() {
  return rc::gen::exec([] {
    core::EngineLimits l;
    l.instruments = *rc::gen::element<std::uint32_t>(0, 0, 2, 3);
    l.accounts = *rc::gen::element<std::uint32_t>(0, 0, 3, 4);
    l.orders = *rc::gen::element<std::uint32_t>(0, 0, 4, 12, 40);
    l.orders_per_account = *rc::gen::element<std::uint32_t>(0, 0, 1, 3);
    l.orders_per_level = *rc::gen::element<std::uint32_t>(0, 0, 1, 2);
    switch (*rc::gen::weightedElement<int>({{30, 0}, {1, 1}, {1, 2}})) {
      case 1: l.orders = 100'000'001; break;              // above the maximum
      case 2: l.accounts = l.orders = 80'000'000; break;  // over the 32 GiB budget
      default: break;
    }
    return l;
  });
}

// Self-trade prevention: every mode and scope, rarely an undefined one (INVALID_PARAMETER).
inline rc::Gen<core::SelfTradePrevention> gen_stp() {
  return rc::gen::exec([] {
    core::SelfTradePrevention s;
    s.mode = *rc::gen::weightedElement<core::StpMode>({{3, core::StpMode::kCancelNewest},
                                                       {3, core::StpMode::kCancelOldest},
                                                       {3, core::StpMode::kCancelBoth},
                                                       {1, core::StpMode{0}}});
    s.scope = *rc::gen::weightedElement<core::StpScope>(
        {{4, core::StpScope::kAccount}, {4, core::StpScope::kUser}, {1, core::StpScope{3}}});
    return s;
  });
}

// Mostly a valid index, now and then one past the end (unknown).
inline rc::Gen<std::uint32_t> gen_index(std::uint32_t count) {
  return rc::gen::weightedOneOf<std::uint32_t>(
      {{80, rc::gen::inRange<std::uint32_t>(0, count)}, {1, rc::gen::just(count)}});
}

inline rc::Gen<std::int64_t> gen_price(std::int64_t ref, std::int64_t price_max) {
  return rc::gen::weightedOneOf<std::int64_t>({
      {2, rc::gen::map(rc::gen::inRange<std::int64_t>(-2, 2),
                       [price_max](std::int64_t d) { return price_max + d; })},
      {88, rc::gen::map(rc::gen::inRange<std::int64_t>(-4, 5),
                        [ref](std::int64_t d) { return ref + d; })},
      {8, rc::gen::map(rc::gen::inRange<std::int64_t>(5, ref / 40),
                       [ref](std::int64_t d) { return ref + (d % 2 == 0 ? d : -d); })},
      {3, rc::gen::element<std::int64_t>(0, -5)},
      {1, rc::gen::just<std::int64_t>(std::int64_t{1} << 61)},  // notional overflows
  });
}

inline rc::Gen<std::int64_t> gen_volume(std::int64_t max_order_volume) {
  return rc::gen::weightedOneOf<std::int64_t>({
      {80, rc::gen::inRange<std::int64_t>(1, 5)},
      {15, rc::gen::inRange<std::int64_t>(1, max_order_volume + 3)},
      {2, rc::gen::element<std::int64_t>(0, -1)},
  });
}

inline rc::Gen<core::OrderRef> gen_ref() {
  return rc::gen::weightedOneOf<core::OrderRef>({
      {3, rc::gen::map(rc::gen::inRange<std::uint64_t>(1, 16),
                       [](std::uint64_t id) {
                         return core::OrderRef{core::OrderId(id), core::ClientOrderId(0)};
                       })},
      {7, rc::gen::map(rc::gen::inRange<std::uint64_t>(0, 7),
                       [](std::uint64_t c) {
                         return core::OrderRef{std::nullopt, core::ClientOrderId(c)};
                       })},
  });
}

inline rc::Gen<core::EventBody> gen_new_order(const World& w) {
  return rc::gen::exec([w] {
    core::NewOrder o;
    o.account = core::AccountId(*gen_index(w.accounts));
    std::uint32_t ins = *gen_index(static_cast<std::uint32_t>(w.instruments.size()));
    o.instrument = core::InstrumentId(ins);
    const InstrumentShape& shape =
        w.instruments[std::min<std::size_t>(ins, w.instruments.size() - 1)];
    o.client_order_id = core::ClientOrderId(*rc::gen::weightedElement<std::uint64_t>(
        {{3, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}, {1, 6}}));
    o.direction = *rc::gen::element(core::Direction::kBuy, core::Direction::kSell);
    o.offset = *rc::gen::weightedElement<core::Offset>({{14, core::Offset::kOpen},
                                                        {4, core::Offset::kClose},
                                                        {1, core::Offset::kCloseToday},
                                                        {1, core::Offset::kCloseYesterday}});
    o.price_type = *rc::gen::weightedElement<core::PriceType>({{15, core::PriceType::kLimit},
                                                               {1, core::PriceType::kMarket},
                                                               {1, core::PriceType::kBest}});
    o.price = core::PriceTicks(*gen_price(shape.ref_ticks, shape.price_max));
    o.volume = core::Lots(*gen_volume(shape.max_order_volume));
    o.volume_condition = *rc::gen::weightedElement<core::VolumeCondition>(
        {{9, core::VolumeCondition::kAny}, {1, core::VolumeCondition::kAll}});
    // FOK mostly comes with IOC, as clients send it; the odd GFD one is an invalid combination.
    const bool fok = o.volume_condition == core::VolumeCondition::kAll;
    o.time_condition = *rc::gen::weightedElement<core::TimeCondition>(
        {{fok ? 1u : 9u, core::TimeCondition::kGfd},
         {fok ? 0u : 7u, core::TimeCondition::kGtc},
         {fok ? 8u : 4u, core::TimeCondition::kIoc}});
    o.post_only = *rc::gen::weightedElement<bool>({{14, false}, {1, true}});
    // Now and then the order's own self-trade prevention instead of the account's.
    if (*rc::gen::weightedElement<bool>({{5, false}, {1, true}})) o.stp = *gen_stp();
    // Now and then a stop or take-profit, on the last price or the mark, its trigger near the
    // reference price (so that trades and settlements reach it), rarely an undefined kind or
    // source.
    if (*rc::gen::weightedElement<bool>({{4, false}, {1, true}})) {
      core::StopTrigger t;
      t.kind = *rc::gen::weightedElement<core::TriggerKind>({{6, core::TriggerKind::kStop},
                                                             {6, core::TriggerKind::kTakeProfit},
                                                             {1, core::TriggerKind{3}}});
      t.source = *rc::gen::weightedElement<core::TriggerSource>({{6, core::TriggerSource::kLast},
                                                                 {6, core::TriggerSource::kMark},
                                                                 {1, core::TriggerSource{0}}});
      t.price = core::PriceTicks(*gen_price(shape.ref_ticks, shape.price_max));
      o.trigger = t;
      o.price_type = *rc::gen::weightedElement<core::PriceType>({{6, core::PriceType::kLimit},
                                                                 {6, core::PriceType::kMarket},
                                                                 {1, core::PriceType::kBest}});
    }
    // Rarely an enum value that is not defined (INVALID_PARAMETER).
    switch (*rc::gen::weightedElement<int>({{100, 0}, {1, 1}, {1, 2}, {1, 3}})) {
      case 1: o.direction = core::Direction{0}; break;
      case 2: o.offset = core::Offset{5}; break;
      case 3: o.time_condition = core::TimeCondition{4}; break;
      default: break;
    }
    return core::EventBody(o);
  });
}

// A command before it is steered (see steer()).
struct Command {
  core::EventBody body;
  // Steered closes pick a held position, steered amends and cancels a live order: the
  // `pick`-th one (modulo their number) in the reference model's state at that point. Steered
  // withdrawals take all, all but a tenth, or one more than the account's available funds.
  bool steered = false;
  std::uint32_t pick = 0;
  bool by_order_id = false;      // amends and cancels: refer by order id, not client id
  bool foreign = false;          // ... from another account (ORDER_NOT_OWNED)
  std::int64_t price_delta = 0;  // amends: new price = the order's price + delta
  bool relative_volume = false;  // amends: new volume = the order's volume left + delta
  std::int64_t volume_delta = 0;
  bool cross = false;  // amends: new price = the best opposite price (so the order trades)
  // Time since the previous event: one second, or (with sessions) a jump.
  std::int64_t gap_ns = 1'000'000'000;
};

inline rc::Gen<Command> gen_reference(core::EventBody body) {
  return rc::gen::exec([body] {
    Command c{body};
    c.steered = *rc::gen::weightedElement<bool>({{1, false}, {4, true}});
    c.pick = *rc::gen::inRange<std::uint32_t>(0, 1'000);
    c.by_order_id = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    c.foreign = *rc::gen::weightedElement<bool>({{15, false}, {1, true}});
    c.price_delta = *rc::gen::weightedOneOf<std::int64_t>(
        {{1, rc::gen::just<std::int64_t>(0)}, {2, rc::gen::inRange<std::int64_t>(-3, 4)}});
    c.relative_volume = *rc::gen::element(false, true);
    c.volume_delta = *rc::gen::inRange<std::int64_t>(-2, 2);
    c.cross = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    return c;
  });
}

inline rc::Gen<Command> gen_amend(const World& w) {
  return rc::gen::exec([w] {
    core::AmendOrder a;
    a.account = core::AccountId(*rc::gen::inRange<std::uint32_t>(0, w.accounts));
    a.ref = *gen_ref();
    const InstrumentShape& shape = *rc::gen::elementOf(w.instruments);
    a.new_price = core::PriceTicks(*gen_price(shape.ref_ticks, shape.price_max));
    a.new_volume_left = core::Lots(*gen_volume(shape.max_order_volume));
    return *gen_reference(a);
  });
}

inline rc::Gen<Command> gen_cancel(const World& w) {
  return rc::gen::exec([w] {
    core::CancelOrder c;
    c.account = core::AccountId(*rc::gen::inRange<std::uint32_t>(0, w.accounts));
    c.ref = *gen_ref();
    return *gen_reference(c);
  });
}

inline rc::Gen<core::Money> gen_money() {
  return rc::gen::weightedOneOf<core::Money>({
      {3, rc::gen::map(rc::gen::inRange<std::int64_t>(1'000, 300'000),
                       [](std::int64_t cny) { return core::Money(cny * kCny); })},
      {1, rc::gen::map(rc::gen::inRange<std::int64_t>(1, 5'000'000),
                       [](std::int64_t cny) { return core::Money(cny * kCny + 1); })},
      // Near the money bound of 1e18 minor units: a second such deposit passes it.
      {1, rc::gen::map(rc::gen::inRange<std::int64_t>(1, 1'001),
                       [](std::int64_t k) { return core::Money(k * 1'000'000'000'000'000); })},
  });
}

// Forced liquidation: ratios spread over the orders of magnitude that margin / balance takes in
// these scenarios (a lot or two in a rich account is 0.1%-5%, in a thin one 5%-100%), from next
// to nothing (every account with a position is at risk) to 100x (only an account at or below
// zero is); rarely an invalid ratio. Three in four name an insurance fund, rarely an unknown
// account.
inline rc::Gen<core::SetRiskParams> gen_risk_params(const World& w) {
  return rc::gen::exec([w] {
    const std::int64_t ratio = *rc::gen::weightedOneOf<std::int64_t>(
        {{1, rc::gen::inRange<std::int64_t>(1, 1'000'000)},
         {3, rc::gen::inRange<std::int64_t>(1'000'000, 10'000'000)},
         {3, rc::gen::inRange<std::int64_t>(10'000'000, 100'000'000)},
         {3, rc::gen::inRange<std::int64_t>(100'000'000, 1'200'000'001)},
         {1, rc::gen::inRange<std::int64_t>(1'200'000'001, 100'000'000'001)},
         {1, rc::gen::element<std::int64_t>(100'000'000'000, 100'000'000'001, 0, -1)}});
    std::optional<core::AccountId> fund;
    if (*rc::gen::weightedElement<bool>({{1, false}, {3, true}})) {
      fund = core::AccountId(*gen_index(w.accounts));
    }
    return core::SetRiskParams{ratio, fund};
  });
}

inline rc::Gen<core::EventBody> gen_admin(const World& w, const GenOptions& opt) {
  auto accounts = rc::gen::inRange<std::uint32_t>(0, w.accounts);
  auto instruments =
      rc::gen::inRange<std::uint32_t>(0, static_cast<std::uint32_t>(w.instruments.size()));
  rc::Gen<core::EventBody> deposit = rc::gen::exec([=] {
    return core::EventBody(core::Deposit{core::AccountId(*accounts), *gen_money()});
  });
  rc::Gen<core::EventBody> withdraw = rc::gen::exec([=] {
    return core::EventBody(core::Withdraw{core::AccountId(*accounts), *gen_money()});
  });
  rc::Gen<core::EventBody> settle = rc::gen::exec([w] {
    core::Settle s;
    if (*rc::gen::element(false, true)) {
      for (std::uint32_t i = 0; i < w.instruments.size(); ++i) {
        if (!*rc::gen::element(false, true)) continue;
        const InstrumentShape& shape = w.instruments[i];
        std::int64_t price = *rc::gen::weightedOneOf<std::int64_t>(
            {{8, rc::gen::just(shape.ref_ticks + *rc::gen::inRange<std::int64_t>(-8, 9))},
             {1, rc::gen::just(shape.price_max + *rc::gen::inRange<std::int64_t>(-1, 2))}});
        s.prices.push_back(core::SettlementPrice{core::InstrumentId(i), core::PriceTicks(price)});
      }
    }
    return core::EventBody(s);
  });
  rc::Gen<core::EventBody> status = rc::gen::exec([=] {
    core::InstrumentStatus st =
        *rc::gen::weightedElement<core::InstrumentStatus>({{6, core::InstrumentStatus::kHalted},
                                                           {30, core::InstrumentStatus::kTrading},
                                                           {1, core::InstrumentStatus::kDelisted}});
    return core::EventBody(core::SetInstrumentStatus{core::InstrumentId(*instruments), st});
  });
  rc::Gen<core::EventBody> account_risk = rc::gen::exec([=] {
    core::SetAccountRisk r;
    r.account = core::AccountId(*accounts);
    r.max_open_orders = *rc::gen::element<std::uint32_t>(0, 0, 0, 2, 4);
    r.enabled = *rc::gen::weightedElement<bool>({{10, true}, {1, false}});
    r.stp = *gen_stp();
    return core::EventBody(r);
  });
  rc::Gen<core::EventBody> risk_params =
      rc::gen::map(gen_risk_params(w), [](core::SetRiskParams r) { return core::EventBody(r); });
  rc::Gen<core::EventBody> mark = rc::gen::just(core::EventBody(core::MarkToMarket{}));
  rc::Gen<core::EventBody> limits = rc::gen::map(
      gen_limits(), [](core::EngineLimits l) { return core::EventBody(core::SetLimits{l}); });
  rc::Gen<core::EventBody> session = rc::gen::exec([=] {
    return core::EventBody(core::SetSession{core::InstrumentId(*instruments),
                                            *gen_session(*rc::gen::inRange(0u, 150u))});
  });
  // Small epochs, so that some terms are stale; now and then no leader.
  rc::Gen<core::EventBody> term = rc::gen::exec([] {
    return core::EventBody(core::LeaderTerm{
        *rc::gen::inRange<std::uint64_t>(0, 6),
        *rc::gen::weightedElement<std::uint32_t>({{1, 0}, {6, 1}, {3, 2}, {1, 0xFFFF'FFFFu}})});
  });
  // Too late once accounts exist: CURRENCY_FIXED.
  rc::Gen<core::EventBody> currency = rc::gen::just(core::EventBody(core::SetCurrency{"USDT", 8}));
  return rc::gen::weightedOneOf<core::EventBody>({{3, deposit},
                                                  {2, mark},
                                                  {3, withdraw},
                                                  {3, settle},
                                                  {2, status},
                                                  {1, account_risk},
                                                  {1, currency},
                                                  {1, limits},
                                                  {2, session},
                                                  {1, term},
                                                  {opt.risk_params ? 2u : 0u, risk_params}});
}

inline rc::Gen<Command> gen_command(const World& w, const GenOptions& opt) {
  auto new_order = rc::gen::exec([w] {
    core::EventBody b = *gen_new_order(w);
    if (std::get<core::NewOrder>(b).offset == core::Offset::kOpen) return Command{b};
    return *gen_reference(b);
  });
  auto admin = rc::gen::exec([w, opt] {
    core::EventBody b = *gen_admin(w, opt);
    if (!std::holds_alternative<core::Withdraw>(b)) return Command{b};
    return *gen_reference(b);
  });
  auto command = rc::gen::weightedOneOf<Command>(
      {{70, new_order}, {8, gen_amend(w)}, {6, gen_cancel(w)}, {10, admin}});
  if (!opt.time_jumps) return command;
  // The clock jumps now and then: past whole days (many boundaries with no event between them:
  // one phase change), a few hours, or back a few seconds (no phase changes).
  static constexpr std::int64_t kS = 1'000'000'000;
  return rc::gen::exec([command] {
    Command c = *command;
    c.gap_ns = *rc::gen::weightedOneOf<std::int64_t>(
        {{40, rc::gen::just(kS)},
         {1, rc::gen::map(rc::gen::inRange<std::int64_t>(86'400, 3 * 86'400),
                          [](std::int64_t s) { return s * kS; })},
         {1, rc::gen::map(rc::gen::inRange<std::int64_t>(600, 6 * 3'600),
                          [](std::int64_t s) { return s * kS; })},
         {1, rc::gen::map(rc::gen::inRange<std::int64_t>(1, 30),
                          [](std::int64_t s) { return -s * kS; })}});
    return c;
  });
}

// Turns commands into event bodies, steering those that ask for it with the reference model's
// view of the state so far: closes mostly close something held, amends and cancels mostly meet
// a live order, withdrawals test the edge of the available funds. The model is only a source of
// plausible targets here: whatever it got wrong would just make a command less useful, never
// invalid. Steering after generation keeps shrinking free to drop any
// command; the commands after it are then re-steered against the new state.
// Appends the commands' bodies to `events` and their timestamps to `times` (which holds the
// setup's).
inline void steer(const World& w, std::vector<core::EventBody>& events,
                  std::vector<std::int64_t>& times, std::vector<Command> commands) {
  Model m;
  std::vector<core::Effect> ignored;
  for (std::size_t i = 0; i < events.size(); ++i) m.apply(times[i], events[i], ignored);
  std::int64_t now = times.empty() ? kScenarioStartNs : times.back();
  for (Command& c : commands) {
    if (c.steered) {
      if (auto* o = std::get_if<core::NewOrder>(&c.body)) steer_close(w, m, c, *o);
      if (auto* a = std::get_if<core::AmendOrder>(&c.body)) steer_reference(w, m, c, *a);
      if (auto* x = std::get_if<core::CancelOrder>(&c.body)) steer_reference(w, m, c, *x);
      if (auto* x = std::get_if<core::Withdraw>(&c.body)) steer_withdraw(m, c, *x);
    }
    ignored.clear();
    now += c.gap_ns;
    m.apply(now, c.body, ignored);
    times.push_back(now);
    events.push_back(std::move(c.body));
  }
}

}  // namespace detail

inline rc::Gen<Scenario> gen_scenario(GenOptions opt) {
  return rc::gen::exec([opt] {
    Scenario s;
    World w;
    // The exchange's currency: mostly the default (CNY, 4 decimals), else one with more or fewer
    // decimals (some instruments cannot be listed at 8, where a lot is worth 10^4 more minor
    // units) or an invalid one (refused; the default stays).
    using Currency = std::optional<core::SetCurrency>;
    const Currency currency =
        *rc::gen::weightedElement<Currency>({{12, std::nullopt},
                                             {2, core::SetCurrency{"USDT", 8}},
                                             {2, core::SetCurrency{"USD", 6}},
                                             {1, core::SetCurrency{"CNY", 4}},
                                             {1, core::SetCurrency{"JPY", 0}},
                                             {1, core::SetCurrency{"usdt", 8}},
                                             {1, core::SetCurrency{"EUR", 9}},
                                             {1, core::SetCurrency{"TOOLONGX", 2}}});
    std::int64_t money_scale = core::kMoneyScale;
    if (currency) {
      s.events.emplace_back(*currency);
      const bool valid = currency->decimals <= core::kMoneyDecimalsMax &&
                         currency->code.size() <= 7 && currency->code != "usdt";
      if (valid) money_scale = core::pow10(currency->decimals);
    }
    // Now and then the engine's capacity, small enough that a scenario reaches it: the last
    // instrument or accounts may be refused (INSTRUMENT_LIMIT, ACCOUNT_LIMIT; the commands that
    // name them meet UNKNOWN_*), orders meet ORDER_LIMIT, PRICE_LEVEL_FULL, TOO_MANY_OPEN_ORDERS.
    if (*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
      s.events.emplace_back(core::SetLimits{*detail::gen_limits()});
    }
    const int instruments = *rc::gen::inRange(1, 4);
    for (int i = 0; i < instruments; ++i) {
      auto [create, shape] = *detail::gen_instrument(i, money_scale);
      s.events.emplace_back(create);
      w.instruments.push_back(shape);
    }
    w.accounts = *rc::gen::inRange<std::uint32_t>(2, 6);
    for (std::uint32_t a = 0; a < w.accounts; ++a) {
      std::string name = "acct" + std::to_string(a);
      s.events.emplace_back(core::CreateUser{name});
      // Some users hold two accounts (self-trade prevention with scope USER spans them).
      const std::uint32_t user =
          a > 0 && *rc::gen::weightedElement<bool>({{2, false}, {1, true}}) ? a - 1 : a;
      s.events.emplace_back(core::CreateAccount{core::UserId(user), name});
      // Thin accounts can hold a lot or two; rich ones can trade freely.
      std::int64_t cny = *rc::gen::weightedOneOf<std::int64_t>(
          {{2, rc::gen::inRange<std::int64_t>(20'000, 400'000)},
           {3, rc::gen::inRange<std::int64_t>(1'000'000, 20'000'000)}});
      s.events.emplace_back(core::Deposit{core::AccountId(a), core::Money(cny * detail::kCny)});
    }
    // Most scenarios with forced liquidation set a ratio at once, so that every trade counts.
    if (opt.risk_params && *rc::gen::weightedElement<bool>({{1, false}, {2, true}})) {
      s.events.emplace_back(*detail::gen_risk_params(w));
    }
    // Some instruments trade in sessions from the start (an opening call auction, breaks).
    for (int i = 0; i < instruments; ++i) {
      if (opt.sessions || *rc::gen::element(false, true)) {
        const auto now_s = static_cast<std::uint32_t>(s.events.size());
        s.events.emplace_back(core::SetSession{core::InstrumentId(static_cast<std::uint32_t>(i)),
                                               *detail::gen_session(now_s, opt.sessions)});
      }
    }
    s.setup_events = s.events.size();
    // Length grows with rapidcheck's size (0-100) up to 200; shrinking removes commands.
    for (std::size_t i = 0; i < s.events.size(); ++i) s.times_ns.push_back(event_time_ns(i));
    // With sessions, one scenario in three has a clock that jumps.
    GenOptions o = opt;
    o.time_jumps = opt.sessions && *rc::gen::weightedElement<bool>({{2, false}, {1, true}});
    return *rc::gen::map(
        rc::gen::nonEmpty(rc::gen::scale(
            2.0, rc::gen::container<std::vector<detail::Command>>(detail::gen_command(w, o)))),
        [w, s](std::vector<detail::Command> v) {
          if (v.size() > 200) v.resize(200);
          Scenario out = s;
          detail::steer(w, out.events, out.times_ns, std::move(v));
          return out;
        });
  });
}

inline void showValue(const Scenario& s, std::ostream& os) {
  os << "Scenario (" << s.events.size() << " events, " << s.setup_events << " setup):\n";
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    os << "  #" << (i + 1);
    if (s.times_ns.size() == s.events.size()) {
      os << " @" << (s.times_ns[i] - kScenarioStartNs) / 1'000'000'000 << "s";
    }
    os << " " << describe(s.events[i]) << "\n";
  }
}

}  // namespace qx::property
