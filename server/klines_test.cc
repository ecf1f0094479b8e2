// Hand-checked K-line examples (server/klines.h); the general properties are in
// tests/property/klines_properties_test.cc.
#include "server/klines.h"

#include <gtest/gtest.h>

namespace qx::server {
namespace {

constexpr std::int64_t kMin = 60'000'000'000;
constexpr std::int64_t kDay = 1440 * kMin;
// 2025-01-02 09:30:00 UTC.
constexpr std::int64_t kT0 = 1'735'810'200'000'000'000;

TEST(Klines, OneMinuteBarsOpenHighLowCloseVolume) {
  Klines k;
  k.on_trade(7, kT0 + 1'000'000'000, 19000, 2);         // 09:30:01
  k.on_trade(7, kT0 + 30 * 1'000'000'000LL, 19010, 1);  // 09:30:30
  k.on_trade(7, kT0 + 59 * 1'000'000'000LL, 18990, 3);  // 09:30:59
  k.on_trade(7, kT0 + kMin, 19005, 4);                  // 09:31:00: a new bar
  const auto bars = k.query(7, Period::k1m, 10);
  ASSERT_EQ(bars.size(), 2u);
  EXPECT_EQ(bars[0], (Kline{kT0, 19000, 19010, 18990, 18990, 6, 3}));
  EXPECT_EQ(bars[1], (Kline{kT0 + kMin, 19005, 19005, 19005, 19005, 4, 1}));
  const auto five = k.query(7, Period::k5m, 10);  // 09:30 is a 5-minute boundary
  ASSERT_EQ(five.size(), 1u);
  EXPECT_EQ(five[0], (Kline{kT0, 19000, 19010, 18990, 19005, 10, 4}));
  const auto day = k.query(7, Period::k1d, 10);
  ASSERT_EQ(day.size(), 1u);
  EXPECT_EQ(day[0].start_ns, kT0 - 9 * 60 * kMin - 30 * kMin);  // 00:00 UTC
  EXPECT_TRUE(k.query(8, Period::k1m, 10).empty());
  EXPECT_EQ(k.query(7, Period::k1m, 1).front().start_ns, kT0 + kMin);  // the newest
}

TEST(Klines, HistoryAndLiveMergeTheStraddlingBar) {
  Klines history, live;
  history.on_trade(1, kT0 + 10'000'000'000, 100, 1);
  live.on_trade(1, kT0 + 20'000'000'000, 120, 2);  // same minute, after the restart
  live.on_trade(1, kT0 + kDay, 90, 1);
  live.absorb_history(history);
  const auto bars = live.query(1, Period::k1m, 10);
  ASSERT_EQ(bars.size(), 2u);
  EXPECT_EQ(bars[0], (Kline{kT0, 100, 120, 100, 120, 3, 2}));
  EXPECT_EQ(live.query(1, Period::k1d, 10).size(), 2u);
}

TEST(Klines, KeepsTheNewestBars) {
  Klines k;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(Klines::kKeep) + 5; ++i) {
    k.on_trade(0, kT0 + i * kMin, 100 + i, 1);
  }
  const auto bars = k.query(0, Period::k1m, 1'000'000);
  ASSERT_EQ(bars.size(), Klines::kKeep);
  EXPECT_EQ(bars.front().open, 105);
}

TEST(Klines, PeriodsParseAndPrint) {
  for (Period p : kPeriods) EXPECT_EQ(parse_period(to_string(p)), p);
  EXPECT_FALSE(parse_period("2m").has_value());
  EXPECT_EQ(period_ns(Period::k5m), 5 * kMin);
}

}  // namespace
}  // namespace qx::server
