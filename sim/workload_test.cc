// Tests of sim/workload.h: determinism per seed, well-formed headers, a session that exercises
// the engine the way real trading does (fills, rejects of several kinds, closes, amends,
// cancels, settlements), a model that stays in step with the engine, and exchange-core's mix
// holding its shape (command shares, resting count, price levels).
#include "sim/workload.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/engine.h"

namespace qx::sim {
namespace {

using core::raw;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// Every field of an event as integers (strings by their bytes), for exact comparison.
std::vector<std::int64_t> encode(const core::Event& e) {
  std::vector<std::int64_t> w{static_cast<std::int64_t>(raw(e.header.seq)), e.header.timestamp_ns,
                              e.header.source, static_cast<std::int64_t>(e.body.index())};
  auto str = [&w](const std::string& s) {
    w.push_back(static_cast<std::int64_t>(s.size()));
    for (char c : s) w.push_back(c);
  };
  auto ref = [&w](const core::OrderRef& r) {
    w.push_back(r.order_id ? static_cast<std::int64_t>(raw(*r.order_id)) : -1);
    w.push_back(static_cast<std::int64_t>(raw(r.client_order_id)));
  };
  std::visit(Overloaded{
                 [&](const core::CreateInstrument& x) {
                   str(x.code);
                   str(x.exchange);
                   const core::InstrumentParams& p = x.params;
                   w.insert(w.end(), {p.price_tick_e8, p.multiplier_e8, p.margin_long_ppb,
                                      p.margin_short_ppb, p.fees.open_per_lot.value,
                                      p.fees.open_ppb, p.fees.close_per_lot.value, p.fees.close_ppb,
                                      p.fees.close_today_per_lot.value, p.fees.close_today_ppb,
                                      p.price_band_ppb.value_or(-1), p.max_order_volume.value,
                                      p.position_limit.value, x.pre_settlement.value});
                 },
                 [&](const core::CreateUser& x) { str(x.name); },
                 [&](const core::CreateAccount& x) {
                   w.push_back(raw(x.user));
                   str(x.name);
                 },
                 [&](const core::Deposit& x) {
                   w.insert(w.end(), {raw(x.account), x.amount.value});
                 },
                 [&](const core::Withdraw& x) {
                   w.insert(w.end(), {raw(x.account), x.amount.value});
                 },
                 [&](const core::SetAccountRisk& x) {
                   w.insert(w.end(), {raw(x.account), x.max_open_orders, x.enabled ? 1 : 0});
                 },
                 [&](const core::SetRiskParams& x) { w.push_back(x.liquidation_ratio_ppb); },
                 [&](const core::Settle& x) {
                   for (const core::SettlementPrice& p : x.prices) {
                     w.insert(w.end(), {raw(p.instrument), p.price.value});
                   }
                 },
                 [&](const core::NewOrder& x) {
                   w.insert(w.end(),
                            {raw(x.account), raw(x.instrument),
                             static_cast<std::int64_t>(raw(x.client_order_id)), raw(x.direction),
                             raw(x.offset), raw(x.price_type), x.price.value, x.volume.value,
                             raw(x.time_condition), raw(x.volume_condition), x.post_only ? 1 : 0});
                 },
                 [&](const core::AmendOrder& x) {
                   w.push_back(raw(x.account));
                   ref(x.ref);
                   w.insert(w.end(), {x.new_price.value, x.new_volume_left.value});
                 },
                 [&](const core::CancelOrder& x) {
                   w.push_back(raw(x.account));
                   ref(x.ref);
                 },
                 [&](const auto&) { ADD_FAILURE() << "unexpected event kind " << e.body.index(); },
             },
             e.body);
  return w;
}

SessionConfig small_session(std::uint64_t seed) {
  SessionConfig c;
  c.seed = seed;
  c.users = 20;
  c.settle_every_events = 20'000;
  c.resting_target_per_instrument = 100;
  return c;
}

TEST(SessionGenerator, SameSeedGivesIdenticalEvents) {
  const auto a = generate_session(small_session(7), 30'000);
  const auto b = generate_session(small_session(7), 30'000);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(encode(a[i]), encode(b[i])) << "event " << i;
  }
}

TEST(SessionGenerator, DifferentSeedsGiveDifferentTrading) {
  const auto a = generate_session(small_session(1), 5'000);
  const auto b = generate_session(small_session(2), 5'000);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += encode(a[i]) != encode(b[i]) ? 1u : 0u;
  EXPECT_GT(differ, a.size() / 2);
}

TEST(SessionGenerator, HeadersAreWellFormed) {
  const SessionConfig config = small_session(3);
  const auto events = generate_session(config, 50'000);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().header.timestamp_ns, config.start_time_ns);
  for (std::size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(raw(events[i].header.seq), i + 1);
    if (i > 0) {
      ASSERT_GT(events[i].header.timestamp_ns, events[i - 1].header.timestamp_ns);
    }
    const bool admin = !std::holds_alternative<core::NewOrder>(events[i].body) &&
                       !std::holds_alternative<core::AmendOrder>(events[i].body) &&
                       !std::holds_alternative<core::CancelOrder>(events[i].body);
    // Trading requests come from a session (a user); admin events from the operator.
    EXPECT_EQ(events[i].header.source == 0, admin) << "event " << i;
  }
  // Two settlements, each followed by the next day's 09:30 opening.
  int settles = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    if (!std::holds_alternative<core::Settle>(events[i].body)) continue;
    settles += 1;
    EXPECT_GE(events[i + 1].header.timestamp_ns, config.start_time_ns + settles * kNsPerDay);
  }
  EXPECT_EQ(settles, 2);
}

TEST(SessionGenerator, ExercisesTheEngineLikeRealTrading) {
  SessionGenerator gen(small_session(11));
  core::Engine engine;
  core::EffectBuffer effects;
  std::map<core::EffectKind, int> kinds;
  std::set<std::uint16_t> rejects;
  std::set<std::uint16_t> cancels;
  int closes_accepted = 0;
  for (int i = 0; i < 60'000; ++i) {
    core::Event e = gen.next();
    effects.clear();
    engine.apply(e, effects);
    gen.observe(effects);
    for (const core::Effect& f : effects) {
      kinds[f.kind] += 1;
      if (f.kind == core::EffectKind::kOrderRejected) rejects.insert(f.reason);
      if (f.kind == core::EffectKind::kOrderCancelled) cancels.insert(f.reason);
      if (f.kind == core::EffectKind::kOrderAccepted && f.offset != core::Offset::kOpen) {
        closes_accepted += 1;
      }
    }
    if (i % 20'000 == 19'999) engine.check_invariants();
  }
  EXPECT_FALSE(gen.in_setup());
  EXPECT_GT(kinds[core::EffectKind::kOrderAccepted], 10'000);
  EXPECT_GT(kinds[core::EffectKind::kTrade], 2'000);
  EXPECT_GT(kinds[core::EffectKind::kOrderAmended], 1'000);
  EXPECT_GT(kinds[core::EffectKind::kOrderCancelled], 5'000);
  EXPECT_GT(kinds[core::EffectKind::kDeposited], 100);
  EXPECT_GT(kinds[core::EffectKind::kWithdrawn], 10);
  EXPECT_EQ(kinds[core::EffectKind::kSettlementDone], 2);
  EXPECT_GT(closes_accepted, 1'000);
  // Rejects are realistic and varied, but not the bulk of the flow.
  EXPECT_LT(kinds[core::EffectKind::kOrderRejected], kinds[core::EffectKind::kOrderAccepted]);
  for (core::RejectReason r :
       {core::RejectReason::kPriceOutsideBand, core::RejectReason::kFokUnfillable,
        core::RejectReason::kOrderVolumeLimitExceeded, core::RejectReason::kUnknownOrder}) {
    EXPECT_TRUE(rejects.count(static_cast<std::uint16_t>(r))) << core::to_string(r);
  }
  for (core::CancelReason r : {core::CancelReason::kUserRequest, core::CancelReason::kIocRemainder,
                               core::CancelReason::kExpired}) {
    EXPECT_TRUE(cancels.count(static_cast<std::uint16_t>(r))) << core::to_string(r);
  }
  // The generator's view of the book is the engine's.
  EXPECT_EQ(gen.model().live_count(), engine.stats().orders_resting);
}

// Runs a mix generator through setup and prefill on `engine`, then loads its model.
void build_mix(MixGenerator& gen, core::Engine& engine) {
  core::EffectBuffer effects;
  while (gen.phase() != MixGenerator::Phase::kCommands) {
    effects.clear();
    engine.apply(gen.next(), effects);
    gen.observe(effects);
  }
  gen.load(engine.snapshot());
}

TEST(MixGenerator, PrefillBuildsTheExchangeCoreBook) {
  MixGenerator gen(MixConfig{});
  core::Engine engine;
  build_mix(gen, engine);
  EXPECT_EQ(engine.account_count(), 2'000u);
  EXPECT_EQ(engine.stats().orders_resting, 1'000u);
  EXPECT_EQ(gen.model().live_count(), 1'000u);
  const core::BookView book = engine.book(core::InstrumentId(0), 10'000);
  EXPECT_EQ(book.bids.size() + book.asks.size(), 750u);
  EXPECT_LT(book.bids.front().price, book.asks.front().price);
}

TEST(MixGenerator, CommandStreamKeepsItsShape) {
  MixGenerator gen(MixConfig{});
  core::Engine engine;
  build_mix(gen, engine);
  std::map<std::size_t, int> kinds;  // by variant index
  int trade_commands = 0;
  int rejected = 0;
  constexpr int kCommands = 200'000;
  core::EffectBuffer effects;
  for (int i = 0; i < kCommands; ++i) {
    core::Event e = gen.next();
    kinds[e.body.index()] += 1;
    effects.clear();
    engine.apply(e, effects);
    gen.observe(effects);
    bool traded = false;
    for (const core::Effect& f : effects) {
      traded = traded || f.kind == core::EffectKind::kTrade;
      rejected += f.kind == core::EffectKind::kOrderRejected ? 1 : 0;
    }
    trade_commands += traded ? 1 : 0;
  }
  const int amends = kinds[core::EventBody(core::AmendOrder{}).index()];
  const int cancels = kinds[core::EventBody(core::CancelOrder{}).index()];
  const int news = kinds[core::EventBody(core::NewOrder{}).index()];
  EXPECT_NEAR(amends, kCommands * 82 / 100, kCommands / 100);
  EXPECT_NEAR(cancels, kCommands * 6 / 100, kCommands / 100);
  EXPECT_NEAR(news, kCommands * 12 / 100, kCommands / 100);
  // With every effect observed, nothing refers to a vanished order.
  EXPECT_EQ(rejected, 0);
  // Some commands trade, most do not (exchange-core: about 6%).
  EXPECT_GT(trade_commands, kCommands / 100);
  EXPECT_LT(trade_commands, kCommands * 20 / 100);
  const std::uint64_t resting = engine.stats().orders_resting;
  EXPECT_GT(resting, 700u);
  EXPECT_LT(resting, 1'300u);
  EXPECT_EQ(gen.model().live_count(), resting);
}

TEST(MixGenerator, BatchedObservationStaysConsistent) {
  MixConfig config;
  config.instruments = 20;
  config.accounts = 500;
  config.resting_orders = 20'000;
  MixGenerator gen(config);
  core::Engine engine;
  build_mix(gen, engine);
  EXPECT_EQ(engine.stats().orders_resting, 20'000u);
  std::vector<core::Event> batch;
  core::EffectBuffer effects;
  for (int round = 0; round < 20; ++round) {
    batch.clear();
    for (int i = 0; i < 5'000; ++i) batch.push_back(gen.next());
    effects.clear();
    for (const core::Event& e : batch) engine.apply(e, effects);
    gen.observe(effects);
    ASSERT_EQ(gen.model().live_count(), engine.stats().orders_resting) << "round " << round;
  }
  engine.check_invariants();
}

TEST(MixGenerator, SameSeedGivesIdenticalStreams) {
  auto run = [] {
    MixGenerator gen(MixConfig{});
    core::Engine engine;
    build_mix(gen, engine);
    core::EffectBuffer effects;
    std::vector<std::vector<std::int64_t>> out;
    for (int i = 0; i < 20'000; ++i) {
      core::Event e = gen.next();
      out.push_back(encode(e));
      effects.clear();
      engine.apply(e, effects);
      gen.observe(effects);
    }
    return std::pair(out, engine.state_hash());
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace qx::sim
