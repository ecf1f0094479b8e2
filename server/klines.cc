#include "server/klines.h"

#include <algorithm>

namespace qx::server {

namespace {

constexpr std::int64_t kMinuteNs = 60'000'000'000;

// The start of the bar of period `len` holding time t (floor division, also before 1970).
std::int64_t bar_start(std::int64_t t, std::int64_t len) {
  std::int64_t q = t / len;
  if (t % len != 0 && t < 0) q -= 1;
  return q * len;
}

// b's trades came after a's, in the same bar.
void merge_into(Kline& a, const Kline& b) {
  a.high = std::max(a.high, b.high);
  a.low = std::min(a.low, b.low);
  a.close = b.close;
  a.volume += b.volume;
  a.trades += b.trades;
}

}  // namespace

std::int64_t period_ns(Period p) {
  switch (p) {
    case Period::k1m: return kMinuteNs;
    case Period::k5m: return 5 * kMinuteNs;
    case Period::k1d: return 24 * 60 * kMinuteNs;
  }
  return kMinuteNs;
}

const char* to_string(Period p) {
  switch (p) {
    case Period::k1m: return "1m";
    case Period::k5m: return "5m";
    case Period::k1d: return "1d";
  }
  return "?";
}

std::optional<Period> parse_period(std::string_view s) {
  for (Period p : kPeriods) {
    if (s == to_string(p)) return p;
  }
  return std::nullopt;
}

void Klines::on_event(const core::Event& event, const core::EffectBuffer& effects) {
  for (const core::Effect& e : effects) {
    if (e.kind == core::EffectKind::kTrade) {
      on_trade(core::raw(e.instrument), event.header.timestamp_ns, e.price.value, e.volume.value);
    }
  }
}

void Klines::on_trade(std::uint32_t instrument, std::int64_t ts_ns, std::int64_t price,
                      std::int64_t volume) {
  std::lock_guard lock(mu_);
  auto& all = series_[instrument];
  for (Period p : kPeriods) {
    Series& s = all[static_cast<std::size_t>(p)];
    const std::int64_t start = bar_start(ts_ns, period_ns(p));
    // Journal timestamps never go backwards, so a trade belongs to the newest bar or a new one.
    if (!s.empty() && s.back().start_ns >= start) {
      merge_into(s.back(), Kline{start, price, price, price, price, volume, 1});
      continue;
    }
    s.push_back(Kline{start, price, price, price, price, volume, 1});
    if (s.size() > kKeep) s.pop_front();
  }
}

std::vector<Kline> Klines::query(std::uint32_t instrument, Period p, std::size_t count) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(instrument);
  if (it == series_.end()) return {};
  const Series& s = it->second[static_cast<std::size_t>(p)];
  const std::size_t n = std::min(count, s.size());
  return {s.end() - static_cast<std::ptrdiff_t>(n), s.end()};
}

void Klines::absorb_history(const Klines& history) {
  std::scoped_lock lock(mu_, history.mu_);
  for (const auto& [instrument, old] : history.series_) {
    auto& mine = series_[instrument];
    for (std::size_t i = 0; i < kPeriods.size(); ++i) {
      Series joined = old[i];
      for (const Kline& k : mine[i]) {
        if (!joined.empty() && joined.back().start_ns == k.start_ns) {
          merge_into(joined.back(), k);
        } else {
          joined.push_back(k);
        }
      }
      while (joined.size() > kKeep) joined.pop_front();
      mine[i] = std::move(joined);
    }
  }
}

}  // namespace qx::server
