// Event dispatch, the effects hash, and the admin events (instruments, users, accounts, money,
// risk parameters). Order entry lives in orders.cc; money, settlement and liquidation in risk.cc.
#include "core/engine.h"

#include <algorithm>
#include <new>
#include <utility>

#include "core/assert.h"
#include "core/hash.h"
#include "core/numeric.h"

namespace qx::core {

namespace {

constexpr std::size_t kCodeBytesMax = 31;
constexpr std::size_t kExchangeBytesMax = 15;
constexpr std::size_t kNameBytesMax = 31;
constexpr std::size_t kCurrencyBytesMax = 7;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

bool rate_ok(std::int64_t ppb) {
  return ppb >= 0 && ppb <= kPpb;
}

bool params_ok(const InstrumentParams& p, std::int64_t money_scale) {
  const FeeSchedule& f = p.fees;
  return tick_value_of(p, money_scale).has_value() && rate_ok(p.margin_long_ppb) &&
         rate_ok(p.margin_short_ppb) && rate_ok(f.open_ppb) && rate_ok(f.close_ppb) &&
         rate_ok(f.close_today_ppb) && f.open_per_lot.value >= 0 && f.close_per_lot.value >= 0 &&
         f.close_today_per_lot.value >= 0 &&
         (!p.price_band_ppb || (*p.price_band_ppb > 0 && *p.price_band_ppb < kPpb)) &&
         p.max_order_volume.value > 0 && p.position_limit.value > 0;
}

// Whether a side of position_limit lots at `price_max` is worth at most kSideValueMax, and so are
// the per-lot fees of position_limit lots (core/limits.h).
bool within_bounds(const InstrumentParams& p, Money tick_value, PriceTicks price_max) {
  const i128 limit = p.position_limit.value;
  const FeeSchedule& f = p.fees;
  auto fits = [&](i128 per_lot) { return per_lot * limit <= kSideValueMax; };
  return price_max.value > 0 && limit * price_max.value * tick_value.value <= kSideValueMax &&
         fits(f.open_per_lot.value) && fits(f.close_per_lot.value) &&
         fits(f.close_today_per_lot.value);
}

}  // namespace

// Tick value in minor money units: tick * multiplier * money_scale / 1e16, required exact. It is
// computed as tick * multiplier / (1e16 / money_scale): the product of two positive int64 is
// below 2^126, while multiplying it by the money scale too could pass 2^127.
std::optional<Money> tick_value_of(const InstrumentParams& p, std::int64_t money_scale) {
  const i128 one = static_cast<i128>(kDecimalScale) * kDecimalScale;  // 1e16
  if (p.price_tick_e8 <= 0 || p.multiplier_e8 <= 0 || money_scale <= 0 || one % money_scale != 0) {
    return std::nullopt;
  }
  const i128 product = static_cast<i128>(p.price_tick_e8) * p.multiplier_e8;
  const i128 unit = one / money_scale;  // 1e16 / 10^decimals >= 1e8
  if (product % unit != 0) return std::nullopt;
  auto v = narrow(product / unit);
  if (!v || *v <= 0) return std::nullopt;
  return Money(*v);
}

Lots position_limit_max(const InstrumentParams& p, PriceTicks price_max, std::int64_t money_scale) {
  auto tv = tick_value_of(p, money_scale);
  if (!tv || price_max.value <= 0) return Lots{0};
  return Lots(
      static_cast<std::int64_t>(kSideValueMax / (static_cast<i128>(price_max.value) * tv->value)));
}

Engine::Engine() = default;

void Engine::apply(const Event& event, EffectBuffer& out) {
  QX_ASSERT_EQ(raw(event.header.seq), raw(last_seq_) + 1);
  out_ = &out;
  header_ = &event.header;
  advance_sessions(event.header.timestamp_ns);
  std::visit([this](const auto& body) { on(body); }, event.body);
  settle_consequences();
  last_seq_ = event.header.seq;
  last_timestamp_ns_ = event.header.timestamp_ns;
  out_ = nullptr;
  header_ = nullptr;
}

void Engine::admin_reject(RejectReason r) {
  Effect f{};
  f.kind = EffectKind::kAdminRejected;
  f.reason = static_cast<std::uint16_t>(r);
  emit(f);
}

Engine::Instrument& Engine::ins_at(InstrumentId id) {
  QX_ASSERT(raw(id) < instruments_.size());
  return instruments_[raw(id)];
}

Engine::Account& Engine::acc_at(AccountId id) {
  QX_ASSERT(raw(id) < accounts_.size());
  return accounts_[raw(id)];
}

namespace {
std::optional<std::uint32_t> lookup(const std::map<std::string, std::uint32_t, std::less<>>& m,
                                    std::string_view name) {
  auto it = m.find(name);
  if (it == m.end()) return std::nullopt;
  return it->second;
}
}  // namespace

std::optional<InstrumentId> Engine::find_instrument(std::string_view code) const {
  auto i = lookup(instrument_names_, code);
  return i ? std::optional(InstrumentId(*i)) : std::nullopt;
}

std::optional<AccountId> Engine::find_account(std::string_view name) const {
  auto i = lookup(account_names_, name);
  return i ? std::optional(AccountId(*i)) : std::nullopt;
}

std::optional<UserId> Engine::find_user(std::string_view name) const {
  auto i = lookup(user_names_, name);
  return i ? std::optional(UserId(*i)) : std::nullopt;
}

void Engine::on(const CreateInstrument& e) {
  if (e.code.empty() || e.code.size() > kCodeBytesMax || e.exchange.size() > kExchangeBytesMax) {
    return admin_reject(RejectReason::kNameTooLong);
  }
  if (find_instrument(e.code)) return admin_reject(RejectReason::kDuplicateName);
  if (limits_.instruments != 0 && instruments_.size() >= limits_.instruments) {
    return admin_reject(RejectReason::kInstrumentLimit);
  }
  if (!params_ok(e.params, money_scale_) || e.pre_settlement.value <= 0 ||
      expires_before_today(e.params)) {
    return admin_reject(RejectReason::kInvalidParameter);
  }
  // The price ceiling: the highest price at which position_limit lots stay within kSideValueMax.
  const Money tv = *tick_value_of(e.params, money_scale_);
  const PriceTicks price_max(static_cast<std::int64_t>(
      kSideValueMax / (static_cast<i128>(e.params.position_limit.value) * tv.value)));
  if (price_max < e.pre_settlement || !within_bounds(e.params, tv, price_max)) {
    return admin_reject(RejectReason::kNumericOverflow);
  }
  Instrument ins;
  ins.s.code = e.code;
  ins.s.exchange = e.exchange;
  ins.s.params = e.params;
  ins.s.status = InstrumentStatus::kTrading;
  ins.s.pre_settlement = e.pre_settlement;
  ins.s.price_max = price_max;
  ins.tick_value = tv;
  refresh_band(ins);
  instrument_names_.emplace(e.code, static_cast<std::uint32_t>(instruments_.size()));
  instruments_.push_back(std::move(ins));
  Effect f{};
  f.kind = EffectKind::kInstrumentCreated;
  f.instrument = InstrumentId(static_cast<std::uint32_t>(instruments_.size() - 1));
  f.price = e.pre_settlement;
  emit(f);
}

// A last trading day that is already settled (before today's): the instrument could never trade.
bool Engine::expires_before_today(const InstrumentParams& p) const {
  return p.last_trading_day != 0 && p.last_trading_day < trading_day_;
}

void Engine::on(const UpdateInstrument& e) {
  if (raw(e.instrument) >= instruments_.size()) {
    return admin_reject(RejectReason::kUnknownInstrument);
  }
  Instrument& ins = ins_at(e.instrument);
  // Tick and multiplier define what a price and a lot mean; changing them would silently
  // re-value every resting order and position, so they are fixed at creation.
  if (!params_ok(e.params, money_scale_) || e.params.price_tick_e8 != ins.s.params.price_tick_e8 ||
      e.params.multiplier_e8 != ins.s.params.multiplier_e8 || expires_before_today(e.params)) {
    return admin_reject(RejectReason::kInvalidParameter);
  }
  // The price ceiling stays; a larger position limit or per-lot fee must still fit under it.
  if (!within_bounds(e.params, ins.tick_value, ins.s.price_max)) {
    return admin_reject(RejectReason::kNumericOverflow);
  }
  ins.s.params = e.params;
  refresh_band(ins);
  Effect f{};
  f.kind = EffectKind::kInstrumentUpdated;
  f.instrument = e.instrument;
  emit(f);
  cancel_outside_band(ins);
}

void Engine::on(const SetInstrumentStatus& e) {
  if (raw(e.instrument) >= instruments_.size()) {
    return admin_reject(RejectReason::kUnknownInstrument);
  }
  if (raw(e.status) < 1 || raw(e.status) > 3) return admin_reject(RejectReason::kInvalidParameter);
  Instrument& ins = ins_at(e.instrument);
  if (ins.s.status == InstrumentStatus::kDelisted) {
    return admin_reject(RejectReason::kInstrumentDelisted);
  }
  ins.s.status = e.status;
  Effect f{};
  f.kind = EffectKind::kInstrumentStatusChanged;
  f.instrument = e.instrument;
  f.reason = raw(e.status);
  emit(f);
  if (e.status == InstrumentStatus::kDelisted) {
    cancel_all_resting(ins, CancelReason::kInstrumentDelisted);
    end_session(ins);
  }
  // A call auction that ended while the instrument was halted uncrosses when it trades again.
  if (e.status == InstrumentStatus::kTrading) uncross(ins);
}

// Cancels every resting order of an instrument (bids then asks, best level first, in time
// priority), then its pending stops in id order.
void Engine::cancel_all_resting(Instrument& ins, CancelReason why) {
  std::vector<OrderHandle> doomed;
  for (const BookSide* side : {&ins.book.bids, &ins.book.asks}) {
    side->for_each_level([&](PriceTicks, const Level& l) {
      for (OrderHandle h = l.head; h != kNoOrder; h = orders_[h].next) doomed.push_back(h);
      return true;
    });
  }
  for (OrderHandle h : doomed) cancel_resting(h, why);
  std::set<OrderId> stops;
  for (const auto& by_source : ins.triggers) {
    for (const auto& set : by_source) {
      for (const auto& [price, id] : set) stops.insert(id);
    }
  }
  for (OrderId id : stops) cancel_stop(id, why);
}

// What the reservation for limits l takes, in bytes: instruments, accounts (with the per-account
// bookkeeping of liquidation checks), and per order its pool record, two index slots at the
// indexes' worst load (8 bytes each, at most 3/4 full after doubling: 2 x 8 x 8/3), its free
// list entry and a day's trade record.

void Engine::on(const SetLimits& e) {
  const EngineLimits& l = e.limits;
  if (!limits_ok(l)) return admin_reject(RejectReason::kInvalidParameter);
  limits_ = l;
  reserve(l);
  Effect f{};
  f.kind = EffectKind::kLimitsSet;
  emit(f);
}

void Engine::on(const LeaderTerm& e) {
  if (e.node == 0) return admin_reject(RejectReason::kInvalidParameter);
  if (e.epoch > static_cast<std::uint64_t>(INT64_MAX)) {
    return admin_reject(RejectReason::kInvalidParameter);
  }
  if (e.epoch <= epoch_) return admin_reject(RejectReason::kStaleEpoch);
  epoch_ = e.epoch;
  leader_ = e.node;
  Effect f{};
  f.kind = EffectKind::kTermStarted;
  f.amount = Money(static_cast<std::int64_t>(e.epoch));
  f.volume = Lots(static_cast<std::int64_t>(e.node));
  emit(f);
}

// Reservation changes no state a hash or a view sees: capacities only.
void Engine::reserve(const EngineLimits& l) {
  static_assert(sizeof(Instrument) <= kInstrumentBytes && sizeof(Account) <= kAccountBytes);
  static_assert(sizeof(Order) + sizeof(TradeState) + 2 * 8 * 8 / 3 + 4 <= kOrderBytes);
  // Capacity only: no state, hash or view depends on it, so a machine that cannot reserve it
  // runs on and allocates as it goes (a replay must never stop here).
  try {
    instruments_.reserve(l.instruments);
    accounts_.reserve(l.accounts);
    liquidation_queued_.reserve(l.accounts);
    stuck_.reserve(l.accounts);
    orders_.preallocate(l.orders);
    order_index_.reserve(l.orders);
    client_index_.reserve(l.orders);
    trades_.reserve(l.orders);
  } catch (const std::bad_alloc&) {
  }
}

void Engine::on(const CreateUser& e) {
  if (e.name.empty() || e.name.size() > kNameBytesMax) {
    return admin_reject(RejectReason::kNameTooLong);
  }
  if (find_user(e.name)) return admin_reject(RejectReason::kDuplicateName);
  user_names_.emplace(e.name, static_cast<std::uint32_t>(users_.size()));
  users_.push_back(e.name);
  Effect f{};
  f.kind = EffectKind::kUserCreated;
  f.user = UserId(static_cast<std::uint32_t>(users_.size() - 1));
  emit(f);
}

void Engine::on(const CreateAccount& e) {
  if (raw(e.user) >= users_.size()) return admin_reject(RejectReason::kUnknownUser);
  if (e.name.empty() || e.name.size() > kNameBytesMax) {
    return admin_reject(RejectReason::kNameTooLong);
  }
  if (find_account(e.name)) return admin_reject(RejectReason::kDuplicateName);
  if (limits_.accounts != 0 && accounts_.size() >= limits_.accounts) {
    return admin_reject(RejectReason::kAccountLimit);
  }
  Account a;
  a.s.name = e.name;
  a.s.user = e.user;
  account_names_.emplace(e.name, static_cast<std::uint32_t>(accounts_.size()));
  accounts_.push_back(std::move(a));
  Effect f{};
  f.kind = EffectKind::kAccountCreated;
  f.user = e.user;
  f.account = AccountId(static_cast<std::uint32_t>(accounts_.size() - 1));
  emit(f);
}

void Engine::on(const Deposit& e) {
  if (raw(e.account) >= accounts_.size()) return admin_reject(RejectReason::kUnknownAccount);
  Account& a = acc_at(e.account);
  if (e.amount.value <= 0) return admin_reject(RejectReason::kInvalidParameter);
  // The day's deposits stay within kMoneyMax (core/limits.h); so does an amount above it.
  if (e.amount.value > kMoneyMax - a.s.deposit.value) {
    return admin_reject(RejectReason::kNumericOverflow);
  }
  a.s.deposit += e.amount;
  Effect f{};
  f.kind = EffectKind::kDeposited;
  f.account = e.account;
  f.amount = e.amount;
  emit(f);
}

void Engine::on(const Withdraw& e) {
  if (raw(e.account) >= accounts_.size()) return admin_reject(RejectReason::kUnknownAccount);
  Account& a = acc_at(e.account);
  if (e.amount.value <= 0) return admin_reject(RejectReason::kInvalidParameter);
  // Never below what margin and frozen amounts need: available must stay non-negative.
  if (e.amount > available(a)) return admin_reject(RejectReason::kWithdrawExceedsAvailable);
  if (e.amount.value > kMoneyMax - a.s.withdraw.value) {
    return admin_reject(RejectReason::kNumericOverflow);
  }
  a.s.withdraw += e.amount;
  Effect f{};
  f.kind = EffectKind::kWithdrawn;
  f.account = e.account;
  f.amount = e.amount;
  emit(f);
}

void Engine::on(const SetAccountRisk& e) {
  if (raw(e.account) >= accounts_.size()) return admin_reject(RejectReason::kUnknownAccount);
  if (!stp_ok(e.stp)) return admin_reject(RejectReason::kInvalidParameter);
  Account& a = acc_at(e.account);
  a.s.max_open_orders = e.max_open_orders;
  a.s.enabled = e.enabled;
  a.s.stp = e.stp;
  Effect f{};
  f.kind = EffectKind::kAccountRiskSet;
  f.account = e.account;
  f.volume = Lots(e.max_open_orders);
  f.reason = e.enabled ? 1 : 0;
  emit(f);
}

void Engine::on(const SetCurrency& e) {
  if (!instruments_.empty() || !accounts_.empty()) {
    return admin_reject(RejectReason::kCurrencyFixed);
  }
  if (e.code.empty() || e.code.size() > kCurrencyBytesMax) {
    return admin_reject(RejectReason::kNameTooLong);
  }
  for (char c : e.code) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return admin_reject(RejectReason::kInvalidParameter);
    }
  }
  if (e.decimals > kMoneyDecimalsMax) return admin_reject(RejectReason::kInvalidParameter);
  currency_ = e.code;
  money_decimals_ = e.decimals;
  money_scale_ = pow10(e.decimals);
  Effect f{};
  f.kind = EffectKind::kCurrencySet;
  f.amount = Money(money_scale_);
  emit(f);
}

void Engine::on(const SetRiskParams& e) {
  if (e.liquidation_ratio_ppb <= 0 || e.liquidation_ratio_ppb > 100 * kPpb) {
    return admin_reject(RejectReason::kInvalidParameter);
  }
  if (e.insurance_account && raw(*e.insurance_account) >= accounts_.size()) {
    return admin_reject(RejectReason::kUnknownAccount);
  }
  liquidation_ratio_ppb_ = e.liquidation_ratio_ppb;
  insurance_account_ = e.insurance_account;
  Effect f{};
  f.kind = EffectKind::kRiskParamsSet;
  f.amount = Money(e.liquidation_ratio_ppb);
  emit(f);
  for (std::size_t i = 0; i < accounts_.size(); ++i) {
    check_liquidation(AccountId(static_cast<std::uint32_t>(i)));
  }
}

}  // namespace qx::core
