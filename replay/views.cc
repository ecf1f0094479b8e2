#include "replay/views.h"

#include <cinttypes>
#include <cstdio>
#include <variant>

namespace qx::replay {

using nlohmann::json;

namespace {

// Integer v with `places` decimal places, e.g. (1140000000, 4) -> "114000.0000".
std::string fixed(std::int64_t v, int places) {
  bool neg = v < 0;
  auto mag = neg ? static_cast<std::uint64_t>(-(v + 1)) + 1 : static_cast<std::uint64_t>(v);
  std::uint64_t scale = 1;
  for (int i = 0; i < places; ++i) scale *= 10;
  char buf[48];
  if (places == 0) {
    std::snprintf(buf, sizeof buf, "%s%" PRIu64, neg ? "-" : "", mag);
  } else {
    std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%0*" PRIu64, neg ? "-" : "", mag / scale, places,
                  mag % scale);
  }
  return buf;
}

// "#id" for ids the engine does not know (a rejected request may name any id).
std::string unknown_id(std::uint64_t id) {
  std::string s(1, '#');
  s.append(std::to_string(id));
  return s;
}

std::string instrument_code(const core::Engine& engine, core::InstrumentId i) {
  return core::raw(i) < engine.instrument_count() ? engine.instrument(i).code
                                                  : unknown_id(core::raw(i));
}

std::string account_name(const core::Engine& engine, core::AccountId a) {
  return core::raw(a) < engine.account_count() ? engine.account_state(a).name
                                               : unknown_id(core::raw(a));
}

json side_json(const core::Engine& engine, const core::PositionSide& s) {
  return json{{"today", s.today.value},
              {"his", s.his.value},
              {"frozen_today", s.frozen_today.value},
              {"frozen_his", s.frozen_his.value},
              {"open_cost", money_text(engine, s.open_cost)},
              {"position_cost", money_text(engine, s.position_cost_his + s.position_cost_today)},
              {"margin", money_text(engine, s.margin)}};
}

json stp_json(core::SelfTradePrevention s) {
  return json{{"mode", core::to_string(s.mode)}, {"scope", core::to_string(s.scope)}};
}

json trigger_json(const core::Engine& engine, core::InstrumentId i, const core::StopTrigger& t) {
  return json{{"kind", core::to_string(t.kind)},
              {"source", core::to_string(t.source)},
              {"price", price_text(engine, i, t.price)}};
}

json order_ref_json(const core::OrderRef& r) {
  json j{{"client_order_id", core::raw(r.client_order_id)}};
  if (r.order_id) j["order_id"] = core::raw(*r.order_id);
  return j;
}

}  // namespace

std::string time_of_day_text(std::uint32_t seconds) {
  char text[16];
  std::snprintf(text, sizeof text, "%02u:%02u:%02u", seconds / 3600 % 100, seconds / 60 % 60,
                seconds % 60);
  return text;
}

json session_json(const core::SessionSchedule& s) {
  json entries = json::array();
  for (const core::SessionEntry& e : s.entries) {
    entries.push_back(
        {{"start", time_of_day_text(e.start_s)}, {"phase", core::to_string(e.phase)}});
  }
  // "+08:00", as POST /api/admin/instrument/{code}/session takes it, and in seconds.
  const std::int32_t minutes = (s.utc_offset_s < 0 ? -s.utc_offset_s : s.utc_offset_s) / 60;
  char offset[16];
  std::snprintf(offset, sizeof offset, "%c%02d:%02d", s.utc_offset_s < 0 ? '-' : '+',
                minutes / 60 % 100, minutes % 60);
  return {{"utc_offset", offset}, {"utc_offset_s", s.utc_offset_s}, {"entries", entries}};
}

json limits_json(const core::EngineLimits& l) {
  return json{{"instruments", l.instruments},
              {"accounts", l.accounts},
              {"orders", l.orders},
              {"orders_per_account", l.orders_per_account},
              {"orders_per_level", l.orders_per_level}};
}

std::string money_text(const core::Engine& engine, core::Money m) {
  return fixed(m.value, static_cast<int>(engine.money_decimals()));
}

