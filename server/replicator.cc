#include "server/replicator.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>
#include <vector>

#include "cluster/node.h"
#include "cluster/wire.h"
#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "server/etcd.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "server/wire_frame.h"

namespace qx::server {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using cluster::NodeId;
using nlohmann::json;

namespace {

constexpr std::size_t kRecentBytesMax = 256u << 20;   // records a leader keeps in memory
constexpr std::size_t kFrameRecordsBytes = 4u << 20;  // records per Records frame
constexpr std::size_t kOutBytesMax = 16u << 20;       // unsent bytes before a leader waits
constexpr std::size_t kSnapshotSendBytes = 4u << 20;  // snapshot bytes per chunk sent
static_assert(kSnapshotSendBytes <= cluster::kSnapshotChunkBytes);

// A TLS handshake not finished by then closes the connection, and so does an accepted one whose
// peer has not said Hello by then: a silent peer holds nothing long.
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
constexpr auto kHelloTimeout = std::chrono::seconds(5);

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Makes the removals and renames in `dir` durable.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `text` to `path` durably: a temporary file, fsync, rename, fsync of the directory.
void write_durably(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string());
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + tmp.string());
  fs::rename(tmp, path);
  sync_directory(path.parent_path());
}

// Test-only fault hook (docs/cluster.md, "Fault hooks for tests"): QX_FAULT_STATE_HASH_FROM=SEQ
// makes this node report a wrong own state hash to every state check at SEQ or later, so that the
// e2e tests can see a divergence stop a follower. Read once, when the replicator is made; unset
// (the only production setting) or not a whole number above 0, it does nothing.
std::uint64_t fault_state_hash_from() {
  const char* v = std::getenv("QX_FAULT_STATE_HASH_FROM");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return *end == '\0' ? n : 0;
}

// The files of a snapshot a follower receives (see replicator.h).
fs::path install_marker(const fs::path& data) {
  return data / "cluster-install";
}
fs::path install_bytes(const fs::path& data) {
  return data / "cluster-install.snap";
}
fs::path install_part(const fs::path& data) {
  return data / "cluster-install.snap.part";
}

// A journal being discarded: renamed aside first (atomic, made durable), then removed, so a crash
// leaves either the whole journal or none; leftovers are removed at the next start.
fs::path discarded_journal(const fs::path& journal_dir) {
  return journal_dir.parent_path() / (journal_dir.filename().string() + ".discarded");
}

std::optional<std::uint64_t> read_number(const fs::path& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

}  // namespace

struct Replicator::Impl {
  // ---- the node's journal as the state machine sees it
  struct Log : cluster::LogView {
    fs::path journal;
    std::atomic<std::uint64_t> durable_seq{0};
    std::atomic<std::uint64_t> queued_seq{0};  // follower: records handed to the sequencer
    std::map<std::uint64_t, replay::ChainHash> queued_chains;  // their chains (I/O thread only)
    void queued(const std::vector<std::vector<std::uint8_t>>& records) {
      for (const auto& raw : records) {
        queued_chains[core::raw(replay::record_seq(raw.data()))] = replay::record_chain(raw.data());
      }
      while (queued_chains.size() > 65'536) queued_chains.erase(queued_chains.begin());
    }
    std::atomic<std::uint64_t> epoch{0};
    std::uint64_t base_seq = 0;    // the journal starts after it (set before any thread runs)
    Snapshotter* snaps = nullptr;  // the store's snapshots
    core::Seq base() const override { return core::Seq(base_seq); }
    std::optional<core::Seq> snapshot() const override {
      const auto s = snaps->stored();
      if (!s || core::raw(*s) < base_seq || core::raw(*s) > durable_seq.load()) return std::nullopt;
      return s;
    }
    core::Seq last() const override {
      return core::Seq(std::max(durable_seq.load(), queued_seq.load()));
    }
    core::Seq durable() const override { return core::Seq(durable_seq.load()); }
    std::uint64_t last_epoch() const override { return epoch.load(); }
    std::optional<replay::ChainHash> chain_at(core::Seq at) const override {
      if (at == core::Seq{}) return replay::ChainHash{};
      // Records handed to the sequencer and not yet durable carry their chain in their header.
      if (auto q = queued_chains.find(core::raw(at)); q != queued_chains.end()) return q->second;
      if (core::raw(at) > durable_seq.load()) return std::nullopt;
      auto c = replay::chain_hash_at(journal, at);
      if (!c) return std::nullopt;
      return c.value();
    }
  };

  // ---- one replication connection
  // With TLS (impl.tls) every byte goes through `stream`; without, through its socket
  // (stream.next_layer()), the SSL object unused. Nothing is written before the connection is
  // `ready` (connected, and with TLS handshaken): what is sent before waits in `out`.
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(Impl& i, tcp::socket s, bool dialed, std::string peer_address)
        : impl(i),
          stream(std::move(s), i.tls ? *i.tls : i.plain),
          outgoing(dialed),
          address(std::move(peer_address)),
          deadline(i.io) {}
    Impl& impl;
    asio::ssl::stream<tcp::socket> stream;
    bool outgoing;
    std::string address;  // dialed: the peer's replication address; accepted: its IP:port
    asio::steady_timer deadline;
    NodeId peer = 0;
    bool closed = false;
    bool ready = false;
    wire::FrameReader reader{cluster::kPeerFrameMax};
    std::array<char, 64 << 10> buf{};
    std::string out, writing;

    tcp::socket& sock() { return stream.next_layer(); }

    // Connected (dialed) or accepted: the TLS handshake if any, then reading and writing.
    void start() {
      if (!impl.tls) return established();
      if (outgoing) {
        // The accepting node's certificate must name the node this node dialed.
        const cluster::NodeAddress* dialed = impl.address_of(peer);
        const std::string host = dialed != nullptr && !dialed->tls_name.empty()
                                     ? dialed->tls_name
                                     : cluster::split_address(address).first;
        if (SSL_set1_host(stream.native_handle(), host.c_str()) != 1) {
          impl.tls_failed(*this, "cannot check the certificate for host " + host);
          return close();
        }
      }
      deadline.expires_after(kHandshakeTimeout);
      deadline.async_wait([self = shared_from_this()](auto ec) {
        if (ec || self->closed || self->ready) return;
        self->impl.tls_failed(
            *self, "no TLS handshake within " + std::to_string(kHandshakeTimeout.count()) + " s");
        self->close();
      });
      auto on_handshake = [self = shared_from_this()](const boost::system::error_code& ec) {
        if (self->closed) return;
        if (ec) {
          self->impl.tls_failed(*self, ec.message());
          return self->close();
        }
        self->deadline.cancel();
        self->established();
      };
      stream.async_handshake(
          outgoing ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
          std::move(on_handshake));
    }
    void established() {
      ready = true;
      if (!outgoing) {
        deadline.expires_after(kHelloTimeout);
        deadline.async_wait([self = shared_from_this()](auto ec) {
          if (ec || self->closed || self->peer != 0) return;
          log_event(LogLevel::kWarn, "replication_hello_timeout",
                    {{"address", self->address},
                     {"error", "no hello within " + std::to_string(kHelloTimeout.count()) + " s"}});
          self->close();
        });
      }
      read();
      flush();
    }
    void read() {
      auto on_read = [self = shared_from_this()](auto ec, std::size_t n) {
        if (ec) return self->close();
        self->reader.feed(self->buf.data(), n);
        self->frames();
        if (!self->closed) self->read();
      };
      if (impl.tls) {
        stream.async_read_some(asio::buffer(buf), std::move(on_read));
      } else {
        sock().async_read_some(asio::buffer(buf), std::move(on_read));
      }
    }
    void frames() {
      while (!closed) {
        const auto next = reader.next();
        if (next == wire::FrameReader::Status::kNeedMore) return;
        if (next != wire::FrameReader::Status::kFrame) {
          log_event(LogLevel::kWarn, "replication_frame_refused",
                    {{"peer", peer}, {"error", "oversized or malformed frame"}});
          return close();
        }
        auto d = cluster::decode_peer_frame(reader.message());
        if (!d) {
          log_event(LogLevel::kWarn, "replication_frame_refused",
                    {{"peer", peer}, {"error", d.error().message}});
          return close();
        }
        impl.on_frame(*this, std::move(d).value());
      }
    }
    void send(const std::string& frame) {
      if (closed) return;
      out += frame;
      flush();
    }
    void flush() {
      if (closed || !ready || !writing.empty() || out.empty()) return;
      writing.swap(out);
      auto on_written = [self = shared_from_this()](auto ec, std::size_t) {
        self->writing.clear();
        if (ec) return self->close();
        self->flush();
        if (!self->outgoing && self->out.empty()) self->impl.pump(self->peer);
      };
      if (impl.tls) {
        asio::async_write(stream, asio::buffer(writing), std::move(on_written));
      } else {
        asio::async_write(sock(), asio::buffer(writing), std::move(on_written));
      }
    }
    void close() {
      if (closed) return;
      closed = true;
      deadline.cancel();
      boost::system::error_code ignored;
      sock().close(ignored);
      impl.on_closed(*this);
    }
  };

