// Tests of sim/exact.h on a hand-made level-1 day: the strategy's order keeps its place in the
// real queue, absorbs a historical execution it was ahead of, takes displayed liquidity that a
// later historical message then refers to, and the venue's journal replays to the same state.
#include "sim/exact.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace qx::sim {
namespace {

using core::Direction;
using core::Offset;

constexpr std::int64_t kS = 1'000'000'000;

ExactConfig exact_config() {
  ExactConfig c;
  c.lobster.instrument_code = "TEST";
  c.lobster.day_start_ns = 0;
  c.lobster.levels = 1;
  c.lobster.tick_units = 100;  // one cent
  c.strategy_deposit = core::Money(1'000'000 * core::kMoneyScale);
  return c;
}

void step(ExactLobsterVenue& v, const char* message, const char* row_text) {
  LobsterRow row;
  ASSERT_TRUE(parse_lobster_row(row_text, 1, row).ok()) << row_text;
  Status s = v.on_message(parse_lobster_message(message).value(), row);
  ASSERT_TRUE(s.ok()) << s.error().message;
}

TEST(ExactLobsterVenueTest, StrategyKeepsItsQueuePlaceAndHistoryAdapts) {
  ExactLobsterVenue v(exact_config());
  step(v, "1,1,1,10,10000,1", "10100,5,10000,10");  // bid 100 x 10 (order 1); ask 101 x 5 seeded
  std::uint64_t s1 = v.submit(1 * kS, Direction::kBuy, Offset::kOpen, 100, 3);  // behind 1
  step(v, "2,1,2,4,10000,1", "10100,5,10000,14");  // order 2 joins behind the strategy
  EXPECT_EQ(v.working(s1), 3);
  EXPECT_TRUE(v.fills().empty());

  step(v, "3,4,1,10,10000,1", "10100,5,10000,4");  // order 1 executed: nothing reaches us
  EXPECT_TRUE(v.fills().empty());
  EXPECT_EQ(v.stats().absorbed_lots, 0u);

  // Order 2 executed for 4: the strategy was ahead of it, so the taker met the strategy's 3
  // first; order 2 loses only 1 and keeps 3.
  step(v, "4,4,2,4,10000,1", "10100,5,-9999999999,0");
  ASSERT_EQ(v.fills().size(), 1u);
  EXPECT_EQ(v.fills()[0].order, s1);
  EXPECT_EQ(v.fills()[0].price.value, 100);
  EXPECT_EQ(v.fills()[0].volume.value, 3);
  EXPECT_FALSE(v.fills()[0].aggressive);
  EXPECT_EQ(v.fills()[0].mode, "exact");
  EXPECT_EQ(v.stats().absorbed_lots, 3u);
  EXPECT_EQ(v.working(s1), 0);
  core::BookView book = v.engine().book(core::InstrumentId{0}, 5);
  ASSERT_EQ(book.bids.size(), 1u);
  EXPECT_EQ(book.bids[0].price.value, 100);
  EXPECT_EQ(book.bids[0].volume.value, 3);

  // The strategy buys 2 of the 5 shown at 101; history then executes all 5 of that liquidity:
  // the 3 left go, the 2 the strategy already took are missing.
  std::uint64_t s2 = v.submit(4 * kS + 1, Direction::kBuy, Offset::kOpen, 101, 2);
  step(v, "5,4,999,5,10100,-1", "9999999999,0,-9999999999,0");
  ASSERT_EQ(v.fills().size(), 2u);
  EXPECT_EQ(v.fills()[1].order, s2);
  EXPECT_EQ(v.fills()[1].price.value, 101);
  EXPECT_EQ(v.fills()[1].volume.value, 2);
  EXPECT_TRUE(v.fills()[1].aggressive);
  EXPECT_EQ(v.stats().taken_from_history, 2u);
  EXPECT_EQ(v.stats().history_lots_missing, 2u);
  book = v.engine().book(core::InstrumentId{0}, 5);
  EXPECT_TRUE(book.asks.empty());
  ASSERT_EQ(book.bids.size(), 1u);
  EXPECT_EQ(book.bids[0].volume.value, 3);
  EXPECT_TRUE(v.rejects().empty());

  std::vector<core::PositionView> pos = v.engine().positions(ExactLobsterVenue::strategy_account());
  ASSERT_EQ(pos.size(), 1u);
  EXPECT_EQ(pos[0].long_side.today.value, 5);
  v.engine().check_invariants();

  // The venue's events are the backtest's journal: a fresh engine reaches the same state.
  core::Engine fresh;
  core::EffectBuffer fx;
  for (const core::Event& e : v.events()) fresh.apply(e, fx);
  EXPECT_EQ(fresh.state_hash(), v.engine().state_hash());
  EXPECT_EQ(fresh.effects_hash(), v.engine().effects_hash());
}

TEST(ExactLobsterVenueTest, DeleteRemovesWhatTheOrderHasAndLateMessagesAreSkipped) {
  ExactLobsterVenue v(exact_config());
  step(v, "1,1,1,10,10000,1", "10100,5,10000,10");
  std::uint64_t s = v.submit(1 * kS, Direction::kSell, Offset::kOpen, 100, 4);  // hits order 1
  step(v, "2,2,1,2,10000,1", "10100,5,10000,8");  // history cancels 2 of order 1 (now 6 left)
  ASSERT_EQ(v.fills().size(), 1u);
  EXPECT_EQ(v.fills()[0].order, s);
  EXPECT_EQ(v.fills()[0].volume.value, 4);
  core::BookView book = v.engine().book(core::InstrumentId{0}, 5);
  ASSERT_EQ(book.bids.size(), 1u);
  EXPECT_EQ(book.bids[0].volume.value, 4);        // history's 8, less the 4 the strategy took
  step(v, "3,2,1,5,10000,1", "10100,5,10000,3");  // wants 5 more: the order has 4
  EXPECT_EQ(v.stats().history_lots_missing, 1u);
  EXPECT_TRUE(v.engine().book(core::InstrumentId{0}, 5).bids.empty());
  step(v, "4,3,1,3,10000,1", "10100,5,-9999999999,0");  // delete of an order already gone
  EXPECT_EQ(v.stats().history_events_skipped, 1u);
  EXPECT_TRUE(v.rejects().empty());
  v.engine().check_invariants();
}

// A quoting strategy over the whole AMZN level-1 day: history never gets refused by the engine,
// the strategy trades, and the journal replays to the same state.
TEST(ExactLobsterSample, QuotingOverTheAmznDayReplays) {
  std::string stem = std::string(QX_SOURCE_DIR) +
                     "/../shared/data/lobster/AMZN_2012-06-21_1/AMZN_2012-06-21_34200000_57600000_";
  std::string m = stem + "message_1.csv";
  std::string b = stem + "orderbook_1.csv";
  if (!std::filesystem::exists(m)) GTEST_SKIP() << "no LOBSTER sample at " << m;
  ExactConfig c = exact_config();
  c.lobster.instrument_code = "AMZN";
  c.lobster.day_start_ns = parse_trading_date("2012-06-21").value();
  c.order_entry = LatencySpec{50'000, 100'000};  // 50-150 us
  c.market_data = LatencySpec{20'000, 0};
  ExactLobsterVenue v(c);
  Result<LobsterReader> reader = LobsterReader::open(m, b, 1);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  LobsterMessage msg;
  LobsterRow row;
  std::vector<std::uint64_t> live;
  for (std::uint64_t n = 0;; ++n) {
    Result<bool> more = reader.value().next(msg, row);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!more.value()) break;
    ASSERT_TRUE(v.on_message(msg, row).ok());
    if (n % 500 != 499 || row.bids.empty() || row.asks.empty()) continue;
    std::int64_t t = c.lobster.day_start_ns + msg.time_ns;
    for (std::uint64_t id : live) v.cancel(t, id);
    live = {v.submit(t, Direction::kBuy, Offset::kOpen, row.bids[0].price / 100, 100),
            v.submit(t, Direction::kSell, Offset::kOpen, row.asks[0].price / 100, 100)};
  }
  const ExactStats& s = v.stats();
  EXPECT_EQ(s.history_rejects, 0u);
  EXPECT_TRUE(v.rejects().empty());
  EXPECT_GT(v.fills().size(), 50u);
  EXPECT_GT(s.absorbed_lots, 0u);
  std::cout << "fills " << v.fills().size() << " absorbed " << s.absorbed_lots << " taken "
            << s.taken_from_history << " missing " << s.history_lots_missing << " skipped "
            << s.history_events_skipped << " events " << v.events().size() << "\n";
  v.engine().check_invariants();
  core::Engine fresh;
  core::EffectBuffer fx;
  for (const core::Event& e : v.events()) fresh.apply(e, fx);
  EXPECT_EQ(fresh.state_hash(), v.engine().state_hash());
}

}  // namespace
}  // namespace qx::sim
