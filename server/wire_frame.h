// Framing of the binary TCP protocol (journals/schema/wire.capnp): a 4-byte little-endian length,
// then one unpacked Cap'n Proto message in the standard stream encoding.
//
//   std::string out;
//   capnp::MallocMessageBuilder m;
//   m.initRoot<wire::ClientMessage>().setRequestId(1);
//   wire::append_frame(out, m);                  // ready to write to the socket
//
//   wire::FrameReader in(wire::kClientFrameMax);
//   in.feed(bytes, n);
//   while (in.next() == wire::FrameReader::Status::kFrame) {
//     auto msg = in.message().getRoot<wire::ServerMessage>();   // throws kj::Exception if bad
//   }
//
// Used by the server, `qx client` and the load tool; depends only on the generated schema.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "journals/schema/wire.capnp.h"

namespace qx::wire {

inline constexpr std::size_t kHeaderBytes = 4;
inline constexpr std::size_t kClientFrameMax = 64 << 10;  // bytes of one client message
inline constexpr std::size_t kServerFrameMax = 64 << 20;  // bytes of one server message

// A blocking TCP connection (TCP_NODELAY) to "HOST:PORT", for clients; throws
// std::runtime_error with a one-line reason when it cannot resolve or connect.
int connect_tcp(const std::string& host_port);

// Appends the frame of message m to out.
void append_frame(std::string& out, capnp::MessageBuilder& m);

// Splits a byte stream into frames and decodes each with limits on size and nesting.
class FrameReader {
 public:
  enum class Status { kFrame, kNeedMore, kTooLarge, kMalformed };
  explicit FrameReader(std::size_t frame_bytes_max);
  void feed(const char* data, std::size_t n);
  // kFrame: message() is the next message, valid until the next call. kTooLarge or kMalformed
  // (a length that is not a whole number of words, or a bad segment table): the stream is
  // unusable. A message whose pointers are bad still comes back as kFrame and throws
  // kj::Exception when read.
  Status next();
  capnp::MessageReader& message() { return *reader_; }
  [[nodiscard]] std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::size_t max_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::vector<std::uint64_t> words_;  // aligned copy of the current frame (capnp::word itself
                                      // is not copyable, so no std::vector<capnp::word>)
  std::optional<capnp::FlatArrayMessageReader> reader_;
};

}  // namespace qx::wire
