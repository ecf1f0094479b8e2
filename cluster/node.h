// One node of the replicated exchange as a pure state machine (docs/cluster.md): inputs are timer
// ticks, messages from peers, its own journal's progress and the results of etcd requests; the
// outputs say what to send, what to do with the journal, what to ask etcd and when clients may
// hear of events. No socket, clock, thread or disk: the server's transport and etcd client drive
// it in production, the deterministic simulator drives several of them from a seed.
//
//   Node n(config, log, persisted_fence, now_ms);        // a follower that knows no leader yet
//   for (const Output& o : n.start()) act(o);           // asks etcd who leads
//   for (const Output& o : n.step(Tick{now_ms})) act(o);
//   for (const Output& o : n.step(Received{peer, msg})) act(o);
//
// The control plane only: the records themselves travel beside a Records message (the driver
// reads them from its journal, and a follower's driver appends them when the node answers a
// Records message with an Append output). The driver reports its journal's durable progress
// with Durable, and the node answers with acknowledgements (a follower's Acked, a leader's
// Acknowledge).
//
// Snapshot install: a follower whose journal ends before the leader's journal starts (its base),
// or more than catch_up_events_max records before the leader's newest snapshot when the leader
// has acknowledged past that snapshot, is sent that snapshot instead (SendSnapshot; the bytes
// travel beside, in chunks the follower's driver stages; then InstallSnapshot). The follower's node
// answers with Install, its driver replaces journal and engine, and it says Hello again from the
// snapshot's seq. A snapshot the leader had not yet acknowledged is sent only when nothing else can
// be (the follower's records end before the leader's base): a later leader that lacks its last
// events makes the follower cut below its own base, which its driver does by discarding its
// journal, and it is sent a snapshot again.
//
// The driver must carry out a step's outputs in order, and must write a Publish's `fenced` to its
// own disk (durably) before putting the record in etcd: a fence forgotten by a restart could let
// a deposed leader gather a majority again.
//
// Caveats: one Node per process and per term history (its LogView is the node's own journal);
// times are milliseconds of any monotonic clock, never compared across nodes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cluster/config.h"
#include "cluster/replication.h"
#include "core/types.h"
#include "replay/journal.h"

