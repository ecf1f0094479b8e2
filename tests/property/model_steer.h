// Steering of generated commands with the reference model's view of the state so far, shared by
// the property's generator (engine_gen.h, rapidcheck) and the engine_model fuzz target
// (fuzz/engine_model.cc): closes mostly close something held, amends and cancels mostly meet a
// live order or a pending stop, withdrawals test the edge of the available funds.
//
//   if (c.steered) steer_close(world, model, c, order);   // c: the command's choices
//
// `World` has `instruments` (each with `ref_ticks`) and `accounts`; `Choice` has the steering
// choices of engine_gen.h's Command: pick, by_order_id, foreign, price_delta, relative_volume,
// volume_delta, cross. Also the small builders both share (fee_schedule, spoil_schedule). Free of
// rapidcheck and gtest.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/events.h"
#include "core/types.h"
#include "tests/property/model.h"

namespace qx::property {

// Damages a session schedule as both make invalid ones (the engine must refuse them): `how` 1
// swaps the first two entries, 2 adds one at 86,400 s, 3 one with a phase that does not exist, 4
// sets a UTC offset past 18 h; anything else leaves it as it is.
template <class Schedule>
void spoil_schedule(Schedule& s, int how) {
  switch (how) {
    case 1:
      if (s.entries.size() >= 2) std::swap(s.entries[0], s.entries[1]);
      break;
    case 2: s.entries.push_back({86'400, core::TradingPhase::kContinuous}); break;
    case 3: s.entries.push_back({86'399, static_cast<core::TradingPhase>(6)}); break;
    case 4: s.utc_offset_s = 18 * 3600 + 1; break;
    default: break;
  }
}

// A fee schedule from its six numbers (money in minor units, rates in ppb), as both build them.
inline core::FeeSchedule fee_schedule(std::int64_t open_lot, std::int64_t open_ppb,
                                      std::int64_t close_lot, std::int64_t close_ppb,
                                      std::int64_t today_lot, std::int64_t today_ppb) {
  core::FeeSchedule f;
  f.open_per_lot = core::Money(open_lot);
  f.open_ppb = open_ppb;
  f.close_per_lot = core::Money(close_lot);
  f.close_ppb = close_ppb;
  f.close_today_per_lot = core::Money(today_lot);
  f.close_today_ppb = today_ppb;
  return f;
}

template <class World, class Choice>
void steer_close(const World& w, const Model& m, const Choice& c, core::NewOrder& o) {
  struct Held {
    std::uint32_t account, instrument;
    core::Direction close;
    std::int64_t lots;
  };
  std::vector<Held> held;
  for (std::uint32_t a = 0; a < m.account_count(); ++a) {
    for (const auto& [ins, pos] : m.positions(a)) {
      if (pos.long_side.lots() > 0) {
        held.push_back({a, ins, core::Direction::kSell, pos.long_side.lots()});
      }
      if (pos.short_side.lots() > 0) {
        held.push_back({a, ins, core::Direction::kBuy, pos.short_side.lots()});
      }
    }
  }
  if (held.empty()) {
    o.offset = core::Offset::kOpen;  // nothing to close yet: open instead
    return;
  }
  const Held& h = held[c.pick % held.size()];
  const std::uint32_t from = core::raw(o.instrument);
  if (from < w.instruments.size() && o.price.value > 0 && o.price.value < (1 << 30)) {
    // Keep the price's distance from the reference when moving to another instrument.
    o.price.value += w.instruments[h.instrument].ref_ticks - w.instruments[from].ref_ticks;
  }
  o.account = core::AccountId(h.account);
  o.instrument = core::InstrumentId(h.instrument);
  o.direction = h.close;
  o.volume = core::Lots(std::clamp<std::int64_t>(o.volume.value, 1, h.lots));
}

template <class World, class Choice, class Request>
void steer_reference(const World& w, const Model& m, const Choice& c, Request& r) {
  // One in four aims at a pending stop when there is one (cancelled; amending is refused).
  const std::vector<ModelStop> stops = m.all_stops();
  if (!stops.empty() && c.pick % 4 == 0) {
    const ModelStop& st = stops[(c.pick / 4) % stops.size()];
    const std::uint32_t owner = core::raw(st.order.account);
    r.account = core::AccountId(c.foreign ? (owner + 1) % w.accounts : owner);
    const bool by_id = c.by_order_id || c.foreign || core::raw(st.order.client_order_id) == 0;
    r.ref = core::OrderRef{by_id ? std::optional(core::OrderId(st.id)) : std::nullopt,
                           by_id ? core::ClientOrderId(0) : st.order.client_order_id};
    if constexpr (std::is_same_v<Request, core::AmendOrder>) {
      r.new_price = core::PriceTicks(st.order.price.value + c.price_delta);
    }
    return;
  }
  std::vector<ModelOrder> live = m.live_orders();
  if (live.empty()) return;
  const ModelOrder& o = live[c.pick % live.size()];
  r.account = core::AccountId(c.foreign ? (o.account + 1) % w.accounts : o.account);
  if (c.by_order_id || c.foreign || o.client_id == 0) {
    r.ref = core::OrderRef{core::OrderId(o.id), core::ClientOrderId(0)};
  } else {
    r.ref = core::OrderRef{std::nullopt, core::ClientOrderId(o.client_id)};
  }
  if constexpr (std::is_same_v<Request, core::AmendOrder>) {
    r.new_price = core::PriceTicks(o.price + c.price_delta);
    if (c.relative_volume) r.new_volume_left = core::Lots(o.volume_left + c.volume_delta);
    const core::Direction opposite =
        o.direction == core::Direction::kBuy ? core::Direction::kSell : core::Direction::kBuy;
    std::vector<ModelLevel> levels = m.levels(o.instrument, opposite);
    if (c.cross && !levels.empty()) r.new_price = core::PriceTicks(levels.front().price);
  }
}

template <class Choice>
void steer_withdraw(const Model& m, const Choice& c, core::Withdraw& w) {
  if (core::raw(w.account) >= m.account_count()) return;
  const std::int64_t available = m.account(core::raw(w.account)).available;
  if (available <= 1) return;
  const std::int64_t amounts[] = {available, available - available / 10, available + 1};
  w.amount = core::Money(amounts[c.pick % 3]);
}

}  // namespace qx::property
