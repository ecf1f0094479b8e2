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
#include "core/hash.h"
#include "core/numeric.h"

namespace qx::core {

namespace {

bool crosses(Direction taker, PriceTicks taker_price, PriceTicks maker_price) {
  return taker == Direction::kBuy ? taker_price >= maker_price : taker_price <= maker_price;
}

bool enums_ok(const NewOrder& e) {
  auto in = [](auto v, int lo, int hi) { return raw(v) >= lo && raw(v) <= hi; };
  return in(e.direction, 1, 2) && in(e.offset, 1, 4) && in(e.price_type, 1, 3) &&
         in(e.time_condition, 1, 3) && in(e.volume_condition, 1, 2) && (!e.stp || stp_ok(*e.stp)) &&
         (!e.trigger || trigger_ok(*e.trigger));
}

}  // namespace

namespace {

std::uint64_t id_key(OrderId id) {
  return mix64(raw(id));
}

std::uint64_t client_key(AccountId a, ClientOrderId c) {
  return mix64(raw(c) ^ mix64(raw(a) + 0x632b'e59b'd9b4'e019ull));
}

}  // namespace

std::optional<OrderHandle> Engine::resolve(AccountId a, const OrderRef& ref) const {
  if (ref.order_id) {
    OrderId id = *ref.order_id;
    return order_index_.find(id_key(id), [&](OrderHandle h) { return orders_[h].id == id; });
  }
  if (raw(ref.client_order_id) == 0) return std::nullopt;
  return find_by_client(a, ref.client_order_id);
}

std::optional<OrderHandle> Engine::find_by_client(AccountId a, ClientOrderId c) const {
  return client_index_.find(client_key(a, c), [&](OrderHandle h) {
    return orders_[h].client_order_id == c && orders_[h].account == a;
  });
}

std::optional<OrderId> Engine::find_order(AccountId a, ClientOrderId c) const {
  auto h = find_by_client(a, c);
  if (!h) return std::nullopt;
  return orders_[*h].id;
}

// Adds live order h to the indexes; its id and client order id must be new.
void Engine::index_order(OrderHandle h) {
  const Order& o = orders_[h];
  QX_ASSERT(
      order_index_.insert(id_key(o.id), h, [&](OrderHandle x) { return orders_[x].id == o.id; }));
  if (raw(o.client_order_id) != 0) {
    QX_ASSERT(client_index_.insert(client_key(o.account, o.client_order_id), h, [&](OrderHandle x) {
      return orders_[x].client_order_id == o.client_order_id && orders_[x].account == o.account;
    }));
  }
}

void Engine::unindex_order(OrderHandle h) {
  QX_ASSERT(order_index_.erase(id_key(orders_[h].id), [h](OrderHandle x) { return x == h; }));
  const Order& o = orders_[h];
  if (raw(o.client_order_id) != 0) {
    QX_ASSERT(client_index_.erase(client_key(o.account, o.client_order_id),
                                  [h](OrderHandle x) { return x == h; }));
  }
}

// The worst price a MARKET order needs to fill `volume` against the book now, capped by the band.
std::optional<PriceTicks> Engine::market_price(const Instrument& ins, Direction d,
                                               Lots volume) const {
  const BookSide& opp = ins.book.opposite(d);
  if (opp.empty()) return std::nullopt;
  Lots seen{0};
  PriceTicks p = opp.best_price();
  opp.for_each_level([&](PriceTicks price, const Level& l) {
    if (seen >= volume) return false;
    p = price;
    seen += l.volume;
    return true;
  });
  if (auto cap = band_limit(ins, d)) {
    p = d == Direction::kBuy ? std::min(p, *cap) : std::max(p, *cap);
  }
  return p;
}

bool Engine::fok_fillable(const Instrument& ins, const Order& o) const {
  const BookSide& opp = ins.book.opposite(o.direction);
  Lots seen{0};
  bool fillable = false;
  opp.for_each_level([&](PriceTicks price, const Level& l) {
    if (!crosses(o.direction, o.price, price)) return false;
    for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) {
      // Self-trade prevention cancels an own resting order (CANCEL_OLDEST: it adds nothing) or
      // stops the order here.
      if (self_trade(o, orders_[h])) {
        if (o.stp.mode == StpMode::kCancelOldest) continue;
        return false;
      }
      seen += orders_[h].volume_left;
      if (seen >= o.volume_left) {
        fillable = true;
        return false;
      }
    }
    return true;
  });
  return fillable;
}

Effect Engine::request_effect(EffectKind k, const NewOrder& e) {
  Effect f{};
  f.kind = k;
  f.account = e.account;
  f.instrument = e.instrument;
  f.client_order_id = e.client_order_id;
  f.direction = e.direction;
  f.offset = e.offset;
  f.price = e.price;
  f.volume = e.volume;
  return f;
}

void Engine::reject_order(const NewOrder& e, RejectReason r) {
  Effect f = request_effect(EffectKind::kOrderRejected, e);
  f.reason = static_cast<std::uint16_t>(r);
  emit(f);
}

std::optional<RejectReason> Engine::check_request(const NewOrder& e) const {
  if (!enums_ok(e)) return RejectReason::kInvalidParameter;
  if (raw(e.account) >= accounts_.size()) return RejectReason::kUnknownAccount;
  if (raw(e.instrument) >= instruments_.size()) return RejectReason::kUnknownInstrument;
  const Account& a = accounts_[raw(e.account)];
  const Instrument& ins = instruments_[raw(e.instrument)];
  if (!a.s.enabled) return RejectReason::kAccountDisabled;
  if (ins.s.status == InstrumentStatus::kHalted) return RejectReason::kInstrumentHalted;
  if (ins.s.status == InstrumentStatus::kDelisted) return RejectReason::kInstrumentDelisted;
  if (auto why = phase_refuses(ins, e)) return why;
  if (e.volume.value <= 0) return RejectReason::kInvalidVolume;
  if (e.volume > ins.s.params.max_order_volume) return RejectReason::kOrderVolumeLimitExceeded;
  bool ioc = e.time_condition == TimeCondition::kIoc || e.price_type == PriceType::kMarket;
  if (e.volume_condition == VolumeCondition::kAll && !ioc) {
    return RejectReason::kInvalidCombination;
  }
  if (e.post_only && (e.price_type != PriceType::kLimit || ioc)) {
    return RejectReason::kInvalidCombination;
  }
  if (raw(e.client_order_id) != 0 && (find_by_client(e.account, e.client_order_id) ||
                                      stop_clients_.contains({e.account, e.client_order_id}))) {
    return RejectReason::kDuplicateClientOrderId;
  }
  return order_room(a);
}

std::optional<RejectReason> Engine::order_room(const Account& a) const {
  const std::uint32_t per_account =
      a.s.max_open_orders != 0 ? a.s.max_open_orders : limits_.orders_per_account;
  if (per_account != 0 && a.open_orders + a.stops >= per_account) {
    return RejectReason::kTooManyOpenOrders;
  }
  if (limits_.orders != 0 && orders_.live() + stops_.size() >= limits_.orders) {
    return RejectReason::kOrderLimit;
  }
  return std::nullopt;
}

// An order at `price` rests at the level of that price on its own side only when it does not
// trade at all (a level there means the opposite side does not reach that price), so a full
// level there is exactly the case where it would rest past orders_per_level.
bool Engine::level_full(Instrument& ins, Direction d, PriceTicks price) {
  if (limits_.orders_per_level == 0) return false;
  const Level* l = ins.book.side(d).find(price);
  return l != nullptr && l->count >= limits_.orders_per_level;
}

void Engine::on(const NewOrder& e) {
  if (e.trigger) return place_stop(e);
  enter(e);
}

// Enters an order (a new one, or a stop whose trigger fired): checks, prices, freezes, matches.
void Engine::enter(const NewOrder& e) {
  auto reject = [&](RejectReason r) { reject_order(e, r); };
  if (auto why = check_request(e)) return reject(*why);
  Account& a = acc_at(e.account);
  Instrument& ins = ins_at(e.instrument);
  const bool ioc = e.time_condition == TimeCondition::kIoc || e.price_type == PriceType::kMarket;
  PriceTicks price = e.price;
  if (e.price_type == PriceType::kMarket) {
    auto p = market_price(ins, e.direction, e.volume);
    if (!p) return reject(RejectReason::kNoLiquidity);
    price = *p;
  } else if (e.price_type == PriceType::kBest) {
    const BookSide& opp = ins.book.opposite(e.direction);
    if (opp.empty()) return reject(RejectReason::kNoLiquidity);
    price = opp.best_price();
  }
  if (price.value <= 0 || price > ins.s.price_max) return reject(RejectReason::kInvalidPrice);
  if (!within_band(ins, price)) return reject(RejectReason::kPriceOutsideBand);
  if (e.post_only) {
    const BookSide& opp = ins.book.opposite(e.direction);
    if (!opp.empty() && crosses(e.direction, price, opp.best_price())) {
      return reject(RejectReason::kPostOnlyWouldCross);
    }
  }
  if (!ioc && level_full(ins, e.direction, price)) return reject(RejectReason::kPriceLevelFull);

  OrderHandle h = orders_.allocate();
  Order& o = orders_[h];
  o.client_order_id = e.client_order_id;
  o.account = e.account;
  o.instrument = e.instrument;
  o.direction = e.direction;
  o.offset = e.offset;
  o.price_type = e.price_type;
  o.time_condition = ioc ? TimeCondition::kIoc : e.time_condition;
  o.post_only = e.post_only;
  o.stp = e.stp.value_or(a.s.stp);
  o.price = price;
  o.volume_orig = e.volume;
  o.volume_left = e.volume;
  o.insert_time_ns = header_->timestamp_ns;
  std::optional<RejectReason> why;
  if (e.volume_condition == VolumeCondition::kAll && !fok_fillable(ins, o)) {
    why = RejectReason::kFokUnfillable;
  } else {
    why = reserve(o, a, ins, price, e.volume, Money{-1});
  }
  if (why) {
    orders_.release(h);
    return reject(*why);
  }
  o.id = OrderId(next_order_id_++);
  index_order(h);
  link_account(h);
  a.open_orders += 1;

  Effect f = request_effect(EffectKind::kOrderAccepted, e);
  f.order = o.id;
  f.price = price;
  f.volume_left = e.volume;
  emit(f);
  // A call auction collects orders; its book uncrosses when the phase ends.
  if (ins.s.phase == TradingPhase::kAuction) return rest(h, ins);
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
  if (!found) {
    auto stop = resolve_stop(e.account, e.ref);
    if (!stop) return reject(RejectReason::kUnknownOrder);
    if (stops_.at(*stop).order.account != e.account) return reject(RejectReason::kOrderNotOwned);
    return reject(RejectReason::kStopNotAmendable);
  }
  OrderHandle h = *found;
  Order& o = orders_[h];
  if (o.account != e.account) return reject(RejectReason::kOrderNotOwned);
  Account& a = acc_at(e.account);
  Instrument& ins = ins_at(o.instrument);
  if (!a.s.enabled) return reject(RejectReason::kAccountDisabled);
  if (ins.s.status == InstrumentStatus::kHalted) return reject(RejectReason::kInstrumentHalted);
  if (ins.s.phase != TradingPhase::kContinuous && ins.s.phase != TradingPhase::kAuction) {
    return reject(RejectReason::kMarketClosed);
  }
  if (e.new_volume_left.value <= 0) return reject(RejectReason::kInvalidVolume);
  if (e.new_volume_left > ins.s.params.max_order_volume) {
    return reject(RejectReason::kOrderVolumeLimitExceeded);
  }
  if (e.new_price.value <= 0 || e.new_price > ins.s.price_max) {
    return reject(RejectReason::kInvalidPrice);
  }
  if (!within_band(ins, e.new_price)) return reject(RejectReason::kPriceOutsideBand);
  if (e.new_price == o.price && e.new_volume_left == o.volume_left) {
    return reject(RejectReason::kAmendNoChange);
  }
  if (o.post_only) {
    const BookSide& opp = ins.book.opposite(o.direction);
    if (!opp.empty() && crosses(o.direction, e.new_price, opp.best_price())) {
      return reject(RejectReason::kPostOnlyWouldCross);
    }
  }
  if (e.new_price != o.price && level_full(ins, o.direction, e.new_price)) {
    return reject(RejectReason::kPriceLevelFull);
  }
  // Re-reserve for the new price and volume; on failure nothing has changed.
  Money grandfathered = o.frozen_margin() + o.frozen_commission;
  if (auto why = reserve(o, a, ins, e.new_price, e.new_volume_left, grandfathered)) {
    return reject(*why);
  }
  PriceTicks old_price = o.price;
  Lots old_left = o.volume_left;
  o.price = e.new_price;
  o.volume_left = e.new_volume_left;
  o.volume_orig += e.new_volume_left - old_left;
  BookSide& side = ins.book.side(o.direction);
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
  f.instrument = o.instrument;
  f.order = o.id;
  f.client_order_id = o.client_order_id;
  f.direction = o.direction;
  f.offset = o.offset;
  f.price = o.price;
  f.volume = o.volume_orig;
  f.volume_left = o.volume_left;
  emit(f);
  if (keeps_priority) return;
  if (ins.s.phase == TradingPhase::kAuction) return rest(h, ins);
  match(h, ins);
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
  if (!found) {
    auto stop = resolve_stop(e.account, e.ref);
    if (!stop) return reject(RejectReason::kUnknownOrder);
    if (stops_.at(*stop).order.account != e.account) return reject(RejectReason::kOrderNotOwned);
    return cancel_stop(*stop, CancelReason::kUserRequest);
  }
  if (orders_[*found].account != e.account) return reject(RejectReason::kOrderNotOwned);
  // PRE_OPEN freezes the book (e.g. between an opening call's uncross and the open).
  if (ins_at(orders_[*found].instrument).s.phase == TradingPhase::kPreOpen) {
    return reject(RejectReason::kMarketClosed);
  }
  cancel_resting(*found, CancelReason::kUserRequest);
}

// Matches order h (accepted, frozen, not in the book) against the opposite side, then rests it
// or cancels its remainder. Pool records do not move, so `t` stays valid throughout.
void Engine::match(OrderHandle h, Instrument& ins) {
  Order& t = orders_[h];
  Direction d = t.direction;
  BookSide& opp = ins.book.opposite(d);
  while (t.volume_left.value > 0 && !opp.empty()) {
    PriceTicks price = opp.best_price();
    if (!crosses(d, t.price, price)) break;
    Level& lvl = opp.best();
    while (lvl.head != kNoOrder && t.volume_left.value > 0) {
      OrderHandle mh = lvl.head;
      Order& m = orders_[mh];
      if (self_trade(t, m)) {
        if (t.stp.mode != StpMode::kCancelNewest) {
          BookSide::unlink(lvl, orders_, mh, m.volume_left);
          finish(mh, ins, CancelReason::kSelfTradePrevention);
        }
        if (t.stp.mode != StpMode::kCancelOldest) {
          if (lvl.count == 0) opp.erase(price);
          return finish(h, ins, CancelReason::kSelfTradePrevention);
        }
        continue;
      }
      if (!fill_fits(acc_at(t.account))) return finish(h, ins, CancelReason::kMoneyLimit);
      if (!fill_fits(acc_at(m.account))) {
        BookSide::unlink(lvl, orders_, mh, m.volume_left);
        finish(mh, ins, CancelReason::kMoneyLimit);
        continue;
      }
      Lots v = std::min(t.volume_left, m.volume_left);
      lvl.volume -= v;
      trade(t, m, ins, price, v);
      if (m.volume_left.value == 0) {
        BookSide::unlink(lvl, orders_, mh, Lots{0});
        finish(mh, ins, std::nullopt);
      }
    }
    if (lvl.count == 0) opp.erase(price);
  }
  if (t.volume_left.value == 0) return finish(h, ins, std::nullopt);
  if (t.time_condition == TimeCondition::kIoc) {
    return finish(h, ins, CancelReason::kIocRemainder);
  }
  rest(h, ins);
}

// Whether incoming order t meets resting order m of its own account, or of its own user when
// t's self-trade prevention has scope USER.
bool Engine::self_trade(const Order& t, const Order& m) const {
  if (m.account == t.account) return true;
  return t.stp.scope == StpScope::kUser &&
         accounts_[raw(m.account)].s.user == accounts_[raw(t.account)].s.user;
}

// One fill of v lots at `price` between taker t and maker m: both accounts, the trade record,
// the instrument's day statistics, the TRADE effect and the liquidation checks.
void Engine::trade(Order& t, Order& m, Instrument& ins, PriceTicks price, Lots v) {
  Money taker_fee, maker_fee;
  fill(t, acc_at(t.account), ins, price, v, taker_fee);
  fill(m, acc_at(m.account), ins, price, v, maker_fee);

  TradeState tr;
  tr.id = TradeId(next_trade_id_++);
  tr.instrument = t.instrument;
  tr.price = price;
  tr.volume = v;
  tr.taker_order = t.id;
  tr.taker_account = t.account;
  tr.taker_direction = t.direction;
  tr.taker_offset = t.offset;
  tr.taker_fee = taker_fee;
  tr.maker_order = m.id;
  tr.maker_account = m.account;
  tr.maker_offset = m.offset;
  tr.maker_fee = maker_fee;
  tr.time_ns = header_->timestamp_ns;
  trades_.push_back(tr);
  ins.s.last_price = price;
  note_moved(ins);
  // Day statistics saturate rather than wrap (core/limits.h bounds money, not event counts).
  ins.s.volume_today = Lots(std::min(ins.s.volume_today.value, kInt64Max - v.value) + v.value);
  const std::int64_t value = *narrow(notional(price, v, ins.tick_value));
  ins.s.turnover_today = Money(std::min(ins.s.turnover_today.value, kMoneyMax - value) + value);

  Effect f{};
  f.kind = EffectKind::kTrade;
  f.trade = tr.id;
  f.instrument = tr.instrument;
  f.order = tr.taker_order;
  f.account = tr.taker_account;
  f.client_order_id = t.client_order_id;
  f.direction = tr.taker_direction;
  f.offset = tr.taker_offset;
  f.counter_order = tr.maker_order;
  f.counter_account = tr.maker_account;
  f.counter_offset = tr.maker_offset;
  f.price = price;
  f.volume = v;
  f.volume_left = t.volume_left;
  f.amount = taker_fee;
  f.amount2 = maker_fee;
  emit(f);

  check_liquidation(tr.taker_account);
  check_liquidation(tr.maker_account);
}

void Engine::rest(OrderHandle h, Instrument& ins) {
  Order& o = orders_[h];
  Level& l = ins.book.side(o.direction).find_or_insert(o.price);
  BookSide::push_back(l, orders_, h, o.volume_left);
}

// Removes a live order that is not linked in the book: releases what it still holds, drops its
// indexes and pool slot, and reports the cancel when there is a reason (fills need none).
void Engine::finish(OrderHandle h, Instrument& ins, std::optional<CancelReason> why) {
  (void)ins;
  Order& o = orders_[h];
  Account& a = acc_at(o.account);
  if (why) {
    Effect f{};
    f.kind = EffectKind::kOrderCancelled;
    f.reason = static_cast<std::uint16_t>(*why);
    f.account = o.account;
    f.instrument = o.instrument;
    f.order = o.id;
    f.client_order_id = o.client_order_id;
    f.direction = o.direction;
    f.offset = o.offset;
    f.price = o.price;
    f.volume = o.volume_orig;
    f.volume_left = o.volume_left;
    emit(f);
  }
  unfreeze(o, a);
  unindex_order(h);
  unlink_account(h);
  QX_ASSERT(a.open_orders > 0);
  a.open_orders -= 1;
  orders_.release(h);
}

void Engine::link_account(OrderHandle h) {
  Order& o = orders_[h];
  Account& a = acc_at(o.account);
  o.acc_prev = a.last_order;
  o.acc_next = kNoOrder;
  if (a.last_order != kNoOrder) {
    orders_[a.last_order].acc_next = h;
  } else {
    a.first_order = h;
  }
  a.last_order = h;
}

void Engine::unlink_account(OrderHandle h) {
  Order& o = orders_[h];
  Account& a = acc_at(o.account);
  (o.acc_prev != kNoOrder ? orders_[o.acc_prev].acc_next : a.first_order) = o.acc_next;
  (o.acc_next != kNoOrder ? orders_[o.acc_next].acc_prev : a.last_order) = o.acc_prev;
  o.acc_prev = o.acc_next = kNoOrder;
}

std::vector<OrderHandle> Engine::account_orders(const Account& a) const {
  std::vector<OrderHandle> out;
  for (OrderHandle h = a.first_order; h != kNoOrder; h = orders_[h].acc_next) out.push_back(h);
  return out;
}

// Orders outside the band sit at the ends of each side: bids above the limit up at the best end,
// bids below the limit down at the worst end (the mirror for asks). Collecting them walks the
// levels outside the band plus at most one inside it per end.
void Engine::cancel_outside_band(Instrument& ins) {
  if (!ins.band_up && !ins.band_down) return;
  auto above = [&](PriceTicks p) { return ins.band_up && p > *ins.band_up; };
  auto below = [&](PriceTicks p) { return ins.band_down && p < *ins.band_down; };
  std::vector<OrderHandle> doomed;
  auto take = [&](const Level& l, std::vector<OrderHandle>& into) {
    for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) into.push_back(h);
  };
  for (const BookSide* side : {&ins.book.bids, &ins.book.asks}) {
    const bool bid = side->is_bid();
    auto beyond_best = [&](PriceTicks p) { return bid ? above(p) : below(p); };
    auto beyond_worst = [&](PriceTicks p) { return bid ? below(p) : above(p); };
    side->for_each_level([&](PriceTicks price, const Level& l) {
      if (!beyond_best(price)) return false;
      take(l, doomed);
      return true;
    });
    std::vector<std::vector<OrderHandle>> worst;  // worst level first
    side->for_each_level_reverse([&](PriceTicks price, const Level& l) {
      if (!beyond_worst(price)) return false;
      take(l, worst.emplace_back());
      return true;
    });
    for (auto it = worst.rbegin(); it != worst.rend(); ++it) {
      doomed.insert(doomed.end(), it->begin(), it->end());
    }
  }
  for (OrderHandle h : doomed) cancel_resting(h, CancelReason::kOutsideBand);
}

void Engine::cancel_resting(OrderHandle h, CancelReason why) {
  Order& o = orders_[h];
  Instrument& ins = ins_at(o.instrument);
  BookSide& side = ins.book.side(o.direction);
  Level* lvl = side.find(o.price);
  QX_ASSERT(lvl != nullptr);
  BookSide::unlink(*lvl, orders_, h, o.volume_left);
  if (lvl->count == 0) side.erase(o.price);
  finish(h, ins, why);
}

}  // namespace qx::core
