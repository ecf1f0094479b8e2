#include "app/client_cmd.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "server/wire_frame.h"

namespace qx::app {

namespace {

constexpr int kRedirectsMax = 3;  // refusals in a row before the client stops following

// The connection, plain or TLS (OpenSSL on the same blocking socket).
class Transport {
 public:
  Transport(int fd, const ClientOptions& o) : fd_(fd) {
    if (!o.tls && o.tls_ca.empty() && o.tls_cert.empty()) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) throw std::runtime_error("TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!o.tls_ca.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, o.tls_ca.c_str(), nullptr) != 1) {
        throw std::runtime_error("TLS: cannot read CA file " + o.tls_ca);
      }
    } else {
      SSL_CTX_set_default_verify_paths(ctx_);
    }
    if (!o.tls_cert.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, o.tls_cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("TLS: cannot use client certificate " + o.tls_cert + " / key " +
                                 o.tls_key);
      }
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    const std::string host = o.tcp.substr(0, o.tcp.rfind(':'));
    SSL_set1_host(ssl_, host.c_str());  // the certificate must name the host (or IP) dialled
    if (SSL_connect(ssl_) != 1) {
      char why[256];
      ERR_error_string_n(ERR_get_error(), why, sizeof why);
      throw std::runtime_error(std::string("TLS handshake failed: ") + why);
    }
  }
  ~Transport() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
  }
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // Bytes already decrypted and waiting (poll() cannot see them).
  [[nodiscard]] bool pending() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }
  bool write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size() - done, 1 << 20));
      const ssize_t n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data() + done, chunk)
                                        : ::send(fd_, bytes.data() + done,
                                                 static_cast<std::size_t>(chunk), MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  // > 0 bytes read; <= 0 the connection ended.
  ssize_t read(char* buf, std::size_t n) {
    if (ssl_ != nullptr) return SSL_read(ssl_, buf, static_cast<int>(n));
    return ::recv(fd_, buf, n, 0);
  }

 private:
  int fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

}  // namespace

int run_client(const ClientOptions& options, std::ostream& out) {
  ClientOptions where = options;  // the node this client talks to now
  auto conn = std::make_unique<Transport>(wire::connect_tcp(where.tcp), where);
  capnp::JsonCodec codec;
  // Following a cluster's leader: the last login line, every request line not yet answered, and
  // the requests a follower refused (sent again to the leader it named).
  std::string login_line;
  std::map<std::uint64_t, std::string> unanswered;
  std::vector<std::string> refused;
  std::string follow_to;
  int redirects_in_a_row = 0;
  wire::FrameReader frames(wire::kServerFrameMax);
  std::array<char, 64 << 10> buf{};
  std::string input;  // stdin bytes not yet a whole line
  bool input_open = true;
  auto linger_end = std::chrono::steady_clock::time_point::max();
  int rc = 0;

  // One ClientMessage per line; a line that does not decode is reported and skipped.
  auto send_line = [&](const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return true;
    capnp::MallocMessageBuilder m;
    try {
      codec.decode(kj::ArrayPtr<const char>(line.data(), line.size()),
                   m.initRoot<wire::ClientMessage>());
    } catch (const kj::Exception& e) {
      std::cerr << R"({"clientError": "not a ClientMessage: )" << e.getDescription().cStr() << "\"}"
                << std::endl;
      return true;
    }
    const auto root = m.getRoot<wire::ClientMessage>().asReader();
    if (root.getBody().isLogin()) {
      login_line = line;
    } else if (root.getRequestId() != 0) {
      unanswered[root.getRequestId()] = line;
    }
    std::string frame;
    wire::append_frame(frame, m);
    return conn->write_all(frame);
  };

  // A follower named the leader: talk to it from now on, logged in again, and send it what the
  // follower refused. Requests still unanswered by the old node are reported, not repeated.
  auto follow = [&]() {
    for (const auto& [rid, line] : unanswered) {
      std::cerr << R"({"clientError": "no answer from the previous node to request )" << rid
                << "\"}\n";
    }
    unanswered.clear();
    std::cerr << R"({"clientNotice": "following the leader at )" << follow_to << "\"}" << std::endl;
    where.tcp = follow_to;
    follow_to.clear();
    conn.reset();
    conn = std::make_unique<Transport>(wire::connect_tcp(where.tcp), where);
    frames = wire::FrameReader(wire::kServerFrameMax);
    if (!login_line.empty() && !send_line(login_line)) return false;
    for (const std::string& line : std::exchange(refused, {})) {
      if (!send_line(line)) return false;
    }
    return true;
  };

  while (true) {
    if (!input_open && linger_end == std::chrono::steady_clock::time_point::max()) {
      linger_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.linger_ms);
    }
    if (std::chrono::steady_clock::now() >= linger_end) break;
    std::array<pollfd, 2> p{pollfd{conn->fd(), POLLIN, 0}, pollfd{STDIN_FILENO, POLLIN, 0}};
    const int ready = conn->pending() ? 1 : ::poll(p.data(), input_open ? 2 : 1, 20);
    if (ready <= 0) continue;
    if (input_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n <= 0) {
        input_open = false;
        if (!input.empty() && !send_line(input)) break;
      } else {
        input.append(buf.data(), static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = input.find('\n', start)) != std::string::npos; start = nl + 1) {
          if (!send_line(input.substr(start, nl - start))) {
            input_open = false;
            break;
          }
        }
        input.erase(0, start);
      }
    }
    if (!conn->pending() && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t n = conn->read(buf.data(), buf.size());
    if (n <= 0) break;  // the server closed the connection
    frames.feed(buf.data(), static_cast<std::size_t>(n));
    while (true) {
      const auto st = frames.next();
      if (st == wire::FrameReader::Status::kNeedMore) break;
      if (st != wire::FrameReader::Status::kFrame) {
        std::cerr << R"({"clientError": "the server sent a bad frame"})" << std::endl;
        rc = 1;
        break;
      }
      try {
        const auto msg = frames.message().getRoot<wire::ServerMessage>();
        out << codec.encode(msg).cStr() << std::endl;
        const std::uint64_t rid = msg.getRequestId();
        const auto body = msg.getBody();
        if (body.isNotLeader() && options.follow_leader) {
          const auto nl = body.getNotLeader();
          auto line = unanswered.find(rid);
          if (nl.getNode() != 0 && nl.hasTcp() && line != unanswered.end()) {
            if (++redirects_in_a_row > kRedirectsMax) {
              std::cerr << R"({"clientError": "too many leader redirects in a row; not following"})"
                        << std::endl;
            } else {
              refused.push_back(line->second);
              follow_to = nl.getTcp().cStr();
            }
          }
          if (line != unanswered.end()) unanswered.erase(line);
        } else if (rid != 0) {
          unanswered.erase(rid);
          if (!body.isLoginOk()) redirects_in_a_row = 0;
        }
      } catch (const kj::Exception&) {
        std::cerr << R"({"clientError": "undecodable server message"})" << std::endl;
        rc = 1;
      }
    }
    if (rc != 0) break;
    if (!follow_to.empty()) {
      try {
        if (!follow()) break;
      } catch (const std::exception& e) {
        std::cerr << R"({"clientError": "cannot reach the leader: )" << e.what() << "\"}"
                  << std::endl;
        rc = 1;
        break;
      }
    }
  }
  return rc;
}

}  // namespace qx::app
