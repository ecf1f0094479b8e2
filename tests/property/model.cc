// The naive reference model (see model.h): every rule below is read off docs/semantics.md, in the
// order the document states it, with the simplest data structure that can express it.
#include "tests/property/model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <variant>

namespace qx::property {
namespace {

__extension__ typedef __int128 Wide;  // __extension__ keeps -Wpedantic quiet about __int128

using core::Direction;
using core::Effect;
using core::EffectKind;
using core::Offset;
using core::PriceType;
using core::RejectReason;
using core::TimeCondition;

constexpr Wide kBillion = 1'000'000'000;
// The money bounds of docs/semantics.md ("Bounds").
constexpr std::int64_t kMoneyBound = 1'000'000'000'000'000'000;  // running totals
constexpr std::int64_t kSideBound = 1'000'000'000'000'000;       // a side at the price ceiling
constexpr std::size_t kInstrumentsPerAccount = 128;

// The model only meets small numbers; anything that does not fit is a bug in the model or in the
// generator, never a business outcome.
std::int64_t to_i64(Wide v) {
  if (v > std::numeric_limits<std::int64_t>::max() ||
      v < std::numeric_limits<std::int64_t>::min()) {
    std::fprintf(stderr, "model: value out of 64-bit range\n");
    std::abort();
  }
  return static_cast<std::int64_t>(v);
}

Wide ceil_div(Wide a, Wide d) {
  return (a + d - 1) / d;
}

// floor(total * part / whole), or everything when the part is the whole.
std::int64_t share(std::int64_t total, std::int64_t part, std::int64_t whole) {
  if (part == whole) return total;
  return to_i64(Wide{total} * part / whole);
}

Direction opposite(Direction d) {
  return d == Direction::kBuy ? Direction::kSell : Direction::kBuy;
}

// True when a `side` order at `price` is better than one at `other` (higher bid, lower ask).
bool better(Direction side, std::int64_t price, std::int64_t other) {
  return side == Direction::kBuy ? price > other : price < other;
}

// True when an incoming order of direction `d` at `price` can trade with a resting `other`.
bool crosses(Direction d, std::int64_t price, std::int64_t other) {
  return d == Direction::kBuy ? price >= other : price <= other;
}

bool is_ioc(const core::NewOrder& e) {
  return e.time_condition == TimeCondition::kIoc || e.price_type == PriceType::kMarket;
}

Effect admin_reject(RejectReason r) {
  Effect f;
  f.kind = EffectKind::kAdminRejected;
  f.reason = static_cast<std::uint16_t>(r);
  return f;
}

Effect order_reject(RejectReason r, core::AccountId account) {
  Effect f;
  f.kind = EffectKind::kOrderRejected;
  f.reason = static_cast<std::uint16_t>(r);
  f.account = account;
  return f;
}

// An effect of `kind` carrying the request's account, instrument, client id, direction, offset
// and volume.
Effect echo(EffectKind kind, const core::NewOrder& e) {
  Effect f;
  f.kind = kind;
  f.account = e.account;
  f.instrument = e.instrument;
  f.client_order_id = e.client_order_id;
  f.direction = e.direction;
  f.offset = e.offset;
  f.volume = e.volume;
  return f;
}

Effect simple(EffectKind kind) {
  Effect f;
  f.kind = kind;
  return f;
}

bool name_ok(const std::string& s) {
  return !s.empty() && s.size() <= 31;
}

}  // namespace

bool ModelSide::empty() const {
  return today == 0 && his == 0 && frozen_today == 0 && frozen_his == 0 && open_cost == 0 &&
         cost_today == 0 && cost_his == 0 && margin == 0;
}

void Model::apply(std::int64_t time_ns, const core::EventBody& body, std::vector<Effect>& out) {
  now_ = time_ns;
  // Each account is checked for forced liquidation at most once per round.
  check_queue_.clear();
  queued_.assign(accounts_.size(), false);
  advance_sessions(time_ns, out);
  std::visit([&](const auto& e) { on(e, out); }, body);
  run_checks(out);
  fire_stops(out);
}

// ---- money ----------------------------------------------------------------------------------

std::int64_t Model::notional(const Instrument& ins, std::int64_t price, std::int64_t lots) const {
  return to_i64(Wide{price} * lots * ins.tick_value);
}

std::int64_t Model::margin_of(const Instrument& ins, Direction side, std::int64_t price,
                              std::int64_t lots) const {
  std::int64_t ratio =
      side == Direction::kBuy ? ins.params.margin_long_ppb : ins.params.margin_short_ppb;
  return to_i64(ceil_div(Wide{notional(ins, price, lots)} * ratio, kBillion));
}

std::int64_t Model::fee_of(const Instrument& ins, Offset kind, std::int64_t price,
                           std::int64_t lots) const {
  const core::FeeSchedule& f = ins.params.fees;
  std::int64_t per_lot = f.open_per_lot.value;
  std::int64_t ppb = f.open_ppb;
  if (kind == Offset::kClose) {
    per_lot = f.close_per_lot.value;
    ppb = f.close_ppb;
  } else if (kind == Offset::kCloseToday) {
    per_lot = f.close_today_per_lot.value;
    ppb = f.close_today_ppb;
  }
  Wide by_notional = ceil_div(Wide{notional(ins, price, lots)} * ppb, kBillion);
  return to_i64(Wide{per_lot} * lots + by_notional);
}

std::int64_t Model::mark_price(const Instrument& ins) const {
  return ins.last_price.has_value() ? *ins.last_price : ins.pre_settlement;
}

std::optional<std::pair<std::int64_t, std::int64_t>> Model::band(const Instrument& ins) const {
  if (!ins.params.price_band_ppb.has_value()) return std::nullopt;
  Wide b = *ins.params.price_band_ppb;
  Wide low = ceil_div(Wide{ins.pre_settlement} * (kBillion - b), kBillion);
  Wide high = Wide{ins.pre_settlement} * (kBillion + b) / kBillion;
  return std::make_pair(to_i64(low), to_i64(high));
}

bool Model::in_band(const Instrument& ins, std::int64_t price) const {
  std::optional<std::pair<std::int64_t, std::int64_t>> b = band(ins);
  return !b || (price >= b->first && price <= b->second);
}

ModelAccountView Model::account(std::uint32_t id) const {
  const Account& a = accounts_.at(id);
  ModelAccountView v;
  v.pre_balance = a.pre_balance;
  v.deposit = a.deposit;
  v.withdraw = a.withdraw;
  v.close_profit = a.close_profit;
  v.commission = a.commission;
  for (const auto& [ins_id, pos] : a.positions) {
    const Instrument& ins = instruments_[ins_id];
    std::int64_t mark = mark_price(ins);
    const ModelSide& l = pos.long_side;
    const ModelSide& s = pos.short_side;
    v.position_profit += notional(ins, mark, l.lots()) - (l.cost_today + l.cost_his);
    v.position_profit += (s.cost_today + s.cost_his) - notional(ins, mark, s.lots());
    v.margin += l.margin + s.margin;
  }
  for (const ModelOrder& o : resting_) {
    if (o.account != id) continue;
    v.frozen_margin += o.frozen_margin;
    v.frozen_commission += o.frozen_commission;
  }
  v.balance =
      v.pre_balance + v.deposit - v.withdraw + v.close_profit - v.commission + v.position_profit;
  v.available = v.balance - v.margin - v.frozen_margin - v.frozen_commission;
  return v;
}

std::int64_t Model::available_without(std::uint32_t account_id, std::uint64_t skip_order) const {
  ModelAccountView v = account(account_id);
  for (const ModelOrder& o : resting_) {
    if (o.id != skip_order || o.account != account_id) continue;
    v.available += o.frozen_margin + o.frozen_commission;
  }
  return v.available;
}

const std::map<std::uint32_t, ModelPosition>& Model::positions(std::uint32_t account_id) const {
  return accounts_.at(account_id).positions;
}

// ---- the book -------------------------------------------------------------------------------

std::optional<std::size_t> Model::best(std::uint32_t instrument, Direction side) const {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < resting_.size(); ++i) {
    const ModelOrder& o = resting_[i];
    if (o.instrument != instrument || o.direction != side) continue;
    if (!found) {
      found = i;
      continue;
    }
    const ModelOrder& b = resting_[*found];
    if (better(side, o.price, b.price) || (o.price == b.price && o.arrival < b.arrival)) found = i;
  }
  return found;
}

