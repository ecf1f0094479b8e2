// Writes the binary seed corpora of the fuzz targets from the golden journals, so that every seed
// is derived, not hand-typed: run it after a change to an encoding and commit what changed.
//
//   build/dev/fuzz/qx_fuzz_make_seeds journals/golden fuzz/corpus
//
// codec: the payload of every 16th event of each golden journal, the effects the engine makes of
// some of them, and the engine's snapshot after each journal (each behind the target's selector
// byte). peer_frame: one frame of every replication message, and a Records frame carrying golden
// records. client_frame: one frame of every client request. The text targets' seeds (LOBSTER,
// Binance, config files, tokens) are written by hand in their folders.
#include <capnp/message.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/wire.h"
#include "core/engine.h"
#include "replay/codec.h"
#include "replay/journal.h"
#include "server/wire_frame.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

void write(const fs::path& dir, const std::string& name, std::uint8_t selector, const Bytes& body,
           bool with_selector = true) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  if (with_selector) out.put(static_cast<char>(selector));
  out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
}

Bytes bytes_of(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

// codec seeds from one golden journal; returns a few of its raw records for the peer frames.
std::vector<Bytes> codec_seeds(const fs::path& journal, const fs::path& out) {
  auto opened = qx::replay::JournalReader::open(journal);
  if (!opened.ok()) throw std::runtime_error(opened.error().message);
  auto& reader = opened.value();
  qx::core::Engine engine;
  qx::core::EffectBuffer effects;
  std::vector<Bytes> raws;
  qx::replay::Record rec;
  const std::string name = journal.filename().string();
  for (std::uint64_t i = 0;; ++i) {
    auto more = reader.next(rec);
    if (!more.ok()) throw std::runtime_error(more.error().message);
    if (!more.value()) break;
    auto ev = qx::replay::decode_event(rec.payload);
    if (!ev.ok()) throw std::runtime_error(ev.error().message);
    effects.clear();
    engine.apply(ev.value(), effects);
    if (raws.size() < 3) raws.emplace_back(rec.raw.begin(), rec.raw.end());
    if (i % 16 != 0) continue;
    write(out / "codec", name + "-event-" + std::to_string(i), 0,
          Bytes(rec.payload.begin(), rec.payload.end()));
    if (!effects.empty()) {
      write(out / "codec", name + "-effect-" + std::to_string(i), 1,
            qx::replay::encode_effect(effects.back()).value());
    }
  }
  // A long journal's snapshot would raise the fuzzer's input size for every input.
  auto snapshot = qx::replay::encode_snapshot(engine.snapshot()).value();
  if (snapshot.size() <= 8192) write(out / "codec", name + "-snapshot", 2, snapshot);
  return raws;
}

Bytes file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// journal seeds: a golden journal whole, torn, and copied after a base into two segments.
void journal_seeds(const fs::path& golden, const fs::path& out) {
  const Bytes whole = file_bytes(golden / "00000000000000000001.qxj");
  write(out / "journal", "whole", 0, whole);
  write(out / "journal", "torn", 0,
        Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() * 2 / 3)));

  std::vector<Bytes> raws;
  {
    auto reader = qx::replay::JournalReader::open(golden).value();
    qx::replay::Record rec;
    while (reader.next(rec).value()) raws.emplace_back(rec.raw.begin(), rec.raw.end());
  }
  const std::size_t base = raws.size() / 3;
  const auto dir = fs::temp_directory_path() / "qx-fuzz-make-seeds";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const qx::replay::JournalBase jb{qx::replay::record_seq(raws[base - 1].data()),
                                   qx::replay::record_chain(raws[base - 1].data())};
  if (!qx::replay::reset_journal_to_base(dir, jb).ok()) throw std::runtime_error("reset failed");
  {
    auto w = qx::replay::JournalWriter::open(
        dir, {.segment_bytes_max = whole.size() / 3, .fsync = qx::replay::FsyncPolicy::kNone});
    if (!w.ok()) throw std::runtime_error(w.error().message);
    for (std::size_t i = base; i < raws.size(); ++i) {
      if (!w.value().append_record(raws[i]).ok() || !w.value().commit().ok()) {
        throw std::runtime_error("copying records failed");
      }
    }
  }
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".qxj") segments.push_back(e.path());
  }
  std::sort(segments.begin(), segments.end());
  if (segments.size() < 2) throw std::runtime_error("expected two segments");
  const Bytes first = file_bytes(segments[0]), second = file_bytes(segments[1]);
  Bytes body = file_bytes(dir / qx::replay::kBaseFileName);
  body.push_back(static_cast<std::uint8_t>(first.size()));
  body.push_back(static_cast<std::uint8_t>(first.size() >> 8));
  body.insert(body.end(), first.begin(), first.end());
  body.insert(body.end(), second.begin(), second.end());
  write(out / "journal", "base-and-two-segments", 3, body);
  fs::remove_all(dir);
}

