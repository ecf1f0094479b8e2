// Money: fees, margin, freezing, fills into positions, balances, daily settlement and forced
// liquidation.
//
// Accounting basis (Chinese futures, mark-to-market daily):
//   - a position side keeps today's and history volume with separate settlement-basis costs:
//     today at open prices, history at the last settlement price;
//   - closing realises (price - basis) * lots * tick value into close_profit (sign by side); the
//     basis share of a partial close is pro rata, rounded down, the last close takes the rest, so
//     realised + unrealised P&L always equals the exact cash-flow P&L;
//   - margin is charged per fill at the fill price and released pro rata on close; at settlement
//     it is recomputed at the settlement price;
//   - balance = pre_balance + deposit - withdraw + close_profit - commission + position_profit,
//     where position_profit marks every side at the last price (or the previous settlement
//     price before the first trade).
#include <algorithm>

#include "core/assert.h"
#include "core/engine.h"
#include "core/numeric.h"

namespace qx::core {

namespace {

Money to_money(i128 v) {
  auto n = narrow(v);
  QX_ASSERT(n.has_value());
  return Money(*n);
}

// Fee for one schedule part: per lot plus a rate of the notional, each rounded up.
i128 fee_part(Money per_lot, std::int64_t ppb, i128 notional_minor, Lots v) {
  return static_cast<i128>(per_lot.value) * v.value + mul_div_ceil(notional_minor, ppb, kPpb);
}

// The fee of `v` lots of notional n: per lot plus a rate of the notional, each rounded up.
Money fee_of(const FeeSchedule& f, Offset kind, i128 n, Lots v) {
  if (v.value == 0) return Money{0};
  switch (kind) {
    case Offset::kOpen: return to_money(fee_part(f.open_per_lot, f.open_ppb, n, v));
    case Offset::kCloseToday:
      return to_money(fee_part(f.close_today_per_lot, f.close_today_ppb, n, v));
    case Offset::kClose:
    case Offset::kCloseYesterday: return to_money(fee_part(f.close_per_lot, f.close_ppb, n, v));
  }
  QX_ASSERT(false);
  return Money{0};
}

// The margin of a position side of notional n.
Money margin_of(const InstrumentParams& p, Direction d, i128 n) {
  std::int64_t ratio = d == Direction::kBuy ? p.margin_long_ppb : p.margin_short_ppb;
  return to_money(mul_div_ceil(n, ratio, kPpb));
}

}  // namespace

Money Engine::fee(const Instrument& ins, Offset kind, PriceTicks p, Lots v) const {
  return fee_of(ins.s.params.fees, kind, notional(p, v, ins.tick_value), v);
}

Money Engine::margin_for(const Instrument& ins, Direction d, PriceTicks p, Lots v) const {
  return margin_of(ins.s.params, d, notional(p, v, ins.tick_value));
}

PositionState& Engine::position(Account& a, InstrumentId ins) {
  auto& ps = a.s.positions;
  auto it = std::lower_bound(ps.begin(), ps.end(), ins, [](const PositionState& p, InstrumentId i) {
    return raw(p.instrument) < raw(i);
  });
  if (it != ps.end() && it->instrument == ins) return *it;
  // A new entry: the account joins the instrument's holders (kept in account id order).
  const auto me = static_cast<AccountId>(static_cast<std::uint32_t>(&a - accounts_.data()));
  std::vector<AccountId>& h = ins_at(ins).holders;
  h.insert(std::lower_bound(h.begin(), h.end(), me,
                            [](AccountId x, AccountId y) { return raw(x) < raw(y); }),
           me);
  PositionState fresh;
  fresh.instrument = ins;
  return *ps.insert(it, fresh);
}

const PositionState* Engine::find_position(const Account& a, InstrumentId ins) const {
  const auto& ps = a.s.positions;
  auto it = std::lower_bound(ps.begin(), ps.end(), ins, [](const PositionState& p, InstrumentId i) {
    return raw(p.instrument) < raw(i);
  });
  return it != ps.end() && it->instrument == ins ? &*it : nullptr;
}

Money Engine::position_profit(const Account& a) const {
  i128 sum = 0;
  for (const PositionState& p : a.s.positions) {
    const Instrument& ins = instruments_[raw(p.instrument)];
    PriceTicks mark = ins.s.last_price.value_or(ins.s.pre_settlement);
    const PositionSide& l = p.long_side;
    const PositionSide& s = p.short_side;
    sum += notional(mark, l.total(), ins.tick_value) - l.position_cost_his.value -
           l.position_cost_today.value;
    sum += static_cast<i128>(s.position_cost_his.value) + s.position_cost_today.value -
           notional(mark, s.total(), ins.tick_value);
  }
  return to_money(sum);
}

// Both fit in 64 bits by the bounds of core/limits.h; they are summed in 128 bits regardless and
// narrowed with a check, so a flaw in that argument stops the engine instead of wrapping.
Money Engine::balance(const Account& a) const {
  return to_money(static_cast<i128>(a.s.pre_balance.value) + a.s.deposit.value -
                  a.s.withdraw.value + a.s.close_profit.value - a.s.commission.value +
                  position_profit(a).value);
}

Money Engine::available(const Account& a) const {
  return to_money(static_cast<i128>(balance(a).value) - a.margin.value - a.frozen_margin.value -
                  a.frozen_commission.value);
}

bool Engine::fill_fits(const Account& a) {
  constexpr std::int64_t kRoom = kMoneyMax - kFillMoneyMax;
  return a.s.close_profit.value <= kRoom && a.s.close_profit.value >= -kRoom &&
         a.s.commission.value <= kRoom;
}

namespace {

auto pending_at(auto& pending, InstrumentId ins) {
  return std::lower_bound(pending.begin(), pending.end(), ins,
                          [](const auto& p, InstrumentId i) { return raw(p.instrument) < raw(i); });
}

}  // namespace

Lots Engine::pending_of(const Account& a, InstrumentId ins, Direction d) const {
  auto it = pending_at(a.pending, ins);
  if (it == a.pending.end() || it->instrument != ins) return Lots{0};
  return d == Direction::kBuy ? it->buy : it->sell;
}

void Engine::add_pending(Account& a, InstrumentId ins, Direction d, Lots delta) {
  if (delta.value == 0) return;
  auto it = pending_at(a.pending, ins);
  if (it == a.pending.end() || it->instrument != ins) {
    it = a.pending.insert(it, PendingOpen{ins, {}, {}});
  }
  (d == Direction::kBuy ? it->buy : it->sell) += delta;
  QX_ASSERT(it->buy.value >= 0 && it->sell.value >= 0);
  if (it->buy.value == 0 && it->sell.value == 0) a.pending.erase(it);
}

// Limit up rounds down and limit down rounds up to whole ticks, so both stay inside the band. A
// limit up beyond the largest price saturates: every price is below it.
void Engine::refresh_band(Instrument& ins) {
  if (!ins.s.params.price_band_ppb) {
    ins.band_up.reset();
    ins.band_down.reset();
    return;
  }
  i128 ref = ins.s.pre_settlement.value;
  i128 band = *ins.s.params.price_band_ppb;
  ins.band_up = PriceTicks(narrow(ref * (kPpb + band) / kPpb).value_or(kInt64Max));
  auto down = narrow(mul_div_ceil(ref, kPpb - band, kPpb));
  QX_ASSERT(down.has_value());
  ins.band_down = PriceTicks(*down);
}

std::optional<RejectReason> Engine::reserve(Order& o, Account& a, Instrument& ins, PriceTicks price,
                                            Lots v, Money grandfathered) {
  if (o.offset == Offset::kOpen) {
    const PositionState* pos = find_position(a, o.instrument);
    const Lots pending = pending_of(a, o.instrument, o.direction);
    auto entry = pending_at(a.pending, o.instrument);
    const bool known =
        pos != nullptr || (entry != a.pending.end() && entry->instrument == o.instrument);
    if (!known && a.s.positions.size() + a.pending.size() >= kInstrumentsPerAccountMax) {
      return RejectReason::kTooManyInstruments;
    }
    // Held lots plus the account's other resting OPEN orders on this side, plus this order.
    Lots held{0};
    if (pos != nullptr) {
      held = (o.direction == Direction::kBuy ? pos->long_side : pos->short_side).total();
    }
    const Lots own = o.live() ? o.volume_left : Lots{0};
    if (held + (pending - own) + v > ins.s.params.position_limit) {
      return RejectReason::kPositionLimitExceeded;
    }
    i128 n = notional(price, v, ins.tick_value);
    Money m = margin_of(ins.s.params, o.direction, n);
    Money c = fee_of(ins.s.params.fees, Offset::kOpen, n, v);
    // Available as it would be with o's current reservation released.
    Money held_now = o.frozen_margin() + o.frozen_commission;
    bool fits = o.forced || m + c <= grandfathered || m + c <= available(a) + held_now;
    if (!fits) return RejectReason::kInsufficientFunds;
    a.frozen_margin += m - o.frozen_margin();
    a.frozen_commission += c - o.frozen_commission;
    add_pending(a, o.instrument, o.direction, v - own);
    o.frozen_margin_or_today = m.value;
    o.frozen_commission = c;
    QX_ASSERT(a.frozen_margin.value >= 0 && a.frozen_commission.value >= 0);
    return std::nullopt;
  }
  // Closing: a buy closes the short side, a sell the long side. CLOSE takes history first.
  const PositionState* found = find_position(a, o.instrument);
  if (found == nullptr) return RejectReason::kInsufficientPosition;
  PositionState& pos = position(a, o.instrument);
  PositionSide& side = o.direction == Direction::kBuy ? pos.short_side : pos.long_side;
  Lots his_free = side.his - (side.frozen_his - o.frozen_his);
  Lots today_free = side.today - (side.frozen_today - o.frozen_today());
  Lots his{0}, today{0};
  switch (o.offset) {
    case Offset::kCloseYesterday: his = v; break;
    case Offset::kCloseToday: today = v; break;
    case Offset::kClose:
      his = std::min(v, his_free);
      today = v - his;
      break;
    case Offset::kOpen: QX_ASSERT(false);
  }
  if (his > his_free || today > today_free) return RejectReason::kInsufficientPosition;
  // Closing never needs free funds: the commission is taken from the balance it releases.
  Money c = fee(ins, Offset::kClose, price, his) + fee(ins, Offset::kCloseToday, price, today);
  side.frozen_his += his - o.frozen_his;
  side.frozen_today += today - o.frozen_today();
  a.frozen_commission += c - o.frozen_commission;
  o.frozen_his = his;
  o.frozen_margin_or_today = today.value;
  o.frozen_commission = c;
  QX_ASSERT(a.frozen_commission.value >= 0);
  return std::nullopt;
}

void Engine::unfreeze(Order& o, Account& a) {
  a.frozen_margin -= o.frozen_margin();
  a.frozen_commission -= o.frozen_commission;
  o.frozen_commission = Money{0};
  if (o.offset == Offset::kOpen) {
    add_pending(a, o.instrument, o.direction, -o.volume_left);
  } else {
    PositionState& pos = position(a, o.instrument);
    PositionSide& side = o.direction == Direction::kBuy ? pos.short_side : pos.long_side;
    side.frozen_his -= o.frozen_his;
    side.frozen_today -= o.frozen_today();
    o.frozen_his = Lots{0};
  }
  o.frozen_margin_or_today = 0;
  QX_ASSERT(a.frozen_margin.value >= 0 && a.frozen_commission.value >= 0);
}

namespace {

// Realises the close of `part` lots of one bucket (today or history) of a side at `price`.
Money close_bucket(bool is_long, Lots& held, Money& basis, Lots part, PriceTicks price,
                   Money tick_value) {
  if (part.value == 0) return Money{0};
  Money cost = pro_rata(basis, part, held);
  basis -= cost;
  held -= part;
  Money value = to_money(notional(price, part, tick_value));
  return is_long ? value - cost : cost - value;
}

}  // namespace

void Engine::fill(Order& o, Account& a, Instrument& ins, PriceTicks price, Lots v, Money& fee_out) {
  QX_ASSERT(v.value > 0 && v <= o.volume_left);
  PositionState& pos = position(a, o.instrument);
  Money released_commission = pro_rata(o.frozen_commission, v, o.volume_left);
  if (o.offset == Offset::kOpen) {
    PositionSide& side = o.direction == Direction::kBuy ? pos.long_side : pos.short_side;
    i128 exact = notional(price, v, ins.tick_value);
    Money n = to_money(exact);
    side.today += v;
    side.open_cost += n;
    side.position_cost_today += n;
    Money m = margin_of(ins.s.params, o.direction, exact);
    side.margin += m;
    a.margin += m;
    Money released_margin = pro_rata(o.frozen_margin(), v, o.volume_left);
    o.frozen_margin_or_today -= released_margin.value;
    a.frozen_margin -= released_margin;
    add_pending(a, o.instrument, o.direction, -v);
    fee_out = fee_of(ins.s.params.fees, Offset::kOpen, exact, v);
  } else {
    bool closes_long = o.direction == Direction::kSell;
    PositionSide& side = closes_long ? pos.long_side : pos.short_side;
    Lots his = std::min(v, o.frozen_his);
    Lots today = v - his;
    QX_ASSERT(today <= o.frozen_today());
    Lots total = side.total();
    Money margin_released = pro_rata(side.margin, v, total);
    side.margin -= margin_released;
    a.margin -= margin_released;
    side.open_cost -= pro_rata(side.open_cost, v, total);
    o.frozen_his -= his;
    o.frozen_margin_or_today -= today.value;
    side.frozen_his -= his;
    side.frozen_today -= today;
    a.s.close_profit +=
        close_bucket(closes_long, side.his, side.position_cost_his, his, price, ins.tick_value) +
        close_bucket(closes_long, side.today, side.position_cost_today, today, price,
                     ins.tick_value);
    fee_out = fee(ins, Offset::kClose, price, his) + fee(ins, Offset::kCloseToday, price, today);
  }
  o.frozen_commission -= released_commission;
  a.frozen_commission -= released_commission;
  a.s.commission += fee_out;
  o.volume_left -= v;
}

// An account is queued at most once per round (its first time, in the order the event touched
// accounts; each triggered stop's order starts a new round), so checking every account at a
// settlement is linear in the accounts, and an account that a liquidation trade touches again is
// not checked twice in one round.
void Engine::check_liquidation(AccountId a) {
  if (!liquidation_ratio_ppb_) return;
  const auto i = static_cast<std::size_t>(raw(a));
  if (i >= liquidation_queued_.size()) liquidation_queued_.resize(accounts_.size(), false);
  if (liquidation_queued_[i]) return;
  liquidation_queued_[i] = true;
  liquidation_queue_.push_back(a);
}

bool Engine::at_risk(const Account& a) const {
  if (!liquidation_ratio_ppb_ || a.margin.value == 0) return false;
  const Money bal = balance(a);
  return bal.value <= 0 || static_cast<i128>(a.margin.value) * kPpb >=
                               static_cast<i128>(*liquidation_ratio_ppb_) * bal.value;
}

// Lots of `side` whose margin release would bring margin / balance below the ratio were they
// closed at the mark with no fee: the least k with (M - m * k / L) * 1e9 < r * B, i.e.
// floor(L * (M * 1e9 - r * B) / (m * 1e9)) + 1, at least 1 and at most L. All of it when the
// balance is not positive or the side holds no margin.
Lots Engine::lots_to_restore(const Account& a, const PositionSide& side) const {
  const Lots all = side.total();
  const Money bal = balance(a);
  if (bal.value <= 0 || side.margin.value == 0) return all;
  const i128 excess = static_cast<i128>(a.margin.value) * kPpb -
                      static_cast<i128>(*liquidation_ratio_ppb_) * bal.value;
  if (excess < 0) return Lots{1};
  const i128 k =
      static_cast<i128>(all.value) * excess / (static_cast<i128>(side.margin.value) * kPpb) + 1;
  return Lots(static_cast<std::int64_t>(std::min<i128>(k, all.value)));
}

void Engine::run_liquidations() {
  // The queue may grow while it is walked: liquidation trades queue their counterparties.
  for (std::size_t i = 0; i < liquidation_queue_.size(); ++i) {
    AccountId id = liquidation_queue_[i];
    const Account& a = acc_at(id);
    bool stuck = false;
    if (at_risk(a)) {
      Effect f{};
      f.kind = EffectKind::kLiquidationStarted;
      f.account = id;
      f.amount = balance(a);
      f.amount2 = a.margin;
      emit(f);
      liquidate(id);
      cover_deficit(id);
      stuck = at_risk(acc_at(id));
    }
    const auto k = static_cast<std::size_t>(raw(id));
    if (k >= stuck_.size()) stuck_.resize(accounts_.size(), false);
    if (stuck_[k] != stuck) {
      stuck_[k] = stuck;
      stuck_count_ = stuck ? stuck_count_ + 1 : stuck_count_ - 1;
    }
  }
  for (AccountId id : liquidation_queue_)
    liquidation_queued_[static_cast<std::size_t>(raw(id))] = false;
  liquidation_queue_.clear();
}

// An account whose positions are all closed and whose balance is below zero owes the deficit; the
// insurance fund (if set, and not the account itself) pays it as far as its available funds go,
// and no further than keeps both accounts' close_profit within the money bound. The transfer is
// booked in both accounts' close_profit; the fund is then queued for its own check whatever it
// paid (docs/semantics.md, "Forced liquidation"): a fund that paid nothing may already be at risk
// and is tried again here like at any other check.
void Engine::cover_deficit(AccountId id) {
  if (!insurance_account_ || *insurance_account_ == id) return;
  Account& a = acc_at(id);
  for (const PositionState& p : a.s.positions) {
    if (p.long_side.total().value != 0 || p.short_side.total().value != 0) return;
  }
  const Money bal = balance(a);
  if (bal.value >= 0) return;
  Account& fund = acc_at(*insurance_account_);
  constexpr std::int64_t kRoom = kMoneyMax - kFillMoneyMax;
  const std::int64_t deficit = -bal.value;
  // Both close_profits stay within the bound: the fund's going down, the account's going up.
  const std::int64_t can_pay =
      std::max<std::int64_t>(0, std::min({available(fund).value, fund.s.close_profit.value + kRoom,
                                          kRoom - a.s.close_profit.value}));
  const std::int64_t paid = std::min(deficit, can_pay);
  a.s.close_profit += Money(paid);
  fund.s.close_profit -= Money(paid);
  Effect f{};
  f.kind = EffectKind::kInsuranceCovered;
  f.account = id;
  f.counter_account = *insurance_account_;
  f.amount = Money(paid);
  f.amount2 = Money(deficit - paid);
  emit(f);
  check_liquidation(*insurance_account_);
}

// Cancels every resting order of the account (in order id order), then closes positions (instrument
// id order, long side then short side) with MARKET orders that skip funds checks, each for the lots
// that would restore the ratio (lots_to_restore), until the account is no longer at risk. A side
// whose order fills nothing (an empty book, a halted instrument) is left for the next check: the
// account's next trade, the next MarkToMarket or settlement. Trades may queue counterparties.
void Engine::liquidate(AccountId id) {
  for (OrderHandle h : account_orders(acc_at(id))) {
    cancel_resting(h, CancelReason::kForcedLiquidation);
  }
  std::vector<InstrumentId> held;  // copy: fills change (and may erase) positions
  for (const PositionState& p : acc_at(id).s.positions) held.push_back(p.instrument);
  for (InstrumentId ins_id : held) {
    Instrument& ins = ins_at(ins_id);
    // A halted instrument, or one outside continuous trading, cannot take a forced order now.
    if (ins.s.status != InstrumentStatus::kTrading || ins.s.phase != TradingPhase::kContinuous) {
      continue;
    }
    for (Direction d : {Direction::kSell, Direction::kBuy}) {
      for (;;) {
        const Account& a = acc_at(id);
        if (!at_risk(a)) return;
        const PositionState* p = find_position(a, ins_id);
        if (p == nullptr) break;
        const PositionSide& side = d == Direction::kSell ? p->long_side : p->short_side;
        const Lots before = side.total();
        if (before.value == 0) break;
        const Lots lots = lots_to_restore(a, side);
        auto price = market_price(ins, d, lots);
        if (!price) break;
        OrderHandle h = orders_.allocate();
        Order& o = orders_[h];
        o.account = id;
        o.instrument = ins_id;
        o.direction = d;
        o.offset = Offset::kClose;
        o.price_type = PriceType::kMarket;
        o.time_condition = TimeCondition::kIoc;
        o.forced = true;
        o.price = *price;
        o.volume_orig = lots;
        o.volume_left = lots;
        o.insert_time_ns = header_->timestamp_ns;
        QX_ASSERT(!reserve(o, acc_at(id), ins, o.price, o.volume_left, Money{-1}));
        o.id = OrderId(next_order_id_++);
        index_order(h);
        link_account(h);
        acc_at(id).open_orders += 1;
        Effect f{};
        f.kind = EffectKind::kOrderAccepted;
        f.account = id;
        f.instrument = ins_id;
        f.order = o.id;
        f.direction = d;
        f.offset = Offset::kClose;
        f.price = o.price;
        f.volume = o.volume_orig;
        f.volume_left = o.volume_left;
        f.reason = 1;  // marks an engine-generated (forced) order
        emit(f);
        match(h, ins);
        const PositionState* after = find_position(acc_at(id), ins_id);
        const Lots left = after == nullptr        ? Lots{0}
                          : d == Direction::kSell ? after->long_side.total()
                                                  : after->short_side.total();
        if (left == before) break;  // nothing filled: no liquidity within the order's price
      }
    }
  }
}

i128 Engine::settlement_pnl(const Account& a, const std::vector<PriceTicks>& price) const {
  i128 pnl = 0;
  for (const PositionState& p : a.s.positions) {
    const Instrument& ins = instruments_[raw(p.instrument)];
    const PriceTicks sp = price[raw(p.instrument)];
    pnl += notional(sp, p.long_side.total(), ins.tick_value) - p.long_side.position_cost_his.value -
           p.long_side.position_cost_today.value;
    pnl += static_cast<i128>(p.short_side.position_cost_his.value) +
           p.short_side.position_cost_today.value -
           notional(sp, p.short_side.total(), ins.tick_value);
  }
  return pnl;
}

void Engine::on(const Settle& e) {
  std::vector<PriceTicks> price(instruments_.size());
  for (std::size_t i = 0; i < instruments_.size(); ++i) {
    const InstrumentState& s = instruments_[i].s;
    price[i] = s.last_price.value_or(s.pre_settlement);
  }
  for (const SettlementPrice& sp : e.prices) {
    if (raw(sp.instrument) >= instruments_.size()) {
      return admin_reject(RejectReason::kUnknownInstrument);
    }
    if (sp.price.value <= 0 || sp.price > instruments_[raw(sp.instrument)].s.price_max) {
      return admin_reject(RejectReason::kInvalidPrice);
    }
    price[raw(sp.instrument)] = sp.price;
  }
  // 0. Every new pre_balance must stay within kMoneyMax; if one would not, nothing settles.
  std::vector<Money> settled(accounts_.size());
  for (std::size_t ai = 0; ai < accounts_.size(); ++ai) {
    const Account& a = accounts_[ai];
    i128 v = static_cast<i128>(a.s.pre_balance.value) + a.s.deposit.value - a.s.withdraw.value +
             a.s.close_profit.value - a.s.commission.value + settlement_pnl(a, price);
    if (v > kMoneyMax || v < -kMoneyMax) return admin_reject(RejectReason::kNumericOverflow);
    settled[ai] = Money(static_cast<std::int64_t>(v));
  }
  // 1. Expire day orders, instrument by instrument, best level first, in time priority. A
  //    close-today order cannot outlive its day either: tomorrow its lots are history.
  std::vector<OrderHandle> expired;
  for (Instrument& ins : instruments_) {
    expired.clear();
    for (const BookSide* side : {&ins.book.bids, &ins.book.asks}) {
      side->for_each_level([&](PriceTicks, const Level& l) {
        for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) {
          const Order& o = orders_[h];
          if (o.time_condition == TimeCondition::kGfd || o.offset == Offset::kCloseToday) {
            expired.push_back(h);
          }
        }
        return true;
      });
    }
    for (OrderHandle h : expired) cancel_resting(h, CancelReason::kExpired);
  }
  //    Then day stops (GFD, or close-today), in id order.
  std::vector<OrderId> day_stops;
  for (const auto& [id, st] : stops_) {
    if (st.order.time_condition == TimeCondition::kGfd || st.order.offset == Offset::kCloseToday) {
      day_stops.push_back(id);
    }
  }
  for (OrderId id : day_stops) cancel_stop(id, CancelReason::kExpired);
  // 1b. Instruments whose last trading day this is: every other resting order is cancelled.
  std::vector<bool> expiring(instruments_.size());
  for (std::size_t i = 0; i < instruments_.size(); ++i) {
    const InstrumentState& s = instruments_[i].s;
    expiring[i] =
        s.params.last_trading_day == trading_day_ && s.status != InstrumentStatus::kDelisted;
    if (expiring[i]) cancel_all_resting(instruments_[i], CancelReason::kInstrumentExpired);
  }
  // 2. Mark every position to the settlement price and roll today into history; resting close
  //    orders (GTC) now hold history volume.
  for (std::size_t ai = 0; ai < accounts_.size(); ++ai) {
    Account& a = accounts_[ai];
    for (PositionState& p : a.s.positions) {
      const Instrument& ins = instruments_[raw(p.instrument)];
      PriceTicks sp = price[raw(p.instrument)];
      for (PositionSide* side : {&p.long_side, &p.short_side}) {
        bool is_long = side == &p.long_side;
        Money value = to_money(notional(sp, side->total(), ins.tick_value));
        side->his += side->today;
        side->today = Lots{0};
        side->frozen_his += side->frozen_today;
        side->frozen_today = Lots{0};
        side->position_cost_his = value;
        side->position_cost_today = Money{0};
        Money m = margin_for(ins, is_long ? Direction::kBuy : Direction::kSell, sp, side->his);
        a.margin += m - side->margin;
        side->margin = m;
        // 2b. Expiry: the side, now marked to the final settlement price, is delivered in cash
        //     at that price (no further money moves) and closed.
        if (expiring[raw(p.instrument)] && side->his.value > 0) {
          Effect f{};
          f.kind = EffectKind::kPositionDelivered;
          f.account = AccountId(static_cast<std::uint32_t>(ai));
          f.instrument = p.instrument;
          f.direction = is_long ? Direction::kBuy : Direction::kSell;
          f.volume = side->his;
          f.price = sp;
          f.amount = value;
          emit(f);
          a.margin -= side->margin;
          *side = PositionSide{};
        }
      }
    }
    std::erase_if(a.s.positions, [](const PositionState& p) {
      return p == PositionState{p.instrument, {}, {}};
    });
    for (OrderHandle h = a.first_order; h != kNoOrder; h = orders_[h].acc_next) {
      Order& o = orders_[h];
      if (o.offset == Offset::kOpen) continue;
      o.frozen_his += o.frozen_today();
      o.frozen_margin_or_today = 0;
    }
    a.s.pre_balance = settled[ai];
    a.s.deposit = a.s.withdraw = a.s.close_profit = a.s.commission = Money{0};
    Effect f{};
    f.kind = EffectKind::kAccountSettled;
    f.account = AccountId(static_cast<std::uint32_t>(ai));
    f.amount = a.s.pre_balance;
    emit(f);
  }
  // 3. Instruments take the settlement price as the new reference; orders the moved band leaves
  //    outside are cancelled.
  for (Instrument& ins : instruments_) {
    InstrumentState& s = ins.s;
    const auto index = static_cast<std::size_t>(&ins - instruments_.data());
    if (expiring[index]) {
      s.status = InstrumentStatus::kDelisted;
      end_session(ins);
      Effect f{};
      f.kind = EffectKind::kInstrumentStatusChanged;
      f.instrument = InstrumentId(static_cast<std::uint32_t>(index));
      f.reason = raw(InstrumentStatus::kDelisted);
      emit(f);
    }
    s.pre_settlement = price[index];
    refresh_band(ins);
    // A new trading day marks at the settlement price until its first trade.
    s.last_price.reset();
    note_moved(ins);
    s.volume_today = Lots{0};
    s.turnover_today = Money{0};
    cancel_outside_band(ins);
  }
  rebuild_holders();
  trades_.clear();
  trading_day_ += 1;
  Effect f{};
  f.kind = EffectKind::kSettlementDone;
  f.amount = Money(trading_day_);
  emit(f);
  for (std::size_t i = 0; i < accounts_.size(); ++i) {
    check_liquidation(AccountId(static_cast<std::uint32_t>(i)));
  }
}

void Engine::rebuild_holders() {
  for (Instrument& ins : instruments_) ins.holders.clear();
  for (std::size_t ai = 0; ai < accounts_.size(); ++ai) {
    for (const PositionState& p : accounts_[ai].s.positions) {
      instruments_[raw(p.instrument)].holders.push_back(AccountId(static_cast<std::uint32_t>(ai)));
    }
  }
}

// Instruments in id order, each holder in account id order; an account holding several of them
// is checked once (check_liquidation de-duplicates). Cost: the holders of the instruments that
// traded since the last settlement.
void Engine::on(const MarkToMarket&) {
  std::uint64_t checked = 0;
  if (liquidation_ratio_ppb_) {
    for (const Instrument& ins : instruments_) {
      if (!ins.s.last_price) continue;
      for (AccountId a : ins.holders) {
        const auto i = static_cast<std::size_t>(raw(a));
        if (i < liquidation_queued_.size() && liquidation_queued_[i]) continue;
        check_liquidation(a);
        checked += 1;
      }
    }
  }
  Effect f{};
  f.kind = EffectKind::kMarkedToMarket;
  f.volume = Lots(static_cast<std::int64_t>(checked));
  emit(f);
}

}  // namespace qx::core