std::vector<std::size_t> Model::priority_order(std::uint32_t instrument, Direction side) const {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < resting_.size(); ++i) {
    if (resting_[i].instrument == instrument && resting_[i].direction == side) idx.push_back(i);
  }
  std::sort(idx.begin(), idx.end(), [&](std::size_t x, std::size_t y) {
    const ModelOrder& a = resting_[x];
    const ModelOrder& b = resting_[y];
    if (a.price != b.price) return better(side, a.price, b.price);
    return a.arrival < b.arrival;
  });
  return idx;
}

std::vector<ModelLevel> Model::levels(std::uint32_t instrument, Direction side) const {
  std::vector<ModelLevel> out;
  for (std::size_t i : priority_order(instrument, side)) {
    const ModelOrder& o = resting_[i];
    if (out.empty() || out.back().price != o.price) out.push_back(ModelLevel{o.price, 0, 0});
    out.back().volume += o.volume_left;
    out.back().orders += 1;
  }
  return out;
}

std::vector<ModelOrder> Model::orders(std::uint32_t account_id) const {
  std::vector<ModelOrder> out;
  for (const ModelOrder& o : resting_) {
    if (o.account == account_id) out.push_back(o);
  }
  std::sort(out.begin(), out.end(),
            [](const ModelOrder& a, const ModelOrder& b) { return a.id < b.id; });
  return out;
}

std::vector<ModelOrder> Model::live_orders() const {
  std::vector<ModelOrder> out = resting_;
  std::sort(out.begin(), out.end(),
            [](const ModelOrder& x, const ModelOrder& y) { return x.id < y.id; });
  return out;
}

std::optional<std::size_t> Model::find_live(std::uint32_t account_id, const core::OrderRef& ref,
                                            RejectReason& why) const {
  why = RejectReason::kUnknownOrder;
  for (std::size_t i = 0; i < resting_.size(); ++i) {
    const ModelOrder& o = resting_[i];
    if (ref.order_id.has_value()) {
      if (o.id != core::raw(*ref.order_id)) continue;
      if (o.account != account_id) {
        why = RejectReason::kOrderNotOwned;
        return std::nullopt;
      }
      return i;
    }
    std::uint64_t client = core::raw(ref.client_order_id);
    if (client != 0 && o.account == account_id && o.client_id == client) return i;
  }
  return std::nullopt;
}

// Gives back what a live order holds: its position lots (its margin and commission are summed
// from the live orders, so they vanish with the order or with the zeroing below).
void Model::release(const ModelOrder& o) {
  if (o.offset == Offset::kOpen) return;
  Account& a = accounts_[o.account];
  auto it = a.positions.find(o.instrument);
  if (it == a.positions.end()) {
    std::fprintf(stderr, "model: close order without a position\n");
    std::abort();
  }
  ModelSide& side = o.direction == Direction::kBuy ? it->second.short_side : it->second.long_side;
  side.frozen_today -= o.frozen_today;
  side.frozen_his -= o.frozen_his;
}

void Model::remove_resting(std::size_t index, core::CancelReason why, std::vector<Effect>& out) {
  ModelOrder o = resting_[index];
  Effect f;
  f.kind = EffectKind::kOrderCancelled;
  f.reason = static_cast<std::uint16_t>(why);
  f.order = core::OrderId(o.id);
  f.account = core::AccountId(o.account);
  f.volume_left = core::Lots(o.volume_left);
  out.push_back(f);
  release(o);
  resting_.erase(resting_.begin() + static_cast<std::ptrdiff_t>(index));
}

// ---- admin events ---------------------------------------------------------------------------

void Model::on(const core::CreateInstrument& e, std::vector<Effect>& out) {
  const core::InstrumentParams& p = e.params;
  for (const Instrument& ins : instruments_) {
    if (ins.code == e.code) {
      out.push_back(admin_reject(RejectReason::kDuplicateName));
      return;
    }
  }
  if (limits_.instruments != 0 && instruments_.size() >= limits_.instruments) {
    out.push_back(admin_reject(RejectReason::kInstrumentLimit));
    return;
  }
  // tick x multiplier is in units of 1e-16; a tick value must be a whole number of minor units
  // (1e16 / minor_per_unit_ of those). Dividing, not multiplying, keeps within 128 bits.
  Wide scaled = Wide{p.price_tick_e8} * p.multiplier_e8;
  Wide unit = Wide{100'000'000} * 100'000'000 / minor_per_unit_;
  // A last trading day already settled (before today's) could never trade.
  const bool expired = p.last_trading_day != 0 && p.last_trading_day < trading_day_;
  if (!name_ok(e.code) || p.price_tick_e8 <= 0 || p.multiplier_e8 <= 0 || scaled % unit != 0 ||
      scaled / unit > std::numeric_limits<std::int64_t>::max() || e.pre_settlement.value <= 0 ||
      expired) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  const Wide tick_value = scaled / unit;
  const Wide limit = p.position_limit.value;
  const Wide price_max = kSideBound / (limit * tick_value);
  const core::FeeSchedule& fees = p.fees;
  for (std::int64_t per_lot :
       {fees.open_per_lot.value, fees.close_per_lot.value, fees.close_today_per_lot.value}) {
    if (Wide{per_lot} * limit > kSideBound) {
      out.push_back(admin_reject(RejectReason::kNumericOverflow));
      return;
    }
  }
  if (price_max < e.pre_settlement.value) {
    out.push_back(admin_reject(RejectReason::kNumericOverflow));
    return;
  }
  Instrument ins;
  ins.code = e.code;
  ins.params = p;
  ins.price_max = to_i64(price_max);
  ins.tick_value = to_i64(tick_value);
  ins.status = core::InstrumentStatus::kTrading;
  ins.pre_settlement = e.pre_settlement.value;
  Effect f = simple(EffectKind::kInstrumentCreated);
  f.instrument = core::InstrumentId(static_cast<std::uint32_t>(instruments_.size()));
  instruments_.push_back(ins);
  out.push_back(f);
}

void Model::on(const core::UpdateInstrument&, std::vector<Effect>& out) {
  // Never generated; see model.h.
  out.push_back(admin_reject(RejectReason::kInvalidParameter));
}

void Model::on(const core::SetInstrumentStatus& e, std::vector<Effect>& out) {
  std::uint32_t id = core::raw(e.instrument);
  if (id >= instruments_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownInstrument));
    return;
  }
  Instrument& ins = instruments_[id];
  if (ins.status == core::InstrumentStatus::kDelisted) {
    out.push_back(admin_reject(RejectReason::kInstrumentDelisted));
    return;
  }
  ins.status = e.status;
  Effect f = simple(EffectKind::kInstrumentStatusChanged);
  f.instrument = e.instrument;
  f.reason = static_cast<std::uint16_t>(e.status);
  out.push_back(f);
  // A call auction that ended during the halt uncrosses when trading resumes.
  if (e.status == core::InstrumentStatus::kTrading) uncross(id, out);
  if (e.status != core::InstrumentStatus::kDelisted) return;
  ins.next_change.reset();  // delisting ends the schedule
  for (Direction side : {Direction::kBuy, Direction::kSell}) {
    while (auto i = best(id, side))
      remove_resting(*i, core::CancelReason::kInstrumentDelisted, out);
  }
  cancel_stops([id](const ModelStop& st) { return core::raw(st.order.instrument) == id; },
               core::CancelReason::kInstrumentDelisted, out);
}

void Model::on(const core::CreateUser& e, std::vector<Effect>& out) {
  if (!name_ok(e.name) || std::find(users_.begin(), users_.end(), e.name) != users_.end()) {
    out.push_back(admin_reject(RejectReason::kDuplicateName));
    return;
  }
  Effect f = simple(EffectKind::kUserCreated);
  f.user = core::UserId(static_cast<std::uint32_t>(users_.size()));
  users_.push_back(e.name);
  out.push_back(f);
}

