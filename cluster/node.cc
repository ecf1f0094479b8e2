#include "cluster/node.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"

namespace qx::cluster {

const char* to_string(NodeRole r) {
  switch (r) {
    case NodeRole::kFollower: return "follower";
    case NodeRole::kLeader: return "leader";
  }
  return "invalid";
}

Node::Node(ClusterConfig config, const LogView& log, std::uint64_t fenced, std::int64_t now_ms)
    : config_(std::move(config)),
      log_(log),
      fenced_(fenced),
      now_ms_(now_ms),
      last_heard_ms_(now_ms),
      next_poll_ms_(now_ms),
      progress_(config_) {}

std::vector<Output> Node::start() {
  Out out;
  out.push_back(ReadLeader{});
  return out;
}

std::vector<Output> Node::step(const Input& in) {
  Out out;
  std::visit([&](const auto& x) { on(x, out); }, in);
  return out;
}

bool Node::known(NodeId id) const {
  return id != config_.node && std::any_of(config_.nodes.begin(), config_.nodes.end(),
                                           [id](const NodeAddress& n) { return n.id == id; });
}

// ---------------------------------------------------------------------------------------------
// Time and etcd.

void Node::on(const Tick& t, Out& out) {
  now_ms_ = std::max(now_ms_, t.now_ms);
  const bool poll = now_ms_ >= next_poll_ms_;
  if (poll) next_poll_ms_ = now_ms_ + config_.heartbeat_ms;
  if (role_ == NodeRole::kLeader) {
    if (!poll) return;
    for (const auto& [id, peer] : peers_) {
      out.push_back(Send{id, Heartbeat{epoch_, config_.node, acknowledged_}});
    }
    out.push_back(ReadLeader{});  // still ours?
    return;
  }
  const std::int64_t silence =
      std::int64_t{config_.heartbeat_ms} * config_.election_after_heartbeats;
  if (!suspecting_ && leader_ != 0 && now_ms_ - last_heard_ms_ > silence) {
    suspect(epoch_, out);
    return;
  }
  if (!poll) return;
  if (suspecting_ || leader_ == 0) {
    // Published again at every poll: a record lost with a lapsed lease comes back.
    if (suspecting_) publish(out);
    out.push_back(ReadLeader{});
    if (suspecting_) out.push_back(ReadNodes{});
  } else if (!connected_) {
    connected_ = true;
    out.push_back(Connect{leader_, hello()});
  }
}

void Node::on(const LeaderRead& r, Out& out) {
  observed_ = r.key;
  if (role_ == NodeRole::kLeader) {
    const bool ours = r.key && r.key->node == config_.node && r.key->mod_revision == epoch_;
    if (ours || campaigning_) return;  // a new term of our own may be in flight
    step_down(out);
  }
  if (r.key && r.key->node != config_.node && r.key->mod_revision > fenced_) {
    if (r.key->mod_revision != epoch_ || r.key->node != leader_ || suspecting_) {
      follow(r.key->node, r.key->mod_revision, out);
    }
    return;
  }
  // No leader, one this node fenced, or this node's own key from before a restart.
  if (!suspecting_) suspect(r.key ? r.key->mod_revision : epoch_, out);
  // A leader this node fenced still holds the key: it may be alive and only a link was slow. The
  // hello tells it so; it answers with a new term (or a candidate's transaction wins first).
  if (r.key && r.key->node != config_.node) out.push_back(Connect{r.key->node, hello()});
}

void Node::on(const NodesRead& r, Out& out) {
  if (!suspecting_ || campaigning_ || role_ == NodeRole::kLeader) return;
  // A later term than this node knows of existed (it was down, say): fence it too, or the nodes
  // that did fence it could never count this node towards a majority. Fencing more only refuses
  // more, so it is always safe.
  std::uint64_t seen = fenced_;
  for (const NodeRecord& rec : r.records) seen = std::max({seen, rec.fenced, rec.last_epoch});
  if (seen > fenced_) {
    fenced_ = seen;
    publish(out);
  }
  std::vector<NodeRecord> records;
  for (const NodeRecord& rec : r.records) {
    if (rec.id != config_.node) records.push_back(rec);
  }
  records.push_back(NodeRecord{config_.node, fenced_, log_.last_epoch(), log_.durable()});
  const Verdict v = campaign_verdict(config_, fenced_, records);
  if (v.kind != Verdict::kCampaign) return;
  campaigning_ = true;
  // The key this node read is absent or one it fenced (a newer one it would follow).
  out.push_back(Campaign{observed_ ? observed_->mod_revision : 0});
}

void Node::on(const CampaignResult& r, Out& out) {
  if (!campaigning_) return;
  campaigning_ = false;
  if (r.won) {
    QX_ASSERT(r.revision > fenced_ && r.revision > epoch_);
    lead(r.revision, out);
    return;
  }
  if (role_ == NodeRole::kLeader) step_down(out);
  if (r.current && r.current->node != config_.node && r.current->mod_revision > fenced_) {
    follow(r.current->node, r.current->mod_revision, out);
  } else if (!suspecting_) {
    suspect(epoch_, out);
  }
}

void Node::on(const LeaseLost&, Out& out) {
  if (role_ != NodeRole::kLeader) return;
  step_down(out);
  suspect(epoch_, out);
}

void Node::on(const Disconnected& d, Out&) {
  if (role_ == NodeRole::kLeader) {
    peers_.erase(d.peer);
  } else if (d.peer == leader_) {
    connected_ = false;  // the next tick reconnects, unless the leader is suspected by then
  }
}

void Node::on(const Heard& h, Out&) {
  if (role_ != NodeRole::kLeader && h.from == leader_ && h.epoch == epoch_ && !suspecting_) {
    last_heard_ms_ = now_ms_;
  }
}

void Node::on(const Durable& d, Out& out) {
  if (role_ == NodeRole::kLeader) {
    progress_.on_local_durable(d.seq);
    acknowledge(out);
  } else if (synced_ && leader_ != 0 && !suspecting_) {
    out.push_back(Send{leader_, Acked{config_.node, epoch_, d.seq}});
  }
}

void Node::on(const Received& r, Out& out) {
  if (!known(r.from)) return;  // not in the cluster file: never counted, never answered
  std::visit([&](const auto& m) { on_message(r.from, m, out); }, r.message);
}

// ---------------------------------------------------------------------------------------------
// Follower side.

bool Node::takes(std::uint64_t epoch) const {
  return epoch > fenced_ && epoch >= epoch_;
}

void Node::follow(NodeId leader, std::uint64_t epoch, Out& out) {
  role_ = NodeRole::kFollower;
  epoch_ = epoch;
  leader_ = leader;
  suspecting_ = false;
  campaigning_ = false;
  synced_ = false;
  connected_ = true;
  last_heard_ms_ = now_ms_;
  out.push_back(RoleChanged{role_, epoch_, leader_});
  out.push_back(Connect{leader_, hello()});
}

void Node::suspect(std::uint64_t epoch, Out& out) {
  suspecting_ = true;
  leader_ = 0;
  synced_ = false;
  fenced_ = std::max({fenced_, epoch, epoch_, log_.last_epoch()});
  out.push_back(RoleChanged{role_, epoch_, 0});
  publish(out);
  out.push_back(ReadLeader{});
  out.push_back(ReadNodes{});
  next_poll_ms_ = now_ms_ + config_.heartbeat_ms;
}

void Node::publish(Out& out) {
  out.push_back(Publish{NodeRecord{config_.node, fenced_, log_.last_epoch(), log_.durable()}});
}

Hello Node::hello() const {
  return Hello{config_.node, fenced_, log_.last_epoch(), log_.last()};
}

void Node::on_message(NodeId from, const Heartbeat& m, Out& out) {
  if (m.leader != from) return;
  if (role_ == NodeRole::kLeader) {
    if (m.epoch > epoch_) {  // a later term exists: this one is over
      step_down(out);
      follow(from, m.epoch, out);
    }
    return;
  }
  if (!takes(m.epoch)) {
    out.push_back(Send{from, Refuse{config_.node, m.epoch, fenced_}});
    return;
  }
  if (m.epoch > epoch_ || from != leader_ || suspecting_) {
    follow(from, m.epoch, out);
    return;
  }
  last_heard_ms_ = now_ms_;
}

void Node::on_message(NodeId from, const Records& m, Out& out) {
  if (role_ == NodeRole::kLeader) return;
  switch (check_stream(m.epoch, m.first, fenced_, epoch_, log_.last())) {
    case StreamCheck::kFencedEpoch:
    case StreamCheck::kOlderEpoch:
      out.push_back(Send{from, Refuse{config_.node, m.epoch, fenced_}});
      return;
    case StreamCheck::kGap:
      // Records in flight from before a resynchronisation, or a lost connection: start over.
      if (m.epoch == epoch_ && from == leader_) out.push_back(Send{from, hello()});
      return;
    case StreamCheck::kAccept: break;
  }
  if (m.epoch != epoch_ || from != leader_ || suspecting_) {
    follow(from, m.epoch, out);
    return;  // the Hello of the new term comes first; the leader streams again after it
  }
  last_heard_ms_ = now_ms_;
  synced_ = true;
  out.push_back(Append{m.first, m.last});
}

void Node::on_message(NodeId from, const Probe& m, Out& out) {
  if (role_ == NodeRole::kLeader || from != leader_ || m.epoch != epoch_) return;
  last_heard_ms_ = now_ms_;
  const auto mine = log_.chain_at(m.seq);
  out.push_back(Send{from, ProbeReply{config_.node, epoch_, m.seq, mine && *mine == m.chain}});
}

void Node::on_message(NodeId from, const Truncate& m, Out& out) {
  if (role_ == NodeRole::kLeader || from != leader_ || m.epoch != epoch_) return;
  last_heard_ms_ = now_ms_;
  if (m.keep_last < log_.last()) out.push_back(Cut{m.keep_last});
}

// ---------------------------------------------------------------------------------------------
// Leader side.

void Node::lead(std::uint64_t epoch, Out& out) {
  role_ = NodeRole::kLeader;
  epoch_ = epoch;
  leader_ = config_.node;
  suspecting_ = false;
  synced_ = false;
  // A leader starting a new term of its own keeps its followers' connections: the next tick's
  // heartbeat carries the new epoch, and each says hello again. acknowledged_ stays: it is what
  // clients were told, and a group waiting for a majority from the last term is acknowledged
  // once this term's followers hold it.
  for (auto& [id, p] : peers_) p = Peer{};
  progress_.start_term(log_.durable());
  next_poll_ms_ = now_ms_;  // heartbeats at the next tick
  out.push_back(RoleChanged{role_, epoch_, leader_});
  out.push_back(StartTerm{epoch_});
}

void Node::step_down(Out& out) {
  role_ = NodeRole::kFollower;
  leader_ = 0;
  peers_.clear();
  campaigning_ = false;
  out.push_back(StepDown{});
  out.push_back(RoleChanged{role_, epoch_, 0});
}

void Node::acknowledge(Out& out) {
  const core::Seq c = progress_.committed();
  if (c > acknowledged_) {
    acknowledged_ = c;
    out.push_back(Acknowledge{c});
  }
}

void Node::on_message(NodeId from, const Hello& m, Out& out) {
  if (role_ != NodeRole::kLeader) return;
  if (m.fenced >= epoch_) {
    // It fenced this term (it stopped hearing from this leader for a while): start a new term on
    // the same key, unless a candidate's transaction gets there first.
    if (!campaigning_) {
      campaigning_ = true;
      out.push_back(Campaign{epoch_});
    }
    return;
  }
  Peer& p = peers_[from];
  p = Peer{};
  p.hello_last = m.last;
  if (const auto s = snapshot_for(m.last)) {
    out.push_back(SendSnapshot{from, *s});
    return;
  }
  p.search.emplace(m.last, log_.last(), log_.base());
  continue_search(from, p, out);
}

std::optional<core::Seq> Node::snapshot_for(core::Seq last) const {
  const auto s = log_.snapshot();
  if (!s || *s <= last || *s < log_.base()) return std::nullopt;
  if (last < log_.base()) return s;  // the records it lacks are not here: nothing else will do
  // Worth it only when the snapshot saves more records than catch_up_events_max: a follower
  // that just installed one is not sent the next one the leader wrote meanwhile.
  const std::uint64_t saved = core::raw(*s) - core::raw(last);
  if (saved > config_.catch_up_events_max && *s <= acknowledged_) return s;
  return std::nullopt;
}

void Node::on_message(NodeId from, const ProbeReply& m, Out& out) {
  if (role_ != NodeRole::kLeader || m.epoch != epoch_) return;
  auto it = peers_.find(from);
  // Only the answer to the probe in flight counts (a forged or stale one could mislead the search).
  if (it == peers_.end() || !it->second.search || it->second.probing != m.seq) return;
  it->second.probing.reset();
  it->second.search->on_probe(m.seq, m.agree);
  continue_search(from, it->second, out);
}

void Node::continue_search(NodeId peer, Peer& p, Out& out) {
  if (auto s = p.search->probe()) {
    const auto chain = log_.chain_at(*s);
    if (!chain) {
      p.search.reset();
      // The fork lies before this journal's first record: only a snapshot can settle it.
      const auto snap = log_.snapshot();
      if (*s < log_.base() && snap && *snap >= log_.base()) {
        out.push_back(SendSnapshot{peer, *snap});
      } else {
        out.push_back(Drop{peer});  // this journal cannot say now: its next hello starts over
      }
      return;
    }
    p.probing = *s;
    out.push_back(Send{peer, Probe{epoch_, *s, *chain}});
    return;
  }
  const core::Seq fork = p.search->fork();
  p.search.reset();
  if (fork < p.hello_last) out.push_back(Send{peer, Truncate{epoch_, fork}});
  p.streaming = true;
  out.push_back(StreamFrom{peer, core::Seq(static_cast<std::uint64_t>(fork) + 1)});
}

void Node::on_message(NodeId from, const Acked& m, Out& out) {
  if (role_ != NodeRole::kLeader || m.epoch != epoch_ || m.from != from) return;
  auto it = peers_.find(from);
  if (it == peers_.end() || !it->second.streaming) return;
  progress_.on_durable(from, m.durable);
  acknowledge(out);
}

void Node::on_message(NodeId from, const InstallSnapshot& m, Out& out) {
  if (role_ == NodeRole::kLeader || from != leader_ || m.epoch != epoch_ || suspecting_) return;
  // Never below what this journal holds durably: records it may have acknowledged would be removed
  // (a decision made on an older hello, records streamed since). It asks again instead.
  if (m.seq < log_.durable()) {
    out.push_back(Send{from, hello()});
    return;
  }
  last_heard_ms_ = now_ms_;
  synced_ = false;  // acknowledges again once it streams from the snapshot
  out.push_back(Install{m.seq});
}

void Node::on_message(NodeId, const Refuse& m, Out& out) {
  if (role_ != NodeRole::kLeader || m.fenced < epoch_ || campaigning_) return;
  campaigning_ = true;
  out.push_back(Campaign{epoch_});
}

}  // namespace qx::cluster
