#include "cluster/wire.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>

#include "core/assert.h"
#include "journals/schema/replication.capnp.h"
#include "replay/journal.h"
#include "server/wire_frame.h"

namespace qx::cluster {
namespace {

using Body = schema::PeerMessage::Body;

std::uint64_t u64(core::Seq s) {
  return static_cast<std::uint64_t>(s);
}

// What is wrong with the shape of a raw record that should carry `seq` (nullopt: nothing). Its CRC,
// padding and chain are append_record's to check.
std::optional<std::string> record_shape_fault(std::span<const std::uint8_t> raw,
                                              std::uint64_t seq) {
  const std::string size = std::to_string(raw.size()) + " bytes";
  if (raw.size() < replay::kRecordHeaderBytes) {
    return size + ", shorter than the " + std::to_string(replay::kRecordHeaderBytes) +
           "-byte record header";
  }
  if (raw.size() % 8 != 0) return size + ", not a multiple of 8";
  const std::uint32_t len = replay::record_payload_bytes(raw.data());
  if (len > replay::kRecordPayloadBytesMax) {
    return "payload length field " + std::to_string(len) + " exceeds the maximum";
  }
  const std::size_t whole = replay::record_size(raw.data());
  if (whole != raw.size()) {
    return "payload length field " + std::to_string(len) + " makes a " + std::to_string(whole) +
           "-byte record, not " + size;
  }
  if (const std::uint64_t has = core::raw(replay::record_seq(raw.data())); has != seq) {
    return "carries seq " + std::to_string(has) + ", not " + std::to_string(seq);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Encoding: one overload per message.

void put(Body::Builder b, const Hello& m) {
  auto o = b.initHello();
  o.setFrom(m.from);
  o.setFenced(m.fenced);
  o.setLastEpoch(m.last_epoch);
  o.setLast(u64(m.last));
}
void put(Body::Builder b, const Heartbeat& m) {
  auto o = b.initHeartbeat();
  o.setEpoch(m.epoch);
  o.setLeader(m.leader);
  o.setCommit(u64(m.commit));
}
void put(Body::Builder b, const Probe& m) {
  auto o = b.initProbe();
  o.setEpoch(m.epoch);
  o.setSeq(u64(m.seq));
  o.setChain(kj::arrayPtr(m.chain.data(), m.chain.size()));
}
void put(Body::Builder b, const ProbeReply& m) {
  auto o = b.initProbeReply();
  o.setFrom(m.from);
  o.setEpoch(m.epoch);
  o.setSeq(u64(m.seq));
  o.setAgree(m.agree);
}
void put(Body::Builder b, const Truncate& m) {
  auto o = b.initTruncate();
  o.setEpoch(m.epoch);
  o.setKeepLast(u64(m.keep_last));
}
void put(Body::Builder b, const Records& m) {
  auto o = b.initRecords();
  o.setEpoch(m.epoch);
  o.setFirst(u64(m.first));
  o.setLast(u64(m.last));
}
void put(Body::Builder b, const Acked& m) {
  auto o = b.initAcked();
  o.setFrom(m.from);
  o.setEpoch(m.epoch);
  o.setDurable(u64(m.durable));
}
void put(Body::Builder b, const Refuse& m) {
  auto o = b.initRefuse();
  o.setFrom(m.from);
  o.setEpoch(m.epoch);
  o.setFenced(m.fenced);
}
void put(Body::Builder b, const InstallSnapshot& m) {
  auto o = b.initInstallSnapshot();
  o.setEpoch(m.epoch);
  o.setSeq(u64(m.seq));
  o.setChain(kj::arrayPtr(m.chain.data(), m.chain.size()));
  o.setStateHash(m.state_hash);
}
void put(Body::Builder b, const SnapshotChunk& m) {
  auto o = b.initSnapshotChunk();
  o.setEpoch(m.epoch);
  o.setSeq(u64(m.seq));
  o.setOffset(m.offset);
  o.setTotal(m.total);
  o.setData(kj::arrayPtr(m.data.data(), m.data.size()));
}
void put(Body::Builder b, const StateCheck& m) {
  auto o = b.initStateCheck();
  o.setEpoch(m.epoch);
  o.setSeq(u64(m.seq));
  o.setStateHash(m.state_hash);
}

// ---------------------------------------------------------------------------------------------
// Decoding.

// Copies a 32-byte chain hash, or says why it is not one.
replay::Status take_chain(capnp::Data::Reader chain, const char* what, std::uint64_t seq,
                          replay::ChainHash& out) {
  if (chain.size() != out.size()) {
    return replay::Error{"peer frame: the chain of " + std::string(what) + " of seq " +
                         std::to_string(seq) + " is " + std::to_string(chain.size()) +
                         " bytes, not " + std::to_string(out.size())};
  }
  std::copy(chain.begin(), chain.end(), out.begin());
  return {};
}

// The message of a well-formed body; raw records are checked by the caller.
replay::Result<PeerFrame> take(Body::Reader b) {
  switch (b.which()) {
    case Body::NONE: return replay::Error{"peer frame: no message (an empty body)"};
    case Body::HELLO: {
      auto o = b.getHello();
      return PeerFrame{Hello{o.getFrom(), o.getFenced(), o.getLastEpoch(), core::Seq(o.getLast())}};
    }
    case Body::HEARTBEAT: {
      auto o = b.getHeartbeat();
      return PeerFrame{Heartbeat{o.getEpoch(), o.getLeader(), core::Seq(o.getCommit())}};
    }
    case Body::PROBE: {
      auto o = b.getProbe();
      Probe p{o.getEpoch(), core::Seq(o.getSeq()), {}};
      if (auto s = take_chain(o.getChain(), "a probe", o.getSeq(), p.chain); !s) return s.error();
      return PeerFrame{p};
    }
    case Body::INSTALL_SNAPSHOT: {
      auto o = b.getInstallSnapshot();
      InstallSnapshot m{o.getEpoch(), core::Seq(o.getSeq()), {}, o.getStateHash()};
      if (auto s = take_chain(o.getChain(), "an installSnapshot", o.getSeq(), m.chain); !s) {
        return s.error();
      }
      return PeerFrame{m};
    }
    case Body::SNAPSHOT_CHUNK: {
      auto o = b.getSnapshotChunk();
      const auto data = o.getData();
      const std::string what = "peer frame: a snapshot chunk of seq " + std::to_string(o.getSeq());
      if (o.getSeq() == 0) return replay::Error{what + ": seq 0 has no snapshot"};
      if (o.getTotal() == 0 || o.getTotal() > kSnapshotBytesMax) {
        return replay::Error{what + ": total " + std::to_string(o.getTotal()) +
                             " bytes is outside 1.." + std::to_string(kSnapshotBytesMax)};
      }
      if (data.size() == 0 || data.size() > kSnapshotChunkBytes || o.getOffset() > o.getTotal() ||
          data.size() > o.getTotal() - o.getOffset()) {
        return replay::Error{what + ": " + std::to_string(data.size()) + " bytes at offset " +
                             std::to_string(o.getOffset()) + " do not fit in " +
                             std::to_string(o.getTotal()) + " (or exceed a chunk)"};
      }
      return PeerFrame{SnapshotChunk{o.getEpoch(),
                                     core::Seq(o.getSeq()),
                                     o.getOffset(),
                                     o.getTotal(),
                                     {data.begin(), data.end()}}};
    }
    case Body::PROBE_REPLY: {
      auto o = b.getProbeReply();
      return PeerFrame{ProbeReply{o.getFrom(), o.getEpoch(), core::Seq(o.getSeq()), o.getAgree()}};
    }
    case Body::TRUNCATE: {
      auto o = b.getTruncate();
      return PeerFrame{Truncate{o.getEpoch(), core::Seq(o.getKeepLast())}};
    }
    case Body::RECORDS: {
      auto o = b.getRecords();
      return PeerFrame{Records{o.getEpoch(), core::Seq(o.getFirst()), core::Seq(o.getLast())}};
    }
    case Body::ACKED: {
      auto o = b.getAcked();
      return PeerFrame{Acked{o.getFrom(), o.getEpoch(), core::Seq(o.getDurable())}};
    }
    case Body::REFUSE: {
      auto o = b.getRefuse();
      return PeerFrame{Refuse{o.getFrom(), o.getEpoch(), o.getFenced()}};
    }
    case Body::STATE_CHECK: {
      auto o = b.getStateCheck();
      return PeerFrame{StateCheck{o.getEpoch(), core::Seq(o.getSeq()), o.getStateHash()}};
    }
  }
  // A sender with a newer schema, or a forged discriminant.
  return replay::Error{"peer frame: unknown message kind " +
                       std::to_string(static_cast<unsigned>(b.which()))};
}

std::string range_text(const Records& r) {
  return std::to_string(u64(r.first)) + ".." + std::to_string(u64(r.last));
}

// Copies the raw records of a Records message after checking their count and shape.
replay::Status take_records(const Records& r, capnp::List<capnp::Data>::Reader list,
                            std::vector<std::vector<std::uint8_t>>& out) {
  if (u64(r.first) == 0 || r.last < r.first) {
    return replay::Error{"peer frame: records " + range_text(r) + " are not a range of seqs"};
  }
  const std::uint64_t named = u64(r.last) - u64(r.first) + 1;
  if (list.size() != named) {
    return replay::Error{"peer frame: records " + range_text(r) + " name " + std::to_string(named) +
                         " records, " + std::to_string(list.size()) + " came"};
  }
  out.reserve(list.size());
  for (unsigned i = 0; i < list.size(); ++i) {
    const auto raw = list[i];
    const std::uint64_t seq = u64(r.first) + i;
    const std::span<const std::uint8_t> bytes(raw.begin(), raw.size());
    if (auto fault = record_shape_fault(bytes, seq)) {
      return replay::Error{"peer frame: records " + range_text(r) + ": the record of seq " +
                           std::to_string(seq) + ": " + *fault};
    }
    out.emplace_back(bytes.begin(), bytes.end());
  }
  return {};
}

replay::Result<DecodedPeerFrame> decode(capnp::MessageReader& m) {
  const auto root = m.getRoot<schema::PeerMessage>();
  auto frame = take(root.getBody());
  if (!frame) return frame.error();
  DecodedPeerFrame d{std::move(frame).value(), {}};
  const auto* message = std::get_if<Message>(&d.frame);
  const auto* records = message != nullptr ? std::get_if<Records>(message) : nullptr;
  const auto list = root.getRawRecords();
  if (records == nullptr) {
    if (list.size() != 0) {
      return replay::Error{"peer frame: " + std::to_string(list.size()) +
                           " records beside a message that is not a Records message"};
    }
    return d;
  }
  if (auto s = take_records(*records, list, d.records); !s) return s.error();
  return d;
}

}  // namespace

void append_peer_frame(std::string& out, const PeerFrame& f,
                       std::span<const std::span<const std::uint8_t>> records) {
  const auto* message = std::get_if<Message>(&f);
  const auto* r = message != nullptr ? std::get_if<Records>(message) : nullptr;
  QX_ASSERT(r != nullptr || records.empty());
  std::size_t bytes = 0;
  if (r != nullptr) {
    QX_ASSERT(u64(r->first) >= 1 && r->last >= r->first);
    QX_ASSERT_EQ(records.size(), u64(r->last) - u64(r->first) + 1);
    for (std::size_t i = 0; i < records.size(); ++i) {
      QX_ASSERT(!record_shape_fault(records[i], u64(r->first) + i));
      bytes += records[i].size();
    }
    QX_ASSERT(bytes <= kPeerRecordsBytesMax);
  }
  // A first segment that holds the whole message: one segment, no reallocation while building.
  if (const auto* c = std::get_if<SnapshotChunk>(&f)) {
    QX_ASSERT(!c->data.empty() && c->data.size() <= kSnapshotChunkBytes);
    bytes += c->data.size();
  }
  const std::size_t words = 32 + records.size() + bytes / sizeof(capnp::word);
  capnp::MallocMessageBuilder m(static_cast<unsigned>(words));
  auto root = m.initRoot<schema::PeerMessage>();
  std::visit(
      [&](const auto& v) {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, Message>) {
          std::visit([&](const auto& msg) { put(root.getBody(), msg); }, v);
        } else {
          put(root.getBody(), v);
        }
      },
      f);
  if (r != nullptr) {
    auto list = root.initRawRecords(static_cast<unsigned>(records.size()));
    for (unsigned i = 0; i < records.size(); ++i) {
      list.set(i, kj::arrayPtr(records[i].data(), records[i].size()));
    }
  }
  QX_ASSERT(capnp::computeSerializedSizeInWords(m) * sizeof(capnp::word) <= kPeerFrameMax);
  wire::append_frame(out, m);
}

replay::Result<DecodedPeerFrame> decode_peer_frame(capnp::MessageReader& m) {
  try {
    return decode(m);
  } catch (const kj::Exception& e) {
    // Bad pointers, a traversal past the reader's limit, a list of the wrong element size.
    std::string why = e.getDescription().cStr();
    std::replace(why.begin(), why.end(), '\n', ' ');
    return replay::Error{"peer frame: malformed message: " + why};
  }
}

}  // namespace qx::cluster
