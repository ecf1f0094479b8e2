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

Result<ReplayResult> replay_journal(const std::filesystem::path& dir,
                                    const ReplayOptions& options) {
  ReplayResult out;
  core::Seq start{};
  if (options.use_snapshot) {
    auto store = Store::open(dir);
    if (!store) return store.error();
    auto found = store.value().latest_snapshot(options.until_seq);
    if (!found) return found.error();
    out.notes = found.value().skipped;
    auto& snap = found.value().found;
    if (snap &&
        (!options.until_time_ns || snap->snapshot.last_timestamp_ns <= *options.until_time_ns)) {
      out.engine = core::Engine::restore(snap->snapshot);
      start = snap->snapshot.last_seq;
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
