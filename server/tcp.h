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
// Backpressure: a session stops reading while `inflight_max` of its requests wait for the
// sequencer; a full sequencer queue answers "overloaded". A session whose unsent output passes
// `out_bytes_max` is disconnected (books are conflated per instrument first, so only execution
// reports and trades can pile up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/auth.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/sequencer.h"

namespace boost::asio::ssl {
class context;
}

namespace qx::server {

struct TcpOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9090;
  std::size_t frame_bytes_max = 64 << 10;  // largest client message
  std::size_t out_bytes_max = 16 << 20;    // unsent output before a slow reader is cut off
  std::size_t inflight_max = 1024;         // requests of one session waiting for the sequencer
  // When set, the listener speaks only TLS with this context (see server/tls.h; mutual TLS when
  // the context was made with a client CA).
  std::shared_ptr<boost::asio::ssl::context> tls;
  // Shared with the HTTP listener (nullptr: no limit). A connection over the per-address limit is
  // closed at once; a request over the user's rate gets `error` "rate_limited" and is dropped.
  ConnectionLimiter* connections = nullptr;
  RateLimiter* rate = nullptr;
};

class TcpServer {
 public:
  // Binds and listens, and registers with the sequencer; call before the sequencer thread
  // starts. Throws std::runtime_error when it cannot listen.
  TcpServer(Sequencer& sequencer, Auth& auth, Metrics& metrics, const TcpOptions& options);
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
