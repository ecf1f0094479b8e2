// `qx cluster status --cluster FILE`: every node of a replicated exchange as it sees itself (its
// GET /api/cluster/status), in one table: role, epoch, durable seq, and the leader's view of each
// follower's lag (events, and ms from a group's durability on the leader to the follower's
// acknowledgement of it).
//
//   qx cluster status --cluster node1.json           # a table; --json prints one JSON object
//
// Any node's cluster file will do: only the nodes' http addresses are read. Each node gets
// --timeout-ms to answer; one that does not is shown as unreachable with the reason.
// Exit status: 0 when exactly one node leads and every node answered and follows that leader's
// epoch; 1 otherwise (no leader, two leaders, a node unreachable or elsewhere); 2 on bad usage.
// Caveats: plain HTTP only (a node whose listener speaks TLS shows as unreachable).
#pragma once

#include <iosfwd>
#include <string>

namespace qx::app {

struct ClusterStatusOptions {
  std::string cluster_file;
  int timeout_ms = 1000;
  bool json = false;
};

int run_cluster_status(const ClusterStatusOptions& options, std::ostream& out);

}  // namespace qx::app
