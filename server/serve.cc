#include "server/serve.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

#include "cluster/config.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/klines.h"
#include "server/limits.h"
#include "server/log.h"
#include "server/login.h"
#include "server/metrics.h"
#include "server/replicator.h"
#include "server/sequencer.h"
#include "server/service.h"
#include "server/snapshots.h"
#include "server/tcp.h"
#include "server/tls.h"

namespace qx::server {

namespace {

constexpr std::size_t kSecretBytesMin = 32;

struct Config {
  std::string http = "127.0.0.1:8080";
  std::string tcp = "127.0.0.1:9090";
  std::string data_dir = "./qx-data";
  std::string jwt_secret;
  std::int64_t token_ttl_s = 3600;
  std::size_t max_body_bytes = 64 << 10;
  std::size_t queue_capacity = 4096;
  TlsSettings tls;  // cert_file empty: no TLS
  std::uint64_t max_connections_per_ip = 256;
  std::uint64_t max_connections = 10'000;  // across every listener
  std::uint64_t rate_limit_per_s = 2000;   // per authenticated user
  std::uint64_t rate_limit_burst = 4000;
  std::uint64_t snapshot_every_events = 100'000;    // 0: only at shutdown
  LoginLimits login;                                // failed-login back-off, argon2id queue
  std::uint64_t tcp_login_timeout_ms = 10'000;      // binary TCP: handshake and login deadline
  std::uint64_t tcp_idle_timeout_ms = 60'000;       // binary TCP: logged in, nothing received
  std::uint64_t mark_interval_ms = 1'000;           // MarkToMarket after trades; 0 = never
  std::uint64_t tcp_out_bytes_max = 16 << 20;       // binary TCP: unsent output before a cut
  std::optional<core::EngineLimits> engine_limits;  // journaled at start when they differ
};

using nlohmann::json;

// A whole number in [min, max] under `key`; throws naming the key.
std::uint64_t whole(const json& v, const char* key, std::uint64_t min, std::uint64_t max) {
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    throw std::runtime_error(std::string(key) + " must be a whole number from " +
                             std::to_string(min) + " to " + std::to_string(max));
  }
  return v.get<std::uint64_t>();
}

std::string text(const json& v, const char* key) {
  if (!v.is_string()) throw std::runtime_error(std::string(key) + " must be a string");
  return v.get<std::string>();
}

std::map<std::string, std::string> client_users(const json& v) {
  constexpr const char* kKey = "tls_client_users";
  if (!v.is_object()) {
    throw std::runtime_error(std::string(kKey) +
                             " must be an object of certificate CN -> user name");
  }
  std::map<std::string, std::string> users;
  for (const auto& [cn, user] : v.items()) {
    if (!user.is_string() || user.get<std::string>().empty() || cn.empty()) {
      throw std::runtime_error(std::string(kKey) + " '" + cn +
                               "': the CN and the user name must be non-empty strings");
    }
    users.emplace(cn, user.get<std::string>());
  }
  return users;
}

// {"instruments", "accounts", "orders", "orders_per_account", "orders_per_level"}: absent ones 0.
core::EngineLimits engine_limits(const json& v) {
  constexpr const char* kKey = "engine_limits";
  if (!v.is_object()) throw std::runtime_error(std::string(kKey) + " must be an object");
  core::EngineLimits l;
  const auto& fields = kEngineLimitFields;
  for (const auto& item : v.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    const auto* f = std::find_if(std::begin(fields), std::end(fields),
                                 [&key](const EngineLimitField& x) { return key == x.key; });
    if (f == std::end(fields)) {
      throw std::runtime_error(std::string(kKey) + ": unknown key '" + key + "'");
    }
    const std::string name = std::string(kKey) + "." + key;
    l.*(f->member) = static_cast<std::uint32_t>(
        whole(value, name.c_str(), 0, static_cast<std::uint64_t>(f->max)));
  }
  if (!core::limits_ok(l)) {
    throw std::runtime_error(std::string(kKey) +
                             ": above the engine's maxima or its 32 GiB budget "
                             "(docs/semantics.md, \"Engine limits\")");
  }
  if (auto why = limits_too_large(core::EngineLimits{}, l)) {
    throw std::runtime_error(std::string(kKey) + ": " + *why);
  }
  return l;
}

// Every key of the config file and how it is read: a key not in this table is an error, so a
// misspelt limit cannot silently leave the default in force.
struct ConfigKey {
  const char* name;
  void (*read)(const json& value, Config& c);
};

constexpr std::uint64_t kTokenTtlMaxS = 10ULL * 366 * 24 * 3600;
constexpr ConfigKey kConfigKeys[] = {
    {"http", [](const json& v, Config& c) { c.http = text(v, "http"); }},
    {"tcp", [](const json& v, Config& c) { c.tcp = text(v, "tcp"); }},
    {"data_dir", [](const json& v, Config& c) { c.data_dir = text(v, "data_dir"); }},
    {"jwt_secret", [](const json& v, Config& c) { c.jwt_secret = text(v, "jwt_secret"); }},
    {"token_ttl_s",
     [](const json& v, Config& c) {
       c.token_ttl_s = static_cast<std::int64_t>(whole(v, "token_ttl_s", 1, kTokenTtlMaxS));
     }},
    {"max_body_bytes",
     [](const json& v, Config& c) { c.max_body_bytes = whole(v, "max_body_bytes", 1, 1 << 30); }},
    {"queue_capacity",
     [](const json& v, Config& c) { c.queue_capacity = whole(v, "queue_capacity", 1, 1 << 24); }},
    {"tls_cert", [](const json& v, Config& c) { c.tls.cert_file = text(v, "tls_cert"); }},
    {"tls_key", [](const json& v, Config& c) { c.tls.key_file = text(v, "tls_key"); }},
    {"tls_client_ca",
     [](const json& v, Config& c) { c.tls.client_ca_file = text(v, "tls_client_ca"); }},
    {"tls_crl", [](const json& v, Config& c) { c.tls.crl_file = text(v, "tls_crl"); }},
    {"tls_min_version",
     [](const json& v, Config& c) { c.tls.min_version = text(v, "tls_min_version"); }},
    {"tls_client_users", [](const json& v, Config& c) { c.tls.client_users = client_users(v); }},
    {"max_connections_per_ip",
     [](const json& v, Config& c) {
       c.max_connections_per_ip = whole(v, "max_connections_per_ip", 1, 1'000'000);
     }},
    {"max_connections",
     [](const json& v, Config& c) {
       c.max_connections = whole(v, "max_connections", 1, 1'000'000);
     }},
    {"rate_limit_per_s",
     [](const json& v, Config& c) {
       c.rate_limit_per_s = whole(v, "rate_limit_per_s", 1, kRateMax);
     }},
    {"rate_limit_burst",
     [](const json& v, Config& c) {
       c.rate_limit_burst = whole(v, "rate_limit_burst", 1, kRateMax);
     }},
    {"snapshot_every_events",
     [](const json& v, Config& c) {
       c.snapshot_every_events = whole(v, "snapshot_every_events", 0, std::uint64_t{1} << 62);
     }},
    {"login_free_failures",
     [](const json& v, Config& c) {
       c.login.free_failures = static_cast<std::uint32_t>(whole(v, "login_free_failures", 1, 1000));
     }},
    {"login_address_free_failures",
     [](const json& v, Config& c) {
       c.login.address_free_failures =
           static_cast<std::uint32_t>(whole(v, "login_address_free_failures", 1, 1'000'000));
     }},
    {"login_pending_max",
     [](const json& v, Config& c) {
       c.login.pending_max = whole(v, "login_pending_max", 1, 10'000);
     }},
    {"tcp_login_timeout_ms",
     [](const json& v, Config& c) {
       c.tcp_login_timeout_ms = whole(v, "tcp_login_timeout_ms", 100, 3'600'000);
     }},
    {"tcp_out_bytes_max",
     [](const json& v, Config& c) {
       c.tcp_out_bytes_max = whole(v, "tcp_out_bytes_max", 65'536, 1ULL << 32);
     }},
    {"tcp_idle_timeout_ms",
     [](const json& v, Config& c) {
       c.tcp_idle_timeout_ms = whole(v, "tcp_idle_timeout_ms", 100, 86'400'000);
     }},
    {"mark_interval_ms",
     [](const json& v, Config& c) {
       c.mark_interval_ms = whole(v, "mark_interval_ms", 0, 3'600'000);
     }},
    {"engine_limits", [](const json& v, Config& c) { c.engine_limits = engine_limits(v); }},
};

// Submits MarkToMarket (a) every `interval` while a liquidation ratio is set and something traded
// (or settled) since the last one, or a liquidation could not finish (the book could not take
// it), so holders who do not trade are still called; and (b) as soon as an instrument's trading
// phase is due to change (Engine::next_phase_change_ns, looked at every 100 ms), so that a call
// auction ends and uncrosses on time when nobody trades. An idle market journals nothing. Runs its
// own thread; the job itself runs on the sequencer thread.
class Marker {
 public:
  static constexpr std::chrono::milliseconds kTick{100};

  Marker(Sequencer& sequencer, std::chrono::milliseconds interval)
      : sequencer_(sequencer), interval_(interval) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Marker() { stop(); }
  Marker(const Marker&) = delete;
  Marker& operator=(const Marker&) = delete;

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    using Clock = std::chrono::steady_clock;
    auto next_mark = Clock::now() + interval_;
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::min(kTick, interval_.count() > 0 ? interval_ : kTick),
                         [this] { return stopping_; })) {
      const bool mark_round = interval_.count() > 0 && Clock::now() >= next_mark;
      if (mark_round) next_mark = Clock::now() + interval_;
      // A full queue skips this round; the next one tries again.
      (void)sequencer_.post(
          [this, mark_round](Sequencer::Ctx& c) {
            const core::Engine& e = c.engine();
            bool mark = false;
            if (mark_round) {
              const auto day = std::make_pair(e.trading_day(), e.trades_today().size());
              const bool traded = day != last_ && !e.trades_today().empty();
              mark = e.liquidation_ratio_ppb() && (traded || e.stuck_liquidations() > 0);
              last_ = day;  // only the sequencer thread reads or writes it
            }
            const auto phase = e.next_phase_change_ns();
            if (phase && *phase <= wall_clock_ns()) mark = true;
            if (mark) c.submit(core::MarkToMarket{});
            return Reply{};
          },
          [](Reply) {});
    }
  }

