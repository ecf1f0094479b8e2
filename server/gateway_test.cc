#include "server/gateway.h"

#include <gtest/gtest.h>

namespace qx::server {
namespace {

Principal trader(const std::string& name) {
  return Principal{name, Role::kTrader, 1, "jti", 0};
}

OrderRequest limit_buy(const Principal& who) {
  OrderRequest r;
  r.who = who;
  r.account = std::string("alice-01");
  r.instrument = std::string("IF2501");
  r.order.direction = core::Direction::kBuy;
  r.order.offset = core::Offset::kOpen;
  r.order.price_type = core::PriceType::kLimit;
  r.order.time_condition = core::TimeCondition::kGfd;
  r.order.volume_condition = core::VolumeCondition::kAny;
  r.order.volume = core::Lots(1);
  r.price = PriceRef{false, 380'000'000'000};
  return r;
}

TEST(GatewayCheck, OrdersFromEveryTransportMeetTheSameRules) {
  EXPECT_FALSE(check(limit_buy(trader("alice"))));
  auto with = [](auto change) {
    OrderRequest r = limit_buy(trader("alice"));
    change(r);
    return check(r);
  };
  EXPECT_EQ(with([](OrderRequest& r) { r.who.role = Role::kViewer; })->code, GateCode::kForbidden);
  EXPECT_EQ(with([](OrderRequest& r) { r.who.role = Role::kAdmin; })->code, GateCode::kForbidden);
  EXPECT_EQ(with([](OrderRequest& r) { r.order.volume = core::Lots(0); })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.order.volume = core::Lots(kVolumeMax + 1); })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.order.direction = core::Direction{}; })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.order.offset = static_cast<core::Offset>(99); })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.price.value = 0; })->code, GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.price.value = kPriceMax + 1; })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) { r.account = std::string("alice\0", 6); })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) {
              r.order.client_order_id = core::ClientOrderId(kIdMax + 1);
            })->code,
            GateCode::kBadRequest);
  // Self-trade prevention: only the defined modes and scopes (a binary client can send any
  // number; journaling an undefined one would stop the sequencer).
  EXPECT_FALSE(with([](OrderRequest& r) {
    r.order.stp = core::SelfTradePrevention{core::StpMode::kCancelBoth, core::StpScope::kUser};
  }));
  EXPECT_EQ(with([](OrderRequest& r) {
              r.order.stp = core::SelfTradePrevention{static_cast<core::StpMode>(4)};
            })->code,
            GateCode::kBadRequest);
  EXPECT_EQ(with([](OrderRequest& r) {
              r.order.stp = core::SelfTradePrevention{core::StpMode::kCancelOldest,
                                                      static_cast<core::StpScope>(200)};
            })->code,
            GateCode::kBadRequest);
  // A market order needs no price.
  EXPECT_FALSE(with([](OrderRequest& r) {
    r.order.price_type = core::PriceType::kMarket;
    r.price.value = 0;
  }));
}

TEST(GatewayCheck, AnOrderIsNamedByExactlyOneId) {
  core::OrderRef none, both, order, client;
  both.order_id = core::OrderId(1);
  both.client_order_id = core::ClientOrderId(2);
  order.order_id = core::OrderId(1);
  client.client_order_id = core::ClientOrderId(2);
  EXPECT_TRUE(check_order_ref(none));
  EXPECT_TRUE(check_order_ref(both));
  EXPECT_FALSE(check_order_ref(order));
  EXPECT_FALSE(check_order_ref(client));
  CancelRequest c{trader("alice"), std::string("alice-01"), order};
  EXPECT_FALSE(check(c));
  c.who.role = Role::kAuditor;
  EXPECT_EQ(check(c)->code, GateCode::kForbidden);
}

TEST(GatewayAuthorize, TradersTradeTheirOwnReadersReadAll) {
  core::Engine e;
  core::EffectBuffer fx;
  std::uint64_t seq = 0;
  auto apply = [&](core::EventBody body) {
    ++seq;
    e.apply(core::Event{{core::Seq(seq), static_cast<std::int64_t>(seq), 0}, std::move(body)}, fx);
  };
  apply(core::CreateUser{"alice"});
  apply(core::CreateUser{"bob"});
  apply(core::CreateAccount{*e.find_user("alice"), "alice-01"});
  apply(core::CreateAccount{*e.find_user("bob"), "bob-01"});
  core::AccountId a{};
  EXPECT_FALSE(authorize(e, trader("alice"), std::string("alice-01"), Access::kTrade, a));
  EXPECT_EQ(a, *e.find_account("alice-01"));
  EXPECT_EQ(authorize(e, trader("alice"), std::string("bob-01"), Access::kTrade, a)->code,
            GateCode::kForbidden);
  EXPECT_EQ(authorize(e, trader("alice"), core::AccountId(1), Access::kRead, a)->code,
            GateCode::kForbidden);
  EXPECT_EQ(authorize(e, trader("alice"), core::AccountId(7), Access::kRead, a)->code,
            GateCode::kUnknownAccount);
  EXPECT_EQ(authorize(e, trader("alice"), std::string("nobody"), Access::kRead, a)->code,
            GateCode::kUnknownAccount);
  const Principal auditor{"auditor", Role::kAuditor, 9, "j", 0};
  EXPECT_FALSE(authorize(e, auditor, std::string("bob-01"), Access::kRead, a));
  EXPECT_EQ(authorize(e, auditor, std::string("bob-01"), Access::kTrade, a)->code,
            GateCode::kForbidden);
  const Principal viewer{"alice", Role::kViewer, 1, "j", 0};
  EXPECT_FALSE(authorize(e, viewer, std::string("alice-01"), Access::kRead, a));
  EXPECT_EQ(authorize(e, viewer, std::string("alice-01"), Access::kTrade, a)->code,
            GateCode::kForbidden);
}

}  // namespace
}  // namespace qx::server
