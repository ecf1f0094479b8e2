#include "server/http.h"

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <csignal>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "server/diff.h"
#include "server/listen.h"
#include "server/log.h"
#include "server/tls.h"

namespace qx::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using nlohmann::json;
using tcp = asio::ip::tcp;

namespace {

// Log lines that a client can cause at will, each throttled (see server/log.h).
struct ClientLogs {
  LogThrottle handshake{5};
  LogThrottle replies_5xx{10};
};

// A DIFF session on /ws/diff: JSON text frames with an "aid". The client logs in (Authorization
// header on the upgrade, or req_login), subscribes quotes and sends peek_message; the server
// answers each peek with {"aid": "rtn_data", "data": [merge patch]} as soon as the session's view
// (its accounts, positions, orders, trades and subscribed quotes) differs from what it last sent,
// waiting for the next durable change when nothing differs. req_login, insert_order and
// cancel_order go through the same Service routes as REST (login gate, order gateway), so the
// same checks, limits and durability apply.
//
// Hostile input: every field is read by type (a wrong type is a notify 400, never an exception);
// anything that still throws ends this session only. Output is capped in bytes (what waits plus
// what is being written, checked on every append): a client that stops reading is cut, not
// buffered for. The token is re-verified when the users file changes and at its expiry, so a
// logout, password change or disabled user closes the session within a second.
// What the server keeps of a WebSocket session, whatever its stream.
class WsBase {
 public:
  virtual ~WsBase() = default;
  virtual void changed() = 0;
  virtual void tick(std::int64_t now_s, std::uint64_t auth_revision) = 0;
};

// A DIFF field of the wanted type, or nullopt (absent or another type).
std::optional<std::string> string_at(const json& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

template <class Stream>
class WsSession : public WsBase, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  static constexpr std::size_t kOutBytesMax = 8 << 20;
  static constexpr std::size_t kChartsMax = 16;
  static constexpr const char* kLogInFirst = "log in first (req_login or an Authorization header)";

  WsSession(Stream stream, Service& service, Metrics& metrics, std::optional<ConnectionSlot> slot,
            std::string peer_ip, std::optional<std::string> cert_user)
      : ws_(std::move(stream)),
        service_(service),
        metrics_(metrics),
        slot_(std::move(slot)),
        peer_ip_(std::move(peer_ip)),
        cert_user_(std::move(cert_user)) {
    metrics_.connection_opened();
  }
  ~WsSession() { metrics_.connection_closed(); }

  void start(http::request<http::string_body> req) {
    login_with(bearer_token(std::string(req[http::field::authorization])));
    ws_.read_message_max(64 << 10);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->read();
    });
  }

  // A durable change happened: a parked peek may now have something to send.
  void changed() override {
    guarded([&] {
      if (view_inflight_) {
        recheck_ = true;
        return;
      }
      refresh();
    });
  }

  void tick(std::int64_t now_s, std::uint64_t auth_revision) override {
    if (closed_ || !who_) return;
    if (auth_revision == auth_revision_ && now_s < who_->expires_s) return;
    auth_revision_ = auth_revision;
    if (!service_.verify(token_)) end("revoked", "the session's token was revoked or expired");
  }

 private:
  // Runs one handler step; whatever escapes it ends this session, never the process.
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      end("error", std::string("the session failed: ") + e.what());
    }
  }

  void login_with(const std::string& token) {
    if (token.empty()) return;
    auto p = service_.verify(token);
    if (!p) return;
    if (cert_user_ && *cert_user_ != p->user) return;
    who_ = p;
    token_ = token;
    auth_revision_ = 0;  // re-checked at the next tick
  }

  void read() {
    ws_.async_read(buf_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->closed_) return;  // closed, timed out or too large: the session ends
      std::string text = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      self->guarded([&] { self->on_message(text); });
      if (!self->closed_) self->read();
    });
  }

  void notify(unsigned code, const std::string& content) {
    json n{{"type", "MESSAGE"},
           {"level", code == 0 ? "INFO" : "ERROR"},
           {"code", code},
           {"content", content}};
    send(json{{"aid", "rtn_data"}, {"data", json::array({{{"notify", {{"n", n}}}}})}}.dump(
        -1, ' ', false, json::error_handler_t::replace));
  }

  // Closes the session at once (a client that stopped reading could not take a close frame),
  // counted by cause and logged (throttled) with the reason.
  void end(const char* cause, const std::string& why) {
    if (closed_) return;
    metrics_.ws_disconnect(cause);
    static LogThrottle throttle(5);
    if (std::uint64_t dropped = 0; throttle.allow(steady_now_ns(), dropped)) {
      log_event(LogLevel::kWarn, "ws_session_closed",
                {{"cause", cause},
                 {"reason", why},
                 {"user", who_ ? who_->user : ""},
                 {"ip", peer_ip_},
                 {"suppressed", dropped}});
    }
    closed_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  // Runs a REST route for this session; the reply comes back on the I/O thread.
  void call(const std::string& method, const std::string& target, json body,
            std::function<void(WsSession&, Reply)> then) {
    Request r{method,
              target,
              body.dump(-1, ' ', false, json::error_handler_t::replace),
              token_.empty() ? "" : "Bearer " + token_,
              std::chrono::steady_clock::now(),
              peer_ip_,
              cert_user_};
    auto executor = ws_.get_executor();
    service_.handle(std::move(r), [self = this->shared_from_this(), executor, then](Reply rep) {
      asio::post(executor, [self, then, rep = std::move(rep)]() mutable {
        self->guarded([&] { then(*self, rep); });
      });
    });
  }

  void on_message(const std::string& text) {
    DiffMessage m = decode_diff_message(text);
    if (auto* r = std::get_if<DiffRefused>(&m)) {
      if (r->needs_login && !who_) return notify(401, kLogInFirst);
      return notify(r->code, r->message);
    }
    if (std::holds_alternative<DiffPing>(m)) return send(R"({"aid":"pong"})");
    if (auto* l = std::get_if<DiffLogin>(&m)) {
      if (who_) return notify(400, "already logged in");
      return call(
          "POST", "/api/auth/login", std::move(l->body), [](WsSession& s, const Reply& rep) {
            json r = json::parse(rep.body, nullptr, false);
            if (rep.status == 200 && r.is_object() && string_at(r, "token")) {
              s.login_with(*string_at(r, "token"));
              s.notify(0, "login success");
              s.refresh();
            } else {
              s.notify(rep.status, "login failed: " + (r.is_object() && string_at(r, "message")
                                                           ? *string_at(r, "message")
                                                           : std::string("unknown error")));
            }
          });
    }
    if (!who_) return notify(401, kLogInFirst);
    if (std::holds_alternative<DiffPeek>(m)) {
      peek_pending_ = true;
      return refresh();
    }
    if (auto* q = std::get_if<DiffSubscribeQuote>(&m)) {
      quotes_ = std::move(q->codes);
      return refresh();
    }
    if (auto* c = std::get_if<DiffSetChart>(&m)) return set_chart(*c);
    if (auto* o = std::get_if<DiffOrder>(&m)) return order(*o);
  }

  void set_chart(const DiffSetChart& c) {
    if (!c.code) {
      charts_.erase(c.id);
      return refresh();
    }
    if (charts_.size() >= kChartsMax && charts_.count(c.id) == 0) {
      return notify(400,
                    "set_chart wants an instrument code, duration 60e9, 300e9 or 86400e9 ns, "
                    "view_width 1..2000, at most 16 charts");
    }
    charts_[c.id] = Service::Chart{*c.code, c.period, c.width};
    refresh();
  }

  // insert_order / cancel_order, renamed to the REST API's fields; the route checks every one.
  void order(DiffOrder& o) {
    call("POST", o.target, std::move(o.body), [](WsSession& s, const Reply& rep) {
      json r = json::parse(rep.body, nullptr, false);
      if (rep.status != 200) {
        s.notify(rep.status, r.is_object() && string_at(r, "message")
                                 ? *string_at(r, "message")
                                 : std::string("the request failed"));
      } else if (r.is_object() && r.value("status", json()) == "REJECTED") {
        s.notify(1, "rejected: " + string_at(r, "reason").value_or(""));
      }
    });
  }

  void refresh() {
    if (!peek_pending_ || view_inflight_ || !who_ || closed_) return;
    view_inflight_ = true;
    recheck_ = false;
    auto executor = ws_.get_executor();
    std::vector<Service::Chart> charts;
    for (const auto& [id, chart] : charts_) charts.push_back(chart);
    service_.diff_view(
        *who_, quotes_, std::move(charts), [self = this->shared_from_this(), executor](Reply rep) {
          asio::post(executor,
                     [self, rep = std::move(rep)] { self->guarded([&] { self->on_view(rep); }); });
        });
  }

  void on_view(const Reply& rep) {
    view_inflight_ = false;
    json view = json::parse(rep.body, nullptr, false);
    if (rep.status == 200 && view.is_object()) {
      json patch = merge_diff(last_, view);
      if (!patch.empty() && peek_pending_) {
        last_ = std::move(view);
        peek_pending_ = false;
        // The seq of the state the patch brings the view to (a cluster's follower lags).
        if (rep.seq != 0) patch["seq"] = rep.seq;
        send(json{{"aid", "rtn_data"}, {"data", json::array({patch})}}.dump(
            -1, ' ', false, json::error_handler_t::replace));
      }
    }
    if (recheck_) refresh();
  }

  void send(std::string text) {
    if (closed_) return;
    // What waits plus the message being written (it stays at the front until written).
    if (out_bytes_ + text.size() > kOutBytesMax) {
      return end("slow_consumer", "unsent output over the cap");
    }
    out_bytes_ += text.size();
    outq_.push_back(std::move(text));
    if (outq_.size() == 1) write();
  }

  void write() {
    ws_.text(true);
    ws_.async_write(asio::buffer(outq_.front()),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec || self->closed_) return;
                      self->out_bytes_ -= self->outq_.front().size();
                      self->outq_.pop_front();
                      if (!self->outq_.empty()) self->write();
                    });
  }

  websocket::stream<Stream> ws_;
  Service& service_;
  Metrics& metrics_;
  std::optional<ConnectionSlot> slot_;  // the connection's place under max_connections_per_ip
  std::string peer_ip_;
  std::optional<std::string> cert_user_;  // the client certificate's user (tls_client_users)
  beast::flat_buffer buf_;
  std::deque<std::string> outq_;
  std::size_t out_bytes_ = 0;
  std::optional<Principal> who_;
  std::string token_;
  std::uint64_t auth_revision_ = 0;
  std::vector<std::string> quotes_;
  std::map<std::string, Service::Chart> charts_;  // by chart_id
  json last_ = json::object();
  bool peek_pending_ = false;
  bool view_inflight_ = false;
  bool recheck_ = false;
  bool closed_ = false;
};