  static std::int64_t wall_clock_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  Sequencer& sequencer_;
  std::chrono::milliseconds interval_;
  std::pair<std::uint32_t, std::size_t> last_{};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

void parse_config_text(std::string_view text, const std::string& file, Config& c) {
  const auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::runtime_error("config file " + file + " is not a JSON object");
  }
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    const auto* k = std::find_if(std::begin(kConfigKeys), std::end(kConfigKeys),
                                 [&key](const ConfigKey& ck) { return key == ck.name; });
    if (k == std::end(kConfigKeys)) {
      throw std::runtime_error("config file " + file + ": unknown key '" + key + "'");
    }
    try {
      k->read(value, c);
    } catch (const std::exception& e) {
      throw std::runtime_error("config file " + file + ": " + e.what());
    }
  }
}

void read_config_file(const std::string& file, Config& c) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read config file " + file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  parse_config_text(text, file, c);
}

Config load_config(const ServeOptions& o) {
  Config c;
  if (o.config_file) read_config_file(*o.config_file, c);
  if (const char* s = std::getenv("QX_JWT_SECRET"); s != nullptr && *s != '\0') c.jwt_secret = s;
  if (o.data_dir) c.data_dir = *o.data_dir;
  if (o.http) c.http = *o.http;
  if (o.tcp) c.tcp = *o.tcp;
  if (o.tls_cert) c.tls.cert_file = *o.tls_cert;
  if (o.tls_key) c.tls.key_file = *o.tls_key;
  if (o.tls_client_ca) c.tls.client_ca_file = *o.tls_client_ca;
  if (o.tls_crl) c.tls.crl_file = *o.tls_crl;
  if (o.tls_min_version) c.tls.min_version = *o.tls_min_version;
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    throw std::runtime_error("TLS needs both a certificate and a key");
  }
  if (c.tls.cert_file.empty()) {
    if (!c.tls.client_ca_file.empty()) {
      throw std::runtime_error("tls_client_ca (mutual TLS) needs tls_cert and tls_key");
    }
    if (!c.tls.crl_file.empty() || !c.tls.client_users.empty() || c.tls.min_version != "1.2") {
      throw std::runtime_error(
          "tls_crl, tls_client_users and tls_min_version need tls_cert and tls_key");
    }
  }
  return c;
}

