// Order entry, amendment, cancellation and matching.
//
// Flow of a new order: validate the request (each failure is a stable reject code), price it
// (MARKET gets its protective price, BEST the best opposite price), check FOK fillability,
// freeze margin + commission (OPEN) or position volume + commission (CLOSE*), accept, match
// against the opposite side in price-time priority, then rest or cancel the remainder.
//
// Trades happen at the resting order's price. Self-trade prevention cancels the incoming order's
// remainder when it reaches a resting order of its own account. Matching never allocates; a
// filled maker's pool slot goes back to the free list.
#include <algorithm>

#include "core/assert.h"
#include "core/engine.h"
#include "core/numeric.h"

namespace qx::core {

namespace {

bool crosses(Direction taker, PriceTicks taker_price, PriceTicks maker_price) {
  return taker == Direction::kBuy ? taker_price >= maker_price : taker_price <= maker_price;
}

bool enums_ok(const NewOrder& e) {
  auto in = [](auto v, int lo, int hi) { return raw(v) >= lo && raw(v) <= hi; };
  return in(e.direction, 1, 2) && in(e.offset, 1, 4) && in(e.price_type, 1, 3) &&
         in(e.time_condition, 1, 3) && in(e.volume_condition, 1, 2);
}

}  // namespace

OrderHandle Engine::allocate_order() {
  if (!free_orders_.empty()) {
    OrderHandle h = free_orders_.back();
    free_orders_.pop_back();
    return h;
  }
  QX_ASSERT(orders_.size() < kNoOrder);
  orders_.emplace_back();
  return static_cast<OrderHandle>(orders_.size() - 1);
}

void Engine::release_order(OrderHandle h) {
  orders_[h] = Order{};
  free_orders_.push_back(h);
}

std::optional<OrderHandle> Engine::resolve(AccountId a, const OrderRef& ref) const {
  if (ref.order_id) return order_index_.find(raw(*ref.order_id));
  if (raw(ref.client_order_id) == 0) return std::nullopt;
  return client_index_.find(raw(a), raw(ref.client_order_id));
}

std::optional<OrderId> Engine::find_order(AccountId a, ClientOrderId c) const {
  auto h = client_index_.find(raw(a), raw(c));
  if (!h) return std::nullopt;
  return orders_[*h].s.id;
}

// The worst price a MARKET order needs to fill `volume` against the book now, capped by the band.
std::optional<PriceTicks> Engine::market_price(const Instrument& ins, Direction d,
                                               Lots volume) const {
  const BookSide& opp = ins.book.opposite(d);
  if (opp.empty()) return std::nullopt;
  Lots seen{0};
  PriceTicks p = opp.best().price;
  for (std::size_t i = 0; i < opp.level_count() && seen < volume; ++i) {
    p = opp.from_best(i).price;
    seen += opp.from_best(i).volume;
  }
  if (auto cap = band_limit(ins, d)) {
    p = d == Direction::kBuy ? std::min(p, *cap) : std::max(p, *cap);
  }
  return p;
}

bool Engine::fok_fillable(const Instrument& ins, const Order& o) const {
  const BookSide& opp = ins.book.opposite(o.s.direction);
  Lots seen{0};
  for (std::size_t i = 0; i < opp.level_count(); ++i) {
    const Level& l = opp.from_best(i);
    if (!crosses(o.s.direction, o.s.price, l.price)) return false;
    for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) {
      // Self-trade prevention would stop the order here.
      if (orders_[h].s.account == o.s.account) return false;
      seen += orders_[h].s.volume_left;
      if (seen >= o.s.volume_left) return true;
    }
  }
  return false;
}

