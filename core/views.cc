// QIFI-shaped read-only views of accounts, positions, orders and trades, and L2 book depth.
#include <algorithm>

#include "core/assert.h"
#include "core/engine.h"
#include "core/numeric.h"

namespace qx::core {

const InstrumentState& Engine::instrument(InstrumentId id) const {
  QX_ASSERT(raw(id) < instruments_.size());
  return instruments_[raw(id)].s;
}

const AccountState& Engine::account_state(AccountId id) const {
  QX_ASSERT(raw(id) < accounts_.size());
  return accounts_[raw(id)].s;
}

const std::string& Engine::user_name(UserId id) const {
  QX_ASSERT(raw(id) < users_.size());
  return users_[raw(id)];
}

AccountView Engine::account(AccountId id) const {
  QX_ASSERT(raw(id) < accounts_.size());
  const Account& a = accounts_[raw(id)];
  AccountView v;
  v.id = id;
  v.name = a.s.name;
  v.user = a.s.user;
  v.pre_balance = a.s.pre_balance;
  v.deposit = a.s.deposit;
  v.withdraw = a.s.withdraw;
  v.close_profit = a.s.close_profit;
  v.commission = a.s.commission;
  v.position_profit = position_profit(a);
  v.float_profit = Money{0};
  for (const PositionView& p : positions(id)) {
    v.float_profit += p.float_profit_long + p.float_profit_short;
  }
  v.static_balance = a.s.pre_balance + a.s.deposit - a.s.withdraw;
  v.balance = balance(a);
  v.margin = a.margin;
  v.frozen_margin = a.frozen_margin;
  v.frozen_commission = a.frozen_commission;
  v.available = available(a);
  if (a.margin.value != 0) {
    // A non-positive balance with margin in use is reported as the largest ratio.
    v.risk_ratio_ppb =
        v.balance.value <= 0
            ? kInt64Max
            : static_cast<std::int64_t>(static_cast<i128>(a.margin.value) * kPpb / v.balance.value);
  }
  return v;
}

std::vector<PositionView> Engine::positions(AccountId id) const {
  QX_ASSERT(raw(id) < accounts_.size());
  std::vector<PositionView> out;
  for (const PositionState& p : accounts_[raw(id)].s.positions) {
    const Instrument& ins = instruments_[raw(p.instrument)];
    PriceTicks mark = ins.s.last_price.value_or(ins.s.pre_settlement);
    auto value = [&](Lots v) { return Money(*narrow(notional(mark, v, ins.tick_value))); };
    PositionView v;
    v.instrument = p.instrument;
    v.long_side = p.long_side;
    v.short_side = p.short_side;
    v.last_price = ins.s.last_price;
    const PositionSide& l = p.long_side;
    const PositionSide& s = p.short_side;
    v.float_profit_long = value(l.total()) - l.open_cost;
    v.float_profit_short = s.open_cost - value(s.total());
    v.position_profit_long = value(l.total()) - l.position_cost_his - l.position_cost_today;
    v.position_profit_short = s.position_cost_his + s.position_cost_today - value(s.total());
    out.push_back(v);
  }
  return out;
}

std::vector<OrderState> Engine::orders(AccountId id) const {
  std::vector<OrderState> out;
  for (OrderHandle h = 0; h < orders_.extent(); ++h) {
    const Order& o = orders_[h];
    if (o.live() && o.account == id) out.push_back(o.state());
  }
  std::sort(out.begin(), out.end(),
            [](const OrderState& x, const OrderState& y) { return raw(x.id) < raw(y.id); });
  return out;
}

std::vector<StopState> Engine::stops(AccountId id) const {
  std::vector<StopState> out;
  if (raw(id) >= accounts_.size() || accounts_[raw(id)].stops == 0) return out;
  for (const auto& [sid, st] : stops_) {
    if (st.order.account == id) out.push_back(st);
  }
  return out;
}

std::optional<OrderState> Engine::order(OrderId id) const {
  auto h = resolve(AccountId{}, OrderRef{id, {}});
  if (!h) return std::nullopt;
  return orders_[*h].state();
}

std::vector<TradeState> Engine::trades(AccountId id) const {
  std::vector<TradeState> out;
  for (const TradeState& t : trades_) {
    if (t.taker_account == id || t.maker_account == id) out.push_back(t);
  }
  return out;
}

BookView Engine::book(InstrumentId id, std::size_t depth) const {
  QX_ASSERT(raw(id) < instruments_.size());
  const Book& b = instruments_[raw(id)].book;
  BookView v;
  auto take = [depth](const BookSide& side, std::vector<LevelView>& out) {
    side.for_each_level([&](PriceTicks price, const Level& l) {
      if (out.size() >= depth) return false;
      out.push_back(LevelView{price, l.volume, l.count});
      return true;
    });
  };
  take(b.bids, v.bids);
  take(b.asks, v.asks);
  return v;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.orders_resting = order_index_.size();
  s.accounts = accounts_.size();
  s.instruments = instruments_.size();
  s.trades_today = trades_.size();
  return s;
}

}  // namespace qx::core
