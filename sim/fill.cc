#include "sim/fill.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/assert.h"
#include "core/numeric.h"
#include "replay/views.h"

namespace qx::sim {

using replay::Error;
using replay::Result;
using replay::Status;

namespace {
// The liquidity account never runs out of money in a backtest (1e15 minor units).
constexpr std::int64_t kLiquidityDeposit = 1'000'000'000'000'000;

// Orders of one side by priority: best price first, then arrival.
bool better(core::Direction d, std::int64_t a, std::int64_t b) {
  return d == core::Direction::kBuy ? a > b : a < b;
}
core::Direction opposite(core::Direction d) {
  return d == core::Direction::kBuy ? core::Direction::kSell : core::Direction::kBuy;
}
}  // namespace

std::string_view queue_model_name(QueueModel m) {
  return m == QueueModel::kProportional ? "proportional" : "risk_averse";
}

Result<QueueModel> parse_queue_model(std::string_view name) {
  if (name == "risk_averse") return QueueModel::kRiskAverse;
  if (name == "proportional") return QueueModel::kProportional;
  return Error{"queue model '" + std::string(name) + "' is not risk_averse or proportional"};
}

std::int64_t Latency::next() {
  std::int64_t jitter =
      spec_.jitter_ns > 0
          ? static_cast<std::int64_t>(prng_.below(static_cast<std::uint64_t>(spec_.jitter_ns) + 1))
          : 0;
  return spec_.base_ns + jitter;
}

void QueuePosition::on_level(std::int64_t shown_before, std::int64_t shown, std::int64_t traded) {
  std::int64_t cancelled = shown_before - shown - traded;
  if (cancelled <= 0 || ahead_ == 0) return;  // only additions (behind us), or nothing ahead
  if (model_ == QueueModel::kProportional && ahead_ != kUnknown) {
    // The cancellation comes from ahead in proportion to ahead's share of the level that was
    // left after the trades; the reduction rounds down (the order never moves up for free).
    std::int64_t level = std::max<std::int64_t>(shown_before - traded, 1);
    std::int64_t share = std::min(ahead_, level);
    auto reduction = static_cast<std::int64_t>(core::mul_div_floor(cancelled, share, level));
    ahead_ -= reduction;
  }
  ahead_ = std::min(ahead_, shown);  // never more ahead than the level shows
}

void QueuePosition::on_visible(std::int64_t shown) {
  ahead_ = std::min(ahead_, shown);
}

std::int64_t QueuePosition::on_trade_at_price(std::int64_t qty) {
  if (ahead_ >= qty) {
    ahead_ -= qty;
    return 0;
  }
  std::int64_t reach = qty - ahead_;
  ahead_ = 0;
  return reach;
}

void require_admin_accepted(const core::Event& event, const core::EffectBuffer& effects) {
  for (const core::Effect& f : effects) {
    if (f.kind != core::EffectKind::kAdminRejected) continue;
    throw std::invalid_argument(std::string("backtest setup refused by the engine: ") +
                                replay::event_kind(event) + ": " +
                                core::to_string(static_cast<core::RejectReason>(f.reason)));
  }
}

namespace {

VenueConfig with_position_limit(VenueConfig c) {
  if (c.params.position_limit.value == 0) {
    const std::int64_t scale = c.currency ? core::pow10(c.currency->decimals) : core::kMoneyScale;
    c.params.position_limit =
        core::position_limit_max(c.params, core::PriceTicks(10 * c.reference_price.value), scale);
  }
  return c;
}

}  // namespace

ReplayOnlyVenue::ReplayOnlyVenue(const VenueConfig& config)
    : config_(with_position_limit(config)),
      actions_(config.order_entry, config.seed),
      data_(config.market_data, config.seed ^ 0x9e3779b97f4a7c15ULL) {
  if (config_.currency) apply(*config_.currency);
  apply(core::CreateInstrument{config_.instrument_code, config_.exchange, config_.params,
                               config_.reference_price});
  apply(core::CreateUser{"strategy"});
  apply(core::CreateUser{"liquidity"});
  apply(core::CreateAccount{core::UserId{0}, "strategy"});
  apply(core::CreateAccount{core::UserId{1}, "liquidity"});
  if (config_.strategy_deposit.value > 0) {
    apply(core::Deposit{strategy_account(), config_.strategy_deposit});
  }
  apply(core::Deposit{liquidity_account(), core::Money(kLiquidityDeposit)});
}

std::string ReplayOnlyVenue::mode() const {
  return "replay-only/" + std::string(queue_model_name(config_.queue));
}

void ReplayOnlyVenue::apply(core::EventBody body) {
  seq_ += 1;
  events_.push_back(core::Event{core::EventHeader{core::Seq{seq_}, now_, 0}, std::move(body)});
  effects_.clear();
  engine_.apply(events_.back(), effects_);
  require_admin_accepted(events_.back(), effects_);
}

std::int64_t ReplayOnlyVenue::working(std::uint64_t order) const {
  auto it = working_.find(order);
  return it == working_.end() ? 0 : it->second.left;
}

std::int64_t ReplayOnlyVenue::ahead(std::uint64_t order) const {
  auto it = working_.find(order);
  return it == working_.end() ? 0 : it->second.queue.ahead();
}

std::uint64_t ReplayOnlyVenue::submit(std::int64_t time_ns, core::Direction d, core::Offset offset,
                                      std::int64_t price, std::int64_t volume) {
  return actions_.submit(time_ns, d, offset, price, volume);
}

void ReplayOnlyVenue::cancel(std::int64_t time_ns, std::uint64_t order) {
  actions_.cancel(time_ns, order);
}

void ReplayOnlyVenue::advance_to(std::int64_t time_ns) {
  actions_.release(time_ns, [&](std::int64_t at, const StrategyAction& a) { arrive(at, a); });
  now_ = std::max(now_, time_ns);
}

std::int64_t ReplayOnlyVenue::record_effects(std::uint64_t id, core::Direction d, bool aggressive) {
  std::int64_t filled = 0;
  for (const core::Effect& e : effects_) {
    if (e.kind == core::EffectKind::kOrderRejected && e.account == strategy_account() &&
        raw(e.client_order_id) == id) {
      rejects_.push_back(SimReject{now_, now_ + data_.next(), id, e.reason});
    }
    if (e.kind != core::EffectKind::kTrade) continue;
    bool ours =
        aggressive ? e.account == strategy_account() : e.counter_account == strategy_account();
    if (!ours) continue;
    filled += e.volume.value;
    fills_.push_back(SimFill{now_, now_ + data_.next(), id, d, e.price, e.volume,
                             aggressive ? e.amount : e.amount2, aggressive, mode()});
  }
  return filled;
}

void ReplayOnlyVenue::passive_fill(std::uint64_t id, Working& w, std::int64_t lots) {
  core::NewOrder o;
  o.account = liquidity_account();
  o.instrument = core::InstrumentId{0};
  o.client_order_id = core::ClientOrderId{next_liquidity_++};
  o.direction = opposite(w.direction);
  o.offset = core::Offset::kOpen;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(w.price);
  o.volume = core::Lots(lots);
  o.time_condition = core::TimeCondition::kIoc;
  o.volume_condition = core::VolumeCondition::kAny;
  apply(o);
  w.left -= record_effects(id, w.direction, false);
}

void ReplayOnlyVenue::arrive(std::int64_t time_ns, const StrategyAction& a) {
  now_ = std::max(now_, time_ns);
  if (a.cancel) {
    auto it = working_.find(a.order);
    if (it == working_.end()) return;  // filled or rejected before the cancel arrived
    apply(core::CancelOrder{strategy_account(),
                            core::OrderRef{std::nullopt, core::ClientOrderId{a.order}}});
    working_.erase(it);
    return;
  }
  bool buy = a.direction == core::Direction::kBuy;
  std::int64_t opp = best(opposite(a.direction));
  bool marketable = opp > 0 && a.volume > 0 && (buy ? a.price >= opp : a.price <= opp);
  std::int64_t& taken = buy ? ask_taken_ : bid_taken_;
  std::int64_t shown = buy ? ask_qty_ : bid_qty_;
  std::int64_t take = marketable ? std::min(shown - taken, a.volume) : 0;
  std::uint64_t liquidity_id = 0;
  if (take > 0) {  // the displayed liquidity, resting just before the strategy's order arrives
    core::NewOrder l;
    l.account = liquidity_account();
    l.instrument = core::InstrumentId{0};
    liquidity_id = next_liquidity_++;
    l.client_order_id = core::ClientOrderId{liquidity_id};
    l.direction = opposite(a.direction);
    l.offset = core::Offset::kOpen;
    l.price_type = core::PriceType::kLimit;
    l.price = core::PriceTicks(opp);
    l.volume = core::Lots(take);
    l.time_condition = core::TimeCondition::kGtc;
    l.volume_condition = core::VolumeCondition::kAny;
    apply(l);
  }
  core::NewOrder o;
  o.account = strategy_account();
  o.instrument = core::InstrumentId{0};
  o.client_order_id = core::ClientOrderId{a.order};
  o.direction = a.direction;
  o.offset = a.offset;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(a.price);
  o.volume = core::Lots(a.volume);
  o.time_condition = core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  apply(o);
  bool accepted = std::any_of(effects_.begin(), effects_.end(), [&](const core::Effect& e) {
    return e.kind == core::EffectKind::kOrderAccepted && e.account == strategy_account();
  });
  std::int64_t filled = record_effects(a.order, a.direction, true);
  taken += filled;
  if (take > filled) {  // what the strategy did not take leaves with the liquidity account
    apply(core::CancelOrder{liquidity_account(),
                            core::OrderRef{std::nullopt, core::ClientOrderId{liquidity_id}}});
  }
  std::int64_t left = a.volume - filled;
  if (!accepted || left <= 0) return;
  std::int64_t same = best(a.direction);
  std::int64_t ahead = QueuePosition::kUnknown;
  if (same > 0 && a.price == same) ahead = buy ? bid_qty_ : ask_qty_;
  if (same > 0 && better(a.direction, a.price, same)) ahead = 0;  // a new best price
  Working w;
  w.direction = a.direction;
  w.price = a.price;
  w.left = left;
  w.arrival = ++arrivals_;
  w.queue = QueuePosition(config_.queue, ahead);
  working_.emplace(a.order, w);
}

std::vector<std::uint64_t> ReplayOnlyVenue::by_priority(core::Direction d) const {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, w] : working_) {
    if (w.direction == d) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end(), [&](std::uint64_t x, std::uint64_t y) {
    const Working& a = working_.at(x);
    const Working& b = working_.at(y);
    if (a.price != b.price) return better(d, a.price, b.price);
    return a.arrival < b.arrival;
  });
  return ids;
}

