#include "sim/exact.h"

#include <algorithm>
#include <utility>

namespace qx::sim {

using replay::Status;

namespace {
constexpr std::int64_t kTakersDeposit = 1'000'000'000'000'000;

core::Direction opposite(core::Direction d) {
  return d == core::Direction::kBuy ? core::Direction::kSell : core::Direction::kBuy;
}
}  // namespace

ExactLobsterVenue::ExactLobsterVenue(const ExactConfig& config)
    : config_(config),
      book_(config.lobster),
      actions_(config.order_entry, config.seed),
      data_(config.market_data, config.seed ^ 0x9e3779b97f4a7c15ULL) {}

void ExactLobsterVenue::apply(core::EventBody body, std::int64_t time_ns) {
  seq_ += 1;
  now_ = std::max(now_, time_ns);
  events_.push_back(core::Event{core::EventHeader{core::Seq{seq_}, now_, 0}, std::move(body)});
  effects_.clear();
  engine_.apply(events_.back(), effects_);
  require_admin_accepted(events_.back(), effects_);
  observe();
}

std::int64_t ExactLobsterVenue::working(std::uint64_t order) const {
  auto it = working_.find(order);
  return it == working_.end() ? 0 : it->second.left;
}

void ExactLobsterVenue::observe() {
  auto historical = [&](core::OrderId id) -> Historical* {
    auto it = by_engine_id_.find(raw(id));
    return it == by_engine_id_.end() ? nullptr : &historical_[it->second];
  };
  auto strategy = [&](core::OrderId id) -> std::pair<std::uint64_t, Working*> {
    auto it = strategy_by_engine_id_.find(raw(id));
    if (it == strategy_by_engine_id_.end()) return {0, nullptr};
    auto w = working_.find(it->second);
    return {it->second, w == working_.end() ? nullptr : &w->second};
  };
  for (const core::Effect& e : effects_) {
    bool hist_account = e.account == LobsterBook::account_of(core::Direction::kBuy) ||
                        e.account == LobsterBook::account_of(core::Direction::kSell);
    switch (e.kind) {
      case core::EffectKind::kOrderAccepted:
        if (hist_account) {
          Historical& h = historical_[raw(e.client_order_id)];
          h.engine_id = e.order;
          h.left = e.volume.value;
          h.price = e.price;
          by_engine_id_[raw(e.order)] = raw(e.client_order_id);
        } else if (e.account == strategy_account()) {
          auto w = working_.find(raw(e.client_order_id));
          if (w != working_.end()) w->second.engine_id = e.order;
          strategy_by_engine_id_[raw(e.order)] = raw(e.client_order_id);
        }
        break;
      case core::EffectKind::kOrderRejected:
        if (hist_account) stats_.history_rejects += 1;
        if (e.account == strategy_account()) {
          rejects_.push_back(
              SimReject{now_, now_ + data_.next(), raw(e.client_order_id), e.reason});
          working_.erase(raw(e.client_order_id));
        }
        break;
      case core::EffectKind::kOrderAmended:
        if (Historical* h = historical(e.order)) h->left = e.volume_left.value;
        break;
      case core::EffectKind::kOrderCancelled:
        if (Historical* h = historical(e.order)) h->left = 0;
        if (auto [id, w] = strategy(e.order); w != nullptr) working_.erase(id);
        break;
      case core::EffectKind::kTrade: {
        for (core::OrderId side : {e.order, e.counter_order}) {
          if (Historical* h = historical(side)) {
            h->left -= e.volume.value;
            h->delta -= e.volume.value;
            if (e.account == strategy_account()) {
              stats_.taken_from_history += static_cast<std::uint64_t>(e.volume.value);
            }
          }
        }
        bool taker = e.account == strategy_account();
        bool maker = e.counter_account == strategy_account();
        if (!taker && !maker) break;
        auto [id, w] = strategy(taker ? e.order : e.counter_order);
        core::Direction d = taker ? e.direction : opposite(e.direction);
        fills_.push_back(SimFill{now_, now_ + data_.next(), id, d, e.price, e.volume,
                                 taker ? e.amount : e.amount2, taker, "exact"});
        if (w != nullptr) {
          w->left -= e.volume.value;
          if (w->left <= 0) working_.erase(id);
        }
        break;
      }
      default: break;
    }
  }
}

std::int64_t ExactLobsterVenue::strategy_ahead(core::Direction d, std::int64_t p,
                                               std::optional<core::OrderId> x) const {
  std::int64_t ahead = 0;
  for (const auto& [id, w] : working_) {
    if (w.direction != d) continue;
    bool better = d == core::Direction::kBuy ? w.price > p : w.price < p;
    bool earlier = w.price == p && x && raw(w.engine_id) < raw(*x);
    if (better || earlier) ahead += w.left;
  }
  return ahead;
}

void ExactLobsterVenue::reduce_historical(core::AccountId account, const core::OrderRef& ref,
                                          std::int64_t volume, std::int64_t time_ns) {
  Historical& h = historical_[raw(ref.client_order_id)];
  h.delta += std::exchange(pending_absorbed_, 0);  // what the strategy absorbed stays with it
  std::int64_t target = volume + h.delta;
  if (target <= 0) {
    stats_.history_lots_missing += static_cast<std::uint64_t>(-target);
    h.delta = -volume;  // the engine holds none of the historical volume
    if (h.left > 0) {
      apply(core::CancelOrder{account, ref}, time_ns);
    } else {
      stats_.history_events_skipped += 1;
    }
    return;
  }
  if (h.left <= 0) {
    stats_.history_events_skipped += 1;
  } else if (target < h.left) {
    apply(core::AmendOrder{account, ref, h.price, core::Lots(target)}, time_ns);
  }
}

void ExactLobsterVenue::history_event(const core::Event& e, const LobsterMessage& m) {
  std::int64_t t = e.header.timestamp_ns;
  if (const auto* a = std::get_if<core::AmendOrder>(&e.body)) {
    reduce_historical(a->account, a->ref, a->new_volume_left.value, t);
    return;
  }
  if (const auto* c = std::get_if<core::CancelOrder>(&e.body)) {
    std::uint64_t client = raw(c->ref.client_order_id);
    if (m.type == LobsterType::kDelete && client == m.order_id) {  // the owner cancels it all
      Historical& h = historical_[client];
      pending_absorbed_ = 0;
      h.delta = 0;
      if (h.left > 0) {
        apply(*c, t);
      } else {
        stats_.history_events_skipped += 1;
      }
      return;
    }
    reduce_historical(c->account, c->ref, 0, t);
    return;
  }
  apply(e.body, t);
}

Status ExactLobsterVenue::on_message(const LobsterMessage& m, const LobsterRow& row) {
  std::int64_t t = config_.lobster.day_start_ns + m.time_ns;
  if (ready_) advance_to(t - 1);
  scratch_.clear();
  Status s = book_.step(m, row, scratch_);
  if (!s.ok()) return s;
  pending_absorbed_ = 0;
  if (ready_ && m.type == LobsterType::kExecuteVisible) {
    std::int64_t p = m.price / config_.lobster.tick_units;
    auto x = historical_.find(m.order_id);
    std::optional<core::OrderId> xid;
    if (x != historical_.end() && x->second.left > 0) xid = x->second.engine_id;
    std::int64_t ahead = strategy_ahead(m.direction, p, xid);
    std::int64_t lots = std::min(ahead, m.size);
    if (lots > 0) {
      core::NewOrder o;
      o.account = takers_account();
      o.instrument = book_.instrument();
      o.client_order_id = core::ClientOrderId{next_taker_++};
      o.direction = opposite(m.direction);
      o.offset = core::Offset::kOpen;
      o.price_type = core::PriceType::kLimit;
      o.price = core::PriceTicks(p);
      o.volume = core::Lots(lots);
      o.time_condition = core::TimeCondition::kIoc;
      o.volume_condition = core::VolumeCondition::kAny;
      apply(o, t);
      std::int64_t traded = 0;
      for (const core::Effect& e : effects_) {
        if (e.kind != core::EffectKind::kTrade) continue;
        traded += e.volume.value;
        if (e.counter_account == strategy_account()) {
          stats_.absorbed_lots += static_cast<std::uint64_t>(e.volume.value);
        }
      }
      pending_absorbed_ = traded;
    }
  }
  for (const core::Event& e : scratch_) history_event(e, m);
  pending_absorbed_ = 0;
  if (!ready_) {
    apply(core::CreateUser{"strategy"}, t);
    apply(core::CreateUser{"takers"}, t);
    apply(core::CreateAccount{core::UserId{1}, "strategy"}, t);
    apply(core::CreateAccount{core::UserId{2}, "takers"}, t);
    if (config_.strategy_deposit.value > 0) {
      apply(core::Deposit{strategy_account(), config_.strategy_deposit}, t);
    }
    apply(core::Deposit{takers_account(), core::Money(kTakersDeposit)}, t);
    if (config_.params) {
      core::InstrumentParams p = *config_.params;
      if (p.position_limit.value == 0) {
        p.position_limit = engine_.instrument(book_.instrument()).params.position_limit;
      }
      apply(core::UpdateInstrument{book_.instrument(), p}, t);
    }
    ready_ = true;
  }
  return Status{};
}

std::uint64_t ExactLobsterVenue::submit(std::int64_t time_ns, core::Direction d,
                                        core::Offset offset, std::int64_t price_ticks,
                                        std::int64_t volume) {
  return actions_.submit(time_ns, d, offset, price_ticks, volume);
}

void ExactLobsterVenue::cancel(std::int64_t time_ns, std::uint64_t order) {
  actions_.cancel(time_ns, order);
}

void ExactLobsterVenue::advance_to(std::int64_t time_ns) {
  if (!ready_) return;
  actions_.release(time_ns, [&](std::int64_t at, const StrategyAction& a) { arrive(at, a); });
  now_ = std::max(now_, time_ns);
}

void ExactLobsterVenue::arrive(std::int64_t time_ns, const StrategyAction& a) {
  if (a.cancel) {
    if (!working_.contains(a.order)) return;
    apply(core::CancelOrder{strategy_account(),
                            core::OrderRef{std::nullopt, core::ClientOrderId{a.order}}},
          time_ns);
    return;
  }
  working_[a.order] = Working{a.direction, a.price, a.volume, core::OrderId{}};
  core::NewOrder o;
  o.account = strategy_account();
  o.instrument = book_.instrument();
  o.client_order_id = core::ClientOrderId{a.order};
  o.direction = a.direction;
  o.offset = a.offset;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(a.price);
  o.volume = core::Lots(a.volume);
  o.time_condition = core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  apply(o, time_ns);
}

}  // namespace qx::sim
