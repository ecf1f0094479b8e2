#include "server/snapshots.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "replay/store.h"

namespace qx::server {
namespace {

namespace fs = std::filesystem;

class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "qx-snapshots-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Brings the engine to `seq` with one CreateUser event per step.
  void advance_to(std::uint64_t seq) {
    core::EffectBuffer fx;
    for (std::uint64_t s = core::raw(engine_.last_seq()) + 1; s <= seq; ++s) {
      engine_.apply(core::Event{{core::Seq(s), static_cast<std::int64_t>(s) * 1000, 0},
                                core::CreateUser{"u" + std::to_string(s)}},
                    fx);
    }
  }

  std::vector<core::Seq> stored() {
    auto store = replay::Store::open(dir_);
    EXPECT_TRUE(store) << store.error().message;
    auto seqs = store.value().snapshot_seqs();
    EXPECT_TRUE(seqs);
    return seqs.value();
  }

  fs::path dir_;
  core::Engine engine_;
  Metrics metrics_;
};

TEST_F(SnapshotterTest, TakesOneWhenACommitReachesTheThresholdAndCountsOnFromIt) {
  Snapshotter snapshots(dir_, 10, std::nullopt, metrics_);
  EXPECT_EQ(snapshots.next_seq(), 10u);
  advance_to(9);
  snapshots.after_commit(engine_);
  EXPECT_EQ(snapshots.next_seq(), 10u);  // not yet
  advance_to(12);                        // one batch may cross the threshold by several events
  snapshots.after_commit(engine_);
  EXPECT_EQ(snapshots.next_seq(), 22u);  // counted from the snapshot taken, not from 10
  snapshots.stop();                      // waits for the write
  EXPECT_EQ(stored(), std::vector<core::Seq>{core::Seq(12)});

  // The stored snapshot restores to the same state.
  auto store = replay::Store::open(dir_);
  auto found = store.value().latest_snapshot(std::nullopt);
  ASSERT_TRUE(found && found.value().found);
  EXPECT_EQ(found.value().found->state_hash, engine_.state_hash());
  EXPECT_NE(metrics_.text().find("qx_snapshots_total{result=\"ok\"} 1"), std::string::npos)
      << metrics_.text();
}

TEST_F(SnapshotterTest, CountsFromTheRecoveredSnapshot) {
  Snapshotter snapshots(dir_, 50, core::Seq(120), metrics_);
  EXPECT_EQ(snapshots.next_seq(), 170u);
  advance_to(169);
  snapshots.after_commit(engine_);
  snapshots.stop();
  EXPECT_TRUE(stored().empty());
}

TEST_F(SnapshotterTest, ZeroDisablesSnapshots) {
  Snapshotter snapshots(dir_, 0, std::nullopt, metrics_);
  advance_to(1000);
  snapshots.after_commit(engine_);
  snapshots.stop();
  EXPECT_FALSE(fs::exists(dir_ / "lmdb"));  // the store was never opened
}

TEST_F(SnapshotterTest, AFailedWriteIsCountedAndTheNextOneIsStillTaken) {
  const fs::path not_a_dir = dir_ / "file";
  std::ofstream(not_a_dir) << "x";  // the store cannot be created under a regular file
  Snapshotter snapshots(not_a_dir, 5, std::nullopt, metrics_);
  advance_to(5);
  snapshots.after_commit(engine_);
  EXPECT_EQ(snapshots.next_seq(), 10u);
  snapshots.stop();
  EXPECT_NE(metrics_.text().find("qx_snapshots_total{result=\"failed\"} 1"), std::string::npos)
      << metrics_.text();
  snapshots.stop();  // idempotent
}

TEST_F(SnapshotterTest, AtMostOneInFlightAndNoneLost) {
  // Commits every event; whatever the writer's speed, every snapshot that was handed over is
  // stored, each at least `every` after the one before, and the last threshold passed is taken
  // once the writer is free.
  Snapshotter snapshots(dir_, 3, std::nullopt, metrics_);
  for (std::uint64_t seq = 1; seq <= 60; ++seq) {
    advance_to(seq);
    snapshots.after_commit(engine_);
  }
  snapshots.stop();
  const auto seqs = stored();
  ASSERT_FALSE(seqs.empty());
  EXPECT_GE(core::raw(seqs.front()), 3u);
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    EXPECT_GE(core::raw(seqs[i]) - core::raw(seqs[i - 1]), 3u);
  }
  EXPECT_EQ(snapshots.next_seq(), core::raw(seqs.back()) + 3);
}

}  // namespace
}  // namespace qx::server
