// Tests of sim/order_model.h against the real engine: after every event the model's live orders
// and positions must equal what the engine holds, for hand-written scenarios (rest, partial
// fill, amend, cancel, close orders, settlement expiry) and after a snapshot load.
#include "sim/order_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "core/engine.h"
#include "sim/workload.h"

namespace qx::sim {
namespace {

using core::AccountId;
using core::Direction;
using core::Lots;
using core::Offset;
using core::PriceTicks;

class Harness {
 public:
  Harness() {
    InstrumentSpec s = cu2501_spec();
    apply(core::CreateInstrument{s.code, s.exchange, s.params, s.pre_settlement});
    apply(core::CreateUser{"alice"});
    apply(core::CreateUser{"bob"});
    apply(core::CreateAccount{core::UserId(0), "alice.1"});
    apply(core::CreateAccount{core::UserId(1), "bob.1"});
    apply(core::Deposit{AccountId(0), yuan(10'000'000)});
    apply(core::Deposit{AccountId(1), yuan(10'000'000)});
  }

  void apply(core::EventBody body) {
    seq_ += 1;
    effects_.clear();
    const std::int64_t t = kSessionStartNs + static_cast<std::int64_t>(seq_);
    engine_.apply(core::Event{{core::Seq(seq_), t, 0}, std::move(body)}, effects_);
    model_.observe(effects_);
  }

  void order(AccountId a, std::uint64_t cid, Direction d, Offset off, std::int64_t price,
             std::int64_t volume, core::TimeCondition tc = core::TimeCondition::kGfd) {
    core::NewOrder o;
    o.account = a;
    o.instrument = core::InstrumentId(0);
    o.client_order_id = core::ClientOrderId(cid);
    o.direction = d;
    o.offset = off;
    o.price_type = core::PriceType::kLimit;
    o.price = PriceTicks(price);
    o.volume = Lots(volume);
    o.time_condition = tc;
    o.volume_condition = core::VolumeCondition::kAny;
    apply(o);
  }

  // The model's live orders equal the engine's resting orders, and positions agree.
  void expect_in_step() const {
    std::vector<core::OrderState> resting;
    for (std::uint32_t a = 0; a < engine_.account_count(); ++a) {
      for (const core::OrderState& o : engine_.orders(AccountId(a))) resting.push_back(o);
    }
    ASSERT_EQ(model_.live_count(), resting.size());
    for (const core::OrderState& o : resting) {
      const ModelOrder* m = model_.find(o.id);
      ASSERT_NE(m, nullptr) << "order " << core::raw(o.id);
      EXPECT_EQ(m->price, o.price);
      EXPECT_EQ(m->volume_left, o.volume_left);
      EXPECT_EQ(m->account, o.account);
      EXPECT_EQ(m->direction, o.direction);
    }
    const core::BookView top = engine_.book(core::InstrumentId(0), 1);
    EXPECT_EQ(model_.best_bid(core::InstrumentId(0)),
              top.bids.empty() ? std::nullopt : std::optional(top.bids.front().price));
    EXPECT_EQ(model_.best_ask(core::InstrumentId(0)),
              top.asks.empty() ? std::nullopt : std::optional(top.asks.front().price));
    for (std::uint32_t a = 0; a < engine_.account_count(); ++a) {
      for (const core::PositionView& p : engine_.positions(AccountId(a))) {
        const ModelPosition m = model_.position(AccountId(a), p.instrument);
        EXPECT_EQ(m.long_side.held, p.long_side.total());
        EXPECT_EQ(m.short_side.held, p.short_side.total());
        EXPECT_EQ(m.long_side.closing, p.long_side.frozen_his + p.long_side.frozen_today);
        EXPECT_EQ(m.short_side.closing, p.short_side.frozen_his + p.short_side.frozen_today);
      }
    }
  }