void peer_seeds(const std::vector<Bytes>& raws, const fs::path& out) {
  using namespace qx::cluster;
  const qx::replay::ChainHash chain{1, 2, 3};
  const std::vector<std::pair<std::string, PeerFrame>> frames = {
      {"hello", Hello{NodeId{2}, 7, 6, qx::core::Seq{40}}},
      {"heartbeat", Heartbeat{7, NodeId{1}, qx::core::Seq{41}}},
      {"probe", Probe{7, qx::core::Seq{40}, chain}},
      {"probe-reply", ProbeReply{NodeId{2}, 7, qx::core::Seq{40}, true}},
      {"truncate", Truncate{7, qx::core::Seq{39}}},
      {"acked", Acked{NodeId{2}, 7, qx::core::Seq{41}}},
      {"refuse", Refuse{NodeId{3}, 7, 8}},
      {"install-snapshot", InstallSnapshot{7, qx::core::Seq{40}, chain, 99}},
      {"state-check", StateCheck{7, qx::core::Seq{40}, 12345}},
      {"snapshot-chunk", SnapshotChunk{7, qx::core::Seq{40}, 0, 4, {1, 2, 3, 4}}},
  };
  for (const auto& [name, f] : frames) {
    std::string s;
    append_peer_frame(s, f);
    write(out / "peer_frame", name, 63, bytes_of(s));
  }
  std::vector<std::span<const std::uint8_t>> spans(raws.begin(), raws.end());
  std::string s;
  append_peer_frame(s,
                    Records{7, qx::replay::record_seq(raws.front().data()),
                            qx::replay::record_seq(raws.back().data())},
                    spans);
  write(out / "peer_frame", "records", 63, bytes_of(s));
}

void client_seeds(const fs::path& out) {
  using qx::wire::ClientMessage;
  auto frame = [&](const std::string& name, auto fill) {
    capnp::MallocMessageBuilder m;
    auto msg = m.initRoot<ClientMessage>();
    msg.setRequestId(5);
    fill(msg.getBody());
    std::string s;
    qx::wire::append_frame(s, m);
    write(out / "client_frame", name, 63, bytes_of(s));
  };
  frame("ping", [](ClientMessage::Body::Builder b) { b.setPing(); });
  frame("login-password", [](ClientMessage::Body::Builder b) {
    auto p = b.initLogin().initPassword();
    p.setUsername("alice");
    p.setPassword("secret");
  });
  frame("login-token", [](ClientMessage::Body::Builder b) { b.initLogin().setToken("a.b.c"); });
  frame("new-order", [](ClientMessage::Body::Builder b) {
    auto o = b.initNewOrder();
    o.setAccount(0);
    o.setInstrument(0);
    o.setClientOrderId(9);
    o.setDirection(qx::schema::Direction::BUY);
    o.setPrice(18500);
    o.setVolume(2);
    o.setTriggerPrice(18400);
  });
  frame("amend", [](ClientMessage::Body::Builder b) {
    auto a = b.initAmend();
    a.setAccount(0);
    a.setOrderId(1);
    a.setPrice(18501);
    a.setVolumeLeft(1);
  });
  frame("cancel", [](ClientMessage::Body::Builder b) { b.initCancel().setClientOrderId(9); });
  frame("subscribe", [](ClientMessage::Body::Builder b) {
    auto s = b.initSubscribe();
    s.setDepth(5);
    s.setTrades(true);
  });
  frame("account", [](ClientMessage::Body::Builder b) { b.setAccount(1); });
  // A session's worth: the order, its amend and its cancel in one stream.
  Bytes session;
  for (const char* f : {"new-order", "amend", "cancel"}) {
    const Bytes one = file_bytes(out / "client_frame" / f);
    session.insert(session.end(), one.begin() + 1, one.end());
  }
  write(out / "client_frame", "order-amend-cancel", 63, session);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: qx_fuzz_make_seeds GOLDEN_DIR CORPUS_DIR\n");
    return 2;
  }
  const fs::path golden(argv[1]), out(argv[2]);
  try {
    std::vector<Bytes> raws;
    for (const char* j : {"basic", "rules", "rejects"}) {
      auto r = codec_seeds(golden / j, out);
      if (raws.empty()) raws = std::move(r);
    }
    journal_seeds(golden / "rules", out);
    peer_seeds(raws, out);
    client_seeds(out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qx_fuzz_make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
