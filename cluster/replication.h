// The decisions of replication and election (docs/cluster.md), as pure functions and small state
// machines over values: no sockets, clocks, etcd or disk. The server's transport and the
// deterministic simulator both feed them.
//
//   Progress p(config);                      // the leader's view of what each node holds
//   p.start_term(leader_durable);            // a new term: followers unknown until they report
//   p.on_durable(follower, seq);             // an Ack from a follower
//   core::Seq ackable = p.committed();       // clients may hear of events up to here
//
//   auto v = campaign_verdict(config, epoch, published_records);   // after fencing `epoch`
//   if (v.kind == Verdict::kCampaign) ...    // compare-and-set the leader key in etcd
//
//   ForkSearch f(follower_last, leader_last);  // the greatest seq where two chains agree
//   while (auto s = f.probe()) f.on_probe(*s, chain_of_follower(*s) == chain_of_leader(*s));
//   core::Seq keep = f.fork();               // cut the follower's journal after this
//
// Caveats: node ids are checked against the cluster file (an unknown node's report is refused,
// never counted); a node's durable seq only grows within a term (an older report is ignored, as
// TCP may deliver a stale one after a reconnect).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/config.h"
#include "core/types.h"
#include "replay/result.h"

namespace qx::cluster {

// ---------------------------------------------------------------------------------------------
// The leader's view of the durable sequence number of every node.

class Progress {
 public:
  explicit Progress(const ClusterConfig& config);

  // A new term: the leader holds `leader_durable`; every other node counts as holding nothing
  // until it reports.
  void start_term(core::Seq leader_durable);
  // The leader's own journal is durable up to seq.
  void on_local_durable(core::Seq seq);
  // A follower or learner reports its durable seq. False (nothing counted) for an unknown node or
  // the leader itself; a lower seq than already known is ignored (true).
  bool on_durable(NodeId node, core::Seq seq);
  // The greatest seq a client may hear of: with ack = quorum, the quorum()-th greatest durable seq
  // among the voters (the leader included); with ack = local, the leader's own durable seq.
  [[nodiscard]] core::Seq committed() const;
  // What a node is known to hold (0 before its first report this term).
  [[nodiscard]] core::Seq durable_of(NodeId node) const;

 private:
  struct Entry {
    NodeId id;
    Role role;
    core::Seq durable;
  };
  Entry* find(NodeId id);
  const Entry* find(NodeId id) const;

  NodeId self_;
  Ack ack_;
  std::size_t quorum_;
  std::vector<Entry> nodes_;  // every node of the cluster file, by id
};

// ---------------------------------------------------------------------------------------------
// Election: what each node publishes in etcd, and whether this one should campaign.

// A node's published state: the epoch it fenced (it takes no record of that epoch or below), the
// epoch of the last LeaderTerm in its journal, and its durable seq.
struct NodeRecord {
  NodeId id{};
  std::uint64_t fenced = 0;
  std::uint64_t last_epoch = 0;
  core::Seq durable{};
  bool operator==(const NodeRecord&) const = default;
};

// The JSON text of a record's value in etcd (the id is in the key), and back. Decoding treats the
// text as hostile: anything but an object of exactly these three whole numbers is an error.
std::string encode_node_record(const NodeRecord& r);
replay::Result<NodeRecord> decode_node_record(NodeId id, std::string_view text);

struct Verdict {
  enum Kind : std::uint8_t {
    kCampaign = 1,          // this node is the most complete of a fenced majority
    kWaitForMajority = 2,   // fewer than quorum() voters have fenced the epoch yet
    kAnotherCampaigns = 3,  // `best` is more complete; it campaigns
    kNotAVoter = 4,         // learners never lead
  };
  Kind kind{};
  NodeId best{};                // the most complete fenced voter (0 when none)
  std::size_t fenced_voters{};  // voters whose record fences `epoch` or later
};

// Whether this node should campaign to succeed the leader of `epoch`, given every record read
// from etcd (this node's own included; records of unknown nodes or learners are not counted).
// The most complete is the greatest (last_epoch, durable), ties to the lowest node id.
Verdict campaign_verdict(const ClusterConfig& config, std::uint64_t epoch,
                         std::span<const NodeRecord> records);

// ---------------------------------------------------------------------------------------------
// A follower's check of the stream it is offered.

enum class StreamCheck : std::uint8_t {
  kAccept = 1,
  kFencedEpoch = 2,  // the stream's epoch is at or below what this node fenced
  kOlderEpoch = 3,   // an epoch below the one this node already follows
  kGap = 4,          // the records do not start right after this node's last seq
};
// A stream of `epoch` whose next record is `first_seq`, offered to a node that fenced `fenced`,
// follows `following` (0: none yet) and holds records up to `last`.
StreamCheck check_stream(std::uint64_t epoch, core::Seq first_seq, std::uint64_t fenced,
                         std::uint64_t following, core::Seq last);
const char* to_string(StreamCheck c);

// ---------------------------------------------------------------------------------------------
// Finding where two journals fork. Chains commit to every earlier record, so if two journals
// agree at seq s they agree at every seq below it: the search gallops back from the newest
// common seq and then bisects, O(log d) probes for a fork d records back. A leader whose journal
// starts after `floor` (it installed a snapshot there) cannot say its chain below it: the search
// asks at the floor before anything below it, so a fork at or above the floor is found.

class ForkSearch {
 public:
  ForkSearch(core::Seq follower_last, core::Seq leader_last, core::Seq floor = core::Seq{});
  // The next seq whose two chain hashes should be compared, or nullopt when fork() is known.
  [[nodiscard]] std::optional<core::Seq> probe() const;
  // The comparison at the seq probe() gave.
  void on_probe(core::Seq seq, bool chains_agree);
  // The greatest seq at which the two journals agree (0: not even the first record).
  [[nodiscard]] core::Seq fork() const;

 private:
  std::uint64_t agree_ = 0;     // known to agree here (0 always does)
  std::uint64_t disagree_ = 0;  // known to differ here; 0 = nothing known yet above agree_
  std::uint64_t top_ = 0;       // the highest seq both hold
  std::uint64_t floor_ = 0;     // asked before any seq below it
  std::uint64_t step_ = 1;      // the gallop's next step back
};

}  // namespace qx::cluster
