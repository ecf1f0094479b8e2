// `qx serve`: the exchange as a network service.
//
//   qx serve --demo --data-dir ./qx-data --http 127.0.0.1:8080
//
// Start-up: read the config (built-in defaults, then --config FILE, then QX_JWT_SECRET from the
// environment, then command-line options), open the journal (cutting a torn tail), recover the
// engine from the newest valid snapshot plus the journal's tail (replay/), and print
// "recovered last_seq=N state_hash=H". With --demo on an empty journal, journal the demo's
// instruments, users and funded accounts. Then serve HTTP (REST, WebSocket DIFF, metrics) and the
// binary TCP protocol (server/tcp.h; "tcp": "off" disables it) until SIGINT or SIGTERM, drain the
// sequencer's queue, commit, store a snapshot, print "stopped last_seq=N state_hash=H" and exit 0.
//
// Config file (JSON, every key optional):
//   {"http": "127.0.0.1:8080", "tcp": "127.0.0.1:9090", "data_dir": "./qx-data", "jwt_secret":
//   "...",
//    "token_ttl_s": 3600, "max_body_bytes": 65536, "queue_capacity": 4096,
//    "tls_cert": "cert.pem", "tls_key": "key.pem", "tls_client_ca": "clients-ca.pem",
//    "max_connections_per_ip": 256, "rate_limit_per_s": 2000, "rate_limit_burst": 4000,
//    "snapshot_every_events": 100000}
//
// tls_client_ca (with tls_cert and tls_key): mutual TLS; the listener requires a client
// certificate signed by a CA in that PEM bundle and refuses the handshake otherwise.
// max_connections_per_ip: open connections per client address; one more is accepted and closed
// at once (no reply). rate_limit_per_s, rate_limit_burst: a token bucket per authenticated user;
// an empty bucket answers 429 without reaching the engine (server/limits.h). Each is 1 or more.
// snapshot_every_events: after a commit that brings the journal this many events past the last
// snapshot, a snapshot is taken and written by a background thread (server/snapshots.h); 0 stores
// one only at shutdown.
//
// Outside --demo the server refuses to start without a JWT secret of at least 32 bytes.
//
// Output: the human lines above ("listening on", "recovered ...", "stopped ...", the demo
// credentials) go to `out`; stderr carries structured JSON lines (server/log.h): start (the
// config without secrets), recovered, listening, connection_refused, tls_handshake_failed,
// http_5xx, job_failed, sequencer_fatal, snapshot_written, snapshot_failed, shutdown_requested,
// stopped and serve_failed.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace qx::server {

struct ServeOptions {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> http;      // ADDR:PORT; port 0 picks a free port (printed)
  std::optional<std::string> tcp;       // ADDR:PORT of the binary protocol, or "off"
  std::optional<std::string> tls_cert;  // PEM certificate chain; with tls_key: https and wss only
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_client_ca;  // PEM CA bundle: require client certificates (mTLS)
  bool demo = false;
};

// Returns the exit code; throws std::runtime_error with a one-line reason on start-up failure
// (after logging it as a serve_failed event).
int run_serve(const ServeOptions& options, std::ostream& out);

}  // namespace qx::server
