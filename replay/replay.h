// Replay: a journal directory (plus, optionally, its newest valid snapshot) through the engine.
//
//   ReplayOptions opt;
//   opt.until_seq = core::Seq(1000);
//   auto r = replay_journal(dir, opt);   // r.value().engine is the state after seq 1000
//
// With `use_snapshot`, replay starts from the newest snapshot at or before the target that passes
// its checks (see store.h) and applies only the tail; the result is identical to a full replay
// (tests/property checks this). `on_event` sees every applied event with its effects, e.g. for
// building indexes or audit output.
//
// A journal with a base (journal.h: it starts after seq S, installed from a snapshot) holds no
// state before S + 1 but a snapshot's: replay then always starts from the newest valid stored
// snapshot at or after S that the targets allow, even when `use_snapshot` is false, and is an
// Error when there is none, or when until_seq is before S.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"
#include "replay/result.h"

namespace qx::replay {

struct ReplayOptions {
  std::optional<core::Seq> until_seq;         // stop after this seq
  std::optional<std::int64_t> until_time_ns;  // stop before the first event stamped after this
  bool use_snapshot = false;                  // a based journal uses one regardless (see above)
  // With a snapshot, start from one at or before this seq too (for on_event to see the events
  // after it, e.g. to index them); by default the newest usable one.
  std::optional<core::Seq> snapshot_max_seq;
  // Start from this snapshot instead of one from the store, which is then not opened (a server
  // whose store another thread may have open); on a based journal it must be at or after the base.
  const core::Snapshot* start_from = nullptr;
  std::function<void(const core::Event&, const core::EffectBuffer&)> on_event;
  std::function<void(std::uint64_t bytes_read)> on_progress;  // called every 64K events
};

struct ReplayResult {
  core::Engine engine;
  std::uint64_t events_applied = 0;
  std::optional<core::Seq> snapshot_seq;  // where replay started, when from a snapshot
  std::vector<std::string> notes;         // torn tail, skipped snapshots
};

Result<ReplayResult> replay_journal(const std::filesystem::path& dir, const ReplayOptions& options);

// Hex text of a 64-bit hash, 16 digits (the form every tool prints).
std::string hex64(std::uint64_t v);
// Hex text of a chain hash, 64 lowercase digits; and back (nullopt unless exactly 64 hex digits).
std::string hex_chain(const ChainHash& h);
std::optional<ChainHash> parse_hex_chain(std::string_view text);

}  // namespace qx::replay
