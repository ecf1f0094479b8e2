// Engine limits (SetLimits): each limit's reject, with hand-counted examples.
#include <gtest/gtest.h>

#include "core/engine.h"
#include "core/test_support.h"

namespace qx::core {
namespace {

using testing::admin_reject_of;
using testing::cny;
using testing::Driver;
using testing::first;
using testing::kBuy;
using testing::kOpen;
using testing::kSell;
using testing::reject_of;

TEST(EngineLimits, EachLimitRefusesWithItsOwnCode) {
  Driver d;
  const EffectBuffer& set = d.apply(SetLimits{EngineLimits{1, 2, 4, 2, 1}});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].kind, EffectKind::kLimitsSet);
  EXPECT_EQ(d.engine().limits(), (EngineLimits{1, 2, 4, 2, 1}));

  const InstrumentId i = d.instrument("IF2501", testing::if_params(), PriceTicks(19'000));
  EXPECT_EQ(admin_reject_of(d.apply(
                CreateInstrument{"IF2502", "CFFEX", testing::if_params(), PriceTicks(19'000)})),
            RejectReason::kInstrumentLimit);
  const AccountId alice = d.account("alice", cny(1'000'000));
  const AccountId bob = d.account("bob", cny(1'000'000));
  d.apply(CreateUser{"carol"});
  EXPECT_EQ(admin_reject_of(d.apply(CreateAccount{UserId(2), "carol"})),
            RejectReason::kAccountLimit);

  // Two orders per account by default; alice's third is refused.
  d.order(alice, i, kBuy, kOpen, 18'990, 1);
  d.order(alice, i, kBuy, kOpen, 18'980, 1);
  EXPECT_EQ(reject_of(d.order(alice, i, kBuy, kOpen, 18'970, 1)), RejectReason::kTooManyOpenOrders);
  // One order per price level: bob's bid at alice's 18,990 would rest there and is refused; an
  // IOC there (it never rests) is not.
  d.order(bob, i, kSell, kOpen, 19'010, 1);
  EXPECT_EQ(reject_of(d.order(bob, i, kBuy, kOpen, 18'990, 1)), RejectReason::kPriceLevelFull);
  EXPECT_EQ(first(d.order(bob, i, kBuy, kOpen, 18'990, 1, TimeCondition::kIoc),
                  EffectKind::kOrderCancelled)
                .reason,
            static_cast<std::uint16_t>(CancelReason::kIocRemainder));
  // An amendment onto a full level is refused; one that stays at its price is not.
  const OrderId second = d.engine().orders(alice).at(1).id;  // the bid at 18,980
  EXPECT_EQ(reject_of(d.apply(AmendOrder{alice, OrderRef{second, ClientOrderId(0)},
                                         PriceTicks(18'990), Lots(1)})),
            RejectReason::kPriceLevelFull);
  // An account's own max_open_orders replaces the default: alice may now hold 5, but the
  // exchange holds 3 orders of its 4: alice's fourth fills it, and then anyone's is refused.
  d.apply(SetAccountRisk{alice, 5, true, {}});
  d.order(alice, i, kBuy, kOpen, 18'970, 1);
  EXPECT_EQ(reject_of(d.order(alice, i, kBuy, kOpen, 18'960, 1)), RejectReason::kOrderLimit);
  EXPECT_EQ(reject_of(d.order(bob, i, kSell, kOpen, 19'020, 1)), RejectReason::kOrderLimit);
  const NewOrder stop = testing::stop_order(
      bob, i, kSell, kOpen, PriceType::kMarket, 0, 1,
      StopTrigger{TriggerKind::kStop, TriggerSource::kMark, PriceTicks(18'000)});
  EXPECT_EQ(reject_of(d.apply(stop)), RejectReason::kOrderLimit);  // stops count too

  // A lower limit keeps what exists and refuses what is new.
  d.apply(SetLimits{EngineLimits{1, 2, 2, 2, 1}});
  EXPECT_EQ(d.engine().orders(alice).size(), 3u);
  d.apply(CancelOrder{alice, OrderRef{second, ClientOrderId(0)}});
  EXPECT_EQ(reject_of(d.order(bob, i, kSell, kOpen, 19'020, 1)), RejectReason::kOrderLimit);
  // Limits survive a snapshot.
  EXPECT_EQ(Engine::restore(d.engine().snapshot()).limits(), (EngineLimits{1, 2, 2, 2, 1}));
}

TEST(EngineLimits, LimitsAboveTheMaximaOrTheMemoryBudgetAreRefused) {
  Driver d;
  EXPECT_EQ(admin_reject_of(d.apply(SetLimits{EngineLimits{0, 0, kOrdersLimitMax + 1, 0, 0}})),
            RejectReason::kInvalidParameter);
  EXPECT_EQ(admin_reject_of(d.apply(SetLimits{EngineLimits{kInstrumentsLimitMax + 1, 0, 0, 0, 0}})),
            RejectReason::kInvalidParameter);
  // 80M accounts and 80M orders at 256 bytes each: 40.96e9 bytes, above the 32 GiB budget.
  EXPECT_EQ(admin_reject_of(d.apply(SetLimits{EngineLimits{0, 80'000'000, 80'000'000, 0, 0}})),
            RejectReason::kInvalidParameter);
  EXPECT_EQ(d.engine().limits(), EngineLimits{});
}

}  // namespace
}  // namespace qx::core