void ReplayOnlyVenue::finish(std::uint64_t id) {
  auto it = working_.find(id);
  if (it != working_.end() && it->second.left <= 0) working_.erase(it);
}

Status ReplayOnlyVenue::on_bbo(std::int64_t time_ns, std::int64_t bid, std::int64_t bid_qty,
                               std::int64_t ask, std::int64_t ask_qty) {
  if (bid <= 0 || ask <= 0 || bid_qty <= 0 || ask_qty <= 0) {
    return Error{"BBO prices and quantities must be positive"};
  }
  if (bid >= ask)
    return Error{"BBO is crossed or locked: bid " + std::to_string(bid) + " >= ask " +
                 std::to_string(ask)};
  if (time_ns < now_) return Error{"BBO time goes backwards"};
  advance_to(time_ns - 1);  // arrivals at the same time come after the market event
  now_ = time_ns;
  for (auto& [id, w] : working_) {
    bool buy = w.direction == core::Direction::kBuy;
    std::int64_t old_best = buy ? bid_ : ask_;
    std::int64_t new_best = buy ? bid : ask;
    if (w.price != new_best) continue;
    std::int64_t shown = buy ? bid_qty : ask_qty;
    if (old_best == new_best) {
      w.queue.on_level(buy ? bid_qty_ : ask_qty_, shown, buy ? bid_traded_ : ask_traded_);
    } else {
      w.queue.on_visible(shown);
    }
  }
  bid_ = bid;
  bid_qty_ = bid_qty;
  ask_ = ask;
  ask_qty_ = ask_qty;
  bid_taken_ = ask_taken_ = bid_traded_ = ask_traded_ = 0;
  // Resting strategy orders that the new BBO crosses are filled at their own price, from the
  // displayed quantity, best first.
  for (core::Direction d : {core::Direction::kBuy, core::Direction::kSell}) {
    bool buy = d == core::Direction::kBuy;
    std::int64_t opp = buy ? ask_ : bid_;
    std::int64_t& taken = buy ? ask_taken_ : bid_taken_;
    std::int64_t shown = buy ? ask_qty_ : bid_qty_;
    for (std::uint64_t id : by_priority(d)) {
      Working& w = working_.at(id);
      if (!(buy ? w.price >= opp : w.price <= opp) || taken >= shown) break;
      std::int64_t before = w.left;
      passive_fill(id, w, std::min(shown - taken, w.left));
      taken += before - w.left;
      finish(id);
    }
  }
  return Status{};
}

