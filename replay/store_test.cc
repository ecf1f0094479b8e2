// Snapshots and indexes in a real LMDB environment, and replay from journal + snapshot (also of a
// journal that starts after a snapshot).
#include "replay/store.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "core/test_support.h"
#include "replay/journal.h"
#include "replay/replay.h"

namespace qx::replay {
namespace {

namespace fs = std::filesystem;
using namespace qx::core;

// Builds a small session, journaling every event; snapshots after events listed in `snap_at`.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qx_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<Event> session() {
    std::vector<Event> ev;
    std::uint64_t seq = 0;
    auto add = [&](EventBody b) {
      seq += 1;
      ev.push_back(Event{EventHeader{Seq(seq), static_cast<std::int64_t>(seq) * 30'000'000'000, 0},
                         std::move(b)});
    };
    add(CreateInstrument{"IF2501", "CFFEX", testing::if_params(), PriceTicks(19'000)});
    add(CreateUser{"alice"});
    add(CreateAccount{UserId(0), "alice"});
    add(CreateUser{"bob"});
    add(CreateAccount{UserId(1), "bob"});
    add(Deposit{AccountId(0), testing::cny(1'000'000)});
    add(Deposit{AccountId(1), testing::cny(1'000'000)});
    for (int i = 0; i < 20; ++i) {
      auto d = i % 2 == 0 ? Direction::kBuy : Direction::kSell;
      add(NewOrder{AccountId(static_cast<std::uint32_t>(i % 2)), InstrumentId(0), ClientOrderId(0),
                   d, Offset::kOpen, PriceType::kLimit, PriceTicks(19'000 + i % 3), Lots(1 + i % 2),
                   TimeCondition::kGtc, VolumeCondition::kAny, false});
    }
    add(Settle{{}});
    add(CancelOrder{AccountId(0), OrderRef{OrderId(19), ClientOrderId(0)}});
    return ev;
  }

  // Writes the session to the journal, snapshotting after the given seqs. Returns final hashes.
  std::pair<std::uint64_t, std::uint64_t> write(const std::vector<std::uint64_t>& snap_at) {
    auto w = JournalWriter::open(dir_, {});
    EXPECT_TRUE(w.ok());
    auto st = Store::open(dir_);
    EXPECT_TRUE(st.ok());
    Engine e;
    EffectBuffer fx;
    IndexBuilder ib;
    for (const Event& ev : session()) {
      EXPECT_TRUE(w.value().append(ev).ok());
      fx.clear();
      e.apply(ev, fx);
      ib.add(ev, fx);
      if (std::find(snap_at.begin(), snap_at.end(), raw(ev.header.seq)) != snap_at.end()) {
        EXPECT_TRUE(w.value().commit().ok());
        EXPECT_TRUE(st.value().put_snapshot(e.snapshot()).ok());
      }
    }
    EXPECT_TRUE(w.value().commit().ok());
    EXPECT_TRUE(st.value().flush(ib).ok());
    return {e.state_hash(), e.effects_hash()};
  }

  fs::path dir_;
};

TEST_F(StoreTest, ReplayFromSnapshotEqualsFullReplay) {
  auto [state, effects] = write({10, 20});
  ReplayOptions full;
  auto a = replay_journal(dir_, full);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a.value().engine.state_hash(), state);
  EXPECT_EQ(a.value().engine.effects_hash(), effects);
  EXPECT_FALSE(a.value().snapshot_seq);
  ReplayOptions snap;
  snap.use_snapshot = true;
  auto b = replay_journal(dir_, snap);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b.value().snapshot_seq, Seq(20));
  EXPECT_EQ(b.value().engine.state_hash(), state);
  EXPECT_EQ(b.value().engine.effects_hash(), effects);
  // Until a seq before the newest snapshot: the older snapshot is used, same as a full replay.
  ReplayOptions until = snap;
  until.until_seq = Seq(15);
  auto c = replay_journal(dir_, until);
  full.until_seq = Seq(15);
  auto d = replay_journal(dir_, full);
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_EQ(c.value().snapshot_seq, Seq(10));
  EXPECT_EQ(c.value().engine.state_hash(), d.value().engine.state_hash());
  EXPECT_EQ(c.value().engine.last_seq(), Seq(15));
  // Bounding the snapshot instead of the replay: from the one at 10, to the end.
  ReplayOptions bounded = snap;
  bounded.snapshot_max_seq = Seq(15);
  auto e = replay_journal(dir_, bounded);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e.value().snapshot_seq, Seq(10));
  EXPECT_EQ(e.value().events_applied, 19u);
  EXPECT_EQ(e.value().engine.state_hash(), state);
}

TEST_F(StoreTest, CorruptSnapshotIsSkippedForAnOlderOne) {
  auto [state, effects] = write({10, 20});
  {
    // Damage the newest snapshot's bytes inside LMDB.
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, (dir_ / "lmdb").c_str(), 0, 0644), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "snapshots", 0, &dbi), 0);
    std::uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 20};
    MDB_val k{8, key}, v;
    ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
    std::vector<std::uint8_t> bytes(static_cast<std::uint8_t*>(v.mv_data),
                                    static_cast<std::uint8_t*>(v.mv_data) + v.mv_size);
    bytes[bytes.size() / 2] ^= 0x40;
    MDB_val nv{bytes.size(), bytes.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  ReplayOptions snap;
  snap.use_snapshot = true;
  auto b = replay_journal(dir_, snap);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b.value().snapshot_seq, Seq(10));
  ASSERT_EQ(b.value().notes.size(), 1u);
  EXPECT_NE(b.value().notes[0].find("snapshot at seq 20"), std::string::npos);
  EXPECT_EQ(b.value().engine.state_hash(), state);
  EXPECT_EQ(b.value().engine.effects_hash(), effects);
}

