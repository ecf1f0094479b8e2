#include "server/listen.h"

#include <stdexcept>

namespace qx::server {

void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
               std::uint16_t port) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("bad listen address '" + address + "'");
  const asio::ip::tcp::endpoint endpoint(ip, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
}

bool admit(boost::asio::ip::tcp::socket& socket, ConnectionLimiter* limiter, Metrics& metrics,
           LogThrottle& throttle, const char* listener, std::optional<ConnectionSlot>& slot) {
  if (limiter == nullptr) return true;
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) {  // the peer is gone already
    socket.close(ec);
    return false;
  }
  const std::string ip = remote.address().to_string();
  slot = limiter->try_acquire(ip);
  if (slot) return true;
  metrics.connection_refused();
  socket.close(ec);
  if (std::uint64_t suppressed = 0; throttle.allow(steady_now_ns(), suppressed)) {
    log_event(LogLevel::kWarn, "connection_refused",
              {{"listener", listener},
               {"ip", ip},
               {"reason", "max_connections_per_ip"},
               {"limit", limiter->per_key_max()},
               {"suppressed", suppressed}});
  }
  return false;
}

}  // namespace qx::server
