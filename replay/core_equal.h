// Test support: field-by-field comparison of core values (events, effects, snapshots) that names
// the first difference, e.g. `orders[3].volume_left: 5 != 7`.
//
//   EXPECT_EQ(replay::testkit::diff(expected, decoded), "");
//
// Core defines operator== only where the engine needs it, and tests must not add it there, so
// the comparison lives here. Every compare() checks with field_count<T>() that it covers all of
// T's members: a member added to a core struct breaks the build of the tests until it is
// compared here too. Header-only; for tests only (it allocates strings freely).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"

namespace qx::replay::testkit {

namespace detail {

// Converts to anything; counts the members of an aggregate by how many initialisers it accepts.
struct AnyField {
  template <class T>
  operator T() const;  // NOLINT: implicit by design; never defined (unevaluated use only)
};

}  // namespace detail

template <class T, class... Fields>
consteval std::size_t field_count() {
  if constexpr (requires { T{Fields{}..., detail::AnyField{}}; }) {
    return field_count<T, Fields..., detail::AnyField>();
  } else {
    return sizeof...(Fields);
  }
}

// Printable form of a leaf value.
template <class T>
std::string show(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<std::uint64_t>(v));
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "\"" + v + "\" (" + std::to_string(v.size()) + " bytes)";
  } else if constexpr (std::is_same_v<T, core::SelfTradePrevention>) {
    return "{mode " + std::to_string(static_cast<unsigned>(v.mode)) + ", scope " +
           std::to_string(static_cast<unsigned>(v.scope)) + "}";
  } else if constexpr (std::is_same_v<T, core::StopTrigger>) {
    return "{kind " + std::to_string(static_cast<unsigned>(v.kind)) + ", source " +
           std::to_string(static_cast<unsigned>(v.source)) + ", price " +
           std::to_string(v.price.value) + "}";
  } else {
    return std::to_string(v.value);  // core::Quantity
  }
}

template <class T>
std::string show(const std::optional<T>& v) {
  return v.has_value() ? show(*v) : "nullopt";
}

// Collects the path and values of the first difference.
class Differ {
 public:
  template <class T>
  void leaf(std::string_view name, const T& a, const T& b) {
    if (found() || a == b) return;
    first_ = path_ + std::string(name) + ": " + show(a) + " != " + show(b);
  }

  // Compares a nested struct under `name` with the compare() overload for its type.
  template <class T>
  void nested(std::string_view name, const T& a, const T& b);

  template <class T>
  void list(std::string_view name, const std::vector<T>& a, const std::vector<T>& b);

  bool found() const { return !first_.empty(); }
  const std::string& result() const { return first_; }

 private:
  friend class PathScope;
  std::string path_;
  std::string first_;
};