  struct Chunk {
    core::Seq first{}, last{};
    std::chrono::steady_clock::time_point durable_at;
    std::vector<std::uint8_t> bytes;
    std::vector<std::pair<core::Seq, std::uint64_t>> hashes;
  };

  Impl(cluster::ClusterConfig c, fs::path d, Sequencer& s, Snapshotter& sn, Metrics& m, OnTerm f,
       std::shared_ptr<asio::ssl::context> t)
      : config(std::move(c)),
        data(std::move(d)),
        seq(s),
        snapshots(sn),
        metrics(m),
        on_term(std::move(f)),
        tls(std::move(t)),
        tick(io),
        acceptor(io) {
    log.journal = data / "journal";
    log.snaps = &snapshots;
    if (auto b = replay::read_journal_base(log.journal); b && b.value()) {
      log.base_seq = core::raw(b.value()->seq);
    }
    log.durable_seq = core::raw(seq.engine().last_seq());
    log.epoch = seq.engine().epoch();
    const std::string prefix = "/qx/" + config.name + "/";
    leader_key = prefix + "leader";
    nodes_prefix = prefix + "nodes/";
    const std::uint64_t fence = read_number(data / "cluster-fence").value_or(0);
    node = std::make_unique<cluster::Node>(config, log, fence, now_ms());
    metrics.cluster_nodes(config.nodes.size());
    metrics.cluster_durable(log.durable_seq.load());
    {
      std::lock_guard lock(smu);
      st.role = "candidate";
      st.durable = log.durable_seq.load();
      st.fenced = fence;
    }
    seq.set_writable(false, not_leader_body(0));
    seq.add_event_listener([this](const core::Event&, const core::EffectBuffer&,
                                  const core::Engine& e) { log.epoch = e.epoch(); });
    seq.replicate({config.state_hash_every, [this](Sequencer::Shipment shipped) {
                     asio::post(io, [this, shipped = std::move(shipped)]() mutable {
                       on_durable(std::move(shipped));
                     });
                   }});
  }

  // ---------------------------------------------------------------------------------------------
  // Start and stop.

