// The replication stream's encoding (cluster/wire.h): every frame kind round-trips through the
// binary protocol's framing, records from a real journal arrive byte for byte (and append to a copy
// of that journal), frames split anywhere still decode, hostile frames are refused with a message,
// and random damage never crashes the decoder.
#include "cluster/wire.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "journals/schema/replication.capnp.h"
#include "replay/journal.h"
#include "server/wire_frame.h"

namespace qx::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Bytes = std::vector<std::uint8_t>;

core::Seq seq(std::uint64_t s) {
  return core::Seq(s);
}

// One frame of every kind, with values at the edges of their fields.
std::vector<PeerFrame> every_kind() {
  replay::ChainHash chain{};
  for (std::size_t i = 0; i < chain.size(); ++i) chain[i] = static_cast<std::uint8_t>(0xa0 + i);
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  return {
      Message{Hello{3, 41, 40, seq(1'234)}},
      Message{Heartbeat{kMax, 1'024, seq(kMax)}},
      Message{Probe{7, seq(99), chain}},
      Message{Probe{7, seq(0), replay::ChainHash{}}},
      Message{ProbeReply{2, 7, seq(99), true}},
      Message{ProbeReply{2, 7, seq(98), false}},
      Message{Truncate{7, seq(0)}},
      Message{Records{7, seq(5), seq(5)}},  // its record: valid_frames()
      Message{Acked{1, 7, seq(77)}},
      Message{Refuse{4, 7, 9}},
      StateCheck{7, seq(1'000), 0x0123'4567'89ab'cdefull},
      Message{InstallSnapshot{7, seq(500), chain, 0xfeed'beefull}},
      SnapshotChunk{7, seq(500), 0, 3, {1, 2, 3}},
      SnapshotChunk{7, seq(500), 1'000, 1'001, {0}},
  };
}

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

std::vector<std::span<const std::uint8_t>> spans(const std::vector<Bytes>& v) {
  return {v.begin(), v.end()};
}

std::string frame_of(const PeerFrame& f, const std::vector<Bytes>& records = {}) {
  std::string out;
  const auto s = spans(records);
  append_peer_frame(out, f, s);
  return out;
}

std::string frame_of(capnp::MessageBuilder& m) {
  std::string out;
  wire::append_frame(out, m);
  return out;
}

// Decodes the one whole frame in `bytes`.
replay::Result<DecodedPeerFrame> decode_bytes(const std::string& bytes) {
  wire::FrameReader in(kPeerFrameMax);
  in.feed(bytes.data(), bytes.size());
  if (in.next() != wire::FrameReader::Status::kFrame) return replay::Error{"no frame"};
  EXPECT_EQ(in.buffered(), 0u);
  return decode_peer_frame(in.message());
}

// The error of decoding `bytes`, which must be one line.
std::string refusal(const std::string& bytes) {
  auto d = decode_bytes(bytes);
  if (d.ok()) return "(decoded)";
  const std::string& why = d.error().message;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_EQ(why.rfind("peer frame: ", 0), 0u) << why;
  return why;
}

class PeerWire : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qx_peer_wire_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static replay::JournalOptions options() {
    replay::JournalOptions o;
    o.fsync = replay::FsyncPolicy::kNone;
    o.segment_bytes_max = 1'024;  // a few records per segment: the copy rolls over where this did
    return o;
  }

  // Writes events 1..n to a journal under dir_/name and returns each record as on disk. Users
  // with names of growing length between deposits: payloads of many sizes, most of them padded.
  std::vector<Bytes> journal_records(const std::string& name, std::uint64_t n) {
    auto w = replay::JournalWriter::open(dir_ / name, options());
    EXPECT_TRUE(w.ok()) << w.error().message;
    for (std::uint64_t s = 1; s <= n; ++s) {
      const core::EventHeader h{seq(s), static_cast<std::int64_t>(1'000 + s), 7};
      const auto e =
          s % 2 == 1 ? core::Event{h, core::CreateUser{std::string(s, 'u')}}
                     : core::Event{h, core::Deposit{core::AccountId(static_cast<std::uint32_t>(s)),
                                                    core::Money(static_cast<std::int64_t>(s))}};
      EXPECT_TRUE(w.value().append(e).ok());
    }
    EXPECT_TRUE(w.value().commit().ok());
    auto r = replay::JournalReader::open(dir_ / name);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<Bytes> raws;
    replay::Record rec;
    while (true) {
      auto more = r.value().next(rec);
      EXPECT_TRUE(more.ok()) << more.error().message;
      if (!more.ok() || !more.value()) break;
      raws.emplace_back(rec.raw.begin(), rec.raw.end());
    }
    EXPECT_EQ(raws.size(), n);
    return raws;
  }

  // A frame of every kind (the Records one with its record), and one of five records.
  std::vector<std::string> valid_frames() {
    const auto raws = journal_records("leader", 5);
    std::vector<std::string> frames;
    for (const PeerFrame& f : every_kind()) {
      const bool records = std::holds_alternative<Message>(f) &&
                           std::holds_alternative<Records>(std::get<Message>(f));
      frames.push_back(frame_of(f, records ? std::vector<Bytes>{raws[4]} : std::vector<Bytes>{}));
    }
    frames.push_back(frame_of(Records{7, seq(1), seq(5)}, raws));
    return frames;
  }

  static std::string file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

TEST_F(PeerWire, EveryMessageKindAndTheStateCheckRoundTrip) {
  for (const PeerFrame& f : every_kind()) {
    const bool records =
        std::holds_alternative<Message>(f) && std::holds_alternative<Records>(std::get<Message>(f));
    if (records) continue;  // a Records message needs its records: the next test
    const std::string bytes = frame_of(f);
    auto d = decode_bytes(bytes);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_TRUE(d.value().frame == f) << "frame " << testing::PrintToString(bytes);
    EXPECT_TRUE(d.value().records.empty());
  }
}

TEST_F(PeerWire, RecordsOfARealJournalArriveByteForByteAndAppendToACopy) {
  const auto raws = journal_records("leader", 12);
  // The whole journal, and a batch from its middle.
  for (const auto& [first, last] : {std::pair<std::uint64_t, std::uint64_t>{1, 12}, {4, 9}}) {
    const std::vector<Bytes> batch(raws.begin() + static_cast<std::ptrdiff_t>(first) - 1,
                                   raws.begin() + static_cast<std::ptrdiff_t>(last));
    const std::string bytes = frame_of(Records{42, seq(first), seq(last)}, batch);
    EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0'));  // one segment: built in place
    auto d = decode_bytes(bytes);
    ASSERT_TRUE(d.ok()) << d.error().message;
    const PeerFrame sent = Message{Records{42, seq(first), seq(last)}};
    EXPECT_TRUE(d.value().frame == sent);
    EXPECT_EQ(d.value().records, batch);
  }
  // Records shipped in frames of three, appended by a follower: the same segment files.
  auto w = replay::JournalWriter::open(dir_ / "follower", options());
  ASSERT_TRUE(w.ok()) << w.error().message;
  for (std::uint64_t first = 1; first <= 12; first += 3) {
    const std::vector<Bytes> batch(raws.begin() + static_cast<std::ptrdiff_t>(first) - 1,
                                   raws.begin() + static_cast<std::ptrdiff_t>(first) + 2);
    auto d = decode_bytes(frame_of(Records{42, seq(first), seq(first + 2)}, batch));
    ASSERT_TRUE(d.ok()) << d.error().message;
    for (const Bytes& r : d.value().records) {
      auto s = w.value().append_record(r);
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
  }
  ASSERT_TRUE(w.value().commit().ok());
  std::vector<fs::path> leader, follower;
  for (const auto& e : fs::directory_iterator(dir_ / "leader")) leader.push_back(e.path());
  for (const auto& e : fs::directory_iterator(dir_ / "follower")) follower.push_back(e.path());
  std::sort(leader.begin(), leader.end());
  std::sort(follower.begin(), follower.end());
  ASSERT_EQ(leader.size(), follower.size());
  ASSERT_GT(leader.size(), 1u);  // the copy rolled over segments where the leader did
  for (std::size_t i = 0; i < leader.size(); ++i) {
    EXPECT_EQ(leader[i].filename(), follower[i].filename());
    EXPECT_EQ(file(leader[i]), file(follower[i])) << leader[i];
  }
}

TEST_F(PeerWire, FramesSplitAtEveryByteStillDecode) {
  const auto frames = valid_frames();
  std::string stream;
  std::vector<DecodedPeerFrame> expected;
  for (const std::string& f : frames) {
    stream += f;
    auto d = decode_bytes(f);
    ASSERT_TRUE(d.ok()) << d.error().message;
    expected.push_back(std::move(d).value());
  }
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    wire::FrameReader in(kPeerFrameMax);
    std::vector<DecodedPeerFrame> got;
    auto drain = [&] {
      wire::FrameReader::Status s;
      while ((s = in.next()) == wire::FrameReader::Status::kFrame) {
        auto d = decode_peer_frame(in.message());
        ASSERT_TRUE(d.ok()) << "cut at " << cut << ": " << d.error().message;
        got.push_back(std::move(d).value());
      }
      ASSERT_EQ(s, wire::FrameReader::Status::kNeedMore) << "cut at " << cut;
    };
    in.feed(stream.data(), cut);
    drain();
    in.feed(stream.data() + cut, stream.size() - cut);
    drain();
    ASSERT_EQ(got.size(), expected.size()) << "cut at " << cut;
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(got[i].frame == expected[i].frame) << "cut at " << cut << ", frame " << i;
      ASSERT_EQ(got[i].records, expected[i].records) << "cut at " << cut << ", frame " << i;
    }
  }
}

TEST_F(PeerWire, ALengthPastTheLimitIsRefusedByTheReader) {
  const std::uint32_t n = kPeerFrameMax + 8;
  const char header[4] = {static_cast<char>(n & 0xff), static_cast<char>(n >> 8 & 0xff),
                          static_cast<char>(n >> 16 & 0xff), static_cast<char>(n >> 24 & 0xff)};
  wire::FrameReader in(kPeerFrameMax);
  in.feed(header, sizeof header);
  EXPECT_EQ(in.next(), wire::FrameReader::Status::kTooLarge);
}

TEST_F(PeerWire, AnUnknownOrEmptyBodyIsRefused) {
  capnp::MallocMessageBuilder m;
  auto root = m.initRoot<schema::PeerMessage>();
  root.getBody().initStateCheck().setSeq(5);
  // Forge a discriminant no schema of ours defines (a newer sender's message kind).
  const auto body = capnp::Schema::from<schema::PeerMessage::Body>();
  const std::size_t at = body.getProto().getStruct().getDiscriminantOffset() * 2u;
  auto data = capnp::AnyStruct::Builder(schema::PeerMessage::Builder(root)).getDataSection();
  ASSERT_LE(at + 2, data.size());
  data[at] = 42;
  data[at + 1] = 0;
  EXPECT_EQ(refusal(frame_of(m)), "peer frame: unknown message kind 42");

  capnp::MallocMessageBuilder empty;
  empty.initRoot<schema::PeerMessage>();
  EXPECT_EQ(refusal(frame_of(empty)), "peer frame: no message (an empty body)");
}

TEST_F(PeerWire, AChainThatIsNot32BytesIsRefused) {
  for (const std::size_t n : {0u, 31u, 33u}) {
    capnp::MallocMessageBuilder m;
    auto p = m.initRoot<schema::PeerMessage>().getBody().initProbe();
    p.setEpoch(7);
    p.setSeq(99);
    p.initChain(static_cast<unsigned>(n));
    EXPECT_EQ(refusal(frame_of(m)), "peer frame: the chain of a probe of seq 99 is " +
                                        std::to_string(n) + " bytes, not 32");
  }
}

TEST_F(PeerWire, ASnapshotChunkThatDoesNotFitItsSnapshotIsRefused) {
  struct Case {
    std::uint64_t seq, offset, total;
    std::size_t bytes;
    std::string why;
  };
  const std::string at = "peer frame: a snapshot chunk of seq ";
  const std::vector<Case> cases = {
      {0, 0, 10, 1, at + "0: seq 0 has no snapshot"},
      {5, 0, 0, 1, at + "5: total 0 bytes is outside 1..68719476736"},
      {5, 0, kSnapshotBytesMax + 1, 1, at + "5: total 68719476737 bytes is outside 1..68719476736"},
      {5, 0, 10, 0, at + "5: 0 bytes at offset 0 do not fit in 10 (or exceed a chunk)"},
      {5, 8, 10, 3, at + "5: 3 bytes at offset 8 do not fit in 10 (or exceed a chunk)"},
      {5, 11, 10, 1, at + "5: 1 bytes at offset 11 do not fit in 10 (or exceed a chunk)"},
      {5, std::numeric_limits<std::uint64_t>::max(), 10, 1,
       at + "5: 1 bytes at offset 18446744073709551615 do not fit in 10 (or exceed a chunk)"},
      {5, 0, kSnapshotChunkBytes + 1, kSnapshotChunkBytes + 1,
       at + "5: 16777217 bytes at offset 0 do not fit in 16777217 (or exceed a chunk)"},
  };
  for (const Case& c : cases) {
    capnp::MallocMessageBuilder m;
    auto o = m.initRoot<schema::PeerMessage>().getBody().initSnapshotChunk();
    o.setEpoch(7);
    o.setSeq(c.seq);
    o.setOffset(c.offset);
    o.setTotal(c.total);
    o.initData(static_cast<unsigned>(c.bytes));
    EXPECT_EQ(refusal(frame_of(m)), c.why);
  }
  // An installSnapshot's chain is checked as a probe's.
  capnp::MallocMessageBuilder m;
  auto o = m.initRoot<schema::PeerMessage>().getBody().initInstallSnapshot();
  o.setSeq(30);
  o.initChain(31);
  EXPECT_EQ(refusal(frame_of(m)),
            "peer frame: the chain of an installSnapshot of seq 30 is 31 "
            "bytes, not 32");
}

// A Records message with these raw records, built by hand (append_peer_frame would assert).
std::string hostile_records(std::uint64_t first, std::uint64_t last,
                            const std::vector<Bytes>& raw) {
  capnp::MallocMessageBuilder m;
  auto root = m.initRoot<schema::PeerMessage>();
  auto r = root.getBody().initRecords();
  r.setEpoch(7);
  r.setFirst(first);
  r.setLast(last);
  auto list = root.initRawRecords(static_cast<unsigned>(raw.size()));
  for (unsigned i = 0; i < raw.size(); ++i) list.set(i, kj::arrayPtr(raw[i].data(), raw[i].size()));
  return frame_of(m);
}

TEST_F(PeerWire, RecordsThatAreNotWholeRecordsAreRefused) {
  const auto raws = journal_records("leader", 3);
  EXPECT_EQ(refusal(hostile_records(1, 1, {Bytes(40, 0)})),
            "peer frame: records 1..1: the record of seq 1: 40 bytes, shorter than the 56-byte "
            "record header");
  Bytes odd = raws[0];
  odd.resize(odd.size() + 4);
  EXPECT_EQ(refusal(hostile_records(1, 1, {odd})),
            "peer frame: records 1..1: the record of seq 1: " + std::to_string(odd.size()) +
                " bytes, not a multiple of 8");
  Bytes longer = raws[1];
  const std::uint32_t len = le32(longer.data()) + 8;  // the length field claims 8 bytes more
  for (std::size_t i = 0; i < 4; ++i) longer[i] = static_cast<std::uint8_t>(len >> (8 * i));
  EXPECT_EQ(refusal(hostile_records(1, 2, {raws[0], longer})),
            "peer frame: records 1..2: the record of seq 2: payload length field " +
                std::to_string(len) + " makes a " + std::to_string(longer.size() + 8) +
                "-byte record, not " + std::to_string(longer.size()) + " bytes");
  Bytes huge = raws[0];
  huge[3] = 0x7f;
  EXPECT_THAT(refusal(hostile_records(1, 1, {huge})),
              HasSubstr("the record of seq 1: payload length field 21"));
  EXPECT_THAT(refusal(hostile_records(1, 1, {huge})), HasSubstr("exceeds the maximum"));
  // Whole records, but not the ones the message names.
  EXPECT_EQ(refusal(hostile_records(2, 3, {raws[0], raws[1]})),
            "peer frame: records 2..3: the record of seq 2: carries seq 1, not 2");
}

TEST_F(PeerWire, ARecordCountThatDisagreesWithTheRangeIsRefused) {
  const auto raws = journal_records("leader", 3);
  EXPECT_EQ(refusal(hostile_records(1, 3, {raws[0], raws[1]})),
            "peer frame: records 1..3 name 3 records, 2 came");
  EXPECT_EQ(refusal(hostile_records(1, 1, raws)),
            "peer frame: records 1..1 name 1 records, 3 came");
  EXPECT_EQ(refusal(hostile_records(5, 4, {})), "peer frame: records 5..4 are not a range of seqs");
  EXPECT_EQ(refusal(hostile_records(0, 2, {raws[0], raws[1]})),
            "peer frame: records 0..2 are not a range of seqs");
  // A hostile range as wide as the seqs go allocates nothing before it is refused.
  EXPECT_EQ(refusal(hostile_records(1, std::numeric_limits<std::uint64_t>::max(), {})),
            "peer frame: records 1..18446744073709551615 name 18446744073709551615 records, 0 "
            "came");
}

TEST_F(PeerWire, RecordsBesideAnyOtherMessageAreRefused) {
  const auto raws = journal_records("leader", 1);
  capnp::MallocMessageBuilder m;
  auto root = m.initRoot<schema::PeerMessage>();
  root.getBody().initHeartbeat().setEpoch(7);
  root.initRawRecords(1).set(0, kj::arrayPtr(raws[0].data(), raws[0].size()));
  EXPECT_EQ(refusal(frame_of(m)),
            "peer frame: 1 records beside a message that is not a Records message");

  capnp::MallocMessageBuilder check;
  auto c = check.initRoot<schema::PeerMessage>();
  c.getBody().initStateCheck().setSeq(3);
  c.initRawRecords(2);
  EXPECT_EQ(refusal(frame_of(check)),
            "peer frame: 2 records beside a message that is not a Records message");
}

TEST_F(PeerWire, BadPointersAreRefusedNotThrown) {
  std::string bytes = frame_of(Heartbeat{7, 1, seq(3)});
  // After the length (4 bytes) and a one-segment table (8 bytes), the root pointer: make it
  // point far past the segment.
  ASSERT_GE(bytes.size(), 20u);
  const std::uint64_t far = std::uint64_t{1'000'000} << 2 | std::uint64_t{1} << 32;
  for (int i = 0; i < 8; ++i)
    bytes[12 + static_cast<std::size_t>(i)] = static_cast<char>(far >> (8 * i));
  EXPECT_THAT(refusal(bytes), HasSubstr("peer frame: malformed message: "));
}

// A sender's mistakes are bugs, caught where they are made rather than refused by every follower.
TEST_F(PeerWire, DeathOnASenderThatBreaksTheContract) {
  const auto raws = journal_records("leader", 2);
  std::string out;
  EXPECT_DEATH(append_peer_frame(out, Heartbeat{7, 1, seq(2)}, spans({raws[0]})), "records.empty");
  EXPECT_DEATH(append_peer_frame(out, Records{7, seq(1), seq(3)}, spans(raws)), "records.size");
  EXPECT_DEATH(append_peer_frame(out, Records{7, seq(2), seq(3)}, spans(raws)),
               "record_shape_fault");
}

// Flips a few bytes of valid frames, many times over: the reader and the decoder either take the
// result or refuse it, and whatever decodes encodes back to the same frame.
TEST_F(PeerWire, RandomByteFlipsNeverCrashTheDecoder) {
  const auto frames = valid_frames();
  std::mt19937_64 rng(20'261'215);  // the engine's output is fixed by the standard
  int decoded = 0, refused = 0, unframed = 0;
  for (int round = 0; round < 4'000; ++round) {
    std::string bytes = frames[rng() % frames.size()];
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < flips; ++i) {
      // Mostly past the length prefix, where the decoder (not the reader) has to cope.
      const std::size_t at = rng() % 16 == 0 ? rng() % 4 : 4 + rng() % (bytes.size() - 4);
      bytes[at] = static_cast<char>(bytes[at] ^ static_cast<char>(1 + rng() % 255));
    }
    wire::FrameReader in(kPeerFrameMax);
    in.feed(bytes.data(), bytes.size());
    if (in.next() != wire::FrameReader::Status::kFrame) {
      ++unframed;
      continue;
    }
    auto d = decode_peer_frame(in.message());
    if (!d.ok()) {
      ++refused;
      EXPECT_EQ(d.error().message.find('\n'), std::string::npos) << d.error().message;
      continue;
    }
    ++decoded;
    const auto again = decode_bytes(frame_of(d.value().frame, d.value().records));
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again.value().frame == d.value().frame) << "round " << round;
    EXPECT_EQ(again.value().records, d.value().records) << "round " << round;
  }
  // Both outcomes are common; a change that refused everything would show here.
  EXPECT_GT(decoded, 500);
  EXPECT_GT(refused, 500);
  EXPECT_GT(unframed, 100);
}

}  // namespace
}  // namespace qx::cluster
