// The wire encoding of the replication stream (journals/schema/replication.capnp): one frame per
// peer message (cluster/node.h) or divergence check, and the raw journal records beside a Records
// message.
//
//   std::string out;
//   append_peer_frame(out, Heartbeat{epoch, self, commit});
//   append_peer_frame(out, Records{epoch, first, last}, raws);   // raws: each a Record::raw
//   ... write out to the socket ...
//
//   wire::FrameReader in(kPeerFrameMax);
//   in.feed(bytes, n);
//   while (in.next() == wire::FrameReader::Status::kFrame) {
//     auto d = decode_peer_frame(in.message());
//     if (!d.ok()) { log(d.error().message); close(); break; }   // a protocol error
//     act(d.value().frame, d.value().records);
//   }
//
// Framing is the binary TCP protocol's (server/wire_frame.h): a 4-byte little-endian length, then
// one unpacked Cap'n Proto message. This file knows no sockets; the transport owns those.
//
// The decoder treats every byte as hostile and checks shape only: the body is one it knows, a
// chain is 32 bytes, every raw record is a whole record (header, a length field that accounts for
// its size, a multiple of 8 bytes) carrying the seq its place in first..last says, there is one
// record per seq, and records come with nothing but a Records message. Anything else is one line
// of Error, never a crash or an exception. The CRC and the chain of each record are checked later,
// by JournalWriter::append_record; values (epochs, node ids) are the Node's to judge.
//
// Limits: a frame is at most kPeerFrameMax bytes (the FrameReader's limit). A sender batches the
// records of one frame to at most kPeerRecordsBytesMax bytes in total, which always fits: each
// record costs one 8-byte list pointer beside its at least 56 bytes. A frame is decoded into
// copies, so the reader's buffer may be reused at once; decoding costs O(frame bytes).
//
// Caveats: append_peer_frame asserts on a broken sender (records beside anything but a Records
// message, a count that disagrees with first..last, a record that is not whole, a batch past
// kPeerRecordsBytesMax): those are bugs of the caller, who reads the records from its own journal.
#pragma once

#include <capnp/message.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "cluster/node.h"
#include "core/types.h"
#include "replay/result.h"

namespace qx::cluster {

inline constexpr std::size_t kPeerFrameMax = 64u << 20;         // bytes of one frame's message
inline constexpr std::size_t kPeerRecordsBytesMax = 48u << 20;  // raw record bytes in one frame
// Records of at least 56 bytes each cost at most 8/7 of their size once framed, plus a few words.
static_assert(kPeerRecordsBytesMax / 7 * 8 + 4096 <= kPeerFrameMax);

// Leader to follower, every state_hash_every events: the engine's state hash after event `seq`.
struct StateCheck {
  std::uint64_t epoch{};
  core::Seq seq{};
  std::uint64_t state_hash{};
  bool operator==(const StateCheck&) const = default;
};

// Leader to follower: bytes offset .. offset + data.size() - 1 of the snapshot at `seq` (its
// encoding, replay/codec.h), total bytes in all; an InstallSnapshot message follows the last.
struct SnapshotChunk {
  std::uint64_t epoch{};
  core::Seq seq{};
  std::uint64_t offset{};
  std::uint64_t total{};
  std::vector<std::uint8_t> data;
  bool operator==(const SnapshotChunk&) const = default;
};
// Data bytes in one chunk, at most; and the largest snapshot a follower accepts.
inline constexpr std::size_t kSnapshotChunkBytes = 16u << 20;
inline constexpr std::uint64_t kSnapshotBytesMax = std::uint64_t{64} << 30;

using PeerFrame = std::variant<Message, StateCheck, SnapshotChunk>;

// Appends the frame of `f` to `out`, with `records` (each a Record::raw, seqs first..last in
// order) when `f` is a Records message; `records` must be empty with any other frame.
void append_peer_frame(std::string& out, const PeerFrame& f,
                       std::span<const std::span<const std::uint8_t>> records = {});

struct DecodedPeerFrame {
  PeerFrame frame;
  std::vector<std::vector<std::uint8_t>> records;  // empty unless frame is a Records message
};

// Decodes one frame's message (FrameReader::message()); an Error, one line starting "peer frame:",
// when it is not a well-formed peer frame.
[[nodiscard]] replay::Result<DecodedPeerFrame> decode_peer_frame(capnp::MessageReader& m);

}  // namespace qx::cluster