  void start() {
    const auto [host, port] = cluster::split_address(config.self().replication);
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<std::uint16_t>(std::stoi(port)));
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
    accept();
    work.emplace(asio::make_work_guard(io));
    asio::post(io, [this] { act(node->start()); });
    schedule_tick();
    io_thread = std::thread([this] { io.run(); });
    etcd_thread = std::thread([this] { etcd_loop(); });
    worker_thread = std::thread([this] { work_loop(); });
    log_event(LogLevel::kInfo, "cluster_started",
              {{"node", config.node},
               {"replication", config.self().replication},
               {"tls", tls != nullptr},
               {"ack", config.ack == cluster::Ack::kQuorum ? "quorum" : "local"}});
  }

  void stop() {
    // Nothing journaled from here on can be replicated: refuse it rather than answer it.
    stop_leading(0);
    {
      std::lock_guard lock(emu);
      estop = true;
    }
    ecv.notify_all();
    if (etcd_thread.joinable()) etcd_thread.join();
    {
      std::lock_guard lock(wmu);
      wstop = true;
    }
    wcv.notify_all();
    if (worker_thread.joinable()) worker_thread.join();  // no store read outlives stop()
    asio::post(io, [this] {
      stopped = true;
      boost::system::error_code ignored;
      acceptor.close(ignored);
      tick.cancel();
      // Every connection, not only the upstream and the followers: one that has not said Hello
      // (or not finished its handshake) is neither, and its pending read would keep io.run()
      // going, and this stop waiting, for as long as its peer keeps it open.
      for (const auto& weak : conns) {
        if (auto c = weak.lock()) c->close();
      }
    });
    work.reset();
    if (io_thread.joinable()) io_thread.join();
    seq.hold_replies(false);
  }

  void accept() {
    acceptor.async_accept([this](auto ec, tcp::socket s) {
      // Stopping (or stopped): the acceptor is closed, and a connection accepted just before
      // must not be kept (stop() closed the ones it knew of).
      if (stopped || !acceptor.is_open()) return;
      if (ec) {
        if (ec != asio::error::operation_aborted) accept();
        return;
      }
      boost::system::error_code no_peer;
      const tcp::endpoint remote = s.remote_endpoint(no_peer);
      std::string address;
      if (!no_peer) address = remote.address().to_string() + ":" + std::to_string(remote.port());
      s.set_option(tcp::no_delay(true), no_peer);
      auto c = track(std::make_shared<Conn>(*this, std::move(s), false, std::move(address)));
      c->start();
      accept();
    });
  }

  // Remembers a new connection for stop(); forgets those that are gone.
  std::shared_ptr<Conn> track(std::shared_ptr<Conn> c) {
    std::erase_if(conns, [](const std::weak_ptr<Conn>& w) { return w.expired(); });
    conns.push_back(c);
    return c;
  }

  void schedule_tick() {
    tick.expires_after(std::chrono::milliseconds(10));
    tick.async_wait([this](auto ec) {
      if (ec || stopped) return;
      act(node->step(cluster::Tick{now_ms()}));
      schedule_tick();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The state machine's outputs.

  void act(const std::vector<cluster::Output>& outs) {
    for (const cluster::Output& o : outs) std::visit([this](const auto& x) { on(x); }, o);
  }

  void on(const cluster::Send& s) {
    std::string frame;
    cluster::append_peer_frame(frame, s.message);
    if (node->role() == cluster::NodeRole::kLeader) {
      if (auto it = followers.find(s.to); it != followers.end()) it->second->send(frame);
    } else if (upstream && upstream_to == s.to) {
      upstream->send(frame);
    }
  }

  void on(const cluster::Connect& c) {
    std::string hello;
    cluster::append_peer_frame(hello, c.hello);
    if (upstream && !upstream->closed && upstream_to == c.leader) return upstream->send(hello);
    if (upstream) upstream->close();
    const auto* addr = address_of(c.leader);
    if (addr == nullptr) return;
    auto conn = track(std::make_shared<Conn>(*this, tcp::socket(io), true, addr->replication));
    conn->peer = c.leader;
    upstream = conn;
    upstream_to = c.leader;
    const auto [host, port] = cluster::split_address(addr->replication);
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<std::uint16_t>(std::stoi(port)));
    conn->sock().async_connect(ep, [conn, hello](auto ec) {
      if (conn->closed) return;
      if (ec) return conn->close();
      boost::system::error_code ignored;
      conn->sock().set_option(tcp::no_delay(true), ignored);
      conn->send(hello);  // sent once the connection is ready (after the TLS handshake)
      conn->start();
      conn->impl.publish_peers();
    });
  }

  void on(const cluster::Publish& p) {
    // The fence reaches this node's disk before anyone can count on it.
    write_durably(data / "cluster-fence", std::to_string(p.record.fenced) + "\n");
    const std::string key = nodes_prefix + std::to_string(p.record.id);
    const std::string value = cluster::encode_node_record(p.record);
    etcd([key, value](EtcdClient& e, LeaseId lease, Impl&) {
      if (lease != LeaseId::kNone) (void)e.put(key, value, lease);
    });
  }

  void on(const cluster::ReadLeader&) {
    etcd(
        [](EtcdClient& e, LeaseId, Impl& self) {
          {
            std::lock_guard lock(self.emu);
            self.pending_read_leader = false;
          }
          auto r = e.get(self.leader_key);
          if (!r) return;
          cluster::LeaderRead read;
          read.key = self.parse_leader(r.value().kv);
          asio::post(self.io, [&self, read] { self.act(self.node->step(read)); });
        },
        EtcdKind::kReadLeader);
  }

  void on(const cluster::ReadNodes&) {
    etcd(
        [](EtcdClient& e, LeaseId, Impl& self) {
          {
            std::lock_guard lock(self.emu);
            self.pending_read_nodes = false;
          }
          auto r = e.get_prefix(self.nodes_prefix);
          if (!r) return;
          cluster::NodesRead read;
          for (const KeyValue& kv : r.value().kvs) {
            const std::string id = kv.key.substr(self.nodes_prefix.size());
            if (id.empty() || id.size() > 4 ||
                id.find_first_not_of("0123456789") != std::string::npos) {
              continue;
            }
            auto rec = cluster::decode_node_record(static_cast<NodeId>(std::stoul(id)), kv.value);
            if (rec) read.records.push_back(rec.value());
          }
          asio::post(self.io, [&self, read] { self.act(self.node->step(read)); });
        },
        EtcdKind::kReadNodes);
  }

  void on(const cluster::Campaign& c) {
    const json me{{"node", config.node},
                  {"http", config.self().http},
                  {"tcp", config.self().tcp},
                  {"replication", config.self().replication}};
    etcd([c, value = me.dump()](EtcdClient& e, LeaseId lease, Impl& self) {
      cluster::CampaignResult result;
      if (lease != LeaseId::kNone) {
        // The key carries no lease: it outlives its leader, so a candidate always sees the latest
        // epoch (a stale node record cannot make it succeed an older term). Only a new term's
        // compare-and-set replaces it.
        auto r = e.replace_if_mod_revision(self.leader_key,
                                           static_cast<std::int64_t>(c.expected_mod_revision),
                                           value, LeaseId::kNone);
        if (r) {
          result.won = r.value().succeeded;
          result.revision = static_cast<std::uint64_t>(r.value().revision);
          result.current = self.parse_leader(r.value().current);
        }
      }
      asio::post(self.io, [&self, result] { self.act(self.node->step(result)); });
    });
  }

  void on(const cluster::StartTerm& t) {
    recent.clear();
    recent_bytes = 0;
    cursor.clear();
    progress.clear();
    reset_lag_gauges();
    metrics.cluster_term_won();
    seq.hold_replies(config.ack == cluster::Ack::kQuorum);
    const NodeId self = config.node;
    {
      std::lock_guard lock(term_mu);
      leading_epoch = t.epoch;
    }
    seq.post(
        [this, epoch = t.epoch, self](Sequencer::Ctx& c) {
          const bool empty = c.engine().last_seq() == core::Seq{};
          {
            // Only if this node still leads this term (a step-down may have come first).
            std::lock_guard lock(term_mu);
            if (leading_epoch != epoch) return Reply{};
            seq.set_writable(true);
          }
          c.submit(core::LeaderTerm{epoch, self});
          if (on_term) on_term(c, empty);
          return Reply{};
        },
        [](Reply) {});
  }

  void on(const cluster::StepDown&) {
    stop_leading(0);
    seq.hold_replies(false);
    for (auto& [id, c] : std::map(followers)) c->close();
    followers.clear();
    cursor.clear();
    transfers.clear();
    progress.clear();
    reset_lag_gauges();
    metrics.cluster_followers(0);
    publish_peers();
  }

  void on(const cluster::StreamFrom& s) {
    cursor[s.to] = s.first;
    pump(s.to);
  }

  void on(const cluster::Append&) {}  // carried out where the records are (on_frame)

  // Leader: the store is read and the snapshot encoded on the worker thread; back on the I/O
  // thread it goes out in chunks, one whenever the connection has written the last, so that
  // heartbeats and other followers' records are not held up behind it. Only on the connection
  // whose hello asked for it, and only if no hello came since: a stale decision delivered after
  // the follower took records could remove records it acknowledged.
  void on(const cluster::SendSnapshot& s) {
    const auto c = followers.find(s.to);
    if (c == followers.end()) return;
    const std::weak_ptr<Conn> conn = c->second;
    const std::uint64_t epoch = node->epoch(), hello = hellos[s.to];
    background([this, s, epoch, hello, conn] {
      std::string error;
      auto found = snapshots.read(s.seq);
      if (!found) {
        error = found.error().message;
      } else if (!found.value().found) {
        error = "no valid snapshot at or before seq " + std::to_string(core::raw(s.seq));
      }
      if (!error.empty()) return snapshot_not_sent(s.to, conn, error);
      const replay::LoadedSnapshot& snap = *found.value().found;
      const core::Seq at = snap.snapshot.last_seq;
      auto bytes = replay::encode_snapshot(snap.snapshot);
      auto chain = replay::chain_hash_at(log.journal, at);
      if (!bytes) return snapshot_not_sent(s.to, conn, bytes.error().message);
      if (!chain) return snapshot_not_sent(s.to, conn, chain.error().message);
      if (bytes.value().empty() || bytes.value().size() > cluster::kSnapshotBytesMax) {
        return snapshot_not_sent(s.to, conn,
                                 "a snapshot of " + std::to_string(bytes.value().size()) +
                                     " bytes cannot be sent (at most " +
                                     std::to_string(cluster::kSnapshotBytesMax) + ")");
      }
      Transfer t{conn, hello, std::make_shared<std::vector<std::uint8_t>>(std::move(bytes).value()),
                 0, cluster::InstallSnapshot{epoch, at, chain.value(), snap.state_hash}};
      asio::post(io, [this, to = s.to, t = std::move(t)]() mutable {
        const auto f = followers.find(to);
        if (stopped || node->role() != cluster::NodeRole::kLeader ||
            node->epoch() != t.install.epoch || f == followers.end() ||
            f->second != t.conn.lock() || hellos[to] != t.hello) {
          return;  // the decision is stale: the follower's next hello gets a new one
        }
        transfers[to] = std::move(t);
        pump_snapshot(to, *f->second);
      });
    });
  }

  void snapshot_not_sent(NodeId to, const std::weak_ptr<Conn>& conn, const std::string& error) {
    log_event(LogLevel::kError, "snapshot_send_failed", {{"to", to}, {"error", error}});
    // The follower says hello on a new connection, and the node decides again.
    asio::post(io, [conn] {
      if (auto c = conn.lock()) c->close();
    });
  }

  // One more chunk of the snapshot on its way to `to`, if its connection has written the last;
  // the InstallSnapshot after the last chunk.
  void pump_snapshot(NodeId to, Conn& conn) {
    auto it = transfers.find(to);
    if (it == transfers.end() || conn.closed || !conn.out.empty()) return;
    Transfer& t = it->second;
    const std::vector<std::uint8_t>& bytes = *t.bytes;
    std::string frame;
    if (t.offset < bytes.size()) {
      const std::size_t n = std::min(kSnapshotSendBytes, bytes.size() - t.offset);
      const auto from = bytes.begin() + static_cast<std::ptrdiff_t>(t.offset);
      cluster::append_peer_frame(
          frame, cluster::SnapshotChunk{t.install.epoch,
                                        t.install.seq,
                                        t.offset,
                                        bytes.size(),
                                        {from, from + static_cast<std::ptrdiff_t>(n)}});
      t.offset += n;
      conn.send(frame);
      return;
    }
    cluster::append_peer_frame(frame, t.install);
    conn.send(frame);
    log_event(LogLevel::kInfo, "snapshot_sent",
              {{"to", to},
               {"seq", core::raw(t.install.seq)},
               {"bytes", bytes.size()},
               {"state_hash", replay::hex64(t.install.state_hash)}});
    transfers.erase(it);
  }

  void on(const cluster::Drop& d) {
    if (auto c = followers.find(d.peer); c != followers.end()) c->second->close();
  }

  // Follower: the chunks of a snapshot, staged on disk in order.
  struct Staging {
    int fd = -1;
    std::uint64_t epoch = 0, seq = 0, total = 0, have = 0;
  };

  void drop_staging() {
    if (staging.fd >= 0) ::close(staging.fd);
    staging = Staging{};
    std::error_code ignored;
    fs::remove(install_part(data), ignored);
  }

  // Stages one chunk; an Error for one out of order or a failed write.
  std::string stage(const cluster::SnapshotChunk& c) {
    if (c.offset == 0) {
      drop_staging();
      staging.fd =
          ::open(install_part(data).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (staging.fd < 0) return "cannot create " + install_part(data).string();
      staging.epoch = c.epoch;
      staging.seq = core::raw(c.seq);
      staging.total = c.total;
    } else if (staging.fd < 0 || c.epoch != staging.epoch || core::raw(c.seq) != staging.seq ||
               c.total != staging.total || c.offset != staging.have) {
      return "a snapshot chunk out of order (seq " + std::to_string(core::raw(c.seq)) + " offset " +
             std::to_string(c.offset) + ")";
    }
    std::size_t done = 0;
    while (done < c.data.size()) {
      const ssize_t n = ::write(staging.fd, c.data.data() + done, c.data.size() - done);
      if (n <= 0)
        return "cannot write " + install_part(data).string() + ": " + std::strerror(errno);
      done += static_cast<std::size_t>(n);
    }
    staging.have += c.data.size();
    return {};
  }

  // Follower: the whole snapshot is staged; make it durable, mark it, restart to install it.
  void on(const cluster::Install& i) {
    const auto& m = pending_install;
    std::string error;
    if (!m || m->seq != i.seq || staging.fd < 0 || staging.seq != core::raw(i.seq) ||
        staging.epoch != m->epoch || staging.have != staging.total) {
      error = "the snapshot at seq " + std::to_string(core::raw(i.seq)) + " did not arrive whole";
    } else if (::fsync(staging.fd) != 0) {
      error = "cannot sync " + install_part(data).string();
    }
    if (error.empty()) {
      ::close(staging.fd);
      staging.fd = -1;
      std::error_code ec;
      fs::rename(install_part(data), install_bytes(data), ec);
      if (ec) error = "cannot rename " + install_part(data).string() + ": " + ec.message();
    }
    if (!error.empty()) {
      log_event(LogLevel::kError, "snapshot_install_failed", {{"error", error}});
      drop_staging();
      if (upstream) upstream->close();  // a new hello, a new decision
      return;
    }
    const json marker{{"seq", core::raw(m->seq)},
                      {"chain", replay::hex_chain(m->chain)},
                      {"state_hash", replay::hex64(m->state_hash)},
                      {"bytes", staging.total}};
    write_durably(install_marker(data), marker.dump() + "\n");
    log_event(
        LogLevel::kWarn, "snapshot_received",
        {{"seq", core::raw(m->seq)}, {"bytes", staging.total}, {"last", log.durable_seq.load()}});
    reexec();
  }

  // ---------------------------------------------------------------------------------------------
  // The worker thread: slow reads (the store) off the I/O thread.

  void background(std::function<void()> job) {
    {
      std::lock_guard lock(wmu);
      if (wstop) return;
      wjobs.push_back(std::move(job));
    }
    wcv.notify_one();
  }

  void work_loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(wmu);
        wcv.wait(lock, [&] { return wstop || !wjobs.empty(); });
        if (wstop) return;
        job = std::move(wjobs.front());
        wjobs.pop_front();
      }
      job();
    }
  }

  void on(const cluster::Cut& c) {
    log_event(LogLevel::kWarn, "journal_cut_needed",
              {{"keep_last", core::raw(c.keep_last)}, {"last", log.durable_seq.load()}});
    write_durably(data / "cluster-cut", std::to_string(core::raw(c.keep_last)) + "\n");
    reexec();
  }

  void on(const cluster::Acknowledge& a) {
    seq.acknowledge(a.through);
    std::lock_guard lock(smu);
    st.acknowledged = core::raw(a.through);
  }

  void on(const cluster::RoleChanged& r) {
    const char* role = r.leader == 0 && r.role == cluster::NodeRole::kFollower
                           ? "candidate"
                           : cluster::to_string(r.role);
    metrics.cluster_role(r.role == cluster::NodeRole::kLeader, r.epoch);
    log_event(LogLevel::kInfo, "role_changed",
              {{"node", config.node},
               {"role", role},
               {"epoch", r.epoch},
               {"leader", r.leader},
               {"fenced", node->fenced()},
               {"durable", log.durable_seq.load()}});
    if (r.role != cluster::NodeRole::kLeader) {
      stop_leading(r.leader);
    } else if (upstream) {
      upstream->close();  // a leader follows no one: a deposed leader's stream must not reach it
    }
    {
      std::lock_guard lock(smu);
      st.role = role;
      st.epoch = r.epoch;
      st.leader = r.leader;
      st.fenced = node->fenced();
    }
    publish_peers();
  }

  // ---------------------------------------------------------------------------------------------
  // Records.

  void on_durable(Sequencer::Shipment s) {
    log.durable_seq = core::raw(s.last);
    metrics.cluster_durable(core::raw(s.last));
    {
      std::lock_guard lock(smu);
      st.durable = core::raw(s.last);
    }
    if (node->role() == cluster::NodeRole::kLeader) {
      recent_bytes += s.records.size();
      recent.push_back(Chunk{s.first, s.last, std::chrono::steady_clock::now(),
                             std::move(s.records), std::move(s.state_hashes)});
      // Every other node, connected or not: one that acknowledged nothing this term is behind.
      for (const auto& n : config.nodes) {
        if (n.id == config.node) continue;
        const auto g = progress.find(n.id);
        const std::uint64_t theirs = g == progress.end() ? 0 : g->second.durable;
        metrics.cluster_follower_lag(n.id, core::raw(s.last) - std::min(theirs, core::raw(s.last)));
      }
      while (recent_bytes > kRecentBytesMax && recent.size() > 1) {
        recent_bytes -= recent.front().bytes.size();
        recent.pop_front();
      }
    }
    act(node->step(cluster::Durable{s.last}));
    for (auto& [id, next] : cursor) pump(id);
  }

  // The group in memory that holds seq `at` (nullptr: none); `recent` is in seq order, O(log n).
  const Chunk* recent_chunk(std::uint64_t at) const {
    auto it =
        std::upper_bound(recent.begin(), recent.end(), at,
                         [](std::uint64_t s, const Chunk& k) { return s < core::raw(k.first); });
    if (it == recent.begin()) return nullptr;
    --it;
    return at <= core::raw(it->last) ? &*it : nullptr;
  }

  // Ships records from the follower's cursor on, while its connection has room.
  void pump(NodeId to) {
    if (node->role() != cluster::NodeRole::kLeader) return;
    auto c = followers.find(to);
    if (c != followers.end() && transfers.contains(to)) return pump_snapshot(to, *c->second);
    auto at = cursor.find(to);
    if (c == followers.end() || at == cursor.end() || c->second->closed) return;
    Conn& conn = *c->second;
    std::uint64_t next = core::raw(at->second);
    const std::uint64_t durable = log.durable_seq.load();
    while (next <= durable && conn.out.size() < kOutBytesMax) {
      std::vector<std::span<const std::uint8_t>> raws;
      std::vector<std::uint8_t> from_disk;
      std::vector<std::pair<core::Seq, std::uint64_t>> checks;
      const Chunk* chunk = recent_chunk(next);
      std::uint64_t s = next;
      if (chunk != nullptr) {
        std::size_t off = 0, bytes = 0;
        for (std::uint64_t q = core::raw(chunk->first); q < next; ++q) {
          off += replay::record_size(chunk->bytes.data() + off);
        }
        for (; s <= core::raw(chunk->last) && bytes < kFrameRecordsBytes; ++s) {
          const std::size_t n = replay::record_size(chunk->bytes.data() + off);
          raws.emplace_back(chunk->bytes.data() + off, n);
          off += n;
          bytes += n;
        }
        for (const auto& h : chunk->hashes) {
          if (core::raw(h.first) >= next && core::raw(h.first) < s) checks.push_back(h);
        }
      } else {
        auto r = replay::JournalReader::open_at(log.journal, core::Seq(next));
        if (!r) break;
        replay::Record rec;
        std::vector<std::size_t> sizes;
        while (s <= durable && from_disk.size() < kFrameRecordsBytes) {
          auto more = r.value().next(rec);
          if (!more || !more.value()) break;
          if (core::raw(rec.seq) < next) continue;
          from_disk.insert(from_disk.end(), rec.raw.begin(), rec.raw.end());
          sizes.push_back(rec.raw.size());
          s += 1;
        }
        std::size_t off = 0;
        for (std::size_t n : sizes) {
          raws.emplace_back(from_disk.data() + off, n);
          off += n;
        }
      }
      if (raws.empty()) break;
      std::string frame;
      cluster::append_peer_frame(
          frame, cluster::Records{node->epoch(), core::Seq(next), core::Seq(s - 1)}, raws);
      for (const auto& [q, h] : checks) {
        cluster::append_peer_frame(frame, cluster::StateCheck{node->epoch(), q, h});
      }
      conn.send(frame);
      next = s;
    }
    at->second = core::Seq(next);
  }

  void on_frame(Conn& conn, cluster::DecodedPeerFrame d) {
    if (const auto* chunk = std::get_if<cluster::SnapshotChunk>(&d.frame)) {
      if (!conn.outgoing || upstream.get() != &conn) {
        log_event(LogLevel::kWarn, "replication_frame_refused",
                  {{"peer", conn.peer},
                   {"error", "a snapshot chunk on a connection other than the one to the leader"}});
        return conn.close();
      }
      if (node->role() == cluster::NodeRole::kLeader || chunk->epoch != node->epoch()) return;
      if (auto error = stage(*chunk); !error.empty()) {
        log_event(LogLevel::kError, "snapshot_install_failed", {{"error", error}});
        drop_staging();
        return conn.close();
      }
      act(node->step(cluster::Heard{conn.peer, chunk->epoch}));  // a long transfer is no silence
      return;
    }
    if (const auto* check = std::get_if<cluster::StateCheck>(&d.frame)) {
      if (conn.outgoing && upstream.get() == &conn && node->role() != cluster::NodeRole::kLeader &&
          check->epoch == node->epoch()) {
        state_check(*check);
      }
      return;
    }
    auto& m = std::get<cluster::Message>(d.frame);
    // A leader's messages come only on the connection this node opened to it; a follower's only
    // on one it opened to this node. Anything else closes the connection.
    const bool from_leader = std::holds_alternative<cluster::Heartbeat>(m) ||
                             std::holds_alternative<cluster::Probe>(m) ||
                             std::holds_alternative<cluster::Truncate>(m) ||
                             std::holds_alternative<cluster::Records>(m) ||
                             std::holds_alternative<cluster::InstallSnapshot>(m);
    if (from_leader != conn.outgoing || (conn.outgoing && upstream.get() != &conn)) {
      log_event(
          LogLevel::kWarn, "replication_frame_refused",
          {{"peer", conn.peer}, {"error", "a message that does not belong on this connection"}});
      return conn.close();
    }
    if (const auto* hello = std::get_if<cluster::Hello>(&m)) {
      if (conn.peer != 0 && hello->from != conn.peer) return conn.close();
      cursor.erase(hello->from);  // the old stream stops; the hello's search starts a new one
      transfers.erase(hello->from);
      hellos[hello->from] += 1;
    }
    if (auto* acked = std::get_if<cluster::Acked>(&m)) {
      // A follower cannot hold more than it was sent.
      auto at = cursor.find(conn.peer);
      const std::uint64_t sent = at == cursor.end() ? 0 : core::raw(at->second) - 1;
      acked->durable = core::Seq(std::min(core::raw(acked->durable), sent));
      if (acked->epoch == node->epoch() && node->role() == cluster::NodeRole::kLeader) {
        follower_acked(conn.peer, core::raw(acked->durable));
      }
    }
    if (!conn.outgoing && conn.peer == 0) {
      const auto* hello = std::get_if<cluster::Hello>(&m);
      if (hello == nullptr || address_of(hello->from) == nullptr || hello->from == config.node) {
        return conn.close();
      }
      if (auto wrong = certificate_mismatch(conn, *address_of(hello->from))) {
        tls_failed(conn, *wrong);
        return conn.close();
      }
      conn.peer = hello->from;
      if (auto old = followers.find(conn.peer); old != followers.end()) {
        auto keep = old->second;
        followers.erase(old);
        keep->close();
      }
      followers[conn.peer] = conn.shared_from_this();
      metrics.cluster_followers(followers.size());
      publish_peers();
    }
    if (const auto* install = std::get_if<cluster::InstallSnapshot>(&m)) pending_install = *install;
    const auto outs = node->step(cluster::Received{conn.peer, m});
    for (const cluster::Output& o : outs) {
      if (const auto* a = std::get_if<cluster::Append>(&o)) {
        log.queued_seq = core::raw(a->last);
        log.queued(d.records);
        append(std::move(d.records));
      }
    }
    act(outs);
  }

  // A follower appends the leader's records on the sequencer thread; a refused one (a chain that
  // does not link) drops the connection, and the new hello finds the fork.
  void append(std::vector<std::vector<std::uint8_t>> records) {
    auto shared = std::make_shared<std::vector<std::vector<std::uint8_t>>>(std::move(records));
    const bool posted = seq.post(
        [this, shared](Sequencer::Ctx& c) {
          for (const auto& raw : *shared) {
            if (auto refused = c.append_replicated(raw); !refused) {
              log_event(LogLevel::kWarn, "replicated_record_refused",
                        {{"error", refused.error().message}});
              const std::uint64_t last = core::raw(c.engine().last_seq());
              asio::post(io, [this, last] {
                log.queued_seq = last;  // resynchronise from what this journal holds
                log.queued_chains.clear();
                if (upstream) upstream->close();
              });
              break;
            }
          }
          return Reply{};
        },
        [](Reply) {});
    if (!posted) {  // the queue is full: resynchronise later
      log.queued_seq = log.durable_seq.load();
      log.queued_chains.clear();
      if (upstream) upstream->close();
    }
  }

  void state_check(const cluster::StateCheck& check) {
    seq.post(
        [check, fault_from = fault_hash_from](Sequencer::Ctx& c) {
          auto mine = c.state_hash_at(check.seq);
          if (mine && fault_from != 0 && core::raw(check.seq) >= fault_from) {
            *mine ^= 0x5a5a5a5a5a5a5a5aULL;  // the test-only fault hook (fault_state_hash_from)
          }
          if (mine && *mine != check.state_hash) {
            char line[256];
            std::snprintf(line, sizeof line,
                          "state hash diverged at seq %llu: leader %016llx, this node %016llx",
                          static_cast<unsigned long long>(core::raw(check.seq)),
                          static_cast<unsigned long long>(check.state_hash),
                          static_cast<unsigned long long>(*mine));
            log_event(LogLevel::kFatal, "state_diverged",
                      {{"seq", core::raw(check.seq)}, {"error", line}});
            std::fprintf(stderr, "qx serve: %s\n", line);
            std::_Exit(2);
          }
          return Reply{};
        },
        [](Reply) {});
  }

  void on_closed(Conn& conn) {
    if (stopped) return;
    if (conn.outgoing) {
      if (upstream.get() != &conn) return;
      upstream.reset();
      drop_staging();  // a transfer on it is over; the next one starts from its first chunk
      publish_peers();
      if (node->role() != cluster::NodeRole::kLeader) {
        act(node->step(cluster::Disconnected{conn.peer}));
      }
    } else if (conn.peer != 0) {
      if (auto it = followers.find(conn.peer); it != followers.end() && it->second.get() == &conn) {
        followers.erase(it);
        cursor.erase(conn.peer);
        transfers.erase(conn.peer);
        metrics.cluster_followers(followers.size());
        publish_peers();
        act(node->step(cluster::Disconnected{conn.peer}));
      }
    }
  }

  // A follower's acknowledged progress (leader, this epoch): its lag in events, and the time from
  // the newest acknowledged group's durability here to this acknowledgement.
  void follower_acked(NodeId peer, std::uint64_t durable) {
    PeerProgress& p = progress[peer];
    if (durable <= p.durable && p.acked_at != std::chrono::steady_clock::time_point{}) return;
    p.durable = durable;
    const auto now = std::chrono::steady_clock::now();
    p.acked_at = now;
    const std::uint64_t mine = log.durable_seq.load();
    metrics.cluster_follower_lag(peer, mine - std::min(durable, mine));
    if (const Chunk* k = recent_chunk(durable)) {
      p.lag = now - k->durable_at;
      p.measured = true;
      metrics.cluster_replication_lag(peer, p.lag);
    }
    publish_peers();
  }

  // A new term (or none): no follower has acknowledged anything in it yet; a non-leader's gauges
  // say 0 rather than a former term's figures.
  void reset_lag_gauges() {
    for (const auto& n : config.nodes) {
      if (n.id != config.node) metrics.cluster_follower_lag(n.id, 0);
    }
  }

  // Copies the followers' progress where status() reads it (any thread).
  void publish_peers() {
    std::vector<Peer> peers;
    if (node->role() == cluster::NodeRole::kLeader) {
      for (const auto& n : config.nodes) {
        if (n.id == config.node) continue;
        Peer p{n.id};
        const auto c = followers.find(n.id);
        p.connected = c != followers.end() && !c->second->closed;
        if (const auto g = progress.find(n.id); g != progress.end()) {
          p.durable = g->second.durable;
          if (g->second.measured) {
            p.lag_ms = std::chrono::duration<double, std::milli>(g->second.lag).count();
          }
        }
        peers.push_back(p);
      }
    }
    std::lock_guard lock(smu);
    st.peers = std::move(peers);
    st.upstream = upstream && !upstream->closed;
  }

  // ---------------------------------------------------------------------------------------------
  // etcd.

  using EtcdJob = std::function<void(EtcdClient&, LeaseId, Impl&)>;
  // A read already waiting answers for a new one of the same kind (the machine polls every
  // heartbeat; a slow etcd must not pile reads up). Publishes and campaigns are never merged.
  enum class EtcdKind : std::uint8_t { kOther, kReadLeader, kReadNodes };
  void etcd(EtcdJob job, EtcdKind kind = EtcdKind::kOther) {
    {
      std::lock_guard lock(emu);
      if (kind == EtcdKind::kReadLeader && pending_read_leader) return;
      if (kind == EtcdKind::kReadNodes && pending_read_nodes) return;
      if (kind == EtcdKind::kReadLeader) pending_read_leader = true;
      if (kind == EtcdKind::kReadNodes) pending_read_nodes = true;
      ejobs.push_back(std::move(job));
    }
    ecv.notify_one();
  }

  void etcd_loop() {
    EtcdClient client(config.etcd, std::chrono::milliseconds(300));
    LeaseId lease = LeaseId::kNone;
    const std::int64_t ttl_ms = std::int64_t{config.lease_s} * 1000;
    std::int64_t renewed = 0, next_renewal = 0;
    while (true) {
      const std::int64_t now = now_ms();
      if (lease == LeaseId::kNone) {
        if (auto g = client.grant_lease(config.lease_s); g) {
          lease = g.value().id;
          renewed = now;
          next_renewal = now + ttl_ms / 3;
        }
      } else if (now >= next_renewal) {
        auto k = client.keep_alive(lease);
        next_renewal = now_ms() + ttl_ms / 3;
        if (k && k.value() > 0) {
          renewed = now;
        } else if (k) {
          renewed = 0;  // etcd says the lease is gone
        }
      }
      if (lease != LeaseId::kNone && now_ms() - renewed >= ttl_ms) {
        lease = LeaseId::kNone;  // a leader steps down before its key can be taken
        asio::post(io, [this] { act(node->step(cluster::LeaseLost{})); });
        continue;
      }
      std::deque<EtcdJob> jobs;
      {
        std::unique_lock lock(emu);
        ecv.wait_for(lock, std::chrono::milliseconds(lease == LeaseId::kNone ? 200 : 20),
                     [&] { return estop || !ejobs.empty(); });
        if (estop) break;
        jobs.swap(ejobs);
      }
      for (auto& j : jobs) j(client, lease, *this);
    }
    if (lease != LeaseId::kNone) (void)client.revoke(lease);
  }

  std::optional<cluster::LeaderKey> parse_leader(const std::optional<KeyValue>& kv) const {
    if (!kv) return std::nullopt;
    const auto j = json::parse(kv->value, nullptr, false);
    if (!j.is_object() || !j.contains("node") || !j["node"].is_number_unsigned()) {
      return std::nullopt;
    }
    return cluster::LeaderKey{j["node"].get<NodeId>(),
                              static_cast<std::uint64_t>(kv->mod_revision)};
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers.

  // A TLS handshake that failed or did not finish: a peer with another CA, no certificate or no
  // TLS at all, or a stranger. Throttled: a misconfigured node dials again every few heartbeats.
  void tls_failed(const Conn& c, const std::string& reason) {
    std::uint64_t suppressed = 0;
    if (!tls_log.allow(steady_now_ns(), suppressed)) return;
    log_event(LogLevel::kWarn, "replication_tls_failed",
              {{"address", c.address},
               {"node", c.peer},
               {"direction", c.outgoing ? "dialed" : "accepted"},
               {"reason", reason},
               {"suppressed", suppressed}});
  }

  // With TLS: why the certificate of an accepted connection does not name `claimed`, the node its
  // Hello claims to be (its tls_name, or else its replication IP); nullopt when it does. A
  // certificate of the cluster's CA is not enough: it must be that node's.
  std::optional<std::string> certificate_mismatch(Conn& conn, const cluster::NodeAddress& claimed) {
    if (!tls) return std::nullopt;
    X509* cert = SSL_get1_peer_certificate(conn.stream.native_handle());
    if (cert == nullptr) return "no certificate";
    const std::string ip = cluster::split_address(claimed.replication).first;
    const bool named = claimed.tls_name.empty()
                           ? X509_check_ip_asc(cert, ip.c_str(), 0) == 1
                           : X509_check_host(cert, claimed.tls_name.data(), claimed.tls_name.size(),
                                             0, nullptr) == 1;
    X509_free(cert);
    if (named) return std::nullopt;
    return "its certificate does not name node " + std::to_string(claimed.id) + " (" +
           (claimed.tls_name.empty() ? "IP " + ip : "tls_name " + claimed.tls_name) +
           "), which its hello claims to be";
  }

  const cluster::NodeAddress* address_of(NodeId id) const {
    for (const auto& n : config.nodes) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }

  // This node journals for no term any more; writes answer 421 naming `leader` (0: unknown).
  void stop_leading(NodeId leader) {
    std::lock_guard lock(term_mu);
    leading_epoch = 0;
    seq.set_writable(false, not_leader_body(leader));
  }

  std::string not_leader_body(NodeId leader) const {
    json j{{"error", "not_leader"}};
    if (const auto* a = leader == 0 ? nullptr : address_of(leader)) {
      j["message"] =
          "node " + std::to_string(leader) + " leads: http " + a->http + ", tcp " + a->tcp;
      j["leader"] = {{"node", leader}, {"http", a->http}, {"tcp", a->tcp}};
    } else {
      j["message"] = "no leader is known yet; retry shortly";
      j["leader"] = nullptr;
    }
    return j.dump();
  }

  [[noreturn]] void reexec() {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    std::vector<std::string> args;
    for (std::size_t at = 0; at < all.size();) {
      const std::size_t end = all.find('\0', at);
      args.push_back(all.substr(at, end - at));
      at = end == std::string::npos ? all.size() : end + 1;
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    // Listening sockets and files must not outlive this image: the new one binds and opens them.
    std::vector<int> fds;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
      const int fd = std::atoi(e.path().filename().c_str());
      if (fd > 2) fds.push_back(fd);
    }
    for (int fd : fds) ::close(fd);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "qx serve: cannot restart itself to cut its journal; restart it\n");
    std::_Exit(3);
  }

  cluster::ClusterConfig config;
  fs::path data;
  Sequencer& seq;
  Snapshotter& snapshots;
  Metrics& metrics;
  const std::uint64_t fault_hash_from = fault_state_hash_from();  // 0: no fault (tests only)
  OnTerm on_term;
  std::shared_ptr<asio::ssl::context> tls;  // null: plain TCP
  // Only because a stream needs a context: without TLS no connection handshakes with it.
  asio::ssl::context plain{asio::ssl::context::tls};
  LogThrottle tls_log{5};
  Log log;
  std::string leader_key, nodes_prefix;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::steady_timer tick;
  tcp::acceptor acceptor;
  std::thread io_thread;
  bool stopped = false;
  std::unique_ptr<cluster::Node> node;
  std::vector<std::weak_ptr<Conn>> conns;  // every connection not yet destroyed (see track)
  std::map<NodeId, std::shared_ptr<Conn>> followers;
  std::shared_ptr<Conn> upstream;
  NodeId upstream_to = 0;
  std::deque<Chunk> recent;
  std::size_t recent_bytes = 0;
  std::map<NodeId, core::Seq> cursor;
  struct PeerProgress {
    std::uint64_t durable = 0;
    std::chrono::steady_clock::time_point acked_at;
    std::chrono::steady_clock::duration lag{};
    bool measured = false;  // lag holds a measurement (its group was still in memory)
  };
  std::map<NodeId, PeerProgress> progress;  // leader: each follower's acknowledgements this term
  // Leader: a snapshot on its way to a follower, on the connection its hello came on.
  struct Transfer {
    std::weak_ptr<Conn> conn;
    std::uint64_t hello = 0;  // hellos[follower] when it was asked for
    std::shared_ptr<const std::vector<std::uint8_t>> bytes;
    std::size_t offset = 0;  // sent so far
    cluster::InstallSnapshot install;
  };
  std::map<NodeId, Transfer> transfers;
  std::map<NodeId, std::uint64_t> hellos;                   // leader: hellos seen per follower
  Staging staging;                                          // follower: a snapshot arriving
  std::optional<cluster::InstallSnapshot> pending_install;  // follower: its closing message

  std::thread worker_thread;
  std::mutex wmu;
  std::condition_variable wcv;
  std::deque<std::function<void()>> wjobs;
  bool wstop = false;

  std::thread etcd_thread;
  std::mutex emu;
  std::condition_variable ecv;
  std::deque<EtcdJob> ejobs;
  bool estop = false;
  bool pending_read_leader = false;
  bool pending_read_nodes = false;

  mutable std::mutex smu;
  Status st;
  // The term this node journals for (0: none); with set_writable, changed only under term_mu.
  std::mutex term_mu;
  std::uint64_t leading_epoch = 0;
};