void Model::on(const core::CreateAccount& e, std::vector<Effect>& out) {
  if (core::raw(e.user) >= users_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownUser));
    return;
  }
  for (const Account& a : accounts_) {
    if (a.name == e.name) {
      out.push_back(admin_reject(RejectReason::kDuplicateName));
      return;
    }
  }
  if (limits_.accounts != 0 && accounts_.size() >= limits_.accounts) {
    out.push_back(admin_reject(RejectReason::kAccountLimit));
    return;
  }
  Effect f = simple(EffectKind::kAccountCreated);
  f.account = core::AccountId(static_cast<std::uint32_t>(accounts_.size()));
  f.user = e.user;
  Account a;
  a.name = e.name;
  a.user = core::raw(e.user);
  accounts_.push_back(a);
  out.push_back(f);
}

void Model::on(const core::Deposit& e, std::vector<Effect>& out) {
  std::uint32_t id = core::raw(e.account);
  if (id >= accounts_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownAccount));
    return;
  }
  if (e.amount.value <= 0) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  if (Wide{accounts_[id].deposit} + e.amount.value > kMoneyBound) {
    out.push_back(admin_reject(RejectReason::kNumericOverflow));
    return;
  }
  accounts_[id].deposit += e.amount.value;
  Effect f = simple(EffectKind::kDeposited);
  f.account = e.account;
  f.amount = e.amount;
  out.push_back(f);
}

void Model::on(const core::Withdraw& e, std::vector<Effect>& out) {
  std::uint32_t id = core::raw(e.account);
  if (id >= accounts_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownAccount));
    return;
  }
  if (e.amount.value <= 0) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  if (e.amount.value > account(id).available) {
    out.push_back(admin_reject(RejectReason::kWithdrawExceedsAvailable));
    return;
  }
  if (Wide{accounts_[id].withdraw} + e.amount.value > kMoneyBound) {
    out.push_back(admin_reject(RejectReason::kNumericOverflow));
    return;
  }
  accounts_[id].withdraw += e.amount.value;
  Effect f = simple(EffectKind::kWithdrawn);
  f.account = e.account;
  f.amount = e.amount;
  out.push_back(f);
}

void Model::on(const core::SetAccountRisk& e, std::vector<Effect>& out) {
  std::uint32_t id = core::raw(e.account);
  if (id >= accounts_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownAccount));
    return;
  }
  const auto mode = static_cast<int>(e.stp.mode);
  const auto scope = static_cast<int>(e.stp.scope);
  if (mode < 1 || mode > 3 || scope < 1 || scope > 2) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  accounts_[id].max_open_orders = e.max_open_orders;
  accounts_[id].enabled = e.enabled;
  accounts_[id].stp = e.stp;
  Effect f = simple(EffectKind::kAccountRiskSet);
  f.account = e.account;
  out.push_back(f);
}

// The ratio in (0, 100e9] ppb and a fund that is an account; then every account is checked.
void Model::on(const core::SetRiskParams& e, std::vector<Effect>& out) {
  if (e.liquidation_ratio_ppb <= 0 || e.liquidation_ratio_ppb > 100 * kBillion) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  if (e.insurance_account && core::raw(*e.insurance_account) >= accounts_.size()) {
    out.push_back(admin_reject(RejectReason::kUnknownAccount));
    return;
  }
  ratio_ = e.liquidation_ratio_ppb;
  fund_.reset();
  if (e.insurance_account) fund_ = core::raw(*e.insurance_account);
  out.push_back(simple(EffectKind::kRiskParamsSet));
  for (std::uint32_t id = 0; id < accounts_.size(); ++id) queue_check(id);
}

// Settlement step 2 for one account: mark every side to the settlement price, roll today into
// history, and fold the day into the new pre_balance.
void Model::settle_account(std::uint32_t id, const std::vector<std::int64_t>& price,
                           const std::vector<bool>& expiring, std::vector<Effect>& out) {
  Account& a = accounts_[id];
  std::int64_t marks = 0;
  for (auto& [ins_id, pos] : a.positions) {
    const Instrument& ins = instruments_[ins_id];
    for (bool is_long : {true, false}) {
      ModelSide& s = is_long ? pos.long_side : pos.short_side;
      std::int64_t value = notional(ins, price[ins_id], s.lots());
      std::int64_t basis = s.cost_today + s.cost_his;
      marks += is_long ? value - basis : basis - value;
      s.his += s.today;
      s.today = 0;
      s.frozen_his += s.frozen_today;
      s.frozen_today = 0;
      s.cost_his = value;
      s.cost_today = 0;
      s.margin =
          margin_of(ins, is_long ? Direction::kBuy : Direction::kSell, price[ins_id], s.lots());
      // Expiry: the side is delivered in cash at the final settlement price (its mark is above)
      // and closed.
      if (expiring[ins_id] && s.his > 0) {
        Effect d = simple(EffectKind::kPositionDelivered);
        d.account = core::AccountId(id);
        d.instrument = core::InstrumentId(ins_id);
        d.direction = is_long ? Direction::kBuy : Direction::kSell;
        d.volume = core::Lots(s.his);
        d.price = core::PriceTicks(price[ins_id]);
        d.amount = core::Money(value);
        out.push_back(d);
        s = ModelSide{};
      }
    }
  }
  std::erase_if(a.positions, [](const auto& kv) {
    return kv.second.long_side.empty() && kv.second.short_side.empty();
  });
  a.pre_balance = a.pre_balance + a.deposit - a.withdraw + a.close_profit - a.commission + marks;
  a.deposit = a.withdraw = a.close_profit = a.commission = 0;
  Effect f = simple(EffectKind::kAccountSettled);
  f.account = core::AccountId(id);
  f.amount = core::Money(a.pre_balance);
  out.push_back(f);
}

void Model::on(const core::Settle& e, std::vector<Effect>& out) {
  std::vector<std::int64_t> price(instruments_.size());
  for (std::size_t i = 0; i < instruments_.size(); ++i) price[i] = mark_price(instruments_[i]);
  for (const core::SettlementPrice& sp : e.prices) {
    if (core::raw(sp.instrument) >= instruments_.size()) {
      out.push_back(admin_reject(RejectReason::kUnknownInstrument));
      return;
    }
    if (sp.price.value <= 0 || sp.price.value > instruments_[core::raw(sp.instrument)].price_max) {
      out.push_back(admin_reject(RejectReason::kInvalidPrice));
      return;
    }
    price[core::raw(sp.instrument)] = sp.price.value;
  }
  // 0. No account's new pre_balance may pass the money bound; otherwise nothing settles.
  for (const Account& a : accounts_) {
    Wide next = Wide{a.pre_balance} + a.deposit - a.withdraw + a.close_profit - a.commission;
    for (const auto& [ins_id, pos] : a.positions) {
      const Instrument& ins = instruments_[ins_id];
      next += Wide{notional(ins, price[ins_id], pos.long_side.lots())} - pos.long_side.cost_today -
              pos.long_side.cost_his;
      next += Wide{pos.short_side.cost_today} + pos.short_side.cost_his -
              notional(ins, price[ins_id], pos.short_side.lots());
    }
    if (next > kMoneyBound || next < -kMoneyBound) {
      out.push_back(admin_reject(RejectReason::kNumericOverflow));
      return;
    }
  }
  // 1. Day orders and close-today orders expire, instrument by instrument, bids then asks, in
  // priority.
  for (std::uint32_t i = 0; i < instruments_.size(); ++i) {
    for (Direction side : {Direction::kBuy, Direction::kSell}) {
      for (;;) {
        std::optional<std::size_t> victim;
        for (std::size_t k : priority_order(i, side)) {
          if (resting_[k].time_condition == TimeCondition::kGfd ||
              resting_[k].offset == Offset::kCloseToday) {
            victim = k;
            break;
          }
        }
        if (!victim) break;
        remove_resting(*victim, core::CancelReason::kExpired, out);
      }
    }
  }
  // Then day stops (GFD or close-today), in id order.
  cancel_stops(
      [](const ModelStop& st) {
        return st.order.time_condition == TimeCondition::kGfd ||
               st.order.offset == Offset::kCloseToday;
      },
      core::CancelReason::kExpired, out);
  // 1b. Instruments whose last trading day this is (and not delisted): every other resting
  // order is cancelled, bids then asks, in priority.
  std::vector<bool> expiring(instruments_.size());
  for (std::uint32_t i = 0; i < instruments_.size(); ++i) {
    const Instrument& ins = instruments_[i];
    expiring[i] = ins.params.last_trading_day == trading_day_ &&
                  ins.status != core::InstrumentStatus::kDelisted;
    if (!expiring[i]) continue;
    for (Direction side : {Direction::kBuy, Direction::kSell}) {
      while (auto k = best(i, side)) {
        remove_resting(*k, core::CancelReason::kInstrumentExpired, out);
      }
    }
    cancel_stops([i](const ModelStop& st) { return core::raw(st.order.instrument) == i; },
                 core::CancelReason::kInstrumentExpired, out);
  }
  // 2. Accounts, in id order.
  for (std::uint32_t id = 0; id < accounts_.size(); ++id) {
    settle_account(id, price, expiring, out);
  }
  // 3. Close orders that stay (GTC) now hold history lots.
  for (ModelOrder& o : resting_) {
    o.frozen_his += o.frozen_today;
    o.frozen_today = 0;
  }
  // 4. Instruments take the settlement price as the new reference; resting orders outside the
  // new band are cancelled, bids then asks, in priority.
  for (std::uint32_t i = 0; i < instruments_.size(); ++i) {
    if (expiring[i]) {  // expired instruments are delisted
      instruments_[i].status = core::InstrumentStatus::kDelisted;
      instruments_[i].next_change.reset();  // delisting ends the schedule
      Effect f = simple(EffectKind::kInstrumentStatusChanged);
      f.instrument = core::InstrumentId(i);
      f.reason = static_cast<std::uint16_t>(core::InstrumentStatus::kDelisted);
      out.push_back(f);
    }
    instruments_[i].pre_settlement = price[i];
    instruments_[i].last_price.reset();
    for (Direction side : {Direction::kBuy, Direction::kSell}) {
      std::vector<std::uint64_t> doomed;
      for (std::size_t k : priority_order(i, side)) {
        if (!in_band(instruments_[i], resting_[k].price)) doomed.push_back(resting_[k].id);
      }
      for (std::uint64_t id : doomed) {
        for (std::size_t k = 0; k < resting_.size(); ++k) {
          if (resting_[k].id != id) continue;
          remove_resting(k, core::CancelReason::kOutsideBand, out);
          break;
        }
      }
    }
  }
  trading_day_ += 1;
  Effect f = simple(EffectKind::kSettlementDone);
  f.amount = core::Money(trading_day_);
  out.push_back(f);
  // 5. Every account is checked for forced liquidation.
  for (std::uint32_t id = 0; id < accounts_.size(); ++id) queue_check(id);
}

