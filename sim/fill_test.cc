// Tests of sim/fill.h on small hand-made books: queue position under both models, latency,
// passive and aggressive fills with partial fills, trades through the price, cancels that race
// fills, rejects, and determinism of the journal the venue writes.
#include "sim/fill.h"

#include <gtest/gtest.h>

#include <vector>

namespace qx::sim {
namespace {

using core::Direction;
using core::Offset;

// BTCUSDT-like: tick 0.1, one lot 0.001 BTC, margin 10%, fee 0.05% of notional both ways.
VenueConfig config(QueueModel q = QueueModel::kRiskAverse) {
  VenueConfig c;
  c.params.price_tick_e8 = 10'000'000;
  c.params.multiplier_e8 = 100'000;
  c.params.margin_long_ppb = 100'000'000;
  c.params.margin_short_ppb = 100'000'000;
  c.params.fees.open_ppb = 500'000;
  c.params.fees.close_ppb = 500'000;
  c.params.fees.close_today_ppb = 500'000;
  c.params.max_order_volume = core::Lots(1'000);
  c.params.position_limit = core::Lots(1'000'000'000);
  c.reference_price = core::PriceTicks(618'000);
  c.strategy_deposit = core::Money(1'000'000 * core::kMoneyScale);
  c.queue = q;
  return c;
}

TEST(QueuePositionTest, RiskAverseCountsCancelsAsBehind) {
  QueuePosition q(QueueModel::kRiskAverse, 10);
  q.on_level(10, 12, 0);  // additions go behind
  EXPECT_EQ(q.ahead(), 10);
  q.on_level(12, 11, 0);  // a cancel: assumed behind, the level still shows more than ahead
  EXPECT_EQ(q.ahead(), 10);
  q.on_level(11, 7, 0);  // the level shows less than ahead: ahead can't exceed it
  EXPECT_EQ(q.ahead(), 7);
  EXPECT_EQ(q.on_trade_at_price(5), 0);
  EXPECT_EQ(q.ahead(), 2);
  EXPECT_EQ(q.on_trade_at_price(5), 3);  // 2 ahead, 3 reach the order
  EXPECT_EQ(q.ahead(), 0);
}

TEST(QueuePositionTest, ProportionalTakesCancelsFromAheadByShare) {
  QueuePosition q(QueueModel::kProportional, 6);
  q.on_level(10, 5, 0);  // 5 cancelled of 10, 6 of them ahead: 5 * 6 / 10 = 3 from ahead
  EXPECT_EQ(q.ahead(), 3);
  QueuePosition r(QueueModel::kProportional, 4);  // 6 ahead, then 2 traded: 4 ahead
  r.on_level(10, 4, 2);  // 10 -> 4 with 2 traded: 4 cancelled of 8, 4 * 4 / 8 = 2
  EXPECT_EQ(r.ahead(), 2);
  QueuePosition s(QueueModel::kProportional, 5);
  s.on_level(7, 6, 0);  // 1 * 5 / 7 rounds down to 0: the order never moves up for free
  EXPECT_EQ(s.ahead(), 5);
}

TEST(QueuePositionTest, UnknownUntilVisible) {
  QueuePosition q(QueueModel::kProportional, QueuePosition::kUnknown);
  q.on_level(10, 5, 0);
  EXPECT_EQ(q.ahead(), 5);
  QueuePosition r(QueueModel::kRiskAverse, QueuePosition::kUnknown);
  r.on_visible(9);
  EXPECT_EQ(r.ahead(), 9);
  r.on_visible(12);
  EXPECT_EQ(r.ahead(), 9);
}

TEST(QueueModelNames, RoundTrip) {
  for (QueueModel m : {QueueModel::kRiskAverse, QueueModel::kProportional}) {
    EXPECT_EQ(parse_queue_model(queue_model_name(m)).value(), m);
  }
  EXPECT_FALSE(parse_queue_model("optimistic").ok());
}

TEST(LatencyTest, ConstantAndSeededUniform) {
  Latency c(LatencySpec{250, 0}, 7);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.next(), 250);
  Latency a(LatencySpec{100, 50}, 42), b(LatencySpec{100, 50}, 42), d(LatencySpec{100, 50}, 43);
  std::vector<std::int64_t> xs, ys, zs;
  for (int i = 0; i < 200; ++i) {
    xs.push_back(a.next());
    ys.push_back(b.next());
    zs.push_back(d.next());
    EXPECT_GE(xs.back(), 100);
    EXPECT_LE(xs.back(), 150);
  }
  EXPECT_EQ(xs, ys);
  EXPECT_NE(xs, zs);
}

TEST(ReplayOnlyVenueTest, PassiveFillAfterTheQueueAhead) {
  ReplayOnlyVenue v(config());
  ASSERT_TRUE(v.on_bbo(1, 618'000, 5, 618'001, 5).ok());
  std::uint64_t id = v.submit(1, Direction::kBuy, Offset::kOpen, 618'000, 3);
  ASSERT_TRUE(v.on_trade(3, 618'000, 4, Direction::kSell).ok());  // arrives first: 5 ahead -> 1
  EXPECT_EQ(v.ahead(id), 1);
  EXPECT_TRUE(v.fills().empty());
  ASSERT_TRUE(v.on_bbo(4, 618'000, 1, 618'001, 5).ok());  // 5 -> 1 explained by the trade
  EXPECT_EQ(v.ahead(id), 1);
  ASSERT_TRUE(v.on_trade(5, 618'000, 3, Direction::kSell).ok());  // 1 ahead, 2 reach us
  ASSERT_EQ(v.fills().size(), 1u);
  const SimFill& f = v.fills()[0];
  EXPECT_EQ(f.order, id);
  EXPECT_EQ(f.time_ns, 5);
  EXPECT_EQ(f.direction, Direction::kBuy);
  EXPECT_EQ(f.price.value, 618'000);
  EXPECT_EQ(f.volume.value, 2);
  EXPECT_FALSE(f.aggressive);
  EXPECT_EQ(f.mode, "replay-only/risk_averse");
  // Maker fee: 2 lots x 61,800.0 x 0.001 = 123.6; x 0.05% = 0.0618 = 618 in 1e-4 units.
  EXPECT_EQ(f.fee.value, 618);
  EXPECT_EQ(v.working(id), 1);
  std::vector<core::PositionView> pos = v.engine().positions(ReplayOnlyVenue::strategy_account());
  ASSERT_EQ(pos.size(), 1u);
  EXPECT_EQ(pos[0].long_side.today.value, 2);
  // The rest of the order still rests in the engine, at its price.
  core::BookView book = v.engine().book(core::InstrumentId{0}, 5);
  ASSERT_EQ(book.bids.size(), 1u);
  EXPECT_EQ(book.bids[0].price.value, 618'000);
  EXPECT_EQ(book.bids[0].volume.value, 1);
  EXPECT_TRUE(book.asks.empty());
}

TEST(ReplayOnlyVenueTest, QueueModelsDisagreeOnCancels) {
  auto filled = [](QueueModel m) {
    ReplayOnlyVenue v(config(m));
    EXPECT_TRUE(v.on_bbo(1, 618'000, 6, 618'001, 5).ok());
    std::uint64_t id = v.submit(1, Direction::kBuy, Offset::kOpen, 618'000, 2);
    EXPECT_TRUE(v.on_bbo(2, 618'000, 10, 618'001, 5).ok());  // 6 ahead of 10 shown
    EXPECT_EQ(v.ahead(id), 6);
    EXPECT_TRUE(v.on_bbo(3, 618'000, 5, 618'001, 5).ok());  // 5 cancelled
    EXPECT_TRUE(v.on_trade(4, 618'000, 4, Direction::kSell).ok());
    std::int64_t lots = 0;
    for (const SimFill& f : v.fills()) lots += f.volume.value;
    return lots;
  };
  EXPECT_EQ(filled(QueueModel::kRiskAverse), 0);    // ahead min(6, 5) = 5 > 4 traded
  EXPECT_EQ(filled(QueueModel::kProportional), 1);  // ahead 6 - 5*6/10 = 3; 4 - 3 = 1
}

TEST(ReplayOnlyVenueTest, MarketableOrderTakesDisplayedLiquidityOnce) {
  ReplayOnlyVenue v(config());
  ASSERT_TRUE(v.on_bbo(1, 617'990, 5, 618'000, 3).ok());
  std::uint64_t a = v.submit(1, Direction::kBuy, Offset::kOpen, 618'000, 5);
  std::uint64_t b = v.submit(1, Direction::kBuy, Offset::kOpen, 618'000, 2);
  v.advance_to(1);
  ASSERT_EQ(v.fills().size(), 1u);  // a takes the 3 shown; b finds nothing left to take
  EXPECT_TRUE(v.fills()[0].aggressive);
  EXPECT_EQ(v.fills()[0].order, a);
  EXPECT_EQ(v.fills()[0].volume.value, 3);
  EXPECT_EQ(v.fills()[0].fee.value, 927);  // 3 x 61.8 = 185.4 x 0.05% = 0.0927
  EXPECT_EQ(v.working(a), 2);
  EXPECT_EQ(v.working(b), 2);
  EXPECT_EQ(v.ahead(a), 0);  // a new best bid, above history's 617,990
  core::BookView book = v.engine().book(core::InstrumentId{0}, 5);
  ASSERT_EQ(book.bids.size(), 1u);
  EXPECT_EQ(book.bids[0].volume.value, 4);
  EXPECT_TRUE(book.asks.empty());  // the liquidity account kept nothing resting
  // A new BBO whose ask is at the strategy's bids fills them at their own price, in arrival
  // order, from what it shows.
  ASSERT_TRUE(v.on_bbo(2, 617'990, 5, 618'000, 3).ok());
  ASSERT_EQ(v.fills().size(), 3u);
  EXPECT_EQ(v.fills()[1].order, a);
  EXPECT_EQ(v.fills()[1].volume.value, 2);
  EXPECT_FALSE(v.fills()[1].aggressive);
  EXPECT_EQ(v.fills()[2].order, b);
  EXPECT_EQ(v.fills()[2].volume.value, 1);
  EXPECT_EQ(v.working(a), 0);
  EXPECT_EQ(v.working(b), 1);
}

TEST(ReplayOnlyVenueTest, TradeThroughFillsAtTheOrdersPrice) {
  ReplayOnlyVenue v(config());
  ASSERT_TRUE(v.on_bbo(1, 618'000, 5, 618'001, 5).ok());
  std::uint64_t id = v.submit(1, Direction::kSell, Offset::kOpen, 618'003, 4);
  ASSERT_TRUE(v.on_trade(2, 618'002, 9, Direction::kBuy).ok());  // below the ask: nothing
  EXPECT_TRUE(v.fills().empty());
  EXPECT_EQ(v.ahead(id), QueuePosition::kUnknown);
  ASSERT_TRUE(v.on_trade(3, 618'004, 3, Direction::kBuy).ok());  // through: up to 3 lots
  ASSERT_EQ(v.fills().size(), 1u);
  EXPECT_EQ(v.fills()[0].price.value, 618'003);
  EXPECT_EQ(v.fills()[0].volume.value, 3);
  EXPECT_EQ(v.working(id), 1);
  std::vector<core::PositionView> pos = v.engine().positions(ReplayOnlyVenue::strategy_account());
  ASSERT_EQ(pos.size(), 1u);
  EXPECT_EQ(pos[0].short_side.today.value, 3);
}

TEST(ReplayOnlyVenueTest, EntryLatencyDelaysOrdersAndCancels) {
  VenueConfig c = config();
  c.order_entry = LatencySpec{10, 0};
  c.market_data = LatencySpec{7, 0};
  ReplayOnlyVenue v(c);
  ASSERT_TRUE(v.on_bbo(100, 618'000, 1, 618'001, 5).ok());
  std::uint64_t id = v.submit(100, Direction::kBuy, Offset::kOpen, 618'000, 2);  // at 110
  ASSERT_TRUE(v.on_trade(105, 618'000, 5, Direction::kSell).ok());  // before it arrives
  EXPECT_TRUE(v.fills().empty());
  EXPECT_EQ(v.working(id), 0);
  v.cancel(106, id);                                                // reaches the venue at 116
  ASSERT_TRUE(v.on_trade(110, 618'000, 5, Direction::kSell).ok());  // same time: trade first
  EXPECT_TRUE(v.fills().empty());
  EXPECT_EQ(v.working(id), 0);  // arriving at 110 too, it comes after that trade
  v.advance_to(111);
  EXPECT_EQ(v.working(id), 2);
  EXPECT_EQ(v.ahead(id), 1);                                        // it joined behind the 1 shown
  ASSERT_TRUE(v.on_trade(112, 618'000, 2, Direction::kSell).ok());  // 1 ahead, 1 fills
  ASSERT_EQ(v.fills().size(), 1u);
  EXPECT_EQ(v.fills()[0].time_ns, 112);
  EXPECT_EQ(v.fills()[0].visible_ns, 119);
  v.advance_to(116);
  EXPECT_EQ(v.working(id), 0);  // cancelled
  ASSERT_TRUE(v.on_trade(120, 618'000, 5, Direction::kSell).ok());
  EXPECT_EQ(v.fills().size(), 1u);
  EXPECT_TRUE(v.engine().book(core::InstrumentId{0}, 5).bids.empty());
}

TEST(ReplayOnlyVenueTest, RejectsAreReportedAndNothingRests) {
  ReplayOnlyVenue v(config());
  ASSERT_TRUE(v.on_bbo(1, 618'000, 5, 618'001, 5).ok());
  std::uint64_t id = v.submit(1, Direction::kBuy, Offset::kOpen, 618'000, 5'000);   // > max 1,000
  std::uint64_t close = v.submit(1, Direction::kSell, Offset::kClose, 618'001, 1);  // no position
  v.advance_to(1);
  ASSERT_EQ(v.rejects().size(), 2u);
  EXPECT_EQ(v.rejects()[0].order, id);
  EXPECT_EQ(v.rejects()[1].order, close);
  EXPECT_NE(v.rejects()[0].reason, 0);
  EXPECT_EQ(v.working(id), 0);
  // A marketable order that is rejected leaves no liquidity behind.
  std::uint64_t big = v.submit(1, Direction::kBuy, Offset::kOpen, 618'001, 5'000);
  v.advance_to(1);
  EXPECT_EQ(v.rejects().back().order, big);
  core::BookView book = v.engine().book(core::InstrumentId{0}, 5);
  EXPECT_TRUE(book.bids.empty());
  EXPECT_TRUE(book.asks.empty());
  EXPECT_FALSE(v.on_bbo(2, 618'001, 1, 618'001, 1).ok());  // locked
  EXPECT_FALSE(v.on_bbo(0, 618'000, 1, 618'001, 1).ok());  // backwards
  EXPECT_FALSE(v.on_trade(3, 618'000, 0, Direction::kBuy).ok());
}

// The same inputs give the same fills and events, and the events replay to the same state.
TEST(ReplayOnlyVenueTest, DeterministicAndReplayable) {
  auto run = [](std::uint64_t seed) {
    VenueConfig c = config(QueueModel::kProportional);
    c.order_entry = LatencySpec{5, 20};
    c.seed = seed;
    ReplayOnlyVenue v(c);
    Prng prng(99);
    std::int64_t mid = 618'000;
    for (std::int64_t t = 1; t <= 2'000; ++t) {
      mid += static_cast<std::int64_t>(prng.below(3)) - 1;
      EXPECT_TRUE(v.on_bbo(t * 100, mid, 1 + static_cast<std::int64_t>(prng.below(9)), mid + 1,
                           1 + static_cast<std::int64_t>(prng.below(9)))
                      .ok());
      if (prng.below(2) == 0) {
        Direction d = prng.below(2) == 0 ? Direction::kBuy : Direction::kSell;
        EXPECT_TRUE(v.on_trade(t * 100 + 50, d == Direction::kBuy ? mid + 1 : mid,
                               1 + static_cast<std::int64_t>(prng.below(4)), d)
                        .ok());
      }
      if (t % 7 == 0) {
        Direction d = prng.below(2) == 0 ? Direction::kBuy : Direction::kSell;
        std::int64_t px = mid + static_cast<std::int64_t>(prng.below(5)) - 2;
        std::uint64_t id =
            v.submit(t * 100, d, Offset::kOpen, px, 1 + static_cast<std::int64_t>(prng.below(3)));
        if (t % 3 == 0) v.cancel(t * 100 + 30, id);
      }
    }
    std::vector<std::int64_t> fills;
    for (const SimFill& f : v.fills()) {
      fills.push_back(f.time_ns);
      fills.push_back(static_cast<std::int64_t>(f.order));
      fills.push_back(f.price.value);
      fills.push_back(f.volume.value);
    }
    core::Engine fresh;
    core::EffectBuffer fx;
    for (const core::Event& e : v.events()) fresh.apply(e, fx);
    EXPECT_EQ(fresh.state_hash(), v.engine().state_hash());
    EXPECT_EQ(fresh.effects_hash(), v.engine().effects_hash());
    v.engine().check_invariants();
    return std::pair{fills, v.engine().state_hash()};
  };
  auto [a, ha] = run(1);
  auto [b, hb] = run(1);
  auto [c, hc] = run(2);
  EXPECT_GT(a.size(), 40u);  // the session really traded
  EXPECT_EQ(a, b);
  EXPECT_EQ(ha, hb);
  EXPECT_NE(ha, hc);  // other latencies, other fills
}

}  // namespace
}  // namespace qx::sim
