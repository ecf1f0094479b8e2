#include "cluster/replication.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <tuple>

namespace qx::cluster {

// ---------------------------------------------------------------------------------------------
// Progress.

Progress::Progress(const ClusterConfig& config)
    : self_(config.node), ack_(config.ack), quorum_(config.quorum()) {
  nodes_.reserve(config.nodes.size());
  for (const NodeAddress& n : config.nodes) nodes_.push_back(Entry{n.id, n.role, core::Seq{}});
}

Progress::Entry* Progress::find(NodeId id) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [id](const Entry& e) { return e.id == id; });
  return it == nodes_.end() ? nullptr : &*it;
}

const Progress::Entry* Progress::find(NodeId id) const {
  return const_cast<Progress*>(this)->find(id);
}

void Progress::start_term(core::Seq leader_durable) {
  for (Entry& e : nodes_) e.durable = e.id == self_ ? leader_durable : core::Seq{};
}

void Progress::on_local_durable(core::Seq seq) {
  Entry* e = find(self_);
  e->durable = std::max(e->durable, seq);
}

bool Progress::on_durable(NodeId node, core::Seq seq) {
  Entry* e = node == self_ ? nullptr : find(node);
  if (e == nullptr) return false;
  e->durable = std::max(e->durable, seq);
  return true;
}

core::Seq Progress::committed() const {
  if (ack_ == Ack::kLocal) return find(self_)->durable;
  std::vector<core::Seq> voters;
  for (const Entry& e : nodes_) {
    if (e.role == Role::kVoter) voters.push_back(e.durable);
  }
  std::sort(voters.begin(), voters.end(), std::greater<>());
  return voters[quorum_ - 1];
}

core::Seq Progress::durable_of(NodeId node) const {
  const Entry* e = find(node);
  return e == nullptr ? core::Seq{} : e->durable;
}

// ---------------------------------------------------------------------------------------------
// Node records and the campaign verdict.

std::string encode_node_record(const NodeRecord& r) {
  nlohmann::json j{{"fenced", r.fenced},
                   {"last_epoch", r.last_epoch},
                   {"durable", static_cast<std::uint64_t>(r.durable)}};
  return j.dump();
}

replay::Result<NodeRecord> decode_node_record(NodeId id, std::string_view text) {
  const std::string where = "node record of node " + std::to_string(id);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return replay::Error{where + ": not a JSON object"};
  if (j.size() != 3) {
    return replay::Error{where + ": expected exactly fenced, last_epoch and durable"};
  }
  NodeRecord r;
  r.id = id;
  for (const char* key : {"fenced", "last_epoch", "durable"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
      return replay::Error{where + ": '" + key + "' must be a whole number"};
    }
  }
  r.fenced = j["fenced"].get<std::uint64_t>();
  r.last_epoch = j["last_epoch"].get<std::uint64_t>();
  r.durable = core::Seq(j["durable"].get<std::uint64_t>());
  return r;
}

Verdict campaign_verdict(const ClusterConfig& config, std::uint64_t epoch,
                         std::span<const NodeRecord> records) {
  auto role_of = [&config](NodeId id) -> std::optional<Role> {
    for (const NodeAddress& n : config.nodes) {
      if (n.id == id) return n.role;
    }
    return std::nullopt;
  };
  Verdict v;
  if (role_of(config.node) != Role::kVoter) {
    v.kind = Verdict::kNotAVoter;
    return v;
  }
  std::vector<NodeId> counted;
  const NodeRecord* best = nullptr;
  auto rank = [](const NodeRecord& r) {
    // Greater is more complete; a lower id wins a tie.
    return std::tuple(r.last_epoch, static_cast<std::uint64_t>(r.durable), ~r.id);
  };
  for (const NodeRecord& r : records) {
    if (role_of(r.id) != Role::kVoter || r.fenced < epoch) continue;
    if (std::find(counted.begin(), counted.end(), r.id) != counted.end()) continue;
    counted.push_back(r.id);
    if (best == nullptr || rank(r) > rank(*best)) best = &r;
  }
  v.fenced_voters = counted.size();
  v.best = best == nullptr ? NodeId{} : best->id;
  if (counted.size() < config.quorum()) {
    v.kind = Verdict::kWaitForMajority;
  } else {
    v.kind = v.best == config.node ? Verdict::kCampaign : Verdict::kAnotherCampaigns;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Streams.

StreamCheck check_stream(std::uint64_t epoch, core::Seq first_seq, std::uint64_t fenced,
                         std::uint64_t following, core::Seq last) {
  if (epoch <= fenced) return StreamCheck::kFencedEpoch;
  if (epoch < following) return StreamCheck::kOlderEpoch;
  if (static_cast<std::uint64_t>(first_seq) != static_cast<std::uint64_t>(last) + 1) {
    return StreamCheck::kGap;
  }
  return StreamCheck::kAccept;
}

const char* to_string(StreamCheck c) {
  switch (c) {
    case StreamCheck::kAccept: return "accept";
    case StreamCheck::kFencedEpoch: return "the stream's epoch is fenced here";
    case StreamCheck::kOlderEpoch: return "the stream's epoch is older than the one followed";
    case StreamCheck::kGap: return "the records do not follow this node's last seq";
  }
  return "invalid";
}

// ---------------------------------------------------------------------------------------------
// ForkSearch.

ForkSearch::ForkSearch(core::Seq follower_last, core::Seq leader_last, core::Seq floor)
    : top_(std::min(static_cast<std::uint64_t>(follower_last),
                    static_cast<std::uint64_t>(leader_last))),
      floor_(static_cast<std::uint64_t>(floor)) {}

std::optional<core::Seq> ForkSearch::probe() const {
  if (disagree_ == 0) {
    // Nothing has differed yet: the newest common seq is the first question.
    if (agree_ == top_) return std::nullopt;
    return core::Seq(top_);
  }
  if (disagree_ == agree_ + 1) return std::nullopt;
  if (agree_ < floor_ && floor_ < disagree_) return core::Seq(floor_);
  if (step_ != 0) {  // galloping back from the first disagreement
    const std::uint64_t back = disagree_ > step_ ? disagree_ - step_ : 0;
    if (back > agree_) return core::Seq(back);
  }
  return core::Seq(agree_ + (disagree_ - agree_) / 2);
}

void ForkSearch::on_probe(core::Seq seq, bool chains_agree) {
  const auto s = static_cast<std::uint64_t>(seq);
  if (chains_agree) {
    agree_ = std::max(agree_, s);
    step_ = 0;  // bisect from here on
  } else {
    disagree_ = disagree_ == 0 ? s : std::min(disagree_, s);
    if (step_ != 0) step_ *= 2;
  }
}

core::Seq ForkSearch::fork() const {
  return core::Seq(agree_);
}

}  // namespace qx::cluster