Replicator::Replicator(cluster::ClusterConfig config, std::filesystem::path data_dir,
                       Sequencer& sequencer, Snapshotter& snapshots, Metrics& metrics,
                       OnTerm on_term, std::shared_ptr<boost::asio::ssl::context> tls)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(data_dir), sequencer, snapshots,
                                   metrics, std::move(on_term), std::move(tls))) {}

std::shared_ptr<boost::asio::ssl::context> Replicator::make_tls(
    const cluster::ClusterConfig& config) {
  if (!config.tls) return nullptr;
  TlsSettings s;
  s.cert_file = config.tls->cert;
  s.key_file = config.tls->key;
  s.client_ca_file = config.tls->ca;
  try {
    return make_peer_tls(s);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("the cluster file's tls: ") + e.what());
  }
}

Replicator::~Replicator() = default;

void Replicator::start() {
  impl_->start();
}

void Replicator::stop() {
  impl_->stop();
}

void Replicator::reload_tls() {
  if (!impl_->config.tls) return;
  std::shared_ptr<boost::asio::ssl::context> next;
  try {
    next = make_tls(impl_->config);
  } catch (const std::exception& e) {
    log_event(LogLevel::kError, "replication_tls_reload_failed", {{"error", e.what()}});
    return;
  }
  // The context is only used on the I/O thread; a connection's SSL object keeps its own
  // reference to the context it was made with.
  asio::post(impl_->io, [impl = impl_.get(), next = std::move(next)]() mutable {
    impl->tls = std::move(next);
    log_event(LogLevel::kInfo, "replication_tls_reloaded", {{"cert", impl->config.tls->cert}});
  });
}

