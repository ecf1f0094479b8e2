// Replication and election decisions (cluster/replication.h), with hand-worked clusters.
#include "cluster/replication.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace qx::cluster {
namespace {

// A cluster of `voters` voters (ids 1..voters) and `learners` learners after them, seen from
// node `self`.
ClusterConfig cluster(std::uint32_t voters, std::uint32_t learners, NodeId self,
                      Ack ack = Ack::kQuorum) {
  ClusterConfig c;
  c.name = "test";
  c.node = self;
  c.ack = ack;
  c.etcd = {"127.0.0.1:2379"};
  for (std::uint32_t i = 1; i <= voters + learners; ++i) {
    c.nodes.push_back(NodeAddress{
        i, i <= voters ? Role::kVoter : Role::kLearner, "127.0.0.1:" + std::to_string(7000 + i),
        "127.0.0.1:" + std::to_string(8000 + i), "127.0.0.1:" + std::to_string(9000 + i), ""});
  }
  return c;
}

core::Seq seq(std::uint64_t s) {
  return core::Seq(s);
}

TEST(Progress, QuorumCommitIsTheMajoritysLeastDurable) {
  Progress p(cluster(3, 0, 1));
  p.start_term(seq(100));
  EXPECT_EQ(p.committed(), seq(0));  // only the leader holds anything yet
  EXPECT_TRUE(p.on_durable(2, seq(90)));
  EXPECT_EQ(p.committed(), seq(90));  // leader and node 2: a majority of 3
  EXPECT_TRUE(p.on_durable(3, seq(95)));
  EXPECT_EQ(p.committed(), seq(95));
  EXPECT_TRUE(p.on_durable(3, seq(80)));  // a stale report changes nothing
  EXPECT_EQ(p.durable_of(3), seq(95));
  p.on_local_durable(seq(120));
  EXPECT_TRUE(p.on_durable(2, seq(130)));  // a follower cannot be ahead in practice; counted
  EXPECT_EQ(p.committed(), seq(120));
}

TEST(Progress, LearnersNeverCountAndUnknownNodesAreRefused) {
  Progress p(cluster(3, 2, 1));
  p.start_term(seq(50));
  EXPECT_TRUE(p.on_durable(4, seq(50)));
  EXPECT_TRUE(p.on_durable(5, seq(50)));
  EXPECT_EQ(p.committed(), seq(0));  // two learners hold it; no voter but the leader
  EXPECT_FALSE(p.on_durable(6, seq(50)));
  EXPECT_FALSE(p.on_durable(1, seq(60)));  // the leader's own durable comes from its journal
  EXPECT_EQ(p.durable_of(6), seq(0));
  EXPECT_TRUE(p.on_durable(3, seq(40)));
  EXPECT_EQ(p.committed(), seq(40));
}

TEST(Progress, FourVotersNeedThree) {
  Progress p(cluster(4, 0, 2));
  p.start_term(seq(10));
  p.on_durable(1, seq(10));
  EXPECT_EQ(p.committed(), seq(0));
  p.on_durable(4, seq(7));
  EXPECT_EQ(p.committed(), seq(7));
}

TEST(Progress, AckLocalIsTheLeadersOwnDurable) {
  Progress p(cluster(3, 0, 1, Ack::kLocal));
  p.start_term(seq(10));
  EXPECT_EQ(p.committed(), seq(10));
  p.on_local_durable(seq(12));
  EXPECT_EQ(p.committed(), seq(12));
}

TEST(Progress, ANewTermForgetsTheFollowers) {
  Progress p(cluster(3, 0, 1));
  p.start_term(seq(10));
  p.on_durable(2, seq(10));
  EXPECT_EQ(p.committed(), seq(10));
  p.start_term(seq(11));
  EXPECT_EQ(p.committed(), seq(0));
  EXPECT_EQ(p.durable_of(2), seq(0));
}

TEST(NodeRecord, RoundTripsAndRefusesHostileText) {
  const NodeRecord r{3, 17, 15, seq(123'456)};
  auto back = decode_node_record(3, encode_node_record(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value(), r);
  for (const char* bad :
       {"", "[]", "{", "null", R"({"fenced":1,"last_epoch":2})",
        R"({"fenced":1,"last_epoch":2,"durable":-3})",
        R"({"fenced":1,"last_epoch":2,"durable":1.5})",
        R"({"fenced":"1","last_epoch":2,"durable":3})",
        R"({"fenced":1,"last_epoch":2,"durable":3,"x":4})",
        R"({"fenced":1,"last_epoch":2,"durable":99999999999999999999999})",
        R"({"fenced":1,"last_epoch":true,"durable":3})", R"({"f":1,"last_epoch":2,"durable":3})"}) {
    auto d = decode_node_record(3, bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.error().message.find("node record of node 3"), std::string::npos) << bad;
  }
}

TEST(Campaign, TheMostCompleteOfAFencedMajorityCampaigns) {
  const ClusterConfig c = cluster(3, 0, 2);
  // Node 1 led epoch 5 and is gone; 2 and 3 fenced it. 3 holds more: 3 campaigns, not 2.
  std::vector<NodeRecord> records{{2, 5, 5, seq(90)}, {3, 5, 5, seq(95)}};
  Verdict v = campaign_verdict(c, 5, records);
  EXPECT_EQ(v.kind, Verdict::kAnotherCampaigns);
  EXPECT_EQ(v.best, 3u);
  EXPECT_EQ(v.fenced_voters, 2u);
  EXPECT_EQ(campaign_verdict(cluster(3, 0, 3), 5, records).kind, Verdict::kCampaign);
}

TEST(Campaign, TheLastTermOutranksALongerOlderSuffix) {
  // Node 2 holds 100 records whose last term is epoch 4 (an old leader's unacknowledged tail);
  // node 3 holds 90 of epoch 5, which a majority acknowledged. Node 3 must win.
  std::vector<NodeRecord> records{{2, 5, 4, seq(100)}, {3, 5, 5, seq(90)}};
  EXPECT_EQ(campaign_verdict(cluster(3, 0, 3), 5, records).kind, Verdict::kCampaign);
  EXPECT_EQ(campaign_verdict(cluster(3, 0, 2), 5, records).kind, Verdict::kAnotherCampaigns);
}

TEST(Campaign, TiesGoToTheLowestIdAndUnfencedRecordsWait) {
  std::vector<NodeRecord> tie{{3, 5, 5, seq(90)}, {2, 5, 5, seq(90)}};
  EXPECT_EQ(campaign_verdict(cluster(3, 0, 2), 5, tie).kind, Verdict::kCampaign);
  EXPECT_EQ(campaign_verdict(cluster(3, 0, 3), 5, tie).best, 2u);
  // Node 3 has not fenced epoch 5 (it still hears the leader): no majority, nobody campaigns.
  std::vector<NodeRecord> one{{2, 5, 5, seq(90)}, {3, 4, 5, seq(99)}};
  Verdict v = campaign_verdict(cluster(3, 0, 2), 5, one);
  EXPECT_EQ(v.kind, Verdict::kWaitForMajority);
  EXPECT_EQ(v.fenced_voters, 1u);
}

TEST(Campaign, LearnersUnknownNodesAndDuplicatesDoNotCount) {
  const ClusterConfig c = cluster(3, 1, 1);
  std::vector<NodeRecord> records{{1, 5, 5, seq(10)},
                                  {4, 5, 5, seq(99)},   // a learner
                                  {9, 5, 5, seq(99)},   // not in the file
                                  {1, 5, 5, seq(10)}};  // the same node twice
  Verdict v = campaign_verdict(c, 5, records);
  EXPECT_EQ(v.kind, Verdict::kWaitForMajority);
  EXPECT_EQ(v.fenced_voters, 1u);
  EXPECT_EQ(v.best, 1u);
  EXPECT_EQ(campaign_verdict(cluster(3, 1, 4), 5, records).kind, Verdict::kNotAVoter);
}

TEST(Stream, AFollowerTakesOnlyNewerOrEqualUnfencedEpochsInOrder) {
  EXPECT_EQ(check_stream(7, seq(11), 6, 7, seq(10)), StreamCheck::kAccept);
  EXPECT_EQ(check_stream(8, seq(11), 6, 7, seq(10)), StreamCheck::kAccept);  // a new leader
  EXPECT_EQ(check_stream(6, seq(11), 6, 5, seq(10)), StreamCheck::kFencedEpoch);
  EXPECT_EQ(check_stream(5, seq(11), 0, 7, seq(10)), StreamCheck::kOlderEpoch);
  EXPECT_EQ(check_stream(7, seq(12), 0, 7, seq(10)), StreamCheck::kGap);
  EXPECT_EQ(check_stream(7, seq(10), 0, 7, seq(10)), StreamCheck::kGap);
  EXPECT_STREQ(to_string(StreamCheck::kGap), "the records do not follow this node's last seq");
}

// Runs a search between two journals that agree up to `common` and holds f and l records.
core::Seq search(std::uint64_t common, std::uint64_t f, std::uint64_t l, int* probes = nullptr) {
  ForkSearch s(seq(f), seq(l));
  int n = 0;
  while (auto p = s.probe()) {
    EXPECT_GE(static_cast<std::uint64_t>(*p), 1u);
    EXPECT_LE(static_cast<std::uint64_t>(*p), std::min(f, l));
    s.on_probe(*p, static_cast<std::uint64_t>(*p) <= common);
    if (++n > 200) {
      ADD_FAILURE() << "the search does not end";
      break;
    }
  }
  if (probes != nullptr) *probes = n;
  return s.fork();
}

TEST(ForkSearch, FindsTheLastCommonRecord) {
  int probes = 0;
  EXPECT_EQ(search(100, 100, 120, &probes), seq(100));  // a follower behind: one probe
  EXPECT_EQ(probes, 1);
  EXPECT_EQ(search(95, 100, 120), seq(95));  // five unacknowledged records to cut
  EXPECT_EQ(search(0, 100, 120), seq(0));    // nothing in common
  EXPECT_EQ(search(0, 0, 120), seq(0));      // an empty follower: no probe at all
  EXPECT_EQ(search(1, 1, 1), seq(1));
  EXPECT_EQ(search(1'000'000 - 3, 1'000'000, 2'000'000, &probes), seq(1'000'000 - 3));
  EXPECT_LE(probes, 6);  // gallops: a fork near the end costs few probes
}

TEST(ForkSearch, AsksAtTheFloorBeforeAnythingBelowIt) {
  // Fork at 32 between 30 (the floor) and 38; without the floor the gallop would ask 26.
  ForkSearch f(core::Seq(38), core::Seq(50), core::Seq(30));
  std::vector<std::uint64_t> asked;
  while (auto s = f.probe()) {
    asked.push_back(core::raw(*s));
    ASSERT_GE(core::raw(*s), 30u);
    f.on_probe(*s, core::raw(*s) <= 32);
  }
  EXPECT_EQ(f.fork(), core::Seq(32));
  EXPECT_NE(std::find(asked.begin(), asked.end(), 30u), asked.end());
  // A fork below the floor: after the floor disagrees, the next question is below it (the
  // leader cannot answer it and sends a snapshot instead).
  ForkSearch g(core::Seq(38), core::Seq(50), core::Seq(30));
  while (auto s = g.probe()) {
    if (core::raw(*s) < 30) break;
    g.on_probe(*s, false);
  }
  ASSERT_TRUE(g.probe());
  EXPECT_LT(core::raw(*g.probe()), 30u);
}

TEST(ForkSearch, AgreesWithALinearScanOnRandomForks) {
  std::mt19937_64 rng(20261207);  // fixed: the cases are reproducible
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t f = rng() % 5000, l = rng() % 5000;
    const std::uint64_t common = std::min(f, l) == 0 ? 0 : rng() % (std::min(f, l) + 1);
    int probes = 0;
    ASSERT_EQ(search(common, f, l, &probes), seq(common)) << f << " " << l << " " << common;
    EXPECT_LE(probes, 30);
  }
}

}  // namespace
}  // namespace qx::cluster
