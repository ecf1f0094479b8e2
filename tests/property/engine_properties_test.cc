// Engine properties over generated journals (engine_gen.h), 1,000 cases each under ctest.
//
//   a. AgreesWithModel      effects and state match the naive model (model.h) after every event;
//   b. ConservesMoney       sum of balances == deposits - withdrawals - fees, after every event;
//   c. LongEqualsShort      per instrument, open long lots == open short lots, after every event;
//   d. BookNeverCrossed     best bid < best ask outside call auctions and halts, and
//                           check_invariants() holds, after every event;
//   e. Deterministic        two fresh engines give identical effects and hashes;
//   f. RestoreSameFuture    snapshot at a random point, restore, apply the rest to both: identical
//                           effects and hashes.
// Every property includes SetRiskParams, so forced liquidation runs; the model covers it too.
// (a) runs twice: on the general scenarios, and with every instrument alternating call auctions
// and continuous trading (AgreesWithModelInSessions).
// A failure names the event (1-based sequence number) and what differs; rapidcheck prints the
// shrunk scenario and the seed (replay with RC_PARAMS="seed=N"). The regression tests at the
// end replay minimal journals that these properties found.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "core/engine.h"
#include "core/test_support.h"
#include "tests/property/engine_gen.h"
#include "tests/property/model.h"
#include "tests/property/model_compare.h"

namespace qx::property {
namespace {

using core::Effect;
using core::EffectKind;

auto all_fields(const Effect& e) {
  return std::tie(e.kind, e.direction, e.offset, e.counter_offset, e.reason, e.pad_, e.account,
                  e.counter_account, e.instrument, e.user, e.order, e.counter_order,
                  e.client_order_id, e.trade, e.price, e.volume, e.volume_left, e.amount,
                  e.amount2);
}

// ---- a -------------------------------------------------------------------------------------

// What the engine did in the events compared, for rapidcheck's classification.
struct Seen {
  std::size_t fired = 0;         // stops triggered
  std::size_t liquidations = 0;  // LIQUIDATION_STARTED
  std::size_t forced_fills = 0;  // trades of forced orders
  std::size_t auctions = 0;      // AUCTION_UNCROSSED
  std::size_t covered = 0;       // INSURANCE_COVERED with a payment
};

// Applies the scenario to an engine and to the model; returns "" or the first disagreement.
std::string agree_with_model(const Scenario& s, Seen& seen) {
  core::Engine engine;
  Model model;
  core::EffectBuffer effects;
  std::vector<Effect> expected;
  std::vector<std::uint64_t> forced;  // ids of forced orders
  for (const core::Event& e : to_events(s)) {
    effects.clear();
    expected.clear();
    engine.apply(e, effects);
    model.apply(e.header.timestamp_ns, e.body, expected);
    for (const Effect& f : effects) {
      if (f.kind == EffectKind::kStopTriggered) seen.fired += 1;
      if (f.kind == EffectKind::kAuctionUncrossed) seen.auctions += 1;
      if (f.kind == EffectKind::kLiquidationStarted) seen.liquidations += 1;
      if (f.kind == EffectKind::kInsuranceCovered && f.amount.value > 0) seen.covered += 1;
      if (f.kind == EffectKind::kOrderAccepted && f.reason == 1) {
        forced.push_back(core::raw(f.order));  // a forced order (docs: reason = 1)
      }
      if (f.kind == EffectKind::kTrade && !forced.empty() && forced.back() == core::raw(f.order)) {
        seen.forced_fills += 1;
      }
    }
    std::string diff = compare_effects(effects, expected);
    if (diff.empty()) diff = compare_state(engine, model);
    if (!diff.empty()) return where(e) + diff;
  }
  return "";
}

RC_GTEST_PROP(engine_properties, AgreesWithModel, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  Seen seen;
  const std::string diff = agree_with_model(s, seen);
  if (!diff.empty()) RC_FAIL(diff);
  RC_TAG(seen.fired == 0   ? "no stop fired"
         : seen.fired == 1 ? "one stop fired"
                           : "several stops fired");
  RC_TAG(seen.liquidations == 0   ? "no liquidation"
         : seen.forced_fills == 0 ? "liquidations, no forced fill"
                                  : "liquidations with forced fills");
  RC_CLASSIFY(seen.covered > 0, "insurance fund paid");
  RC_CLASSIFY(seen.auctions > 0, "an auction uncrossed");
}

// The same, where every instrument alternates call auctions and continuous trading every few
// seconds (docs/semantics.md, "Sessions and call auctions"), with forced liquidation.
RC_GTEST_PROP(engine_properties, AgreesWithModelInSessions, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true, .sessions = true});
  Seen seen;
  const std::string diff = agree_with_model(s, seen);
  if (!diff.empty()) RC_FAIL(diff);
  RC_TAG(seen.auctions == 0   ? "no auction uncrossed"
         : seen.auctions == 1 ? "one auction uncrossed"
                              : "several auctions uncrossed");
  RC_CLASSIFY(seen.liquidations > 0, "liquidations");
  bool back = false;
  bool days = false;
  for (std::size_t i = 1; i < s.times_ns.size(); ++i) {
    back = back || s.times_ns[i] < s.times_ns[i - 1];
    days = days || s.times_ns[i] - s.times_ns[i - 1] >= 86'400'000'000'000;
  }
  RC_CLASSIFY(back, "the clock stepped back");
  RC_CLASSIFY(days, "the clock skipped a day");
}