Replicator::Status Replicator::status() const {
  std::lock_guard lock(impl_->smu);
  return impl_->st;
}

std::string Replicator::status_json() const {
  const Status s = status();
  const auto& config = impl_->config;
  const auto address = [](const cluster::NodeAddress* a) {
    if (a == nullptr) return json(nullptr);
    return json{{"node", a->id},
                {"role", a->role == cluster::Role::kLearner ? "learner" : "voter"},
                {"http", a->http},
                {"tcp", a->tcp},
                {"replication", a->replication}};
  };
  json j{{"cluster", config.name},
         {"node", address(&config.self())},
         {"role", s.role},
         {"epoch", s.epoch},
         {"leader", address(s.leader == 0 ? nullptr : impl_->address_of(s.leader))},
         {"fenced", s.fenced},
         {"durable", s.durable},
         {"ack", config.ack == cluster::Ack::kQuorum ? "quorum" : "local"}};
  if (s.role == "leader") {
    j["acknowledged"] = s.acknowledged;
    json peers = json::array();
    for (const Peer& p : s.peers) {
      peers.push_back({{"node", address(impl_->address_of(p.node))},
                       {"connected", p.connected},
                       {"durable", p.durable},
                       {"lag_events", s.durable - std::min(p.durable, s.durable)},
                       {"lag_ms", p.lag_ms < 0 ? json(nullptr) : json(p.lag_ms)}});
    }
    j["peers"] = std::move(peers);
  } else {
    j["connected_to_leader"] = s.upstream;
  }
  return j.dump();
}

