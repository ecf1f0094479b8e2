// Snapshot, restore, the canonical state hash, and the full invariant check.
//
// The state hash is the hash of the snapshot's canonical encoding, so "same hash" means "same
// snapshot": two engines agree on state_hash() exactly when every field of their state agrees,
// including the priority of every resting order.
#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "core/engine.h"
#include "core/hash.h"

namespace qx::core {

namespace {

void put(Hasher& h, const FeeSchedule& f) {
  h.i64(f.open_per_lot.value);
  h.i64(f.open_ppb);
  h.i64(f.close_per_lot.value);
  h.i64(f.close_ppb);
  h.i64(f.close_today_per_lot.value);
  h.i64(f.close_today_ppb);
}

void put(Hasher& h, const InstrumentParams& p) {
  h.i64(p.price_tick_e8);
  h.i64(p.multiplier_e8);
  h.i64(p.margin_long_ppb);
  h.i64(p.margin_short_ppb);
  put(h, p.fees);
  h.word(p.price_band_ppb.has_value());
  h.i64(p.price_band_ppb.value_or(0));
  h.i64(p.max_order_volume.value);
  h.i64(p.position_limit.value);
  h.word(p.last_trading_day);
}

void put(Hasher& h, const PositionSide& s) {
  h.i64(s.today.value);
  h.i64(s.his.value);
  h.i64(s.frozen_today.value);
  h.i64(s.frozen_his.value);
  h.i64(s.open_cost.value);
  h.i64(s.position_cost_today.value);
  h.i64(s.position_cost_his.value);
  h.i64(s.margin.value);
}

void put(Hasher& h, const StopState& s) {
  const NewOrder& o = s.order;
  const SelfTradePrevention stp = o.stp.value_or(SelfTradePrevention{});
  const StopTrigger t = o.trigger.value_or(StopTrigger{});
  h.word(raw(s.id));
  h.word(raw(o.client_order_id));
  h.word(raw(o.account) | static_cast<std::uint64_t>(raw(o.instrument)) << 32);
  h.word(static_cast<std::uint64_t>(o.direction) | static_cast<std::uint64_t>(o.offset) << 8 |
         static_cast<std::uint64_t>(o.price_type) << 16 |
         static_cast<std::uint64_t>(o.time_condition) << 24 |
         static_cast<std::uint64_t>(o.volume_condition) << 32 |
         static_cast<std::uint64_t>(o.post_only) << 40);
  h.word(static_cast<std::uint64_t>(o.stp.has_value()) | static_cast<std::uint64_t>(stp.mode) << 8 |
         static_cast<std::uint64_t>(stp.scope) << 16 |
         static_cast<std::uint64_t>(o.trigger.has_value()) << 24 |
         static_cast<std::uint64_t>(t.kind) << 32 | static_cast<std::uint64_t>(t.source) << 40);
  h.i64(o.price.value);
  h.i64(o.volume.value);
  h.i64(t.price.value);
  h.i64(s.insert_time_ns);
}

void put(Hasher& h, const OrderState& o) {
  h.word(raw(o.id));
  h.word(raw(o.client_order_id));
  h.word(raw(o.account));
  h.word(raw(o.instrument));
  h.word(static_cast<std::uint64_t>(o.direction) | static_cast<std::uint64_t>(o.offset) << 8 |
         static_cast<std::uint64_t>(o.price_type) << 16 |
         static_cast<std::uint64_t>(o.time_condition) << 24 |
         static_cast<std::uint64_t>(o.post_only) << 32 |
         static_cast<std::uint64_t>(o.forced) << 40 | static_cast<std::uint64_t>(o.stp.mode) << 48 |
         static_cast<std::uint64_t>(o.stp.scope) << 56);
  h.i64(o.price.value);
  h.i64(o.volume_orig.value);
  h.i64(o.volume_left.value);
  h.i64(o.frozen_margin.value);
  h.i64(o.frozen_commission.value);
  h.i64(o.frozen_today.value);
  h.i64(o.frozen_his.value);
  h.i64(o.insert_time_ns);
}

void put(Hasher& h, const TradeState& t) {
  h.word(raw(t.id));
  h.word(raw(t.instrument));
  h.i64(t.price.value);
  h.i64(t.volume.value);
  h.word(raw(t.taker_order));
  h.word(raw(t.taker_account));
  h.word(static_cast<std::uint64_t>(t.taker_direction) |
         static_cast<std::uint64_t>(t.taker_offset) << 8 |
         static_cast<std::uint64_t>(t.maker_offset) << 16);
  h.i64(t.taker_fee.value);
  h.word(raw(t.maker_order));
  h.word(raw(t.maker_account));
  h.i64(t.maker_fee.value);
  h.i64(t.time_ns);
}

}  // namespace

std::uint64_t hash_snapshot(const Snapshot& s) {
  Hasher h;
  h.word(s.semantics_version);
  h.word(raw(s.last_seq));
  h.i64(s.last_timestamp_ns);
  h.word(s.trading_day);
  h.word(s.next_order_id);
  h.word(s.next_trade_id);
  h.word(s.effects_hash);
  h.word(s.liquidation_ratio_ppb.has_value());
  h.i64(s.liquidation_ratio_ppb.value_or(0));
  h.word(s.insurance_account.has_value());
  h.word(raw(s.insurance_account.value_or(AccountId{})));
  h.str(s.currency);
  h.word(s.money_decimals);
  h.word(s.limits.instruments | std::uint64_t{s.limits.accounts} << 32);
  h.word(s.limits.orders | std::uint64_t{s.limits.orders_per_account} << 32);
  h.word(s.limits.orders_per_level);
  h.word(s.epoch);
  h.word(s.leader);
  h.word(s.instruments.size());
  for (const InstrumentState& i : s.instruments) {
    h.str(i.code);
    h.str(i.exchange);
    put(h, i.params);
    h.word(raw(i.status));
    h.i64(i.pre_settlement.value);
    h.word(i.last_price.has_value());
    h.i64(i.last_price.value_or(PriceTicks{0}).value);
    h.i64(i.volume_today.value);
    h.i64(i.turnover_today.value);
    h.i64(i.price_max.value);
    h.i64(i.session.utc_offset_s);
    h.word(i.session.entries.size());
    for (const SessionEntry& x : i.session.entries) {
      h.word(x.start_s | static_cast<std::uint64_t>(raw(x.phase)) << 32);
    }
    h.word(raw(i.phase));
    h.i64(i.next_phase_ns);
  }
  h.word(s.users.size());
  for (const std::string& u : s.users) h.str(u);
  h.word(s.accounts.size());
  for (const AccountState& a : s.accounts) {
    h.str(a.name);
    h.word(raw(a.user));
    h.word(a.enabled);
    h.word(a.max_open_orders);
    h.word(static_cast<std::uint64_t>(a.stp.mode) | static_cast<std::uint64_t>(a.stp.scope) << 8);
    h.i64(a.pre_balance.value);
    h.i64(a.deposit.value);
    h.i64(a.withdraw.value);
    h.i64(a.close_profit.value);
    h.i64(a.commission.value);
    h.word(a.positions.size());
    for (const PositionState& p : a.positions) {
      h.word(raw(p.instrument));
      put(h, p.long_side);
      put(h, p.short_side);
    }
  }
  h.word(s.orders.size());
  for (const OrderState& o : s.orders) put(h, o);
  h.word(s.stops.size());
  for (const StopState& st : s.stops) put(h, st);
  h.word(s.trades.size());
  for (const TradeState& t : s.trades) put(h, t);
  return h.finish();
}

OrderState Engine::Order::state() const {
  OrderState s;
  s.id = id;
  s.client_order_id = client_order_id;
  s.account = account;
  s.instrument = instrument;
  s.direction = direction;
  s.offset = offset;
  s.price_type = price_type;
  s.time_condition = time_condition;
  s.post_only = post_only;
  s.forced = forced;
  s.stp = stp;
  s.price = price;
  s.volume_orig = volume_orig;
  s.volume_left = volume_left;
  s.frozen_margin = frozen_margin();
  s.frozen_commission = frozen_commission;
  s.frozen_today = frozen_today();
  s.frozen_his = frozen_his;
  s.insert_time_ns = insert_time_ns;
  return s;
}

Engine::Order Engine::Order::from(const OrderState& s) {
  // An OPEN order holds no position lots and a CLOSE order no margin (see Order).
  bool open = s.offset == Offset::kOpen;
  QX_ASSERT(open ? s.frozen_today.value == 0 && s.frozen_his.value == 0
                 : s.frozen_margin.value == 0);
  Order o;
  o.id = s.id;
  o.client_order_id = s.client_order_id;
  o.account = s.account;
  o.instrument = s.instrument;
  o.direction = s.direction;
  o.offset = s.offset;
  o.price_type = s.price_type;
  o.time_condition = s.time_condition;
  o.post_only = s.post_only;
  o.forced = s.forced;
  o.stp = s.stp;
  o.price = s.price;
  o.volume_orig = s.volume_orig;
  o.volume_left = s.volume_left;
  o.frozen_commission = s.frozen_commission;
  o.frozen_his = s.frozen_his;
  o.frozen_margin_or_today = open ? s.frozen_margin.value : s.frozen_today.value;
  o.insert_time_ns = s.insert_time_ns;
  return o;
}

Snapshot Engine::snapshot() const {
  Snapshot s;
  s.last_seq = last_seq_;
  s.last_timestamp_ns = last_timestamp_ns_;
  s.trading_day = trading_day_;
  s.next_order_id = next_order_id_;
  s.next_trade_id = next_trade_id_;
  s.effects_hash = effects_hash_;
  s.liquidation_ratio_ppb = liquidation_ratio_ppb_;
  s.insurance_account = insurance_account_;
  s.currency = currency_;
  s.money_decimals = money_decimals_;
  s.limits = limits_;
  s.epoch = epoch_;
  s.leader = leader_;
  s.instruments.reserve(instruments_.size());
  for (const Instrument& i : instruments_) s.instruments.push_back(i.s);
  s.users = users_;
  s.accounts.reserve(accounts_.size());
  for (const Account& a : accounts_) s.accounts.push_back(a.s);
  s.orders.reserve(orders_.live());
  for (const Instrument& i : instruments_) {
    for (const BookSide* side : {&i.book.bids, &i.book.asks}) {
      side->for_each_level([&](PriceTicks, const Level& l) {
        for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) {
          s.orders.push_back(orders_[h].state());
        }
        return true;
      });
    }
  }
  s.stops.reserve(stops_.size());
  for (const auto& [id, st] : stops_) s.stops.push_back(st);
  s.trades = trades_;
  return s;
}