// ---- b -------------------------------------------------------------------------------------

RC_GTEST_PROP(engine_properties, ConservesMoney, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  core::Engine engine;
  core::EffectBuffer effects;
  std::int64_t deposits = 0;
  std::int64_t withdrawals = 0;
  std::int64_t fees = 0;
  for (const core::Event& e : to_events(s)) {
    effects.clear();
    engine.apply(e, effects);
    for (const Effect& f : effects) {
      if (f.kind == EffectKind::kDeposited) deposits += f.amount.value;
      if (f.kind == EffectKind::kWithdrawn) withdrawals += f.amount.value;
      if (f.kind == EffectKind::kTrade) fees += f.amount.value + f.amount2.value;
    }
    std::int64_t balances = 0;
    for (std::uint32_t a = 0; a < engine.account_count(); ++a) {
      balances += engine.account(core::AccountId(a)).balance.value;
    }
    if (balances != deposits - withdrawals - fees) {
      RC_FAIL(where(e) + "sum of balances " + std::to_string(balances) + " != deposits " +
              std::to_string(deposits) + " - withdrawals " + std::to_string(withdrawals) +
              " - fees " + std::to_string(fees));
    }
  }
}

// ---- c -------------------------------------------------------------------------------------

RC_GTEST_PROP(engine_properties, LongEqualsShort, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  core::Engine engine;
  core::EffectBuffer effects;
  for (const core::Event& e : to_events(s)) {
    effects.clear();
    engine.apply(e, effects);
    std::vector<std::int64_t> net_long(engine.instrument_count());
    std::vector<std::int64_t> net_short(engine.instrument_count());
    for (std::uint32_t a = 0; a < engine.account_count(); ++a) {
      for (const core::PositionView& p : engine.positions(core::AccountId(a))) {
        net_long.at(core::raw(p.instrument)) += p.long_side.total().value;
        net_short.at(core::raw(p.instrument)) += p.short_side.total().value;
      }
    }
    for (std::size_t i = 0; i < net_long.size(); ++i) {
      if (net_long[i] != net_short[i]) {
        RC_FAIL(where(e) + "instrument " + std::to_string(i) + " long " +
                std::to_string(net_long[i]) + " != short " + std::to_string(net_short[i]));
      }
    }
  }
}

// ---- d -------------------------------------------------------------------------------------