HttpOptions parse_listen(const std::string& text, std::size_t body_bytes_max) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::runtime_error("a listener wants ADDR:PORT, got '" + text + "'");
  }
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw std::runtime_error("bad port in '" + text + "'");
  }
  HttpOptions h;
  h.address = text.substr(0, colon);
  h.port = static_cast<std::uint16_t>(std::stoul(port));
  h.body_bytes_max = body_bytes_max;
  return h;
}

// Holds an exclusive flock on DATA/LOCK for the life of the process, so that a second server on
// the same data directory refuses to start instead of interleaving journal writes.
class DataDirLock {
 public:
  explicit DataDirLock(const std::filesystem::path& dir) {
    const auto path = dir / "LOCK";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path.string());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw std::runtime_error("data dir " + dir.string() + " is in use by another process");
    }
  }
  ~DataDirLock() { ::close(fd_); }
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  int fd_ = -1;
};

// The start-up log event: the effective configuration, without the JWT secret.
void log_start(const Config& c, bool demo, std::uint64_t open_files_max) {
  log_event(LogLevel::kInfo, "start",
            {{"http", c.http},
             {"tcp", c.tcp},
             {"data_dir", c.data_dir},
             {"demo", demo},
             {"tls_cert", c.tls.cert_file},
             {"tls_client_ca", c.tls.client_ca_file},
             {"tls_crl", c.tls.crl_file},
             {"tls_min_version", c.tls.min_version},
             {"tls_client_users", c.tls.client_users},
             {"token_ttl_s", c.token_ttl_s},
             {"max_body_bytes", c.max_body_bytes},
             {"queue_capacity", c.queue_capacity},
             {"max_connections_per_ip", c.max_connections_per_ip},
             {"max_connections", c.max_connections},
             {"open_files_max", open_files_max},
             {"rate_limit_per_s", c.rate_limit_per_s},
             {"rate_limit_burst", c.rate_limit_burst},
             {"snapshot_every_events", c.snapshot_every_events}});
}