std::string price_text(const core::Engine& engine, core::InstrumentId i, core::PriceTicks p) {
  if (core::raw(i) >= engine.instrument_count()) return std::to_string(p.value);
  // ticks * tick_e8 / 1e8, printed with 8 places then trimmed of trailing zeros (keeping one).
  __extension__ __int128 v =
      static_cast<__int128>(p.value) * engine.instrument(i).params.price_tick_e8;
  std::string s = fixed(static_cast<std::int64_t>(v), 8);
  while (s.size() > 2 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

const char* event_kind(const core::Event& e) {
  static constexpr const char* kNames[] = {
      "CreateInstrument", "UpdateInstrument", "SetInstrumentStatus",
      "CreateUser",       "CreateAccount",    "Deposit",
      "Withdraw",         "SetAccountRisk",   "SetRiskParams",
      "Settle",           "NewOrder",         "AmendOrder",
      "CancelOrder",      "MarkToMarket",     "SetCurrency",
      "SetLimits",        "SetSession",       "LeaderTerm"};
  static_assert(std::size(kNames) == std::variant_size_v<core::EventBody>);
  return kNames[e.body.index()];
}

json event_json(const core::Engine& engine, const core::Event& e) {
  json j{{"seq", core::raw(e.header.seq)},
         {"timestamp_ns", e.header.timestamp_ns},
         {"source", e.header.source},
         {"type", event_kind(e)}};
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (requires { b.account; }) j["account"] = account_name(engine, b.account);
        if constexpr (requires { b.instrument; }) {
          j["instrument"] = instrument_code(engine, b.instrument);
        }
        if constexpr (std::is_same_v<T, core::CreateInstrument>) {
          j["code"] = b.code;
          j["exchange"] = b.exchange;
          j["price_tick_e8"] = b.params.price_tick_e8;
          j["multiplier_e8"] = b.params.multiplier_e8;
          j["pre_settlement_ticks"] = b.pre_settlement.value;
        } else if constexpr (std::is_same_v<T, core::CreateUser>) {
          j["name"] = b.name;
        } else if constexpr (std::is_same_v<T, core::CreateAccount>) {
          j["name"] = b.name;
          j["user"] = core::raw(b.user);
        } else if constexpr (std::is_same_v<T, core::Deposit> ||
                             std::is_same_v<T, core::Withdraw>) {
          j["amount"] = money_text(engine, b.amount);
        } else if constexpr (std::is_same_v<T, core::SetInstrumentStatus>) {
          j["status"] = core::to_string(b.status);
        } else if constexpr (std::is_same_v<T, core::SetAccountRisk>) {
          j["max_open_orders"] = b.max_open_orders;
          j["enabled"] = b.enabled;
          j["stp"] = stp_json(b.stp);
        } else if constexpr (std::is_same_v<T, core::SetRiskParams>) {
          j["liquidation_ratio_ppb"] = b.liquidation_ratio_ppb;
          if (b.insurance_account) {
            j["insurance_account"] = account_name(engine, *b.insurance_account);
          }
        } else if constexpr (std::is_same_v<T, core::SetCurrency>) {
          j["currency"] = b.code;
          j["decimals"] = b.decimals;
        } else if constexpr (std::is_same_v<T, core::SetLimits>) {
          j["limits"] = limits_json(b.limits);
        } else if constexpr (std::is_same_v<T, core::SetSession>) {
          j["session"] = session_json(b.schedule);
        } else if constexpr (std::is_same_v<T, core::LeaderTerm>) {
          j["epoch"] = b.epoch;
          j["leader"] = b.node;
        } else if constexpr (std::is_same_v<T, core::Settle>) {
          json prices = json::array();
          for (const auto& p : b.prices) {
            prices.push_back({{"instrument", instrument_code(engine, p.instrument)},
                              {"price", price_text(engine, p.instrument, p.price)}});
          }
          j["prices"] = prices;
        } else if constexpr (std::is_same_v<T, core::NewOrder>) {
          j["client_order_id"] = core::raw(b.client_order_id);
          j["direction"] = core::to_string(b.direction);
          j["offset"] = core::to_string(b.offset);
          j["price_type"] = core::to_string(b.price_type);
          j["price"] = price_text(engine, b.instrument, b.price);
          j["volume"] = b.volume.value;
          j["time_condition"] = core::to_string(b.time_condition);
          j["volume_condition"] = core::to_string(b.volume_condition);
          j["post_only"] = b.post_only;
          if (b.stp) j["stp"] = stp_json(*b.stp);
          if (b.trigger) j["trigger"] = trigger_json(engine, b.instrument, *b.trigger);
        } else if constexpr (std::is_same_v<T, core::AmendOrder>) {
          j["ref"] = order_ref_json(b.ref);
          j["new_price_ticks"] = b.new_price.value;
          j["new_volume_left"] = b.new_volume_left.value;
        } else if constexpr (std::is_same_v<T, core::CancelOrder>) {
          j["ref"] = order_ref_json(b.ref);
        }
      },
      e.body);
  return j;
}

