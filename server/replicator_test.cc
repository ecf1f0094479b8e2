// What a cluster follower does at start-up with what its last run left (server/replicator.h): a
// received snapshot to install (DATA/cluster-install), a cut to make (DATA/cluster-cut), with a
// real journal and a real LMDB store in a temporary directory.
#include "server/replicator.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"

namespace qx::server {
namespace {

namespace fs = std::filesystem;

core::Event user_event(std::uint64_t seq, const std::string& prefix) {
  return core::Event{{core::Seq(seq), static_cast<std::int64_t>(seq) * 1000, 0},
                     core::CreateUser{prefix + std::to_string(seq)}};
}

class PendingInstall : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "qx-install-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    leader_ = root_ / "leader";
    data_ = root_ / "follower";
    journal_ = data_ / "journal";
    write_journal(leader_, 60, "u");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write_journal(const fs::path& dir, std::uint64_t n, const std::string& prefix) {
    auto w = replay::JournalWriter::open(dir, {});
    ASSERT_TRUE(w) << w.error().message;
    for (std::uint64_t s = 1; s <= n; ++s) {
      ASSERT_TRUE(w.value().append(user_event(s, prefix)));
    }
    ASSERT_TRUE(w.value().commit());
  }

  // The leader's state at `seq`, as the follower's driver stages it: the encoded snapshot and the
  // marker naming its seq, the leader's chain there, its state hash and size.
  void stage(std::uint64_t seq, std::uint64_t claimed_hash_xor = 0) {
    replay::ReplayOptions o;
    o.until_seq = core::Seq(seq);
    auto at = replay::replay_journal(leader_, o);
    ASSERT_TRUE(at) << at.error().message;
    const core::Snapshot snap = at.value().engine.snapshot();
    auto bytes = replay::encode_snapshot(snap);
    ASSERT_TRUE(bytes);
    auto chain = replay::chain_hash_at(leader_, core::Seq(seq));
    ASSERT_TRUE(chain);
    fs::create_directories(data_);
    std::ofstream(data_ / "cluster-install.snap", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.value().data()),
               static_cast<std::streamsize>(bytes.value().size()));
    const nlohmann::json marker{
        {"seq", seq},
        {"chain", replay::hex_chain(chain.value())},
        {"state_hash", replay::hex64(core::hash_snapshot(snap) ^ claimed_hash_xor)},
        {"bytes", bytes.value().size()}};
    std::ofstream(data_ / "cluster-install") << marker.dump() << '\n';
  }

  // Copies the leader's records after `after` into the follower's journal, as replication does.
  void copy_tail(std::uint64_t after) {
    auto w = replay::JournalWriter::open(journal_, {});
    ASSERT_TRUE(w) << w.error().message;
    auto r = replay::JournalReader::open_at(leader_, core::Seq(after + 1));
    ASSERT_TRUE(r);
    replay::Record rec;
    while (r.value().next(rec).value()) {
      if (core::raw(rec.seq) > after) {
        ASSERT_TRUE(w.value().append_record(rec.raw));
      }
    }
    ASSERT_TRUE(w.value().commit());
  }

  static std::string state(const fs::path& journal) {
    auto r = replay::replay_journal(journal, {});
    if (!r) return "error: " + r.error().message;
    return std::to_string(core::raw(r.value().engine.last_seq())) + " " +
           replay::hex64(r.value().engine.state_hash());
  }

  fs::path root_, leader_, data_, journal_;
};

