// The cluster file of `qx serve --cluster FILE`: who is in the replicated exchange, where each node
// listens, which etcd holds the leadership key, and the replication and election settings.
//
//   const ClusterConfig c = load_cluster_config("cluster.json");   // throws with one line
//   if (c.self().role == Role::kVoter) { /* may stand for leader */ }
//   const std::size_t acks_needed = c.quorum();                     // voters / 2 + 1
//
// Every node reads the same file; only "node" differs (or is given on the command line).
//
// Cluster file (a JSON object):
//   {"name": "demo", "node": 1,
//    "nodes": [{"id": 1, "role": "voter", "replication": "10.0.0.1:7101",
//               "http": "10.0.0.1:8101", "tcp": "10.0.0.1:9101"},
//              {"id": 2, "replication": "10.0.0.2:7101", "http": "10.0.0.2:8101", "tcp": "off"},
//              {"id": 3, "role": "learner", "replication": "[fd00::3]:7101",
//               "http": "[fd00::3]:8101", "tcp": "[fd00::3]:9101"}],
//    "etcd": ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"],
//    "ack": "quorum", "heartbeat_ms": 100, "election_after_heartbeats": 3, "lease_s": 2,
//    "state_hash_every": 1000, "catch_up_events_max": 1000000,
//    "tls": {"cert": "/etc/qx/node1.pem", "key": "/etc/qx/node1.key", "ca": "/etc/qx/ca.pem"}}
//
//   key                       required  default   range
//   name                      yes                 1-64 bytes of [A-Za-z0-9_-]; etcd keys live
//                                                 under /qx/<name>/
//   node                      yes                 this node's id: one of the ids in "nodes"
//   nodes                     yes                 1-1024 node objects (below), any order
//   etcd                      yes                 1-16 etcd client endpoints, HOST:PORT, distinct
//   ack                       no        "quorum"  "quorum": a client hears of an event once a
//                                                 majority of voters holds it durably; "local":
//                                                 once the leader does (a failover can lose it)
//   heartbeat_ms              no        100       10-10000: the leader's heartbeat period
//   election_after_heartbeats no        3         2-100: heartbeats a follower misses before it
//                                                 suspects the leader
//   lease_s                   no        2         1-60: TTL of the leader's etcd lease; etcd
//                                                 raises a TTL below its minimum (2 s with its
//                                                 default settings), so 1 acts as 2 there
//   state_hash_every          no        1000      1-10^9: the leader ships {seq, state_hash}
//                                                 every this many events
//   catch_up_events_max       no        1000000   1-10^12: a follower is sent the leader's newest
//                                                 acknowledged snapshot instead of records when
//                                                 that snapshot is more than this many events
//                                                 past the follower's last (and always when its
//                                                 records end before the leader's journal
//                                                 starts)
//   tls                       no        (none)    an object (below): every replication
//                                                 connection, both ways, is mutual TLS; absent,
//                                                 plain TCP
//
//   tls object key  required  value
//   cert            yes       PEM file: this node's certificate chain, presented both when it
//                             accepts and when it dials; it must name this node: its
//                             "tls_name", or else the IP address of its "replication" address
//   key             yes       PEM file: the certificate's private key
//   ca              yes       PEM file: the CA bundle every node's certificate must chain to
//   Paths are used as written (a relative one from `qx serve`'s working directory); each must
//   be a readable, non-empty file when the cluster file is parsed (TlsFiles::kCheckReadable).
//   Whether the files hold what they should is checked when `qx serve` builds the TLS context.
//
//   node object key  required  default   range
//   id               yes                 1-1024, distinct
//   role             no        "voter"   "voter" (votes, may lead) or "learner" (replicates
//                                        asynchronously, never votes or leads)
//   replication      yes                 IP:PORT where the node takes replication traffic (an
//                                        IP address: it is never resolved)
//   http             yes                 HOST:PORT that clients are redirected to for HTTP
//   tcp              yes                 HOST:PORT that clients are redirected to for binary
//                                        TCP, or "off"
//   tls_name         no        (none)    with "tls": a DNS name this node's certificate
//                                        carries; absent, its certificate must name the IP
//                                        address of its "replication" address. Either way a
//                                        peer's certificate must name the node its Hello
//                                        claims to be: give nodes that share an IP (one
//                                        machine) a tls_name each
//
// Rules: a key not listed above, at the top level or in a node or tls object, is an error, and so
// is a key written twice in one object; so a misspelt setting cannot leave a default silently in
// force. Numbers are whole JSON numbers written without a fraction or exponent; a string, a
// bool, null, a fraction or a negative where a number is wanted is an error, as is a number out
// of its range. HOST:PORT has a non-empty host of letters, digits, '.', '-' and '_' (at most 253
// bytes), or an IPv6 address in brackets ("[::1]:7101"), and a decimal port from 1 to 65535:
// port 0 ("pick a free port") has no place here, since peers and clients must know the port.
// No address appears twice among the nodes' replication, http and tcp addresses: each is a
// different listener, and a redirect to an address two nodes share could not name the leader.
// At least one node is a voter. "node" may name a learner (which then never leads).
//
// Quorum: quorum() = voters() / 2 + 1; learners do not count. An even number of voters is
// allowed but buys nothing: 4 voters need 3 acknowledgements and tolerate one failure, as 3 do.
//
// Errors: parsing throws std::runtime_error with one line, "<origin>: <key>: <why>", where the
// key is a path into the file: "heartbeat_ms", "nodes[2].tcp" (indexes count from 0 in file
// order), "etcd[1]", "tls.key". A value quoted in a message is JSON-escaped and cut to 64 bytes
// (a file name of "tls" to 4096).
//
// Caveats:
// - Duplicate addresses are found by spelling (host compared without case, port as a number):
//   "localhost:7101" and "127.0.0.1:7101", or two spellings of one IPv6 address, are not
//   recognised as the same listener.
// - Host names are not resolved here; a name that does not resolve fails when it is used.
// - `nodes` is sorted by id after parsing, so its indexes are not those of the file.
// - The TLS files are checked for readability only when the file is parsed: a file removed
//   later fails when it is used (at start-up, when `qx serve` builds its TLS context).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qx::cluster {