// ---- orders ---------------------------------------------------------------------------------

// Steps 1-6 of the NewOrder checks: the request itself, the account and instrument states.
std::optional<RejectReason> Model::check_request(const core::NewOrder& e) const {
  auto in = [](auto v, int lo, int hi) {
    int x = static_cast<int>(core::raw(v));
    return x >= lo && x <= hi;
  };
  if (!in(e.direction, 1, 2) || !in(e.offset, 1, 4) || !in(e.price_type, 1, 3) ||
      !in(e.time_condition, 1, 3) || !in(e.volume_condition, 1, 2) ||
      (e.stp && (!in(e.stp->mode, 1, 3) || !in(e.stp->scope, 1, 2))) ||
      (e.trigger && (!in(e.trigger->kind, 1, 2) || !in(e.trigger->source, 1, 2)))) {
    return RejectReason::kInvalidParameter;
  }
  std::uint32_t acc_id = core::raw(e.account);
  std::uint32_t ins_id = core::raw(e.instrument);
  if (acc_id >= accounts_.size()) return RejectReason::kUnknownAccount;
  if (ins_id >= instruments_.size()) return RejectReason::kUnknownInstrument;
  const Account& a = accounts_[acc_id];
  const Instrument& ins = instruments_[ins_id];
  if (!a.enabled) return RejectReason::kAccountDisabled;
  if (ins.status == core::InstrumentStatus::kHalted) return RejectReason::kInstrumentHalted;
  if (ins.status == core::InstrumentStatus::kDelisted) return RejectReason::kInstrumentDelisted;
  if (auto why = phase_refuses(ins, e)) return why;
  if (e.volume.value <= 0) return RejectReason::kInvalidVolume;
  if (e.volume > ins.params.max_order_volume) return RejectReason::kOrderVolumeLimitExceeded;
  if (e.volume_condition == core::VolumeCondition::kAll && !is_ioc(e)) {
    return RejectReason::kInvalidCombination;
  }
  if (e.post_only && (e.price_type != PriceType::kLimit || is_ioc(e))) {
    return RejectReason::kInvalidCombination;
  }
  std::uint64_t client = core::raw(e.client_order_id);
  std::uint32_t open_orders = 0;
  for (const ModelOrder& r : resting_) {
    if (r.account != acc_id) continue;
    if (client != 0 && r.client_id == client) return RejectReason::kDuplicateClientOrderId;
    open_orders += 1;
  }
  for (const ModelStop& st : stops_) {
    if (core::raw(st.order.account) != acc_id) continue;
    if (client != 0 && core::raw(st.order.client_order_id) == client) {
      return RejectReason::kDuplicateClientOrderId;
    }
    open_orders += 1;
  }
  // The account's own limit, else the exchange's default; then the exchange's total.
  const std::uint32_t per_account =
      a.max_open_orders != 0 ? a.max_open_orders : limits_.orders_per_account;
  if (per_account != 0 && open_orders >= per_account) return RejectReason::kTooManyOpenOrders;
  if (limits_.orders != 0 && resting_.size() + stops_.size() >= limits_.orders) {
    return RejectReason::kOrderLimit;
  }
  return std::nullopt;
}

// Step 7 up to the price checks: LIMIT keeps its price, BEST takes the best opposite price,
// MARKET the protective price (the level where the cumulative volume covers the order, or the
// last level) capped at the band limit.
std::optional<RejectReason> Model::order_price(const core::NewOrder& e, std::int64_t& price) const {
  price = e.price.value;
  if (e.price_type == PriceType::kLimit) return std::nullopt;
  std::vector<ModelLevel> book = levels(core::raw(e.instrument), opposite(e.direction));
  if (book.empty()) return RejectReason::kNoLiquidity;
  price = book.front().price;
  if (e.price_type == PriceType::kBest) return std::nullopt;
  std::int64_t cumulative = 0;
  for (const ModelLevel& l : book) {
    price = l.price;
    cumulative += l.volume;
    if (cumulative >= e.volume.value) break;
  }
  const Instrument& ins = instruments_[core::raw(e.instrument)];
  if (std::optional<std::pair<std::int64_t, std::int64_t>> b = band(ins)) {
    price = e.direction == Direction::kBuy ? std::min(price, b->second) : std::max(price, b->first);
  }
  return std::nullopt;
}

std::optional<RejectReason> Model::check_new(const core::NewOrder& e, ModelOrder& o) const {
  if (std::optional<RejectReason> r = check_request(e)) return r;
  std::int64_t price = 0;
  if (std::optional<RejectReason> r = order_price(e, price)) return r;
  const std::uint32_t acc_id = core::raw(e.account);
  const std::uint32_t ins_id = core::raw(e.instrument);
  const Instrument& ins = instruments_[ins_id];
  if (price <= 0 || price > ins.price_max) return RejectReason::kInvalidPrice;
  if (!in_band(ins, price)) return RejectReason::kPriceOutsideBand;
  const Direction opp = opposite(e.direction);
  std::optional<std::size_t> top = best(ins_id, opp);
  if (e.post_only && top && crosses(e.direction, price, resting_[*top].price)) {
    return RejectReason::kPostOnlyWouldCross;
  }
  // An order that may rest, at a price whose level on its side is full.
  if (!is_ioc(e) && limits_.orders_per_level != 0 &&
      level_count(ins_id, e.direction, price) >= limits_.orders_per_level) {
    return RejectReason::kPriceLevelFull;
  }
  const core::SelfTradePrevention stp = e.stp.value_or(accounts_[acc_id].stp);
  if (e.volume_condition == core::VolumeCondition::kAll) {
    // Own resting orders: CANCEL_OLDEST would cancel them (they add nothing); otherwise the
    // order would stop at the first.
    std::int64_t reachable = 0;
    for (std::size_t k : priority_order(ins_id, opp)) {
      const ModelOrder& r = resting_[k];
      if (!crosses(e.direction, price, r.price)) break;
      if (same_owner(stp, acc_id, r.account)) {
        if (stp.mode == core::StpMode::kCancelOldest) continue;
        break;
      }
      reachable += r.volume_left;
    }
    if (reachable < e.volume.value) return RejectReason::kFokUnfillable;
  }
  o = ModelOrder{};
  o.client_id = core::raw(e.client_order_id);
  o.account = acc_id;
  o.instrument = ins_id;
  o.direction = e.direction;
  o.offset = e.offset;
  o.price_type = e.price_type;
  o.time_condition = is_ioc(e) ? TimeCondition::kIoc : e.time_condition;
  o.post_only = e.post_only;
  o.stp = stp;
  o.price = price;
  o.volume_orig = e.volume.value;
  o.volume_left = e.volume.value;
  return reserve(o);
}