template <class T>
T unwrap(replay::Result<T> r, const std::string& what) {
  if (!r) throw std::runtime_error(what + ": " + r.error().message);
  return std::move(r.value());
}

}  // namespace

namespace {

// Journals the engine limits; the engine's reason when it refuses them.
std::optional<std::string> journal_limits(Sequencer::Ctx& c, const core::EngineLimits& l) {
  for (const core::Effect& e : c.submit(core::SetLimits{l})) {
    if (e.kind == core::EffectKind::kAdminRejected) {
      return std::string(core::to_string(static_cast<core::RejectReason>(e.reason)));
    }
  }
  return std::nullopt;
}

// Raises the soft limit on open files towards the hard one, so that max_connections, not the
// distribution's default of 1024 descriptors, is what bounds the connections. Returns the soft
// limit in force (0: unknown).
std::uint64_t raise_open_files_limit(std::uint64_t connections_max) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  const rlim_t want = std::min<rlim_t>(lim.rlim_max, connections_max + 256);
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    rlimit raised = lim;
    raised.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

int serve(const ServeOptions& options, std::ostream& out) {
  // Everything the server creates (users.json with its password hashes, journal segments, the
  // LMDB snapshot store, LOCK, their directories) is for the owner only: 0600 files, 0700
  // directories, whatever the caller's umask. The process creates no file meant for others.
  ::umask(077);
  // SIGHUP reloads the TLS files once the HTTP listener runs; until then (and after it) it must
  // not end the process, which is its default action.
  std::signal(SIGHUP, SIG_IGN);
  // A write past RLIMIT_FSIZE must fail with EFBIG and be reported (sequencer_fatal), not kill
  // the process with SIGXFSZ mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  Config config = load_config(options);
  std::optional<cluster::ClusterConfig> cluster;
  std::shared_ptr<boost::asio::ssl::context> replication_tls;  // a bad file fails here, early
  if (options.cluster_file) {
    cluster = cluster::load_cluster_config(*options.cluster_file);
    replication_tls = Replicator::make_tls(*cluster);
    if (!options.http) config.http = cluster->self().http;
    if (!options.tcp) config.tcp = cluster->self().tcp;
  }
  log_start(config, options.demo, raise_open_files_limit(config.max_connections));
  if (config.jwt_secret.empty() && options.demo) config.jwt_secret = random_secret();
  if (config.jwt_secret.size() < kSecretBytesMin) {
    throw std::runtime_error(
        "no JWT secret: set QX_JWT_SECRET or jwt_secret in the config (at least 32 bytes), or "
        "use --demo");
  }
  HttpOptions listen = parse_listen(config.http, config.max_body_bytes);
  // One TLS context source for both listeners; SIGHUP (HttpServer::run_until_signal) reloads it.
  if (!config.tls.cert_file.empty()) listen.tls = std::make_shared<TlsContexts>(config.tls);
  // Outlives every listener.
  ConnectionLimiter connections(config.max_connections_per_ip, config.max_connections);
  listen.connections = &connections;
  RateLimiter rate({config.rate_limit_per_s, config.rate_limit_burst});
  const std::filesystem::path data(config.data_dir);
  const std::filesystem::path journal = data / "journal";
  std::filesystem::create_directories(data);
  const DataDirLock lock(data);

  // A cluster's follower told to cut records its new leader never had did so by restarting.
  if (cluster) {
    Replicator::apply_pending_install(data, journal, out);
    Replicator::apply_pending_cut(data, journal, out);
  }
  // Recovery: the writer cuts a torn tail first; then snapshot + tail through the engine (a
  // snapshot past the journal's end, left by a cut, is not used).
  auto writer = unwrap(replay::JournalWriter::open(journal, {}), "journal " + journal.string());
  replay::ReplayOptions ro;
  ro.use_snapshot = true;
  ro.until_seq = writer.last_seq();
  auto recovered = unwrap(replay::replay_journal(journal, ro), "recovery");
  if (recovered.engine.last_seq() != writer.last_seq()) {
    throw std::runtime_error(
        "recovery stopped at seq " + std::to_string(core::raw(recovered.engine.last_seq())) +
        " but the journal ends at " + std::to_string(core::raw(writer.last_seq())));
  }
  if (auto& t = writer.open_report().torn_tail) out << "qx serve: cut torn tail: " << *t << '\n';
  out << "qx serve: recovered last_seq=" << core::raw(recovered.engine.last_seq())
      << " state_hash=" << replay::hex64(recovered.engine.state_hash()) << " (snapshot "
      << (recovered.snapshot_seq ? std::to_string(core::raw(*recovered.snapshot_seq)) : "none")
      << ", " << recovered.events_applied << " events replayed)" << std::endl;
  log_event(
      LogLevel::kInfo, "recovered",
      {{"last_seq", core::raw(recovered.engine.last_seq())},
       {"state_hash", replay::hex64(recovered.engine.state_hash())},
       {"snapshot_seq", recovered.snapshot_seq ? nlohmann::json(core::raw(*recovered.snapshot_seq))
                                               : nlohmann::json()},
       {"events_replayed", recovered.events_applied},
       {"torn_tail", writer.open_report().torn_tail.value_or("")}});

  Metrics metrics;
  Sequencer::Options so;
  so.queue_capacity = config.queue_capacity;
  Sequencer sequencer(std::move(writer), std::move(recovered.engine), metrics, so);
  Snapshotter snapshots(journal, config.snapshot_every_events, recovered.snapshot_seq, metrics);
  sequencer.add_on_commit([&snapshots](const core::Engine& e) { snapshots.after_commit(e); });
  Auth auth(data / "users.json", config.jwt_secret, config.token_ttl_s, options.demo);
  if (options.demo && cluster) {
    // Every node logs the demo's users in; the first leader journals the demo's data.
    out << "qx serve: --demo: the first leader journals instruments, users and accounts\n";
    out << add_demo_users(auth);
  } else if (options.demo) {
    if (sequencer.engine().last_seq() == core::Seq{}) {
      out << "qx serve: --demo: journaling instruments, users and accounts\n";
      out << setup_demo(sequencer, auth);
    } else {
      out << "qx serve: --demo: journal not empty; keeping its users\n";
    }
  }

  // The engine limits of the config file: journaled when they differ from the journal's, so a
  // restart with the same file journals nothing. In a cluster the leader journals them at the
  // start of each term it leads (every node should have the same file).
  if (config.engine_limits) {
    if (auto why = limits_too_large(sequencer.engine().limits(), *config.engine_limits)) {
      throw std::runtime_error("engine_limits: " + *why);
    }
  }
  if (!cluster && config.engine_limits && *config.engine_limits != sequencer.engine().limits()) {
    sequencer.execute([&config](Sequencer::Ctx& c) {
      if (auto refused = journal_limits(c, *config.engine_limits)) {
        throw std::runtime_error("engine_limits refused by the engine: " + *refused);
      }
      return Reply{};
    });
    out << "qx serve: journaled the engine limits of the config file\n";
  }

  // The first administrator of a real deployment: QX_ADMIN_PASSWORD creates user "admin" once.
  if (const char* pw = std::getenv("QX_ADMIN_PASSWORD"); pw != nullptr && *pw != '\0') {
    // Outside --demo, a demo admin (whose password was published) is replaced too.
    const bool demo_admin = !options.demo && auth.is_demo_user("admin");
    if (!auth.has_user("admin") || demo_admin) {
      if (std::string(pw).size() < 12) {
        throw std::runtime_error("QX_ADMIN_PASSWORD must have at least 12 bytes");
      }
      if (cluster) {
        // Each node keeps its own users file; the leader journals the user at its term's start.
        auth.put_user_hashed("admin", Auth::hash_password(pw), Role::kAdmin);
      } else {
        bootstrap_admin(sequencer, auth, pw);
      }
      out << "qx serve: " << (demo_admin ? "replaced the demo" : "created user")
          << " admin (role admin) from QX_ADMIN_PASSWORD\n";
    }
  } else if (!auth.has_user("admin") && !options.demo) {
    out << "qx serve: no admin user; set QX_ADMIN_PASSWORD once to create one\n";
  }

  // K-lines: events from now on feed `klines` on the sequencer thread; a background replay of the
  // journal up to here fills the history and is then joined in (Klines::absorb_history).
  Klines klines;
  std::thread history_thread;
  sequencer.add_event_listener([&klines](const core::Event& ev, const core::EffectBuffer& fx,
                                         const core::Engine&) { klines.on_event(ev, fx); });
  LoginGate login(auth, metrics,
                  config.login);  // back-off, bounded argon2id queue: every transport's login
  Service service(sequencer, auth, metrics, login);
  service.set_klines(&klines);
  service.set_rate_limiter(&rate);
  // SIGHUP also reloads the replication port's TLS files (the replicator is made below).
  std::atomic<Replicator*> hangup_replicator{nullptr};
  listen.on_hangup = [&hangup_replicator] {
    if (Replicator* r = hangup_replicator.load()) r->reload_tls();
  };
  HttpServer http(service, metrics, listen);
  std::optional<TcpServer> tcp;
  if (config.tcp != "off") {
    const HttpOptions where = parse_listen(config.tcp, 0);
    TcpOptions to;
    to.address = where.address;
    to.port = where.port;
    to.connections = &connections;
    to.rate = &rate;
    to.tls = listen.tls;
    to.login_timeout = std::chrono::milliseconds(config.tcp_login_timeout_ms);
    to.idle_timeout = std::chrono::milliseconds(config.tcp_idle_timeout_ms);
    to.out_bytes_max = config.tcp_out_bytes_max;
    tcp.emplace(sequencer, auth, metrics, login, to);
  }
  out << "qx serve: data dir " << data.string() << '\n';
  out << "qx serve: listening on " << (http.tls() ? "https://" : "http://") << listen.address << ':'
      << http.port() << std::endl;
  if (tcp) {
    out << "qx serve: binary TCP on " << (tcp->tls() ? "tls://" : "tcp://")
        << config.tcp.substr(0, config.tcp.rfind(':')) << ':' << tcp->port() << std::endl;
    tcp->start();
  }

  const core::Seq start_seq = sequencer.engine().last_seq();
  history_thread = std::thread([&klines, &snapshots, journal, start_seq] {
    Klines history;
    replay::ReplayOptions ko;
    ko.until_seq = start_seq;
    // A journal installed from a snapshot has no trades before it: history starts there, from
    // the snapshot read under the Snapshotter's lock (LMDB is opened once per process at a time).
    std::optional<core::Snapshot> from;
    if (auto base = replay::read_journal_base(journal); base && base.value()) {
      auto found = snapshots.read(base.value()->seq);
      if (!found || !found.value().found) {
        log_event(LogLevel::kError, "klines_history_failed",
                  {{"error", found ? "no snapshot at the journal's base" : found.error().message}});
        return;
      }
      from = std::move(found.value().found->snapshot);
      ko.start_from = &*from;
    }
    ko.on_event = [&history](const core::Event& ev, const core::EffectBuffer& fx) {
      history.on_event(ev, fx);
    };
    if (core::raw(start_seq) > 0) {
      if (auto r = replay::replay_journal(journal, ko); !r) {
        log_event(LogLevel::kError, "klines_history_failed", {{"error", r.error().message}});
        return;
      }
    }
    klines.absorb_history(history);
    klines.set_complete();
    log_event(LogLevel::kInfo, "klines_history_rebuilt", {{"until_seq", core::raw(start_seq)}});
  });

  sequencer.add_on_release([&http](const core::Engine&) -> std::function<void()> {
    return [&http] { http.notify_change(); };
  });
  std::optional<Replicator> replicator;
  if (cluster) {
    const bool demo = options.demo;
    const bool admin = auth.has_user("admin") && !auth.is_demo_user("admin");
    replicator.emplace(
        *cluster, data, sequencer, snapshots, metrics,
        [demo, admin, limits = config.engine_limits](Sequencer::Ctx& c, bool first) {
          if (first && demo) journal_demo(c);
          if (limits && *limits != c.engine().limits()) {
            if (auto refused = journal_limits(c, *limits)) {
              log_event(LogLevel::kError, "engine_limits_refused", {{"reason", *refused}});
            } else {
              log_event(LogLevel::kInfo, "engine_limits_journaled", {});
            }
          }
          if (admin && !c.engine().find_user("admin")) {
            for (const core::Effect& e : c.submit(core::CreateUser{"admin"})) {
              if (e.kind == core::EffectKind::kAdminRejected) {
                log_event(LogLevel::kError, "admin_user_refused",
                          {{"reason", core::to_string(static_cast<core::RejectReason>(e.reason))}});
              }
            }
          }
        },
        replication_tls);
    service.set_cluster_status([&replicator] { return replicator->status_json(); });
    hangup_replicator = &*replicator;
    out << "qx serve: cluster " << cluster->name << " node " << cluster->node << ", replication on "
        << cluster->self().replication << std::endl;
  }
  std::thread sequencer_thread([&] { sequencer.run(); });
  if (replicator) replicator->start();
  Marker marker(sequencer, std::chrono::milliseconds(config.mark_interval_ms));
  http.run_until_signal();
  out << "qx serve: signal received, draining" << std::endl;
  marker.stop();
  hangup_replicator = nullptr;
  if (replicator) replicator->stop();
  sequencer.stop();
  sequencer_thread.join();
  http.flush_replies();
  if (tcp) tcp->stop();
  history_thread.join();

  const core::Engine& engine = sequencer.engine();
  snapshots.stop();  // before the store is opened here: LMDB is opened once per process at a time
  auto store = unwrap(replay::Store::open(journal), "store");
  if (auto st = store.put_snapshot(engine.snapshot()); !st) {
    throw std::runtime_error("snapshot: " + st.error().message);
  }
  out << "qx serve: stopped last_seq=" << core::raw(engine.last_seq())
      << " state_hash=" << replay::hex64(engine.state_hash()) << std::endl;
  log_event(LogLevel::kInfo, "stopped",
            {{"last_seq", core::raw(engine.last_seq())},
             {"state_hash", replay::hex64(engine.state_hash())}});
  return 0;
}

}  // namespace

int run_serve(const ServeOptions& options, std::ostream& out) {
  try {
    return serve(options, out);
  } catch (const std::exception& e) {
    log_event(LogLevel::kFatal, "serve_failed", {{"error", e.what()}});
    throw;
  }
}

void check_config_text(std::string_view text, const std::string& origin) {
  Config c;
  parse_config_text(text, origin, c);
}

}  // namespace qx::server
