#include "server/http.h"

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <optional>
#include <stdexcept>

namespace qx::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Service& service, Metrics& metrics, std::size_t body_bytes_max)
      : stream_(std::move(socket)),
        service_(service),
        metrics_(metrics),
        body_bytes_max_(body_bytes_max) {
    metrics_.connection_opened();
  }
  ~Session() { metrics_.connection_closed(); }

  void read() {
    parser_.emplace();
    parser_->body_limit(body_bytes_max_);
    parser_->header_limit(16 << 10);
    // A client has this long to send a whole request (idle keep-alive included).
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return write(error_reply(413, "body_too_large",
                               "the body exceeds " + std::to_string(body_bytes_max_) + " bytes"));
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout) {
      return close();
    }
    if (ec) {
      // A malformed request line or header: answer once, then close.
      keep_alive_ = false;
      return write(error_reply(400, "bad_http", ec.message()));
    }
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    Request r{std::string(req.method_string()), std::string(req.target()), req.body(),
              std::string(req[http::field::authorization]), std::chrono::steady_clock::now()};
    stream_.expires_never();  // the sequencer may take a while under load; the reply will come
    auto executor = stream_.get_executor();
    service_.handle(std::move(r), [self = shared_from_this(), executor](Reply rep) {
      asio::post(executor, [self, rep = std::move(rep)]() mutable { self->write(std::move(rep)); });
    });
  }

  void write(Reply rep) {
    metrics_.http_reply(rep.status);
    res_ = {};
    res_.result(static_cast<http::status>(rep.status));
    res_.version(version_);
    res_.set(http::field::server, "qx");
    res_.set(http::field::content_type, rep.content_type);
    res_.keep_alive(keep_alive_);
    res_.body() = std::move(rep.body);
    res_.prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || !self->keep_alive_) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  Service& service_;
  Metrics& metrics_;
  std::size_t body_bytes_max_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

}  // namespace

struct HttpServer::Impl {
  Impl(Service& s, Metrics& m, const HttpOptions& o)
      : service(s), metrics(m), options(o), acceptor(io), signals(io, SIGINT, SIGTERM) {}

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), service, metrics, options.body_bytes_max)
            ->read();
      }
      accept();
    });
  }

  Service& service;
  Metrics& metrics;
  HttpOptions options;
  asio::io_context io{1};
  asio::thread_pool pool{2};
  tcp::acceptor acceptor;
  asio::signal_set signals;
};

HttpServer::HttpServer(Service& service, Metrics& metrics, const HttpOptions& options)
    : impl_(std::make_unique<Impl>(service, metrics, options)) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) throw std::runtime_error("bad listen address '" + options.address + "'");
  const tcp::endpoint endpoint(address, options.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + options.address + ":" +
                             std::to_string(options.port) + ": " + ec.message());
  }
  service.set_offload([this](std::function<void()> f) { asio::post(impl_->pool, std::move(f)); });
}

HttpServer::~HttpServer() {
  impl_->pool.join();
}

std::uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::run_until_signal() {
  impl_->signals.async_wait([this](beast::error_code ec, int) {
    if (ec) return;
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  impl_->accept();
  impl_->io.run();
}

void HttpServer::flush_replies() {
  impl_->pool.join();
  impl_->io.restart();
  impl_->io.run_for(std::chrono::milliseconds(200));
}

}  // namespace qx::server