template <class Stream>
using Upgrade =
    std::function<void(Stream, http::request<http::string_body>, std::optional<ConnectionSlot>,
                       std::string peer_ip, std::optional<std::string> cert_user)>;

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Session(Stream stream, Service& service, Metrics& metrics, ClientLogs& logs,
          std::size_t body_bytes_max, Upgrade<Stream> upgrade, std::optional<ConnectionSlot> slot,
          const TlsSettings* tls)
      : stream_(std::move(stream)),
        tls_(tls),
        slot_(std::move(slot)),
        upgrade_(std::move(upgrade)),
        service_(service),
        metrics_(metrics),
        logs_(logs),
        body_bytes_max_(body_bytes_max) {
    metrics_.connection_opened();
  }
  ~Session() { metrics_.connection_closed(); }

  void start() {
    peer_ip_ = peer_ip();
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec) {
              self->log_handshake_failure(ec);
              return self->close();
            }
            if (self->tls_ != nullptr) {
              self->cert_user_ = certificate_user(*self->tls_, self->stream_.native_handle());
            }
            self->read();
          });
    } else {
      read();
    }
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(body_bytes_max_);
    parser_->header_limit(16 << 10);
    // A client has this long to send a whole request (idle keep-alive included).
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       try {
                         self->on_read(ec);
                       } catch (const std::exception&) {
                         self->close();  // ends this connection, never the process
                       }
                     });
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
    if (websocket::is_upgrade(req) && req.target() == "/ws/diff") {
      beast::get_lowest_layer(stream_).expires_never();
      return upgrade_(std::move(stream_), parser_->release(), std::move(slot_), peer_ip_,
                      cert_user_);
    }
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    method_ = std::string(req.method_string());
    target_ = std::string(req.target().substr(0, 256));
    Request r{std::string(req.method_string()),
              std::string(req.target()),
              req.body(),
              std::string(req[http::field::authorization]),
              std::chrono::steady_clock::now(),
              peer_ip_,
              cert_user_};
    beast::get_lowest_layer(stream_)
        .expires_never();  // the sequencer may take a while under load; the reply will come
    auto executor = stream_.get_executor();
    service_.handle(std::move(r), [self = this->shared_from_this(), executor](Reply rep) {
      asio::post(executor, [self, rep = std::move(rep)]() mutable { self->write(std::move(rep)); });
    });
  }

  void write(Reply rep) {
    metrics_.http_reply(rep.status);
    if (rep.status >= 500) log_5xx(rep);
    res_ = {};
    res_.result(static_cast<http::status>(rep.status));
    res_.version(version_);
    res_.set(http::field::server, "qx");
    res_.set(http::field::content_type, rep.content_type);
    // The seq of the state the answer reflects (reads on a cluster's follower lag the leader).
    if (rep.seq != 0) res_.set("X-QX-Seq", std::to_string(rep.seq));
    res_.keep_alive(keep_alive_);
    res_.body() = std::move(rep.body);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_write(stream_, res_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || !self->keep_alive_) return self->close();
                        self->read();
                      });
  }

  std::string peer_ip() {
    beast::error_code ec;
    const auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    return ec ? std::string() : remote.address().to_string();
  }

  void log_handshake_failure(const beast::error_code& ec) {
    std::uint64_t suppressed = 0;
    if (!logs_.handshake.allow(steady_now_ns(), suppressed)) return;
    log_event(LogLevel::kWarn, "tls_handshake_failed",
              {{"listener", "http"},
               {"ip", peer_ip()},
               {"reason", ec.message()},
               {"suppressed", suppressed}});
  }

  void log_5xx(const Reply& rep) {
    std::uint64_t suppressed = 0;
    if (!logs_.replies_5xx.allow(steady_now_ns(), suppressed)) return;
    const auto body = nlohmann::json::parse(rep.body, nullptr, false);
    const bool structured = body.is_object() && body.contains("error");
    log_event(LogLevel::kError, "http_5xx",
              {{"status", rep.status},
               {"method", method_},
               {"target", target_},
               {"ip", peer_ip()},
               {"error", structured ? body["error"] : nlohmann::json()},
               {"message", structured ? body.value("message", nlohmann::json()) : nlohmann::json()},
               {"suppressed", suppressed}});
  }

  void close() {
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
  }

  Stream stream_;
  const TlsSettings* tls_;  // nullptr without TLS
  std::string peer_ip_;
  std::optional<std::string> cert_user_;  // the client certificate's user (tls_client_users)
  std::optional<ConnectionSlot> slot_;    // moves to the WebSocket session on an upgrade
  Upgrade<Stream> upgrade_;
  Service& service_;
  Metrics& metrics_;
  ClientLogs& logs_;
  std::size_t body_bytes_max_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  std::string method_, target_;  // of the request being answered, for the log
};

}  // namespace