std::uint64_t Engine::state_hash() const {
  return hash_snapshot(snapshot());
}

Engine Engine::restore(const Snapshot& s) {
  QX_ASSERT_EQ(s.semantics_version, kSemanticsVersion);
  Engine e;
  e.last_seq_ = s.last_seq;
  e.last_timestamp_ns_ = s.last_timestamp_ns;
  e.trading_day_ = s.trading_day;
  e.next_order_id_ = s.next_order_id;
  e.next_trade_id_ = s.next_trade_id;
  e.effects_hash_ = s.effects_hash;
  e.liquidation_ratio_ppb_ = s.liquidation_ratio_ppb;
  e.insurance_account_ = s.insurance_account;
  QX_ASSERT(s.money_decimals <= kMoneyDecimalsMax);
  e.currency_ = s.currency;
  e.money_decimals_ = s.money_decimals;
  e.money_scale_ = pow10(s.money_decimals);
  QX_ASSERT(limits_ok(s.limits));  // the decoder refuses others
  e.limits_ = s.limits;
  e.reserve(s.limits);
  e.epoch_ = s.epoch;
  e.leader_ = s.leader;
  for (const InstrumentState& is : s.instruments) {
    Instrument ins;
    ins.s = is;
    auto tv = tick_value_of(is.params, e.money_scale_);
    QX_ASSERT(tv.has_value());
    ins.tick_value = *tv;
    e.refresh_band(ins);
    QX_ASSERT(session_ok(is.session) && phase_ok(is.phase));  // the decoder refuses others
    e.instrument_names_.emplace(is.code, static_cast<std::uint32_t>(e.instruments_.size()));
    e.instruments_.push_back(std::move(ins));
    e.book_phase_change(e.instruments_.back());
  }
  for (const std::string& u : s.users) {
    e.user_names_.emplace(u, static_cast<std::uint32_t>(e.users_.size()));
    e.users_.push_back(u);
  }
  for (const AccountState& as : s.accounts) {
    Account a;
    QX_ASSERT(stp_ok(as.stp));
    a.s = as;
    for (const PositionState& p : as.positions)
      a.margin += p.long_side.margin + p.short_side.margin;
    e.account_names_.emplace(as.name, static_cast<std::uint32_t>(e.accounts_.size()));
    e.accounts_.push_back(std::move(a));
  }
  e.orders_.reserve(s.orders.size());
  std::vector<OrderHandle> by_id;
  by_id.reserve(s.orders.size());
  for (const OrderState& os : s.orders) {
    QX_ASSERT(raw(os.instrument) < e.instruments_.size());
    QX_ASSERT(raw(os.account) < e.accounts_.size());
    QX_ASSERT(raw(os.id) != 0);
    OrderHandle h = e.orders_.allocate();
    QX_ASSERT(stp_ok(os.stp));
    e.orders_[h] = Order::from(os);
    by_id.push_back(h);
    Account& a = e.acc_at(os.account);
    a.frozen_margin += os.frozen_margin;
    a.frozen_commission += os.frozen_commission;
    a.open_orders += 1;
    if (os.offset == Offset::kOpen) {
      e.add_pending(a, os.instrument, os.direction, os.volume_left);
    }
    e.index_order(h);
    e.rest(h, e.ins_at(os.instrument));
  }
  // Each account's order list runs in order id order (liquidation cancels in that order).
  std::sort(by_id.begin(), by_id.end(), [&](OrderHandle x, OrderHandle y) {
    return raw(e.orders_[x].id) < raw(e.orders_[y].id);
  });
  for (OrderHandle h : by_id) e.link_account(h);
  for (const StopState& st : s.stops) {
    const NewOrder& o = st.order;
    QX_ASSERT(raw(o.instrument) < e.instruments_.size());
    QX_ASSERT(raw(o.account) < e.accounts_.size());
    QX_ASSERT(raw(st.id) != 0 && raw(st.id) < e.next_order_id_);
    QX_ASSERT(o.trigger.has_value() && trigger_ok(*o.trigger));
    QX_ASSERT(!o.stp || stp_ok(*o.stp));
    e.index_stop(st);
    QX_ASSERT(e.stops_.emplace(st.id, st).second);
  }
  e.rebuild_holders();
  e.trades_ = s.trades;
  e.check_invariants();
  return e;
}