void Replicator::apply_pending_cut(const std::filesystem::path& data_dir,
                                   const std::filesystem::path& journal_dir, std::ostream& out) {
  const fs::path marker = data_dir / "cluster-cut";
  fs::remove_all(discarded_journal(journal_dir));
  const auto keep = read_number(marker);
  if (!keep) return;
  auto base = replay::read_journal_base(journal_dir);
  if (!base) throw std::runtime_error("journal base: " + base.error().message);
  if (base.value() && *keep < core::raw(base.value()->seq)) {
    // The fork lies before this journal's first record: nothing of it can be kept. Without a
    // journal the leader sends a snapshot (or every record).
    fs::rename(journal_dir, discarded_journal(journal_dir));
    sync_directory(data_dir);
    fs::remove(marker);
    sync_directory(data_dir);
    const auto removed = fs::remove_all(discarded_journal(journal_dir));
    log_event(LogLevel::kWarn, "journal_discarded",
              {{"keep_last", *keep}, {"base", core::raw(base.value()->seq)}, {"files", removed}});
    out << "qx serve: discarded the journal (it starts after seq " << core::raw(base.value()->seq)
        << ", the leader's history forks at " << *keep << ")\n";
    return;
  }
  auto cut = replay::cut_journal_after(journal_dir, core::Seq(*keep));
  if (!cut)
    throw std::runtime_error("cutting the journal after seq " + std::to_string(*keep) + ": " +
                             cut.error().message);
  const auto& r = cut.value();
  // Snapshots and indexes past the cut describe the history that was cut: recovery must not use
  // them (a later journal of the same length is another history).
  std::size_t forgotten = 0;
  {
    auto store = replay::Store::open(journal_dir);
    if (!store) throw std::runtime_error("snapshot store: " + store.error().message);
    auto n = store.value().forget_after(core::Seq(*keep));
    if (!n) throw std::runtime_error("forgetting snapshots after the cut: " + n.error().message);
    forgotten = n.value();
  }
  log_event(LogLevel::kWarn, "journal_cut",
            {{"keep_last", *keep},
             {"first_cut", core::raw(r.first_cut)},
             {"last_cut", core::raw(r.last_cut)},
             {"records", r.records},
             {"bytes", r.bytes},
             {"snapshots_forgotten", forgotten}});
  out << "qx serve: cut " << r.records << " records the leader never had (seq "
      << core::raw(r.first_cut) << " to " << core::raw(r.last_cut) << ")\n";
  fs::remove(marker);
}

