#include "server/serve.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/klines.h"
#include "server/limits.h"
#include "server/log.h"
#include "server/metrics.h"
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
  std::string tls_cert, tls_key;
  std::string tls_client_ca;  // PEM CA bundle: clients must present a certificate it signed
  std::uint64_t max_connections_per_ip = 256;
  std::uint64_t rate_limit_per_s = 2000;  // per authenticated user
  std::uint64_t rate_limit_burst = 4000;
  std::uint64_t snapshot_every_events = 100'000;  // 0: only at shutdown
};

// A whole number in [min, max] under `key`, or `fallback` when the key is absent.
std::uint64_t limit_value(const nlohmann::json& j, const char* key, std::uint64_t fallback,
                          std::uint64_t max, std::uint64_t min = 1) {
  if (!j.contains(key)) return fallback;
  const auto& v = j[key];
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    throw std::runtime_error(std::string(key) + " must be a whole number from " +
                             std::to_string(min) + " to " + std::to_string(max));
  }
  return v.get<std::uint64_t>();
}

Config load_config(const ServeOptions& o) {
  Config c;
  if (o.config_file) {
    std::ifstream in(*o.config_file);
    if (!in) throw std::runtime_error("cannot read config file " + *o.config_file);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw std::runtime_error("config file " + *o.config_file + " is not a JSON object");
    }
    try {
      c.http = j.value("http", c.http);
      c.tcp = j.value("tcp", c.tcp);
      c.data_dir = j.value("data_dir", c.data_dir);
      c.jwt_secret = j.value("jwt_secret", c.jwt_secret);
      c.token_ttl_s = j.value("token_ttl_s", c.token_ttl_s);
      c.max_body_bytes = j.value("max_body_bytes", c.max_body_bytes);
      c.queue_capacity = j.value("queue_capacity", c.queue_capacity);
      c.tls_cert = j.value("tls_cert", c.tls_cert);
      c.tls_key = j.value("tls_key", c.tls_key);
      c.tls_client_ca = j.value("tls_client_ca", c.tls_client_ca);
      c.max_connections_per_ip =
          limit_value(j, "max_connections_per_ip", c.max_connections_per_ip, 1'000'000);
      c.rate_limit_per_s = limit_value(j, "rate_limit_per_s", c.rate_limit_per_s, kRateMax);
      c.rate_limit_burst = limit_value(j, "rate_limit_burst", c.rate_limit_burst, kRateMax);
      c.snapshot_every_events = limit_value(j, "snapshot_every_events", c.snapshot_every_events,
                                            std::uint64_t{1} << 62, 0);
    } catch (const std::exception& e) {
      throw std::runtime_error("config file " + *o.config_file + ": " + e.what());
    }
    if (c.token_ttl_s <= 0 || c.max_body_bytes == 0 || c.queue_capacity == 0) {
      throw std::runtime_error("config file " + *o.config_file + ": limits must be positive");
    }
  }
  if (const char* s = std::getenv("QX_JWT_SECRET"); s != nullptr && *s != '\0') c.jwt_secret = s;
  if (o.data_dir) c.data_dir = *o.data_dir;
  if (o.http) c.http = *o.http;
  if (o.tcp) c.tcp = *o.tcp;
  if (o.tls_cert) c.tls_cert = *o.tls_cert;
  if (o.tls_key) c.tls_key = *o.tls_key;
  if (o.tls_client_ca) c.tls_client_ca = *o.tls_client_ca;
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    throw std::runtime_error("TLS needs both a certificate and a key");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    throw std::runtime_error("tls_client_ca (mutual TLS) needs tls_cert and tls_key");
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
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
void log_start(const Config& c, bool demo) {
  log_event(LogLevel::kInfo, "start",
            {{"http", c.http},
             {"tcp", c.tcp},
             {"data_dir", c.data_dir},
             {"demo", demo},
             {"tls_cert", c.tls_cert},
             {"tls_client_ca", c.tls_client_ca},
             {"token_ttl_s", c.token_ttl_s},
             {"max_body_bytes", c.max_body_bytes},
             {"queue_capacity", c.queue_capacity},
             {"max_connections_per_ip", c.max_connections_per_ip},
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

int serve(const ServeOptions& options, std::ostream& out) {
  Config config = load_config(options);
  log_start(config, options.demo);
  if (config.jwt_secret.empty() && options.demo) config.jwt_secret = random_secret();
  if (config.jwt_secret.size() < kSecretBytesMin) {
    throw std::runtime_error(
        "no JWT secret: set QX_JWT_SECRET or jwt_secret in the config (at least 32 bytes), or "
        "use --demo");
  }
  HttpOptions listen = parse_listen(config.http, config.max_body_bytes);
  listen.tls_cert_file = config.tls_cert;
  listen.tls_key_file = config.tls_key;
  listen.tls_client_ca_file = config.tls_client_ca;
  ConnectionLimiter connections(config.max_connections_per_ip);  // outlives every listener
  listen.connections = &connections;
  RateLimiter rate({config.rate_limit_per_s, config.rate_limit_burst});
  const std::filesystem::path data(config.data_dir);
  const std::filesystem::path journal = data / "journal";
  std::filesystem::create_directories(data);
  const DataDirLock lock(data);

  // Recovery: the writer cuts a torn tail first; then snapshot + tail through the engine.
  auto writer = unwrap(replay::JournalWriter::open(journal, {}), "journal " + journal.string());
  replay::ReplayOptions ro;
  ro.use_snapshot = true;
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
  Auth auth(data / "users.json", config.jwt_secret, config.token_ttl_s);
  if (options.demo) {
    if (sequencer.engine().last_seq() == core::Seq{}) {
      out << "qx serve: --demo: journaling instruments, users and accounts\n";
      out << setup_demo(sequencer, auth);
    } else {
      out << "qx serve: --demo: journal not empty; keeping its users\n";
    }
  }

  // The first administrator of a real deployment: QX_ADMIN_PASSWORD creates user "admin" once.
  if (const char* pw = std::getenv("QX_ADMIN_PASSWORD"); pw != nullptr && *pw != '\0') {
    if (!auth.has_user("admin")) {
      if (std::string(pw).size() < 12) {
        throw std::runtime_error("QX_ADMIN_PASSWORD must have at least 12 bytes");
      }
      bootstrap_admin(sequencer, auth, pw);
      out << "qx serve: created user admin (role admin) from QX_ADMIN_PASSWORD\n";
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
  Service service(sequencer, auth, metrics);
  service.set_klines(&klines);
  service.set_rate_limiter(&rate);
  HttpServer http(service, metrics, listen);
  std::optional<TcpServer> tcp;
  if (config.tcp != "off") {
    const HttpOptions where = parse_listen(config.tcp, 0);
    TcpOptions to;
    to.address = where.address;
    to.port = where.port;
    to.connections = &connections;
    to.rate = &rate;
    if (!config.tls_cert.empty()) {
      to.tls = make_server_tls(config.tls_cert, config.tls_key, config.tls_client_ca);
    }
    tcp.emplace(sequencer, auth, metrics, to);
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
  history_thread = std::thread([&klines, journal, start_seq] {
    Klines history;
    replay::ReplayOptions ko;
    ko.until_seq = start_seq;
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

  sequencer.add_on_commit([&http](const core::Engine&) { http.notify_change(); });
  std::thread sequencer_thread([&] { sequencer.run(); });
  http.run_until_signal();
  out << "qx serve: signal received, draining" << std::endl;
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

}  // namespace qx::server