json effect_json(const core::Engine& engine, const core::Effect& e) {
  using K = core::EffectKind;
  json j{{"kind", core::to_string(e.kind)}};
  switch (e.kind) {
    case K::kOrderRejected:
    case K::kAdminRejected:
      j["reason"] = core::to_string(static_cast<core::RejectReason>(e.reason));
      break;
    case K::kOrderCancelled:
      j["reason"] = core::to_string(static_cast<core::CancelReason>(e.reason));
      break;
    default: break;
  }
  if (e.kind == K::kTrade || e.kind == K::kOrderAccepted || e.kind == K::kOrderAmended ||
      e.kind == K::kOrderCancelled || e.kind == K::kOrderRejected || e.kind == K::kStopAccepted ||
      e.kind == K::kStopTriggered) {
    j["account"] = account_name(engine, e.account);
    j["order_id"] = core::raw(e.order);
    j["client_order_id"] = core::raw(e.client_order_id);
    j["price"] = price_text(engine, e.instrument, e.price);
    j["volume"] = e.volume.value;
    j["volume_left"] = e.volume_left.value;
  }
  if (e.kind == K::kTrade) {
    j["trade_id"] = core::raw(e.trade);
    j["instrument"] = instrument_code(engine, e.instrument);
    j["direction"] = core::to_string(e.direction);
    j["maker_order_id"] = core::raw(e.counter_order);
    j["maker_account"] = account_name(engine, e.counter_account);
    j["taker_fee"] = money_text(engine, e.amount);
    j["maker_fee"] = money_text(engine, e.amount2);
  }
  if (e.kind == K::kStopAccepted || e.kind == K::kStopTriggered) {
    j["instrument"] = instrument_code(engine, e.instrument);
    j["direction"] = core::to_string(e.direction);
    j["trigger_price"] = price_text(engine, e.instrument, core::PriceTicks{e.amount.value});
    j["trigger_kind"] = core::to_string(static_cast<core::TriggerKind>(e.reason & 0xFF));
    j["trigger_source"] = core::to_string(static_cast<core::TriggerSource>(e.reason >> 8));
  }
  if (e.kind == K::kDeposited || e.kind == K::kWithdrawn || e.kind == K::kAccountSettled ||
      e.kind == K::kLiquidationStarted) {
    j["account"] = account_name(engine, e.account);
    j["amount"] = money_text(engine, e.amount);
  }
  if (e.kind == K::kSessionSet || e.kind == K::kPhaseChanged || e.kind == K::kAuctionUncrossed) {
    j["instrument"] = instrument_code(engine, e.instrument);
  }
  if (e.kind == K::kPhaseChanged) {
    j["phase"] = core::to_string(static_cast<core::TradingPhase>(e.reason));
    j["previous_phase"] = core::to_string(static_cast<core::TradingPhase>(e.amount.value));
  }
  if (e.kind == K::kAuctionUncrossed) {
    j["price"] = price_text(engine, e.instrument, e.price);
    j["volume"] = e.volume.value;
  }
  if (e.kind == K::kPositionDelivered) {
    j["account"] = account_name(engine, e.account);
    j["instrument"] = instrument_code(engine, e.instrument);
    j["side"] = e.direction == core::Direction::kBuy ? "LONG" : "SHORT";
    j["volume"] = e.volume.value;
    j["price"] = price_text(engine, e.instrument, e.price);
    j["value"] = money_text(engine, e.amount);
  }
  return j;
}

json account_json(const core::Engine& engine, core::AccountId a) {
  core::AccountView v = engine.account(a);
  return json{{"user_id", engine.user_name(v.user)},
              {"account_id", std::string(v.name)},
              {"currency", engine.currency()},
              {"pre_balance", money_text(engine, v.pre_balance)},
              {"deposit", money_text(engine, v.deposit)},
              {"withdraw", money_text(engine, v.withdraw)},
              {"close_profit", money_text(engine, v.close_profit)},
              {"commission", money_text(engine, v.commission)},
              {"static_balance", money_text(engine, v.static_balance)},
              {"position_profit", money_text(engine, v.position_profit)},
              {"float_profit", money_text(engine, v.float_profit)},
              {"balance", money_text(engine, v.balance)},
              {"margin", money_text(engine, v.margin)},
              {"frozen_margin", money_text(engine, v.frozen_margin)},
              {"frozen_commission", money_text(engine, v.frozen_commission)},
              {"available", money_text(engine, v.available)},
              {"risk_ratio", fixed(v.risk_ratio_ppb, 9)}};
}

