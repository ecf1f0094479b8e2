#include "replay/replay.h"

#include <cinttypes>
#include <cstdio>

#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/store.h"

namespace qx::replay {

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string hex_chain(const ChainHash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : h) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::optional<ChainHash> parse_hex_chain(std::string_view text) {
  ChainHash h{};
  if (text.size() != 2 * h.size()) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < h.size(); ++i) {
    const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return h;
}

namespace {

// The snapshot replay starts from, or nullopt for a replay from seq 1. Without a base this is the
// newest valid snapshot at or before until_seq (and snapshot_max_seq), dropped when it is past
// until_time_ns. With a base at seq S one at or after S is required: older snapshots past
// until_time_ns are tried, and finding none is an Error.
Result<std::optional<LoadedSnapshot>> start_snapshot(const std::filesystem::path& dir,
                                                     const ReplayOptions& options,
                                                     const std::optional<JournalBase>& base,
                                                     std::vector<std::string>& notes) {
  std::string based;
  if (base) {
    based = "journal " + dir.string() + " starts after seq " +
            std::to_string(core::raw(base->seq)) + " (installed from a snapshot)";
    if (options.until_seq && *options.until_seq < base->seq) {
      return Error{based + ": cannot replay until seq " +
                   std::to_string(core::raw(*options.until_seq))};
    }
  }
  auto store = Store::open(dir);
  if (!store) return store.error();
  std::optional<core::Seq> until = options.until_seq;
  if (options.snapshot_max_seq && (!until || *options.snapshot_max_seq < *until)) {
    until = options.snapshot_max_seq;
  }
  const std::optional<core::Seq> bound = until;
  std::optional<core::Seq> too_late;  // a usable snapshot stamped after until_time_ns
  while (true) {
    auto found = store.value().latest_snapshot(until);
    if (!found) return found.error();
    notes.insert(notes.end(), found.value().skipped.begin(), found.value().skipped.end());
    std::optional<LoadedSnapshot>& snap = found.value().found;
    if (base && (!snap || snap->snapshot.last_seq < base->seq)) break;
    if (!snap) return std::optional<LoadedSnapshot>{};
    if (!options.until_time_ns || snap->snapshot.last_timestamp_ns <= *options.until_time_ns) {
      return std::move(snap);
    }
    if (!base) return std::optional<LoadedSnapshot>{};
    // A based journal cannot fall back to seq 1: try the next older snapshot.
    too_late = snap->snapshot.last_seq;
    if (snap->snapshot.last_seq == base->seq) break;
    until = core::Seq(core::raw(snap->snapshot.last_seq) - 1);
  }
  if (too_late) {
    return Error{based + ": until time " + std::to_string(*options.until_time_ns) +
                 " ns is before every valid snapshot at or after seq " +
                 std::to_string(core::raw(base->seq)) + " (the earliest is at seq " +
                 std::to_string(core::raw(*too_late)) + ")"};
  }
  std::string s = std::to_string(core::raw(base->seq));
  std::string where = "at or after seq " + s;
  if (bound && *bound == base->seq) where = "at seq " + s;
  if (bound && *bound > base->seq)
    where = "from seq " + s + " to " + std::to_string(core::raw(*bound));
  if (bound && *bound < base->seq) {
    where += " (the search was bounded at seq " + std::to_string(core::raw(*bound)) + ")";
  }
  return Error{based + " but the store has no valid snapshot " + where};
}

}  // namespace

Result<ReplayResult> replay_journal(const std::filesystem::path& dir,
                                    const ReplayOptions& options) {
  ReplayResult out;
  core::Seq start{};
  auto base = read_journal_base(dir);
  if (!base) return base.error();
  if (options.start_from != nullptr) {
    if (base.value() && options.start_from->last_seq < base.value()->seq) {
      return Error{"journal " + dir.string() + " starts after seq " +
                   std::to_string(core::raw(base.value()->seq)) +
                   ": the snapshot given to start from is at seq " +
                   std::to_string(core::raw(options.start_from->last_seq))};
    }
    out.engine = core::Engine::restore(*options.start_from);
    start = options.start_from->last_seq;
    out.snapshot_seq = start;
  } else if (options.use_snapshot || base.value()) {
    auto snap = start_snapshot(dir, options, base.value(), out.notes);
    if (!snap) return snap.error();
    if (snap.value()) {
      out.engine = core::Engine::restore(snap.value()->snapshot);
      start = snap.value()->snapshot.last_seq;
      out.snapshot_seq = start;
    }
  }
  auto reader = start == core::Seq{} ? JournalReader::open(dir)
                                     : JournalReader::open_at(dir, core::Seq(core::raw(start) + 1));
  if (!reader) return reader.error();
  Record rec;
  core::EffectBuffer effects;
  while (true) {
    auto more = reader.value().next(rec);
    if (!more) return more.error();
    if (!more.value()) break;
    if (rec.seq <= start) continue;
    if (options.until_seq && rec.seq > *options.until_seq) break;
    if (options.until_time_ns && rec.timestamp_ns > *options.until_time_ns) break;
    auto event = decode_event(rec.payload);
    if (!event) {
      return Error{"segment " + rec.segment + " offset " + std::to_string(rec.offset) + " seq " +
                   std::to_string(core::raw(rec.seq)) + ": " + event.error().message};
    }
    const core::EventHeader& h = event.value().header;
    if (h.seq != rec.seq || h.timestamp_ns != rec.timestamp_ns) {
      return Error{"segment " + rec.segment + " offset " + std::to_string(rec.offset) +
                   ": payload header disagrees with the record header"};
    }
    effects.clear();
    out.engine.apply(event.value(), effects);
    out.events_applied += 1;
    if (options.on_event) options.on_event(event.value(), effects);
    if (options.on_progress && (out.events_applied & 0xFFFF) == 0) {
      options.on_progress(reader.value().bytes_read());
    }
  }
  if (reader.value().torn_tail()) out.notes.push_back(*reader.value().torn_tail());
  return out;
}

}  // namespace qx::replay
