// Properties of the journal, snapshots and indexes over generated command sequences, on real
// files and a real LMDB: records round-trip, snapshot + tail equals a full replay at any split
// point (also for a journal that starts after the snapshot, as a follower's does after installing
// one), and an index query equals a linear scan of the journal.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "tests/property/engine_gen.h"

namespace qx::property {
namespace {

namespace fs = std::filesystem;

// A fresh directory per generated case, removed when the case ends.
class TempDir {
 public:
  TempDir() {
    static std::uint64_t n = 0;
    path_ = fs::temp_directory_path() /
            ("qx_journal_prop_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

replay::JournalOptions fast_options() {
  replay::JournalOptions o;
  o.fsync = replay::FsyncPolicy::kNone;  // durability is tested by the SIGKILL e2e test
  o.segment_bytes_max = 4'096;           // many segments, so splits cross segment boundaries
  return o;
}

// The generator also sends enum values no schema defines; a front end cannot decode those, so
// they never reach the journal. Drop them and number what is left.
std::vector<core::Event> journalable(Scenario s) {
  std::erase_if(s.events, [](const core::EventBody& b) {
    return !replay::encode_event(core::Event{core::EventHeader{core::Seq(1), 0, 0}, b}).ok();
  });
  return to_events(s);
}

struct Written {
  std::uint64_t state_hash = 0;
  std::uint64_t effects_hash = 0;
  std::uint64_t events = 0;
};

// Journals and applies the events; snapshots after event `snap_after` (1-based; 0 = never);
// maintains the indexes.
Written write(const fs::path& dir, const std::vector<core::Event>& events, std::size_t snap_after) {
  auto w = replay::JournalWriter::open(dir, fast_options());
  RC_ASSERT(w.ok());
  auto store = replay::Store::open(dir);
  RC_ASSERT(store.ok());
  core::Engine engine;
  core::EffectBuffer fx;
  replay::IndexBuilder index;
  for (std::size_t i = 0; i < events.size(); ++i) {
    RC_ASSERT(w.value().append(events[i]).ok());
    fx.clear();
    engine.apply(events[i], fx);
    index.add(events[i], fx);
    if (i + 1 == snap_after) {
      RC_ASSERT(w.value().commit().ok());
      RC_ASSERT(store.value().put_snapshot(engine.snapshot()).ok());
    }
  }
  RC_ASSERT(w.value().commit().ok());
  RC_ASSERT(store.value().flush(index).ok());
  return {engine.state_hash(), engine.effects_hash(), events.size()};
}

RC_GTEST_PROP(JournalProperties, RecordsRoundTrip, ()) {
  Scenario s = *gen_scenario({.risk_params = true});
  std::vector<core::Event> events = journalable(s);
  TempDir dir;
  write(dir.path(), events, 0);
  auto reader = replay::JournalReader::open(dir.path());
  RC_ASSERT(reader.ok());
  replay::Record rec;
  std::size_t i = 0;
  while (true) {
    auto more = reader.value().next(rec);
    RC_ASSERT(more.ok());
    if (!more.value()) break;
    RC_ASSERT(i < events.size());
    RC_ASSERT(rec.seq == events[i].header.seq);
    RC_ASSERT(rec.timestamp_ns == events[i].header.timestamp_ns);
    auto decoded = replay::decode_event(rec.payload);
    RC_ASSERT(decoded.ok());
    auto again = replay::encode_event(decoded.value());
    auto original = replay::encode_event(events[i]);
    RC_ASSERT(again.ok() && original.ok());
    RC_ASSERT(again.value() == original.value());
    i += 1;
  }
  RC_ASSERT(i == events.size());
  RC_ASSERT(!reader.value().torn_tail());
}

RC_GTEST_PROP(JournalProperties, SnapshotPlusTailEqualsFullReplay, ()) {
  Scenario s = *gen_scenario({.risk_params = true});
  std::vector<core::Event> events = journalable(s);
  std::size_t split = *rc::gen::inRange<std::size_t>(1, events.size() + 1);
  TempDir dir;
  Written w = write(dir.path(), events, split);
  replay::ReplayOptions full;
  auto a = replay::replay_journal(dir.path(), full);
  RC_ASSERT(a.ok());
  replay::ReplayOptions snap;
  snap.use_snapshot = true;
  auto b = replay::replay_journal(dir.path(), snap);
  RC_ASSERT(b.ok());
  RC_ASSERT(b.value().snapshot_seq == std::optional(core::Seq(split)));
  RC_ASSERT(b.value().events_applied == events.size() - split);
  RC_ASSERT(a.value().engine.state_hash() == w.state_hash);
  RC_ASSERT(a.value().engine.effects_hash() == w.effects_hash);
  RC_ASSERT(b.value().engine.state_hash() == w.state_hash);
  RC_ASSERT(b.value().engine.effects_hash() == w.effects_hash);
}

// A follower installs the snapshot at a random seq S, resets its journal to base S and copies
// the leader's records after S: the journals end on the same chain, and replay of the follower's
// (from its snapshot, which it must use) equals a full replay of the leader's.
RC_GTEST_PROP(JournalProperties, BasedJournalPlusSnapshotEqualsFullReplay, ()) {
  Scenario s = *gen_scenario({.risk_params = true});
  std::vector<core::Event> events = journalable(s);
  std::size_t base = *rc::gen::inRange<std::size_t>(1, events.size() + 1);
  TempDir leader, follower;
  Written w = write(leader.path(), events, 0);
  auto base_seq = core::Seq(base);
  auto chain = replay::chain_hash_at(leader.path(), base_seq);
  RC_ASSERT(chain.ok());
  RC_ASSERT(replay::reset_journal_to_base(follower.path(), {base_seq, chain.value()}).ok());
  {
    replay::ReplayOptions until;
    until.until_seq = base_seq;
    auto at_base = replay::replay_journal(leader.path(), until);
    RC_ASSERT(at_base.ok());
    auto store = replay::Store::open(follower.path());
    RC_ASSERT(store.ok());
    RC_ASSERT(store.value().put_snapshot(at_base.value().engine.snapshot()).ok());
  }
  {
    auto fw = replay::JournalWriter::open(follower.path(), fast_options());
    RC_ASSERT(fw.ok());
    RC_ASSERT(fw.value().last_seq() == base_seq);
    if (base < events.size()) {
      auto reader = replay::JournalReader::open_at(leader.path(), core::Seq(base + 1));
      RC_ASSERT(reader.ok());
      replay::Record rec;
      while (true) {
        auto more = reader.value().next(rec);
        RC_ASSERT(more.ok());
        if (!more.value()) break;
        if (rec.seq > base_seq) {
          RC_ASSERT(fw.value().append_record(rec.raw).ok());
        }
      }
    }
    RC_ASSERT(fw.value().commit().ok());
  }
  auto lv = replay::verify_journal(leader.path());
  auto fv = replay::verify_journal(follower.path());
  RC_ASSERT(lv.ok() && fv.ok());
  RC_ASSERT(fv.value().last_seq == lv.value().last_seq);
  RC_ASSERT(fv.value().last_chain == lv.value().last_chain);
  RC_ASSERT(fv.value().base == std::optional(replay::JournalBase{base_seq, chain.value()}));
  auto r = replay::replay_journal(follower.path(), {});
  RC_ASSERT(r.ok());
  RC_ASSERT(r.value().snapshot_seq == std::optional(base_seq));
  RC_ASSERT(r.value().events_applied == events.size() - base);
  RC_ASSERT(r.value().engine.state_hash() == w.state_hash);
  RC_ASSERT(r.value().engine.effects_hash() == w.effects_hash);
}

RC_GTEST_PROP(JournalProperties, IndexQueryEqualsLinearScan, ()) {
  Scenario s = *gen_scenario({.risk_params = true});
  std::vector<core::Event> events = journalable(s);
  TempDir dir;
  write(dir.path(), events, 0);
  auto store = replay::Store::open(dir.path());
  RC_ASSERT(store.ok());
  auto account = *rc::gen::inRange<std::uint32_t>(0, 6);
  auto instrument = *rc::gen::inRange<std::uint32_t>(0, 4);
  // The scan: an event touches an account or instrument when its request names it or any of
  // its effects (rejects aside) does, a trade touching both counterparties.
  std::vector<std::uint64_t> by_account, by_instrument;
  replay::ReplayOptions opt;
  opt.on_event = [&](const core::Event& ev, const core::EffectBuffer& fx) {
    bool acc = false, ins = false;
    std::visit(
        [&](const auto& b) {
          if constexpr (requires { b.account; }) acc = acc || core::raw(b.account) == account;
          if constexpr (requires { b.instrument; }) {
            ins = ins || core::raw(b.instrument) == instrument;
          }
          if constexpr (requires { b.prices; }) {
            for (const auto& p : b.prices) ins = ins || core::raw(p.instrument) == instrument;
          }
        },
        ev.body);
    for (const core::Effect& e : fx) {
      using K = core::EffectKind;
      if (e.kind == K::kOrderRejected || e.kind == K::kAdminRejected) continue;
      bool names_account = e.kind != K::kUserCreated && e.kind != K::kInstrumentCreated &&
                           e.kind != K::kInstrumentUpdated &&
                           e.kind != K::kInstrumentStatusChanged && e.kind != K::kRiskParamsSet &&
                           e.kind != K::kSettlementDone && e.kind != K::kMarkedToMarket &&
                           e.kind != K::kCurrencySet && e.kind != K::kLimitsSet &&
                           e.kind != K::kSessionSet && e.kind != K::kAuctionUncrossed &&
                           e.kind != K::kPhaseChanged && e.kind != K::kTermStarted;
      bool names_instrument = e.kind == K::kTrade || e.kind == K::kOrderAccepted ||
                              e.kind == K::kOrderAmended || e.kind == K::kOrderCancelled ||
                              e.kind == K::kInstrumentCreated || e.kind == K::kInstrumentUpdated ||
                              e.kind == K::kInstrumentStatusChanged ||
                              e.kind == K::kPositionDelivered || e.kind == K::kStopAccepted ||
                              e.kind == K::kStopTriggered || e.kind == K::kSessionSet ||
                              e.kind == K::kAuctionUncrossed || e.kind == K::kPhaseChanged;
      acc = acc || (names_account && core::raw(e.account) == account) ||
            ((e.kind == K::kTrade || e.kind == K::kInsuranceCovered) &&
             core::raw(e.counter_account) == account);
      ins = ins || (names_instrument && core::raw(e.instrument) == instrument);
    }
    if (acc) by_account.push_back(core::raw(ev.header.seq));
    if (ins) by_instrument.push_back(core::raw(ev.header.seq));
  };
  RC_ASSERT(replay::replay_journal(dir.path(), opt).ok());
  auto a = store.value().lookup({replay::IndexKind::kAccount, account});
  auto i = store.value().lookup({replay::IndexKind::kInstrument, instrument});
  RC_ASSERT(a.ok() && i.ok());
  RC_ASSERT(a.value() == by_account);
  RC_ASSERT(i.value() == by_instrument);
  auto all = store.value().lookup_time(0, std::numeric_limits<std::int64_t>::max());
  RC_ASSERT(all.ok());
  RC_ASSERT(all.value().size() == events.size());
}

}  // namespace
}  // namespace qx::property