json positions_json(const core::Engine& engine, core::AccountId a) {
  json out = json::object();
  for (const core::PositionView& p : engine.positions(a)) {
    const core::InstrumentState& ins = engine.instrument(p.instrument);
    out[ins.code] = json{
        {"exchange_id", ins.exchange},
        {"instrument_id", ins.code},
        {"volume_long", p.long_side.total().value},
        {"volume_short", p.short_side.total().value},
        {"long", side_json(engine, p.long_side)},
        {"short", side_json(engine, p.short_side)},
        {"float_profit", money_text(engine, p.float_profit_long + p.float_profit_short)},
        {"position_profit", money_text(engine, p.position_profit_long + p.position_profit_short)}};
  }
  return out;
}

namespace {

json order_json(const core::Engine& engine, const core::OrderState& o, const char* status) {
  return json{{"order_id", core::raw(o.id)},
              {"client_order_id", core::raw(o.client_order_id)},
              {"instrument_id", engine.instrument(o.instrument).code},
              {"direction", core::to_string(o.direction)},
              {"offset", core::to_string(o.offset)},
              {"price_type", core::to_string(o.price_type)},
              {"limit_price", price_text(engine, o.instrument, o.price)},
              {"time_condition", core::to_string(o.time_condition)},
              {"volume_orign", o.volume_orig.value},
              {"volume_left", o.volume_left.value},
              {"status", status},
              {"frozen_margin", money_text(engine, o.frozen_margin)},
              {"frozen_commission", money_text(engine, o.frozen_commission)},
              {"stp", stp_json(o.stp)},
              {"insert_date_time", o.insert_time_ns}};
}

}  // namespace

// Resting orders (ALIVE), then pending stops (PENDING_TRIGGER, holding nothing, with their
// trigger), by id.
json orders_json(const core::Engine& engine, core::AccountId a) {
  json out = json::object();
  for (const core::OrderState& o : engine.orders(a)) {
    out[std::to_string(core::raw(o.id))] = order_json(engine, o, "ALIVE");
  }
  for (const core::StopState& st : engine.stops(a)) {
    const core::NewOrder& n = st.order;
    core::OrderState o;
    o.id = st.id;
    o.client_order_id = n.client_order_id;
    o.instrument = n.instrument;
    o.direction = n.direction;
    o.offset = n.offset;
    o.price_type = n.price_type;
    o.time_condition = n.time_condition;
    o.price = n.price;
    o.volume_orig = o.volume_left = n.volume;
    o.stp = n.stp.value_or(engine.account_state(a).stp);
    o.insert_time_ns = st.insert_time_ns;
    json j = order_json(engine, o, "PENDING_TRIGGER");
    j["trigger"] = trigger_json(engine, n.instrument, *n.trigger);
    out[std::to_string(core::raw(st.id))] = j;
  }
  return out;
}

json trades_json(const core::Engine& engine, core::AccountId a) {
  json out = json::object();
  for (const core::TradeState& t : engine.trades(a)) {
    bool taker = t.taker_account == a;
    core::Direction d = taker
                            ? t.taker_direction
                            : (t.taker_direction == core::Direction::kBuy ? core::Direction::kSell
                                                                          : core::Direction::kBuy);
    out[std::to_string(core::raw(t.id))] =
        json{{"trade_id", core::raw(t.id)},
             {"order_id", core::raw(taker ? t.taker_order : t.maker_order)},
             {"instrument_id", engine.instrument(t.instrument).code},
             {"direction", core::to_string(d)},
             {"offset", core::to_string(taker ? t.taker_offset : t.maker_offset)},
             {"price", price_text(engine, t.instrument, t.price)},
             {"volume", t.volume.value},
             {"commission", money_text(engine, taker ? t.taker_fee : t.maker_fee)},
             {"trade_date_time", t.time_ns}};
  }
  return out;
}

json book_json(const core::Engine& engine, core::InstrumentId i, std::size_t depth) {
  core::BookView b = engine.book(i, depth);
  auto levels = [&](const std::vector<core::LevelView>& ls) {
    json out = json::array();
    for (const core::LevelView& l : ls) {
      out.push_back({{"price", price_text(engine, i, l.price)},
                     {"price_ticks", l.price.value},
                     {"volume", l.volume.value},
                     {"orders", l.orders}});
    }
    return out;
  };
  return json{{"instrument_id", engine.instrument(i).code},
              {"bids", levels(b.bids)},
              {"asks", levels(b.asks)}};
}

}  // namespace qx::replay