namespace {

// The staged snapshot and what its marker says of it; an Error when they do not agree.
struct StagedSnapshot {
  core::Snapshot snapshot;
  replay::JournalBase base;
  std::uint64_t state_hash = 0;
  std::uint64_t bytes = 0;
};

replay::Result<StagedSnapshot> read_staged(const fs::path& data) {
  std::ifstream in(install_marker(data));
  const json m = json::parse(in, nullptr, false);
  if (!m.is_object() || !m.contains("seq") || !m["seq"].is_number_unsigned() ||
      !m.contains("chain") || !m["chain"].is_string() || !m.contains("state_hash") ||
      !m["state_hash"].is_string()) {
    return replay::Error{install_marker(data).string() + " is not a snapshot marker"};
  }
  StagedSnapshot st;
  st.base.seq = core::Seq(m["seq"].get<std::uint64_t>());
  const auto chain = replay::parse_hex_chain(m["chain"].get<std::string>());
  if (!chain) return replay::Error{install_marker(data).string() + ": chain is not 64 hex digits"};
  st.base.chain = *chain;
  const std::string hash = m["state_hash"].get<std::string>();
  if (hash.size() != 16 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return replay::Error{install_marker(data).string() + ": state_hash is not 16 hex digits"};
  }
  st.state_hash = std::stoull(hash, nullptr, 16);
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(install_bytes(data), ec);
  if (ec) return replay::Error{install_bytes(data).string() + ": " + ec.message()};
  if (!m.contains("bytes") || !m["bytes"].is_number_unsigned() ||
      m["bytes"].get<std::uint64_t>() != size) {
    return replay::Error{install_bytes(data).string() + " holds " + std::to_string(size) +
                         " bytes, not the number its marker gives"};
  }
  std::vector<std::uint8_t> bytes(size);
  std::ifstream file(install_bytes(data), std::ios::binary);
  if (!file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    return replay::Error{install_bytes(data).string() + ": read failed"};
  }
  st.bytes = bytes.size();
  auto snap = replay::decode_snapshot(bytes);
  if (!snap) return replay::Error{install_bytes(data).string() + ": " + snap.error().message};
  st.snapshot = std::move(snap).value();
  if (st.snapshot.last_seq != st.base.seq) {
    return replay::Error{"the staged snapshot is at seq " +
                         std::to_string(core::raw(st.snapshot.last_seq)) + ", its marker says " +
                         std::to_string(core::raw(st.base.seq))};
  }
  if (const std::uint64_t h = core::hash_snapshot(st.snapshot); h != st.state_hash) {
    return replay::Error{"the staged snapshot's state hash is " + replay::hex64(h) +
                         ", the leader's " + replay::hex64(st.state_hash)};
  }
  return st;
}

}  // namespace

