#include "server/wire_frame.h"

#include <kj/exception.h>
#include <kj/io.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace qx::wire {

void append_frame(std::string& out, capnp::MessageBuilder& m) {
  // Serialized straight into `out`: no intermediate array.
  const std::size_t n = capnp::computeSerializedSizeInWords(m) * sizeof(capnp::word);
  const std::size_t at = out.size();
  out.resize(at + kHeaderBytes + n);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + at);
  p[0] = static_cast<unsigned char>(n & 0xff);
  p[1] = static_cast<unsigned char>(n >> 8 & 0xff);
  p[2] = static_cast<unsigned char>(n >> 16 & 0xff);
  p[3] = static_cast<unsigned char>(n >> 24 & 0xff);
  kj::ArrayOutputStream stream(kj::arrayPtr(p + kHeaderBytes, n));
  capnp::writeMessage(stream, m);
}

FrameReader::FrameReader(std::size_t frame_bytes_max) : max_(frame_bytes_max) {}

void FrameReader::feed(const char* data, std::size_t n) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (64 << 10) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

FrameReader::Status FrameReader::next() {
  reader_.reset();
  if (buffered() < kHeaderBytes) return Status::kNeedMore;
  const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const std::size_t n = std::size_t{h[0]} | std::size_t{h[1]} << 8 | std::size_t{h[2]} << 16 |
                        std::size_t{h[3]} << 24;
  if (n > max_) return Status::kTooLarge;
  if (n == 0 || n % sizeof(capnp::word) != 0) return Status::kMalformed;
  if (buffered() < kHeaderBytes + n) return Status::kNeedMore;
  // Cap'n Proto reads words in place: copy the frame to aligned storage.
  static_assert(sizeof(std::uint64_t) == sizeof(capnp::word));
  words_.resize(n / sizeof(capnp::word));
  std::memcpy(words_.data(), buf_.data() + pos_ + kHeaderBytes, n);
  const auto* words = reinterpret_cast<const capnp::word*>(words_.data());
  pos_ += kHeaderBytes + n;
  capnp::ReaderOptions options;
  options.traversalLimitInWords = n / sizeof(capnp::word) * 4 + 64;
  options.nestingLimit = 16;
  try {
    reader_.emplace(kj::arrayPtr(words, words_.size()), options);
  } catch (const kj::Exception&) {
    reader_.reset();
    return Status::kMalformed;
  }
  // The segment table must account for the whole frame: no trailing bytes.
  if (reader_->getEnd() != words + words_.size()) {
    reader_.reset();
    return Status::kMalformed;
  }
  return Status::kFrame;
}

int connect_tcp(const std::string& where) {
  const auto colon = where.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::runtime_error("a server address is HOST:PORT, not '" + where + "'");
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

}  // namespace qx::wire