void Engine::on(const NewOrder& e) {
  auto reject = [&](RejectReason r) {
    Effect f{};
    f.kind = EffectKind::kOrderRejected;
    f.reason = static_cast<std::uint16_t>(r);
    f.account = e.account;
    f.instrument = e.instrument;
    f.client_order_id = e.client_order_id;
    f.direction = e.direction;
    f.offset = e.offset;
    f.price = e.price;
    f.volume = e.volume;
    emit(f);
  };
  if (!enums_ok(e)) return reject(RejectReason::kInvalidParameter);
  if (raw(e.account) >= accounts_.size()) return reject(RejectReason::kUnknownAccount);
  if (raw(e.instrument) >= instruments_.size()) return reject(RejectReason::kUnknownInstrument);
  Account& a = acc_at(e.account);
  Instrument& ins = ins_at(e.instrument);
  if (!a.s.enabled) return reject(RejectReason::kAccountDisabled);
  if (ins.s.status == InstrumentStatus::kHalted) return reject(RejectReason::kInstrumentHalted);
  if (ins.s.status == InstrumentStatus::kDelisted) {
    return reject(RejectReason::kInstrumentDelisted);
  }
  if (e.volume.value <= 0) return reject(RejectReason::kInvalidVolume);
  if (e.volume > ins.s.params.max_order_volume) {
    return reject(RejectReason::kOrderVolumeLimitExceeded);
  }
  bool ioc = e.time_condition == TimeCondition::kIoc || e.price_type == PriceType::kMarket;
  if (e.volume_condition == VolumeCondition::kAll && !ioc) {
    return reject(RejectReason::kInvalidCombination);
  }
  if (e.post_only && (e.price_type != PriceType::kLimit || ioc)) {
    return reject(RejectReason::kInvalidCombination);
  }
  if (raw(e.client_order_id) != 0 && client_index_.find(raw(e.account), raw(e.client_order_id))) {
    return reject(RejectReason::kDuplicateClientOrderId);
  }
  if (a.s.max_open_orders != 0 && a.open_orders >= a.s.max_open_orders) {
    return reject(RejectReason::kTooManyOpenOrders);
  }
  PriceTicks price = e.price;
  if (e.price_type == PriceType::kMarket) {
    auto p = market_price(ins, e.direction, e.volume);
    if (!p) return reject(RejectReason::kNoLiquidity);
    price = *p;
  } else if (e.price_type == PriceType::kBest) {
    const BookSide& opp = ins.book.opposite(e.direction);
    if (opp.empty()) return reject(RejectReason::kNoLiquidity);
    price = opp.best().price;
  }
  if (price.value <= 0) return reject(RejectReason::kInvalidPrice);
  if (!narrow(notional(price, e.volume, ins.tick_value))) {
    return reject(RejectReason::kNumericOverflow);
  }
  if (!within_band(ins, price)) return reject(RejectReason::kPriceOutsideBand);
  if (e.post_only) {
    const BookSide& opp = ins.book.opposite(e.direction);
    if (!opp.empty() && crosses(e.direction, price, opp.best().price)) {
      return reject(RejectReason::kPostOnlyWouldCross);
    }
  }

  OrderHandle h = allocate_order();
  Order& o = orders_[h];
  o.s.client_order_id = e.client_order_id;
  o.s.account = e.account;
  o.s.instrument = e.instrument;
  o.s.direction = e.direction;
  o.s.offset = e.offset;
  o.s.price_type = e.price_type;
  o.s.time_condition = ioc ? TimeCondition::kIoc : e.time_condition;
  o.s.post_only = e.post_only;
  o.s.price = price;
  o.s.volume_orig = e.volume;
  o.s.volume_left = e.volume;
  o.s.insert_time_ns = header_->timestamp_ns;
  std::optional<RejectReason> why;
  if (e.volume_condition == VolumeCondition::kAll && !fok_fillable(ins, o)) {
    why = RejectReason::kFokUnfillable;
  } else {
    why = freeze(o, a, ins);
  }
  if (why) {
    release_order(h);
    return reject(*why);
  }
  o.s.id = OrderId(next_order_id_++);
  order_index_.insert(raw(o.s.id), 0, h);
  if (raw(o.s.client_order_id) != 0) {
    client_index_.insert(raw(o.s.account), raw(o.s.client_order_id), h);
  }
  a.open_orders += 1;

  Effect f{};
  f.kind = EffectKind::kOrderAccepted;
  f.account = e.account;
  f.instrument = e.instrument;
  f.order = o.s.id;
  f.client_order_id = e.client_order_id;
  f.direction = e.direction;
  f.offset = e.offset;
  f.price = price;
  f.volume = e.volume;
  f.volume_left = e.volume;
  emit(f);
  match(h, ins);
}