// Extends the differ's path for the lifetime of the scope.
class PathScope {
 public:
  PathScope(Differ& d, std::string_view part) : d_(d), size_(d.path_.size()) {
    d_.path_ += part;
    d_.path_ += '.';
  }
  ~PathScope() { d_.path_.resize(size_); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  Differ& d_;
  std::size_t size_;
};

inline void compare(Differ& d, const core::EventHeader& a, const core::EventHeader& b) {
  static_assert(field_count<core::EventHeader>() == 3);
  d.leaf("seq", a.seq, b.seq);
  d.leaf("timestamp_ns", a.timestamp_ns, b.timestamp_ns);
  d.leaf("source", a.source, b.source);
}

inline void compare(Differ& d, const core::FeeSchedule& a, const core::FeeSchedule& b) {
  static_assert(field_count<core::FeeSchedule>() == 6);
  d.leaf("open_per_lot", a.open_per_lot, b.open_per_lot);
  d.leaf("open_ppb", a.open_ppb, b.open_ppb);
  d.leaf("close_per_lot", a.close_per_lot, b.close_per_lot);
  d.leaf("close_ppb", a.close_ppb, b.close_ppb);
  d.leaf("close_today_per_lot", a.close_today_per_lot, b.close_today_per_lot);
  d.leaf("close_today_ppb", a.close_today_ppb, b.close_today_ppb);
}

inline void compare(Differ& d, const core::InstrumentParams& a, const core::InstrumentParams& b) {
  static_assert(field_count<core::InstrumentParams>() == 9);
  d.leaf("last_trading_day", a.last_trading_day, b.last_trading_day);
  d.leaf("price_tick_e8", a.price_tick_e8, b.price_tick_e8);
  d.leaf("multiplier_e8", a.multiplier_e8, b.multiplier_e8);
  d.leaf("margin_long_ppb", a.margin_long_ppb, b.margin_long_ppb);
  d.leaf("margin_short_ppb", a.margin_short_ppb, b.margin_short_ppb);
  d.nested("fees", a.fees, b.fees);
  d.leaf("price_band_ppb", a.price_band_ppb, b.price_band_ppb);
  d.leaf("max_order_volume", a.max_order_volume, b.max_order_volume);
  d.leaf("position_limit", a.position_limit, b.position_limit);
}

inline void compare(Differ& d, const core::CreateInstrument& a, const core::CreateInstrument& b) {
  static_assert(field_count<core::CreateInstrument>() == 4);
  d.leaf("code", a.code, b.code);
  d.leaf("exchange", a.exchange, b.exchange);
  d.nested("params", a.params, b.params);
  d.leaf("pre_settlement", a.pre_settlement, b.pre_settlement);
}

inline void compare(Differ& d, const core::UpdateInstrument& a, const core::UpdateInstrument& b) {
  static_assert(field_count<core::UpdateInstrument>() == 2);
  d.leaf("instrument", a.instrument, b.instrument);
  d.nested("params", a.params, b.params);
}

inline void compare(Differ& d, const core::SetInstrumentStatus& a,
                    const core::SetInstrumentStatus& b) {
  static_assert(field_count<core::SetInstrumentStatus>() == 2);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("status", a.status, b.status);
}

inline void compare(Differ& d, const core::CreateUser& a, const core::CreateUser& b) {
  static_assert(field_count<core::CreateUser>() == 1);
  d.leaf("name", a.name, b.name);
}

inline void compare(Differ& d, const core::CreateAccount& a, const core::CreateAccount& b) {
  static_assert(field_count<core::CreateAccount>() == 2);
  d.leaf("user", a.user, b.user);
  d.leaf("name", a.name, b.name);
}

inline void compare(Differ& d, const core::Deposit& a, const core::Deposit& b) {
  static_assert(field_count<core::Deposit>() == 2);
  d.leaf("account", a.account, b.account);
  d.leaf("amount", a.amount, b.amount);
}

inline void compare(Differ& d, const core::Withdraw& a, const core::Withdraw& b) {
  static_assert(field_count<core::Withdraw>() == 2);
  d.leaf("account", a.account, b.account);
  d.leaf("amount", a.amount, b.amount);
}

inline void compare(Differ& d, const core::SetAccountRisk& a, const core::SetAccountRisk& b) {
  static_assert(field_count<core::SetAccountRisk>() == 4);
  d.leaf("stp", a.stp, b.stp);
  d.leaf("account", a.account, b.account);
  d.leaf("max_open_orders", a.max_open_orders, b.max_open_orders);
  d.leaf("enabled", a.enabled, b.enabled);
}

inline void compare(Differ& d, const core::SetRiskParams& a, const core::SetRiskParams& b) {
  static_assert(field_count<core::SetRiskParams>() == 2);
  d.leaf("liquidation_ratio_ppb", a.liquidation_ratio_ppb, b.liquidation_ratio_ppb);
  d.leaf("insurance_account", a.insurance_account, b.insurance_account);
}

inline void compare(Differ& d, const core::SettlementPrice& a, const core::SettlementPrice& b) {
  static_assert(field_count<core::SettlementPrice>() == 2);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("price", a.price, b.price);
}

inline void compare(Differ& d, const core::Settle& a, const core::Settle& b) {
  static_assert(field_count<core::Settle>() == 1);
  d.list("prices", a.prices, b.prices);
}

inline void compare(Differ& d, const core::NewOrder& a, const core::NewOrder& b) {
  static_assert(field_count<core::NewOrder>() == 13);
  d.leaf("stp", a.stp, b.stp);
  d.leaf("trigger", a.trigger, b.trigger);
  d.leaf("account", a.account, b.account);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("client_order_id", a.client_order_id, b.client_order_id);
  d.leaf("direction", a.direction, b.direction);
  d.leaf("offset", a.offset, b.offset);
  d.leaf("price_type", a.price_type, b.price_type);
  d.leaf("price", a.price, b.price);
  d.leaf("volume", a.volume, b.volume);
  d.leaf("time_condition", a.time_condition, b.time_condition);
  d.leaf("volume_condition", a.volume_condition, b.volume_condition);
  d.leaf("post_only", a.post_only, b.post_only);
}

inline void compare(Differ& d, const core::OrderRef& a, const core::OrderRef& b) {
  static_assert(field_count<core::OrderRef>() == 2);
  d.leaf("order_id", a.order_id, b.order_id);
  d.leaf("client_order_id", a.client_order_id, b.client_order_id);
}

inline void compare(Differ& d, const core::AmendOrder& a, const core::AmendOrder& b) {
  static_assert(field_count<core::AmendOrder>() == 4);
  d.leaf("account", a.account, b.account);
  d.nested("ref", a.ref, b.ref);
  d.leaf("new_price", a.new_price, b.new_price);
  d.leaf("new_volume_left", a.new_volume_left, b.new_volume_left);
}

inline void compare(Differ& d, const core::CancelOrder& a, const core::CancelOrder& b) {
  static_assert(field_count<core::CancelOrder>() == 2);
  d.leaf("account", a.account, b.account);
  d.nested("ref", a.ref, b.ref);
}

inline void compare(Differ&, const core::MarkToMarket&, const core::MarkToMarket&) {}

inline void compare(Differ& d, const core::SetCurrency& a, const core::SetCurrency& b) {
  static_assert(field_count<core::SetCurrency>() == 2);
  d.leaf("code", a.code, b.code);
  d.leaf("decimals", a.decimals, b.decimals);
}

inline void compare(Differ& d, const core::SessionEntry& a, const core::SessionEntry& b) {
  static_assert(field_count<core::SessionEntry>() == 2);
  d.leaf("start_s", a.start_s, b.start_s);
  d.leaf("phase", a.phase, b.phase);
}

inline void compare(Differ& d, const core::SessionSchedule& a, const core::SessionSchedule& b) {
  static_assert(field_count<core::SessionSchedule>() == 2);
  d.leaf("utc_offset_s", a.utc_offset_s, b.utc_offset_s);
  d.list("entries", a.entries, b.entries);
}

inline void compare(Differ& d, const core::SetSession& a, const core::SetSession& b) {
  static_assert(field_count<core::SetSession>() == 2);
  d.leaf("instrument", a.instrument, b.instrument);
  d.nested("schedule", a.schedule, b.schedule);
}

inline void compare(Differ& d, const core::LeaderTerm& a, const core::LeaderTerm& b) {
  static_assert(field_count<core::LeaderTerm>() == 2);
  d.leaf("epoch", a.epoch, b.epoch);
  d.leaf("node", a.node, b.node);
}

inline void compare(Differ& d, const core::Event& a, const core::Event& b) {
  static_assert(field_count<core::Event>() == 2);
  static_assert(std::variant_size_v<core::EventBody> == 18);
  d.nested("header", a.header, b.header);
  d.leaf("body.index", a.body.index(), b.body.index());
  if (d.found()) return;
  std::visit(
      [&](const auto& body_a) {
        using T = std::decay_t<decltype(body_a)>;
        d.nested("body", body_a, std::get<T>(b.body));
      },
      a.body);
}

inline void compare(Differ& d, const core::Effect& a, const core::Effect& b) {
  static_assert(field_count<core::Effect>() == 19);
  d.leaf("kind", a.kind, b.kind);
  d.leaf("direction", a.direction, b.direction);
  d.leaf("offset", a.offset, b.offset);
  d.leaf("counter_offset", a.counter_offset, b.counter_offset);
  d.leaf("reason", a.reason, b.reason);
  d.leaf("pad_", a.pad_, b.pad_);
  d.leaf("account", a.account, b.account);
  d.leaf("counter_account", a.counter_account, b.counter_account);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("user", a.user, b.user);
  d.leaf("order", a.order, b.order);
  d.leaf("counter_order", a.counter_order, b.counter_order);
  d.leaf("client_order_id", a.client_order_id, b.client_order_id);
  d.leaf("trade", a.trade, b.trade);
  d.leaf("price", a.price, b.price);
  d.leaf("volume", a.volume, b.volume);
  d.leaf("volume_left", a.volume_left, b.volume_left);
  d.leaf("amount", a.amount, b.amount);
  d.leaf("amount2", a.amount2, b.amount2);
}

inline void compare(Differ& d, const core::InstrumentState& a, const core::InstrumentState& b) {
  static_assert(field_count<core::InstrumentState>() == 12);
  d.leaf("code", a.code, b.code);
  d.leaf("exchange", a.exchange, b.exchange);
  d.nested("params", a.params, b.params);
  d.leaf("status", a.status, b.status);
  d.leaf("pre_settlement", a.pre_settlement, b.pre_settlement);
  d.leaf("last_price", a.last_price, b.last_price);
  d.leaf("volume_today", a.volume_today, b.volume_today);
  d.leaf("turnover_today", a.turnover_today, b.turnover_today);
  d.leaf("price_max", a.price_max, b.price_max);
  d.nested("session", a.session, b.session);
  d.leaf("phase", a.phase, b.phase);
  d.leaf("next_phase_ns", a.next_phase_ns, b.next_phase_ns);
}

inline void compare(Differ& d, const core::PositionSide& a, const core::PositionSide& b) {
  static_assert(field_count<core::PositionSide>() == 8);
  d.leaf("today", a.today, b.today);
  d.leaf("his", a.his, b.his);
  d.leaf("frozen_today", a.frozen_today, b.frozen_today);
  d.leaf("frozen_his", a.frozen_his, b.frozen_his);
  d.leaf("open_cost", a.open_cost, b.open_cost);
  d.leaf("position_cost_today", a.position_cost_today, b.position_cost_today);
  d.leaf("position_cost_his", a.position_cost_his, b.position_cost_his);
  d.leaf("margin", a.margin, b.margin);
}

inline void compare(Differ& d, const core::PositionState& a, const core::PositionState& b) {
  static_assert(field_count<core::PositionState>() == 3);
  d.leaf("instrument", a.instrument, b.instrument);
  d.nested("long_side", a.long_side, b.long_side);
  d.nested("short_side", a.short_side, b.short_side);
}

inline void compare(Differ& d, const core::AccountState& a, const core::AccountState& b) {
  static_assert(field_count<core::AccountState>() == 11);
  d.leaf("stp", a.stp, b.stp);
  d.leaf("name", a.name, b.name);
  d.leaf("user", a.user, b.user);
  d.leaf("enabled", a.enabled, b.enabled);
  d.leaf("max_open_orders", a.max_open_orders, b.max_open_orders);
  d.leaf("pre_balance", a.pre_balance, b.pre_balance);
  d.leaf("deposit", a.deposit, b.deposit);
  d.leaf("withdraw", a.withdraw, b.withdraw);
  d.leaf("close_profit", a.close_profit, b.close_profit);
  d.leaf("commission", a.commission, b.commission);
  d.list("positions", a.positions, b.positions);
}

inline void compare(Differ& d, const core::OrderState& a, const core::OrderState& b) {
  static_assert(field_count<core::OrderState>() == 19);
  d.leaf("stp", a.stp, b.stp);
  d.leaf("id", a.id, b.id);
  d.leaf("client_order_id", a.client_order_id, b.client_order_id);
  d.leaf("account", a.account, b.account);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("direction", a.direction, b.direction);
  d.leaf("offset", a.offset, b.offset);
  d.leaf("price_type", a.price_type, b.price_type);
  d.leaf("time_condition", a.time_condition, b.time_condition);
  d.leaf("post_only", a.post_only, b.post_only);
  d.leaf("forced", a.forced, b.forced);
  d.leaf("price", a.price, b.price);
  d.leaf("volume_orig", a.volume_orig, b.volume_orig);
  d.leaf("volume_left", a.volume_left, b.volume_left);
  d.leaf("frozen_margin", a.frozen_margin, b.frozen_margin);
  d.leaf("frozen_commission", a.frozen_commission, b.frozen_commission);
  d.leaf("frozen_today", a.frozen_today, b.frozen_today);
  d.leaf("frozen_his", a.frozen_his, b.frozen_his);
  d.leaf("insert_time_ns", a.insert_time_ns, b.insert_time_ns);
}

inline void compare(Differ& d, const core::EngineLimits& a, const core::EngineLimits& b) {
  static_assert(field_count<core::EngineLimits>() == 5);
  d.leaf("instruments", a.instruments, b.instruments);
  d.leaf("accounts", a.accounts, b.accounts);
  d.leaf("orders", a.orders, b.orders);
  d.leaf("orders_per_account", a.orders_per_account, b.orders_per_account);
  d.leaf("orders_per_level", a.orders_per_level, b.orders_per_level);
}

inline void compare(Differ& d, const core::SetLimits& a, const core::SetLimits& b) {
  static_assert(field_count<core::SetLimits>() == 1);
  d.nested("limits", a.limits, b.limits);
}

inline void compare(Differ& d, const core::StopState& a, const core::StopState& b) {
  static_assert(field_count<core::StopState>() == 3);
  d.leaf("id", a.id, b.id);
  d.nested("order", a.order, b.order);
  d.leaf("insert_time_ns", a.insert_time_ns, b.insert_time_ns);
}

inline void compare(Differ& d, const core::TradeState& a, const core::TradeState& b) {
  static_assert(field_count<core::TradeState>() == 14);
  d.leaf("id", a.id, b.id);
  d.leaf("instrument", a.instrument, b.instrument);
  d.leaf("price", a.price, b.price);
  d.leaf("volume", a.volume, b.volume);
  d.leaf("taker_order", a.taker_order, b.taker_order);
  d.leaf("taker_account", a.taker_account, b.taker_account);
  d.leaf("taker_direction", a.taker_direction, b.taker_direction);
  d.leaf("taker_offset", a.taker_offset, b.taker_offset);
  d.leaf("taker_fee", a.taker_fee, b.taker_fee);
  d.leaf("maker_order", a.maker_order, b.maker_order);
  d.leaf("maker_account", a.maker_account, b.maker_account);
  d.leaf("maker_offset", a.maker_offset, b.maker_offset);
  d.leaf("maker_fee", a.maker_fee, b.maker_fee);
  d.leaf("time_ns", a.time_ns, b.time_ns);
}

inline void compare(Differ& d, const core::Snapshot& a, const core::Snapshot& b) {
  static_assert(field_count<core::Snapshot>() == 20);
  d.leaf("semantics_version", a.semantics_version, b.semantics_version);
  d.leaf("last_seq", a.last_seq, b.last_seq);
  d.leaf("last_timestamp_ns", a.last_timestamp_ns, b.last_timestamp_ns);
  d.leaf("trading_day", a.trading_day, b.trading_day);
  d.leaf("next_order_id", a.next_order_id, b.next_order_id);
  d.leaf("next_trade_id", a.next_trade_id, b.next_trade_id);
  d.leaf("effects_hash", a.effects_hash, b.effects_hash);
  d.leaf("liquidation_ratio_ppb", a.liquidation_ratio_ppb, b.liquidation_ratio_ppb);
  d.leaf("insurance_account", a.insurance_account, b.insurance_account);
  d.leaf("currency", a.currency, b.currency);
  d.leaf("money_decimals", a.money_decimals, b.money_decimals);
  d.nested("limits", a.limits, b.limits);
  d.leaf("epoch", a.epoch, b.epoch);
  d.leaf("leader", a.leader, b.leader);
  d.list("instruments", a.instruments, b.instruments);
  d.list("users", a.users, b.users);
  d.list("accounts", a.accounts, b.accounts);
  d.list("orders", a.orders, b.orders);
  d.list("stops", a.stops, b.stops);
  d.list("trades", a.trades, b.trades);
}

// Strings are leaves inside lists too.
inline void compare(Differ& d, const std::string& a, const std::string& b) {
  d.leaf("text", a, b);
}

template <class T>
void Differ::nested(std::string_view name, const T& a, const T& b) {
  if (found()) return;
  PathScope scope(*this, name);
  compare(*this, a, b);
}

template <class T>
void Differ::list(std::string_view name, const std::vector<T>& a, const std::vector<T>& b) {
  if (found()) return;
  leaf(std::string(name) + ".size", a.size(), b.size());
  for (std::size_t i = 0; i < a.size() && !found(); ++i) {
    nested(std::string(name) + "[" + std::to_string(i) + "]", a[i], b[i]);
  }
}

// The first difference between a and b as "path: a != b", or "" when they are equal.
template <class T>
std::string diff(const T& a, const T& b) {
  Differ d;
  compare(d, a, b);
  return d.result();
}

}  // namespace qx::replay::testkit
