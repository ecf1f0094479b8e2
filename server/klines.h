// K-lines (candlesticks) of every instrument for 1 minute, 5 minutes and 1 day, derived from the
// engine's trade effects and the journaled event timestamps only, so any replay of the same
// journal derives the same bars.
//
//   Klines k;
//   k.on_event(event, effects);                       // every applied event, in journal order
//   auto bars = k.query(instrument, Period::k1m, 100);  // newest last
//
// Bars start at multiples of the period since the Unix epoch (UTC; the daily bar runs 00:00 to
// 24:00 UTC, not an exchange's trading session). Prices are ticks, volumes lots. A bar exists only
// when a trade happened in it. Each series keeps its newest `kKeep` bars.
//
// A running server feeds one Klines from the sequencer (events after start-up) while a background
// replay of the journal up to the start-up seq fills another; absorb_history() then joins them,
// merging the bar that straddles the boundary. complete() says whether that has happened.
//
// Thread-safe: one mutex; the sequencer thread writes, any thread reads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "core/effects.h"
#include "core/events.h"

namespace qx::server {

enum class Period : std::uint8_t { k1m = 0, k5m = 1, k1d = 2 };
inline constexpr std::array<Period, 3> kPeriods = {Period::k1m, Period::k5m, Period::k1d};
std::int64_t period_ns(Period p);
const char* to_string(Period p);  // "1m", "5m", "1d"
std::optional<Period> parse_period(std::string_view s);

struct Kline {
  std::int64_t start_ns = 0;
  std::int64_t open = 0, high = 0, low = 0, close = 0;  // ticks
  std::int64_t volume = 0;                              // lots
  std::uint32_t trades = 0;
  bool operator==(const Kline&) const = default;
};

class Klines {
 public:
  static constexpr std::size_t kKeep = 2000;

  void on_event(const core::Event& event, const core::EffectBuffer& effects);
  void on_trade(std::uint32_t instrument, std::int64_t ts_ns, std::int64_t price,
                std::int64_t volume);
  // The newest `count` bars (oldest first).
  [[nodiscard]] std::vector<Kline> query(std::uint32_t instrument, Period p,
                                         std::size_t count) const;
  // Puts `history` (bars of earlier events) before this object's bars.
  void absorb_history(const Klines& history);
  void set_complete() {
    std::lock_guard lock(mu_);
    complete_ = true;
  }
  [[nodiscard]] bool complete() const {
    std::lock_guard lock(mu_);
    return complete_;
  }

 private:
  using Series = std::deque<Kline>;
  mutable std::mutex mu_;
  // instrument -> one series per period; std::map so that any iteration is in id order.
  std::map<std::uint32_t, std::array<Series, kPeriods.size()>> series_;
  bool complete_ = false;
};

}  // namespace qx::server