struct HttpServer::Impl {
  Impl(Service& s, Metrics& m, const HttpOptions& o)
      : service(s),
        metrics(m),
        options(o),
        acceptor(io),
        loop(acceptor, o.connections, m, "http",
             [this](tcp::socket socket, std::optional<ConnectionSlot> slot) {
               if (options.tls) {
                 serve(beast::ssl_stream<beast::tcp_stream>(std::move(socket),
                                                            *options.tls->current()),
                       std::move(slot));
               } else {
                 serve(beast::tcp_stream(std::move(socket)), std::move(slot));
               }
             }),
        signals(io, SIGINT, SIGTERM),
        hangups(io, SIGHUP) {}

  template <class Stream>
  void serve(Stream stream, std::optional<ConnectionSlot> slot) {
    auto upgrade = [this](Stream s, http::request<http::string_body> req,
                          std::optional<ConnectionSlot> ws_slot, std::string ip,
                          std::optional<std::string> cert_user) {
      auto ws = std::make_shared<WsSession<Stream>>(
          std::move(s), service, metrics, std::move(ws_slot), std::move(ip), std::move(cert_user));
      ws_sessions.push_back(ws);
      ws->start(std::move(req));
    };
    std::make_shared<Session<Stream>>(std::move(stream), service, metrics, logs,
                                      options.body_bytes_max, std::move(upgrade), std::move(slot),
                                      options.tls ? &options.tls->settings() : nullptr)
        ->start();
  }

