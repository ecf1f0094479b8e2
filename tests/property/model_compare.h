// The comparison of the engine with the reference model (model.h), shared by the model-agreement
// property (engine_properties_test.cc) and the model fuzzer (fuzz/engine_model.cc).
//
//   std::string diff = compare_effects(effects, expected);  // the event's effects
//   if (diff.empty()) diff = compare_state(engine, model);  // then the state after it
//   if (!diff.empty()) ... where(event) + diff ...
//
// Effects are compared kind by kind on the fields docs/semantics.md pins down (effects_agree);
// the state on every number of every account, position side, resting order, pending stop and
// price level that both sides expose. Each function returns "" when they agree, else a text that
// names every difference. describe() gives the one-line form of an event used in those texts and
// in rapidcheck's counterexamples. Nothing here depends on rapidcheck or gtest.
#pragma once

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/effects.h"
#include "core/engine.h"
#include "core/events.h"
#include "core/types.h"
#include "tests/property/model.h"

namespace qx::property {

// A one-line description of an event, for counterexamples and failure messages.
inline std::string describe(const core::EventBody& body) {
  std::ostringstream os;
  auto ref = [&os](const core::OrderRef& r) {
    if (r.order_id) os << " order=" << core::raw(*r.order_id);
    os << " client=" << core::raw(r.client_order_id);
  };
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, core::CreateInstrument>) {
          const core::InstrumentParams& p = e.params;
          os << "CreateInstrument " << e.code << " tick_e8=" << p.price_tick_e8
             << " mult_e8=" << p.multiplier_e8 << " margin=" << p.margin_long_ppb << "/"
             << p.margin_short_ppb << " fees(open " << p.fees.open_per_lot.value << "+"
             << p.fees.open_ppb << "ppb, close " << p.fees.close_per_lot.value << "+"
             << p.fees.close_ppb << "ppb, today " << p.fees.close_today_per_lot.value << "+"
             << p.fees.close_today_ppb
             << "ppb) band=" << (p.price_band_ppb ? std::to_string(*p.price_band_ppb) : "none")
             << " max_vol=" << p.max_order_volume.value << " pos_limit=" << p.position_limit.value
             << " pre=" << e.pre_settlement.value << " last_day=" << p.last_trading_day;
        } else if constexpr (std::is_same_v<T, core::UpdateInstrument>) {
          os << "UpdateInstrument " << core::raw(e.instrument);
        } else if constexpr (std::is_same_v<T, core::SetInstrumentStatus>) {
          os << "SetInstrumentStatus ins=" << core::raw(e.instrument) << " "
             << core::to_string(e.status);
        } else if constexpr (std::is_same_v<T, core::CreateUser>) {
          os << "CreateUser " << e.name;
        } else if constexpr (std::is_same_v<T, core::CreateAccount>) {
          os << "CreateAccount user=" << core::raw(e.user) << " " << e.name;
        } else if constexpr (std::is_same_v<T, core::Deposit>) {
          os << "Deposit acct=" << core::raw(e.account) << " " << e.amount.value;
        } else if constexpr (std::is_same_v<T, core::Withdraw>) {
          os << "Withdraw acct=" << core::raw(e.account) << " " << e.amount.value;
        } else if constexpr (std::is_same_v<T, core::SetAccountRisk>) {
          os << "SetAccountRisk acct=" << core::raw(e.account) << " max_open=" << e.max_open_orders
             << " enabled=" << e.enabled << " stp=" << core::to_string(e.stp.mode) << "/"
             << core::to_string(e.stp.scope);
        } else if constexpr (std::is_same_v<T, core::SetRiskParams>) {
          os << "SetRiskParams ratio_ppb=" << e.liquidation_ratio_ppb << " fund="
             << (e.insurance_account ? std::to_string(core::raw(*e.insurance_account)) : "none");
        } else if constexpr (std::is_same_v<T, core::SetCurrency>) {
          os << "SetCurrency " << e.code << " decimals=" << e.decimals;
        } else if constexpr (std::is_same_v<T, core::SetSession>) {
          os << "SetSession instrument=" << core::raw(e.instrument)
             << " utc_offset_s=" << e.schedule.utc_offset_s;
          for (const core::SessionEntry& x : e.schedule.entries) {
            os << " " << x.start_s << ":" << core::to_string(x.phase);
          }
        } else if constexpr (std::is_same_v<T, core::SetLimits>) {
          os << "SetLimits instruments=" << e.limits.instruments
             << " accounts=" << e.limits.accounts << " orders=" << e.limits.orders
             << " per_account=" << e.limits.orders_per_account
             << " per_level=" << e.limits.orders_per_level;
        } else if constexpr (std::is_same_v<T, core::MarkToMarket>) {
          os << "MarkToMarket";
        } else if constexpr (std::is_same_v<T, core::LeaderTerm>) {
          os << "LeaderTerm epoch=" << e.epoch << " node=" << e.node;
        } else if constexpr (std::is_same_v<T, core::Settle>) {
          os << "Settle";
          for (const core::SettlementPrice& p : e.prices) {
            os << " ins" << core::raw(p.instrument) << "@" << p.price.value;
          }
        } else if constexpr (std::is_same_v<T, core::NewOrder>) {
          os << "NewOrder acct=" << core::raw(e.account) << " ins=" << core::raw(e.instrument)
             << " client=" << core::raw(e.client_order_id) << " "
             << (e.direction == core::Direction::kBuy    ? "BUY"
                 : e.direction == core::Direction::kSell ? "SELL"
                                                         : "DIRECTION?")
             << " " << core::to_string(e.offset) << " " << core::to_string(e.price_type) << " "
             << e.price.value << " x" << e.volume.value << " " << core::to_string(e.time_condition)
             << " " << core::to_string(e.volume_condition) << (e.post_only ? " post-only" : "");
          if (e.stp) {
            os << " stp=" << core::to_string(e.stp->mode) << "/" << core::to_string(e.stp->scope);
          }
          if (e.trigger) {
            os << " trigger=" << core::to_string(e.trigger->kind) << "/"
               << core::to_string(e.trigger->source) << "@" << e.trigger->price.value;
          }
        } else if constexpr (std::is_same_v<T, core::AmendOrder>) {
          os << "AmendOrder acct=" << core::raw(e.account);
          ref(e.ref);
          os << " price=" << e.new_price.value << " left=" << e.new_volume_left.value;
        } else if constexpr (std::is_same_v<T, core::CancelOrder>) {
          os << "CancelOrder acct=" << core::raw(e.account);
          ref(e.ref);
        }
      },
      body);
  return os.str();
}