void Engine::check_invariants() const {
  std::vector<Money> frozen_margin(accounts_.size()), frozen_commission(accounts_.size());
  std::vector<std::uint32_t> open(accounts_.size());
  std::vector<std::vector<PendingOpen>> pending(accounts_.size());
  std::size_t live = 0;
  for (const Instrument& ins : instruments_) {
    // Only a call auction (or a halt that began before its book uncrossed) holds a crossed book.
    if (!ins.book.bids.empty() && !ins.book.asks.empty() && ins.s.phase != TradingPhase::kAuction &&
        ins.s.status == InstrumentStatus::kTrading) {
      QX_ASSERT(ins.book.bids.best_price() < ins.book.asks.best_price());
    }
    for (const BookSide* side : {&ins.book.bids, &ins.book.asks}) {
      std::size_t levels = 0;
      std::optional<PriceTicks> previous;
      side->for_each_level([&](PriceTicks price, const Level& lvl) {
        if (previous) QX_ASSERT(!side->better_or_equal(price, *previous));
        previous = price;
        levels += 1;
        Lots sum{0};
        std::uint32_t n = 0;
        for (OrderHandle h = lvl.head; h != kNoOrder; h = orders_[h].next) {
          const Order& o = orders_[h];
          QX_ASSERT(o.price == price && o.volume_left.value > 0);
          QX_ASSERT((o.direction == Direction::kBuy) == side->is_bid());
          QX_ASSERT(o.offset == Offset::kOpen || o.frozen_his + o.frozen_today() == o.volume_left);
          sum += o.volume_left;
          n += 1;
          frozen_margin[raw(o.account)] += o.frozen_margin();
          frozen_commission[raw(o.account)] += o.frozen_commission;
          open[raw(o.account)] += 1;
          if (o.offset == Offset::kOpen) {
            auto& p = pending[raw(o.account)];
            auto it = std::find_if(p.begin(), p.end(), [&](const PendingOpen& x) {
              return x.instrument == o.instrument;
            });
            if (it == p.end()) it = p.insert(p.end(), PendingOpen{o.instrument, {}, {}});
            (o.direction == Direction::kBuy ? it->buy : it->sell) += o.volume_left;
          }
          QX_ASSERT(resolve(o.account, OrderRef{o.id, {}}) == h);
          if (raw(o.client_order_id) != 0) {
            QX_ASSERT(find_by_client(o.account, o.client_order_id) == h);
          }
          live += 1;
        }
        QX_ASSERT_EQ(sum.value, lvl.volume.value);
        QX_ASSERT_EQ(n, lvl.count);
        QX_ASSERT(n > 0);
        return true;
      });
      QX_ASSERT_EQ(levels, side->level_count());
    }
  }
  std::vector<std::vector<AccountId>> holders(instruments_.size());
  for (std::size_t ai = 0; ai < accounts_.size(); ++ai) {
    for (const PositionState& p : accounts_[ai].s.positions) {
      holders[raw(p.instrument)].push_back(AccountId(static_cast<std::uint32_t>(ai)));
    }
  }
  for (std::size_t i = 0; i < instruments_.size(); ++i) {
    QX_ASSERT(instruments_[i].holders == holders[i]);
  }
  std::size_t scheduled = 0;
  for (std::size_t i = 0; i < instruments_.size(); ++i) {
    const InstrumentState& s = instruments_[i].s;
    if (s.next_phase_ns == kNoPhaseChange) continue;
    scheduled += 1;
    QX_ASSERT(phase_changes_.contains({s.next_phase_ns, static_cast<std::uint32_t>(i)}));
  }
  QX_ASSERT_EQ(scheduled, phase_changes_.size());
  QX_ASSERT_EQ(order_index_.size(), live);
  QX_ASSERT_EQ(orders_.live(), live);
  // Pending stops: each in exactly its trigger set, its client id indexed, counted by its account.
  std::vector<std::uint32_t> stops(accounts_.size());
  std::size_t indexed = 0;
  for (const Instrument& ins : instruments_) {
    for (const auto& by_source : ins.triggers) {
      for (const auto& set : by_source) indexed += set.size();
    }
    QX_ASSERT(!ins.moved);
  }
  QX_ASSERT_EQ(indexed, stops_.size());
  for (const auto& [id, st] : stops_) {
    const NewOrder& o = st.order;
    QX_ASSERT(st.id == id && o.trigger.has_value());
    const bool rising = fires_rising(o.direction, o.trigger->kind);
    QX_ASSERT(instruments_[raw(o.instrument)]
                  .triggers[raw(o.trigger->source) - 1][rising ? 1 : 0]
                  .contains({o.trigger->price, id}));
    if (raw(o.client_order_id) != 0) {
      QX_ASSERT(resolve_stop(o.account, OrderRef{std::nullopt, o.client_order_id}) == id);
      QX_ASSERT(!find_by_client(o.account, o.client_order_id));
    }
    stops[raw(o.account)] += 1;
  }
  QX_ASSERT(hits_.empty() && moved_.empty());
  for (std::size_t i = 0; i < accounts_.size(); ++i) {
    const Account& a = accounts_[i];
    QX_ASSERT_EQ(a.frozen_margin.value, frozen_margin[i].value);
    QX_ASSERT_EQ(a.frozen_commission.value, frozen_commission[i].value);
    QX_ASSERT_EQ(a.open_orders, open[i]);
    QX_ASSERT_EQ(a.stops, stops[i]);
    // The pending OPEN lots by instrument, and the order list in order id order.
    std::sort(pending[i].begin(), pending[i].end(), [](const PendingOpen& x, const PendingOpen& y) {
      return raw(x.instrument) < raw(y.instrument);
    });
    QX_ASSERT_EQ(a.pending.size(), pending[i].size());
    for (std::size_t k = 0; k < a.pending.size(); ++k) {
      QX_ASSERT(a.pending[k].instrument == pending[i][k].instrument);
      QX_ASSERT(a.pending[k].buy == pending[i][k].buy && a.pending[k].sell == pending[i][k].sell);
    }
    std::uint32_t listed = 0;
    OrderHandle before = kNoOrder;
    for (OrderHandle h = a.first_order; h != kNoOrder; h = orders_[h].acc_next) {
      QX_ASSERT(orders_[h].live() && raw(orders_[h].account) == i);
      QX_ASSERT(orders_[h].acc_prev == before);
      if (before != kNoOrder) QX_ASSERT(raw(orders_[before].id) < raw(orders_[h].id));
      before = h;
      listed += 1;
    }
    QX_ASSERT(a.last_order == before);
    QX_ASSERT_EQ(listed, open[i]);
    Money margin{0};
    for (const PositionState& p : a.s.positions) {
      for (const PositionSide* s : {&p.long_side, &p.short_side}) {
        QX_ASSERT(s->frozen_his <= s->his && s->frozen_today <= s->today);
        QX_ASSERT(s->today.value >= 0 && s->his.value >= 0);
        margin += s->margin;
      }
    }
    QX_ASSERT_EQ(a.margin.value, margin.value);
  }
}

}  // namespace qx::core