Status ReplayOnlyVenue::on_trade(std::int64_t time_ns, std::int64_t price, std::int64_t qty,
                                 core::Direction aggressor) {
  if (price <= 0 || qty <= 0) return Error{"trade price and quantity must be positive"};
  if (time_ns < now_) return Error{"trade time goes backwards"};
  advance_to(time_ns - 1);
  now_ = time_ns;
  core::Direction passive = opposite(aggressor);
  bool bids = passive == core::Direction::kBuy;
  if (price == (bids ? bid_ : ask_)) (bids ? bid_traded_ : ask_traded_) += qty;
  std::int64_t left = qty;  // of the historical trade, for the strategy's orders
  for (std::uint64_t id : by_priority(passive)) {
    Working& w = working_.at(id);
    bool through = bids ? price < w.price : price > w.price;
    std::int64_t reach = 0;
    if (through) {
      reach = qty;
    } else if (price == w.price) {
      reach = w.queue.on_trade_at_price(qty);
    } else {
      break;  // this and every later order are behind the trade's price
    }
    std::int64_t lots = std::min({reach, left, w.left});
    if (lots > 0) {
      std::int64_t before = w.left;
      passive_fill(id, w, lots);
      left -= before - w.left;
      finish(id);
    }
  }
  return Status{};
}

}  // namespace qx::sim
