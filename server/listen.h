// The accept side shared by the server's two Asio listeners (server/http.cc, server/tcp.cc):
// binding, and admission under the per-address connection limit. Internal to those two files,
// which include Asio anyway; this header keeps Asio out of every other one.
//
//   listen_on(acceptor, "127.0.0.1", 9090);            // throws with a one-line reason
//   std::optional<ConnectionSlot> slot;
//   if (admit(socket, limiter, metrics, throttle, "binary_tcp", slot)) serve(...);
#pragma once

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "server/limits.h"
#include "server/log.h"
#include "server/metrics.h"

namespace qx::server {

// Opens, binds (reuse_address) and listens; throws std::runtime_error naming ADDR:PORT.
void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
               std::uint16_t port);

// A place for a just-accepted socket under `limiter` (nullptr: no limit; `slot` stays empty).
// False when the peer is gone or the address has no place left: the socket is then closed, and a
// refusal is counted and logged (throttled) with the listener's name.
bool admit(boost::asio::ip::tcp::socket& socket, ConnectionLimiter* limiter, Metrics& metrics,
           LogThrottle& throttle, const char* listener, std::optional<ConnectionSlot>& slot);

}  // namespace qx::server
