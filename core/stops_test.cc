// Stop and take-profit orders: worked examples (figures computed by hand beside each
// expectation) and the rules of docs/semantics.md, "Stop orders".
#include <gtest/gtest.h>

#include <vector>

#include "core/engine.h"
#include "core/test_support.h"

namespace qx::core {
namespace {

using testing::cny;
using testing::count;
using testing::Driver;
using testing::first;
using testing::reject_of;

using testing::kBuy;
using testing::kOpen;
using testing::kSell;

class StopTest : public ::testing::Test {
 protected:
  // IF: tick 0.2 x multiplier 300 = 60 CNY per tick per lot; 10% band around 19,000 ticks.
  Driver d;
  InstrumentId if_ = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  AccountId alice = d.account("alice", cny(1'000'000));
  AccountId bob = d.account("bob", cny(1'000'000));
  AccountId carol = d.account("carol", cny(1'000'000));

  const EffectBuffer& stop(AccountId a, Direction dir, Offset off, PriceType pt, std::int64_t price,
                           std::int64_t lots, TriggerKind kind, TriggerSource source,
                           std::int64_t trigger, TimeCondition tc = TimeCondition::kGtc,
                           std::uint64_t client_id = 0) {
    return d.apply(testing::stop_order(a, if_, dir, off, pt, price, lots,
                                       StopTrigger{kind, source, PriceTicks(trigger)}, tc,
                                       client_id));
  }
  std::vector<EffectKind> kinds(const EffectBuffer& fx) {
    std::vector<EffectKind> out;
    for (const Effect& f : fx) out.push_back(f.kind);
    return out;
  }
};

// Alice is long 1 lot from 19,000 (3,800.0) and protects it with a sell STOP at 18,950 (3,790.0)
// on the last price, entering as MARKET. A trade at 18,950 fires it; her market sell takes the
// next bid, 18,940 (3,788.0).
TEST_F(StopTest, WorkedExampleAStopLossSellsWhenTheLastPriceFallsToItsTrigger) {
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  const AccountView before = d.engine().account(alice);

  const EffectBuffer& placed =
      stop(alice, kSell, Offset::kClose, PriceType::kMarket, 0, 1, TriggerKind::kStop,
           TriggerSource::kLast, 18'950, TimeCondition::kGtc, 77);
  ASSERT_EQ(kinds(placed), std::vector{EffectKind::kStopAccepted});
  const Effect accepted = placed[0];
  EXPECT_EQ(accepted.amount, Money(18'950));  // the trigger price, in ticks
  EXPECT_EQ(accepted.reason, 1 | 1 << 8);     // STOP, LAST
  EXPECT_EQ(accepted.price, PriceTicks(0));   // MARKET: no limit price
  EXPECT_EQ(accepted.client_order_id, ClientOrderId(77));
  // A pending stop holds nothing: alice's available funds and position are as before.
  const AccountView pending = d.engine().account(alice);
  EXPECT_EQ(pending.available, before.available);
  EXPECT_EQ(pending.frozen_commission, Money(0));
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.frozen_today, Lots(0));
  EXPECT_TRUE(d.engine().orders(alice).empty());
  ASSERT_EQ(d.engine().stops(alice).size(), 1u);
  EXPECT_TRUE(d.engine().book(if_, 5).bids.empty());

  d.order(carol, if_, kBuy, kOpen, 18'950, 1);
  d.order(carol, if_, kBuy, kOpen, 18'940, 1);
  // bob's sell trades at 18,950: the last price reaches the trigger.
  const EffectBuffer& fx = d.order(bob, if_, kSell, kOpen, 18'950, 1);
  EXPECT_EQ(kinds(fx),
            (std::vector{EffectKind::kOrderAccepted, EffectKind::kTrade, EffectKind::kStopTriggered,
                         EffectKind::kOrderAccepted, EffectKind::kTrade}));
  EXPECT_EQ(fx[2].order, accepted.order);
  EXPECT_EQ(fx[2].price, PriceTicks(18'950));  // the last price that reached the trigger
  EXPECT_EQ(fx[3].account, alice);
  EXPECT_GT(raw(fx[3].order), raw(accepted.order));     // the entered order has a new id ...
  EXPECT_EQ(fx[3].client_order_id, ClientOrderId(77));  // ... and the stop's client id
  EXPECT_EQ(fx[4].price, PriceTicks(18'940));
  EXPECT_EQ(fx[4].order, fx[3].order);
  EXPECT_TRUE(d.engine().stops(alice).empty());
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.total(), Lots(0));
  // (18,940 - 19,000) ticks x 60 CNY = -3,600.00 CNY.
  EXPECT_EQ(d.engine().account(alice).close_profit, cny(-3'600));
}

// A take-profit on the mark fires at settlement, when the mark becomes the settlement price; the
// same trigger on the last price waits for the new day's first trade.
TEST_F(StopTest, ATakeProfitOnTheMarkFiresAtSettlementAndOneOnTheLastPriceWaits) {
  d.order(bob, if_, kSell, kOpen, 19'000, 2);
  d.order(alice, if_, kBuy, kOpen, 19'000, 2);
  const Effect on_mark = stop(alice, kSell, Offset::kClose, PriceType::kLimit, 19'200, 1,
                              TriggerKind::kTakeProfit, TriggerSource::kMark, 19'150)[0];
  const Effect on_last = stop(alice, kSell, Offset::kClose, PriceType::kLimit, 19'200, 1,
                              TriggerKind::kTakeProfit, TriggerSource::kLast, 19'150)[0];
  ASSERT_EQ(on_mark.kind, EffectKind::kStopAccepted);
  ASSERT_EQ(on_last.kind, EffectKind::kStopAccepted);
  EXPECT_EQ(on_mark.reason, 2 | 2 << 8);  // TAKE_PROFIT, MARK

  const EffectBuffer& fx = d.apply(Settle{{SettlementPrice{if_, PriceTicks(19'200)}}});
  const Effect& fired = first(fx, EffectKind::kStopTriggered);
  EXPECT_EQ(fired.order, on_mark.order);
  EXPECT_EQ(fired.price, PriceTicks(19'200));
  EXPECT_EQ(count(fx, EffectKind::kStopTriggered), 1u);
  // It entered as a GTC limit sell of 1 at 19,200 holding 1 history lot; nothing to sell to.
  const std::vector<OrderState> resting = d.engine().orders(alice);
  ASSERT_EQ(resting.size(), 1u);
  EXPECT_EQ(resting[0].price, PriceTicks(19'200));
  EXPECT_EQ(resting[0].frozen_his, Lots(1));
  ASSERT_EQ(d.engine().stops(alice).size(), 1u);
  EXPECT_EQ(d.engine().stops(alice)[0].id, on_last.order);

  // The new day's first trade, at 19,150, fires the one on the last price.
  d.order(carol, if_, kBuy, kOpen, 19'150, 1);
  const EffectBuffer& next = d.order(bob, if_, kSell, kOpen, 19'150, 1);
  EXPECT_EQ(first(next, EffectKind::kStopTriggered).order, on_last.order);
  EXPECT_TRUE(d.engine().stops(alice).empty());
  EXPECT_EQ(d.engine().orders(alice).size(), 2u);
}

// Three stops reached by one trade fire oldest first, whatever their trigger prices; a stop that
// a triggered order's own trade reaches fires after them.
TEST_F(StopTest, StopsReachedTogetherFireOldestFirstAndCascade) {
  for (std::int64_t p : {18'980, 18'970, 18'960, 18'950, 18'940}) {
    d.order(carol, if_, kBuy, kOpen, p, 1, TimeCondition::kGtc);
  }
  auto sell_stop = [&](std::int64_t trigger) {
    return stop(alice, kSell, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop,
                TriggerSource::kLast, trigger)[0]
        .order;
  };
  // No trade yet: a stop on the last price is accepted whatever its trigger.
  const OrderId a = sell_stop(18'990);
  const OrderId b = sell_stop(18'980);
  const OrderId c = sell_stop(18'995);
  const OrderId late = sell_stop(18'950);  // reached only by c's own trade

  const EffectBuffer& fx = d.order(bob, if_, kSell, kOpen, 18'980, 1);
  std::vector<OrderId> fired;
  std::vector<PriceTicks> at;
  std::vector<PriceTicks> traded;
  for (const Effect& f : fx) {
    if (f.kind == EffectKind::kStopTriggered) {
      fired.push_back(f.order);
      at.push_back(f.price);
    }
    if (f.kind == EffectKind::kTrade) traded.push_back(f.price);
  }
  EXPECT_EQ(fired, (std::vector{a, b, c, late}));
  // a, b and c were reached by bob's trade at 18,980; `late` by c's at 18,950.
  EXPECT_EQ(at, (std::vector{PriceTicks(18'980), PriceTicks(18'980), PriceTicks(18'980),
                             PriceTicks(18'950)}));
  EXPECT_EQ(traded, (std::vector{PriceTicks(18'980), PriceTicks(18'970), PriceTicks(18'960),
                                 PriceTicks(18'950), PriceTicks(18'940)}));
  EXPECT_TRUE(d.engine().stops(alice).empty());
}

TEST_F(StopTest, PlacementIsCheckedLikeAnOrderAndATriggerAlreadyReachedIsRefused) {
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(carol, if_, kBuy, kOpen, 19'000, 1);  // last price 19,000
  // A buy stop at or below the last price would fire at once.
  EXPECT_EQ(reject_of(stop(alice, kBuy, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 19'000)),
            RejectReason::kStopWouldTrigger);
  // The mark is the last price too; a sell take-profit at or below it would fire.
  EXPECT_EQ(reject_of(stop(alice, kSell, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kTakeProfit,
                           TriggerSource::kMark, 18'990)),
            RejectReason::kStopWouldTrigger);
  EXPECT_EQ(reject_of(stop(alice, kBuy, kOpen, PriceType::kBest, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 19'100)),
            RejectReason::kInvalidCombination);
  EXPECT_EQ(reject_of(stop(alice, kBuy, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 0)),
            RejectReason::kInvalidPrice);
  EXPECT_EQ(reject_of(stop(alice, kBuy, kOpen, PriceType::kLimit, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 19'100)),
            RejectReason::kInvalidPrice);
  const NewOrder undefined = testing::stop_order(
      alice, if_, kBuy, kOpen, PriceType::kMarket, 0, 1,
      StopTrigger{static_cast<TriggerKind>(3), TriggerSource::kLast, PriceTicks(1)});
  EXPECT_EQ(reject_of(d.apply(undefined)), RejectReason::kInvalidParameter);

  // Accepted, it can be cancelled (by client id) but not amended; its client id is taken.
  const Effect placed = stop(alice, kBuy, kOpen, PriceType::kLimit, 19'110, 1, TriggerKind::kStop,
                             TriggerSource::kLast, 19'100, TimeCondition::kGtc, 5)[0];
  ASSERT_EQ(placed.kind, EffectKind::kStopAccepted);
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 18'000, 1, TimeCondition::kGfd,
                              PriceType::kLimit, VolumeCondition::kAny, false, 5)),
            RejectReason::kDuplicateClientOrderId);
  EXPECT_EQ(reject_of(d.apply(AmendOrder{alice, OrderRef{placed.order, ClientOrderId(0)},
                                         PriceTicks(19'120), Lots(1)})),
            RejectReason::kStopNotAmendable);
  EXPECT_EQ(reject_of(d.apply(CancelOrder{bob, OrderRef{placed.order, ClientOrderId(0)}})),
            RejectReason::kOrderNotOwned);
  const EffectBuffer& cancelled =
      d.apply(CancelOrder{alice, OrderRef{std::nullopt, ClientOrderId(5)}});
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].kind, EffectKind::kOrderCancelled);
  EXPECT_EQ(cancelled[0].order, placed.order);
  EXPECT_EQ(static_cast<CancelReason>(cancelled[0].reason), CancelReason::kUserRequest);
  EXPECT_EQ(cancelled[0].volume_left, Lots(1));
  EXPECT_TRUE(d.engine().stops(alice).empty());

  // Stops count against the account's open order limit.
  d.apply(SetAccountRisk{alice, 1, true, {}});
  stop(alice, kBuy, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop, TriggerSource::kLast,
       19'100);
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 18'000, 1)),
            RejectReason::kTooManyOpenOrders);
}

TEST_F(StopTest, DayStopsExpireAtSettlementAndDelistingCancelsTheRest) {
  const OrderId day = stop(alice, kBuy, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 19'100, TimeCondition::kGfd)[0]
                          .order;
  const OrderId gtc = stop(alice, kBuy, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop,
                           TriggerSource::kLast, 19'100, TimeCondition::kGtc)[0]
                          .order;
  const EffectBuffer& settled = d.apply(Settle{});
  const Effect& expired = first(settled, EffectKind::kOrderCancelled);
  EXPECT_EQ(expired.order, day);
  EXPECT_EQ(static_cast<CancelReason>(expired.reason), CancelReason::kExpired);
  ASSERT_EQ(d.engine().stops(alice).size(), 1u);
  const EffectBuffer& delisted = d.apply(SetInstrumentStatus{if_, InstrumentStatus::kDelisted});
  const Effect& gone = first(delisted, EffectKind::kOrderCancelled);
  EXPECT_EQ(gone.order, gtc);
  EXPECT_EQ(static_cast<CancelReason>(gone.reason), CancelReason::kInstrumentDelisted);
  EXPECT_TRUE(d.engine().stops(alice).empty());
}

// A triggered order is checked when it enters: here alice has withdrawn what its margin needs.
TEST_F(StopTest, ATriggeredOrderIsCheckedAndFrozenWhenItEnters) {
  stop(alice, kBuy, kOpen, PriceType::kLimit, 19'100, 5, TriggerKind::kStop, TriggerSource::kLast,
       19'050);
  // 5 lots at 19,100 need 5 x 19,100 x 60 x 10% = 573,000 CNY of margin.
  d.apply(Withdraw{alice, cny(500'000)});
  d.order(carol, if_, kSell, kOpen, 19'050, 1);
  const EffectBuffer& fx = d.order(bob, if_, kBuy, kOpen, 19'050, 1);
  EXPECT_EQ(count(fx, EffectKind::kStopTriggered), 1u);
  EXPECT_EQ(reject_of(fx), RejectReason::kInsufficientFunds);
  EXPECT_TRUE(d.engine().stops(alice).empty());
  EXPECT_TRUE(d.engine().orders(alice).empty());
}

TEST_F(StopTest, PendingStopsSurviveSnapshotAndRestore) {
  stop(alice, kSell, kOpen, PriceType::kMarket, 0, 1, TriggerKind::kStop, TriggerSource::kLast,
       18'990, TimeCondition::kGtc, 9);
  stop(bob, kBuy, kOpen, PriceType::kLimit, 19'030, 2, TriggerKind::kTakeProfit,
       TriggerSource::kMark, 18'900, TimeCondition::kGfd);
  const Snapshot s = d.engine().snapshot();
  ASSERT_EQ(s.stops.size(), 2u);
  Engine restored = Engine::restore(s);
  EXPECT_EQ(restored.state_hash(), d.engine().state_hash());

  // The same events fire the same stops in both.
  const std::vector<EventBody> more = {
      NewOrder{carol, if_, ClientOrderId(0), kBuy, kOpen, PriceType::kLimit, PriceTicks(18'900),
               Lots(3), TimeCondition::kGfd, VolumeCondition::kAny},
      NewOrder{bob, if_, ClientOrderId(0), kSell, kOpen, PriceType::kLimit, PriceTicks(18'900),
               Lots(1), TimeCondition::kIoc, VolumeCondition::kAny}};
  EffectBuffer from_restored;
  std::uint64_t seq = raw(restored.last_seq());
  for (const EventBody& b : more) {
    d.apply(b);
    restored.apply(Event{EventHeader{Seq(++seq), restored.last_timestamp_ns() + 1'000'000, 0}, b},
                   from_restored);
  }
  EXPECT_EQ(count(from_restored, EffectKind::kStopTriggered), 2u);
  EXPECT_EQ(restored.state_hash(), d.engine().state_hash());
  EXPECT_EQ(restored.effects_hash(), d.engine().effects_hash());
}

}  // namespace
}  // namespace qx::core