RC_GTEST_PROP(engine_properties, BookNeverCrossed, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  core::Engine engine;
  core::EffectBuffer effects;
  for (const core::Event& e : to_events(s)) {
    effects.clear();
    engine.apply(e, effects);
    engine.check_invariants();  // stops the process with the values on failure
    for (std::uint32_t i = 0; i < engine.instrument_count(); ++i) {
      // A call auction collects crossing orders (and a halt keeps them until trading resumes);
      // every other book uncrosses when the auction ends.
      const core::InstrumentState& is = engine.instrument(core::InstrumentId(i));
      if (is.phase == core::TradingPhase::kAuction ||
          is.status != core::InstrumentStatus::kTrading) {
        continue;
      }
      core::BookView book = engine.book(core::InstrumentId(i), 1);
      if (!book.bids.empty() && !book.asks.empty() && book.bids[0].price >= book.asks[0].price) {
        RC_FAIL(where(e) + "instrument " + std::to_string(i) + " crossed: bid " +
                std::to_string(book.bids[0].price.value) + " >= ask " +
                std::to_string(book.asks[0].price.value));
      }
    }
  }
}

// ---- e -------------------------------------------------------------------------------------

std::string compare_streams(const core::EffectBuffer& x, const core::EffectBuffer& y) {
  if (x.size() != y.size()) {
    return "effect counts differ: " + std::to_string(x.size()) + " vs " + std::to_string(y.size());
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (all_fields(x[i]) != all_fields(y[i])) {
      return "effect " + std::to_string(i) + " differs: " + show(x[i]) + " vs " + show(y[i]);
    }
  }
  return "";
}

RC_GTEST_PROP(engine_properties, Deterministic, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  core::Engine first;
  core::Engine second;
  core::EffectBuffer x;
  core::EffectBuffer y;
  for (const core::Event& e : to_events(s)) {
    x.clear();
    y.clear();
    first.apply(e, x);
    second.apply(e, y);
    std::string diff = compare_streams(x, y);
    if (!diff.empty()) RC_FAIL(where(e) + diff);
  }
  RC_ASSERT(first.effects_hash() == second.effects_hash());
  RC_ASSERT(first.state_hash() == second.state_hash());
}

// ---- f -------------------------------------------------------------------------------------

RC_GTEST_PROP(engine_properties, RestoreSameFuture, ()) {
  const Scenario s = *gen_scenario(GenOptions{.risk_params = true});
  const std::vector<core::Event> events = to_events(s);
  // The split point does not depend on the scenario's length, so that it stays put while
  // rapidcheck removes commands (else shrinking could not drop any).
  const std::size_t split =
      std::min(events.size(), *rc::gen::withSize([](int size) {
                 return rc::gen::inRange<std::size_t>(0, 2 * static_cast<std::size_t>(size) + 20);
               }));
  RC_TAG(split == 0 ? "snapshot of an empty engine"
                    : (split == events.size() ? "snapshot at the end" : "snapshot in between"));
  core::Engine original;
  core::EffectBuffer x;
  for (std::size_t i = 0; i < split; ++i) original.apply(events[i], x);
  core::Engine restored = core::Engine::restore(original.snapshot());
  RC_ASSERT(restored.state_hash() == original.state_hash());
  RC_ASSERT(restored.effects_hash() == original.effects_hash());
  RC_ASSERT(restored.last_seq() == original.last_seq());
  restored.check_invariants();
  core::EffectBuffer y;
  for (std::size_t i = split; i < events.size(); ++i) {
    x.clear();
    y.clear();
    original.apply(events[i], x);
    restored.apply(events[i], y);
    std::string diff = compare_streams(x, y);
    if (!diff.empty()) RC_FAIL(where(events[i]) + diff);
  }
  RC_ASSERT(restored.effects_hash() == original.effects_hash());
  RC_ASSERT(restored.state_hash() == original.state_hash());
}

}  // namespace

// ---- regressions ---------------------------------------------------------------------------
//
// Minimal journals that these properties found, kept as plain tests.
//
// A failed amend must leave the order exactly as it was (docs/semantics.md, Amend). The engine
// used to release the reservation, fail the new one and then take the old one afresh: that
// changed the order's frozen amounts when a fresh reservation differed from what it held, and
// stopped the process on QX_ASSERT(!freeze(...)) when the old reservation no longer fitted.

