// Golden journals: each replays to the hashes recorded in journals/golden/expected.txt, and
// together they use every event type, produce every effect kind and provoke every reject reason
// and (but one) every cancel reason the engine produces.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "replay/replay.h"

namespace qx::replay {
namespace {

namespace fs = std::filesystem;

struct Expected {
  std::string name;
  std::uint64_t last_seq = 0;
  std::string state_hash, effects_hash;
};

std::vector<Expected> read_expected() {
  std::ifstream in(fs::path(QX_SOURCE_DIR) / "journals/golden/expected.txt");
  std::vector<Expected> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    Expected e;
    f >> e.name >> e.last_seq >> e.state_hash >> e.effects_hash;
    out.push_back(e);
  }
  return out;
}

TEST(Golden, JournalsReplayToTheirRecordedHashesAndCoverEverything) {
  auto expected = read_expected();
  ASSERT_GE(expected.size(), 3u);
  std::set<std::size_t> event_kinds;
  std::set<std::uint16_t> rejects;
  std::set<core::EffectKind> effect_kinds;
  std::set<std::uint16_t> cancels;
  for (const Expected& e : expected) {
    ReplayOptions opt;
    opt.on_event = [&](const core::Event& ev, const core::EffectBuffer& fx) {
      event_kinds.insert(ev.body.index());
      for (const core::Effect& f : fx) {
        effect_kinds.insert(f.kind);
        if (f.kind == core::EffectKind::kOrderCancelled) cancels.insert(f.reason);
        if (f.kind == core::EffectKind::kOrderRejected ||
            f.kind == core::EffectKind::kAdminRejected) {
          rejects.insert(f.reason);
        }
      }
    };
    auto r = replay_journal(fs::path(QX_SOURCE_DIR) / "journals/golden" / e.name, opt);
    ASSERT_TRUE(r.ok()) << e.name << ": " << r.error().message;
    EXPECT_EQ(core::raw(r.value().engine.last_seq()), e.last_seq) << e.name;
    EXPECT_EQ(hex64(r.value().engine.state_hash()), e.state_hash) << e.name;
    EXPECT_EQ(hex64(r.value().engine.effects_hash()), e.effects_hash) << e.name;
  }
  EXPECT_EQ(event_kinds.size(), std::variant_size_v<core::EventBody>);
  using R = core::RejectReason;
  for (R r : {R::kInvalidVolume,
              R::kInvalidPrice,
              R::kInvalidCombination,
              R::kDuplicateClientOrderId,
              R::kNumericOverflow,
              R::kInvalidParameter,
              R::kDuplicateName,
              R::kNameTooLong,
              R::kUnknownInstrument,
              R::kInstrumentHalted,
              R::kInstrumentDelisted,
              R::kPriceOutsideBand,
              R::kNoLiquidity,
              R::kPostOnlyWouldCross,
              R::kFokUnfillable,
              R::kUnknownAccount,
              R::kUnknownUser,
              R::kAccountDisabled,
              R::kInsufficientFunds,
              R::kInsufficientPosition,
              R::kPositionLimitExceeded,
              R::kOrderVolumeLimitExceeded,
              R::kTooManyOpenOrders,
              R::kWithdrawExceedsAvailable,
              R::kUnknownOrder,
              R::kOrderNotOwned,
              R::kAmendNoChange,
              R::kTooManyInstruments,
              R::kCurrencyFixed,
              R::kStopWouldTrigger,
              R::kStopNotAmendable,
              R::kPriceLevelFull,
              R::kInstrumentLimit,
              R::kAccountLimit,
              R::kOrderLimit,
              R::kMarketClosed,
              R::kAuctionOrderType}) {
    EXPECT_TRUE(rejects.count(static_cast<std::uint16_t>(r))) << "not covered: " << to_string(r);
  }
  for (std::uint8_t k = 1; k <= core::raw(core::EffectKind::kPhaseChanged); ++k) {
    const auto kind = static_cast<core::EffectKind>(k);
    EXPECT_TRUE(effect_kinds.count(kind)) << "effect not produced: " << to_string(kind);
  }
  // Every cancel reason but MONEY_LIMIT, which takes an account's day totals to within 2e15 of
  // the 1e18 bound: hundreds of fills at the price ceiling, too many for a hand-made journal.
  using C = core::CancelReason;
  for (C c :
       {C::kUserRequest, C::kIocRemainder, C::kSelfTradePrevention, C::kExpired,
        C::kForcedLiquidation, C::kInstrumentDelisted, C::kOutsideBand, C::kInstrumentExpired}) {
    EXPECT_TRUE(cancels.count(static_cast<std::uint16_t>(c)))
        << "cancel not seen: " << to_string(c);
  }
}

}  // namespace
}  // namespace qx::replay
