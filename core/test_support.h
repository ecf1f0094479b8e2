// Helpers shared by core's tests: an engine driver that stamps sequence numbers and returns each
// event's effects, and the parameters of the instruments used in the worked examples.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>

#include "core/engine.h"

namespace qx::core::testing {

// IF (CSI 300 index future): tick 0.2, multiplier 300, margin 10%, fee 23.01 per million of
// notional, close-today 345 per million.
inline InstrumentParams if_params() {
  InstrumentParams p;
  p.price_tick_e8 = 20'000'000;
  p.multiplier_e8 = 300 * kDecimalScale;
  p.margin_long_ppb = 100'000'000;
  p.margin_short_ppb = 100'000'000;
  p.fees.open_ppb = 23'010;
  p.fees.close_ppb = 23'010;
  p.fees.close_today_ppb = 345'000;
  p.price_band_ppb = 100'000'000;
  p.max_order_volume = Lots(1'000);
  p.position_limit = Lots(10'000);
  return p;
}

// cu (copper): tick 10, multiplier 5, margin 10%, fee 50 per million of notional.
inline InstrumentParams cu_params() {
  InstrumentParams p;
  p.price_tick_e8 = 10 * kDecimalScale;
  p.multiplier_e8 = 5 * kDecimalScale;
  p.margin_long_ppb = 100'000'000;
  p.margin_short_ppb = 100'000'000;
  p.fees.open_ppb = 50'000;
  p.fees.close_ppb = 50'000;
  p.fees.close_today_ppb = 50'000;
  p.price_band_ppb = 80'000'000;
  p.max_order_volume = Lots(500);
  p.position_limit = Lots(10'000);
  return p;
}

inline constexpr auto kBuy = Direction::kBuy;
inline constexpr auto kSell = Direction::kSell;
inline constexpr auto kOpen = Offset::kOpen;

inline std::size_t count(const EffectBuffer& fx, EffectKind k) {
  return static_cast<std::size_t>(
      std::count_if(fx.begin(), fx.end(), [k](const Effect& e) { return e.kind == k; }));
}

// The first effect of kind k (a test failure, and a zeroed effect, when there is none).
inline const Effect& first(const EffectBuffer& fx, EffectKind k) {
  auto it = std::find_if(fx.begin(), fx.end(), [k](const Effect& e) { return e.kind == k; });
  static const Effect kNone{};
  EXPECT_NE(it, fx.end()) << "no effect of kind " << to_string(k);
  return it == fx.end() ? kNone : *it;
}

inline RejectReason reject_of(const EffectBuffer& fx) {
  return static_cast<RejectReason>(first(fx, EffectKind::kOrderRejected).reason);
}

inline RejectReason admin_reject_of(const EffectBuffer& fx) {
  return static_cast<RejectReason>(first(fx, EffectKind::kAdminRejected).reason);
}

// A stop order (NewOrder with a trigger), volume condition ANY.
inline NewOrder stop_order(AccountId a, InstrumentId i, Direction d, Offset o, PriceType pt,
                           std::int64_t price, std::int64_t lots, StopTrigger t,
                           TimeCondition tc = TimeCondition::kGtc, std::uint64_t client = 0) {
  NewOrder e{a,          i,  ClientOrderId(client), d, o, pt, PriceTicks(price),
             Lots(lots), tc, VolumeCondition::kAny};
  e.trigger = t;
  return e;
}

inline Money cny(std::int64_t units) {
  return Money(units * kMoneyScale);
}

class Driver {
 public:
  // Applies one event and returns the effects it produced.
  const EffectBuffer& apply(EventBody body) {
    effects_.clear();
    seq_ += 1;
    time_ns_ += 1'000'000;
    engine_.apply(Event{EventHeader{Seq(seq_), time_ns_, 0}, std::move(body)}, effects_);
    engine_.check_invariants();
    return effects_;
  }
  // Stamps the next event at `time_ns` (later ones 1 ms apart again).
  void at(std::int64_t time_ns) { time_ns_ = time_ns - 1'000'000; }
  Engine& engine() { return engine_; }
  const EffectBuffer& effects() const { return effects_; }

  InstrumentId instrument(const std::string& code, InstrumentParams p, PriceTicks pre) {
    apply(CreateInstrument{code, "TEST", p, pre});
    return effects_.at(0).instrument;
  }
  AccountId account(const std::string& name, Money deposit) {
    apply(CreateUser{name});
    UserId u = effects_.at(0).user;
    apply(CreateAccount{u, name});
    AccountId a = effects_.at(0).account;
    if (deposit.value > 0) apply(Deposit{a, deposit});
    return a;
  }
  const EffectBuffer& order(AccountId a, InstrumentId i, Direction d, Offset o, std::int64_t price,
                            std::int64_t lots, TimeCondition tc = TimeCondition::kGfd,
                            PriceType pt = PriceType::kLimit,
                            VolumeCondition vc = VolumeCondition::kAny, bool post_only = false,
                            std::uint64_t client_id = 0) {
    return apply(NewOrder{a, i, ClientOrderId(client_id), d, o, pt, PriceTicks(price), Lots(lots),
                          tc, vc, post_only});
  }

 private:
  Engine engine_;
  EffectBuffer effects_;
  std::uint64_t seq_ = 0;
  std::int64_t time_ns_ = 1'735'781'400'000'000'000;
};

}  // namespace qx::core::testing
