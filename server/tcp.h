// The binary TCP listener of `qx serve`: length-prefixed Cap'n Proto messages
// (journals/schema/wire.capnp, framing in server/wire_frame.h).
//
//   TcpServer tcp(sequencer, auth, metrics, {"127.0.0.1", 9090});   // binds; before seq.run()
//   tcp.start();                      // its own I/O thread
//   ... run the sequencer ...
//   tcp.stop();                       // after the sequencer stopped: flushes, closes, joins
//
// Sessions decode, authenticate and check the shape of each request on the I/O thread; requests
// that read or change engine state run as sequencer jobs, and their answers are sent only after
// the batch they were in is durable. The server registers an event listener on the sequencer
// that turns effects into execution reports (for every session of the account's user, both the
// taker and the resting side of a trade) and into market data (public trades; books of the
// instruments an event touched, taken at each commit, so bursts are conflated at the source).
// Everything derived is published from the sequencer's commit callback, never before the
// journal has it.
//
// Orders, amends and cancels are decoded here and handed to the order gateway (server/gateway.h),
// which checks, authorises and submits them exactly as it does for REST and DIFF; logins go
// through the login gate (server/login.h: back-off, a bounded argon2id queue). Text fields are
// read whole (a NUL byte inside a user name is kept, and refused, never cut at).
//
// Backpressure: a session stops reading while `inflight_max` of its requests wait for the
// sequencer; a full sequencer queue answers "overloaded". A session whose unsent output (what
// waits plus what is being written, checked on every append) passes `out_bytes_max` is
// disconnected (books are conflated per instrument first).
//
// Deadlines (checked every half second): a session must finish its TLS handshake and log in
// within `login_timeout` (pings do not keep an unauthenticated session open); a logged-in
// session that sends nothing for `idle_timeout` is closed. A session's token is re-verified when
// the users file changes (logout, password change, disabled user) and at its expiry, so such a
// session is closed, with an `error` "revoked", within a second. Whatever a handler throws ends
// that session with a protocol error, never the process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/auth.h"
#include "server/limits.h"
#include "server/login.h"
#include "server/metrics.h"
#include "server/sequencer.h"
#include "server/tls.h"

namespace qx::server {

struct TcpOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9090;
  std::size_t frame_bytes_max = 64 << 10;  // largest client message
  std::size_t out_bytes_max = 16 << 20;    // unsent output before a slow reader is cut off
  std::size_t inflight_max = 1024;         // requests of one session waiting for the sequencer
  // A session must finish its TLS handshake and log in within login_timeout (pings do not count),
  // and a logged-in session that sends nothing for idle_timeout is closed (ping keeps it open).
  std::chrono::milliseconds login_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // When set, the listener speaks only TLS, with the context current when each connection is
  // accepted (see server/tls.h; mutual TLS when made with a client CA). Shared with HTTP.
  std::shared_ptr<TlsContexts> tls;
  // Shared with the HTTP listener (nullptr: no limit). A connection over the per-address limit is
  // closed at once; a request over the user's rate gets `error` "rate_limited" and is dropped.
  ConnectionLimiter* connections = nullptr;
  RateLimiter* rate = nullptr;
};

class TcpServer {
 public:
  // Binds and listens, and registers with the sequencer; call before the sequencer thread
  // starts. Throws std::runtime_error when it cannot listen.
  TcpServer(Sequencer& sequencer, Auth& auth, Metrics& metrics, LoginGate& login,
            const TcpOptions& options);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] bool tls() const;
  void start();
  // Stops accepting, sends what is queued (up to a short grace period), closes every session
  // and joins the I/O thread. Call after the sequencer thread has stopped.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qx::server