void Replicator::apply_pending_install(const std::filesystem::path& data_dir,
                                       const std::filesystem::path& journal_dir,
                                       std::ostream& out) {
  if (!fs::exists(install_marker(data_dir))) {
    std::error_code ignored;  // a transfer the last run did not finish
    fs::remove(install_part(data_dir), ignored);
    fs::remove(install_bytes(data_dir), ignored);
    return;
  }
  auto staged = read_staged(data_dir);
  if (!staged) {
    log_event(LogLevel::kError, "snapshot_install_failed", {{"error", staged.error().message}});
    out << "qx serve: dropped a received snapshot: " << staged.error().message << '\n';
  } else {
    const StagedSnapshot& st = staged.value();
    // The store first: with the old journal still whole, a crash here leaves a snapshot past its
    // end, which recovery does not use, and the marker repeats the install.
    {
      auto store = replay::Store::open(journal_dir);
      if (!store) throw std::runtime_error("snapshot store: " + store.error().message);
      if (auto n = store.value().forget_after(core::Seq{}); !n) {
        throw std::runtime_error("forgetting the old snapshots: " + n.error().message);
      }
      if (auto p = store.value().put_snapshot(st.snapshot); !p) {
        throw std::runtime_error("storing the received snapshot: " + p.error().message);
      }
    }
    auto reset = replay::reset_journal_to_base(journal_dir, st.base);
    if (!reset) throw std::runtime_error("journal reset: " + reset.error().message);
    log_event(LogLevel::kWarn, "snapshot_installed",
              {{"seq", core::raw(st.base.seq)},
               {"state_hash", replay::hex64(st.state_hash)},
               {"bytes", st.bytes},
               {"segments_removed", reset.value().segments},
               {"bytes_removed", reset.value().bytes}});
    out << "qx serve: installed the leader's snapshot at seq " << core::raw(st.base.seq) << " ("
        << reset.value().segments << " journal segments replaced)\n";
  }
  // The marker first, durably: an install repeated after records were taken on the new base
  // would remove them.
  fs::remove(install_marker(data_dir));
  sync_directory(data_dir);
  fs::remove(install_bytes(data_dir));
}

}  // namespace qx::server
