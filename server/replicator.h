// The cluster driver of `qx serve --cluster FILE` (docs/cluster.md): it runs this node's
// replication and election state machine (cluster/node.h) against real sockets, a real etcd and
// the sequencer.
//
//   auto tls = Replicator::make_tls(config);                  // nullptr: plain TCP
//   Replicator r(config, data_dir, sequencer, metrics, on_term, tls);  // before sequencer.run()
//   r.start();                                               // io and etcd threads
//   ... serve ...
//   r.stop();                                                // before the sequencer stops
//
// Threads: one I/O thread owns the state machine, the replication listener and connections, and
// a 10 ms tick; one etcd thread owns the etcd client and the lease (kept alive every third of
// its TTL). They talk only by posting to the I/O thread. The sequencer hands every durable group
// to the I/O thread (Sequencer::replicate); the I/O thread hands the sequencer jobs (a new term's
// LeaderTerm, a follower's records, a state check) and acknowledgements.
//
// Connections: a follower connects to the leader's replication address and says Hello (an
// accepted connection that has not within 5 s is closed); every message of both directions
// travels on that connection, framed as the binary protocol
// (cluster/wire.h). A leader keeps the newest 256 MiB of records in memory for its followers and
// reads older ones from its journal.
//
// TLS (the cluster file's "tls"): every connection, accepted or dialed, is mutual TLS with one
// context (make_peer_tls): the accepting node requires a certificate that chains to the CA, the
// dialing node checks the accepting one's against the CA and the host of its replication
// address. Nothing is read or written before the handshake; a handshake not done within 5 s
// closes the connection; a failed one is logged (replication_tls_failed, at most 5 lines a
// second) and the follower dials again as after any lost connection. SIGHUP reads the files
// again for new connections (reload_tls; open ones keep theirs).
//
// etcd keys under /qx/<name>/: `leader` ({"node","http","tcp","replication"}, with the leader's
// lease; its mod revision is the epoch) and `nodes/<id>` (cluster::NodeRecord). A node writes the
// epoch it fenced to DATA/cluster-fence (fsynced) before it publishes it.
//
// A follower told to cut its journal (records the new leader never had) writes DATA/cluster-cut
// with the seq to keep and re-executes itself; at start-up serve cuts the journal there, logs
// what it cut (journal_cut) and recovers as usual. A cut before the journal's base (it started
// from a snapshot) discards the whole journal and its store (journal_discarded); the leader then
// sends a snapshot.
//
// Snapshot install (docs/cluster.md): a leader told to send a follower a snapshot reads it from
// the store (Snapshotter::read) and encodes it on a worker thread, then sends it on the
// connection whose hello asked for it (if no hello came since) in 4 MiB chunks, one per completed
// write, and an InstallSnapshot (snapshot_sent). The follower stages the chunks in
// DATA/cluster-install.snap.part (each one counts as hearing from the leader); on the
// InstallSnapshot it fsyncs them,
// writes DATA/cluster-install ({"seq","chain","state_hash","bytes"}) durably and re-executes
// itself. At start-up serve checks the staged snapshot (its seq and state hash), replaces the
// store's snapshots and indexes with it, resets the journal to start after its seq
// (replay::reset_journal_to_base), logs snapshot_installed and recovers from it. A crash at any
// point repeats the install at the next start, or leaves the old journal as it was.
//
// Caveats: users.json, the JWT secret and TLS files are per node: give every node the same ones.
// QX_ADMIN_PASSWORD puts user admin in each node's users.json; the config file's engine_limits
// are journaled by whichever node leads, at its term's start, when they differ from the
// journal's (give every node the same config file, or leaders will disagree).
// A peer's certificate must name the node its Hello claims (its tls_name, or else its replication
// IP): nodes sharing an IP need a tls_name each. Give the cluster a CA of its own.
// A follower's engine serves reads (its state reflects its durable seq); writes answer 421 with
// the leader's addresses.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/config.h"
#include "server/sequencer.h"
#include "server/snapshots.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace qx::server {

class Metrics;

class Replicator {
 public:
  // on_term runs on the sequencer thread in the job that journals each term this node leads,
  // after its LeaderTerm; `first` says the journal held nothing else (for the demo's data). What
  // it journals is replicated like any event: the config's engine limits, the first admin.
  // tls: make_tls(config); nullptr for plain TCP.
  using OnTerm = std::function<void(Sequencer::Ctx&, bool first)>;
  // snapshots: the node's Snapshotter, whose store a leader reads to send followers snapshots.
  Replicator(cluster::ClusterConfig config, std::filesystem::path data_dir, Sequencer& sequencer,
             Snapshotter& snapshots, Metrics& metrics, OnTerm on_term,
             std::shared_ptr<boost::asio::ssl::context> tls);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // The replication port's TLS context from the cluster file's "tls" (nullptr without one).
  // Throws std::runtime_error with one line naming the file at fault; call it at start-up, before
  // any thread runs.
  static std::shared_ptr<boost::asio::ssl::context> make_tls(const cluster::ClusterConfig& config);

  void start();
  void stop();
  // Reads the cluster file's TLS files again for new replication connections (open ones keep
  // theirs); logs replication_tls_reloaded, or replication_tls_reload_failed and keeps the old
  // context. Any thread; nothing without "tls".
  void reload_tls();

  // The seq to keep that a previous run asked for (DATA/cluster-cut), if any; removes the file
  // after cutting. Called by serve before the journal is opened.
  static void apply_pending_cut(const std::filesystem::path& data_dir,
                                const std::filesystem::path& journal_dir, std::ostream& out);
  // Installs the snapshot a previous run received (DATA/cluster-install), if any; removes the
  // staged files after. A staged snapshot that fails its checks is logged and dropped (the
  // leader sends another). Called by serve before apply_pending_cut.
  static void apply_pending_install(const std::filesystem::path& data_dir,
                                    const std::filesystem::path& journal_dir, std::ostream& out);

  // What `GET /api/cluster/status` and `qx cluster status` show (docs/cluster.md).
  struct Peer {  // a leader's view of one follower this term
    std::uint32_t node = 0;
    bool connected = false;
    std::uint64_t durable = 0;  // the follower acknowledged holding this much durably
    double lag_ms = -1;         // its last acknowledgement: group durable here -> ack (-1: none)
  };
  struct Status {
    std::string role;  // "leader", "follower", "candidate" (follows no leader yet)
    std::uint64_t epoch = 0;
    std::uint32_t leader = 0;
    std::uint64_t fenced = 0;
    std::uint64_t durable = 0;
    std::uint64_t acknowledged = 0;
    bool upstream = false;    // a follower: connected to its leader
    std::vector<Peer> peers;  // a leader: every other node of the cluster file
  };
  [[nodiscard]] Status status() const;
  // The status as JSON, with the cluster's name, this node and the leader's addresses.
  [[nodiscard]] std::string status_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qx::server