using NodeId = std::uint32_t;  // 1..kNodeIdMax

inline constexpr NodeId kNodeIdMax = 1024;
inline constexpr std::size_t kNodesMax = 1024;
inline constexpr std::size_t kEtcdEndpointsMax = 16;
inline constexpr std::size_t kNameBytesMax = 64;
inline constexpr std::size_t kHostBytesMax = 253;       // the longest DNS name
inline constexpr std::size_t kFileBytesMax = 4u << 20;  // 1024 nodes with long names fit
inline constexpr std::string_view kTcpOff = "off";

enum class Role : std::uint8_t { kVoter = 1, kLearner = 2 };
enum class Ack : std::uint8_t { kQuorum = 1, kLocal = 2 };

struct NodeAddress {
  NodeId id = 0;  // parse_cluster_config() never returns 0
  Role role = Role::kVoter;
  std::string replication;  // HOST:PORT, as written in the file
  std::string http;         // HOST:PORT, as written in the file
  std::string tcp;          // HOST:PORT, as written in the file, or kTcpOff
  std::string tls_name;     // the DNS name its certificate carries ("": its replication IP)
};

// The "tls" object: PEM file paths as written in the file.
struct ClusterTls {
  std::string cert;  // this node's certificate chain
  std::string key;   // its private key
  std::string ca;    // the CA bundle every node's certificate must chain to
};

struct ClusterConfig {
  std::string name;
  NodeId node = 0;                 // this node; parse_cluster_config() never returns 0
  std::vector<NodeAddress> nodes;  // every node including this one, sorted by id, ids distinct
  std::vector<std::string> etcd;   // etcd client endpoints, HOST:PORT
  Ack ack = Ack::kQuorum;
  std::uint32_t heartbeat_ms = 100;
  std::uint32_t election_after_heartbeats = 3;
  std::uint32_t lease_s = 2;
  std::uint64_t state_hash_every = 1000;
  std::uint64_t catch_up_events_max = 1'000'000;
  std::optional<ClusterTls> tls;  // nullopt: the replication port is plain TCP

  // This node's entry. Asserts that `node` is in `nodes` (true of every parsed config).
  [[nodiscard]] const NodeAddress& self() const;
  // Nodes with Role::kVoter.
  [[nodiscard]] std::size_t voters() const;
  // voters() / 2 + 1: acknowledgements (the leader's own included) that make an event durable
  // under Ack::kQuorum. Asserts that there is at least one voter.
  [[nodiscard]] std::size_t quorum() const;
};

// Whether parsing opens the files named by "tls" to check that they can be read. `qx serve`
// checks; a tool that only needs the addresses (`qx cluster status`, run by an operator who may
// not be allowed to read a node's key) does not.
enum class TlsFiles : std::uint8_t { kCheckReadable = 1, kNotOpened = 2 };

// Parses the JSON text of a cluster file and checks every rule above; throws std::runtime_error
// with one line that starts with `origin` (the file name) and names the key.
[[nodiscard]] ClusterConfig parse_cluster_config(std::string_view json_text,
                                                 const std::string& origin,
                                                 TlsFiles tls_files = TlsFiles::kCheckReadable);

// Reads `file` (at most kFileBytesMax bytes) and parses it; a missing, unreadable or oversized
// file is an error naming it.
[[nodiscard]] ClusterConfig load_cluster_config(const std::string& file,
                                                TlsFiles tls_files = TlsFiles::kCheckReadable);

// {host, port} of an address the parser accepted ("HOST:PORT" or "[V6]:PORT", brackets removed).
[[nodiscard]] std::pair<std::string, std::string> split_address(const std::string& address);

}  // namespace qx::cluster
