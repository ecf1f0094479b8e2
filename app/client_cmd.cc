#include "app/client_cmd.h"

#include <arpa/inet.h>
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "server/wire_frame.h"

namespace qx::app {

namespace {

int connect_to(const std::string& where) {
  const auto colon = where.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::runtime_error("--tcp wants HOST:PORT, got '" + where + "'");
  }
  const std::string host = where.substr(0, colon);
  const std::string port = where.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve " + where + ": " + ::gai_strerror(rc));
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) throw std::runtime_error("cannot connect to " + where);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

int run_client(const ClientOptions& options, std::istream& in, std::ostream& out) {
  const int fd = connect_to(options.tcp);
  std::atomic<bool> input_done{false};
  std::thread writer([&] {
    capnp::JsonCodec codec;
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      capnp::MallocMessageBuilder m;
      try {
        codec.decode(kj::ArrayPtr<const char>(line.data(), line.size()),
                     m.initRoot<wire::ClientMessage>());
      } catch (const kj::Exception& e) {
        std::cerr << R"({"clientError": "not a ClientMessage: )" << e.getDescription().cStr()
                  << "\"}" << std::endl;
        continue;
      }
      std::string frame;
      wire::append_frame(frame, m);
      if (!write_all(fd, frame)) break;
    }
    input_done = true;
  });

  capnp::JsonCodec codec;
  wire::FrameReader frames(wire::kServerFrameMax);
  std::array<char, 64 << 10> buf{};
  auto linger_end = std::chrono::steady_clock::time_point::max();
  int rc = 0;
  while (true) {
    if (input_done && linger_end == std::chrono::steady_clock::time_point::max()) {
      linger_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.linger_ms);
    }
    if (std::chrono::steady_clock::now() >= linger_end) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
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
        out << codec.encode(frames.message().getRoot<wire::ServerMessage>()).cStr() << std::endl;
      } catch (const kj::Exception&) {
        std::cerr << R"({"clientError": "undecodable server message"})" << std::endl;
        rc = 1;
      }
    }
    if (rc != 0) break;
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  // The writer may be blocked reading stdin; a client that is done does not wait for it.
  if (input_done) {
    writer.join();
  } else {
    writer.detach();
  }
  return rc;
}

}  // namespace qx::app
