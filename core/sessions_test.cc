// Trading sessions and call auctions: worked examples (auction prices and fills computed by hand
// beside each expectation) and the rules of docs/semantics.md, "Sessions and call auctions".
#include "core/sessions.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/engine.h"
#include "core/test_support.h"

namespace qx::core {
namespace {

using testing::admin_reject_of;
using testing::cny;
using testing::count;
using testing::Driver;
using testing::first;
using testing::reject_of;

using testing::kBuy;
using testing::kOpen;
using testing::kSell;

constexpr std::int64_t kSecond = 1'000'000'000;
// Local midnight of 2025-01-02 in UTC+8 (Shanghai), as UTC nanoseconds.
constexpr std::int64_t kMidnight = 1'735'747'200 * kSecond;

constexpr std::int64_t local(int h, int m, int s = 0) {
  return kMidnight + (std::int64_t{h} * 3600 + m * 60 + s) * kSecond;
}
constexpr std::uint32_t at(int h, int m) {
  return static_cast<std::uint32_t>(h * 3600 + m * 60);
}

// A Chinese futures day: opening call 08:55-08:59, frozen until 09:00, morning session with a
// break 10:15-10:30, closing call 14:57-15:00, closed until the next morning.
SessionSchedule china_day() {
  return SessionSchedule{8 * 3600,
                         {{at(8, 55), TradingPhase::kAuction},
                          {at(8, 59), TradingPhase::kPreOpen},
                          {at(9, 0), TradingPhase::kContinuous},
                          {at(10, 15), TradingPhase::kBreak},
                          {at(10, 30), TradingPhase::kContinuous},
                          {at(14, 57), TradingPhase::kAuction},
                          {at(15, 0), TradingPhase::kClosed}}};
}

TEST(SessionSchedule, PhaseAndNextChangeFollowTheLocalClockAcrossMidnight) {
  const SessionSchedule s = china_day();
  EXPECT_EQ(phase_at(s, local(8, 54, 59)), TradingPhase::kClosed);  // yesterday's last entry
  EXPECT_EQ(phase_at(s, local(8, 55)), TradingPhase::kAuction);     // a start is inclusive
  EXPECT_EQ(phase_at(s, local(10, 20)), TradingPhase::kBreak);
  EXPECT_EQ(phase_at(s, local(23, 0)), TradingPhase::kClosed);
  EXPECT_EQ(next_phase_change(s, local(8, 55)), local(8, 59));
  EXPECT_EQ(next_phase_change(s, local(3, 0)), local(8, 55));
  // After the last start: the first one tomorrow.
  EXPECT_EQ(next_phase_change(s, local(15, 0)), local(8, 55) + 86'400 * kSecond);
  EXPECT_EQ(next_phase_change(SessionSchedule{}, local(3, 0)), kNoPhaseChange);
  EXPECT_EQ(phase_at(SessionSchedule{}, local(3, 0)), TradingPhase::kContinuous);
}

// Timestamps are journal data: at the ends of the int64 range, with the largest offsets, the phase
// is still read and the next boundary is after the time (or never, past the year 2262).
TEST(SessionSchedule, ExtremeTimestampsNeitherOverflowNorStall) {
  for (std::int32_t offset : {-kUtcOffsetMax, 0, kUtcOffsetMax}) {
    SessionSchedule s = china_day();
    s.utc_offset_s = offset;
    for (std::int64_t t : {INT64_MIN, INT64_MIN + 1, std::int64_t{-1}, std::int64_t{0},
                           INT64_MAX - 86'400 * kSecond, INT64_MAX - 1, INT64_MAX}) {
      EXPECT_TRUE(phase_ok(phase_at(s, t))) << offset << " " << t;
      const std::int64_t next = next_phase_change(s, t);
      EXPECT_TRUE(next > t || next == kNoPhaseChange) << offset << " " << t;
      if (next != kNoPhaseChange) {
        EXPECT_LE(next - t, 86'400 * kSecond) << offset << " " << t;
      }
    }
  }
}

TEST(SessionSchedule, ValidationRefusesWhatCannotBeAScheduleOfOneDay) {
  EXPECT_TRUE(session_ok(china_day()));
  EXPECT_TRUE(session_ok(SessionSchedule{}));
  SessionSchedule s = china_day();
  std::swap(s.entries[0], s.entries[1]);
  EXPECT_FALSE(session_ok(s));  // not increasing
  s = china_day();
  s.entries[1].start_s = s.entries[0].start_s;
  EXPECT_FALSE(session_ok(s));  // two entries at one time
  s = china_day();
  s.entries.back().start_s = 86'400;
  EXPECT_FALSE(session_ok(s));  // past midnight
  s = china_day();
  s.entries[2].phase = static_cast<TradingPhase>(6);
  EXPECT_FALSE(session_ok(s));
  s = china_day();
  s.utc_offset_s = 18 * 3600 + 1;
  EXPECT_FALSE(session_ok(s));
  s.entries.clear();
  for (std::uint32_t i = 0; i < kSessionEntriesMax + 1; ++i) {
    s.entries.push_back({i, TradingPhase::kContinuous});
  }
  s.utc_offset_s = 0;
  EXPECT_FALSE(session_ok(s));
}

class SessionTest : public ::testing::Test {
 protected:
  // cu: tick 10 x multiplier 5 = 50 CNY per tick per lot; previous settlement 7,000 ticks.
  Driver d;
  InstrumentId cu = d.instrument("cu2501", testing::cu_params(), PriceTicks(7'000));
  AccountId alice = d.account("alice", cny(10'000'000));
  AccountId bob = d.account("bob", cny(10'000'000));
  AccountId carol = d.account("carol", cny(10'000'000));
  AccountId dave = d.account("dave", cny(10'000'000));
  AccountId eve = d.account("eve", cny(10'000'000));

  // Sets cu's schedule at local time `when` (UTC+8).
  const EffectBuffer& schedule(std::int64_t when, SessionSchedule s = china_day()) {
    d.at(when);
    return d.apply(SetSession{cu, std::move(s)});
  }
  const EffectBuffer& limit(AccountId a, Direction dir, std::int64_t price, std::int64_t lots,
                            std::uint64_t client = 0) {
    return d.order(a, cu, dir, kOpen, price, lots, TimeCondition::kGfd, PriceType::kLimit,
                   VolumeCondition::kAny, false, client);
  }
  static std::vector<EffectKind> kinds(const EffectBuffer& fx) {
    std::vector<EffectKind> out;
    for (const Effect& f : fx) out.push_back(f.kind);
    return out;
  }
};

// The opening call: bids 10 @ 7,010 (alice) and 5 @ 7,000 (bob), asks 8 @ 6,990 (carol), 6 @ 7,000
// (dave) and 4 @ 7,020 (eve), entered in that order (ids 1-5). Volume bought at or above / sold at
// or below each price:
//   6,990: 15 / 8 -> 8     7,000: 15 / 14 -> 14     7,010: 10 / 14 -> 10     7,020: 0 / 18 -> 0
// so the auction price is 7,000 with 14 lots. Matching there in price-time priority, the later
// order of each pair as the taker: carol (3) sells 8 to alice (1); dave (4) sells 2 to alice and
// 4 to bob (2). Left: bob's 1 @ 7,000 and eve's 4 @ 7,020, not crossed.
TEST_F(SessionTest, WorkedExampleTheOpeningCallUncrossesAtThePriceOfMostVolume) {
  const EffectBuffer& set = schedule(local(8, 56));
  EXPECT_EQ(kinds(set), (std::vector{EffectKind::kSessionSet, EffectKind::kPhaseChanged}));
  EXPECT_EQ(set[1].reason, raw(TradingPhase::kAuction));
  EXPECT_EQ(set[1].amount, Money(raw(TradingPhase::kContinuous)));

  // Crossing orders rest: nothing trades during the call.
  EXPECT_EQ(count(limit(alice, kBuy, 7'010, 10), EffectKind::kTrade), 0u);
  EXPECT_EQ(count(limit(bob, kBuy, 7'000, 5), EffectKind::kTrade), 0u);
  EXPECT_EQ(count(limit(carol, kSell, 6'990, 8), EffectKind::kTrade), 0u);
  EXPECT_EQ(count(limit(dave, kSell, 7'000, 6), EffectKind::kTrade), 0u);
  EXPECT_EQ(count(limit(eve, kSell, 7'020, 4), EffectKind::kTrade), 0u);
  BookView crossed = d.engine().book(cu, 1);
  EXPECT_EQ(crossed.bids[0].price, PriceTicks(7'010));
  EXPECT_EQ(crossed.asks[0].price, PriceTicks(6'990));

  // The first event at or after 08:59 (any event: here a deposit) ends the call first.
  d.at(local(8, 59, 30));
  const EffectBuffer& fx = d.apply(Deposit{eve, cny(1)});
  ASSERT_EQ(kinds(fx), (std::vector{EffectKind::kPhaseChanged, EffectKind::kAuctionUncrossed,
                                    EffectKind::kTrade, EffectKind::kTrade, EffectKind::kTrade,
                                    EffectKind::kDeposited}));
  EXPECT_EQ(fx[0].reason, raw(TradingPhase::kPreOpen));
  EXPECT_EQ(fx[1].price, PriceTicks(7'000));
  EXPECT_EQ(fx[1].volume, Lots(14));
  const std::vector<std::pair<AccountId, AccountId>> pairs{
      {carol, alice}, {dave, alice}, {dave, bob}};
  const std::vector<std::int64_t> lots{8, 2, 4};
  for (std::size_t i = 0; i < 3; ++i) {
    const Effect& t = fx[2 + i];
    EXPECT_EQ(t.price, PriceTicks(7'000)) << i;
    EXPECT_EQ(t.volume, Lots(lots[i])) << i;
    EXPECT_EQ(t.account, pairs[i].first) << i;
    EXPECT_EQ(t.counter_account, pairs[i].second) << i;
    EXPECT_EQ(t.direction, kSell) << i;
  }
  // Alice's 10 lots at 7,000: margin 10% of 10 x 7,000 x 50 = 350,000 CNY, though she bid 7,010.
  EXPECT_EQ(d.engine().account(alice).margin, cny(350'000));
  BookView after = d.engine().book(cu, 1);
  EXPECT_EQ(after.bids[0].price, PriceTicks(7'000));
  EXPECT_EQ(after.bids[0].volume, Lots(1));
  EXPECT_EQ(after.asks[0].price, PriceTicks(7'020));
  EXPECT_EQ(d.engine().instrument(cu).last_price, PriceTicks(7'000));

  // PRE_OPEN freezes the book: no orders, no cancels.
  EXPECT_EQ(reject_of(limit(bob, kBuy, 7'000, 1)), RejectReason::kMarketClosed);
  EXPECT_EQ(reject_of(d.apply(CancelOrder{bob, OrderRef{OrderId(2), {}}})),
            RejectReason::kMarketClosed);
  // 09:00: continuous trading; eve's ask is lifted at once.
  d.at(local(9, 0));
  const EffectBuffer& open = limit(carol, kBuy, 7'020, 1);
  EXPECT_EQ(open[0].kind, EffectKind::kPhaseChanged);
  EXPECT_EQ(open[0].reason, raw(TradingPhase::kContinuous));
  EXPECT_EQ(count(open, EffectKind::kTrade), 1u);
}

// Equal volume at every price from 6,990 to 7,010 (5 bid @ 7,010, 5 asked @ 6,990) and no
// surplus: the price nearest the reference (the previous settlement, 7,000) wins, though no
// order is at 7,000.
TEST_F(SessionTest, WorkedExampleTiesGoToThePriceNearestTheReference) {
  schedule(local(8, 56));
  limit(alice, kBuy, 7'010, 5);
  limit(bob, kSell, 6'990, 5);
  d.at(local(9, 0));
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  const Effect& u = first(fx, EffectKind::kAuctionUncrossed);
  EXPECT_EQ(u.price, PriceTicks(7'000));
  EXPECT_EQ(u.volume, Lots(5));
}

// Bids 6 @ 7,010; asks 6 @ 6,990 and 3 @ 7,000. Six lots match at any price from 6,990 to 7,010,
// but the unmatched surplus is 0 only from 6,990 to 6,999 (6 bought, 6 sold) against 3 from 7,000
// on (9 sold): the reference, 7,000, loses, and the price of that run nearest it is 6,999, a
// price no order named.
TEST_F(SessionTest, WorkedExampleTheSmallestSurplusComesBeforeTheReference) {
  schedule(local(8, 56));
  limit(alice, kBuy, 7'010, 6);
  limit(bob, kSell, 6'990, 6);
  limit(carol, kSell, 7'000, 3);
  d.at(local(9, 0));
  const Effect& u = first(d.apply(MarkToMarket{}), EffectKind::kAuctionUncrossed);
  EXPECT_EQ(u.price, PriceTicks(6'999));
  EXPECT_EQ(u.volume, Lots(6));
}

TEST_F(SessionTest, EachPhaseTakesOnlyWhatItAllows) {
  schedule(local(8, 56));
  // In a call: LIMIT GFD / GTC only.
  EXPECT_EQ(
      reject_of(d.order(alice, cu, kBuy, kOpen, 0, 1, TimeCondition::kIoc, PriceType::kMarket)),
      RejectReason::kAuctionOrderType);
  EXPECT_EQ(reject_of(d.order(alice, cu, kBuy, kOpen, 7'000, 1, TimeCondition::kIoc)),
            RejectReason::kAuctionOrderType);
  EXPECT_EQ(reject_of(d.order(alice, cu, kBuy, kOpen, 7'000, 1, TimeCondition::kGtc,
                              PriceType::kLimit, VolumeCondition::kAny, true)),
            RejectReason::kAuctionOrderType);
  const EffectBuffer& gtc = d.order(alice, cu, kBuy, kOpen, 6'990, 2, TimeCondition::kGtc);
  const OrderId id = first(gtc, EffectKind::kOrderAccepted).order;
  // Amending in a call re-queues without matching.
  limit(bob, kSell, 7'000, 1);
  EXPECT_EQ(count(d.apply(AmendOrder{alice, OrderRef{id, {}}, PriceTicks(7'000), Lots(2)}),
                  EffectKind::kTrade),
            0u);
  // 10:20, the break: cancels only.
  d.at(local(10, 20));
  EXPECT_EQ(reject_of(limit(carol, kBuy, 6'900, 1)), RejectReason::kMarketClosed);
  EXPECT_EQ(reject_of(d.apply(AmendOrder{alice, OrderRef{id, {}}, PriceTicks(6'980), Lots(1)})),
            RejectReason::kMarketClosed);
  EXPECT_EQ(count(d.apply(CancelOrder{alice, OrderRef{id, {}}}), EffectKind::kOrderCancelled), 1u);
  // 16:00, closed: the same.
  d.at(local(16, 0));
  EXPECT_EQ(reject_of(limit(carol, kBuy, 6'900, 1)), RejectReason::kMarketClosed);
  // A stop may be placed in a call (it waits outside the book), not when closed.
  EXPECT_EQ(reject_of(d.apply(testing::stop_order(
                alice, cu, kSell, kOpen, PriceType::kMarket, 0, 1,
                StopTrigger{TriggerKind::kStop, TriggerSource::kLast, PriceTicks(6'000)}))),
            RejectReason::kMarketClosed);
}

// The 08:59-09:00 boundaries pass with no event in between (the next event is at 09:30): one
// change, AUCTION -> CONTINUOUS, and the book uncrosses all the same.
TEST_F(SessionTest, BoundariesWithoutEventsBetweenThemAreOneChange) {
  schedule(local(8, 56));
  limit(alice, kBuy, 7'000, 1);
  limit(bob, kSell, 7'000, 1);
  d.at(local(9, 30));
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  EXPECT_EQ(count(fx, EffectKind::kPhaseChanged), 1u);
  EXPECT_EQ(first(fx, EffectKind::kPhaseChanged).reason, raw(TradingPhase::kContinuous));
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(d.engine().next_phase_change_ns(), local(10, 15));
}

// A call that ends while the instrument is halted leaves the book crossed; it uncrosses when
// trading resumes.
TEST_F(SessionTest, AHaltedCallUncrossesWhenTradingResumes) {
  schedule(local(8, 56));
  limit(alice, kBuy, 7'000, 1);
  limit(bob, kSell, 7'000, 1);
  d.apply(SetInstrumentStatus{cu, InstrumentStatus::kHalted});
  d.at(local(9, 5));
  EXPECT_EQ(count(d.apply(MarkToMarket{}), EffectKind::kTrade), 0u);
  const EffectBuffer& fx = d.apply(SetInstrumentStatus{cu, InstrumentStatus::kTrading});
  EXPECT_EQ(count(fx, EffectKind::kAuctionUncrossed), 1u);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
}

// Self-trade prevention in a call: the later order of a pair acts as the incoming one.
TEST_F(SessionTest, SelfTradesInACallFollowTheLaterOrdersMode) {
  schedule(local(8, 56));
  limit(alice, kBuy, 7'000, 2);  // id 1
  NewOrder sell{alice,
                cu,
                ClientOrderId(0),
                kSell,
                kOpen,
                PriceType::kLimit,
                PriceTicks(7'000),
                Lots(2),
                TimeCondition::kGfd,
                VolumeCondition::kAny};
  sell.stp = SelfTradePrevention{StpMode::kCancelOldest, StpScope::kAccount};
  d.apply(sell);               // id 2: cancels the oldest (alice's bid), keeps itself
  limit(bob, kBuy, 7'000, 1);  // id 3
  d.at(local(9, 0));
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  const Effect& cancelled = first(fx, EffectKind::kOrderCancelled);
  EXPECT_EQ(cancelled.order, OrderId(1));
  EXPECT_EQ(cancelled.reason, raw(CancelReason::kSelfTradePrevention));
  const Effect& trade = first(fx, EffectKind::kTrade);
  EXPECT_EQ(trade.account, bob);  // bob's order (3) is later than alice's sell (2)
  EXPECT_EQ(trade.volume, Lots(1));
}

// A stop reached outside continuous trading waits, and fires when trading resumes.
TEST_F(SessionTest, StopsWaitOutsideContinuousTrading) {
  schedule(local(10, 0));
  d.apply(testing::stop_order(
      carol, cu, kBuy, kOpen, PriceType::kLimit, 7'200, 1,
      StopTrigger{TriggerKind::kStop, TriggerSource::kLast, PriceTicks(7'100)}));
  limit(alice, kSell, 7'100, 2);  // rests: no bid
  d.at(local(14, 58));            // the closing call: bob's bid rests crossed
  EXPECT_EQ(count(limit(bob, kBuy, 7'100, 1), EffectKind::kTrade), 0u);
  d.at(local(15, 1));
  const EffectBuffer& closed = d.apply(MarkToMarket{});
  EXPECT_EQ(count(closed, EffectKind::kTrade), 1u);          // the closing uncross at 7,100
  EXPECT_EQ(count(closed, EffectKind::kStopTriggered), 0u);  // reached, but the market closed
  EXPECT_EQ(d.engine().all_stops().size(), 1u);
  d.at(local(9, 0) + 86'400 * kSecond);
  const EffectBuffer& next_day = d.apply(MarkToMarket{});
  EXPECT_EQ(count(next_day, EffectKind::kStopTriggered), 1u);
}

// Delisting ends the schedule: no more phase changes, nothing for the server to wake up for.
TEST_F(SessionTest, DelistingEndsTheSchedule) {
  schedule(local(8, 56));
  EXPECT_EQ(d.engine().next_phase_change_ns(), local(8, 59));
  d.apply(SetInstrumentStatus{cu, InstrumentStatus::kDelisted});
  EXPECT_EQ(d.engine().next_phase_change_ns(), std::nullopt);
  d.at(local(9, 30));
  EXPECT_EQ(count(d.apply(MarkToMarket{}), EffectKind::kPhaseChanged), 0u);
  EXPECT_EQ(admin_reject_of(d.apply(SetSession{cu, china_day()})),
            RejectReason::kInstrumentDelisted);
}

TEST_F(SessionTest, SetSessionRefusesBadSchedulesAndUnknownInstruments) {
  SessionSchedule bad = china_day();
  bad.entries[3].start_s = 99'999;
  d.apply(SetSession{cu, bad});
  EXPECT_EQ(admin_reject_of(d.effects()), RejectReason::kInvalidParameter);
  d.apply(SetSession{InstrumentId(9), china_day()});
  EXPECT_EQ(admin_reject_of(d.effects()), RejectReason::kUnknownInstrument);
  // An empty schedule returns the instrument to continuous trading at once.
  schedule(local(8, 56));
  const EffectBuffer& cleared = d.apply(SetSession{cu, SessionSchedule{}});
  EXPECT_EQ(first(cleared, EffectKind::kPhaseChanged).reason, raw(TradingPhase::kContinuous));
  EXPECT_EQ(d.engine().next_phase_change_ns(), std::nullopt);
}

}  // namespace
}  // namespace qx::core
