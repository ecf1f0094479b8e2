// The reference model's trading sessions and call auctions, from docs/semantics.md ("Sessions and
// call auctions") alone: a schedule is read by scanning its entries, the next boundary by trying
// today's and tomorrow's starts, the auction price by evaluating every candidate price against
// every resting order.
#include <algorithm>
#include <limits>
#include <vector>

#include "tests/property/model.h"

namespace qx::property {
namespace {

__extension__ typedef __int128 Wide;

using core::Direction;
using core::Effect;
using core::EffectKind;
using core::RejectReason;
using core::TradingPhase;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kDay = 86'400 * kSecond;

// Seconds-resolution local time of day in nanoseconds, and local midnight, of UTC time t.
std::int64_t local_midnight(const core::SessionSchedule& s, std::int64_t t) {
  const std::int64_t local = t + std::int64_t{s.utc_offset_s} * kSecond;
  std::int64_t day = local / kDay;
  if (local % kDay < 0) day -= 1;
  return day * kDay;
}

// The phase in force at t: the last entry started at or before t's local time of day; before the
// first entry, the last one (it runs on past midnight).
TradingPhase phase_at(const core::SessionSchedule& s, std::int64_t t) {
  if (s.entries.empty()) return TradingPhase::kContinuous;
  const std::int64_t local = t + std::int64_t{s.utc_offset_s} * kSecond;
  const std::int64_t tod = local - local_midnight(s, t);
  TradingPhase p = s.entries.back().phase;
  for (const core::SessionEntry& e : s.entries) {
    if (std::int64_t{e.start_s} * kSecond <= tod) p = e.phase;
  }
  return p;
}

// The earliest entry start, today or tomorrow (local), strictly after t.
std::int64_t next_boundary(const core::SessionSchedule& s, std::int64_t t) {
  const std::int64_t midnight = local_midnight(s, t);
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t day : {std::int64_t{0}, kDay}) {
    for (const core::SessionEntry& e : s.entries) {
      const std::int64_t at = midnight + day + std::int64_t{e.start_s} * kSecond -
                              std::int64_t{s.utc_offset_s} * kSecond;
      if (at > t) best = std::min(best, at);
    }
  }
  return best;
}

bool schedule_ok(const core::SessionSchedule& s) {
  if (s.utc_offset_s < -18 * 3600 || s.utc_offset_s > 18 * 3600 || s.entries.size() > 16) {
    return false;
  }
  for (std::size_t i = 0; i < s.entries.size(); ++i) {
    const int phase = static_cast<int>(s.entries[i].phase);
    if (s.entries[i].start_s >= 86'400 || phase < 1 || phase > 5) return false;
    if (i > 0 && s.entries[i].start_s <= s.entries[i - 1].start_s) return false;
  }
  return true;
}

}  // namespace

void Model::on(const core::SetSession& e, std::vector<Effect>& out) {
  auto reject = [&](RejectReason r) {
    Effect f;
    f.kind = EffectKind::kAdminRejected;
    f.reason = static_cast<std::uint16_t>(r);
    out.push_back(f);
  };
  const std::uint32_t id = core::raw(e.instrument);
  if (id >= instruments_.size()) return reject(RejectReason::kUnknownInstrument);
  if (instruments_[id].status == core::InstrumentStatus::kDelisted) {
    return reject(RejectReason::kInstrumentDelisted);
  }
  if (!schedule_ok(e.schedule)) return reject(RejectReason::kInvalidParameter);
  instruments_[id].session = e.schedule;
  Effect f;
  f.kind = EffectKind::kSessionSet;
  f.instrument = e.instrument;
  out.push_back(f);
  enter_phase(id, now_, out);
}

// Every instrument whose next boundary the time has reached changes phase, earliest boundary
// first (then instrument id), before the event itself.
void Model::advance_sessions(std::int64_t now, std::vector<Effect>& out) {
  std::vector<std::pair<std::int64_t, std::uint32_t>> due;
  for (std::uint32_t i = 0; i < instruments_.size(); ++i) {
    const auto& next = instruments_[i].next_change;
    if (next && *next <= now) due.emplace_back(*next, i);
  }
  std::sort(due.begin(), due.end());
  for (const auto& [at, id] : due) enter_phase(id, now, out);
}

void Model::enter_phase(std::uint32_t id, std::int64_t now, std::vector<Effect>& out) {
  Instrument& ins = instruments_[id];
  ins.next_change.reset();
  if (!ins.session.entries.empty()) ins.next_change = next_boundary(ins.session, now);
  const TradingPhase from = ins.phase;
  const TradingPhase to = phase_at(ins.session, now);
  if (from == to) return;
  ins.phase = to;
  Effect f;
  f.kind = EffectKind::kPhaseChanged;
  f.instrument = core::InstrumentId(id);
  f.reason = static_cast<std::uint16_t>(to);
  f.amount = core::Money(static_cast<std::int64_t>(from));
  out.push_back(f);
  if (from == TradingPhase::kAuction) uncross(id, out);
}

std::optional<RejectReason> Model::phase_refuses(const Instrument& ins, const core::NewOrder& e) {
  switch (ins.phase) {
    case TradingPhase::kContinuous: return std::nullopt;
    case TradingPhase::kAuction:
      if (e.trigger) return std::nullopt;
      if (e.price_type != core::PriceType::kLimit ||
          e.time_condition == core::TimeCondition::kIoc ||
          e.volume_condition == core::VolumeCondition::kAll || e.post_only) {
        return RejectReason::kAuctionOrderType;
      }
      return std::nullopt;
    default: return RejectReason::kMarketClosed;
  }
}

// The call auction's uncrossing, round after round while the book crosses: the price by the
// four rules, then matching at it, the later order of each pair (by id) as the taker.
void Model::uncross(std::uint32_t id, std::vector<Effect>& out) {
  const Instrument& ins = instruments_[id];
  if (ins.status != core::InstrumentStatus::kTrading || ins.phase == TradingPhase::kAuction) return;
  for (;;) {
    std::optional<std::int64_t> hi, lo;
    for (const ModelOrder& o : resting_) {
      if (o.instrument != id) continue;
      if (o.direction == Direction::kBuy) hi = std::max(hi.value_or(o.price), o.price);
      if (o.direction == Direction::kSell) lo = std::min(lo.value_or(o.price), o.price);
    }
    if (!hi || !lo || *hi < *lo) return;
    const std::int64_t ref = mark_price(ins);
    // Every price from the best ask to the best bid, as the rule reads. A range too wide to walk
    // (a price near the ceiling) takes the prices of the orders, the ticks next to them and the
    // reference: equally good prices come in runs between order prices, so the one nearest the
    // reference is the reference or the end of such a run.
    std::vector<std::int64_t> candidates;
    if (*hi - *lo <= 100'000) {
      for (std::int64_t p = *lo; p <= *hi; ++p) candidates.push_back(p);
    } else {
      candidates.push_back(ref);
      for (const ModelOrder& o : resting_) {
        if (o.instrument != id) continue;
        for (std::int64_t p : {o.price - 1, o.price, o.price + 1}) candidates.push_back(p);
      }
    }
    std::optional<std::int64_t> price;
    Wide best_volume = 0, best_surplus = 0, best_distance = 0;
    for (std::int64_t p : candidates) {
      if (p < *lo || p > *hi) continue;
      Wide bought = 0, sold = 0;
      for (const ModelOrder& o : resting_) {
        if (o.instrument != id) continue;
        if (o.direction == Direction::kBuy && o.price >= p) bought += o.volume_left;
        if (o.direction == Direction::kSell && o.price <= p) sold += o.volume_left;
      }
      const Wide volume = std::min(bought, sold);
      const Wide surplus = bought > sold ? bought - sold : sold - bought;
      const Wide distance = p > ref ? p - ref : ref - p;
      bool take = false;
      if (!price) {
        take = true;
      } else if (volume != best_volume) {
        take = volume > best_volume;
      } else if (surplus != best_surplus) {
        take = surplus < best_surplus;
      } else if (distance != best_distance) {
        take = distance < best_distance;
      } else {
        take = p < *price;
      }
      if (take) {
        price = p;
        best_volume = volume;
        best_surplus = surplus;
        best_distance = distance;
      }
    }
    Effect u;
    u.kind = EffectKind::kAuctionUncrossed;
    u.instrument = core::InstrumentId(id);
    u.price = core::PriceTicks(*price);
    u.volume = core::Lots(static_cast<std::int64_t>(best_volume));
    out.push_back(u);
    for (;;) {
      std::optional<std::size_t> b = best(id, Direction::kBuy);
      std::optional<std::size_t> a = best(id, Direction::kSell);
      if (!b || !a || resting_[*b].price < *price || resting_[*a].price > *price) break;
      const bool buy_later = resting_[*b].id > resting_[*a].id;
      const std::uint64_t taker_id = resting_[buy_later ? *b : *a].id;
      const std::uint64_t maker_id = resting_[buy_later ? *a : *b].id;
      auto index_of = [&](std::uint64_t order) {
        for (std::size_t k = 0; k < resting_.size(); ++k) {
          if (resting_[k].id == order) return k;
        }
        return resting_.size();
      };
      const ModelOrder& t = resting_[index_of(taker_id)];
      const ModelOrder& m = resting_[index_of(maker_id)];
      if (same_owner(t.stp, t.account, m.account)) {
        const core::StpMode mode = t.stp.mode;
        if (mode != core::StpMode::kCancelNewest) {
          remove_resting(index_of(maker_id), core::CancelReason::kSelfTradePrevention, out);
        }
        if (mode != core::StpMode::kCancelOldest) {
          remove_resting(index_of(taker_id), core::CancelReason::kSelfTradePrevention, out);
        }
        continue;
      }
      if (money_full(t.account)) {
        remove_resting(index_of(taker_id), core::CancelReason::kMoneyLimit, out);
        continue;
      }
      if (money_full(m.account)) {
        remove_resting(index_of(maker_id), core::CancelReason::kMoneyLimit, out);
        continue;
      }
      ModelOrder& taker = resting_[index_of(taker_id)];
      ModelOrder& maker = resting_[index_of(maker_id)];
      const std::int64_t lots = std::min(taker.volume_left, maker.volume_left);
      record_trade(taker, maker, *price, lots, out);
      for (std::uint64_t order : {taker_id, maker_id}) {
        const std::size_t k = index_of(order);
        if (resting_[k].volume_left == 0) {
          resting_.erase(resting_.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
    }
  }
}

}  // namespace qx::property
