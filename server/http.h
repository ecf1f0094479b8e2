// The HTTP/1.1 transport (Boost.Beast): accepts connections, reads one request at a time per
// connection (body limited), hands it to the Service and writes the reply when the Service calls
// back (from the sequencer thread, after the event is durable). All Asio and Beast code of the
// server lives in http.cc, behind this header, to keep compile times down.
//
//   HttpServer http(service, metrics, {"127.0.0.1", 8080, 64 << 10});
//   std::printf("listening on %u\n", http.port());   // the bound port (useful with port 0)
//   http.run_until_signal();                          // returns on SIGINT or SIGTERM;
//                                                     // SIGHUP reloads TLS files (no return)
//   ... stop the sequencer ...
//   http.flush_replies();                             // sends replies queued meanwhile
//
// Threads: one I/O thread (the caller of run_until_signal) and a pool of two for slow work
// (argon2id password checks), given to the Service as its offload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/limits.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/tls.h"

namespace qx::server {

struct HttpOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t body_bytes_max = 64 << 10;
  // When set, the listener speaks only TLS (https and wss) with the context current when each
  // connection is accepted (server/tls.h: policy, mutual TLS, reload). Shared with the binary
  // TCP listener; SIGHUP reloads it (see run_until_signal).
  std::shared_ptr<TlsContexts> tls;
  // Open connections per client address and in total, shared with other listeners (nullptr: no
  // limit). A connection over a limit is accepted and closed at once, without a reply or a TLS
  // handshake, and counted in qx_rejected_connections_total. Must outlive the server.
  ConnectionLimiter* connections = nullptr;
  // Called on SIGHUP after the listeners' TLS reload (e.g. the replication port's), on the
  // server's thread; set before run_until_signal. Must not throw.
  std::function<void()> on_hangup;
};

class HttpServer {
 public:
  // Binds and listens; throws std::runtime_error when it cannot.
  HttpServer(Service& service, Metrics& metrics, const HttpOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] bool tls() const;
  void run_until_signal();
  void flush_replies();
  // From any thread: a durable change happened; WebSocket DIFF sessions re-check their views.
  void notify_change();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qx::server
