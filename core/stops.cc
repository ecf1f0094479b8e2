// Stop and take-profit orders (docs/semantics.md, "Stop orders").
//
// A stop is a NewOrder with a trigger. It is checked like an order at placement but holds nothing
// (no margin, fee or position volume is frozen) and is not in the book; it waits in its
// instrument's trigger sets, ordered by trigger price, one set per reference price (LAST, MARK)
// and per way of firing (rising: buy STOP, sell TAKE_PROFIT; falling: sell STOP, buy
// TAKE_PROFIT).
//
// After an event has done its own work (and its liquidations), every pending stop whose
// instrument's reference price has reached its trigger price is hit: it leaves the trigger sets
// and waits with the others hit. The oldest hit stop (lowest id) is then triggered: a
// STOP_TRIGGERED effect, and its order is entered exactly as a new order at that moment (checks,
// funds frozen now, matching). Its trades may hit more stops; the loop goes on until none is
// waiting. Each stop is hit once, so an event's cost is bounded by the stops it fires.
#include "core/assert.h"
#include "core/engine.h"

namespace qx::core {

namespace {

bool reached(bool rising, PriceTicks reference, PriceTicks trigger) {
  return rising ? reference >= trigger : reference <= trigger;
}

}  // namespace

// STOP_ACCEPTED / STOP_TRIGGERED: the request's fields, the stop's id, amount = the trigger
// price, reason = kind | source << 8.
Effect Engine::stop_effect(EffectKind k, const StopState& s) {
  const StopTrigger& t = *s.order.trigger;
  Effect f = request_effect(k, s.order);
  f.order = s.id;
  f.volume_left = s.order.volume;
  f.amount = Money(t.price.value);
  f.reason = static_cast<std::uint16_t>(raw(t.kind) | raw(t.source) << 8);
  return f;
}

std::optional<PriceTicks> Engine::reference(const Instrument& ins, TriggerSource s) {
  if (s == TriggerSource::kLast) return ins.s.last_price;
  return ins.s.last_price.value_or(ins.s.pre_settlement);
}

void Engine::place_stop(const NewOrder& e) {
  auto reject = [&](RejectReason r) { reject_order(e, r); };
  if (auto why = check_request(e)) return reject(*why);
  const StopTrigger& t = *e.trigger;
  if (e.price_type == PriceType::kBest) return reject(RejectReason::kInvalidCombination);
  const Instrument& ins = ins_at(e.instrument);
  auto valid = [&](PriceTicks p) { return p.value > 0 && p <= ins.s.price_max; };
  if ((e.price_type == PriceType::kLimit && !valid(e.price)) || !valid(t.price)) {
    return reject(RejectReason::kInvalidPrice);
  }
  const bool rising = fires_rising(e.direction, t.kind);
  if (auto ref = reference(ins, t.source); ref && reached(rising, *ref, t.price)) {
    return reject(RejectReason::kStopWouldTrigger);
  }
  StopState s;
  s.id = OrderId(next_order_id_++);
  s.order = e;
  if (e.price_type != PriceType::kLimit) s.order.price = PriceTicks{0};
  s.insert_time_ns = header_->timestamp_ns;
  index_stop(s);
  stops_.emplace(s.id, s);

  emit(stop_effect(EffectKind::kStopAccepted, s));
}

void Engine::index_stop(const StopState& s) {
  const NewOrder& e = s.order;
  const bool rising = fires_rising(e.direction, e.trigger->kind);
  QX_ASSERT(ins_at(e.instrument)
                .triggers[raw(e.trigger->source) - 1][rising ? 1 : 0]
                .emplace(e.trigger->price, s.id)
                .second);
  if (raw(e.client_order_id) != 0) {
    QX_ASSERT(stop_clients_.emplace(std::pair{e.account, e.client_order_id}, s.id).second);
  }
  acc_at(e.account).stops += 1;
}

void Engine::unindex_stop(const StopState& s) {
  const NewOrder& e = s.order;
  const bool rising = fires_rising(e.direction, e.trigger->kind);
  QX_ASSERT(ins_at(e.instrument)
                .triggers[raw(e.trigger->source) - 1][rising ? 1 : 0]
                .erase({e.trigger->price, s.id}) == 1);
  if (raw(e.client_order_id) != 0) {
    QX_ASSERT(stop_clients_.erase({e.account, e.client_order_id}) == 1);
  }
  Account& a = acc_at(e.account);
  QX_ASSERT(a.stops > 0);
  a.stops -= 1;
}

std::optional<OrderId> Engine::resolve_stop(AccountId a, const OrderRef& ref) const {
  if (ref.order_id) {
    if (stops_.contains(*ref.order_id)) return *ref.order_id;
    return std::nullopt;
  }
  if (raw(ref.client_order_id) == 0) return std::nullopt;
  auto it = stop_clients_.find({a, ref.client_order_id});
  if (it == stop_clients_.end()) return std::nullopt;
  return it->second;
}

void Engine::cancel_stop(OrderId id, CancelReason why) {
  auto it = stops_.find(id);
  QX_ASSERT(it != stops_.end());
  const StopState s = std::move(it->second);
  stops_.erase(it);
  unindex_stop(s);
  Effect f = request_effect(EffectKind::kOrderCancelled, s.order);
  f.reason = static_cast<std::uint16_t>(why);
  f.order = s.id;
  f.volume_left = s.order.volume;
  emit(f);
}

void Engine::collect_hits() {
  for (std::uint32_t i : moved_) {
    Instrument& ins = instruments_[i];
    ins.moved = false;
    // Stops wait outside continuous trading (entering it marks the instrument moved again).
    if (ins.s.phase != TradingPhase::kContinuous) continue;
    for (TriggerSource source : {TriggerSource::kLast, TriggerSource::kMark}) {
      auto ref = reference(ins, source);
      if (!ref) continue;
      auto& sets = ins.triggers[raw(source) - 1];
      std::vector<OrderId> hit;
      for (auto it = sets[1].begin(); it != sets[1].end() && reached(true, *ref, it->first); ++it) {
        hit.push_back(it->second);
      }
      for (auto it = sets[0].rbegin(); it != sets[0].rend() && reached(false, *ref, it->first);
           ++it) {
        hit.push_back(it->second);
      }
      for (OrderId id : hit) {
        auto node = stops_.extract(id);
        QX_ASSERT(!node.empty());
        unindex_stop(node.mapped());
        hits_.emplace(id, std::pair{std::move(node.mapped()), *ref});
      }
    }
  }
  moved_.clear();
}

void Engine::trigger_stop(const StopState& s, PriceTicks at) {
  Effect f = stop_effect(EffectKind::kStopTriggered, s);
  f.price = at;
  emit(f);
  NewOrder e = s.order;
  e.trigger.reset();
  enter(e);
}

void Engine::settle_consequences() {
  for (;;) {
    if (!liquidation_queue_.empty()) run_liquidations();
    if (!moved_.empty()) collect_hits();
    if (hits_.empty()) return;
    auto node = hits_.extract(hits_.begin());
    trigger_stop(node.mapped().first, node.mapped().second);
  }
}

}  // namespace qx::core