inline std::string show(const core::Effect& e) {
  std::ostringstream os;
  os << core::to_string(e.kind) << "{reason=" << e.reason << " acct=" << core::raw(e.account)
     << " cacct=" << core::raw(e.counter_account) << " ins=" << core::raw(e.instrument)
     << " order=" << core::raw(e.order) << " corder=" << core::raw(e.counter_order)
     << " client=" << core::raw(e.client_order_id) << " trade=" << core::raw(e.trade)
     << " dir=" << static_cast<int>(e.direction) << " off=" << static_cast<int>(e.offset)
     << " coff=" << static_cast<int>(e.counter_offset) << " price=" << e.price.value
     << " vol=" << e.volume.value << " left=" << e.volume_left.value << " amount=" << e.amount.value
     << " amount2=" << e.amount2.value << "}";
  return os.str();
}

inline std::string show(const std::vector<core::Effect>& effects) {
  std::string s;
  for (const core::Effect& e : effects) s += "\n    " + show(e);
  return s;
}

// The fields of each kind that docs/semantics.md pins down and the model therefore fills in.
inline bool effects_agree(const core::Effect& x, const core::Effect& m) {
  if (x.kind != m.kind) return false;
  switch (x.kind) {
    case core::EffectKind::kOrderAccepted: {
      auto fields = [](const core::Effect& e) {
        return std::tie(e.order, e.account, e.instrument, e.client_order_id, e.direction, e.offset,
                        e.price, e.volume, e.reason);
      };
      return fields(x) == fields(m);
    }
    case core::EffectKind::kOrderRejected:
    case core::EffectKind::kAdminRejected: return x.reason == m.reason;
    case core::EffectKind::kOrderAmended:
      return std::tie(x.order, x.price, x.volume, x.volume_left) ==
             std::tie(m.order, m.price, m.volume, m.volume_left);
    case core::EffectKind::kOrderCancelled:
      return std::tie(x.order, x.account, x.reason, x.volume_left) ==
             std::tie(m.order, m.account, m.reason, m.volume_left);
    case core::EffectKind::kTrade:
      return std::tie(x.trade, x.order, x.counter_order, x.account, x.counter_account, x.instrument,
                      x.direction, x.offset, x.counter_offset, x.price, x.volume, x.volume_left,
                      x.amount, x.amount2) ==
             std::tie(m.trade, m.order, m.counter_order, m.account, m.counter_account, m.instrument,
                      m.direction, m.offset, m.counter_offset, m.price, m.volume, m.volume_left,
                      m.amount, m.amount2);
    case core::EffectKind::kStopAccepted:
      return std::tie(x.order, x.account, x.instrument, x.client_order_id, x.direction, x.offset,
                      x.price, x.volume, x.amount, x.reason) ==
             std::tie(m.order, m.account, m.instrument, m.client_order_id, m.direction, m.offset,
                      m.price, m.volume, m.amount, m.reason);
    case core::EffectKind::kStopTriggered:
      return std::tie(x.order, x.account, x.instrument, x.client_order_id, x.price, x.amount) ==
             std::tie(m.order, m.account, m.instrument, m.client_order_id, m.price, m.amount);
    case core::EffectKind::kInstrumentCreated: return x.instrument == m.instrument;
    case core::EffectKind::kInstrumentStatusChanged:
      return x.instrument == m.instrument && x.reason == m.reason;
    case core::EffectKind::kCurrencySet: return x.amount == m.amount;
    case core::EffectKind::kSessionSet: return x.instrument == m.instrument;
    case core::EffectKind::kPhaseChanged:
      return std::tie(x.instrument, x.reason, x.amount) ==
             std::tie(m.instrument, m.reason, m.amount);
    case core::EffectKind::kAuctionUncrossed:
      return std::tie(x.instrument, x.price, x.volume) == std::tie(m.instrument, m.price, m.volume);
    case core::EffectKind::kPositionDelivered:
      return std::tie(x.account, x.instrument, x.direction, x.volume, x.price, x.amount) ==
             std::tie(m.account, m.instrument, m.direction, m.volume, m.price, m.amount);
    case core::EffectKind::kUserCreated: return x.user == m.user;
    case core::EffectKind::kAccountCreated:
    case core::EffectKind::kAccountRiskSet: return x.account == m.account;
    case core::EffectKind::kDeposited:
    case core::EffectKind::kWithdrawn:
    case core::EffectKind::kAccountSettled: return x.account == m.account && x.amount == m.amount;
    case core::EffectKind::kSettlementDone: return x.amount == m.amount;
    case core::EffectKind::kLiquidationStarted:
      return std::tie(x.account, x.amount, x.amount2) == std::tie(m.account, m.amount, m.amount2);
    case core::EffectKind::kInsuranceCovered:
      return std::tie(x.account, x.counter_account, x.amount, x.amount2) ==
             std::tie(m.account, m.counter_account, m.amount, m.amount2);
    case core::EffectKind::kMarkedToMarket: return x.volume == m.volume;
    default: return true;
  }
}