// After a cut at seq 15, the snapshot at 20 and the indexes (built to 29) describe records that
// are gone: forget_after removes them and keeps the snapshot at 10.
TEST_F(StoreTest, ForgetAfterDropsLaterSnapshotsAndStaleIndexes) {
  write({10, 20, 25});
  auto st = Store::open(dir_);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st.value().indexed_seq().value(), Seq(29));
  auto n = st.value().forget_after(Seq(15));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n.value(), 2u);
  EXPECT_EQ(st.value().snapshot_seqs().value(), std::vector<Seq>{Seq(10)});
  EXPECT_EQ(st.value().indexed_seq().value(), Seq(0));
  // Nothing after 10 left to forget: the indexes (now empty) and the snapshot at 10 stay.
  EXPECT_EQ(st.value().forget_after(Seq(10)).value(), 0u);
  EXPECT_EQ(st.value().snapshot_seqs().value(), std::vector<Seq>{Seq(10)});
}

TEST_F(StoreTest, IndexesMatchALinearScan) {
  write({});
  auto st = Store::open(dir_);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().indexed_seq().value(), Seq(29));
  // Linear scan: every seq whose event or effects mention account 1.
  std::vector<std::uint64_t> scan;
  ReplayOptions opt;
  opt.on_event = [&](const Event& ev, const EffectBuffer& fx) {
    bool hit = std::visit(
        [](const auto& b) {
          if constexpr (requires { b.account; }) return b.account == AccountId(1);
          return false;
        },
        ev.body);
    for (const Effect& e : fx) {
      if (e.kind == EffectKind::kOrderRejected || e.kind == EffectKind::kAdminRejected) continue;
      // Account 1 is never the zero default, so any effect naming it really touches it.
      bool trade_counter = e.kind == EffectKind::kTrade && e.counter_account == AccountId(1);
      hit = hit || e.account == AccountId(1) || trade_counter;
    }
    if (hit) scan.push_back(raw(ev.header.seq));
  };
  ASSERT_TRUE(replay_journal(dir_, opt).ok());
  auto idx = st.value().lookup(IndexKey{IndexKind::kAccount, 1});
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ(idx.value(), scan);
  EXPECT_FALSE(scan.empty());
  // Time buckets are a minute wide and events 30 s apart: [0, 90 s] holds seqs 1..3.
  auto t = st.value().lookup_time(0, 90'000'000'000);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value(), (std::vector<std::uint64_t>{1, 2, 3}));
  ASSERT_TRUE(st.value().clear_indexes().ok());
  EXPECT_TRUE(st.value().lookup(IndexKey{IndexKind::kAccount, 1}).value().empty());
}