// Computes what `o` (at its price and remaining volume) must hold; writes it into `o` on
// success. The caller has already given back the position lots `o` held; its frozen margin and
// commission still say what it held (zero for a new order) for the amend funds rule.
std::optional<RejectReason> Model::reserve(ModelOrder& o) const {
  const Account& a = accounts_[o.account];
  const Instrument& ins = instruments_[o.instrument];
  auto pos = a.positions.find(o.instrument);
  std::int64_t v = o.volume_left;
  if (o.offset == Offset::kOpen) {
    // Instruments the account holds a position (kept until settlement) or an OPEN order in.
    std::vector<std::uint32_t> in_use;
    for (const auto& kv : a.positions) in_use.push_back(kv.first);
    std::vector<std::uint32_t> with_open;
    std::int64_t pending = 0;  // the account's other resting OPEN lots on this side
    for (const ModelOrder& r : resting_) {
      if (r.account != o.account || r.offset != Offset::kOpen) continue;
      if (std::find(with_open.begin(), with_open.end(), r.instrument) == with_open.end()) {
        with_open.push_back(r.instrument);
      }
      if (r.instrument == o.instrument && r.direction == o.direction && r.id != o.id) {
        pending += r.volume_left;
      }
    }
    const bool known = pos != a.positions.end() || std::find(with_open.begin(), with_open.end(),
                                                             o.instrument) != with_open.end();
    if (!known && in_use.size() + with_open.size() >= kInstrumentsPerAccount) {
      return RejectReason::kTooManyInstruments;
    }
    std::int64_t held = 0;
    if (pos != a.positions.end()) {
      held =
          (o.direction == Direction::kBuy ? pos->second.long_side : pos->second.short_side).lots();
    }
    if (held + pending + v > ins.params.position_limit.value) {
      return RejectReason::kPositionLimitExceeded;
    }
    std::int64_t m = margin_of(ins, o.direction, o.price, v);
    std::int64_t c = fee_of(ins, Offset::kOpen, o.price, v);
    // An amend may always shrink (or keep) its reservation, even with negative available funds.
    const std::int64_t holds = o.frozen_margin + o.frozen_commission;
    if (m + c > available_without(o.account, o.id) && m + c > holds) {
      return RejectReason::kInsufficientFunds;
    }
    o.frozen_margin = m;
    o.frozen_commission = c;
    o.frozen_today = o.frozen_his = 0;
    return std::nullopt;
  }
  ModelSide none;
  const ModelSide* side = &none;
  if (pos != a.positions.end()) {
    side = o.direction == Direction::kBuy ? &pos->second.short_side : &pos->second.long_side;
  }
  std::int64_t free_his = side->his - side->frozen_his;
  std::int64_t free_today = side->today - side->frozen_today;
  std::int64_t his = 0;
  std::int64_t today = 0;
  if (o.offset == Offset::kCloseYesterday) {
    his = v;
  } else if (o.offset == Offset::kCloseToday) {
    today = v;
  } else {
    his = std::min(free_his, v);
    today = v - his;
  }
  if (his > free_his || today > free_today) return RejectReason::kInsufficientPosition;
  o.frozen_margin = 0;
  o.frozen_commission =
      fee_of(ins, Offset::kClose, o.price, his) + fee_of(ins, Offset::kCloseToday, o.price, today);
  o.frozen_his = his;
  o.frozen_today = today;
  return std::nullopt;
}

void Model::fill(ModelOrder& o, std::int64_t price, std::int64_t lots, std::int64_t& fee) {
  Account& a = accounts_[o.account];
  Instrument& ins = instruments_[o.instrument];
  ModelPosition& pos = a.positions[o.instrument];
  if (o.offset == Offset::kOpen) {
    ModelSide& s = o.direction == Direction::kBuy ? pos.long_side : pos.short_side;
    std::int64_t value = notional(ins, price, lots);
    s.today += lots;
    s.open_cost += value;
    s.cost_today += value;
    s.margin += margin_of(ins, o.direction, price, lots);
    std::int64_t m = share(o.frozen_margin, lots, o.volume_left);
    std::int64_t c = share(o.frozen_commission, lots, o.volume_left);
    o.frozen_margin -= m;
    o.frozen_commission -= c;
    fee = fee_of(ins, Offset::kOpen, price, lots);
  } else {
    bool long_side = o.direction == Direction::kSell;
    ModelSide& s = long_side ? pos.long_side : pos.short_side;
    std::int64_t his = std::min(lots, o.frozen_his);
    std::int64_t today = lots - his;
    std::int64_t total = s.lots();
    std::int64_t margin = share(s.margin, lots, total);
    std::int64_t open_cost = share(s.open_cost, lots, total);
    std::int64_t basis_his = share(s.cost_his, his, s.his);
    std::int64_t basis_today = share(s.cost_today, today, s.today);
    std::int64_t value_his = notional(ins, price, his);
    std::int64_t value_today = notional(ins, price, today);
    std::int64_t profit = long_side ? (value_his - basis_his) + (value_today - basis_today)
                                    : (basis_his - value_his) + (basis_today - value_today);
    s.his -= his;
    s.frozen_his -= his;
    s.today -= today;
    s.frozen_today -= today;
    s.margin -= margin;
    s.open_cost -= open_cost;
    s.cost_his -= basis_his;
    s.cost_today -= basis_today;
    o.frozen_his -= his;
    o.frozen_today -= today;
    std::int64_t c = share(o.frozen_commission, lots, o.volume_left);
    o.frozen_commission -= c;
    a.close_profit += profit;
    fee = fee_of(ins, Offset::kClose, price, his) + fee_of(ins, Offset::kCloseToday, price, today);
  }
  a.commission += fee;
  o.volume_left -= lots;
  ins.last_price = price;
}

// Whether an order of account `taker` with self-trade prevention `stp` meets an order of its
// own: the same account, or with scope USER an account of the same user.
bool Model::same_owner(core::SelfTradePrevention stp, std::uint32_t taker,
                       std::uint32_t maker) const {
  return taker == maker ||
         (stp.scope == core::StpScope::kUser && accounts_[taker].user == accounts_[maker].user);
}

// A fill may add up to 2e15 to close_profit or commission: an account within that of the money
// bound takes no more fills (MONEY_LIMIT).
bool Model::money_full(std::uint32_t account) const {
  const Account& x = accounts_[account];
  const std::int64_t room = kMoneyBound - 2 * kSideBound;
  return x.close_profit > room || x.close_profit < -room || x.commission > room;
}

// One fill of `lots` at `price` between taker t and maker m: both sides, then the TRADE effect.
void Model::record_trade(ModelOrder& t, ModelOrder& m, std::int64_t price, std::int64_t lots,
                         std::vector<Effect>& out) {
  std::int64_t taker_fee = 0;
  std::int64_t maker_fee = 0;
  fill(t, price, lots, taker_fee);
  fill(m, price, lots, maker_fee);
  Effect f;
  f.kind = EffectKind::kTrade;
  f.trade = core::TradeId(next_trade_id_++);
  f.order = core::OrderId(t.id);
  f.counter_order = core::OrderId(m.id);
  f.account = core::AccountId(t.account);
  f.counter_account = core::AccountId(m.account);
  f.instrument = core::InstrumentId(t.instrument);
  f.direction = t.direction;
  f.offset = t.offset;
  f.counter_offset = m.offset;
  f.price = core::PriceTicks(price);
  f.volume = core::Lots(lots);
  f.volume_left = core::Lots(t.volume_left);
  f.amount = core::Money(taker_fee);
  f.amount2 = core::Money(maker_fee);
  out.push_back(f);
  // Both accounts of a trade are checked after the event, the taker's first.
  queue_check(t.account);
  queue_check(m.account);
}

