// The accept side shared by the server's two Asio listeners (server/http.cc, server/tcp.cc):
// binding, one accept loop, and admission under the connection limits. Internal to those two
// files, which include Asio anyway; this header keeps Asio out of every other one.
//
//   listen_on(acceptor, "127.0.0.1", 9090);            // throws with a one-line reason
//   AcceptLoop loop(acceptor, limiter, metrics, "binary_tcp",
//                   [](tcp::socket s, std::optional<ConnectionSlot> slot) { serve(...); });
//   loop.start();                                      // on the acceptor's I/O thread
//   acceptor.close();                                  // ends the loop (from that thread)
//
// Design: a failed accept never stops the loop. When the process or the system runs out of file
// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the pending connection stays in the
// kernel's backlog, so accepting again at once would fail again at once and spin a core; the
// loop waits instead, 50 ms doubling to 1 s, and starts again at 50 ms after a success. Other
// errors (a peer that reset before it was accepted) are retried at once. Every failure and every
// refused connection is logged through a LogThrottle, so neither can flood the log.
//
// Reserve: each loop holds kReserveFiles descriptors (/dev/null) while it accepts. When accept
// runs out, it closes them, so that the rest of the process (journal segments, users.json, the
// snapshot store, the sanitizers' runtime) still finds descriptors while clients hold all the
// others; it accepts again only once it could take its reserve back. So a flood of connections
// cannot starve the journal of descriptors.
//
// Admission: a connection over max_connections (in total) or max_connections_per_ip is accepted,
// closed at once without a byte or a TLS handshake, counted in qx_rejected_connections_total and
// logged as connection_refused with the limit's name as `reason`.
//
// Caveats: the loop, its acceptor and its limiter must outlive the acceptor's io_context run;
// declare the loop after the io_context (its timer belongs to it) and after the acceptor.
#pragma once

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/limits.h"
#include "server/log.h"
#include "server/metrics.h"

namespace qx::server {

// Opens, binds (reuse_address) and listens; throws std::runtime_error naming ADDR:PORT.
void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
               std::uint16_t port);

// True for the accept errors that mean "out of descriptors or memory": retry later, not now.
[[nodiscard]] bool accept_error_is_exhaustion(const boost::system::error_code& ec);

class AcceptLoop {
 public:
  // Gets each admitted socket (TCP_NODELAY set) with its slot (empty without a limiter).
  using Handler = std::function<void(boost::asio::ip::tcp::socket, std::optional<ConnectionSlot>)>;

  static constexpr std::chrono::milliseconds kBackoffMin{50};
  static constexpr std::chrono::milliseconds kBackoffMax{1000};
  static constexpr std::size_t kReserveFiles = 8;

  // `limiter` nullptr: no limits. `listener` names the listener in logs (a string literal).
  AcceptLoop(boost::asio::ip::tcp::acceptor& acceptor, ConnectionLimiter* limiter, Metrics& metrics,
             const char* listener, Handler handler);
  ~AcceptLoop();
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

  // Starts accepting; call on the acceptor's I/O thread (or before it runs).
  void start();

 private:
  void accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void on_error(const boost::system::error_code& ec);
  void wait();
  [[nodiscard]] bool take_reserve();  // false (and nothing held) when the files are not there
  void release_reserve();
  bool admit(boost::asio::ip::tcp::socket& socket, std::optional<ConnectionSlot>& slot);

  boost::asio::ip::tcp::acceptor& acceptor_;
  ConnectionLimiter* const limiter_;
  Metrics& metrics_;
  const char* const listener_;
  const Handler handler_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds backoff_ = kBackoffMin;
  std::vector<int> reserve_;  // open descriptors of /dev/null, kReserveFiles or none
  LogThrottle refused_log_{5};
  LogThrottle failed_log_{2};
};

}  // namespace qx::server