  // The shared accept loop (server/listen.h): limits, backoff when out of descriptors.
  void accept() { loop.start(); }

  // SIGHUP: the TLS files are read again for new connections; open ones keep their context. A
  // failed reload keeps the old context. Re-arms itself until the wait is cancelled.
  void on_hangup() {
    hangups.async_wait([this](beast::error_code ec, int) {
      if (ec) return;
      if (!options.tls) {
        log_event(LogLevel::kInfo, "tls_reload_skipped", {{"reason", "no TLS configured"}});
      } else {
        const auto& t = options.tls->settings();
        try {
          options.tls->reload();
          log_event(LogLevel::kInfo, "tls_reloaded",
                    {{"cert", t.cert_file}, {"client_ca", t.client_ca_file}, {"crl", t.crl_file}});
        } catch (const std::exception& e) {
          log_event(LogLevel::kError, "tls_reload_failed", {{"error", e.what()}});
        }
      }
      if (options.on_hangup) options.on_hangup();
      on_hangup();
    });
  }

  // Token revocation and expiry of WebSocket sessions, every half second.
  void tick() {
    ticker.expires_after(std::chrono::milliseconds(500));
    ticker.async_wait([this](beast::error_code ec) {
      if (ec) return;
      const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
      const std::uint64_t revision = service.auth_revision();
      std::erase_if(ws_sessions, [](const std::weak_ptr<WsBase>& w) { return w.expired(); });
      for (auto& w : ws_sessions) {
        if (auto ws = w.lock()) ws->tick(now_s, revision);
      }
      tick();
    });
  }