TEST_F(PendingInstall, ReplacesADivergentJournalAndItsStoreWithTheSnapshot) {
  // The follower's own journal: 80 records of another history, with a snapshot of it in the
  // store past the snapshot it receives (it must not be used afterwards).
  write_journal(journal_, 80, "other");
  {
    auto r = replay::replay_journal(journal_, {});
    ASSERT_TRUE(r);
    auto st = replay::Store::open(journal_);
    ASSERT_TRUE(st);
    ASSERT_TRUE(st.value().put_snapshot(r.value().engine.snapshot()));
  }
  ASSERT_NO_FATAL_FAILURE(stage(40));
  std::ostringstream out;
  Replicator::apply_pending_install(data_, journal_, out);
  EXPECT_NE(out.str().find("installed the leader's snapshot at seq 40"), std::string::npos)
      << out.str();
  EXPECT_FALSE(fs::exists(data_ / "cluster-install"));
  EXPECT_FALSE(fs::exists(data_ / "cluster-install.snap"));
  auto base = replay::read_journal_base(journal_);
  ASSERT_TRUE(base && base.value());
  EXPECT_EQ(base.value()->seq, core::Seq(40));
  replay::ReplayOptions until40;
  until40.until_seq = core::Seq(40);
  auto leader40 = replay::replay_journal(leader_, until40);
  ASSERT_TRUE(leader40);
  EXPECT_EQ(state(journal_), "40 " + replay::hex64(leader40.value().engine.state_hash()));
  // The leader's records from 41 link onto the base: the follower reaches the leader's state.
  ASSERT_NO_FATAL_FAILURE(copy_tail(40));
  EXPECT_EQ(state(journal_), state(leader_));
  // Nothing is left to do at the next start.
  std::ostringstream again;
  Replicator::apply_pending_install(data_, journal_, again);
  EXPECT_EQ(again.str(), "");
  EXPECT_EQ(state(journal_), state(leader_));
}

TEST_F(PendingInstall, AStagedSnapshotThatFailsItsChecksIsDroppedAndTheJournalKept) {
  write_journal(journal_, 10, "u");
  const std::string before = state(journal_);
  ASSERT_NO_FATAL_FAILURE(stage(40, 1));  // the leader's hash differs from the bytes'
  std::ostringstream out;
  Replicator::apply_pending_install(data_, journal_, out);
  EXPECT_NE(out.str().find("dropped a received snapshot: the staged snapshot's state hash"),
            std::string::npos)
      << out.str();
  EXPECT_FALSE(fs::exists(data_ / "cluster-install"));
  EXPECT_FALSE(fs::exists(data_ / "cluster-install.snap"));
  EXPECT_EQ(state(journal_), before);
  // A truncated snapshot file: its size is not the marker's.
  ASSERT_NO_FATAL_FAILURE(stage(40));
  fs::resize_file(data_ / "cluster-install.snap", 16);
  std::ostringstream cut;
  Replicator::apply_pending_install(data_, journal_, cut);
  EXPECT_NE(cut.str().find("not the number its marker gives"), std::string::npos) << cut.str();
  EXPECT_EQ(state(journal_), before);
  // A transfer the last run did not finish leaves only the partial file: removed.
  std::ofstream(data_ / "cluster-install.snap.part") << "partial";
  Replicator::apply_pending_install(data_, journal_, out);
  EXPECT_FALSE(fs::exists(data_ / "cluster-install.snap.part"));
}

TEST_F(PendingInstall, ACutBelowTheBaseDiscardsTheWholeJournal) {
  ASSERT_NO_FATAL_FAILURE(stage(40));
  std::ostringstream out;
  Replicator::apply_pending_install(data_, journal_, out);
  ASSERT_NO_FATAL_FAILURE(copy_tail(40));
  // At or above the base, a cut is a cut.
  std::ofstream(data_ / "cluster-cut") << "50\n";
  Replicator::apply_pending_cut(data_, journal_, out);
  EXPECT_EQ(state(journal_).substr(0, 3), "50 ");
  // Below it, nothing can be kept: the journal and its store go, the marker too.
  std::ofstream(data_ / "cluster-cut") << "39\n";
  Replicator::apply_pending_cut(data_, journal_, out);
  EXPECT_NE(out.str().find("discarded the journal (it starts after seq 40"), std::string::npos)
      << out.str();
  EXPECT_FALSE(fs::exists(journal_));
  EXPECT_FALSE(fs::exists(data_ / "journal.discarded"));
  EXPECT_FALSE(fs::exists(data_ / "cluster-cut"));
  // A discard a crash interrupted (renamed aside, not yet removed) is finished at the next start.
  fs::create_directories(data_ / "journal.discarded" / "lmdb");
  Replicator::apply_pending_cut(data_, journal_, out);
  EXPECT_FALSE(fs::exists(data_ / "journal.discarded"));
}

}  // namespace
}  // namespace qx::server
