// Trading sessions and call auctions (docs/semantics.md, "Sessions and call auctions").
//
// An instrument's schedule is a list of (seconds after local midnight, phase), repeating every
// day. The engine keeps, per scheduled instrument, the time of its next boundary in one ordered
// set; before an event is applied, every instrument whose boundary the event's timestamp has
// reached moves to the phase its schedule gives at that timestamp (one change however many
// boundaries passed: no event could enter between them). So a phase change costs O(log I) and an
// event with none due one comparison.
//
// Leaving AUCTION uncrosses the book: the auction price is the price that maximises the volume
// matched, then minimises the volume left unmatched at it, then is the nearest to the reference
// price (the mark: last trade, else previous settlement), then the lower. Orders are matched at
// that price in price-time priority, the later of each pair acting as the incoming order (its
// self-trade prevention applies; it is the trade's taker).
#include "core/sessions.h"

#include <algorithm>
#include <vector>

#include "core/assert.h"
#include "core/engine.h"
#include "core/numeric.h"

namespace qx::core {

namespace {

constexpr std::int64_t kSecondNs = 1'000'000'000;
constexpr std::int64_t kDayNs = 86'400 * kSecondNs;

// Timestamps are journaled values, not trusted: local time and boundaries are computed in 128
// bits, where any int64 timestamp, offset and day fit.
i128 local_time(const SessionSchedule& s, std::int64_t t_ns) {
  return static_cast<i128>(t_ns) + static_cast<i128>(s.utc_offset_s) * kSecondNs;
}

// Nanoseconds since local midnight of local time `local` (floor, also before 1970).
i128 time_of_day(i128 local) {
  const i128 r = local % kDayNs;
  return r < 0 ? r + kDayNs : r;
}

}  // namespace

bool session_ok(const SessionSchedule& s) {
  if (s.utc_offset_s < -kUtcOffsetMax || s.utc_offset_s > kUtcOffsetMax) return false;
  if (s.entries.size() > kSessionEntriesMax) return false;
  for (std::size_t i = 0; i < s.entries.size(); ++i) {
    const SessionEntry& e = s.entries[i];
    if (e.start_s >= 86'400 || !phase_ok(e.phase)) return false;
    if (i > 0 && e.start_s <= s.entries[i - 1].start_s) return false;
  }
  return true;
}

TradingPhase phase_at(const SessionSchedule& s, std::int64_t t_ns) {
  if (s.entries.empty()) return TradingPhase::kContinuous;
  const i128 tod = time_of_day(local_time(s, t_ns));
  TradingPhase phase = s.entries.back().phase;  // before the first start: yesterday's last
  for (const SessionEntry& e : s.entries) {
    if (static_cast<i128>(e.start_s) * kSecondNs > tod) break;
    phase = e.phase;
  }
  return phase;
}

std::int64_t next_phase_change(const SessionSchedule& s, std::int64_t t_ns) {
  if (s.entries.empty()) return kNoPhaseChange;
  const i128 local = local_time(s, t_ns);
  const i128 tod = time_of_day(local);
  const i128 midnight = local - tod;
  i128 next = midnight + kDayNs + static_cast<i128>(s.entries[0].start_s) * kSecondNs;
  for (const SessionEntry& e : s.entries) {
    const i128 start = static_cast<i128>(e.start_s) * kSecondNs;
    if (start > tod) {
      next = midnight + start;
      break;
    }
  }
  // Back to UTC. A boundary past the int64 range (the year 2262) never comes.
  const i128 utc = next - static_cast<i128>(s.utc_offset_s) * kSecondNs;
  QX_ASSERT(utc > t_ns);
  return utc >= kNoPhaseChange ? kNoPhaseChange : static_cast<std::int64_t>(utc);
}

void Engine::on(const SetSession& e) {
  if (raw(e.instrument) >= instruments_.size()) {
    return admin_reject(RejectReason::kUnknownInstrument);
  }
  Instrument& ins = ins_at(e.instrument);
  if (ins.s.status == InstrumentStatus::kDelisted) {
    return admin_reject(RejectReason::kInstrumentDelisted);
  }
  if (!session_ok(e.schedule)) return admin_reject(RejectReason::kInvalidParameter);
  end_session(ins);  // the new schedule books its own next change
  ins.s.session = e.schedule;
  Effect f{};
  f.kind = EffectKind::kSessionSet;
  f.instrument = e.instrument;
  emit(f);
  enter_phase(ins, header_->timestamp_ns);
}

void Engine::advance_sessions(std::int64_t now) {
  while (!phase_changes_.empty() && phase_changes_.begin()->first <= now) {
    const std::uint32_t id = phase_changes_.begin()->second;
    phase_changes_.erase(phase_changes_.begin());
    enter_phase(instruments_[id], now);
  }
}

void Engine::enter_phase(Instrument& ins, std::int64_t now) {
  const TradingPhase from = ins.s.phase;
  const TradingPhase to = phase_at(ins.s.session, now);
  ins.s.next_phase_ns = next_phase_change(ins.s.session, now);
  book_phase_change(ins);
  if (from == to) return;
  ins.s.phase = to;
  Effect f{};
  f.kind = EffectKind::kPhaseChanged;
  f.instrument = InstrumentId(index_of(ins));
  f.reason = raw(to);
  f.amount = Money(raw(from));
  emit(f);
  if (from == TradingPhase::kAuction) uncross(ins);
  // Stops wait outside continuous trading; back in it, those reached meanwhile fire.
  if (to == TradingPhase::kContinuous) note_moved(ins);
}

void Engine::book_phase_change(Instrument& ins) {
  if (ins.s.next_phase_ns == kNoPhaseChange) return;
  phase_changes_.emplace(ins.s.next_phase_ns, index_of(ins));
}

void Engine::end_session(Instrument& ins) {
  phase_changes_.erase({ins.s.next_phase_ns, index_of(ins)});
  ins.s.next_phase_ns = kNoPhaseChange;
}

std::optional<RejectReason> Engine::phase_refuses(const Instrument& ins, const NewOrder& e) {
  switch (ins.s.phase) {
    case TradingPhase::kContinuous: return std::nullopt;
    case TradingPhase::kAuction: {
      // A stop waits outside the book; its order meets the phase of the moment it fires.
      if (e.trigger) return std::nullopt;
      const bool limit_day = e.price_type == PriceType::kLimit &&
                             e.time_condition != TimeCondition::kIoc &&
                             e.volume_condition == VolumeCondition::kAny && !e.post_only;
      if (!limit_day) return RejectReason::kAuctionOrderType;
      return std::nullopt;
    }
    case TradingPhase::kPreOpen:
    case TradingPhase::kBreak:
    case TradingPhase::kClosed: return RejectReason::kMarketClosed;
  }
  return RejectReason::kMarketClosed;
}

// Candidates: every price of a level inside the crossed range [best ask, best bid], the ticks next
// to them, and the reference price. Between two adjacent level prices the bought and sold volumes
// are constant, so every run of equally good prices ends at a level price or next to one, and
// the price nearest the reference within a run is the reference itself or such an end.
std::optional<std::pair<PriceTicks, Lots>> Engine::auction_price(const Instrument& ins) const {
  const BookSide& bids = ins.book.bids;
  const BookSide& asks = ins.book.asks;
  if (bids.empty() || asks.empty()) return std::nullopt;
  const PriceTicks lo = asks.best_price();
  const PriceTicks hi = bids.best_price();
  if (hi < lo) return std::nullopt;
  std::vector<std::pair<PriceTicks, Lots>> buy, sell;  // levels inside [lo, hi]
  bids.for_each_level([&](PriceTicks p, const Level& l) {
    if (p < lo) return false;
    buy.emplace_back(p, l.volume);  // descending
    return true;
  });
  asks.for_each_level([&](PriceTicks p, const Level& l) {
    if (p > hi) return false;
    sell.emplace_back(p, l.volume);  // ascending
    return true;
  });
  const PriceTicks ref = ins.s.last_price.value_or(ins.s.pre_settlement);
  std::vector<PriceTicks> candidates;
  auto add = [&](PriceTicks p) {
    if (p >= lo && p <= hi) candidates.push_back(p);
  };
  for (const auto* side : {&buy, &sell}) {
    for (const auto& [p, v] : *side) {
      add(p);
      add(PriceTicks(p.value - 1));
      add(PriceTicks(p.value + 1));
    }
  }
  add(ref);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

  // Ascending candidates: bought = bids at or above p (drops as p rises), sold = asks at or below
  // p (grows as p rises).
  std::reverse(buy.begin(), buy.end());  // ascending
  i128 bought = 0;
  for (const auto& level : buy) bought += level.second.value;
  i128 sold = 0;
  std::size_t b = 0;
  std::size_t s = 0;
  struct Best {
    PriceTicks price;
    i128 volume = -1, surplus = 0, distance = 0;
  } best;
  for (PriceTicks p : candidates) {
    while (b < buy.size() && buy[b].first < p) bought -= buy[b++].second.value;
    while (s < sell.size() && sell[s].first <= p) sold += sell[s++].second.value;
    const i128 volume = std::min(bought, sold);
    const i128 surplus = bought > sold ? bought - sold : sold - bought;
    const i128 distance = p > ref ? p.value - ref.value : ref.value - p.value;
    const bool better =
        volume != best.volume
            ? volume > best.volume
            : (surplus != best.surplus ? surplus < best.surplus : distance < best.distance);
    if (better) best = {p, volume, surplus, distance};  // ties keep the lower price
  }
  QX_ASSERT(best.volume > 0);
  return std::pair{best.price,
                   Lots(static_cast<std::int64_t>(std::min<i128>(best.volume, kInt64Max)))};
}

void Engine::uncross(Instrument& ins) {
  if (ins.s.status != InstrumentStatus::kTrading || ins.s.phase == TradingPhase::kAuction) return;
  while (auto found = auction_price(ins)) {
    const auto [price, volume] = *found;
    Effect f{};
    f.kind = EffectKind::kAuctionUncrossed;
    f.instrument = InstrumentId(index_of(ins));
    f.price = price;
    f.volume = volume;
    emit(f);
    // Each pass trades or cancels at least one order, so the loop and the rounds end.
    while (!ins.book.bids.empty() && !ins.book.asks.empty() &&
           ins.book.bids.best_price() >= price && ins.book.asks.best_price() <= price) {
      const OrderHandle bh = ins.book.bids.best().head;
      const OrderHandle ah = ins.book.asks.best().head;
      const bool buy_later = orders_[bh].id > orders_[ah].id;
      const OrderHandle th = buy_later ? bh : ah;
      const OrderHandle mh = buy_later ? ah : bh;
      Order& t = orders_[th];
      Order& m = orders_[mh];
      if (self_trade(t, m)) {
        const StpMode mode = t.stp.mode;
        if (mode != StpMode::kCancelNewest) cancel_resting(mh, CancelReason::kSelfTradePrevention);
        if (mode != StpMode::kCancelOldest) cancel_resting(th, CancelReason::kSelfTradePrevention);
        continue;
      }
      if (!fill_fits(acc_at(t.account))) {
        cancel_resting(th, CancelReason::kMoneyLimit);
        continue;
      }
      if (!fill_fits(acc_at(m.account))) {
        cancel_resting(mh, CancelReason::kMoneyLimit);
        continue;
      }
      const Lots v = std::min(t.volume_left, m.volume_left);
      ins.book.bids.best().volume -= v;
      ins.book.asks.best().volume -= v;
      trade(t, m, ins, price, v);
      for (OrderHandle h : {bh, ah}) {
        if (orders_[h].volume_left.value != 0) continue;
        BookSide& side = ins.book.side(orders_[h].direction);
        Level* l = side.find(orders_[h].price);
        QX_ASSERT(l != nullptr);
        BookSide::unlink(*l, orders_, h, Lots{0});
        if (l->count == 0) side.erase(orders_[h].price);
        finish(h, ins, std::nullopt);
      }
    }
  }
}

}  // namespace qx::core