void Model::match(ModelOrder& o, std::vector<Effect>& out) {
  Direction opp = opposite(o.direction);
  while (o.volume_left > 0) {
    std::optional<std::size_t> top = best(o.instrument, opp);
    if (!top || !crosses(o.direction, o.price, resting_[*top].price)) return;
    // The incoming order's remainder is cancelled (it never rested, so nothing is in resting_).
    auto cancel_incoming = [&](core::CancelReason why) { cancel_unrested(o, why, out); };
    // Self-trade prevention, by the incoming order's mode: cancel it, the resting order, or both.
    if (same_owner(o.stp, o.account, resting_[*top].account)) {
      if (o.stp.mode != core::StpMode::kCancelNewest) {
        remove_resting(*top, core::CancelReason::kSelfTradePrevention, out);
      }
      if (o.stp.mode != core::StpMode::kCancelOldest) {
        return cancel_incoming(core::CancelReason::kSelfTradePrevention);
      }
      continue;
    }
    // MONEY_LIMIT: the incoming order first.
    if (money_full(o.account)) return cancel_incoming(core::CancelReason::kMoneyLimit);
    if (money_full(resting_[*top].account)) {
      remove_resting(*top, core::CancelReason::kMoneyLimit, out);
      continue;
    }
    ModelOrder& m = resting_[*top];
    record_trade(o, m, m.price, std::min(o.volume_left, m.volume_left), out);
    if (m.volume_left == 0) resting_.erase(resting_.begin() + static_cast<std::ptrdiff_t>(*top));
  }
}

void Model::on(const core::NewOrder& e, std::vector<Effect>& out) {
  if (e.trigger) return place_stop(e, out);
  enter(e, out);
}

void Model::enter(const core::NewOrder& e, std::vector<Effect>& out) {
  ModelOrder o;
  if (std::optional<RejectReason> r = check_new(e, o)) {
    out.push_back(order_reject(*r, e.account));
    return;
  }
  o.id = next_order_id_++;
  hold(o);
  Effect f = echo(EffectKind::kOrderAccepted, e);
  f.order = core::OrderId(o.id);
  f.price = core::PriceTicks(o.price);
  out.push_back(f);
  // A call auction collects orders without matching them.
  if (instruments_[o.instrument].phase != core::TradingPhase::kAuction) match(o, out);
  if (o.volume_left == 0) return;  // filled, or cancelled by self-trade prevention
  if (o.time_condition == TimeCondition::kIoc) {
    return cancel_unrested(o, core::CancelReason::kIocRemainder, out);
  }
  o.arrival = next_arrival_++;
  resting_.push_back(o);
}

void Model::cancel_unrested(ModelOrder& o, core::CancelReason why, std::vector<Effect>& out) {
  Effect c;
  c.kind = EffectKind::kOrderCancelled;
  c.reason = static_cast<std::uint16_t>(why);
  c.order = core::OrderId(o.id);
  c.account = core::AccountId(o.account);
  c.volume_left = core::Lots(o.volume_left);
  out.push_back(c);
  release(o);
  o.volume_left = 0;
}

// The checks of an amend before the reservation step, in the documented order.
std::optional<RejectReason> Model::check_amend(const core::AmendOrder& e,
                                               std::size_t& index) const {
  std::uint32_t acc_id = core::raw(e.account);
  if (acc_id >= accounts_.size()) return RejectReason::kUnknownAccount;
  RejectReason why{};
  std::optional<std::size_t> idx = find_live(acc_id, e.ref, why);
  if (!idx) return why;
  index = *idx;
  const ModelOrder& old = resting_[*idx];
  const Instrument& ins = instruments_[old.instrument];
  std::int64_t price = e.new_price.value;
  std::int64_t volume = e.new_volume_left.value;
  if (!accounts_[acc_id].enabled) return RejectReason::kAccountDisabled;
  if (ins.status == core::InstrumentStatus::kHalted) return RejectReason::kInstrumentHalted;
  if (ins.phase != core::TradingPhase::kContinuous && ins.phase != core::TradingPhase::kAuction) {
    return RejectReason::kMarketClosed;
  }
  if (volume <= 0) return RejectReason::kInvalidVolume;
  if (volume > ins.params.max_order_volume.value) return RejectReason::kOrderVolumeLimitExceeded;
  if (price <= 0 || price > ins.price_max) return RejectReason::kInvalidPrice;
  if (!in_band(ins, price)) return RejectReason::kPriceOutsideBand;
  if (price == old.price && volume == old.volume_left) return RejectReason::kAmendNoChange;
  std::optional<std::size_t> top = best(old.instrument, opposite(old.direction));
  if (old.post_only && top && crosses(old.direction, price, resting_[*top].price)) {
    return RejectReason::kPostOnlyWouldCross;
  }
  if (price != old.price && limits_.orders_per_level != 0 &&
      level_count(old.instrument, old.direction, price) >= limits_.orders_per_level) {
    return RejectReason::kPriceLevelFull;
  }
  return std::nullopt;
}

void Model::hold(const ModelOrder& o) {
  if (o.offset == Offset::kOpen) return;
  ModelPosition& pos = accounts_[o.account].positions[o.instrument];
  ModelSide& s = o.direction == Direction::kBuy ? pos.short_side : pos.long_side;
  s.frozen_his += o.frozen_his;
  s.frozen_today += o.frozen_today;
}

void Model::on(const core::AmendOrder& e, std::vector<Effect>& out) {
  std::size_t idx = 0;
  std::optional<RejectReason> bad = check_amend(e, idx);
  if (bad == RejectReason::kUnknownOrder) {
    // A pending stop is found like an order but cannot be amended.
    RejectReason why{};
    if (find_stop(core::raw(e.account), e.ref, why)) bad = RejectReason::kStopNotAmendable;
    if (why == RejectReason::kOrderNotOwned) bad = why;
  }
  if (bad) {
    out.push_back(order_reject(*bad, e.account));
    return;
  }
  // Release the reservation and try the new one; on failure the old one stays as it was
  // (docs/semantics.md: "the order is left exactly as it was").
  const ModelOrder old = resting_[idx];
  release(old);
  ModelOrder o = old;
  o.price = e.new_price.value;
  o.volume_left = e.new_volume_left.value;
  if (std::optional<RejectReason> why = reserve(o)) {
    hold(old);
    out.push_back(order_reject(*why, e.account));
    return;
  }
  hold(o);
  o.volume_orig = old.volume_orig + (o.volume_left - old.volume_left);
  Effect f;
  f.kind = EffectKind::kOrderAmended;
  f.order = core::OrderId(o.id);
  f.account = e.account;
  f.price = core::PriceTicks(o.price);
  f.volume = core::Lots(o.volume_orig);
  f.volume_left = core::Lots(o.volume_left);
  out.push_back(f);
  if (o.price == old.price && o.volume_left < old.volume_left) {
    resting_[idx] = o;  // keeps its place in the queue
    return;
  }
  // Anything else matches as an incoming order, then goes to the back of its (new) level.
  resting_.erase(resting_.begin() + static_cast<std::ptrdiff_t>(idx));
  if (ins_phase(o.instrument) != core::TradingPhase::kAuction) match(o, out);
  if (o.volume_left == 0) return;
  o.arrival = next_arrival_++;
  resting_.push_back(o);
}

void Model::on(const core::CancelOrder& e, std::vector<Effect>& out) {
  std::uint32_t acc_id = core::raw(e.account);
  if (acc_id >= accounts_.size()) {
    out.push_back(order_reject(RejectReason::kUnknownAccount, e.account));
    return;
  }
  RejectReason why{};
  std::optional<std::size_t> idx = find_live(acc_id, e.ref, why);
  if (!idx && why == RejectReason::kUnknownOrder) {
    if (std::optional<std::size_t> stop = find_stop(acc_id, e.ref, why)) {
      const std::uint64_t id = stops_[*stop].id;
      cancel_stops([id](const ModelStop& st) { return st.id == id; },
                   core::CancelReason::kUserRequest, out);
      return;
    }
  }
  if (!idx) {
    out.push_back(order_reject(why, e.account));
    return;
  }
  if (ins_phase(resting_[*idx].instrument) == core::TradingPhase::kPreOpen) {
    out.push_back(order_reject(RejectReason::kMarketClosed, e.account));
    return;
  }
  remove_resting(*idx, core::CancelReason::kUserRequest, out);
}