namespace qx::cluster {

enum class NodeRole : std::uint8_t { kFollower = 1, kLeader = 2 };
const char* to_string(NodeRole r);

// The leadership key as read from etcd: who holds it and the revision it was written at (the
// epoch of that leader's term).
struct LeaderKey {
  NodeId node{};
  std::uint64_t mod_revision{};
  bool operator==(const LeaderKey&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Messages between nodes. Every message of a leader carries its epoch; followers judge it.

// Follower to leader, on connecting and at every new epoch: what its journal holds.
struct Hello {
  NodeId from{};
  std::uint64_t fenced{};
  std::uint64_t last_epoch{};
  core::Seq last{};
  bool operator==(const Hello&) const = default;
};
// Leader to follower, every heartbeat: it is alive; events through `commit` are acknowledged.
struct Heartbeat {
  std::uint64_t epoch{};
  NodeId leader{};
  core::Seq commit{};
  bool operator==(const Heartbeat&) const = default;
};
// Leader to follower: "my chain hash at seq is `chain`" (finding where two journals fork).
struct Probe {
  std::uint64_t epoch{};
  core::Seq seq{};
  replay::ChainHash chain{};
  bool operator==(const Probe&) const = default;
};
struct ProbeReply {
  NodeId from{};
  std::uint64_t epoch{};
  core::Seq seq{};
  bool agree{};
  bool operator==(const ProbeReply&) const = default;
};
// Leader to follower: cut every record after keep_last (records the leader never had).
struct Truncate {
  std::uint64_t epoch{};
  core::Seq keep_last{};
  bool operator==(const Truncate&) const = default;
};
// Leader to follower: records first..last follow (their bytes beside this message).
struct Records {
  std::uint64_t epoch{};
  core::Seq first{};
  core::Seq last{};
  bool operator==(const Records&) const = default;
};
// Follower to leader: its journal is durable through `durable` in this epoch's stream.
struct Acked {
  NodeId from{};
  std::uint64_t epoch{};
  core::Seq durable{};
  bool operator==(const Acked&) const = default;
};
// Follower to leader: it refuses this epoch, having fenced `fenced`.
struct Refuse {
  NodeId from{};
  std::uint64_t epoch{};
  std::uint64_t fenced{};
  bool operator==(const Refuse&) const = default;
};
// Leader to follower: the engine snapshot at `seq` has been sent whole (in chunks before this
// message, staged by the follower's driver); the follower's journal restarts after it, its record
// `seq` having chain hash `chain`.
struct InstallSnapshot {
  std::uint64_t epoch{};
  core::Seq seq{};
  replay::ChainHash chain{};
  std::uint64_t state_hash{};
  bool operator==(const InstallSnapshot&) const = default;
};
using Message = std::variant<Hello, Heartbeat, Probe, ProbeReply, Truncate, Records, Acked, Refuse,
                             InstallSnapshot>;

// ---------------------------------------------------------------------------------------------
// Inputs.

struct Tick {
  std::int64_t now_ms{};
};
struct Received {
  NodeId from{};
  Message message;
};
// The node's journal is durable through seq (after a group commit, or after appended records).
struct Durable {
  core::Seq seq{};
};
// The answer to ReadLeader (nullopt: no key).
struct LeaderRead {
  std::optional<LeaderKey> key;
};
// The answer to ReadNodes: every node's published record.
struct NodesRead {
  std::vector<NodeRecord> records;
};
// The answer to Campaign: won at `revision` (the new epoch), or lost to `current`.
struct CampaignResult {
  bool won{};
  std::uint64_t revision{};
  std::optional<LeaderKey> current;
};
// The node could not renew its etcd lease for longer than the lease lasts.
struct LeaseLost {};
// The replication connection to or from `peer` closed.
struct Disconnected {
  NodeId peer{};
};
// Follower: the leader's stream of `epoch` is making progress without a message (a snapshot's
// chunks are arriving): as good as a heartbeat.
struct Heard {
  NodeId from{};
  std::uint64_t epoch{};
};
using Input = std::variant<Tick, Received, Durable, LeaderRead, NodesRead, CampaignResult,
                           LeaseLost, Disconnected, Heard>;

// ---------------------------------------------------------------------------------------------
// Outputs.

struct Send {
  NodeId to{};
  Message message;
  bool operator==(const Send&) const = default;
};
// Follower: send `hello` to `leader`, opening the replication connection to it first (and closing
// any other) unless one is open.
struct Connect {
  NodeId leader{};
  Hello hello;
  bool operator==(const Connect&) const = default;
};
// Write `record.fenced` durably to local disk, then put the record in etcd under this node.
struct Publish {
  NodeRecord record;
  bool operator==(const Publish&) const = default;
};
struct ReadLeader {
  bool operator==(const ReadLeader&) const = default;
};
struct ReadNodes {
  bool operator==(const ReadNodes&) const = default;
};
// Compare-and-set the leadership key: if its mod revision is still `expected_mod_revision` (0:
// absent), put it naming this node, with this node's lease.
struct Campaign {
  std::uint64_t expected_mod_revision{};
  bool operator==(const Campaign&) const = default;
};
// Leader: journal LeaderTerm{epoch, this node} as the next event, then take client writes.
struct StartTerm {
  std::uint64_t epoch{};
  bool operator==(const StartTerm&) const = default;
};
// Leader no more: stop acknowledging at once, answer writes with the leader's address.
struct StepDown {
  bool operator==(const StepDown&) const = default;
};
// Leader: ship records from `first` on to `to`, and keep shipping as the journal grows.
struct StreamFrom {
  NodeId to{};
  core::Seq first{};
  bool operator==(const StreamFrom&) const = default;
};
// Follower: append the records that came with this Records message (checking each CRC and chain).
struct Append {
  core::Seq first{};
  core::Seq last{};
  bool operator==(const Append&) const = default;
};
// Follower: cut the journal after keep_last, log what was cut, rebuild the engine to it. A
// keep_last before the journal's base() discards the whole journal (the leader then sends a
// snapshot).
struct Cut {
  core::Seq keep_last{};
  bool operator==(const Cut&) const = default;
};
// Leader: send `to` the stored snapshot at `seq` (its bytes in chunks, then an InstallSnapshot):
// the follower is further behind than the records it could be sent, or than catch_up_events_max.
// The follower says Hello again once it has installed it.
struct SendSnapshot {
  NodeId to{};
  core::Seq seq{};
  bool operator==(const SendSnapshot&) const = default;
};
// Follower: install the snapshot the leader sent (staged by the driver): the journal restarts
// after `seq` (every record of it is removed) and the engine is the snapshot's.
struct Install {
  core::Seq seq{};
  bool operator==(const Install&) const = default;
};
// Leader: close the connection from `peer`; it says Hello again on a new one and is judged anew
// (the fork search could not go on: this journal cannot say its chain where it needed to).
struct Drop {
  NodeId peer{};
  bool operator==(const Drop&) const = default;
};
// Leader: clients may hear of every event through `through`.
struct Acknowledge {
  core::Seq through{};
  bool operator==(const Acknowledge&) const = default;
};
// For the log and the metrics: the node's role, epoch and leader changed.
struct RoleChanged {
  NodeRole role{};
  std::uint64_t epoch{};
  NodeId leader{};
  bool operator==(const RoleChanged&) const = default;
};
using Output =
    std::variant<Send, Connect, Publish, ReadLeader, ReadNodes, Campaign, StartTerm, StepDown,
                 StreamFrom, Append, Cut, Acknowledge, RoleChanged, SendSnapshot, Install, Drop>;

// ---------------------------------------------------------------------------------------------
// The node's own journal, as far as the node needs to know it.

class LogView {
 public:
  virtual ~LogView() = default;
  [[nodiscard]] virtual core::Seq last() const = 0;
  [[nodiscard]] virtual core::Seq durable() const = 0;
  // The epoch of the last LeaderTerm in the journal (0: none).
  [[nodiscard]] virtual std::uint64_t last_epoch() const = 0;
  // The chain hash of record seq (all zeros for seq 0); nullopt beyond the end or before base().
  [[nodiscard]] virtual std::optional<replay::ChainHash> chain_at(core::Seq seq) const = 0;
  // The seq the journal starts after (0: it holds every record from the first; more once a
  // snapshot was installed): no record at or before it can be read or sent.
  [[nodiscard]] virtual core::Seq base() const = 0;
  // The newest stored snapshot that could be sent to a follower (nullopt: none).
  [[nodiscard]] virtual std::optional<core::Seq> snapshot() const = 0;
};

class Node {
 public:
  Node(ClusterConfig config, const LogView& log, std::uint64_t fenced, std::int64_t now_ms);

  std::vector<Output> start();
  std::vector<Output> step(const Input& in);

  [[nodiscard]] NodeRole role() const { return role_; }
  // The epoch this node leads or follows (0: none yet).
  [[nodiscard]] std::uint64_t epoch() const { return epoch_; }
  [[nodiscard]] NodeId leader() const { return leader_; }
  [[nodiscard]] std::uint64_t fenced() const { return fenced_; }
  [[nodiscard]] bool suspecting() const { return suspecting_; }
  [[nodiscard]] const ClusterConfig& config() const { return config_; }

 private:
  struct Peer {
    std::optional<ForkSearch> search;  // finding the fork with this follower
    std::optional<core::Seq> probing;  // the probe awaiting its answer
    core::Seq hello_last{};
    bool streaming = false;  // its acks count this term
  };
  using Out = std::vector<Output>;

  void on(const Tick& t, Out& out);
  void on(const Received& r, Out& out);
  void on(const Durable& d, Out& out);
  void on(const LeaderRead& r, Out& out);
  void on(const NodesRead& r, Out& out);
  void on(const CampaignResult& r, Out& out);
  void on(const LeaseLost&, Out& out);
  void on(const Disconnected& d, Out& out);
  void on(const Heard& h, Out& out);

  void on_message(NodeId from, const Hello& m, Out& out);
  void on_message(NodeId from, const Heartbeat& m, Out& out);
  void on_message(NodeId from, const Probe& m, Out& out);
  void on_message(NodeId from, const ProbeReply& m, Out& out);
  void on_message(NodeId from, const Truncate& m, Out& out);
  void on_message(NodeId from, const Records& m, Out& out);
  void on_message(NodeId from, const Acked& m, Out& out);
  void on_message(NodeId from, const Refuse& m, Out& out);
  void on_message(NodeId from, const InstallSnapshot& m, Out& out);

  // Follower side.
  bool takes(std::uint64_t epoch) const;  // a leader's message of this epoch is acceptable
  void follow(NodeId leader, std::uint64_t epoch, Out& out);
  void suspect(std::uint64_t epoch, Out& out);
  void publish(Out& out);
  [[nodiscard]] Hello hello() const;
  // Leader side.
  void lead(std::uint64_t epoch, Out& out);
  void step_down(Out& out);
  void continue_search(NodeId peer, Peer& p, Out& out);
  // The snapshot to send a follower whose journal ends at `last` instead of records (nullopt:
  // records will do).
  [[nodiscard]] std::optional<core::Seq> snapshot_for(core::Seq last) const;
  void acknowledge(Out& out);
  [[nodiscard]] bool known(NodeId id) const;

  ClusterConfig config_;
  const LogView& log_;
  NodeRole role_ = NodeRole::kFollower;
  std::uint64_t epoch_ = 0;
  NodeId leader_ = 0;
  std::uint64_t fenced_ = 0;
  std::int64_t now_ms_ = 0;
  std::int64_t last_heard_ms_ = 0;
  std::int64_t next_poll_ms_ = 0;
  bool suspecting_ = false;
  bool campaigning_ = false;
  bool synced_ = false;     // follower: has taken this epoch's stream (its acks mean something)
  bool connected_ = false;  // follower: a connection to leader_ was asked for and not lost
  std::optional<LeaderKey> observed_;  // the last leadership key read
  Progress progress_;
  core::Seq acknowledged_{};
  std::map<NodeId, Peer> peers_;  // leader: followers that said Hello this term
};

}  // namespace qx::cluster
