// Journal benchmarks: durable append by group size, verify and replay throughput, restart from a
// snapshot plus a long tail, and bytes per event. A load tool that prints its figures (not
// Google Benchmark): each phase is one long run over real files.
//
//   qx_journal_bench [DIR] [--tail N] [--prefix N]
//
// It builds a journal of a realistic session (sim::SessionGenerator): `prefix` events, a
// snapshot, then `tail` more events (defaults 1,000,000 and 10,000,000), written with fsync off
// (building is not what is measured). DIR defaults to a fresh directory under /tmp, removed at
// the end. Environment QX_BENCH_KEEP=1 keeps it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "sim/workload.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace qx;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <class T>
T need(replay::Result<T> r) {
  if (!r) {
    std::fprintf(stderr, "qx_journal_bench: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  return std::move(r.value());
}

void need(const replay::Status& s) {
  if (!s) {
    std::fprintf(stderr, "qx_journal_bench: %s\n", s.error().message.c_str());
    std::exit(1);
  }
}

std::uint64_t dir_bytes(const fs::path& d, const char* ext) {
  std::uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(d)) {
    if (e.is_regular_file() && e.path().extension() == ext) n += e.file_size();
  }
  return n;
}

// Durable appends of pre-encoded events in groups of `group` with fdatasync per group.
void append_by_group(const fs::path& base, const std::vector<replay::Bytes>& payloads) {
  std::printf("durable append (fdatasync per group), pre-encoded payloads:\n");
  for (std::size_t group : {1u, 16u, 256u, 4096u, 65536u}) {
    fs::path d = base / ("append_" + std::to_string(group));
    auto w = need(replay::JournalWriter::open(d, {}));
    std::size_t n = std::min<std::size_t>(payloads.size(), group * 2'000);
    auto t = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      need(w.append_encoded(core::Seq(i + 1), static_cast<std::int64_t>(i), payloads[i]));
      if ((i + 1) % group == 0) need(w.commit());
    }
    need(w.commit());
    double s = since(t);
    std::printf("  group %6zu: %9.0f events/s (%zu events, %.3f s)\n", group,
                static_cast<double>(n) / s, n, s);
    fs::remove_all(d);
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = fs::temp_directory_path() / ("qx_journal_bench_" + std::to_string(::getpid()));
  std::uint64_t prefix = 1'000'000, tail = 10'000'000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tail" && i + 1 < argc) {
      tail = std::stoull(argv[++i]);
    } else if (a == "--prefix" && i + 1 < argc) {
      prefix = std::stoull(argv[++i]);
    } else if (a == "--help") {
      std::printf("usage: qx_journal_bench [DIR] [--tail N] [--prefix N]\n");
      return 0;
    } else {
      dir = a;
    }
  }
  fs::remove_all(dir);
  fs::path journal = dir / "journal";
  std::printf("journal bench: %llu prefix + %llu tail events in %s\n",
              static_cast<unsigned long long>(prefix), static_cast<unsigned long long>(tail),
              journal.c_str());

  // Build: generate, apply, journal (fsync off), snapshot after the prefix.
  std::vector<replay::Bytes> sample;
  {
    replay::JournalOptions fast;
    fast.fsync = replay::FsyncPolicy::kNone;
    auto w = need(replay::JournalWriter::open(journal, fast));
    auto store = need(replay::Store::open(journal));
    sim::SessionConfig config;
    config.seed = 7;
    sim::SessionGenerator gen(config);
    core::Engine engine;
    core::EffectBuffer fx;
    auto t = Clock::now();
    for (std::uint64_t i = 0; i < prefix + tail; ++i) {
      core::Event e = gen.next();
      auto bytes = need(replay::encode_event(e));
      need(w.append_encoded(e.header.seq, e.header.timestamp_ns, bytes));
      if (sample.size() < 200'000) sample.push_back(std::move(bytes));
      if (w.pending_bytes() > (4u << 20)) need(w.commit());
      fx.clear();
      engine.apply(e, fx);
      gen.observe(fx);
      if (i + 1 == prefix) {
        need(w.commit());
        need(store.put_snapshot(engine.snapshot()));
      }
    }
    need(w.commit());
    std::printf("built in %.1f s; final state_hash=%s\n", since(t),
                replay::hex64(engine.state_hash()).c_str());
  }
  std::uint64_t events = prefix + tail;
  std::uint64_t bytes = dir_bytes(journal, ".qxj");
  std::printf("bytes per event on disk: %.1f (%llu bytes of segments)\n",
              static_cast<double>(bytes) / static_cast<double>(events),
              static_cast<unsigned long long>(bytes));

  append_by_group(dir, sample);

  {
    auto t = Clock::now();
    auto r = need(replay::JournalReader::open(journal));
    replay::Record rec;
    std::uint64_t n = 0;
    while (need(r.next(rec))) n += 1;
    double s = since(t);
    std::printf("verify (read, CRC32C, SHA-256 chain): %.0f events/s (%llu events, %.2f s)\n",
                static_cast<double>(n) / s, static_cast<unsigned long long>(n), s);
  }
  {
    auto t = Clock::now();
    auto r = need(replay::JournalReader::open(journal));
    replay::Record rec;
    std::uint64_t n = 0;
    while (need(r.next(rec))) {
      need(replay::decode_event(rec.payload));
      n += 1;
    }
    double s = since(t);
    std::printf("verify + decode (qx verify): %.0f events/s (%.2f s)\n", static_cast<double>(n) / s,
                s);
  }
  {
    auto t = Clock::now();
    auto r = need(replay::replay_journal(journal, {}));
    double s = since(t);
    std::printf(
        "full replay (read, CRC, chain, decode, apply): %.0f events/s (%.2f s) "
        "state_hash=%s\n",
        static_cast<double>(r.events_applied) / s, s, replay::hex64(r.engine.state_hash()).c_str());
  }
  {
    replay::ReplayOptions opt;
    opt.use_snapshot = true;
    auto t = Clock::now();
    auto r = need(replay::replay_journal(journal, opt));
    double s = since(t);
    std::printf("restart: snapshot at seq %llu + %llu-event tail: %.2f s state_hash=%s\n",
                static_cast<unsigned long long>(core::raw(r.snapshot_seq.value_or(core::Seq{}))),
                static_cast<unsigned long long>(r.events_applied), s,
                replay::hex64(r.engine.state_hash()).c_str());
  }
  if (std::getenv("QX_BENCH_KEEP") == nullptr) fs::remove_all(dir);
  return 0;
}
