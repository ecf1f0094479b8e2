// Fuzz target: the replication stream's decoder (cluster/wire.h) behind the frame reader
// (server/wire_frame.h), as a follower or leader reads a peer's bytes.
//
// Byte 0 picks a chunk size (1..256 bytes); the rest is fed to a FrameReader in chunks of that
// size, as a socket would deliver it, and every frame is decoded. A frame that decodes must
// encode (append_peer_frame) to a frame
// that decodes to the same message and records.
//
//   scripts/fuzz.sh peer_frame
#include <kj/exception.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/wire.h"
#include "fuzz/fuzz_input.h"
#include "server/wire_frame.h"

namespace {

qx::cluster::DecodedPeerFrame decode_again(const qx::cluster::DecodedPeerFrame& d) {
  std::vector<std::span<const std::uint8_t>> raws(d.records.begin(), d.records.end());
  std::string out;
  qx::cluster::append_peer_frame(out, d.frame, raws);
  qx::wire::FrameReader reader(qx::cluster::kPeerFrameMax);
  reader.feed(out.data(), out.size());
  QX_FUZZ_CHECK(reader.next() == qx::wire::FrameReader::Status::kFrame, "an encoded frame frames");
  auto back = qx::cluster::decode_peer_frame(reader.message());
  QX_FUZZ_CHECK(back.ok(), "an encoded frame decodes");
  QX_FUZZ_CHECK(reader.next() == qx::wire::FrameReader::Status::kNeedMore, "one frame, no more");
  return std::move(back.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  const std::size_t chunk = std::size_t{in.byte()} + 1;
  qx::wire::FrameReader reader(qx::cluster::kPeerFrameMax);
  while (!in.empty()) {
    const auto piece = in.take(chunk);
    reader.feed(reinterpret_cast<const char*>(piece.data()), piece.size());
    for (;;) {
      const auto status = reader.next();
      if (status == qx::wire::FrameReader::Status::kNeedMore) break;
      if (status != qx::wire::FrameReader::Status::kFrame) return 0;  // the stream is unusable
      auto d = qx::cluster::decode_peer_frame(reader.message());
      if (!d.ok()) return 0;  // a peer that sends this is cut off
      const auto back = decode_again(d.value());
      QX_FUZZ_CHECK(back.frame == d.value().frame, "a frame re-encodes to the same message");
      QX_FUZZ_CHECK(back.records == d.value().records, "a frame re-encodes to the same records");
    }
  }
  return 0;
}
