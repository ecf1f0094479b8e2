// A client-side model of what rests in the engine, rebuilt only from the effects it emits.
//
//   qx::sim::OrderModel model;
//   engine.apply(event, effects);
//   model.observe(effects);            // orders accepted, amended, filled, cancelled; positions
//   if (model.live_count() > 0) { const ModelOrder& o = model.live_at(i); ... }
//
// Workload generators use it the way a trading client would use its order and position feeds:
// to amend or cancel orders that are (believed to be) resting, and to send CLOSE orders only for
// positions that are held. It never reads engine internals, so a generator can run a little
// behind the engine (effects of a batch observed after the batch) and stays correct, if stale.
//
// Design: live orders sit in a dense vector (O(1) uniform random choice, swap-remove) with an
// open-addressing index by order id (core::FlatMap: deterministic, no std::hash), and are
// counted per price level in ordered maps (O(log L)) for the best bid and ask. Positions are
// tracked per (account, instrument) as held volume per side and volume held by resting close
// orders. Nothing here is iterated in an order that depends on hashing, so generators driven by
// it are deterministic.
//
// Invariants: every live order has volume_left > 0; `closing` never exceeds `held` for a side
// while the model is in step with the engine (checked by assertions on the update paths).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "core/effects.h"
#include "core/flat_map.h"
#include "core/snapshot.h"
#include "core/types.h"

namespace qx::sim {

struct ModelOrder {
  core::OrderId id{};
  core::ClientOrderId client_order_id{};
  core::AccountId account{};
  core::InstrumentId instrument{};
  core::Direction direction{};
  core::Offset offset{};
  bool cancel_sent{};  // a generator has sent a cancel whose effect it has not seen yet
  core::PriceTicks price{};
  core::Lots volume_left{};
};

struct ModelPositionSide {
  core::Lots held{};
  core::Lots closing{};  // held by resting close orders
  [[nodiscard]] core::Lots closable() const { return held - closing; }
};

struct ModelPosition {
  ModelPositionSide long_side;
  ModelPositionSide short_side;
};

// Counts of what the model has observed, for reports and tests.
struct ModelTotals {
  std::uint64_t accepted{};
  std::uint64_t rejected{};
  std::uint64_t trades{};
  std::int64_t traded_lots{};
  std::uint64_t cancelled{};
  std::uint64_t amended{};
};

class OrderModel {
 public:
  OrderModel() = default;

  void observe(std::span<const core::Effect> effects);
  void observe(const core::Effect& e);

  // Replaces the model with the resting orders, positions and last prices of a snapshot (how a
  // client that reconnects would resynchronise). O(orders + accounts).
  void load(const core::Snapshot& s);

  [[nodiscard]] std::size_t live_count() const { return live_.size(); }
  [[nodiscard]] const ModelOrder& live_at(std::size_t i) const { return live_[i]; }
  [[nodiscard]] ModelOrder& live_at(std::size_t i) { return live_[i]; }
  [[nodiscard]] const ModelOrder* find(core::OrderId id) const;
  [[nodiscard]] ModelOrder* find(core::OrderId id);
  [[nodiscard]] std::uint64_t live_on(core::InstrumentId i) const;

  [[nodiscard]] ModelPosition position(core::AccountId a, core::InstrumentId i) const;
  [[nodiscard]] std::optional<core::PriceTicks> last_price(core::InstrumentId i) const;
  // The best prices of the live orders: the engine's top of book once the effects of every
  // applied event have been observed.
  [[nodiscard]] std::optional<core::PriceTicks> best_bid(core::InstrumentId i) const;
  [[nodiscard]] std::optional<core::PriceTicks> best_ask(core::InstrumentId i) const;
  [[nodiscard]] const ModelTotals& totals() const { return totals_; }

 private:
  void add_live(const ModelOrder& o);
  void remove_live(core::OrderId id);
  ModelPositionSide& side_for(core::AccountId a, core::InstrumentId i, bool long_side);
  // The position side a close order in direction `d` reduces: a sell closes the long side.
  static bool closes_long(core::Direction d) { return d == core::Direction::kSell; }
  void on_fill(core::AccountId a, core::InstrumentId i, core::Direction d, core::Offset off,
               core::Lots v);
  void on_accepted(const core::Effect& e);
  void on_trade(const core::Effect& e);
  void on_cancelled(const core::Effect& e);
  void on_amended(const core::Effect& e);
  void grow_instruments(core::InstrumentId i);
  // Adds `delta` (+1 or -1) orders to the price level of `o`.
  void count_level(const ModelOrder& o, int delta);

  std::vector<ModelOrder> live_;
  core::FlatMap<std::uint32_t> live_index_;  // order id -> index in live_
  std::vector<ModelPosition> positions_;
  core::FlatMap<std::uint32_t> position_index_;  // (account, instrument) -> index in positions_
  std::vector<std::uint64_t> live_per_instrument_;
  std::vector<std::optional<core::PriceTicks>> last_price_;
  // Per instrument, live orders per price on each side (ordered, for the best prices).
  struct Levels {
    std::map<std::int64_t, std::uint32_t> bids;
    std::map<std::int64_t, std::uint32_t> asks;
  };
  std::vector<Levels> levels_;
  ModelTotals totals_;
};

}  // namespace qx::sim