namespace {

// Runs `check` in a child process, so that an engine assertion (which stops the process)
// becomes an ordinary test failure. Returns "" on success, otherwise the check's message or how
// the child ended together with what it wrote to stderr.
std::string in_child(const std::function<std::string()>& check) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    const std::string message = check();
    std::size_t done = 0;
    while (done < message.size()) {
      ssize_t n = write(fds[1], message.data() + done, message.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    _exit(message.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFSIGNALED(status)) {
    return "the engine stopped the process (signal " + std::to_string(WTERMSIG(status)) +
           "): " + text;
  }
  return text;
}

}  // namespace

// The old reservation no longer fits: the engine used to stop.
TEST(engine_properties_regressions, FailedAmendDoesNotStopEngine) {
  const std::string result = in_child([] {
    core::testing::Driver d;
    core::InstrumentParams p = core::testing::if_params();
    p.position_limit = core::Lots(6);
    const core::InstrumentId i = d.instrument("IF2501", p, core::PriceTicks(19'000));
    const core::AccountId a = d.account("alice", core::testing::cny(10'000'000));
    const core::AccountId b = d.account("bob", core::testing::cny(10'000'000));
    using core::Direction;
    using core::Offset;
    using core::TimeCondition;
    d.order(a, i, Direction::kBuy, Offset::kOpen, 19'000, 3, TimeCondition::kGtc);   // order 1
    d.order(b, i, Direction::kSell, Offset::kOpen, 19'001, 3, TimeCondition::kGtc);  // order 2
    d.order(a, i, Direction::kBuy, Offset::kOpen, 19'001, 3, TimeCondition::kIoc);   // alice +3
    p.position_limit = core::Lots(5);  // the limit tightens under the resting order
    d.apply(core::UpdateInstrument{i, p});
    // 3 held + 4 > 5: rejected; the old 3 lots no longer fit either (3 + 3 > 5).
    const core::EffectBuffer& fx =
        d.apply(core::AmendOrder{a, core::OrderRef{core::OrderId(1), core::ClientOrderId(0)},
                                 core::PriceTicks(19'000), core::Lots(4)});
    const bool ok =
        fx.size() == 1 && fx[0].kind == EffectKind::kOrderRejected &&
        fx[0].reason == static_cast<std::uint16_t>(core::RejectReason::kPositionLimitExceeded) &&
        d.engine().order(core::OrderId(1))->volume_left == core::Lots(3);
    return ok ? std::string() : std::string("unexpected effects");
  });
  EXPECT_EQ(result, "");
}

// The old reservation fits but a fresh one differs: the order's frozen commission used to change
// although the amend was rejected.
TEST(engine_properties_regressions, FailedAmendKeepsFrozenCommission) {
  core::testing::Driver d;
  const core::InstrumentId i =
      d.instrument("IF2501", core::testing::if_params(), core::PriceTicks(19'000));
  const core::AccountId a = d.account("alice", core::testing::cny(10'000'000));
  const core::AccountId b = d.account("bob", core::testing::cny(10'000'000));
  using core::Direction;
  using core::Offset;
  using core::TimeCondition;
  d.order(a, i, Direction::kBuy, Offset::kOpen, 19'000, 1);                         // order 1
  d.order(b, i, Direction::kSell, Offset::kOpen, 19'000, 1);                        // alice +1
  d.order(a, i, Direction::kSell, Offset::kClose, 19'005, 1, TimeCondition::kGtc);  // order 3
  d.apply(core::Settle{});  // alice's lot and order 3's frozen lot become history
  const core::Money before = d.engine().order(core::OrderId(3))->frozen_commission;
  // Two lots to close, one held: INSUFFICIENT_POSITION, and order 3 must stay as it was.
  const core::EffectBuffer& fx =
      d.apply(core::AmendOrder{a, core::OrderRef{core::OrderId(3), core::ClientOrderId(0)},
                               core::PriceTicks(19'004), core::Lots(2)});
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].reason, static_cast<std::uint16_t>(core::RejectReason::kInsufficientPosition));
  EXPECT_EQ(d.engine().order(core::OrderId(3))->frozen_commission.value, before.value);
}

// The insurance fund is queued for its own check after INSURANCE_COVERED even when it paid nothing
// (docs/semantics.md, "Forced liquidation"): the engine used to queue it only when it paid, so a
// fund already at risk (account 0: its short lot holds all its balance as margin) was not tried
// again. Seed 6101704191678054812 of AgreesWithModel, shrunk.
TEST(engine_properties_regressions, FundThatPaysNothingIsStillChecked) {
  using core::Direction;
  using core::Offset;
  using core::TimeCondition;
  auto order = [](std::uint32_t account, std::uint64_t client, Direction d, std::int64_t price,
                  std::int64_t lots, TimeCondition tc) {
    return core::NewOrder{core::AccountId(account),
                          core::InstrumentId(0),
                          core::ClientOrderId(client),
                          d,
                          Offset::kOpen,
                          core::PriceType::kLimit,
                          core::PriceTicks(price),
                          core::Lots(lots),
                          tc,
                          core::VolumeCondition::kAny};
  };
  core::InstrumentParams p;
  p.price_tick_e8 = 100'000'000;
  p.multiplier_e8 = 1'000'000'000;
  p.margin_long_ppb = 100'000'000;
  p.margin_short_ppb = 50'000'000;
  p.fees.open_ppb = 10'000;
  p.fees.close_ppb = 10'000;
  p.fees.close_today_ppb = 1'000'000'000;  // closing today costs the whole notional
  p.price_band_ppb = 1'000'000;
  p.max_order_volume = core::Lots(10);
  p.position_limit = core::Lots(8);
  Scenario s;
  s.events.push_back(core::SetCurrency{"USD", 6});
  s.events.push_back(core::CreateInstrument{"I0", "TEST", p, core::PriceTicks(3'500)});
  const std::uint32_t owners[] = {0, 1, 1, 2, 4};
  const std::int64_t deposits[] = {24'342'910'000, 16'215'590'000, 22'745'950'000, 22'722'000'000,
                                   10'000'000'000};
  for (std::uint32_t a = 0; a < 5; ++a) {
    const std::string name = "acct" + std::to_string(a);
    s.events.push_back(core::CreateUser{name});
    s.events.push_back(core::CreateAccount{core::UserId(owners[a]), name});
    s.events.push_back(core::Deposit{core::AccountId(a), core::Money(deposits[a])});
  }
  s.events.push_back(core::SetRiskParams{431'251'045, core::AccountId(0)});  // the fund: acct0
  s.setup_events = s.events.size();
  s.events.push_back(order(0, 6, Direction::kSell, 3'497, 1, TimeCondition::kGtc));
  // Withdraws all it has left: its short lot will hold its whole balance as margin.
  s.events.push_back(core::Withdraw{core::AccountId(0), core::Money(22'594'060'300)});
  s.events.push_back(order(1, 0, Direction::kBuy, 3'499, 3, TimeCondition::kGfd));  // acct0 -1
  s.events.push_back(order(2, 0, Direction::kBuy, 3'497, 3, TimeCondition::kGfd));
  // acct1 buys 2 more, is liquidated into acct2's bid and owes what the fund cannot pay.
  s.events.push_back(order(2, 0, Direction::kSell, 3'497, 2, TimeCondition::kGfd));

  Seen seen;
  EXPECT_EQ(agree_with_model(s, seen), "");

  core::Engine engine;
  core::EffectBuffer fx;
  for (const core::Event& e : to_events(s)) {
    fx.clear();
    engine.apply(e, fx);
  }
  ASSERT_GE(fx.size(), 2u);
  const Effect& covered = fx[fx.size() - 2];
  EXPECT_EQ(covered.kind, EffectKind::kInsuranceCovered);
  EXPECT_EQ(core::raw(covered.account), 1u);
  EXPECT_EQ(core::raw(covered.counter_account), 0u);
  EXPECT_EQ(covered.amount.value, 0);  // the fund has nothing available
  const Effect& fund_checked = fx.back();
  EXPECT_EQ(fund_checked.kind, EffectKind::kLiquidationStarted);
  EXPECT_EQ(core::raw(fund_checked.account), 0u);
  EXPECT_EQ(fund_checked.amount.value, 1'748'500'000);   // balance
  EXPECT_EQ(fund_checked.amount2.value, 1'748'500'000);  // margin
}

}  // namespace qx::property