  core::Engine engine_;
  core::EffectBuffer effects_;
  OrderModel model_;
  std::uint64_t seq_ = 0;
};

TEST(OrderModel, TracksRestFillAmendCancel) {
  Harness h;
  h.order(AccountId(0), 1, Direction::kBuy, Offset::kOpen, 7'400, 5);
  h.expect_in_step();
  EXPECT_EQ(h.model_.live_count(), 1u);

  // Bob sells 2 into Alice's bid: Alice keeps 3 resting; both hold positions.
  h.order(AccountId(1), 1, Direction::kSell, Offset::kOpen, 7'400, 2);
  h.expect_in_step();
  EXPECT_EQ(h.model_.totals().trades, 1u);
  EXPECT_EQ(h.model_.position(AccountId(0), core::InstrumentId(0)).long_side.held, Lots(2));
  EXPECT_EQ(h.model_.position(AccountId(1), core::InstrumentId(0)).short_side.held, Lots(2));
  EXPECT_EQ(h.model_.last_price(core::InstrumentId(0)), PriceTicks(7'400));

  // Amend the rest down a tick and up in volume, then cancel it by client id.
  const core::OrderId alice = h.model_.live_at(0).id;
  core::OrderRef by_id;
  by_id.order_id = alice;
  h.apply(core::AmendOrder{AccountId(0), by_id, PriceTicks(7'399), Lots(6)});
  h.expect_in_step();
  EXPECT_EQ(h.model_.find(alice)->volume_left, Lots(6));
  core::OrderRef by_client;
  by_client.client_order_id = core::ClientOrderId(1);
  h.apply(core::CancelOrder{AccountId(0), by_client});
  h.expect_in_step();
  EXPECT_EQ(h.model_.live_count(), 0u);
  EXPECT_EQ(h.model_.totals().cancelled, 1u);
}

TEST(OrderModel, TracksCloseOrdersAndTheirFrozenVolume) {
  Harness h;
  h.order(AccountId(0), 1, Direction::kBuy, Offset::kOpen, 7'400, 4);
  h.order(AccountId(1), 1, Direction::kSell, Offset::kOpen, 7'400, 4);
  // Alice offers to close 3 of her 4 long lots; it rests and holds 3 lots.
  h.order(AccountId(0), 2, Direction::kSell, Offset::kClose, 7'420, 3);
  h.expect_in_step();
  ModelPosition p = h.model_.position(AccountId(0), core::InstrumentId(0));
  EXPECT_EQ(p.long_side.closing, Lots(3));
  EXPECT_EQ(p.long_side.closable(), Lots(1));
  // Bob closes 2 of his short against it: both sides shrink.
  h.order(AccountId(1), 2, Direction::kBuy, Offset::kClose, 7'420, 2);
  h.expect_in_step();
  p = h.model_.position(AccountId(0), core::InstrumentId(0));
  EXPECT_EQ(p.long_side.held, Lots(2));
  EXPECT_EQ(p.long_side.closing, Lots(1));
  EXPECT_EQ(h.model_.position(AccountId(1), core::InstrumentId(0)).short_side.held, Lots(2));
  // Settlement expires the GFD close order and frees its volume.
  h.apply(core::Settle{});
  h.expect_in_step();
  EXPECT_EQ(h.model_.live_count(), 0u);
  EXPECT_EQ(h.model_.position(AccountId(0), core::InstrumentId(0)).long_side.closing, Lots(0));
}

TEST(OrderModel, RejectsLeaveTheModelUnchanged) {
  Harness h;
  // Closing without a position and a volume beyond the limit are refused.
  h.order(AccountId(0), 1, Direction::kSell, Offset::kClose, 7'400, 1);
  h.order(AccountId(0), 2, Direction::kBuy, Offset::kOpen, 7'400, 100'000);
  h.expect_in_step();
  EXPECT_EQ(h.model_.totals().rejected, 2u);
  EXPECT_EQ(h.model_.live_count(), 0u);
}

TEST(OrderModel, LoadFromSnapshotMatchesObservedModel) {
  SessionConfig config;
  config.users = 10;
  config.settle_every_events = 3'000;
  SessionGenerator gen(config);
  core::Engine engine;
  core::EffectBuffer effects;
  for (int i = 0; i < 10'000; ++i) {
    core::Event e = gen.next();
    effects.clear();
    engine.apply(e, effects);
    gen.observe(effects);
  }
  OrderModel loaded;
  loaded.load(engine.snapshot());
  const OrderModel& seen = gen.model();
  ASSERT_EQ(loaded.live_count(), seen.live_count());
  for (std::size_t i = 0; i < seen.live_count(); ++i) {
    const ModelOrder& o = seen.live_at(i);
    const ModelOrder* l = loaded.find(o.id);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->price, o.price);
    EXPECT_EQ(l->volume_left, o.volume_left);
    EXPECT_EQ(l->offset, o.offset);
  }
  for (std::uint32_t a = 0; a < engine.account_count(); ++a) {
    for (std::uint32_t i = 0; i < engine.instrument_count(); ++i) {
      const ModelPosition x = loaded.position(AccountId(a), core::InstrumentId(i));
      const ModelPosition y = seen.position(AccountId(a), core::InstrumentId(i));
      EXPECT_EQ(x.long_side.held, y.long_side.held);
      EXPECT_EQ(x.short_side.held, y.short_side.held);
      EXPECT_EQ(x.long_side.closing, y.long_side.closing);
      EXPECT_EQ(x.short_side.closing, y.short_side.closing);
    }
  }
}

}  // namespace
}  // namespace qx::sim