inline std::string compare_effects(const std::vector<core::Effect>& engine,
                                   const std::vector<core::Effect>& model) {
  bool same = engine.size() == model.size();
  for (std::size_t i = 0; same && i < engine.size(); ++i) same = effects_agree(engine[i], model[i]);
  if (same) return "";
  return "effects differ\n  engine:" + show(engine) +
         "\n  model (only the fields compared for each kind are set):" + show(model);
}

// Accumulates "name: engine X, model Y" for every differing number. The name is `where` then
// `what`, joined only when they differ: building it for every number compared took most of the
// time of a comparison.
class Diff {
 public:
  void check(const std::string& where, const char* what, std::int64_t engine, std::int64_t model) {
    if (engine != model) {
      text_ += "\n  " + where + what + ": engine " + std::to_string(engine) + ", model " +
               std::to_string(model);
    }
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

inline void compare_side(Diff& d, const std::string& where, const core::PositionSide& x,
                         const ModelSide& m) {
  d.check(where, ".today", x.today.value, m.today);
  d.check(where, ".his", x.his.value, m.his);
  d.check(where, ".frozen_today", x.frozen_today.value, m.frozen_today);
  d.check(where, ".frozen_his", x.frozen_his.value, m.frozen_his);
  d.check(where, ".open_cost", x.open_cost.value, m.open_cost);
  d.check(where, ".position_cost_today", x.position_cost_today.value, m.cost_today);
  d.check(where, ".position_cost_his", x.position_cost_his.value, m.cost_his);
  d.check(where, ".margin", x.margin.value, m.margin);
}

inline void compare_account(Diff& d, const core::Engine& engine, const Model& model,
                            std::uint32_t id) {
  const std::string a = "account " + std::to_string(id) + " ";
  core::AccountView x = engine.account(core::AccountId(id));
  ModelAccountView m = model.account(id);
  d.check(a, "pre_balance", x.pre_balance.value, m.pre_balance);
  d.check(a, "deposit", x.deposit.value, m.deposit);
  d.check(a, "withdraw", x.withdraw.value, m.withdraw);
  d.check(a, "close_profit", x.close_profit.value, m.close_profit);
  d.check(a, "commission", x.commission.value, m.commission);
  d.check(a, "position_profit", x.position_profit.value, m.position_profit);
  d.check(a, "balance", x.balance.value, m.balance);
  d.check(a, "margin", x.margin.value, m.margin);
  d.check(a, "frozen_margin", x.frozen_margin.value, m.frozen_margin);
  d.check(a, "frozen_commission", x.frozen_commission.value, m.frozen_commission);
  d.check(a, "available", x.available.value, m.available);

  std::map<std::uint32_t, std::pair<core::PositionSide, core::PositionSide>> held;
  for (const core::PositionView& p : engine.positions(core::AccountId(id))) {
    held[core::raw(p.instrument)] = {p.long_side, p.short_side};
  }
  std::map<std::uint32_t, ModelPosition> modelled = model.positions(id);
  for (const auto& [ins, sides] : held) modelled[ins];
  for (const auto& [ins, pos] : modelled) {
    auto& sides = held[ins];
    const std::string where = a + "instrument " + std::to_string(ins);
    compare_side(d, where + " long", sides.first, pos.long_side);
    compare_side(d, where + " short", sides.second, pos.short_side);
  }

  std::vector<core::OrderState> xs = engine.orders(core::AccountId(id));
  std::vector<ModelOrder> ms = model.orders(id);
  d.check(a, "resting orders", static_cast<std::int64_t>(xs.size()),
          static_cast<std::int64_t>(ms.size()));
  for (std::size_t i = 0; i < xs.size() && i < ms.size(); ++i) {
    const core::OrderState& o = xs[i];
    const ModelOrder& r = ms[i];
    const std::string w = a + "resting order #" + std::to_string(i) + " ";
    d.check(w, "id", static_cast<std::int64_t>(core::raw(o.id)), static_cast<std::int64_t>(r.id));
    d.check(w, "client", static_cast<std::int64_t>(core::raw(o.client_order_id)),
            static_cast<std::int64_t>(r.client_id));
    d.check(w, "instrument", core::raw(o.instrument), r.instrument);
    d.check(w, "direction", core::raw(o.direction), core::raw(r.direction));
    d.check(w, "offset", core::raw(o.offset), core::raw(r.offset));
    d.check(w, "time_condition", core::raw(o.time_condition), core::raw(r.time_condition));
    d.check(w, "price", o.price.value, r.price);
    d.check(w, "volume_orig", o.volume_orig.value, r.volume_orig);
    d.check(w, "volume_left", o.volume_left.value, r.volume_left);
    d.check(w, "frozen_margin", o.frozen_margin.value, r.frozen_margin);
    d.check(w, "frozen_commission", o.frozen_commission.value, r.frozen_commission);
    d.check(w, "frozen_today", o.frozen_today.value, r.frozen_today);
    d.check(w, "frozen_his", o.frozen_his.value, r.frozen_his);
  }
}

inline void compare_stops(Diff& d, const core::Engine& engine, const Model& model,
                          std::uint32_t id) {
  const std::string a = "account " + std::to_string(id) + " ";
  std::vector<core::StopState> xs = engine.stops(core::AccountId(id));
  std::vector<ModelStop> ms = model.stops(id);
  d.check(a, "pending stops", static_cast<std::int64_t>(xs.size()),
          static_cast<std::int64_t>(ms.size()));
  for (std::size_t i = 0; i < xs.size() && i < ms.size(); ++i) {
    const std::string w = a + "stop #" + std::to_string(i) + " ";
    d.check(w, "id", static_cast<std::int64_t>(core::raw(xs[i].id)),
            static_cast<std::int64_t>(ms[i].id));
    d.check(w, "price", xs[i].order.price.value, ms[i].order.price.value);
    d.check(w, "trigger", xs[i].order.trigger->price.value, ms[i].order.trigger->price.value);
  }
}

inline void compare_book(Diff& d, const core::Engine& engine, const Model& model,
                         std::uint32_t id) {
  core::BookView book = engine.book(core::InstrumentId(id), 1'000);
  for (core::Direction side : {core::Direction::kBuy, core::Direction::kSell}) {
    const std::vector<core::LevelView>& xs = side == core::Direction::kBuy ? book.bids : book.asks;
    std::vector<ModelLevel> ms = model.levels(id, side);
    const std::string w =
        "instrument " + std::to_string(id) + (side == core::Direction::kBuy ? " bid" : " ask");
    d.check(w, " levels", static_cast<std::int64_t>(xs.size()),
            static_cast<std::int64_t>(ms.size()));
    for (std::size_t i = 0; i < xs.size() && i < ms.size(); ++i) {
      const std::string l = w + " level " + std::to_string(i);
      d.check(l, " price", xs[i].price.value, ms[i].price);
      d.check(l, " volume", xs[i].volume.value, ms[i].volume);
      d.check(l, " orders", xs[i].orders, ms[i].orders);
    }
  }
}

inline std::string compare_state(const core::Engine& engine, const Model& model) {
  Diff d;
  d.check("", "accounts", static_cast<std::int64_t>(engine.account_count()),
          static_cast<std::int64_t>(model.account_count()));
  d.check("", "instruments", static_cast<std::int64_t>(engine.instrument_count()),
          static_cast<std::int64_t>(model.instrument_count()));
  if (!d.text().empty()) return d.text();
  for (std::uint32_t a = 0; a < model.account_count(); ++a) {
    compare_account(d, engine, model, a);
    compare_stops(d, engine, model, a);
  }
  for (std::uint32_t i = 0; i < model.instrument_count(); ++i) compare_book(d, engine, model, i);
  return d.text().empty() ? "" : "state differs:" + d.text();
}

inline std::string where(const core::Event& e) {
  return "after event #" + std::to_string(core::raw(e.header.seq)) + " " + describe(e.body) + ": ";
}

}  // namespace qx::property
