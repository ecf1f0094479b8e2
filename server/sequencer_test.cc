// The sequencer's replication hooks (server/sequencer.h): what a leader ships, the acknowledgement
// gate of ack = quorum, and a follower appending and applying the leader's records.
#include "server/sequencer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "replay/replay.h"

namespace qx::server {
namespace {

namespace fs = std::filesystem;

class SequencerReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "qx-sequencer-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Sequencer open(const fs::path& dir, Metrics& m) {
    auto w = replay::JournalWriter::open(dir, {});
    EXPECT_TRUE(w.ok()) << w.error().message;
    return Sequencer(std::move(w).value(), core::Engine{}, m, {});
  }

  // Posts one job that journals `n` users and waits for its reply.
  static Reply users(Sequencer& s, int from, int n) {
    std::promise<Reply> done;
    auto f = done.get_future();
    EXPECT_TRUE(s.post(
        [from, n](Sequencer::Ctx& c) {
          for (int i = from; i < from + n; ++i) c.submit(core::CreateUser{"u" + std::to_string(i)});
          return Reply{200, "{}"};
        },
        [&done](Reply r) { done.set_value(std::move(r)); }));
    return f.get();
  }

  fs::path dir_;
  Metrics metrics_;
};

// Collects what the sequencer ships, for a test thread to wait on.
struct Shipped {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Sequencer::Shipment> all;
  void add(Sequencer::Shipment s) {
    std::lock_guard lock(mu);
    all.push_back(std::move(s));
    cv.notify_all();
  }
  void wait_for(std::size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return all.size() >= n; });
  }
};

TEST_F(SequencerReplicationTest, ShipsEveryDurableGroupAsWrittenWithStateHashes) {
  Shipped shipped;
  Sequencer leader = open(dir_ / "leader", metrics_);
  leader.replicate({4, [&](Sequencer::Shipment s) { shipped.add(std::move(s)); }});
  std::thread t([&] { leader.run(); });
  EXPECT_EQ(users(leader, 0, 3).status, 200u);
  EXPECT_EQ(users(leader, 3, 6).status, 200u);
  leader.stop();
  t.join();

  ASSERT_EQ(shipped.all.size(), 2u);
  EXPECT_EQ(shipped.all[0].first, core::Seq(1));
  EXPECT_EQ(shipped.all[0].last, core::Seq(3));
  EXPECT_EQ(shipped.all[1].first, core::Seq(4));
  EXPECT_EQ(shipped.all[1].last, core::Seq(9));
  // The bytes are the journal's records, in order.
  std::vector<std::uint8_t> on_disk, sent;
  auto r = replay::JournalReader::open(dir_ / "leader");
  ASSERT_TRUE(r.ok());
  replay::Record rec;
  while (r.value().next(rec).value()) on_disk.insert(on_disk.end(), rec.raw.begin(), rec.raw.end());
  for (const auto& s : shipped.all) sent.insert(sent.end(), s.records.begin(), s.records.end());
  EXPECT_TRUE(sent == on_disk);
  // State hashes at seq 4 and 8, each equal to a replay's at that seq.
  ASSERT_EQ(shipped.all[0].state_hashes.size(), 0u);
  ASSERT_EQ(shipped.all[1].state_hashes.size(), 2u);
  for (const auto& [seq, hash] : shipped.all[1].state_hashes) {
    replay::ReplayOptions opt;
    opt.until_seq = seq;
    auto replayed = replay::replay_journal(dir_ / "leader", opt);
    ASSERT_TRUE(replayed.ok()) << replayed.error().message;
    EXPECT_EQ(replayed.value().engine.state_hash(), hash) << "seq " << core::raw(seq);
  }
}

