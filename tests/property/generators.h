// rapidcheck generators for core values: every input event kind, Effect and Snapshot.
//
//   RC_GTEST_PROP(Codec, EventRoundTrips, (const qx::core::Event& e)) { ... }   // uses Arbitrary
//   auto order = *qx::gen::new_order();                                        // explicit gen
//
// Link with qx_replay (for kTextBytesMax) and rapidcheck.
//
// Design: explicit generators in namespace qx::gen, plus rc::Arbitrary specialisations that
// forward to them, so a property can take core values as parameters. They cover the whole
// representable range, not just what the engine accepts: integers include 0, -1, the extremes
// and values near them; enums include the invalid value 0 next to every defined value (the
// journal must carry malformed requests that the engine rejects); optionals are absent about
// one time in four and otherwise may hold 0; texts are arbitrary bytes including NUL, up to
// replay::kTextBytesMax. Effect::pad_ is always 0, as core guarantees. Lists grow with
// rapidcheck's size parameter and shrink towards empty. Business-valid values (positive
// prices, consistent books) are the job of the model generators in sim/, not of these.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"
#include "core/types.h"
#include "replay/codec.h"

namespace qx::gen {

// An integer of any size, with the edges of the range and small values (0, +-1) weighted up.
template <class T>
rc::Gen<T> integer() {
  static_assert(std::is_integral_v<T>);
  using L = std::numeric_limits<T>;
  return rc::gen::weightedOneOf<T>({
      {6, rc::gen::arbitrary<T>()},
      {1, rc::gen::element<T>(L::min(), L::max(), T{0}, T{1}, static_cast<T>(L::max() - 1),
                              static_cast<T>(L::min() + 1))},
      {1, rc::gen::just(static_cast<T>(-1))},  // wraps to the maximum for unsigned types
  });
}

// A strong id (`enum class X : uint32_t {}`) with any raw value.
template <class Id>
rc::Gen<Id> id() {
  return rc::gen::map(integer<std::underlying_type_t<Id>>(),
                      [](std::underlying_type_t<Id> v) { return static_cast<Id>(v); });
}

// A core::Quantity (PriceTicks, Lots, Money) with any value.
template <class Q>
rc::Gen<Q> quantity() {
  return rc::gen::map(integer<decltype(Q{}.value)>(), [](auto v) { return Q(v); });
}

// A domain enum: 0 (invalid) or any value from 1 to `max`.
template <class E>
rc::Gen<E> enum_value(std::underlying_type_t<E> max) {
  using U = std::underlying_type_t<E>;
  return rc::gen::map(rc::gen::inRange<std::uint32_t>(0, std::uint32_t{max} + 1),
                      [](std::uint32_t v) { return static_cast<E>(static_cast<U>(v)); });
}

template <class T>
rc::Gen<std::optional<T>> optional(rc::Gen<T> value) {
  return rc::gen::weightedOneOf<std::optional<T>>({
      {1, rc::gen::just(std::optional<T>())},
      {3, rc::gen::map(std::move(value), [](T v) { return std::optional<T>(std::move(v)); })},
  });
}

// Arbitrary bytes (NUL included); sometimes exactly the codec's limit.
inline rc::Gen<std::string> text() {
  return rc::gen::weightedOneOf<std::string>({
      {20, rc::gen::container<std::string>(rc::gen::arbitrary<char>())},
      {1, rc::gen::map(rc::gen::arbitrary<char>(),
                       [](char c) { return std::string(replay::kTextBytesMax, c); })},
  });
}

inline rc::Gen<core::SelfTradePrevention> stp() {
  return rc::gen::build<core::SelfTradePrevention>(
      rc::gen::set(&core::SelfTradePrevention::mode,
                   enum_value<core::StpMode>(core::raw(core::StpMode::kCancelBoth))),
      rc::gen::set(&core::SelfTradePrevention::scope,
                   enum_value<core::StpScope>(core::raw(core::StpScope::kUser))));
}
inline rc::Gen<core::StopTrigger> stop_trigger() {
  return rc::gen::build<core::StopTrigger>(
      rc::gen::set(&core::StopTrigger::kind,
                   enum_value<core::TriggerKind>(core::raw(core::TriggerKind::kTakeProfit))),
      rc::gen::set(&core::StopTrigger::source,
                   enum_value<core::TriggerSource>(core::raw(core::TriggerSource::kMark))),
      rc::gen::set(&core::StopTrigger::price, quantity<core::PriceTicks>()));
}
inline rc::Gen<core::Direction> direction() {
  return enum_value<core::Direction>(core::raw(core::Direction::kSell));
}
inline rc::Gen<core::Offset> offset() {
  return enum_value<core::Offset>(core::raw(core::Offset::kCloseYesterday));
}
inline rc::Gen<core::PriceType> price_type() {
  return enum_value<core::PriceType>(core::raw(core::PriceType::kBest));
}
inline rc::Gen<core::TimeCondition> time_condition() {
  return enum_value<core::TimeCondition>(core::raw(core::TimeCondition::kIoc));
}
inline rc::Gen<core::VolumeCondition> volume_condition() {
  return enum_value<core::VolumeCondition>(core::raw(core::VolumeCondition::kAll));
}
inline rc::Gen<core::InstrumentStatus> instrument_status() {
  return enum_value<core::InstrumentStatus>(core::raw(core::InstrumentStatus::kDelisted));
}
inline rc::Gen<core::EffectKind> effect_kind() {
  return enum_value<core::EffectKind>(core::raw(core::EffectKind::kPhaseChanged));
}
inline rc::Gen<core::TradingPhase> trading_phase() {
  return enum_value<core::TradingPhase>(core::raw(core::TradingPhase::kClosed));
}

// ---------------------------------------------------------------------------------------------
// Events.

inline rc::Gen<core::EventHeader> event_header() {
  return rc::gen::build<core::EventHeader>(
      rc::gen::set(&core::EventHeader::seq, id<core::Seq>()),
      rc::gen::set(&core::EventHeader::timestamp_ns, integer<std::int64_t>()),
      rc::gen::set(&core::EventHeader::source, integer<std::uint32_t>()));
}

inline rc::Gen<core::FeeSchedule> fee_schedule() {
  using F = core::FeeSchedule;
  return rc::gen::build<F>(rc::gen::set(&F::open_per_lot, quantity<core::Money>()),
                           rc::gen::set(&F::open_ppb, integer<std::int64_t>()),
                           rc::gen::set(&F::close_per_lot, quantity<core::Money>()),
                           rc::gen::set(&F::close_ppb, integer<std::int64_t>()),
                           rc::gen::set(&F::close_today_per_lot, quantity<core::Money>()),
                           rc::gen::set(&F::close_today_ppb, integer<std::int64_t>()));
}

inline rc::Gen<core::InstrumentParams> instrument_params() {
  using P = core::InstrumentParams;
  return rc::gen::build<P>(rc::gen::set(&P::price_tick_e8, integer<std::int64_t>()),
                           rc::gen::set(&P::multiplier_e8, integer<std::int64_t>()),
                           rc::gen::set(&P::margin_long_ppb, integer<std::int64_t>()),
                           rc::gen::set(&P::margin_short_ppb, integer<std::int64_t>()),
                           rc::gen::set(&P::fees, fee_schedule()),
                           rc::gen::set(&P::price_band_ppb, optional(integer<std::int64_t>())),
                           rc::gen::set(&P::max_order_volume, quantity<core::Lots>()),
                           rc::gen::set(&P::position_limit, quantity<core::Lots>()),
                           rc::gen::set(&P::last_trading_day, integer<std::uint32_t>()));
}

inline rc::Gen<core::CreateInstrument> create_instrument() {
  using E = core::CreateInstrument;
  return rc::gen::build<E>(rc::gen::set(&E::code, text()), rc::gen::set(&E::exchange, text()),
                           rc::gen::set(&E::params, instrument_params()),
                           rc::gen::set(&E::pre_settlement, quantity<core::PriceTicks>()));
}

inline rc::Gen<core::UpdateInstrument> update_instrument() {
  using E = core::UpdateInstrument;
  return rc::gen::build<E>(rc::gen::set(&E::instrument, id<core::InstrumentId>()),
                           rc::gen::set(&E::params, instrument_params()));
}

inline rc::Gen<core::SetInstrumentStatus> set_instrument_status() {
  using E = core::SetInstrumentStatus;
  return rc::gen::build<E>(rc::gen::set(&E::instrument, id<core::InstrumentId>()),
                           rc::gen::set(&E::status, instrument_status()));
}

inline rc::Gen<core::CreateUser> create_user() {
  return rc::gen::build<core::CreateUser>(rc::gen::set(&core::CreateUser::name, text()));
}

inline rc::Gen<core::CreateAccount> create_account() {
  using E = core::CreateAccount;
  return rc::gen::build<E>(rc::gen::set(&E::user, id<core::UserId>()),
                           rc::gen::set(&E::name, text()));
}

inline rc::Gen<core::Deposit> deposit() {
  using E = core::Deposit;
  return rc::gen::build<E>(rc::gen::set(&E::account, id<core::AccountId>()),
                           rc::gen::set(&E::amount, quantity<core::Money>()));
}

inline rc::Gen<core::Withdraw> withdraw() {
  using E = core::Withdraw;
  return rc::gen::build<E>(rc::gen::set(&E::account, id<core::AccountId>()),
                           rc::gen::set(&E::amount, quantity<core::Money>()));
}

inline rc::Gen<core::SetAccountRisk> set_account_risk() {
  using E = core::SetAccountRisk;
  return rc::gen::build<E>(rc::gen::set(&E::account, id<core::AccountId>()),
                           rc::gen::set(&E::max_open_orders, integer<std::uint32_t>()),
                           rc::gen::set(&E::enabled, rc::gen::arbitrary<bool>()),
                           rc::gen::set(&E::stp, stp()));
}

inline rc::Gen<core::SetRiskParams> set_risk_params() {
  return rc::gen::build<core::SetRiskParams>(
      rc::gen::set(&core::SetRiskParams::liquidation_ratio_ppb, integer<std::int64_t>()),
      rc::gen::set(&core::SetRiskParams::insurance_account, optional(id<core::AccountId>())));
}

inline rc::Gen<core::SetCurrency> set_currency() {
  return rc::gen::build<core::SetCurrency>(
      rc::gen::set(&core::SetCurrency::code, text()),
      rc::gen::set(&core::SetCurrency::decimals, integer<std::uint32_t>()));
}

// Limits: any value for events (the engine refuses those above the maxima); for snapshots only
// values the decoder accepts.
inline rc::Gen<core::EngineLimits> engine_limits(std::uint32_t max) {
  using L = core::EngineLimits;
  const auto value = [max] { return rc::gen::inRange<std::uint32_t>(0, max); };
  return rc::gen::build<L>(rc::gen::set(&L::instruments, value()),
                           rc::gen::set(&L::accounts, value()), rc::gen::set(&L::orders, value()),
                           rc::gen::set(&L::orders_per_account, integer<std::uint32_t>()),
                           rc::gen::set(&L::orders_per_level, integer<std::uint32_t>()));
}

inline rc::Gen<core::SetLimits> set_limits() {
  return rc::gen::build<core::SetLimits>(
      rc::gen::set(&core::SetLimits::limits, engine_limits(0xFFFF'FFFFu)));
}

// Any schedule: what a journal may hold (SetSession refuses the invalid ones as data).
inline rc::Gen<core::SessionSchedule> session_schedule() {
  using S = core::SessionSchedule;
  return rc::gen::build<S>(
      rc::gen::set(&S::utc_offset_s, integer<std::int32_t>()),
      rc::gen::set(
          &S::entries,
          rc::gen::container<std::vector<core::SessionEntry>>(rc::gen::build<core::SessionEntry>(
              rc::gen::set(&core::SessionEntry::start_s, integer<std::uint32_t>()),
              rc::gen::set(&core::SessionEntry::phase, trading_phase())))));
}

// A schedule SetSession accepts: what a snapshot may hold.
inline rc::Gen<core::SessionSchedule> valid_session_schedule() {
  return rc::gen::apply(
      [](std::int32_t offset, std::set<std::uint32_t> starts, std::vector<int> phases) {
        core::SessionSchedule s;
        s.utc_offset_s = offset;
        std::size_t i = 0;
        for (std::uint32_t start : starts) {
          if (s.entries.size() == core::kSessionEntriesMax) break;
          const int p = phases.empty() ? 1 : phases[i++ % phases.size()];
          s.entries.push_back({start, static_cast<core::TradingPhase>(p)});
        }
        return s;
      },
      rc::gen::inRange(-core::kUtcOffsetMax, core::kUtcOffsetMax + 1),
      rc::gen::container<std::set<std::uint32_t>>(rc::gen::inRange(0u, 86'400u)),
      rc::gen::container<std::vector<int>>(rc::gen::inRange(1, 6)));
}

inline rc::Gen<core::LeaderTerm> leader_term() {
  return rc::gen::build<core::LeaderTerm>(
      rc::gen::set(&core::LeaderTerm::epoch, integer<std::uint64_t>()),
      rc::gen::set(&core::LeaderTerm::node, integer<std::uint32_t>()));
}

inline rc::Gen<core::SetSession> set_session() {
  return rc::gen::build<core::SetSession>(
      rc::gen::set(&core::SetSession::instrument, id<core::InstrumentId>()),
      rc::gen::set(&core::SetSession::schedule, session_schedule()));
}

inline rc::Gen<core::SettlementPrice> settlement_price() {
  using E = core::SettlementPrice;
  return rc::gen::build<E>(rc::gen::set(&E::instrument, id<core::InstrumentId>()),
                           rc::gen::set(&E::price, quantity<core::PriceTicks>()));
}

inline rc::Gen<core::Settle> settle() {
  return rc::gen::build<core::Settle>(
      rc::gen::set(&core::Settle::prices,
                   rc::gen::container<std::vector<core::SettlementPrice>>(settlement_price())));
}

inline rc::Gen<core::NewOrder> new_order() {
  using E = core::NewOrder;
  return rc::gen::build<E>(
      rc::gen::set(&E::account, id<core::AccountId>()),
      rc::gen::set(&E::instrument, id<core::InstrumentId>()),
      rc::gen::set(&E::client_order_id, id<core::ClientOrderId>()),
      rc::gen::set(&E::direction, direction()), rc::gen::set(&E::offset, offset()),
      rc::gen::set(&E::price_type, price_type()),
      rc::gen::set(&E::price, quantity<core::PriceTicks>()),
      rc::gen::set(&E::volume, quantity<core::Lots>()),
      rc::gen::set(&E::time_condition, time_condition()),
      rc::gen::set(&E::volume_condition, volume_condition()),
      rc::gen::set(&E::post_only, rc::gen::arbitrary<bool>()),
      rc::gen::set(&E::stp, optional(stp())), rc::gen::set(&E::trigger, optional(stop_trigger())));
}

inline rc::Gen<core::OrderRef> order_ref() {
  using E = core::OrderRef;
  return rc::gen::build<E>(rc::gen::set(&E::order_id, optional(id<core::OrderId>())),
                           rc::gen::set(&E::client_order_id, id<core::ClientOrderId>()));
}

inline rc::Gen<core::AmendOrder> amend_order() {
  using E = core::AmendOrder;
  return rc::gen::build<E>(rc::gen::set(&E::account, id<core::AccountId>()),
                           rc::gen::set(&E::ref, order_ref()),
                           rc::gen::set(&E::new_price, quantity<core::PriceTicks>()),
                           rc::gen::set(&E::new_volume_left, quantity<core::Lots>()));
}

inline rc::Gen<core::CancelOrder> cancel_order() {
  using E = core::CancelOrder;
  return rc::gen::build<E>(rc::gen::set(&E::account, id<core::AccountId>()),
                           rc::gen::set(&E::ref, order_ref()));
}

// Any alternative of core::EventBody, each equally likely.
inline rc::Gen<core::EventBody> event_body() {
  const auto as_body = [](auto gen) {
    return rc::gen::map(std::move(gen), [](auto v) { return core::EventBody(std::move(v)); });
  };
  static_assert(std::variant_size_v<core::EventBody> == 18, "add a generator for the new kind");
  return rc::gen::oneOf(as_body(create_instrument()), as_body(update_instrument()),
                        as_body(set_instrument_status()), as_body(create_user()),
                        as_body(create_account()), as_body(deposit()), as_body(withdraw()),
                        as_body(set_account_risk()), as_body(set_risk_params()), as_body(settle()),
                        as_body(new_order()), as_body(amend_order()), as_body(cancel_order()),
                        as_body(rc::gen::just(core::MarkToMarket{})), as_body(set_currency()),
                        as_body(set_limits()), as_body(set_session()), as_body(leader_term()));
}

inline rc::Gen<core::Event> event() {
  return rc::gen::build<core::Event>(rc::gen::set(&core::Event::header, event_header()),
                                     rc::gen::set(&core::Event::body, event_body()));
}

// ---------------------------------------------------------------------------------------------
// Effects.

inline rc::Gen<core::Effect> effect() {
  using E = core::Effect;
  // pad_ is left at zero: core guarantees it, and the codec refuses anything else.
  return rc::gen::build<E>(
      rc::gen::set(&E::kind, effect_kind()), rc::gen::set(&E::direction, direction()),
      rc::gen::set(&E::offset, offset()), rc::gen::set(&E::counter_offset, offset()),
      rc::gen::set(&E::reason, integer<std::uint16_t>()),
      rc::gen::set(&E::account, id<core::AccountId>()),
      rc::gen::set(&E::counter_account, id<core::AccountId>()),
      rc::gen::set(&E::instrument, id<core::InstrumentId>()),
      rc::gen::set(&E::user, id<core::UserId>()), rc::gen::set(&E::order, id<core::OrderId>()),
      rc::gen::set(&E::counter_order, id<core::OrderId>()),
      rc::gen::set(&E::client_order_id, id<core::ClientOrderId>()),
      rc::gen::set(&E::trade, id<core::TradeId>()),
      rc::gen::set(&E::price, quantity<core::PriceTicks>()),
      rc::gen::set(&E::volume, quantity<core::Lots>()),
      rc::gen::set(&E::volume_left, quantity<core::Lots>()),
      rc::gen::set(&E::amount, quantity<core::Money>()),
      rc::gen::set(&E::amount2, quantity<core::Money>()));
}

// ---------------------------------------------------------------------------------------------
// Snapshot.

inline rc::Gen<core::InstrumentState> instrument_state() {
  using S = core::InstrumentState;
  auto base = rc::gen::build<S>(
      rc::gen::set(&S::code, text()), rc::gen::set(&S::exchange, text()),
      rc::gen::set(&S::params, instrument_params()), rc::gen::set(&S::status, instrument_status()),
      rc::gen::set(&S::pre_settlement, quantity<core::PriceTicks>()),
      rc::gen::set(&S::last_price, optional(quantity<core::PriceTicks>())),
      rc::gen::set(&S::volume_today, quantity<core::Lots>()),
      rc::gen::set(&S::turnover_today, quantity<core::Money>()),
      rc::gen::set(&S::price_max, quantity<core::PriceTicks>()),
      rc::gen::set(&S::session, valid_session_schedule()),
      rc::gen::set(&S::phase, rc::gen::map(rc::gen::inRange(1, 6), [](int v) {
        return static_cast<core::TradingPhase>(v);
      })));
  // Without a schedule: CONTINUOUS and no next boundary (the decoder checks it); with one, any
  // phase and boundary (none: past the year 2262).
  return rc::gen::map(rc::gen::pair(std::move(base), integer<std::int64_t>()), [](auto p) {
    S s = std::move(p.first);
    s.next_phase_ns = p.second;
    if (s.session.entries.empty()) {
      s.next_phase_ns = core::kNoPhaseChange;
      s.phase = core::TradingPhase::kContinuous;
    }
    return s;
  });
}

inline rc::Gen<core::PositionSide> position_side() {
  using S = core::PositionSide;
  return rc::gen::build<S>(rc::gen::set(&S::today, quantity<core::Lots>()),
                           rc::gen::set(&S::his, quantity<core::Lots>()),
                           rc::gen::set(&S::frozen_today, quantity<core::Lots>()),
                           rc::gen::set(&S::frozen_his, quantity<core::Lots>()),
                           rc::gen::set(&S::open_cost, quantity<core::Money>()),
                           rc::gen::set(&S::position_cost_today, quantity<core::Money>()),
                           rc::gen::set(&S::position_cost_his, quantity<core::Money>()),
                           rc::gen::set(&S::margin, quantity<core::Money>()));
}

inline rc::Gen<core::PositionState> position_state() {
  using S = core::PositionState;
  return rc::gen::build<S>(rc::gen::set(&S::instrument, id<core::InstrumentId>()),
                           rc::gen::set(&S::long_side, position_side()),
                           rc::gen::set(&S::short_side, position_side()));
}

inline rc::Gen<core::AccountState> account_state() {
  using S = core::AccountState;
  return rc::gen::build<S>(
      rc::gen::set(&S::name, text()), rc::gen::set(&S::user, id<core::UserId>()),
      rc::gen::set(&S::enabled, rc::gen::arbitrary<bool>()),
      rc::gen::set(&S::max_open_orders, integer<std::uint32_t>()), rc::gen::set(&S::stp, stp()),
      rc::gen::set(&S::pre_balance, quantity<core::Money>()),
      rc::gen::set(&S::deposit, quantity<core::Money>()),
      rc::gen::set(&S::withdraw, quantity<core::Money>()),
      rc::gen::set(&S::close_profit, quantity<core::Money>()),
      rc::gen::set(&S::commission, quantity<core::Money>()),
      rc::gen::set(&S::positions,
                   rc::gen::scale(0.25, rc::gen::container<std::vector<core::PositionState>>(
                                            position_state()))));
}

inline rc::Gen<core::OrderState> order_state() {
  using S = core::OrderState;
  return rc::gen::build<S>(
      rc::gen::set(&S::id, id<core::OrderId>()),
      rc::gen::set(&S::client_order_id, id<core::ClientOrderId>()),
      rc::gen::set(&S::account, id<core::AccountId>()),
      rc::gen::set(&S::instrument, id<core::InstrumentId>()),
      rc::gen::set(&S::direction, direction()), rc::gen::set(&S::offset, offset()),
      rc::gen::set(&S::price_type, price_type()),
      rc::gen::set(&S::time_condition, time_condition()),
      rc::gen::set(&S::post_only, rc::gen::arbitrary<bool>()),
      rc::gen::set(&S::forced, rc::gen::arbitrary<bool>()), rc::gen::set(&S::stp, stp()),
      rc::gen::set(&S::price, quantity<core::PriceTicks>()),
      rc::gen::set(&S::volume_orig, quantity<core::Lots>()),
      rc::gen::set(&S::volume_left, quantity<core::Lots>()),
      rc::gen::set(&S::frozen_margin, quantity<core::Money>()),
      rc::gen::set(&S::frozen_commission, quantity<core::Money>()),
      rc::gen::set(&S::frozen_today, quantity<core::Lots>()),
      rc::gen::set(&S::frozen_his, quantity<core::Lots>()),
      rc::gen::set(&S::insert_time_ns, integer<std::int64_t>()));
}

inline rc::Gen<core::TradeState> trade_state() {
  using S = core::TradeState;
  return rc::gen::build<S>(rc::gen::set(&S::id, id<core::TradeId>()),
                           rc::gen::set(&S::instrument, id<core::InstrumentId>()),
                           rc::gen::set(&S::price, quantity<core::PriceTicks>()),
                           rc::gen::set(&S::volume, quantity<core::Lots>()),
                           rc::gen::set(&S::taker_order, id<core::OrderId>()),
                           rc::gen::set(&S::taker_account, id<core::AccountId>()),
                           rc::gen::set(&S::taker_direction, direction()),
                           rc::gen::set(&S::taker_offset, offset()),
                           rc::gen::set(&S::taker_fee, quantity<core::Money>()),
                           rc::gen::set(&S::maker_order, id<core::OrderId>()),
                           rc::gen::set(&S::maker_account, id<core::AccountId>()),
                           rc::gen::set(&S::maker_offset, offset()),
                           rc::gen::set(&S::maker_fee, quantity<core::Money>()),
                           rc::gen::set(&S::time_ns, integer<std::int64_t>()));
}

// A snapshot with lists of every kind. Snapshots nest lists (accounts hold positions), so the
// lists are generated at a third of rapidcheck's size (and positions at a quarter of that) to
// keep a case quick: at the largest size, about 33 accounts of up to 8 positions each.
inline rc::Gen<core::StopState> stop_state() {
  using S = core::StopState;
  return rc::gen::build<S>(
      rc::gen::set(&S::id, id<core::OrderId>()),
      rc::gen::set(&S::order, rc::gen::map(new_order(),
                                           [](core::NewOrder o) {
                                             if (!o.trigger)
                                               o.trigger =
                                                   core::StopTrigger{};  // a stop has a trigger
                                             return o;
                                           })),
      rc::gen::set(&S::insert_time_ns, integer<std::int64_t>()));
}

// Makes the pending stops of a generated snapshot ones the decoder accepts (it refuses what restore
// could not: replay/codec.cc check_stops): references in range, defined enums, ids above every
// order's and below next_order_id, client ids no order uses. Their other fields stay arbitrary.
inline core::Snapshot with_valid_stops(core::Snapshot s) {
  if (s.instruments.empty() || s.accounts.empty()) {
    s.stops.clear();
    return s;
  }
  std::uint64_t top = 0;
  for (const core::OrderState& o : s.orders) top = std::max(top, core::raw(o.id));
  if (top > (std::uint64_t{1} << 62)) {  // no room above the orders' ids: no stops
    s.stops.clear();
    return s;
  }
  std::uint64_t id = top + 1;
  for (std::size_t k = 0; k < s.stops.size(); ++k) {
    core::NewOrder& o = s.stops[k].order;
    o.instrument = core::InstrumentId(
        static_cast<std::uint32_t>(core::raw(o.instrument) % s.instruments.size()));
    o.account =
        core::AccountId(static_cast<std::uint32_t>(core::raw(o.account) % s.accounts.size()));
    o.trigger->kind = core::TriggerKind(1 + core::raw(o.trigger->kind) % 2);
    o.trigger->source = core::TriggerSource(1 + core::raw(o.trigger->source) % 2);
    if (o.stp) o.stp = core::SelfTradePrevention{};
    if (core::raw(o.client_order_id) != 0) {
      o.client_order_id = core::ClientOrderId(0xC0DE'0000'0000'0000ull + k);
    }
    s.stops[k].id = core::OrderId(id++);
  }
  s.next_order_id = std::max(s.next_order_id, id);
  return s;
}

inline rc::Gen<core::Snapshot> snapshot() {
  using S = core::Snapshot;
  const auto list = [](auto element) {
    using T = typename decltype(element)::ValueType;
    return rc::gen::scale(0.34, rc::gen::container<std::vector<T>>(std::move(element)));
  };
  return rc::gen::map(
      rc::gen::build<S>(
          rc::gen::set(&S::semantics_version, integer<std::uint32_t>()),
          rc::gen::set(&S::last_seq, id<core::Seq>()),
          rc::gen::set(&S::last_timestamp_ns, integer<std::int64_t>()),
          rc::gen::set(&S::trading_day, integer<std::uint32_t>()),
          rc::gen::set(&S::next_order_id, integer<std::uint64_t>()),
          rc::gen::set(&S::next_trade_id, integer<std::uint64_t>()),
          rc::gen::set(&S::effects_hash, integer<std::uint64_t>()),
          rc::gen::set(&S::liquidation_ratio_ppb, optional(integer<std::int64_t>())),
          rc::gen::set(&S::insurance_account, optional(id<core::AccountId>())),
          rc::gen::set(&S::currency, text()),
          rc::gen::set(&S::money_decimals,
                       rc::gen::inRange<std::uint32_t>(0, core::kMoneyDecimalsMax + 1)),
          rc::gen::set(&S::limits, engine_limits(1'000)),
          rc::gen::set(&S::epoch, integer<std::uint64_t>()),
          rc::gen::set(&S::leader, rc::gen::inRange<std::uint32_t>(1, 0xFFFF'FFFFu)),
          rc::gen::set(&S::instruments, list(instrument_state())),
          rc::gen::set(&S::users, list(text())), rc::gen::set(&S::accounts, list(account_state())),
          rc::gen::set(&S::orders, list(order_state())),
          rc::gen::set(&S::stops, list(stop_state())),
          rc::gen::set(&S::trades, list(trade_state()))),
      [](core::Snapshot s) {
        // The decoder refuses a term with only one of epoch and leader: no term when epoch is 0.
        if (s.epoch == 0) s.leader = 0;
        return with_valid_stops(std::move(s));
      });
}

}  // namespace qx::gen

namespace qx::gen {

// The generator rc::Arbitrary<T> uses for each core type T, chosen by overload on a T* tag.
inline rc::Gen<core::Event> arbitrary_of(core::Event*) {
  return event();
}
inline rc::Gen<core::EventHeader> arbitrary_of(core::EventHeader*) {
  return event_header();
}
inline rc::Gen<core::EventBody> arbitrary_of(core::EventBody*) {
  return event_body();
}
inline rc::Gen<core::FeeSchedule> arbitrary_of(core::FeeSchedule*) {
  return fee_schedule();
}
inline rc::Gen<core::InstrumentParams> arbitrary_of(core::InstrumentParams*) {
  return instrument_params();
}
inline rc::Gen<core::CreateInstrument> arbitrary_of(core::CreateInstrument*) {
  return create_instrument();
}
inline rc::Gen<core::UpdateInstrument> arbitrary_of(core::UpdateInstrument*) {
  return update_instrument();
}
inline rc::Gen<core::SetInstrumentStatus> arbitrary_of(core::SetInstrumentStatus*) {
  return set_instrument_status();
}
inline rc::Gen<core::CreateUser> arbitrary_of(core::CreateUser*) {
  return create_user();
}
inline rc::Gen<core::CreateAccount> arbitrary_of(core::CreateAccount*) {
  return create_account();
}
inline rc::Gen<core::Deposit> arbitrary_of(core::Deposit*) {
  return deposit();
}
inline rc::Gen<core::Withdraw> arbitrary_of(core::Withdraw*) {
  return withdraw();
}
inline rc::Gen<core::SetAccountRisk> arbitrary_of(core::SetAccountRisk*) {
  return set_account_risk();
}
inline rc::Gen<core::SetRiskParams> arbitrary_of(core::SetRiskParams*) {
  return set_risk_params();
}
inline rc::Gen<core::Settle> arbitrary_of(core::Settle*) {
  return settle();
}
inline rc::Gen<core::NewOrder> arbitrary_of(core::NewOrder*) {
  return new_order();
}
inline rc::Gen<core::OrderRef> arbitrary_of(core::OrderRef*) {
  return order_ref();
}
inline rc::Gen<core::AmendOrder> arbitrary_of(core::AmendOrder*) {
  return amend_order();
}
inline rc::Gen<core::CancelOrder> arbitrary_of(core::CancelOrder*) {
  return cancel_order();
}
inline rc::Gen<core::Effect> arbitrary_of(core::Effect*) {
  return effect();
}
inline rc::Gen<core::InstrumentState> arbitrary_of(core::InstrumentState*) {
  return instrument_state();
}
inline rc::Gen<core::PositionState> arbitrary_of(core::PositionState*) {
  return position_state();
}
inline rc::Gen<core::AccountState> arbitrary_of(core::AccountState*) {
  return account_state();
}
inline rc::Gen<core::OrderState> arbitrary_of(core::OrderState*) {
  return order_state();
}
inline rc::Gen<core::TradeState> arbitrary_of(core::TradeState*) {
  return trade_state();
}
inline rc::Gen<core::Snapshot> arbitrary_of(core::Snapshot*) {
  return snapshot();
}

template <class T>
concept HasGenerator = requires(T* tag) {
  arbitrary_of(tag);
};

}  // namespace qx::gen

// rc::Arbitrary for every core type above, so properties can take them as parameters.
namespace rc {

template <class T>
struct Arbitrary<T, std::enable_if_t<qx::gen::HasGenerator<T>>> {
  static Gen<T> arbitrary() { return qx::gen::arbitrary_of(static_cast<T*>(nullptr)); }
};

}  // namespace rc
