// The order and position model fed by engine effects; see order_model.h for the contract.
#include "sim/order_model.h"

#include "core/assert.h"

namespace qx::sim {

using core::raw;

const ModelOrder* OrderModel::find(core::OrderId id) const {
  auto i = live_index_.find(raw(id));
  return i ? &live_[*i] : nullptr;
}

ModelOrder* OrderModel::find(core::OrderId id) {
  auto i = live_index_.find(raw(id));
  return i ? &live_[*i] : nullptr;
}

std::uint64_t OrderModel::live_on(core::InstrumentId i) const {
  return raw(i) < live_per_instrument_.size() ? live_per_instrument_[raw(i)] : 0;
}

ModelPosition OrderModel::position(core::AccountId a, core::InstrumentId i) const {
  auto k = position_index_.find(raw(a), raw(i));
  return k ? positions_[*k] : ModelPosition{};
}

std::optional<core::PriceTicks> OrderModel::last_price(core::InstrumentId i) const {
  return raw(i) < last_price_.size() ? last_price_[raw(i)] : std::nullopt;
}

std::optional<core::PriceTicks> OrderModel::best_bid(core::InstrumentId i) const {
  if (raw(i) >= levels_.size() || levels_[raw(i)].bids.empty()) return std::nullopt;
  return core::PriceTicks(levels_[raw(i)].bids.rbegin()->first);
}

std::optional<core::PriceTicks> OrderModel::best_ask(core::InstrumentId i) const {
  if (raw(i) >= levels_.size() || levels_[raw(i)].asks.empty()) return std::nullopt;
  return core::PriceTicks(levels_[raw(i)].asks.begin()->first);
}

void OrderModel::grow_instruments(core::InstrumentId i) {
  if (raw(i) >= live_per_instrument_.size()) {
    live_per_instrument_.resize(std::size_t{raw(i)} + 1, 0);
    last_price_.resize(std::size_t{raw(i)} + 1);
    levels_.resize(std::size_t{raw(i)} + 1);
  }
}

void OrderModel::count_level(const ModelOrder& o, int delta) {
  Levels& l = levels_[raw(o.instrument)];
  auto& side = o.direction == core::Direction::kBuy ? l.bids : l.asks;
  if (delta > 0) {
    side[o.price.value] += 1;
    return;
  }
  auto it = side.find(o.price.value);
  QX_ASSERT(it != side.end() && it->second > 0);
  if (--it->second == 0) side.erase(it);
}

void OrderModel::add_live(const ModelOrder& o) {
  QX_ASSERT(o.volume_left.value > 0);
  QX_ASSERT(live_.size() < 0xFFFF'FFFFu);
  bool inserted = live_index_.insert(raw(o.id), 0, static_cast<std::uint32_t>(live_.size()));
  QX_ASSERT(inserted);
  live_.push_back(o);
  grow_instruments(o.instrument);
  live_per_instrument_[raw(o.instrument)] += 1;
  count_level(o, +1);
}

void OrderModel::remove_live(core::OrderId id) {
  auto found = live_index_.find(raw(id));
  QX_ASSERT(found.has_value());
  const std::uint32_t i = *found;
  QX_ASSERT(live_per_instrument_[raw(live_[i].instrument)] > 0);
  live_per_instrument_[raw(live_[i].instrument)] -= 1;
  count_level(live_[i], -1);
  live_index_.erase(raw(id));
  const auto last = static_cast<std::uint32_t>(live_.size() - 1);
  if (i != last) {
    // Move the last order into the hole and repoint its index entry.
    live_[i] = live_[last];
    live_index_.erase(raw(live_[i].id));
    live_index_.insert(raw(live_[i].id), 0, i);
  }
  live_.pop_back();
}

ModelPositionSide& OrderModel::side_for(core::AccountId a, core::InstrumentId i, bool long_side) {
  auto k = position_index_.find(raw(a), raw(i));
  if (!k) {
    QX_ASSERT(positions_.size() < 0xFFFF'FFFFu);
    k = static_cast<std::uint32_t>(positions_.size());
    position_index_.insert(raw(a), raw(i), *k);
    positions_.emplace_back();
  }
  ModelPosition& p = positions_[*k];
  return long_side ? p.long_side : p.short_side;
}

void OrderModel::on_fill(core::AccountId a, core::InstrumentId i, core::Direction d,
                         core::Offset off, core::Lots v) {
  if (off == core::Offset::kOpen) {
    side_for(a, i, d == core::Direction::kBuy).held += v;
    return;
  }
  ModelPositionSide& s = side_for(a, i, closes_long(d));
  s.held -= v;
  s.closing -= v;
  QX_ASSERT(s.held.value >= 0 && s.closing.value >= 0);
}

void OrderModel::on_accepted(const core::Effect& e) {
  totals_.accepted += 1;
  ModelOrder o;
  o.id = e.order;
  o.client_order_id = e.client_order_id;
  o.account = e.account;
  o.instrument = e.instrument;
  o.direction = e.direction;
  o.offset = e.offset;
  o.price = e.price;
  o.volume_left = e.volume_left;
  add_live(o);
  if (o.offset != core::Offset::kOpen) {
    ModelPositionSide& s = side_for(o.account, o.instrument, closes_long(o.direction));
    s.closing += o.volume_left;
    QX_ASSERT(s.closing <= s.held);
  }
}

void OrderModel::on_trade(const core::Effect& e) {
  totals_.trades += 1;
  totals_.traded_lots += e.volume.value;
  grow_instruments(e.instrument);
  last_price_[raw(e.instrument)] = e.price;

  ModelOrder* taker = find(e.order);
  QX_ASSERT(taker != nullptr);
  QX_ASSERT_EQ(taker->volume_left.value - e.volume.value, e.volume_left.value);
  taker->volume_left = e.volume_left;
  on_fill(e.account, e.instrument, e.direction, e.offset, e.volume);
  if (e.volume_left.value == 0) remove_live(e.order);

  ModelOrder* maker = find(e.counter_order);
  QX_ASSERT(maker != nullptr);
  QX_ASSERT(maker->volume_left >= e.volume);
  maker->volume_left -= e.volume;
  const core::Lots maker_left = maker->volume_left;
  on_fill(e.counter_account, e.instrument, maker->direction, e.counter_offset, e.volume);
  if (maker_left.value == 0) remove_live(e.counter_order);
}

void OrderModel::on_cancelled(const core::Effect& e) {
  totals_.cancelled += 1;
  const ModelOrder* o = find(e.order);
  QX_ASSERT(o != nullptr);
  if (o->offset != core::Offset::kOpen) {
    side_for(o->account, o->instrument, closes_long(o->direction)).closing -= o->volume_left;
  }
  remove_live(e.order);
}

void OrderModel::on_amended(const core::Effect& e) {
  totals_.amended += 1;
  ModelOrder* o = find(e.order);
  QX_ASSERT(o != nullptr);
  if (o->offset != core::Offset::kOpen) {
    side_for(o->account, o->instrument, closes_long(o->direction)).closing +=
        e.volume_left - o->volume_left;
  }
  count_level(*o, -1);
  o->price = e.price;
  o->volume_left = e.volume_left;
  count_level(*o, +1);
}

void OrderModel::observe(const core::Effect& e) {
  switch (e.kind) {
    case core::EffectKind::kOrderAccepted: return on_accepted(e);
    case core::EffectKind::kTrade: return on_trade(e);
    case core::EffectKind::kOrderCancelled: return on_cancelled(e);
    case core::EffectKind::kOrderAmended: return on_amended(e);
    case core::EffectKind::kOrderRejected: {
      totals_.rejected += 1;
      // A refused cancel leaves its order live: it may be chosen again.
      if (ModelOrder* o = find(e.order)) o->cancel_sent = false;
      return;
    }
    default: return;
  }
}

void OrderModel::observe(std::span<const core::Effect> effects) {
  for (const core::Effect& e : effects) observe(e);
}

void OrderModel::load(const core::Snapshot& s) {
  live_.clear();
  live_index_.clear();
  positions_.clear();
  position_index_.clear();
  live_per_instrument_.assign(s.instruments.size(), 0);
  last_price_.assign(s.instruments.size(), std::nullopt);
  levels_.assign(s.instruments.size(), Levels{});
  for (std::size_t i = 0; i < s.instruments.size(); ++i) {
    last_price_[i] = s.instruments[i].last_price;
  }
  live_index_.reserve(s.orders.size());
  live_.reserve(s.orders.size());
  for (const core::OrderState& os : s.orders) {
    ModelOrder o;
    o.id = os.id;
    o.client_order_id = os.client_order_id;
    o.account = os.account;
    o.instrument = os.instrument;
    o.direction = os.direction;
    o.offset = os.offset;
    o.price = os.price;
    o.volume_left = os.volume_left;
    add_live(o);
  }
  for (std::size_t a = 0; a < s.accounts.size(); ++a) {
    const auto id = core::AccountId(static_cast<std::uint32_t>(a));
    for (const core::PositionState& p : s.accounts[a].positions) {
      for (bool is_long : {true, false}) {
        const core::PositionSide& from = is_long ? p.long_side : p.short_side;
        if (from.total().value == 0 && (from.frozen_his + from.frozen_today).value == 0) continue;
        ModelPositionSide& to = side_for(id, p.instrument, is_long);
        to.held = from.total();
        to.closing = from.frozen_his + from.frozen_today;
      }
    }
  }
}

}  // namespace qx::sim