void Engine::on(const AmendOrder& e) {
  auto reject = [&](RejectReason r) {
    Effect f{};
    f.kind = EffectKind::kOrderRejected;
    f.reason = static_cast<std::uint16_t>(r);
    f.account = e.account;
    f.order = e.ref.order_id.value_or(OrderId{});
    f.client_order_id = e.ref.client_order_id;
    f.price = e.new_price;
    f.volume_left = e.new_volume_left;
    emit(f);
  };
  if (raw(e.account) >= accounts_.size()) return reject(RejectReason::kUnknownAccount);
  auto found = resolve(e.account, e.ref);
  if (!found) return reject(RejectReason::kUnknownOrder);
  OrderHandle h = *found;
  Order& o = orders_[h];
  if (o.s.account != e.account) return reject(RejectReason::kOrderNotOwned);
  Account& a = acc_at(e.account);
  Instrument& ins = ins_at(o.s.instrument);
  if (!a.s.enabled) return reject(RejectReason::kAccountDisabled);
  if (ins.s.status == InstrumentStatus::kHalted) return reject(RejectReason::kInstrumentHalted);
  if (e.new_volume_left.value <= 0) return reject(RejectReason::kInvalidVolume);
  if (e.new_volume_left > ins.s.params.max_order_volume) {
    return reject(RejectReason::kOrderVolumeLimitExceeded);
  }
  if (e.new_price.value <= 0) return reject(RejectReason::kInvalidPrice);
  if (!narrow(notional(e.new_price, e.new_volume_left, ins.tick_value))) {
    return reject(RejectReason::kNumericOverflow);
  }
  if (!within_band(ins, e.new_price)) return reject(RejectReason::kPriceOutsideBand);
  if (e.new_price == o.s.price && e.new_volume_left == o.s.volume_left) {
    return reject(RejectReason::kAmendNoChange);
  }
  const BookSide& opp = ins.book.opposite(o.s.direction);
  bool will_cross = !opp.empty() && crosses(o.s.direction, e.new_price, opp.best().price);
  if (o.s.post_only && will_cross) return reject(RejectReason::kPostOnlyWouldCross);

  // Re-freeze for the new price and volume; on failure put back exactly what was held.
  PriceTicks old_price = o.s.price;
  Lots old_left = o.s.volume_left;
  OrderState saved_order = o.s;
  Money saved_frozen_margin = a.frozen_margin, saved_frozen_commission = a.frozen_commission;
  const PositionState* held = find_position(a, o.s.instrument);
  std::optional<PositionState> saved_position;
  if (held != nullptr) saved_position = *held;
  Money grandfathered = o.s.frozen_margin + o.s.frozen_commission;
  unfreeze(o, a);
  o.s.price = e.new_price;
  o.s.volume_left = e.new_volume_left;
  if (auto why = freeze(o, a, ins, grandfathered)) {
    o.s = saved_order;
    a.frozen_margin = saved_frozen_margin;
    a.frozen_commission = saved_frozen_commission;
    if (saved_position) position(a, o.s.instrument) = *saved_position;
    return reject(*why);
  }
  o.s.volume_orig += e.new_volume_left - old_left;
  BookSide& side = ins.book.side(o.s.direction);
  Level* lvl = side.find(old_price);
  QX_ASSERT(lvl != nullptr);
  bool keeps_priority = e.new_price == old_price && e.new_volume_left < old_left;
  if (keeps_priority) {
    lvl->volume -= old_left - e.new_volume_left;
  } else {
    BookSide::unlink(*lvl, orders_, h, old_left);
    if (lvl->count == 0) side.erase(old_price);
  }
  Effect f{};
  f.kind = EffectKind::kOrderAmended;
  f.account = e.account;
  f.instrument = o.s.instrument;
  f.order = o.s.id;
  f.client_order_id = o.s.client_order_id;
  f.direction = o.s.direction;
  f.offset = o.s.offset;
  f.price = o.s.price;
  f.volume = o.s.volume_orig;
  f.volume_left = o.s.volume_left;
  emit(f);
  if (!keeps_priority) match(h, ins);
}

void Engine::on(const CancelOrder& e) {
  auto reject = [&](RejectReason r) {
    Effect f{};
    f.kind = EffectKind::kOrderRejected;
    f.reason = static_cast<std::uint16_t>(r);
    f.account = e.account;
    f.order = e.ref.order_id.value_or(OrderId{});
    f.client_order_id = e.ref.client_order_id;
    emit(f);
  };
  if (raw(e.account) >= accounts_.size()) return reject(RejectReason::kUnknownAccount);
  auto found = resolve(e.account, e.ref);
  if (!found) return reject(RejectReason::kUnknownOrder);
  if (orders_[*found].s.account != e.account) return reject(RejectReason::kOrderNotOwned);
  cancel_resting(*found, CancelReason::kUserRequest);
}