// ---- stops ----------------------------------------------------------------------------------

std::vector<ModelStop> Model::stops(std::uint32_t account) const {
  std::vector<ModelStop> out;
  for (const ModelStop& st : stops_) {
    if (core::raw(st.order.account) == account) out.push_back(st);
  }
  return out;
}

// Placement: the checks of any order, then LIMIT or MARKET only, a valid limit price (LIMIT) and
// trigger price, and a trigger the reference price has not reached already. Nothing is frozen.
void Model::place_stop(const core::NewOrder& e, std::vector<Effect>& out) {
  if (std::optional<RejectReason> r = check_request(e)) {
    out.push_back(order_reject(*r, e.account));
    return;
  }
  if (e.price_type == PriceType::kBest) {
    out.push_back(order_reject(RejectReason::kInvalidCombination, e.account));
    return;
  }
  const Instrument& ins = instruments_[core::raw(e.instrument)];
  auto valid = [&](std::int64_t p) { return p > 0 && p <= ins.price_max; };
  if ((e.price_type == PriceType::kLimit && !valid(e.price.value)) ||
      !valid(e.trigger->price.value)) {
    out.push_back(order_reject(RejectReason::kInvalidPrice, e.account));
    return;
  }
  ModelStop st{next_order_id_, e};
  if (reached(st)) {
    out.push_back(order_reject(RejectReason::kStopWouldTrigger, e.account));
    return;
  }
  next_order_id_ += 1;
  if (e.price_type != PriceType::kLimit) st.order.price = core::PriceTicks(0);
  stops_.push_back(st);
  Effect f = echo(EffectKind::kStopAccepted, e);
  f.order = core::OrderId(st.id);
  f.price = st.order.price;
  f.amount = core::Money(e.trigger->price.value);
  f.reason =
      static_cast<std::uint16_t>(core::raw(e.trigger->kind) | core::raw(e.trigger->source) << 8);
  out.push_back(f);
}

std::optional<std::int64_t> Model::reference(const Instrument& ins, core::TriggerSource s) const {
  if (s == core::TriggerSource::kLast) return ins.last_price;
  return mark_price(ins);
}

// A buy STOP or a sell TAKE_PROFIT fires when the reference is at or above the trigger; a sell
// STOP or a buy TAKE_PROFIT when it is at or below.
bool Model::reached(const ModelStop& s) const {
  const core::StopTrigger& t = *s.order.trigger;
  std::optional<std::int64_t> ref =
      reference(instruments_[core::raw(s.order.instrument)], t.source);
  if (!ref) return false;
  const bool up = (s.order.direction == Direction::kBuy) == (t.kind == core::TriggerKind::kStop);
  return up ? *ref >= t.price.value : *ref <= t.price.value;
}

void Model::fire_stops(std::vector<Effect>& out) {
  std::vector<std::pair<ModelStop, std::int64_t>> hit;  // with the reference that reached it
  for (;;) {
    for (std::size_t k = 0; k < stops_.size();) {
      // Outside continuous trading a stop waits, reached or not.
      if (!reached(stops_[k]) ||
          ins_phase(core::raw(stops_[k].order.instrument)) != core::TradingPhase::kContinuous) {
        ++k;
        continue;
      }
      const Instrument& ins = instruments_[core::raw(stops_[k].order.instrument)];
      hit.emplace_back(stops_[k], *reference(ins, stops_[k].order.trigger->source));
      stops_.erase(stops_.begin() + static_cast<std::ptrdiff_t>(k));
    }
    if (hit.empty()) return;
    auto oldest = std::min_element(hit.begin(), hit.end(), [](const auto& x, const auto& y) {
      return x.first.id < y.first.id;
    });
    const auto [st, at] = *oldest;
    hit.erase(oldest);
    Effect f;
    f.kind = EffectKind::kStopTriggered;
    f.order = core::OrderId(st.id);
    f.account = st.order.account;
    f.instrument = st.order.instrument;
    f.client_order_id = st.order.client_order_id;
    f.price = core::PriceTicks(at);
    f.amount = core::Money(st.order.trigger->price.value);
    out.push_back(f);
    core::NewOrder e = st.order;
    e.trigger.reset();
    enter(e, out);
    run_checks(out);  // the liquidations its trades cause: a round of their own
  }
}

template <class Pred>
void Model::cancel_stops(Pred doomed, core::CancelReason why, std::vector<Effect>& out) {
  for (std::size_t k = 0; k < stops_.size();) {
    if (!doomed(stops_[k])) {
      ++k;
      continue;
    }
    Effect f;
    f.kind = EffectKind::kOrderCancelled;
    f.reason = static_cast<std::uint16_t>(why);
    f.order = core::OrderId(stops_[k].id);
    f.account = stops_[k].order.account;
    f.volume_left = stops_[k].order.volume;
    out.push_back(f);
    stops_.erase(stops_.begin() + static_cast<std::ptrdiff_t>(k));
  }
}

// A stop by its id (any account: another's is ORDER_NOT_OWNED) or by client id in the account.
std::optional<std::size_t> Model::find_stop(std::uint32_t account, const core::OrderRef& ref,
                                            RejectReason& why) const {
  why = RejectReason::kUnknownOrder;
  for (std::size_t k = 0; k < stops_.size(); ++k) {
    const core::NewOrder& o = stops_[k].order;
    if (ref.order_id.has_value()) {
      if (stops_[k].id != core::raw(*ref.order_id)) continue;
      if (core::raw(o.account) != account) {
        why = RejectReason::kOrderNotOwned;
        return std::nullopt;
      }
      return k;
    }
    const std::uint64_t client = core::raw(ref.client_order_id);
    if (client != 0 && core::raw(o.account) == account && core::raw(o.client_order_id) == client) {
      return k;
    }
  }
  return std::nullopt;
}