// A follower that installed a snapshot at seq 12 journals only records 13 onwards (base.qxb):
// replay starts from a stored snapshot at or after 12, even without use_snapshot, and equals a
// full replay of the leader's journal; without such a snapshot it is an Error.
TEST_F(StoreTest, ABasedJournalReplaysFromASnapshotAtOrAfterItsBase) {
  auto [state, effects] = write({});
  constexpr std::uint64_t kBase = 12;
  auto replay_until = [&](const fs::path& dir, std::optional<std::uint64_t> seq) {
    ReplayOptions o;
    if (seq) o.until_seq = Seq(*seq);
    return replay_journal(dir, o);
  };
  fs::path b = dir_ / "based";
  auto chain = chain_hash_at(dir_, Seq(kBase));
  ASSERT_TRUE(chain.ok()) << chain.error().message;
  ASSERT_TRUE(reset_journal_to_base(b, {Seq(kBase), chain.value()}).ok());
  {
    auto w = JournalWriter::open(b, {});
    ASSERT_TRUE(w.ok()) << w.error().message;
    auto r = JournalReader::open_at(dir_, Seq(kBase + 1));
    ASSERT_TRUE(r.ok());
    Record rec;
    while (r.value().next(rec).value()) {
      if (rec.seq > Seq(kBase)) {
        ASSERT_TRUE(w.value().append_record(rec.raw).ok());
      }
    }
    ASSERT_TRUE(w.value().commit().ok());
    EXPECT_EQ(w.value().last_seq(), Seq(29));
  }
  // Puts A's state at `seq` into B's store (closed again: LMDB wants one handle per process).
  auto put_snapshot_at = [&](std::uint64_t seq) {
    auto at = replay_until(dir_, seq);
    ASSERT_TRUE(at.ok()) << at.error().message;
    auto st = Store::open(b);
    ASSERT_TRUE(st.ok()) << st.error().message;
    ASSERT_TRUE(st.value().put_snapshot(at.value().engine.snapshot()).ok());
  };
  const std::string no_snapshot = "journal " + b.string() +
                                  " starts after seq 12 (installed from a snapshot) but the store "
                                  "has no valid snapshot at or after seq 12";
  auto none = replay_until(b, std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find(no_snapshot), std::string::npos) << none.error().message;
  // A snapshot older than the base cannot be used either: records 11 and 12 are not journaled.
  ASSERT_NO_FATAL_FAILURE(put_snapshot_at(10));
  none = replay_until(b, std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find(no_snapshot), std::string::npos) << none.error().message;

  ASSERT_NO_FATAL_FAILURE(put_snapshot_at(kBase));
  for (bool use_snapshot : {false, true}) {
    ReplayOptions o;
    o.use_snapshot = use_snapshot;
    auto r = replay_journal(b, o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().snapshot_seq, Seq(kBase));
    EXPECT_EQ(r.value().events_applied, 29 - kBase);
    EXPECT_EQ(r.value().engine.last_seq(), Seq(29));
    EXPECT_EQ(r.value().engine.state_hash(), state);
    EXPECT_EQ(r.value().engine.effects_hash(), effects);
  }
  // Until a seq: after the base as in a full replay, at the base the snapshot, before it an Error.
  for (std::uint64_t until : {kBase, kBase + 1, std::uint64_t{20}}) {
    auto r = replay_until(b, until);
    auto full = replay_until(dir_, until);
    ASSERT_TRUE(r.ok() && full.ok()) << until;
    EXPECT_EQ(r.value().engine.state_hash(), full.value().engine.state_hash()) << until;
    EXPECT_EQ(r.value().engine.last_seq(), Seq(until));
  }
  auto before = replay_until(b, kBase - 1);
  ASSERT_FALSE(before.ok());
  EXPECT_NE(before.error().message.find("starts after seq 12"), std::string::npos)
      << before.error().message;

  // Until a time: a snapshot stamped after it is passed over for an older one at or after the
  // base (there is no falling back to seq 1); a time before the base's snapshot is an Error.
  ASSERT_NO_FATAL_FAILURE(put_snapshot_at(16));
  ReplayOptions t;
  t.until_time_ns = 14 * 30'000'000'000;  // seq 14's stamp
  auto r = replay_journal(b, t);
  auto full = replay_journal(dir_, t);
  ASSERT_TRUE(r.ok() && full.ok()) << (r.ok() ? full.error().message : r.error().message);
  EXPECT_EQ(r.value().snapshot_seq, Seq(kBase));
  EXPECT_EQ(r.value().engine.last_seq(), Seq(14));
  EXPECT_EQ(r.value().engine.state_hash(), full.value().engine.state_hash());
  t.until_time_ns = 11 * 30'000'000'000;
  auto early = replay_journal(b, t);
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("before every valid snapshot at or after seq 12"),
            std::string::npos)
      << early.error().message;

  // To see (and index) every journaled event, start from a snapshot at or before the base.
  ReplayOptions m;
  std::vector<std::uint64_t> seen;
  m.on_event = [&](const Event& ev, const EffectBuffer&) { seen.push_back(raw(ev.header.seq)); };
  m.snapshot_max_seq = Seq(14);
  auto from_base = replay_journal(b, m);
  ASSERT_TRUE(from_base.ok()) << from_base.error().message;
  EXPECT_EQ(from_base.value().snapshot_seq, Seq(kBase));
  EXPECT_EQ(from_base.value().engine.state_hash(), state);
  ASSERT_EQ(seen.size(), 29 - kBase);
  EXPECT_EQ(seen.front(), kBase + 1);
  m.snapshot_max_seq = Seq(kBase - 1);
  auto below = replay_journal(b, m);
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.error().message.find(no_snapshot + " (the search was bounded at seq 11)"),
            std::string::npos)
      << below.error().message;

  // A snapshot handed in (a server whose store another thread may hold) replaces the store's;
  // the store is not opened. One before the base is refused.
  fs::rename(b / "lmdb", b / "lmdb-away");
  auto at_base = replay_until(dir_, kBase);
  ASSERT_TRUE(at_base.ok());
  const Snapshot snap = at_base.value().engine.snapshot();
  ReplayOptions given;
  given.start_from = &snap;
  auto handed = replay_journal(b, given);
  ASSERT_TRUE(handed.ok()) << handed.error().message;
  EXPECT_EQ(handed.value().snapshot_seq, Seq(kBase));
  EXPECT_EQ(handed.value().engine.state_hash(), state);
  EXPECT_FALSE(fs::exists(b / "lmdb"));
  const Snapshot old = replay_until(dir_, 10).value().engine.snapshot();
  given.start_from = &old;
  auto refused = replay_journal(b, given);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("the snapshot given to start from is at seq 10"),
            std::string::npos)
      << refused.error().message;
}

TEST(ChainHex, RoundTripsAndRefusesAnythingButSixtyFourHexDigits) {
  ChainHash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(i * 37 + 5);
  const std::string text = hex_chain(h);
  EXPECT_EQ(text.size(), 64u);
  EXPECT_EQ(text.substr(0, 6), "052a4f");
  EXPECT_EQ(parse_hex_chain(text), h);
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(parse_hex_chain(upper), h);
  EXPECT_FALSE(parse_hex_chain(text.substr(1)));
  EXPECT_FALSE(parse_hex_chain(text + "0"));
  EXPECT_FALSE(parse_hex_chain(""));
  std::string bad = text;
  bad[10] = 'g';
  EXPECT_FALSE(parse_hex_chain(bad));
}

}  // namespace
}  // namespace qx::replay
