// Engine unit tests, including worked examples whose figures were computed by hand (the
// arithmetic is written out beside each expectation).
#include "core/engine.h"

#include <gtest/gtest.h>

#include <algorithm>

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

class EngineTest : public ::testing::Test {
 protected:
  Driver d;
  InstrumentId if_ = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  AccountId alice = d.account("alice", cny(1'000'000));
  AccountId bob = d.account("bob", cny(1'000'000));
};

// 1 lot of IF at 3800.0 (19,000 ticks of 0.2), multiplier 300, margin 10%:
// 3800 * 300 * 0.10 = 114,000.00 CNY frozen.
TEST_F(EngineTest, WorkedExampleIfMarginFrozen) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  AccountView v = d.engine().account(alice);
  EXPECT_EQ(v.frozen_margin, cny(114'000));
  // Open fee frozen: 1,140,000 notional * 23.01e-6 = 26.2314 CNY = 262,314 minor units.
  EXPECT_EQ(v.frozen_commission, Money(262'314));
  EXPECT_EQ(v.available, cny(1'000'000) - cny(114'000) - Money(262'314));
}

TEST_F(EngineTest, FillConvertsFrozenIntoMarginAndCommission) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  const auto& fx = d.order(bob, if_, kSell, kOpen, 19'000, 1);
  ASSERT_EQ(count(fx, EffectKind::kTrade), 1u);
  const Effect& t = first(fx, EffectKind::kTrade);
  EXPECT_EQ(t.price, PriceTicks(19'000));
  EXPECT_EQ(t.order, OrderId(2));          // taker: bob's order
  EXPECT_EQ(t.counter_order, OrderId(1));  // maker: alice's order
  AccountView a = d.engine().account(alice);
  EXPECT_EQ(a.frozen_margin, Money(0));
  EXPECT_EQ(a.frozen_commission, Money(0));
  EXPECT_EQ(a.margin, cny(114'000));
  EXPECT_EQ(a.commission, Money(262'314));
  EXPECT_EQ(a.balance, cny(1'000'000) - Money(262'314));
  auto pos = d.engine().positions(alice);
  ASSERT_EQ(pos.size(), 1u);
  EXPECT_EQ(pos[0].long_side.today, Lots(1));
  EXPECT_EQ(d.engine().positions(bob)[0].short_side.today, Lots(1));
}

// cu at 74,000 (7,400 ticks of 10), multiplier 5, fee 50 per million of notional:
// 2 lots -> notional 740,000 CNY -> fee 37.00 CNY per side.
TEST_F(EngineTest, WorkedExampleCopperPerNotionalFee) {
  InstrumentId cu = d.instrument("cu2501", testing::cu_params(), PriceTicks(7'400));
  d.order(alice, cu, kBuy, kOpen, 7'400, 2);
  const auto& fx = d.order(bob, cu, kSell, kOpen, 7'400, 2);
  const Effect& t = first(fx, EffectKind::kTrade);
  EXPECT_EQ(t.amount, cny(37));   // taker fee
  EXPECT_EQ(t.amount2, cny(37));  // maker fee
  EXPECT_EQ(d.engine().account(alice).commission, cny(37));
  // Margin: 740,000 * 10% = 74,000.
  EXPECT_EQ(d.engine().account(alice).margin, cny(74'000));
}

// Close-today fee differs from close-history fee. Open 1 lot at 3800; close at 3810 today:
// 1,143,000 * 345e-6 = 394.335 CNY. After settlement the position is history; closing at 3810
// costs 1,143,000 * 23.01e-6 = 26.30043 CNY, rounded up to 26.3005.
TEST_F(EngineTest, WorkedExampleCloseTodayVersusCloseHistoryFee) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 2);
  d.order(bob, if_, kSell, kOpen, 19'000, 2);
  d.order(bob, if_, kBuy, Offset::kCloseToday, 19'050, 1);
  const auto& fx = d.order(alice, if_, kSell, Offset::kCloseToday, 19'050, 1);
  const Effect& t = first(fx, EffectKind::kTrade);
  EXPECT_EQ(t.amount, Money(3'943'350));   // alice, taker, closes today
  EXPECT_EQ(t.amount2, Money(3'943'350));  // bob, maker, closes today
  // Alice's close profit: (3810 - 3800) * 300 = 3,000 CNY.
  EXPECT_EQ(d.engine().account(alice).close_profit, cny(3'000));
  EXPECT_EQ(d.engine().account(bob).close_profit, cny(-3'000));

  d.apply(Settle{{SettlementPrice{if_, PriceTicks(19'000)}}});
  d.order(bob, if_, kBuy, Offset::kClose, 19'050, 1);
  const auto& fx2 = d.order(alice, if_, kSell, Offset::kClose, 19'050, 1);
  const Effect& t2 = first(fx2, EffectKind::kTrade);
  EXPECT_EQ(t2.amount, Money(263'005));
  EXPECT_EQ(t2.amount2, Money(263'005));
}

// Settlement marks to the settlement price: long 1 IF from 3800, settled at 3820 ->
// +20 * 300 = +6,000 CNY; the short loses the same. Margin is recomputed at 3820: 114,600.
TEST_F(EngineTest, WorkedExampleSettlementMarkToMarket) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  const auto& fx = d.apply(Settle{{SettlementPrice{if_, PriceTicks(19'100)}}});
  EXPECT_EQ(count(fx, EffectKind::kAccountSettled), 2u);
  AccountView a = d.engine().account(alice);
  AccountView b = d.engine().account(bob);
  EXPECT_EQ(a.pre_balance, cny(1'006'000) - Money(262'314));
  EXPECT_EQ(b.pre_balance, cny(994'000) - Money(262'314));
  EXPECT_EQ(a.commission, Money(0));
  EXPECT_EQ(a.margin, cny(114'600));
  auto pos = d.engine().positions(alice);
  EXPECT_EQ(pos[0].long_side.his, Lots(1));
  EXPECT_EQ(pos[0].long_side.today, Lots(0));
  // Basis is now the settlement price, while the open cost keeps the open price.
  EXPECT_EQ(pos[0].long_side.position_cost_his, cny(1'146'000));
  EXPECT_EQ(pos[0].long_side.open_cost, cny(1'140'000));
  EXPECT_EQ(d.engine().instrument(if_).pre_settlement, PriceTicks(19'100));
  EXPECT_EQ(d.engine().trading_day(), 2u);
}

TEST_F(EngineTest, SettlementExpiresDayOrdersButKeepsGtc) {
  d.order(alice, if_, kBuy, kOpen, 18'900, 1, TimeCondition::kGfd);
  d.order(alice, if_, kBuy, kOpen, 18'800, 1, TimeCondition::kGtc);
  const auto& fx = d.apply(Settle{{}});
  ASSERT_EQ(count(fx, EffectKind::kOrderCancelled), 1u);
  EXPECT_EQ(static_cast<CancelReason>(first(fx, EffectKind::kOrderCancelled).reason),
            CancelReason::kExpired);
  EXPECT_EQ(d.engine().orders(alice).size(), 1u);
  // The GTC bid at 3760.0 keeps its margin frozen: 3760 * 300 * 10% = 112,800.
  EXPECT_EQ(d.engine().account(alice).frozen_margin, cny(112'800));
}

// Forced liquidation: alice holds 8 lots long with a thin balance; settlement at a lower price
// pushes margin / balance past 100%, and the engine closes part of her position against resting
// bids, until the ratio is restored.
TEST_F(EngineTest, WorkedExampleForcedLiquidation) {
  AccountId thin = d.account("thin", cny(1'000'000));
  AccountId carol = d.account("carol", cny(10'000'000));
  d.apply(SetRiskParams{kPpb});  // liquidate at margin / balance >= 100%
  // 8 lots at 3800: margin 8 * 114,000 = 912,000; fees 8 * 26.2314 = 209.8512.
  d.order(thin, if_, kBuy, kOpen, 19'000, 8);
  d.order(bob, if_, kSell, kOpen, 19'000, 8);
  EXPECT_EQ(d.engine().account(thin).margin, cny(912'000));
  // Carol's GTC bids survive settlement and absorb the liquidation.
  d.order(carol, if_, kBuy, kOpen, 18'000, 10, TimeCondition::kGtc);
  // Settle at 3790: loss 10 * 300 * 8 = 24,000 -> balance 1,000,000 - 24,000 - 209.8512
  // = 975,790.1488; margin at 3790: 8 * 113,700 = 909,600 -> ratio 93.2% < 100%: no action.
  const auto& fx1 = d.apply(Settle{{SettlementPrice{if_, PriceTicks(18'950)}}});
  EXPECT_EQ(count(fx1, EffectKind::kLiquidationStarted), 0u);
  // Settle at 3700 (18,500 ticks): loss vs 3790 is 90 * 300 * 8 = 216,000 -> balance
  // 759,790.1488; margin 8 * 111,000 = 888,000 -> ratio 116.9% >= 100%: liquidate.
  const auto& fx2 = d.apply(Settle{{SettlementPrice{if_, PriceTicks(18'500)}}});
  ASSERT_EQ(count(fx2, EffectKind::kLiquidationStarted), 1u);
  const Effect& l = first(fx2, EffectKind::kLiquidationStarted);
  EXPECT_EQ(l.account, thin);
  EXPECT_EQ(l.amount, Money(7'597'901'488));
  EXPECT_EQ(l.amount2, cny(888'000));
  // Lots to restore: floor(8 x (8,880,000,000e9 - 1e9 x 7,597,901,488) / 8,880,000,000e9) + 1 = 2.
  // Sold at carol's 3600.0 (18,000 ticks): close profit 2 x (10,800,000,000 - 11,100,000,000),
  // close fee 21,600,000,000 x 23,010 / 1e9 = 497,016, and the 6 lots left are marked at 18,000
  // too: balance 7,597,901,488 - 497,016 - 600,000,000 - 1,800,000,000 = 5,197,404,472 against
  // margin 6,660,000,000 (128%): still at risk, so floor(6 x 1,462,595,528e9 / 6,660,000,000e9) + 1
  // = 2 more. Then balance 5,196,907,456, margin 4,440,000,000 (85%): 4 lots stay.
  std::vector<Effect> trades;
  for (const Effect& e : fx2) {
    if (e.kind == EffectKind::kTrade) trades.push_back(e);
  }
  ASSERT_EQ(trades.size(), 2u);
  for (const Effect& t : trades) {
    EXPECT_EQ(t.account, thin);
    EXPECT_EQ(t.counter_account, carol);
    EXPECT_EQ(t.price, PriceTicks(18'000));
    EXPECT_EQ(t.volume, Lots(2));
  }
  EXPECT_EQ(d.engine().positions(thin)[0].long_side.total(), Lots(4));
  EXPECT_EQ(d.engine().account(thin).margin, Money(4'440'000'000));
  EXPECT_EQ(d.engine().account(thin).balance, Money(5'196'907'456));
}

TEST_F(EngineTest, PriceTimePriorityAndTradeAtRestingPrice) {
  AccountId carol = d.account("carol", cny(1'000'000));
  d.order(alice, if_, kSell, kOpen, 19'010, 1);  // order 1, worse price
  d.order(bob, if_, kSell, kOpen, 19'005, 1);    // order 2, best price
  d.order(alice, if_, kSell, kOpen, 19'005, 1);  // order 3, same price, later
  const auto& fx = d.order(carol, if_, kBuy, kOpen, 19'020, 3);
  ASSERT_EQ(count(fx, EffectKind::kTrade), 3u);
  std::vector<std::pair<std::uint64_t, std::int64_t>> got;
  for (const Effect& e : fx) {
    if (e.kind == EffectKind::kTrade) got.emplace_back(raw(e.counter_order), e.price.value);
  }
  std::vector<std::pair<std::uint64_t, std::int64_t>> want{{2, 19'005}, {3, 19'005}, {1, 19'010}};
  EXPECT_EQ(got, want);
  EXPECT_TRUE(d.engine().book(if_, 5).asks.empty());
}

TEST_F(EngineTest, SelfTradePreventionCancelsIncomingRemainder) {
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(alice, if_, kSell, kOpen, 19'001, 1);
  const auto& fx = d.order(alice, if_, kBuy, kOpen, 19'001, 3);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);  // with bob only
  const Effect& c = first(fx, EffectKind::kOrderCancelled);
  EXPECT_EQ(static_cast<CancelReason>(c.reason), CancelReason::kSelfTradePrevention);
  EXPECT_EQ(c.volume_left, Lots(2));
  EXPECT_EQ(d.engine().book(if_, 5).asks.size(), 1u);  // alice's own ask untouched
}

// A BUY OPEN LIMIT at 19,000 with the order's own self-trade prevention (none: the account's).
NewOrder buy_at_19000(AccountId a, InstrumentId i, std::int64_t lots,
                      std::optional<SelfTradePrevention> stp,
                      TimeCondition tc = TimeCondition::kGfd,
                      VolumeCondition vc = VolumeCondition::kAny) {
  return NewOrder{a,
                  i,
                  ClientOrderId(0),
                  kBuy,
                  kOpen,
                  PriceType::kLimit,
                  PriceTicks(19'000),
                  Lots(lots),
                  tc,
                  vc,
                  false,
                  stp};
}

// The order's own mode (here per order, the account's below). Alice's ask of 2 at 19,000 rests
// ahead of bob's ask of 1 at the same price; alice then bids 3 at 19,000.
NewOrder alice_bids_3(AccountId alice, InstrumentId i, std::optional<SelfTradePrevention> stp) {
  return buy_at_19000(alice, i, 3, stp);
}

// CANCEL_OLDEST: her ask is cancelled (2 lots), matching goes on with bob's (1 lot), and the
// remaining 2 lots of her bid rest.
TEST_F(EngineTest, SelfTradePreventionCancelOldestCancelsTheRestingOrderAndGoesOn) {
  d.order(alice, if_, kSell, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(bob, if_, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);
  const auto& fx = d.apply(alice_bids_3(alice, if_, SelfTradePrevention{StpMode::kCancelOldest}));
  ASSERT_EQ(fx.size(), 3u);
  EXPECT_EQ(fx[0].kind, EffectKind::kOrderAccepted);
  EXPECT_EQ(fx[1].kind, EffectKind::kOrderCancelled);
  EXPECT_EQ(fx[1].order, OrderId(1));  // her resting ask
  EXPECT_EQ(static_cast<CancelReason>(fx[1].reason), CancelReason::kSelfTradePrevention);
  EXPECT_EQ(fx[1].volume_left, Lots(2));
  EXPECT_EQ(fx[2].kind, EffectKind::kTrade);
  EXPECT_EQ(fx[2].counter_account, bob);
  EXPECT_EQ(fx[2].volume, Lots(1));
  const BookView b = d.engine().book(if_, 5);
  ASSERT_EQ(b.bids.size(), 1u);
  EXPECT_EQ(b.bids[0].volume, Lots(2));
  EXPECT_TRUE(b.asks.empty());
}

// CANCEL_BOTH: her ask and her whole bid are cancelled; bob's ask is untouched.
TEST_F(EngineTest, SelfTradePreventionCancelBothCancelsBoth) {
  d.order(alice, if_, kSell, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(bob, if_, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);
  const auto& fx = d.apply(alice_bids_3(alice, if_, SelfTradePrevention{StpMode::kCancelBoth}));
  ASSERT_EQ(fx.size(), 3u);
  EXPECT_EQ(fx[1].order, OrderId(1));
  EXPECT_EQ(fx[2].kind, EffectKind::kOrderCancelled);
  EXPECT_EQ(fx[2].order, OrderId(3));  // her bid, all 3 lots
  EXPECT_EQ(fx[2].volume_left, Lots(3));
  const BookView b = d.engine().book(if_, 5);
  EXPECT_TRUE(b.bids.empty());
  ASSERT_EQ(b.asks.size(), 1u);
  EXPECT_EQ(b.asks[0].volume, Lots(1));
  EXPECT_EQ(d.engine().account(alice).frozen_margin, Money(0));
}

// Scope USER, set for the account: alice's second account meets her first one's ask and, with
// the account's default (CANCEL_NEWEST), is cancelled; with scope ACCOUNT the two would trade.
TEST_F(EngineTest, SelfTradePreventionScopeUserSpansTheUsersAccounts) {
  d.apply(CreateAccount{UserId(0), "alice-2"});
  const AccountId alice2 = d.effects().at(0).account;
  d.apply(Deposit{alice2, cny(1'000'000)});
  d.order(alice, if_, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);
  const SelfTradePrevention user_scope{StpMode::kCancelNewest, StpScope::kUser};
  EXPECT_EQ(
      count(d.apply(SetAccountRisk{alice2, 0, true, user_scope}), EffectKind::kAccountRiskSet), 1u);
  EXPECT_EQ(d.engine().account_state(alice2).stp, user_scope);
  auto fx = d.order(alice2, if_, kBuy, kOpen, 19'000, 1);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 0u);
  EXPECT_EQ(static_cast<CancelReason>(first(fx, EffectKind::kOrderCancelled).reason),
            CancelReason::kSelfTradePrevention);
  // The order may choose scope ACCOUNT for itself: then the two accounts trade.
  fx = d.apply(buy_at_19000(alice2, if_, 1, SelfTradePrevention{}));
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
}

// FOK counts what it could fill: with CANCEL_OLDEST its own ask (which it would cancel) adds
// nothing and bob's 3 lots behind it are reachable; with CANCEL_NEWEST it would stop at its own.
TEST_F(EngineTest, SelfTradePreventionModeDecidesWhetherAFokCanFill) {
  d.order(alice, if_, kSell, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(bob, if_, kSell, kOpen, 19'000, 3, TimeCondition::kGtc);
  auto fok = [&](SelfTradePrevention stp) {
    return buy_at_19000(alice, if_, 3, stp, TimeCondition::kIoc, VolumeCondition::kAll);
  };
  EXPECT_EQ(reject_of(d.apply(fok(SelfTradePrevention{}))), RejectReason::kFokUnfillable);
  const auto& fx = d.apply(fok(SelfTradePrevention{StpMode::kCancelOldest}));
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(first(fx, EffectKind::kTrade).volume, Lots(3));
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.total(), Lots(3));
}

TEST_F(EngineTest, UndefinedSelfTradePreventionIsRefused) {
  const SelfTradePrevention bad{StpMode{4}, StpScope::kAccount};
  EXPECT_EQ(admin_reject_of(d.apply(SetAccountRisk{alice, 0, true, bad})),
            RejectReason::kInvalidParameter);
  EXPECT_EQ(d.engine().account_state(alice).stp, SelfTradePrevention{});
  EXPECT_EQ(reject_of(d.apply(
                alice_bids_3(alice, if_, SelfTradePrevention{StpMode::kCancelBoth, StpScope{0}}))),
            RejectReason::kInvalidParameter);
}

// IF2412 with trading day 1 as its last: alice buys 2 lots from bob at 3800.0 (19,000) and
// leaves a GTC bid; the day settles at 3820.0 (19,100). Her bid is cancelled (INSTRUMENT_EXPIRED),
// both sides are marked (+/- 100 ticks x 60 CNY x 2 = 12,000 CNY) and delivered in cash at
// 19,100 (value 19,100 x 2 x 600,000 minor = 2,292,000 CNY), and the instrument is delisted.
TEST(EngineExpiry, TheLastTradingDaysSettlementDeliversPositionsAndDelists) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.last_trading_day = 1;
  const InstrumentId i = d.instrument("IF2412", p, PriceTicks(19'000));
  const AccountId alice = d.account("alice", cny(1'000'000));
  const AccountId bob = d.account("bob", cny(1'000'000));
  d.order(bob, i, Direction::kSell, kOpen, 19'000, 2);
  d.order(alice, i, kBuy, kOpen, 19'000, 2);
  d.order(alice, i, kBuy, kOpen, 18'990, 1, TimeCondition::kGtc);
  const EffectBuffer& fx = d.apply(Settle{{SettlementPrice{i, PriceTicks(19'100)}}});
  const Effect& cancel = first(fx, EffectKind::kOrderCancelled);
  EXPECT_EQ(static_cast<CancelReason>(cancel.reason), CancelReason::kInstrumentExpired);
  std::vector<Effect> delivered;
  for (const Effect& f : fx) {
    if (f.kind == EffectKind::kPositionDelivered) delivered.push_back(f);
  }
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_EQ(delivered[0].account, alice);
  EXPECT_EQ(delivered[0].direction, kBuy);  // her long side
  EXPECT_EQ(delivered[1].account, bob);
  EXPECT_EQ(delivered[1].direction, Direction::kSell);
  for (const Effect& f : delivered) {
    EXPECT_EQ(f.volume, Lots(2));
    EXPECT_EQ(f.price, PriceTicks(19'100));
    EXPECT_EQ(f.amount, cny(2'292'000));
  }
  EXPECT_EQ(d.engine().instrument(i).status, InstrumentStatus::kDelisted);
  const AccountView a = d.engine().account(alice);
  // 1,000,000 + 12,000 - open fee 2,280,000 x 23.01e-6 (52.4628) = 1,011,947.5372 CNY.
  EXPECT_EQ(a.pre_balance, Money(10'119'475'372));
  EXPECT_EQ(a.margin, Money(0));
  EXPECT_EQ(a.available, a.balance);
  EXPECT_TRUE(d.engine().positions(alice).empty());
  EXPECT_EQ(d.engine().account(bob).pre_balance, Money(9'879'475'372));
  EXPECT_EQ(reject_of(d.order(alice, i, kBuy, kOpen, 19'100, 1)),
            RejectReason::kInstrumentDelisted);
  // A last trading day already settled is refused at listing.
  p.last_trading_day = 1;
  EXPECT_EQ(admin_reject_of(d.apply(CreateInstrument{"IF2411", "TEST", p, PriceTicks(19'000)})),
            RejectReason::kInvalidParameter);
}

TEST_F(EngineTest, IocFokMarketBestAndPostOnly) {
  d.order(bob, if_, kSell, kOpen, 19'000, 2);
  d.order(bob, if_, kSell, kOpen, 19'010, 2);
  // FOK for 5 cannot fill: rejected, book unchanged.
  auto fx = d.order(alice, if_, kBuy, kOpen, 19'010, 5, TimeCondition::kIoc, PriceType::kLimit,
                    VolumeCondition::kAll);
  EXPECT_EQ(reject_of(fx), RejectReason::kFokUnfillable);
  // IOC for 3 at 19,000 fills 2, cancels 1.
  fx = d.order(alice, if_, kBuy, kOpen, 19'000, 3, TimeCondition::kIoc);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(static_cast<CancelReason>(first(fx, EffectKind::kOrderCancelled).reason),
            CancelReason::kIocRemainder);
  // Post-only crossing the ask is rejected; below it rests.
  fx = d.order(alice, if_, kBuy, kOpen, 19'010, 1, TimeCondition::kGfd, PriceType::kLimit,
               VolumeCondition::kAny, true);
  EXPECT_EQ(reject_of(fx), RejectReason::kPostOnlyWouldCross);
  // MARKET buys 3 with 2 available: takes 2 at 19,010, the rest is cancelled.
  fx = d.order(alice, if_, kBuy, kOpen, 0, 3, TimeCondition::kIoc, PriceType::kMarket);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(first(fx, EffectKind::kTrade).price, PriceTicks(19'010));
  // MARKET / BEST into an empty side: no liquidity.
  fx = d.order(alice, if_, kBuy, kOpen, 0, 1, TimeCondition::kIoc, PriceType::kMarket);
  EXPECT_EQ(reject_of(fx), RejectReason::kNoLiquidity);
  d.order(bob, if_, kSell, kOpen, 19'020, 1);
  fx = d.order(alice, if_, kBuy, kOpen, 0, 2, TimeCondition::kGfd, PriceType::kBest);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(d.engine().book(if_, 5).bids.at(0).price, PriceTicks(19'020));  // rest rests
}

TEST_F(EngineTest, RejectCodes) {
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 0)), RejectReason::kInvalidVolume);
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 1'001)),
            RejectReason::kOrderVolumeLimitExceeded);
  // Band: +-10% of 3800 -> [3420, 4180] -> ticks [17,100, 20,900].
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 20'901, 1)),
            RejectReason::kPriceOutsideBand);
  EXPECT_FALSE(count(d.order(alice, if_, kBuy, kOpen, 20'900, 1), EffectKind::kOrderRejected));
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 17'099, 1)),
            RejectReason::kPriceOutsideBand);
  EXPECT_EQ(reject_of(d.order(alice, InstrumentId(9), kBuy, kOpen, 19'000, 1)),
            RejectReason::kUnknownInstrument);
  EXPECT_EQ(reject_of(d.order(AccountId(99), if_, kBuy, kOpen, 19'000, 1)),
            RejectReason::kUnknownAccount);
  // 9 lots need 9 * 114,000 margin > 1,000,000 minus what is already frozen.
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 9)),
            RejectReason::kInsufficientFunds);
  EXPECT_EQ(reject_of(d.order(alice, if_, kSell, Offset::kClose, 19'000, 1)),
            RejectReason::kInsufficientPosition);
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 1, TimeCondition::kGfd,
                              PriceType::kLimit, VolumeCondition::kAll)),
            RejectReason::kInvalidCombination);
  d.order(alice, if_, kBuy, kOpen, 18'000, 1, TimeCondition::kGfd, PriceType::kLimit,
          VolumeCondition::kAny, false, 77);
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 18'000, 1, TimeCondition::kGfd,
                              PriceType::kLimit, VolumeCondition::kAny, false, 77)),
            RejectReason::kDuplicateClientOrderId);
  d.apply(SetInstrumentStatus{if_, InstrumentStatus::kHalted});
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 1)),
            RejectReason::kInstrumentHalted);
  auto fx = d.apply(CancelOrder{alice, OrderRef{std::nullopt, ClientOrderId(77)}});
  EXPECT_EQ(count(fx, EffectKind::kOrderCancelled), 1u);  // cancels still work when halted
  fx = d.apply(CancelOrder{bob, OrderRef{OrderId(1), ClientOrderId(0)}});
  EXPECT_EQ(reject_of(fx), RejectReason::kOrderNotOwned);
  fx = d.apply(CancelOrder{bob, OrderRef{OrderId(12345), ClientOrderId(0)}});
  EXPECT_EQ(reject_of(fx), RejectReason::kUnknownOrder);
}

TEST_F(EngineTest, AmendKeepsPriorityOnlyWhenReducingAtSamePrice) {
  AccountId carol = d.account("carol", cny(1'000'000));
  d.order(alice, if_, kSell, kOpen, 19'000, 3);  // order 1
  d.order(bob, if_, kSell, kOpen, 19'000, 3);    // order 2
  // Reduce order 1 at the same price: keeps its place at the head.
  auto fx = d.apply(AmendOrder{alice, OrderRef{OrderId(1), {}}, PriceTicks(19'000), Lots(2)});
  EXPECT_EQ(count(fx, EffectKind::kOrderAmended), 1u);
  fx = d.order(carol, if_, kBuy, kOpen, 19'000, 1);
  EXPECT_EQ(first(fx, EffectKind::kTrade).counter_order, OrderId(1));
  // Grow order 1: goes behind order 2.
  d.apply(AmendOrder{alice, OrderRef{OrderId(1), {}}, PriceTicks(19'000), Lots(4)});
  fx = d.order(carol, if_, kBuy, kOpen, 19'000, 1);
  EXPECT_EQ(first(fx, EffectKind::kTrade).counter_order, OrderId(2));
  // Amending into the bid crosses and trades at the bid's price.
  d.order(carol, if_, kBuy, kOpen, 18'990, 1);
  fx = d.apply(AmendOrder{alice, OrderRef{OrderId(1), {}}, PriceTicks(18'990), Lots(4)});
  EXPECT_EQ(first(fx, EffectKind::kTrade).price, PriceTicks(18'990));
  EXPECT_EQ(
      reject_of(d.apply(AmendOrder{alice, OrderRef{OrderId(1), {}}, PriceTicks(18'990), Lots(3)})),
      RejectReason::kAmendNoChange);
}

// An account whose available funds went negative can still re-price an order without growing
// its reservation, and a failed amend leaves the order exactly as it was.
TEST_F(EngineTest, AmendWithNegativeAvailable) {
  AccountId poor = d.account("poor", cny(250'000));
  AccountId carol = d.account("carol", cny(1'000'000));
  d.order(poor, if_, kSell, kOpen, 20'000, 1, TimeCondition::kGtc);  // margin 120,000
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(poor, if_, kBuy, kOpen, 19'000, 1);  // long 1 at 3800, margin 114,000
  d.order(carol, if_, kBuy, kOpen, 17'200, 1);
  d.order(bob, if_, kSell, kOpen, 17'200, 1);  // last 3440: poor loses 108,000
  ASSERT_LT(d.engine().account(poor).available.value, 0);
  OrderId ask = d.engine().orders(poor).at(0).id;
  auto fx = d.apply(AmendOrder{poor, OrderRef{ask, {}}, PriceTicks(19'990), Lots(1)});
  EXPECT_EQ(count(fx, EffectKind::kOrderAmended), 1u);
  Snapshot before = d.engine().snapshot();
  fx = d.apply(AmendOrder{poor, OrderRef{ask, {}}, PriceTicks(19'990), Lots(2)});
  EXPECT_EQ(reject_of(fx), RejectReason::kInsufficientFunds);
  Snapshot after = d.engine().snapshot();
  after.last_seq = before.last_seq;
  after.last_timestamp_ns = before.last_timestamp_ns;
  after.effects_hash = before.effects_hash;
  EXPECT_EQ(hash_snapshot(after), hash_snapshot(before));
}

TEST_F(EngineTest, CloseTodayOrdersExpireAtSettlementWhateverTheirTimeCondition) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(alice, if_, kSell, Offset::kCloseToday, 19'500, 1, TimeCondition::kGtc);
  auto fx = d.apply(Settle{{}});
  ASSERT_EQ(count(fx, EffectKind::kOrderCancelled), 1u);
  EXPECT_EQ(static_cast<CancelReason>(first(fx, EffectKind::kOrderCancelled).reason),
            CancelReason::kExpired);
  EXPECT_EQ(d.engine().positions(alice)[0].long_side.frozen_his, Lots(0));
}

TEST_F(EngineTest, WithdrawNeverBelowMargin) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 8);  // freezes 912,000 + fees
  auto fx = d.apply(Withdraw{alice, cny(100'000)});
  EXPECT_EQ(count(fx, EffectKind::kAdminRejected), 1u);
  fx = d.apply(Withdraw{alice, cny(80'000)});
  EXPECT_EQ(count(fx, EffectKind::kWithdrawn), 1u);
  EXPECT_GE(d.engine().account(alice).available.value, 0);
}

TEST_F(EngineTest, CloseYesterdayOnlyTouchesHistory) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  EXPECT_EQ(reject_of(d.order(alice, if_, kSell, Offset::kCloseYesterday, 19'000, 1)),
            RejectReason::kInsufficientPosition);
  d.apply(Settle{{}});
  EXPECT_EQ(reject_of(d.order(alice, if_, kSell, Offset::kCloseToday, 19'000, 1)),
            RejectReason::kInsufficientPosition);
  auto fx = d.order(alice, if_, kSell, Offset::kCloseYesterday, 19'000, 1);
  EXPECT_EQ(count(fx, EffectKind::kOrderAccepted), 1u);
  EXPECT_EQ(d.engine().positions(alice)[0].long_side.frozen_his, Lots(1));
}

TEST_F(EngineTest, SnapshotRestoreGivesSameHashAndFuture) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(bob, if_, kSell, kOpen, 19'000, 1);
  d.order(bob, if_, kSell, kOpen, 19'010, 3, TimeCondition::kGtc, PriceType::kLimit,
          VolumeCondition::kAny, false, 5);
  Engine copy = Engine::restore(d.engine().snapshot());
  EXPECT_EQ(copy.state_hash(), d.engine().state_hash());
  EXPECT_EQ(copy.effects_hash(), d.engine().effects_hash());
  Event next{
      EventHeader{Seq(raw(d.engine().last_seq()) + 1), 1, 0},
      NewOrder{alice, if_, ClientOrderId(0), kBuy, kOpen, PriceType::kLimit, PriceTicks(19'010),
               Lots(2), TimeCondition::kGfd, VolumeCondition::kAny, false}};
  EffectBuffer a, b;
  d.engine().apply(next, a);
  copy.apply(next, b);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(copy.state_hash(), d.engine().state_hash());
  EXPECT_EQ(copy.effects_hash(), d.engine().effects_hash());
}

TEST_F(EngineTest, AdminValidation) {
  InstrumentParams bad = testing::if_params();
  bad.margin_long_ppb = -1;
  auto fx = d.apply(CreateInstrument{"BAD", "X", bad, PriceTicks(1)});
  EXPECT_EQ(static_cast<RejectReason>(first(fx, EffectKind::kAdminRejected).reason),
            RejectReason::kInvalidParameter);
  fx = d.apply(CreateInstrument{"IF2501", "X", testing::if_params(), PriceTicks(1)});
  EXPECT_EQ(static_cast<RejectReason>(first(fx, EffectKind::kAdminRejected).reason),
            RejectReason::kDuplicateName);
  InstrumentParams inexact = testing::if_params();
  inexact.price_tick_e8 = 1;  // 1e-8 * 300 * 1e4 minor is not a whole minor unit
  fx = d.apply(CreateInstrument{"IF2502", "X", inexact, PriceTicks(1)});
  EXPECT_EQ(count(fx, EffectKind::kAdminRejected), 1u);
  fx = d.apply(Deposit{alice, Money(-5)});
  EXPECT_EQ(count(fx, EffectKind::kAdminRejected), 1u);
  fx = d.apply(CreateAccount{UserId(77), "nobody"});
  EXPECT_EQ(static_cast<RejectReason>(first(fx, EffectKind::kAdminRejected).reason),
            RejectReason::kUnknownUser);
}

TEST_F(EngineTest, DelistCancelsRestingOrders) {
  d.order(alice, if_, kBuy, kOpen, 19'000, 1);
  d.order(bob, if_, kSell, kOpen, 19'100, 1);
  auto fx = d.apply(SetInstrumentStatus{if_, InstrumentStatus::kDelisted});
  EXPECT_EQ(count(fx, EffectKind::kOrderCancelled), 2u);
  EXPECT_EQ(d.engine().account(alice).frozen_margin, Money(0));
  EXPECT_EQ(reject_of(d.order(alice, if_, kBuy, kOpen, 19'000, 1)),
            RejectReason::kInstrumentDelisted);
}

// ---- money bounds, position limits with resting orders, bands (semantics version 2) ----------

// The instrument of the report: tick 1, multiplier 1,000,000,000, margin 100%, fee 5%, no band.
// Its tick value is 1 x 1e9 x 10,000 = 1e13 minor units per lot; with a position limit of 1 its
// price ceiling is floor(1e15 / (1 x 1e13)) = 100 ticks, below the reference price 900,000: the
// instrument cannot be listed (before, alice's second order aborted the process).
TEST(EngineBounds, AnInstrumentWhoseLotCanOverflowIsRefusedAsData) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.price_tick_e8 = kDecimalScale;
  p.multiplier_e8 = 1'000'000'000 * kDecimalScale;
  p.margin_long_ppb = p.margin_short_ppb = kPpb;
  p.fees.open_ppb = p.fees.close_ppb = p.fees.close_today_ppb = 50'000'000;
  p.price_band_ppb.reset();
  p.position_limit = Lots(1);
  const EffectBuffer& fx = d.apply(CreateInstrument{"BIG", "X", p, PriceTicks(900'000)});
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].kind, EffectKind::kAdminRejected);
  EXPECT_EQ(fx[0].reason, static_cast<std::uint16_t>(RejectReason::kNumericOverflow));
  // At reference 90 it lists, with ceiling 100: 100 is a price, 101 is not.
  const InstrumentId big = d.instrument("BIG", p, PriceTicks(90));
  EXPECT_EQ(d.engine().instrument(big).price_max, PriceTicks(100));
  const AccountId alice = d.account("alice", cny(10'000'000));
  const AccountId bob = d.account("bob", Money(kMoneyMax));
  EXPECT_EQ(reject_of(d.order(alice, big, kBuy, kOpen, 101, 1)), RejectReason::kInvalidPrice);
  // 1 lot at 100: notional 1e15, margin 1e15, fee 5e13: more than alice's 1e11 minor units.
  EXPECT_EQ(reject_of(d.order(alice, big, kBuy, kOpen, 100, 1)), RejectReason::kInsufficientFunds);
  d.order(bob, big, kSell, kOpen, 100, 1);
  EXPECT_EQ(count(d.effects(), EffectKind::kOrderAccepted), 1u);
  // Bob's deposits are at the bound: one more minor unit is refused, nothing changes.
  const EffectBuffer& more = d.apply(Deposit{bob, Money(1)});
  EXPECT_EQ(more.at(0).reason, static_cast<std::uint16_t>(RejectReason::kNumericOverflow));
  EXPECT_EQ(d.engine().account(bob).deposit.value, kMoneyMax);
  // A settlement price above the ceiling is refused too.
  const EffectBuffer& s = d.apply(Settle{{SettlementPrice{big, PriceTicks(101)}}});
  EXPECT_EQ(s.at(0).reason, static_cast<std::uint16_t>(RejectReason::kInvalidPrice));
}

// ETHUSDT on Binance USD-M: tick 0.01 USDT, lot 0.001 ETH, so a tick of one lot is worth
// 0.00001 USDT: not a whole number of CNY's 1e-4 units, 1,000 units of USDT's 1e-8. At 2,500.00
// (250,000 ticks) one lot is 2.5 USDT = 250,000,000 minor units; a 10% margin is 25,000,000
// and a 0.04% fee 100,000 (0.001 USDT).
TEST(EngineCurrency, AnExchangeInUsdtWithEightDecimalsListsEthusdt) {
  InstrumentParams p = testing::cu_params();
  p.price_tick_e8 = 1'000'000;  // 0.01
  p.multiplier_e8 = 100'000;    // 0.001
  p.fees.open_ppb = p.fees.close_ppb = p.fees.close_today_ppb = 400'000;
  p.price_band_ppb.reset();
  p.position_limit = Lots(1'000);
  {
    Driver cny_exchange;  // the default currency: CNY with 4 decimals
    EXPECT_EQ(admin_reject_of(cny_exchange.apply(
                  CreateInstrument{"ETHUSDT", "BINANCE", p, PriceTicks(250'000)})),
              RejectReason::kInvalidParameter);
  }
  Driver d;
  const EffectBuffer& set = d.apply(SetCurrency{"USDT", 8});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].kind, EffectKind::kCurrencySet);
  EXPECT_EQ(set[0].amount, Money(100'000'000));
  EXPECT_EQ(d.engine().currency(), "USDT");
  EXPECT_EQ(d.engine().money_scale(), 100'000'000);
  const InstrumentId eth = d.instrument("ETHUSDT", p, PriceTicks(250'000));
  // Ceiling: 1e15 / (1,000 lots x 1,000) = 1e9 ticks (10,000,000.00 USDT an ETH).
  EXPECT_EQ(d.engine().instrument(eth).price_max, PriceTicks(1'000'000'000));
  const Money usdt(100'000'000);
  const AccountId alice = d.account("alice", Money(1'000 * usdt.value));
  const AccountId bob = d.account("bob", Money(1'000 * usdt.value));
  d.order(alice, eth, kBuy, kOpen, 250'000, 1);
  d.order(bob, eth, Direction::kSell, kOpen, 250'000, 1);
  ASSERT_EQ(count(d.effects(), EffectKind::kTrade), 1u);
  const AccountView a = d.engine().account(alice);
  EXPECT_EQ(a.margin, Money(25'000'000));
  EXPECT_EQ(a.commission, Money(100'000));
  EXPECT_EQ(a.available, Money(1'000 * usdt.value - 25'000'000 - 100'000));
  // Snapshots carry the currency: a restored engine has the same state and the same scale.
  const Engine back = Engine::restore(d.engine().snapshot());
  EXPECT_EQ(back.state_hash(), d.engine().state_hash());
  EXPECT_EQ(back.currency(), "USDT");
  EXPECT_EQ(back.money_decimals(), 8u);
}

// Tick and multiplier near 2^60 each: their product, times 1e8 minor units per USDT, is past
// 2^127. The tick value must still be computed exactly (it is not a whole number of minor
// units here), not wrapped into a plausible one.
TEST(EngineCurrency, AHugeTickTimesMultiplierIsRefusedNotWrapped) {
  Driver d;
  d.apply(SetCurrency{"USDT", 8});
  InstrumentParams p = testing::cu_params();
  p.price_tick_e8 = 1'152'921'504'606'984'704;
  p.multiplier_e8 = 1'152'921'504'606'709'444;
  p.price_band_ppb.reset();
  p.position_limit = Lots(1);
  EXPECT_EQ(admin_reject_of(d.apply(CreateInstrument{"X", "TEST", p, PriceTicks(1)})),
            RejectReason::kInvalidParameter);
  // (1e8 x 2^30) x 2^40 x 1e8 / 1e16 = 2^70 minor units is whole, but past int64: refused too.
  p.price_tick_e8 = std::int64_t{100'000'000} << 30;
  p.multiplier_e8 = std::int64_t{1} << 40;
  EXPECT_EQ(admin_reject_of(d.apply(CreateInstrument{"Y", "TEST", p, PriceTicks(1)})),
            RejectReason::kInvalidParameter);
}

// The currency is chosen once, before anything is counted in it; codes are A-Z / 0-9, 1 to 7
// bytes; at most 8 decimals. A refused request changes nothing.
TEST(EngineCurrency, TheCurrencyIsSetBeforeAnyInstrumentOrAccountAndValidated) {
  Driver d;
  EXPECT_EQ(admin_reject_of(d.apply(SetCurrency{"", 2})), RejectReason::kNameTooLong);
  EXPECT_EQ(admin_reject_of(d.apply(SetCurrency{"USDTUSDT", 2})), RejectReason::kNameTooLong);
  EXPECT_EQ(admin_reject_of(d.apply(SetCurrency{"usdt", 2})), RejectReason::kInvalidParameter);
  EXPECT_EQ(admin_reject_of(d.apply(SetCurrency{"USD", 9})), RejectReason::kInvalidParameter);
  EXPECT_EQ(d.engine().currency(), "CNY");
  EXPECT_EQ(d.engine().money_decimals(), 4u);
  // Users hold no money: a currency may still be set (and set again) after one exists.
  d.apply(CreateUser{"alice"});
  EXPECT_EQ(count(d.apply(SetCurrency{"JPY", 0}), EffectKind::kCurrencySet), 1u);
  EXPECT_EQ(count(d.apply(SetCurrency{"USD", 2}), EffectKind::kCurrencySet), 1u);
  d.apply(CreateAccount{UserId(0), "alice"});
  EXPECT_EQ(admin_reject_of(d.apply(SetCurrency{"USDT", 8})), RejectReason::kCurrencyFixed);
  EXPECT_EQ(d.engine().currency(), "USD");
  EXPECT_EQ(d.engine().money_scale(), 100);
  Driver listed;
  listed.instrument("cu2501", testing::cu_params(), PriceTicks(7'000));
  EXPECT_EQ(admin_reject_of(listed.apply(SetCurrency{"USDT", 8})), RejectReason::kCurrencyFixed);
}

// The money bound on a day's running totals (core/limits.h). BIG: tick 1, multiplier 1e9, so a
// tick of one lot is 1e13 minor units; position limit 1, so the price ceiling is 100. Alice buys
// 1 lot at 1 from bob and sells it back at 100: +99 ticks = 9.9e14 of close_profit a round (bob
// -9.9e14; no margin, no fees). A fill must leave room for the most one fill can add (2e15), so
// after 1,009 rounds (9.9891e17 > 1e18 - 2e15) her next order is cancelled as MONEY_LIMIT before
// it fills, and her total stays within 1e18.
TEST(EngineBounds, AnAccountAtTheMoneyBoundTakesNoMoreFills) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.price_tick_e8 = kDecimalScale;
  p.multiplier_e8 = 1'000'000'000 * kDecimalScale;
  p.margin_long_ppb = p.margin_short_ppb = 0;
  p.fees = FeeSchedule{};
  p.price_band_ppb.reset();
  p.max_order_volume = Lots(1);
  p.position_limit = Lots(1);
  const InstrumentId big = d.instrument("BIG", p, PriceTicks(50));
  const AccountId alice = d.account("alice", cny(1));
  const AccountId bob = d.account("bob", Money(kMoneyMax));
  constexpr std::int64_t kRound = 99 * 10'000'000'000'000;  // 9.9e14
  int rounds = 0;
  for (; rounds < 2'000; ++rounds) {
    d.order(bob, big, Direction::kSell, kOpen, 1, 1);
    const EffectBuffer& open = d.order(alice, big, kBuy, kOpen, 1, 1);
    if (count(open, EffectKind::kTrade) == 0) {
      const Effect& c = first(open, EffectKind::kOrderCancelled);
      EXPECT_EQ(static_cast<CancelReason>(c.reason), CancelReason::kMoneyLimit);
      EXPECT_EQ(c.account, alice);
      break;
    }
    d.order(bob, big, kBuy, Offset::kClose, 100, 1);
    d.order(alice, big, Direction::kSell, Offset::kClose, 100, 1);
  }
  EXPECT_EQ(rounds, 1'009);
  EXPECT_EQ(d.engine().account(alice).close_profit, Money(1'009 * kRound));
  EXPECT_EQ(d.engine().account(bob).close_profit, Money(-1'009 * kRound));
  EXPECT_LE(d.engine().account(alice).close_profit.value, kMoneyMax);
}

// Position limit 5: two resting buys of 3 and 2 fill it; a third buy of 1 is refused although
// nothing is held yet, and cancelling one frees its lots again.
TEST(EngineBounds, RestingOpenOrdersCountAgainstThePositionLimit) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.position_limit = Lots(5);
  const InstrumentId i = d.instrument("IF2501", p, PriceTicks(19'000));
  const AccountId a = d.account("alice", cny(10'000'000));
  d.order(a, i, kBuy, kOpen, 18'990, 3, TimeCondition::kGtc);
  d.order(a, i, kBuy, kOpen, 18'980, 2, TimeCondition::kGtc);
  EXPECT_EQ(reject_of(d.order(a, i, kBuy, kOpen, 18'970, 1)), RejectReason::kPositionLimitExceeded);
  // The short side has its own limit.
  EXPECT_EQ(count(d.order(a, i, kSell, kOpen, 19'010, 5), EffectKind::kOrderAccepted), 1u);
  // Amending the 2-lot order to 3 needs 3 + 3 > 5; to 1 is fine.
  const AmendOrder grow{a, OrderRef{OrderId(2), {}}, PriceTicks(18'980), Lots(3)};
  EXPECT_EQ(reject_of(d.apply(grow)), RejectReason::kPositionLimitExceeded);
  d.apply(CancelOrder{a, OrderRef{OrderId(1), {}}});
  EXPECT_EQ(count(d.order(a, i, kBuy, kOpen, 18'970, 3), EffectKind::kOrderAccepted), 1u);
}

// Band 10% around 19,000: [17,100, 20,900]. Settling at 17,000 moves it to [15,300, 18,700]:
// the GTC bid at 19,000 (above 18,700) and the GTC ask at 20,000 are cancelled as OUTSIDE_BAND,
// the bid at 18,000 stays.
TEST(EngineBounds, OrdersOutsideAMovedBandAreCancelled) {
  Driver d;
  const InstrumentId i = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  const AccountId a = d.account("alice", cny(10'000'000));
  const AccountId b = d.account("bob", cny(10'000'000));
  d.order(a, i, kBuy, kOpen, 18'000, 1, TimeCondition::kGtc);   // order 1
  d.order(a, i, kBuy, kOpen, 19'000, 1, TimeCondition::kGtc);   // order 2
  d.order(b, i, kSell, kOpen, 20'000, 1, TimeCondition::kGtc);  // order 3
  const EffectBuffer& fx = d.apply(Settle{{SettlementPrice{i, PriceTicks(17'000)}}});
  std::vector<std::uint64_t> cancelled;
  for (const Effect& e : fx) {
    if (e.kind != EffectKind::kOrderCancelled) continue;
    EXPECT_EQ(e.reason, static_cast<std::uint16_t>(CancelReason::kOutsideBand));
    cancelled.push_back(raw(e.order));
  }
  EXPECT_EQ(cancelled, (std::vector<std::uint64_t>{2, 3}));  // bids then asks
  EXPECT_TRUE(d.engine().order(OrderId(1)).has_value());
  // Both freed their margin: alice holds only order 1's.
  EXPECT_EQ(d.engine().account(b).frozen_margin.value, 0);
}

// UpdateInstrument narrowing the band cancels what it leaves outside, so a MARKET order never
// meets a resting order beyond the band: asks at 19,000 (1 lot) and 21,000 (2 lots) with no band;
// a 10% band ([17,100, 20,900]) cancels the 21,000 ask; a MARKET buy of 3 takes the 1 lot and its
// remaining 2 are an IOC_REMAINDER (BAND_REMAINDER is retired).
TEST(EngineBounds, NarrowingTheBandCancelsWhatItLeavesOutside) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.price_band_ppb.reset();
  const InstrumentId i = d.instrument("IF2501", p, PriceTicks(19'000));
  const AccountId a = d.account("alice", cny(10'000'000));
  const AccountId b = d.account("bob", cny(10'000'000));
  d.order(b, i, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);  // order 1
  d.order(b, i, kSell, kOpen, 21'000, 2, TimeCondition::kGtc);  // order 2
  p.price_band_ppb = 100'000'000;
  const EffectBuffer& narrowed = d.apply(UpdateInstrument{i, p});
  const Effect& gone = first(narrowed, EffectKind::kOrderCancelled);
  EXPECT_EQ(gone.reason, static_cast<std::uint16_t>(CancelReason::kOutsideBand));
  EXPECT_EQ(gone.order, OrderId(2));
  const EffectBuffer& fx =
      d.order(a, i, kBuy, kOpen, 0, 3, TimeCondition::kIoc, PriceType::kMarket);
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  const Effect& c = first(fx, EffectKind::kOrderCancelled);
  EXPECT_EQ(c.reason, static_cast<std::uint16_t>(CancelReason::kIocRemainder));
  EXPECT_EQ(c.volume_left, Lots(2));
}

// Risk between an account's own trades. Alice (150,000 CNY) buys 1 IF at 3800.0 (19,000 ticks):
// margin 10% of 1,140,000 = 114,000 CNY, fee ceil(11,400,000,000 x 23,010 / 1e9) = 262,314 minor
// units; her risk ratio is 114,000 / 149,973.7686 = 76% < 90%. Bob and Carol then trade at 3700.0:
// alice loses 100 x 300 = 30,000 CNY, balance 1,500,000,000 - 262,314 - 300,000,000 =
// 1,199,737,686 minor units, ratio 95% >= 90%. That trade does not check her (she is not in it);
// MarkToMarket checks the three holders and liquidates her.
TEST(EngineRisk, MarkToMarketChecksHoldersWhoDidNotTrade) {
  Driver d;
  const InstrumentId i = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  const AccountId alice = d.account("alice", cny(150'000));
  const AccountId bob = d.account("bob", cny(10'000'000));
  const AccountId carol = d.account("carol", cny(10'000'000));
  d.apply(SetRiskParams{900'000'000});
  d.order(bob, i, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);
  EXPECT_EQ(count(d.order(alice, i, kBuy, kOpen, 19'000, 1), EffectKind::kLiquidationStarted), 0u);
  d.order(carol, i, kBuy, kOpen, 18'500, 1, TimeCondition::kGtc);
  const EffectBuffer& moved = d.order(bob, i, kSell, kOpen, 18'500, 1);
  EXPECT_EQ(count(moved, EffectKind::kTrade), 1u);
  EXPECT_EQ(count(moved, EffectKind::kLiquidationStarted), 0u);
  EXPECT_EQ(d.engine().account(alice).balance.value, 1'199'737'686);
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  ASSERT_GE(fx.size(), 2u);
  EXPECT_EQ(fx[0].kind, EffectKind::kMarkedToMarket);
  EXPECT_EQ(fx[0].volume, Lots(3));  // alice, bob, carol hold IF
  const Effect& l = first(fx, EffectKind::kLiquidationStarted);
  EXPECT_EQ(l.account, alice);
  EXPECT_EQ(l.amount.value, 1'199'737'686);
  EXPECT_EQ(l.amount2.value, 1'140'000'000);
  EXPECT_EQ(count(fx, EffectKind::kLiquidationStarted), 1u);
  // Without a liquidation ratio nobody is checked.
  Driver quiet;
  quiet.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  EXPECT_EQ(quiet.apply(MarkToMarket{}).at(0).volume, Lots(0));
}

// Liquidation closes only what restores the ratio. Alice (300,000 CNY) buys 2 IF at 3800.0: margin
// 2 x 114,000 = 228,000, fee 524,628 minor units. Others trade at 3700.0: her balance is
// 3,000,000,000 - 524,628 - 600,000,000 = 2,399,475,372 minor units, ratio 95% >= 90%. Closing k of
// 2 lots releases 1,140,000,000 x k: the least k with (2,280,000,000 - 1,140,000,000 k) x 1e9 <
// 0.9e9 x 2,399,475,372 is floor(2 x 120,472,165,200,000,000 / 2,280,000,000,000,000,000) + 1 = 1.
// The forced sale of 1 lot meets carol's bid at 3690.0 (18,450 ticks): close-today fee
// 11,070,000,000 x 345,000 / 1e9 = 3,819,150; close profit and position profit -330,000,000 each;
// balance 3,000,000,000 - 4,343,778 - 660,000,000 = 2,335,656,222, margin 1,140,000,000: 48.8%.
// One lot stays.
TEST(EngineRisk, LiquidationClosesOnlyWhatRestoresTheRatio) {
  Driver d;
  const InstrumentId i = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  const AccountId alice = d.account("alice", cny(300'000));
  const AccountId bob = d.account("bob", cny(10'000'000));
  const AccountId carol = d.account("carol", cny(10'000'000));
  d.apply(SetRiskParams{900'000'000});
  d.order(bob, i, kSell, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(alice, i, kBuy, kOpen, 19'000, 2);
  d.order(carol, i, kBuy, kOpen, 18'450, 5, TimeCondition::kGtc);
  d.order(carol, i, kBuy, kOpen, 18'500, 1, TimeCondition::kGtc);
  d.order(bob, i, kSell, kOpen, 18'500, 1);
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  const Effect& l = first(fx, EffectKind::kLiquidationStarted);
  EXPECT_EQ(l.amount.value, 2'399'475'372);
  EXPECT_EQ(l.amount2.value, 2'280'000'000);
  const Effect& forced = first(fx, EffectKind::kOrderAccepted);
  EXPECT_EQ(forced.reason, 1);
  EXPECT_EQ(forced.volume, Lots(1));
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  EXPECT_EQ(first(fx, EffectKind::kTrade).price, PriceTicks(18'450));
  const AccountView v = d.engine().account(alice);
  EXPECT_EQ(v.balance.value, 2'335'656'222);
  EXPECT_EQ(v.margin.value, 1'140'000'000);
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.total(), Lots(1));
}

// With no bid the forced sale fills nothing; the account stays at risk and the next
// MarkToMarket tries again, and succeeds once a bid is there.
TEST(EngineRisk, LiquidationRetriesWhenTheBookWasEmpty) {
  Driver d;
  const InstrumentId i = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  const AccountId alice = d.account("alice", cny(300'000));
  const AccountId bob = d.account("bob", cny(10'000'000));
  const AccountId carol = d.account("carol", cny(10'000'000));
  d.apply(SetRiskParams{900'000'000});
  d.order(bob, i, kSell, kOpen, 19'000, 2, TimeCondition::kGtc);
  d.order(alice, i, kBuy, kOpen, 19'000, 2);
  d.order(carol, i, kBuy, kOpen, 18'500, 1, TimeCondition::kGtc);
  d.order(bob, i, kSell, kOpen, 18'500, 1);
  const EffectBuffer& empty = d.apply(MarkToMarket{});
  EXPECT_EQ(count(empty, EffectKind::kLiquidationStarted), 1u);
  EXPECT_EQ(count(empty, EffectKind::kTrade), 0u);
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.total(), Lots(2));
  EXPECT_EQ(d.engine().stuck_liquidations(), 1u);  // the server's cue to try again
  d.order(carol, i, kBuy, kOpen, 18'450, 5, TimeCondition::kGtc);
  const EffectBuffer& again = d.apply(MarkToMarket{});
  EXPECT_EQ(count(again, EffectKind::kLiquidationStarted), 1u);
  EXPECT_EQ(count(again, EffectKind::kTrade), 1u);
  EXPECT_EQ(d.engine().positions(alice).at(0).long_side.total(), Lots(1));
  EXPECT_EQ(d.engine().stuck_liquidations(), 0u);
}

// The insurance fund. Dan (120,000 CNY) buys 1 IF at 3800.0 (no band; ratio 100%). Others trade
// at 3000.0 (15,000 ticks): his balance is 1,200,000,000 - 262,314 - 2,400,000,000 < 0, so the
// whole lot is sold, at carol's 3000.0: close profit (9,000,000,000 - 11,400,000,000), close-today
// fee 9,000,000,000 x 345,000 / 1e9 = 3,105,000: balance 1,200,000,000 - 262,314 - 2,400,000,000
// - 3,105,000 = -1,203,367,314 minor units with nothing left to sell. A fund of 1,000,000 CNY pays
// it all; a fund of 100,000 CNY pays 1,000,000,000 and 203,367,314 stays owed.
void insurance_case(std::int64_t fund_cny, std::int64_t paid, std::int64_t unpaid) {
  Driver d;
  InstrumentParams p = testing::if_params();
  p.price_band_ppb.reset();
  const InstrumentId i = d.instrument("IF2501", p, PriceTicks(19'000));
  const AccountId dan = d.account("dan", cny(120'000));
  const AccountId bob = d.account("bob", cny(10'000'000));
  const AccountId carol = d.account("carol", cny(10'000'000));
  const AccountId fund = d.account("fund", cny(fund_cny));
  d.apply(SetRiskParams{kPpb, fund});
  d.order(bob, i, kSell, kOpen, 19'000, 1, TimeCondition::kGtc);
  EXPECT_EQ(count(d.order(dan, i, kBuy, kOpen, 19'000, 1), EffectKind::kLiquidationStarted), 0u);
  d.order(carol, i, kBuy, kOpen, 15'000, 1, TimeCondition::kGtc);
  d.order(bob, i, kSell, kOpen, 15'000, 1);
  d.order(carol, i, kBuy, kOpen, 15'000, 1, TimeCondition::kGtc);
  const EffectBuffer& fx = d.apply(MarkToMarket{});
  EXPECT_EQ(count(fx, EffectKind::kTrade), 1u);
  const Effect& c = first(fx, EffectKind::kInsuranceCovered);
  EXPECT_EQ(c.account, dan);
  EXPECT_EQ(c.counter_account, fund);
  EXPECT_EQ(c.amount.value, paid);
  EXPECT_EQ(c.amount2.value, unpaid);
  EXPECT_EQ(d.engine().account(dan).balance.value, -unpaid);
  EXPECT_EQ(d.engine().account(fund).balance.value, fund_cny * kMoneyScale - paid);
}

TEST(EngineRisk, TheInsuranceFundPaysWhatALiquidatedAccountOwes) {
  insurance_case(1'000'000, 1'203'367'314, 0);
}

TEST(EngineRisk, WhatTheFundCannotPayStaysOwed) {
  insurance_case(100'000, 1'000'000'000, 203'367'314);
}

// A leadership term (cluster mode): recorded with its epoch and leader, in the state hash and the
// snapshot; a term not above the current epoch, or without a leader, changes nothing.
TEST(LeaderTerm, EpochsOnlyGrowAndTheTermIsInTheState) {
  Driver d;
  const std::uint64_t before = d.engine().state_hash();
  const EffectBuffer& first_term = d.apply(LeaderTerm{5, 2});
  ASSERT_EQ(first_term.size(), 1u);
  EXPECT_EQ(first_term[0].kind, EffectKind::kTermStarted);
  EXPECT_EQ(first_term[0].amount.value, 5);
  EXPECT_EQ(first_term[0].volume.value, 2);
  EXPECT_EQ(d.engine().epoch(), 5u);
  EXPECT_EQ(d.engine().leader(), 2u);
  const std::uint64_t after = d.engine().state_hash();
  EXPECT_NE(before, after);

  EXPECT_EQ(admin_reject_of(d.apply(LeaderTerm{5, 3})), RejectReason::kStaleEpoch);
  EXPECT_EQ(admin_reject_of(d.apply(LeaderTerm{4, 1})), RejectReason::kStaleEpoch);
  EXPECT_EQ(admin_reject_of(d.apply(LeaderTerm{6, 0})), RejectReason::kInvalidParameter);
  EXPECT_EQ(admin_reject_of(d.apply(LeaderTerm{std::uint64_t{1} << 63, 1})),
            RejectReason::kInvalidParameter);
  EXPECT_EQ(d.engine().epoch(), 5u);
  EXPECT_EQ(d.engine().leader(), 2u);

  const Engine restored = Engine::restore(d.engine().snapshot());
  EXPECT_EQ(restored.epoch(), 5u);
  EXPECT_EQ(restored.leader(), 2u);
  EXPECT_EQ(restored.state_hash(), d.engine().state_hash());
  EXPECT_EQ(d.apply(LeaderTerm{6, 1})[0].kind, EffectKind::kTermStarted);
  EXPECT_EQ(d.engine().leader(), 1u);
}

}  // namespace
}  // namespace qx::core