// The currency: only while no instrument and no account exists; a code of 1 to 7 characters
// A-Z / 0-9; at most 8 decimals. Money is then counted in 10^-decimals of it.
void Model::on(const core::SetCurrency& e, std::vector<Effect>& out) {
  if (!instruments_.empty() || !accounts_.empty()) {
    out.push_back(admin_reject(RejectReason::kCurrencyFixed));
    return;
  }
  if (e.code.empty() || e.code.size() > 7) {
    out.push_back(admin_reject(RejectReason::kNameTooLong));
    return;
  }
  const bool letters_and_digits = std::all_of(e.code.begin(), e.code.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
  if (!letters_and_digits || e.decimals > 8) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  minor_per_unit_ = core::pow10(e.decimals);
  Effect f = simple(EffectKind::kCurrencySet);
  f.amount = core::Money(minor_per_unit_);
  out.push_back(f);
}

std::uint32_t Model::level_count(std::uint32_t instrument, Direction d, std::int64_t price) const {
  std::uint32_t n = 0;
  for (const ModelOrder& r : resting_) {
    n += r.instrument == instrument && r.direction == d && r.price == price ? 1 : 0;
  }
  return n;
}

// Limits: each within its maximum, and their budget (1 KiB per instrument, 256 B per account and
// per order) within 32 GiB; otherwise INVALID_PARAMETER.
void Model::on(const core::SetLimits& e, std::vector<Effect>& out) {
  const core::EngineLimits& l = e.limits;
  const Wide bytes = Wide{l.instruments} * 1024 + Wide{l.accounts} * 256 + Wide{l.orders} * 256;
  if (l.instruments > 1'000'000 || l.accounts > 100'000'000 || l.orders > 100'000'000 ||
      bytes > Wide{32} * 1024 * 1024 * 1024) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  limits_ = l;
  out.push_back(simple(EffectKind::kLimitsSet));
}

// A term needs a leader, an epoch an Effect's amount can carry, and an epoch above the current
// one; it changes nothing a trader sees.
void Model::on(const core::LeaderTerm& e, std::vector<Effect>& out) {
  if (e.node == 0 || e.epoch > static_cast<std::uint64_t>(INT64_MAX)) {
    out.push_back(admin_reject(RejectReason::kInvalidParameter));
    return;
  }
  if (e.epoch <= epoch_) {
    out.push_back(admin_reject(RejectReason::kStaleEpoch));
    return;
  }
  epoch_ = e.epoch;
  Effect f = simple(EffectKind::kTermStarted);
  f.amount = core::Money(static_cast<std::int64_t>(e.epoch));
  f.volume = core::Lots(static_cast<std::int64_t>(e.node));
  out.push_back(f);
}

// With a ratio set: every account holding a position entry in an instrument that traded since
// the last settlement, instruments in id order, holders in id order, each once.
void Model::on(const core::MarkToMarket&, std::vector<Effect>& out) {
  std::int64_t checked = 0;
  for (std::uint32_t i = 0; ratio_ && i < instruments_.size(); ++i) {
    if (!instruments_[i].last_price) continue;
    for (std::uint32_t id = 0; id < accounts_.size(); ++id) {
      if (!accounts_[id].positions.contains(i) || queued_[id]) continue;
      queue_check(id);
      checked += 1;
    }
  }
  Effect f = simple(EffectKind::kMarkedToMarket);
  f.volume = core::Lots(checked);
  out.push_back(f);
}

// ---- forced liquidation ---------------------------------------------------------------------

void Model::queue_check(std::uint32_t account) {
  if (!ratio_) return;  // without a ratio nobody is checked
  if (queued_.size() < accounts_.size()) queued_.resize(accounts_.size(), false);
  if (!queued_.at(account)) {
    queued_[account] = true;
    check_queue_.push_back(account);
  }
}

// Runs the queued checks in queue order; the checks may queue more (counterparties, the fund).
// That ends the round: a triggered stop's order starts a new one.
void Model::run_checks(std::vector<Effect>& out) {
  for (std::size_t k = 0; k < check_queue_.size(); ++k) liquidate(check_queue_[k], out);
  check_queue_.clear();
  queued_.assign(accounts_.size(), false);
}

// margin > 0 and (balance <= 0 or margin / balance >= ratio).
bool Model::at_risk(std::uint32_t account_id) const {
  const ModelAccountView v = account(account_id);
  if (v.margin <= 0) return false;
  return v.balance <= 0 || Wide{v.margin} * kBillion >= Wide{*ratio_} * v.balance;
}

void Model::liquidate(std::uint32_t account_id, std::vector<Effect>& out) {
  if (!at_risk(account_id)) return;
  const ModelAccountView v = account(account_id);
  Effect f = simple(EffectKind::kLiquidationStarted);
  f.account = core::AccountId(account_id);
  f.amount = core::Money(v.balance);
  f.amount2 = core::Money(v.margin);
  out.push_back(f);
  for (const ModelOrder& o : orders(account_id)) {  // by order id
    for (std::size_t k = 0; k < resting_.size(); ++k) {
      if (resting_[k].id != o.id) continue;
      remove_resting(k, core::CancelReason::kForcedLiquidation, out);
      break;
    }
  }
  close_positions(account_id, out);
  cover_deficit(account_id, out);
}

// Positions in instrument id order (one halted or outside continuous trading skipped), long side
// then short side, while the account is at risk: k lots at a time by the documented formula. A
// side whose forced order fills nothing (or finds no opposite order to be entered against) is
// left, and the next side is tried.
void Model::close_positions(std::uint32_t account_id, std::vector<Effect>& out) {
  std::vector<std::uint32_t> held;
  for (const auto& kv : accounts_[account_id].positions) held.push_back(kv.first);
  for (std::uint32_t ins_id : held) {
    const Instrument& ins = instruments_[ins_id];
    if (ins.status != core::InstrumentStatus::kTrading ||
        ins.phase != core::TradingPhase::kContinuous) {
      continue;
    }
    for (bool is_long : {true, false}) {
      for (;;) {
        if (!at_risk(account_id)) return;
        const ModelPosition& pos = accounts_[account_id].positions.at(ins_id);
        const ModelSide& s = is_long ? pos.long_side : pos.short_side;
        const std::int64_t lots = s.lots();
        if (lots == 0) break;
        const ModelAccountView v = account(account_id);
        std::int64_t k = lots;
        if (v.balance > 0 && s.margin > 0) {
          const Wide excess = Wide{v.margin} * kBillion - Wide{*ratio_} * v.balance;
          k = std::min(lots, to_i64(Wide{lots} * excess / (Wide{s.margin} * kBillion)) + 1);
        }
        const Direction d = is_long ? Direction::kSell : Direction::kBuy;
        const std::optional<std::int64_t> filled = force_close(account_id, ins_id, d, k, out);
        if (filled.value_or(0) == 0) break;
      }
    }
  }
}

// A MARKET IOC CLOSE order of `lots`, entered without funds checks; returns the lots it filled,
// or nothing when the opposite side is empty and no order is entered.
std::optional<std::int64_t> Model::force_close(std::uint32_t account_id, std::uint32_t ins_id,
                                               Direction d, std::int64_t lots,
                                               std::vector<Effect>& out) {
  core::NewOrder e;
  e.account = core::AccountId(account_id);
  e.instrument = core::InstrumentId(ins_id);
  e.direction = d;
  e.offset = Offset::kClose;
  e.price_type = PriceType::kMarket;
  e.time_condition = TimeCondition::kIoc;
  e.volume_condition = core::VolumeCondition::kAny;
  e.volume = core::Lots(lots);
  // An empty opposite side leaves nothing to enter: no order, no effect.
  std::int64_t price = 0;
  if (order_price(e, price)) return std::nullopt;
  ModelOrder o;
  o.account = account_id;
  o.instrument = ins_id;
  o.direction = d;
  o.offset = Offset::kClose;
  o.price_type = PriceType::kMarket;
  o.time_condition = TimeCondition::kIoc;
  o.stp = core::SelfTradePrevention{core::StpMode::kCancelNewest, core::StpScope::kAccount};
  o.price = price;
  o.volume_orig = lots;
  o.volume_left = lots;
  if (reserve(o)) {
    std::fprintf(stderr, "model: a forced close of more than the account holds\n");
    std::abort();
  }
  o.id = next_order_id_++;
  hold(o);
  Effect f = echo(EffectKind::kOrderAccepted, e);
  f.order = core::OrderId(o.id);
  f.price = core::PriceTicks(o.price);
  f.reason = 1;  // forced
  out.push_back(f);
  const std::size_t first = out.size();
  match(o, out);
  std::int64_t filled = 0;
  for (std::size_t k = first; k < out.size(); ++k) {
    if (out[k].kind == EffectKind::kTrade && core::raw(out[k].order) == o.id) {
      filled += out[k].volume.value;
    }
  }
  if (o.volume_left > 0) cancel_unrested(o, core::CancelReason::kIocRemainder, out);
  return filled;
}

// After an attempt: an account with no lots left and a negative balance is paid what the fund
// can (its available funds, the room under both close_profit bounds); the fund is then checked.
void Model::cover_deficit(std::uint32_t account_id, std::vector<Effect>& out) {
  if (!fund_ || *fund_ == account_id) return;
  for (const auto& kv : accounts_[account_id].positions) {
    if (kv.second.long_side.lots() != 0 || kv.second.short_side.lots() != 0) return;
  }
  const ModelAccountView v = account(account_id);
  if (v.balance >= 0) return;
  const Wide deficit = -Wide{v.balance};
  Account& a = accounts_[account_id];
  Account& fund = accounts_[*fund_];
  const Wide room =
      std::min(Wide{kMoneyBound} - a.close_profit, Wide{kMoneyBound} + fund.close_profit);
  const Wide can = std::max(Wide{0}, std::min(Wide{account(*fund_).available}, room));
  const std::int64_t paid = to_i64(std::min(deficit, can));
  a.close_profit += paid;
  fund.close_profit -= paid;
  Effect f = simple(EffectKind::kInsuranceCovered);
  f.account = core::AccountId(account_id);
  f.counter_account = core::AccountId(*fund_);
  f.amount = core::Money(paid);
  f.amount2 = core::Money(to_i64(deficit) - paid);
  out.push_back(f);
  queue_check(*fund_);
}

}  // namespace qx::property
