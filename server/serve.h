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
// SIGHUP re-reads the TLS certificate, key, client CA and CRL files for new connections (open
// ones stay); a failed reload keeps the old files in force; without TLS it does nothing.
//
// Files: the process runs with umask 077, so everything it creates under the data directory
// (users.json, journal segments, the LMDB snapshot store, LOCK) is 0600 and every directory 0700.
//
// Config file (JSON object, every key optional; a key not listed here, or a value of the wrong
// type or out of range, is a start-up error naming the key):
//   {"http": "127.0.0.1:8080", "tcp": "127.0.0.1:9090", "data_dir": "./qx-data",
//    "jwt_secret": "...", "token_ttl_s": 3600, "max_body_bytes": 65536, "queue_capacity": 4096,
//    "tls_cert": "cert.pem", "tls_key": "key.pem", "tls_client_ca": "clients-ca.pem",
//    "tls_crl": "clients-crl.pem", "tls_min_version": "1.2",
//    "tls_client_users": {"desk-7.example": "alice"},
//    "max_connections_per_ip": 256, "max_connections": 10000,
//    "rate_limit_per_s": 2000, "rate_limit_burst": 4000, "snapshot_every_events": 100000}
//
// TLS (server/tls.h): TLS 1.2+ with forward-secret AEAD suites only; tls_min_version "1.3" for
// TLS 1.3 only. tls_client_ca (with tls_cert and tls_key): mutual TLS; the listener requires a
// client certificate signed by a CA in that PEM bundle and refuses the handshake otherwise.
// tls_crl (with tls_client_ca): PEM CRLs, one for each client CA; a revoked client certificate
// fails the handshake. tls_client_users (with tls_client_ca): client certificate CN -> user name;
// a certificate whose CN is not a key fails the handshake, and one that is maps the connection
// to that user (certificate_user()).
// max_connections_per_ip: open connections per client address; max_connections: open
// connections of both listeners together (1 to 1,000,000). One more is accepted and closed at
// once (no reply). rate_limit_per_s, rate_limit_burst: a token bucket per authenticated user;
// an empty bucket answers 429 without reaching the engine (server/limits.h). Each is 1 or more.
// snapshot_every_events: after a commit that brings the journal this many events past the last
// snapshot, a snapshot is taken and written by a background thread (server/snapshots.h); 0 stores
// one only at shutdown.
//
// Outside --demo the server refuses to start without a JWT secret of at least 32 bytes.
//
// Output: the human lines above ("listening on", "recovered ...", "stopped ...", the demo
// credentials) go to `out`; stderr carries structured JSON lines (server/log.h): start (the
// config without secrets, and open_files_max: the limit on open files, raised towards the hard
// limit to fit max_connections), recovered, listening, connection_refused (reason
// max_connections_per_ip or max_connections), accept_failed, tls_handshake_failed, tls_reloaded,
// tls_reload_failed, tls_reload_skipped, http_5xx, job_failed, sequencer_fatal, snapshot_written,
// snapshot_failed, shutdown_requested, stopped and serve_failed.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace qx::server {

struct ServeOptions {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> http;      // ADDR:PORT; port 0 picks a free port (printed)
  std::optional<std::string> tcp;       // ADDR:PORT of the binary protocol, or "off"
  std::optional<std::string> tls_cert;  // PEM certificate chain; with tls_key: https and wss only
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_client_ca;    // PEM CA bundle: require client certificates (mTLS)
  std::optional<std::string> tls_crl;          // PEM CRLs of client certificates (with mTLS)
  std::optional<std::string> tls_min_version;  // "1.2" (default) or "1.3"
  // A cluster file (cluster/config.h, docs/cluster.md): this process is one node of a replicated
  // exchange. Its http and tcp addresses come from the file unless given here.
  std::optional<std::string> cluster_file;
  bool demo = false;
};

// Reads the keys and values of a config file's JSON text as run_serve reads --config (not the
// checks across keys and command-line options that follow, e.g. TLS files in pairs); throws
// std::runtime_error with one line starting "config file <origin>" when one is not valid.
void check_config_text(std::string_view text, const std::string& origin);

// Returns the exit code; throws std::runtime_error with a one-line reason on start-up failure
// (after logging it as a serve_failed event).
int run_serve(const ServeOptions& options, std::ostream& out);

}  // namespace qx::server