TEST_F(SequencerReplicationTest, HeldRepliesWaitForTheAcknowledgement) {
  Shipped shipped;
  Sequencer leader = open(dir_ / "leader", metrics_);
  leader.replicate({0, [&](Sequencer::Shipment s) { shipped.add(std::move(s)); }});
  leader.hold_replies(true);
  std::thread t([&] { leader.run(); });

  std::promise<Reply> done;
  auto reply = done.get_future();
  ASSERT_TRUE(leader.post(
      [](Sequencer::Ctx& c) {
        c.submit(core::CreateUser{"alice"});
        c.submit(core::CreateUser{"bob"});
        return Reply{200, "{}"};
      },
      [&done](Reply r) { done.set_value(std::move(r)); }));
  shipped.wait_for(1);  // durable and shipped; the reply waits for a majority
  EXPECT_EQ(reply.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  leader.acknowledge(core::Seq(1));  // not the whole group yet
  EXPECT_EQ(reply.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  leader.acknowledge(core::Seq(2));
  EXPECT_EQ(reply.get().status, 200u);

  // Leadership lost while a group waits: its client hears that the outcome is unknown.
  std::promise<Reply> lost;
  auto lost_reply = lost.get_future();
  ASSERT_TRUE(leader.post(
      [](Sequencer::Ctx& c) {
        c.submit(core::CreateUser{"carol"});
        return Reply{200, "{}"};
      },
      [&lost](Reply r) { lost.set_value(std::move(r)); }));
  shipped.wait_for(2);
  leader.hold_replies(false);
  const Reply r = lost_reply.get();
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("outcome_unknown"), std::string::npos) << r.body;
  leader.stop();
  t.join();
}

// With the gate closed the sequencer does not wait: later batches are journaled and shipped while
// earlier ones wait, and each batch's replies and release actions go, in order, once a majority
// holds its last event (a read waits for the state it saw). Reopening the gate early makes the
// waiting ones unknown and drops their market data.
TEST_F(SequencerReplicationTest, BatchesPipelineBehindTheAcknowledgement) {
  Shipped shipped;
  Sequencer leader = open(dir_ / "leader", metrics_);
  leader.replicate({0, [&](Sequencer::Shipment s) { shipped.add(std::move(s)); }});
  std::mutex mu;
  std::vector<std::string> order;  // replies and release actions, as they happened
  leader.add_on_release([&](const core::Engine& e) -> std::function<void()> {
    return [&mu, &order, last = core::raw(e.last_seq())] {
      std::lock_guard lock(mu);
      order.push_back("release " + std::to_string(last));
    };
  });
  leader.hold_replies(true);
  std::thread t([&] { leader.run(); });
  auto post = [&](const std::string& name, bool write) {
    auto done = std::make_shared<std::promise<Reply>>();
    auto f = done->get_future();
    EXPECT_TRUE(leader.post(
        [name, write](Sequencer::Ctx& c) {
          if (write) c.submit(core::CreateUser{name});
          return Reply{200, name};
        },
        [&mu, &order, done](Reply r) {
          {
            std::lock_guard lock(mu);
            order.push_back(r.body + " " + std::to_string(r.status));
          }
          done->set_value(std::move(r));
        }));
    return f;
  };
  auto a = post("a", true);
  shipped.wait_for(1);
  auto b = post("b", true);
  shipped.wait_for(2);  // journaled and shipped though a is not acknowledged
  auto c = post("c", true);
  shipped.wait_for(3);
  auto read = post("read", false);  // it sees c's event
  EXPECT_EQ(a.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  leader.acknowledge(core::Seq(2));  // a and b
  EXPECT_EQ(b.get().seq, 2u);
  EXPECT_EQ(read.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "a read behind an unacknowledged batch must wait";
  leader.hold_replies(false);  // leadership lost: c and the read of its state are unknown
  EXPECT_EQ(c.get().status, 503u);
  EXPECT_EQ(read.get().status, 503u);
  leader.stop();
  t.join();
  std::lock_guard lock(mu);
  // One acknowledgement released a and b: their answers first, then their market data.
  const std::vector<std::string> expected = {"a 200", "b 200", "release 1", "release 2"};
  ASSERT_GE(order.size(), expected.size());
  EXPECT_EQ(std::vector<std::string>(order.begin(), order.begin() + 4), expected);
  EXPECT_EQ(std::count(order.begin(), order.end(), "release 3"), 0) << "c's data was published";
}

TEST_F(SequencerReplicationTest, AFollowerAppendsAndAppliesTheLeadersRecords) {
  Shipped shipped;
  {
    Sequencer leader = open(dir_ / "leader", metrics_);
    leader.replicate({3, [&](Sequencer::Shipment s) { shipped.add(std::move(s)); }});
    std::thread t([&] { leader.run(); });
    users(leader, 0, 5);
    users(leader, 5, 2);
    leader.stop();
    t.join();
  }
  Sequencer follower = open(dir_ / "follower", metrics_);
  Shipped again;
  follower.replicate({3, [&](Sequencer::Shipment s) { again.add(std::move(s)); }});
  std::thread t([&] { follower.run(); });
  for (const Sequencer::Shipment& s : shipped.all) {
    std::promise<Reply> done;
    auto f = done.get_future();
    ASSERT_TRUE(follower.post(
        [&s](Sequencer::Ctx& c) {
          std::size_t at = 0;
          while (at < s.records.size()) {
            const std::size_t n = replay::record_size(s.records.data() + at);
            std::span<const std::uint8_t> raw(s.records.data() + at, n);
            // A corrupted copy is refused and changes nothing; the true record then applies.
            std::vector<std::uint8_t> bad(raw.begin(), raw.end());
            bad.back() ^= 0x40;
            if (c.append_replicated(bad).ok()) return Reply{500, "a corrupted record was taken"};
            if (auto st = c.append_replicated(raw); !st) return Reply{500, st.error().message};
            at += n;
          }
          for (const auto& [seq, hash] : s.state_hashes) {
            if (c.state_hash_at(seq) != hash) return Reply{500, "state hash differs"};
          }
          return Reply{200, "{}"};
        },
        [&done](Reply r) { done.set_value(std::move(r)); }));
    const Reply r = f.get();
    EXPECT_EQ(r.status, 200u) << r.body;
  }
  follower.stop();
  t.join();
  EXPECT_EQ(follower.engine().last_seq(), core::Seq(7));
  // The follower's journal is the leader's, byte for byte, and it shipped the same records on.
  for (const auto& e : fs::directory_iterator(dir_ / "leader")) {
    std::ifstream a(e.path(), std::ios::binary),
        b(dir_ / "follower" / e.path().filename(), std::ios::binary);
    std::string x((std::istreambuf_iterator<char>(a)), {}),
        y((std::istreambuf_iterator<char>(b)), {});
    EXPECT_TRUE(x == y) << e.path().filename();
  }
  ASSERT_EQ(again.all.size(), shipped.all.size());
  for (std::size_t i = 0; i < again.all.size(); ++i) {
    EXPECT_TRUE(again.all[i].records == shipped.all[i].records);
    EXPECT_EQ(again.all[i].state_hashes, shipped.all[i].state_hashes);
  }
}

// Without a sequencer thread, run_pending() runs what was posted on the calling thread, batch by
// batch, committing before each reply; a job posted by a reply's callback runs in the same call.
TEST_F(SequencerReplicationTest, RunPendingRunsQueuedJobsOnTheCallingThread) {
  Sequencer s = open(dir_, metrics_);
  std::vector<std::string> answered;
  const auto caller = std::this_thread::get_id();
  auto job = [](const std::string& name) {
    return [name](Sequencer::Ctx& c) {
      c.submit(core::CreateUser{name});
      return Reply{200, name};
    };
  };
  for (const char* name : {"ann", "ben"}) {
    ASSERT_TRUE(s.post(job(name), [&](Reply r) {
      EXPECT_EQ(std::this_thread::get_id(), caller);
      answered.push_back(r.body);
      if (r.body == "ben") {
        EXPECT_TRUE(s.post(job("cat"), [&](Reply again) { answered.push_back(again.body); }));
      }
    }));
  }
  EXPECT_TRUE(answered.empty());  // nothing runs before run_pending()
  s.run_pending();
  EXPECT_EQ(answered, (std::vector<std::string>{"ann", "ben", "cat"}));
  EXPECT_EQ(s.engine().last_seq(), core::Seq{3});
  s.run_pending();  // nothing queued: returns at once
  EXPECT_EQ(answered.size(), 3u);
  // Every reply came after its event was on disk.
  auto replayed = replay::replay_journal(dir_, {});
  ASSERT_TRUE(replayed.ok()) << replayed.error().message;
  EXPECT_EQ(replayed.value().engine.state_hash(), s.engine().state_hash());
}

}  // namespace
}  // namespace qx::server
