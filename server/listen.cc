#include "server/listen.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "core/assert.h"

namespace qx::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void listen_on(tcp::acceptor& acceptor, const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("bad listen address '" + address + "'");
  const tcp::endpoint endpoint(ip, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
}

bool accept_error_is_exhaustion(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

AcceptLoop::AcceptLoop(tcp::acceptor& acceptor, ConnectionLimiter* limiter, Metrics& metrics,
                       const char* listener, Handler handler)
    : acceptor_(acceptor),
      limiter_(limiter),
      metrics_(metrics),
      listener_(listener),
      handler_(std::move(handler)),
      timer_(acceptor.get_executor()) {
  QX_ASSERT(listener_ != nullptr);
  QX_ASSERT(handler_ != nullptr);
  reserve_.reserve(kReserveFiles);
  (void)take_reserve();  // at start-up there are descriptors; if not, the first failure waits
}

AcceptLoop::~AcceptLoop() {
  release_reserve();
}

bool AcceptLoop::take_reserve() {
  while (reserve_.size() < kReserveFiles) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      release_reserve();  // all or nothing: a partial reserve would only take from others
      return false;
    }
    reserve_.push_back(fd);
  }
  QX_ASSERT(reserve_.size() == kReserveFiles);
  return true;
}

void AcceptLoop::release_reserve() {
  for (const int fd : reserve_) ::close(fd);
  reserve_.clear();
}

void AcceptLoop::start() {
  accept();
}

void AcceptLoop::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void AcceptLoop::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) return on_error(ec);
  backoff_ = kBackoffMin;
  if (std::optional<ConnectionSlot> slot; admit(socket, slot)) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    handler_(std::move(socket), std::move(slot));
  }
  accept();
}

// Exhaustion waits (see the header); anything else is retried at once.
void AcceptLoop::on_error(const boost::system::error_code& ec) {
  const bool exhausted = accept_error_is_exhaustion(ec);
  QX_ASSERT(backoff_ >= kBackoffMin && backoff_ <= kBackoffMax);
  if (std::uint64_t suppressed = 0; failed_log_.allow(steady_now_ns(), suppressed)) {
    log_event(exhausted ? LogLevel::kError : LogLevel::kWarn, "accept_failed",
              {{"listener", listener_},
               {"error", ec.message()},
               {"retry_ms", exhausted ? backoff_.count() : 0},
               {"suppressed", suppressed}});
  }
  if (!exhausted) return accept();
  release_reserve();  // for the rest of the process while clients hold the other descriptors
  wait();
}

// Accepts again after the backoff, once the reserve could be taken back; else waits again.
void AcceptLoop::wait() {
  QX_ASSERT(reserve_.empty());
  timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kBackoffMax);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!take_reserve()) return wait();
    accept();
  });
}

// A place for a just-accepted socket under the limits. False when the peer is gone or a limit is
// reached: the socket is then closed, and a refusal is counted and logged (throttled).
bool AcceptLoop::admit(tcp::socket& socket, std::optional<ConnectionSlot>& slot) {
  if (limiter_ == nullptr) return true;
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) {  // the peer is gone already
    socket.close(ec);
    return false;
  }
  const std::string ip = remote.address().to_string();
  ConnectionRefusal why{};
  slot = limiter_->try_acquire(ip, why);
  if (slot) return true;
  // Counted and logged before the close, so that whoever sees the close can see the refusal.
  metrics_.connection_refused();
  if (std::uint64_t suppressed = 0; refused_log_.allow(steady_now_ns(), suppressed)) {
    log_event(LogLevel::kWarn, "connection_refused",
              {{"listener", listener_},
               {"ip", ip},
               {"reason", to_string(why)},
               {"limit",
                why == ConnectionRefusal::kTotal ? limiter_->total_max() : limiter_->per_key_max()},
               {"suppressed", suppressed}});
  }
  socket.close(ec);
  return false;
}

}  // namespace qx::server