  Service& service;
  Metrics& metrics;
  HttpOptions options;
  asio::io_context io{1};
  asio::steady_timer ticker{io};
  tcp::acceptor acceptor;
  AcceptLoop loop;  // after the io_context and the acceptor it uses
  asio::signal_set signals;
  asio::signal_set hangups;                        // SIGHUP: reload TLS files (never fatal)
  std::vector<std::weak_ptr<WsBase>> ws_sessions;  // I/O thread only
  ClientLogs logs;
};

HttpServer::HttpServer(Service& service, Metrics& metrics, const HttpOptions& options)
    : impl_(std::make_unique<Impl>(service, metrics, options)) {
  listen_on(impl_->acceptor, options.address, options.port);
}

HttpServer::~HttpServer() = default;

bool HttpServer::tls() const {
  return impl_->options.tls != nullptr;
}

std::uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::run_until_signal() {
  impl_->signals.async_wait([this](beast::error_code ec, int signal_number) {
    if (ec) return;
    log_event(LogLevel::kInfo, "shutdown_requested", {{"signal", signal_number}});
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->hangups.cancel(ignored);  // SIGHUP stays caught (and ignored) until exit
    impl_->ticker.cancel();
    impl_->io.stop();
  });
  impl_->on_hangup();
  impl_->tick();
  const auto& o = impl_->options;
  log_event(LogLevel::kInfo, "listening",
            {{"listener", "http"},
             {"address", o.address},
             {"port", port()},
             {"tls", tls()},
             {"client_certificates", tls() && !o.tls->settings().client_ca_file.empty()},
             {"client_users", tls() ? o.tls->settings().client_users.size() : 0}});
  impl_->accept();
  // Sessions catch what their handlers throw; this is the last line: log and go on serving.
  for (;;) {
    try {
      impl_->io.run();
      return;
    } catch (const std::exception& e) {
      log_event(LogLevel::kError, "io_handler_failed", {{"listener", "http"}, {"error", e.what()}});
    }
  }
}

void HttpServer::notify_change() {
  asio::post(impl_->io, [this] {
    auto& v = impl_->ws_sessions;
    std::erase_if(v, [](const std::weak_ptr<WsBase>& w) { return w.expired(); });
    for (auto& w : v) {
      if (auto s = w.lock()) s->changed();
    }
  });
}

void HttpServer::flush_replies() {
  impl_->service.login_gate().join();
  impl_->io.restart();
  impl_->io.run_for(std::chrono::milliseconds(200));
}

}  // namespace qx::server