// Matches order h (accepted, frozen, not in the book) against the opposite side, then rests it
// or cancels its remainder.
void Engine::match(OrderHandle h, Instrument& ins) {
  Direction d = orders_[h].s.direction;
  BookSide& opp = ins.book.opposite(d);
  Account& ta = acc_at(orders_[h].s.account);
  while (orders_[h].s.volume_left.value > 0 && !opp.empty()) {
    Level& lvl = opp.best();
    if (!crosses(d, orders_[h].s.price, lvl.price)) break;
    PriceTicks price = lvl.price;
    while (lvl.head != kNoOrder && orders_[h].s.volume_left.value > 0) {
      OrderHandle mh = lvl.head;
      Order& m = orders_[mh];
      Order& t = orders_[h];
      if (m.s.account == t.s.account) {
        return finish(h, ins, CancelReason::kSelfTradePrevention);
      }
      Lots v = std::min(t.s.volume_left, m.s.volume_left);
      Account& ma = acc_at(m.s.account);
      Money taker_fee, maker_fee;
      fill(t, ta, ins, price, v, taker_fee);
      fill(m, ma, ins, price, v, maker_fee);
      lvl.volume -= v;

      TradeState tr;
      tr.id = TradeId(next_trade_id_++);
      tr.instrument = t.s.instrument;
      tr.price = price;
      tr.volume = v;
      tr.taker_order = t.s.id;
      tr.taker_account = t.s.account;
      tr.taker_direction = d;
      tr.taker_offset = t.s.offset;
      tr.taker_fee = taker_fee;
      tr.maker_order = m.s.id;
      tr.maker_account = m.s.account;
      tr.maker_offset = m.s.offset;
      tr.maker_fee = maker_fee;
      tr.time_ns = header_->timestamp_ns;
      trades_.push_back(tr);
      ins.s.last_price = price;
      ins.s.volume_today += v;
      ins.s.turnover_today += Money(*narrow(notional(price, v, ins.tick_value)));

      Effect f{};
      f.kind = EffectKind::kTrade;
      f.trade = tr.id;
      f.instrument = tr.instrument;
      f.order = tr.taker_order;
      f.account = tr.taker_account;
      f.client_order_id = t.s.client_order_id;
      f.direction = d;
      f.offset = tr.taker_offset;
      f.counter_order = tr.maker_order;
      f.counter_account = tr.maker_account;
      f.counter_offset = tr.maker_offset;
      f.price = price;
      f.volume = v;
      f.volume_left = t.s.volume_left;
      f.amount = taker_fee;
      f.amount2 = maker_fee;
      emit(f);

      check_liquidation(tr.taker_account);
      check_liquidation(tr.maker_account);
      if (m.s.volume_left.value == 0) {
        BookSide::unlink(lvl, orders_, mh, Lots{0});
        finish(mh, ins, std::nullopt);
      }
    }
    if (lvl.count == 0) opp.erase(price);
  }
  Order& t = orders_[h];
  if (t.s.volume_left.value == 0) return finish(h, ins, std::nullopt);
  if (t.s.time_condition == TimeCondition::kIoc) {
    return finish(h, ins, CancelReason::kIocRemainder);
  }
  rest(h, ins);
}

void Engine::rest(OrderHandle h, Instrument& ins) {
  Order& o = orders_[h];
  Level& l = ins.book.side(o.s.direction).find_or_insert(o.s.price);
  BookSide::push_back(l, orders_, h, o.s.volume_left);
}

// Removes a live order that is not linked in the book: releases what it still holds, drops its
// indexes and pool slot, and reports the cancel when there is a reason (fills need none).
void Engine::finish(OrderHandle h, Instrument& ins, std::optional<CancelReason> why) {
  (void)ins;
  Order& o = orders_[h];
  Account& a = acc_at(o.s.account);
  if (why) {
    Effect f{};
    f.kind = EffectKind::kOrderCancelled;
    f.reason = static_cast<std::uint16_t>(*why);
    f.account = o.s.account;
    f.instrument = o.s.instrument;
    f.order = o.s.id;
    f.client_order_id = o.s.client_order_id;
    f.direction = o.s.direction;
    f.offset = o.s.offset;
    f.price = o.s.price;
    f.volume = o.s.volume_orig;
    f.volume_left = o.s.volume_left;
    emit(f);
  }
  unfreeze(o, a);
  QX_ASSERT(order_index_.erase(raw(o.s.id)));
  if (raw(o.s.client_order_id) != 0) {
    QX_ASSERT(client_index_.erase(raw(o.s.account), raw(o.s.client_order_id)));
  }
  QX_ASSERT(a.open_orders > 0);
  a.open_orders -= 1;
  release_order(h);
}

void Engine::cancel_resting(OrderHandle h, CancelReason why) {
  Order& o = orders_[h];
  Instrument& ins = ins_at(o.s.instrument);
  BookSide& side = ins.book.side(o.s.direction);
  Level* lvl = side.find(o.s.price);
  QX_ASSERT(lvl != nullptr);
  BookSide::unlink(*lvl, orders_, h, o.s.volume_left);
  if (lvl->count == 0) side.erase(o.s.price);
  finish(h, ins, why);
}

}  // namespace qx::core
