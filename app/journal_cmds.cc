#include "app/journal_cmds.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <stdexcept>

#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/store.h"
#include "replay/views.h"

namespace qx::app {

using replay::account_json;
using replay::book_json;
using replay::event_json;
using replay::orders_json;
using replay::positions_json;
using replay::trades_json;

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

template <class T>
T unwrap(replay::Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r.value());
}

void check(const replay::Status& s) {
  if (!s) throw std::runtime_error(s.error().message);
}

std::uint64_t journal_bytes(const fs::path& dir) {
  std::uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".qxj") n += e.file_size(ec);
  }
  return n;
}

// A progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  Progress(const char* what, std::uint64_t total) : what_(what), total_(total) {
    on_ = ::isatty(STDERR_FILENO) == 1 && total_ > 0;
  }
  ~Progress() {
    if (on_ && drawn_) std::fprintf(stderr, "\r\033[K");
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(std::uint64_t done) {
    if (!on_) return;
    std::uint64_t pct = std::min<std::uint64_t>(100, done * 100 / total_);
    char bar[41];
    std::uint64_t fill = pct * 40 / 100;
    for (std::uint64_t i = 0; i < 40; ++i) bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    std::fprintf(stderr, "\r%s [%s] %3llu%%", what_, bar, static_cast<unsigned long long>(pct));
    drawn_ = true;
  }

 private:
  const char* what_;
  std::uint64_t total_;
  bool on_ = false;
  bool drawn_ = false;
};

void require_journal(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("no journal directory at " + dir);
}

// Replays to the target (from the newest usable snapshot when allowed), with progress.
replay::ReplayResult replay_to(const std::string& dir, std::optional<std::uint64_t> until_seq,
                               bool from_snapshot) {
  require_journal(dir);
  Progress bar("replay", journal_bytes(dir));
  replay::ReplayOptions opt;
  if (until_seq) opt.until_seq = core::Seq(*until_seq);
  opt.use_snapshot = from_snapshot;
  opt.on_progress = [&](std::uint64_t bytes) { bar.update(bytes); };
  return unwrap(replay::replay_journal(dir, opt));
}

core::AccountId resolve_account(const core::Engine& e, const std::string& text) {
  if (auto a = e.find_account(text)) return *a;
  if (text.size() > 1 && text[0] == '#') {
    std::uint64_t id = std::stoull(text.substr(1));
    if (id < e.account_count()) return core::AccountId(static_cast<std::uint32_t>(id));
  }
  throw std::runtime_error("unknown account '" + text + "' (give its name or #id)");
}

core::InstrumentId resolve_instrument(const core::Engine& e, const std::string& text) {
  if (auto i = e.find_instrument(text)) return *i;
  if (text.size() > 1 && text[0] == '#') {
    std::uint64_t id = std::stoull(text.substr(1));
    if (id < e.instrument_count()) return core::InstrumentId(static_cast<std::uint32_t>(id));
  }
  throw std::runtime_error("unknown instrument '" + text + "' (give its code or #id)");
}

std::vector<std::uint64_t> intersect(const std::vector<std::uint64_t>& a,
                                     const std::vector<std::uint64_t>& b) {
  std::vector<std::uint64_t> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// Brings the indexes up to the journal's end (from scratch when `rebuild`); returns the engine
// at the journal's end, for resolving names.
core::Engine update_indexes(const std::string& dir, bool rebuild) {
  require_journal(dir);
  auto store = unwrap(replay::Store::open(dir));
  if (rebuild) check(store.clear_indexes());
  std::uint64_t indexed = core::raw(unwrap(store.indexed_seq()));
  Progress bar("index", journal_bytes(dir));
  auto run = [&](bool from_snapshot, std::optional<core::Seq> snapshot_max_seq) {
    replay::IndexBuilder builder;
    replay::ReplayOptions opt;
    opt.use_snapshot = from_snapshot;
    opt.snapshot_max_seq = snapshot_max_seq;
    opt.on_progress = [&](std::uint64_t bytes) { bar.update(bytes); };
    opt.on_event = [&](const core::Event& ev, const core::EffectBuffer& fx) {
      if (core::raw(ev.header.seq) <= indexed) return;
      builder.add(ev, fx);
      if (builder.pending_keys() >= 200'000) check(store.flush(builder));
    };
    auto r = unwrap(replay::replay_journal(dir, opt));
    if (builder.last_seq() != core::Seq{}) check(store.flush(builder));
    return r;
  };
  // A based journal (journal.h) holds no state before its base but a snapshot's: its records
  // are indexed from the newest snapshot at or before the first one not yet indexed.
  if (auto base = unwrap(replay::read_journal_base(dir))) {
    std::uint64_t from = std::max(indexed, core::raw(base->seq));
    return std::move(run(true, core::Seq(from)).engine);
  }
  auto r = run(!rebuild, std::nullopt);
  if (r.snapshot_seq && core::raw(*r.snapshot_seq) > indexed) r = run(false, std::nullopt);
  return std::move(r.engine);
}

void print_hashes(std::ostream& out, const replay::ReplayResult& r, double seconds, bool as_json) {
  const core::Engine& e = r.engine;
  double rate = seconds > 0 ? static_cast<double>(r.events_applied) / seconds : 0;
  if (as_json) {
    json j{{"last_seq", core::raw(e.last_seq())},
           {"state_hash", replay::hex64(e.state_hash())},
           {"effects_hash", replay::hex64(e.effects_hash())},
           {"events_applied", r.events_applied},
           {"events_per_second", static_cast<std::uint64_t>(rate)},
           {"last_timestamp_ns", e.last_timestamp_ns()},
           {"notes", r.notes}};
    if (r.snapshot_seq) j["from_snapshot_seq"] = core::raw(*r.snapshot_seq);
    out << j.dump() << '\n';
    return;
  }
  for (const std::string& n : r.notes) out << "note: " << n << '\n';
  if (r.snapshot_seq) out << "from snapshot at seq " << core::raw(*r.snapshot_seq) << '\n';
  out << "last_seq=" << core::raw(e.last_seq()) << '\n';
  out << "state_hash=" << replay::hex64(e.state_hash()) << '\n';
  out << "effects_hash=" << replay::hex64(e.effects_hash()) << '\n';
  out << "events applied: " << r.events_applied
      << ", events/s: " << static_cast<std::uint64_t>(rate) << '\n';
}

std::uint64_t rate(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<std::uint64_t>(static_cast<double>(n) / seconds) : 0;
}

using replay::hex_chain;

std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::int64_t parse_time_ns(const std::string& text) {
  bool digits = !text.empty() &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) return std::stoll(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) !=
          6 ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    throw std::runtime_error("bad time '" + text +
                             "': give nanoseconds since the epoch or YYYY-MM-DDTHH:MM:SS[.f]Z");
  }
  std::string rest = text.substr(static_cast<std::size_t>(used));
  std::int64_t frac_ns = 0;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    std::int64_t scale = 100'000'000;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
      frac_ns += static_cast<std::int64_t>(rest[i] - '0') * scale;
      scale /= 10;
    }
    rest = rest.substr(i);
  }
  if (rest != "Z") throw std::runtime_error("bad time '" + text + "': only UTC ('Z') is accepted");
  using namespace std::chrono;
  sys_days day{year{y} / month{static_cast<unsigned>(mo)} / d};
  auto t = day + hours{h} + minutes{mi} + seconds{s};
  return duration_cast<nanoseconds>(t.time_since_epoch()).count() + frac_ns;
}

int run_verify(const VerifyOptions& o, std::ostream& out) {
  require_journal(o.dir);
  Progress bar("verify", journal_bytes(o.dir));
  auto reader = unwrap(replay::JournalReader::open(o.dir));
  replay::Record rec;
  std::uint64_t records = 0;
  auto start = std::chrono::steady_clock::now();
  while (unwrap(reader.next(rec))) {
    auto ev = replay::decode_event(rec.payload);
    if (!ev) {
      throw std::runtime_error("segment " + rec.segment + " offset " + std::to_string(rec.offset) +
                               " seq " + std::to_string(core::raw(rec.seq)) + ": " +
                               ev.error().message);
    }
    if ((++records & 0xFFFF) == 0) bar.update(reader.bytes_read());
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& torn = reader.torn_tail();
  const auto base = reader.base();
  if (o.json) {
    json j{{"ok", !torn},
           {"segments", reader.segment_count()},
           {"records", records},
           {"last_seq", core::raw(reader.last_seq())},
           {"events_per_second", rate(records, seconds)}};
    if (torn) j["torn_tail"] = *torn;
    if (base) j["base"] = json{{"seq", core::raw(base->seq)}, {"chain", hex_chain(base->chain)}};
    out << j.dump() << '\n';
  } else {
    if (base) {
      out << "starts after seq " << core::raw(base->seq) << " (base chain "
          << hex_chain(base->chain) << ")\n";
    }
    out << "segments: " << reader.segment_count() << ", records: " << records
        << ", last_seq=" << core::raw(reader.last_seq()) << ", events/s: " << rate(records, seconds)
        << '\n';
  }
  if (torn) {
    throw std::runtime_error("torn tail: " + *torn +
                             " (a writer opening this journal cuts it back)");
  }
  if (!o.json) out << "ok\n";
  return 0;
}

int run_replay(const ReplayCmdOptions& o, std::ostream& out) {
  require_journal(o.dir);
  Progress bar("replay", journal_bytes(o.dir));
  replay::ReplayOptions opt;
  if (o.until_seq) opt.until_seq = core::Seq(*o.until_seq);
  if (o.until_time) opt.until_time_ns = parse_time_ns(*o.until_time);
  opt.use_snapshot = o.from_snapshot;
  opt.on_progress = [&](std::uint64_t bytes) { bar.update(bytes); };
  auto start = std::chrono::steady_clock::now();
  auto r = unwrap(replay::replay_journal(o.dir, opt));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_hashes(out, r, seconds, o.json);
  return 0;
}

int run_statement(const StatementOptions& o, std::ostream& out) {
  auto r = replay_to(o.dir, o.at_seq, true);
  const core::Engine& e = r.engine;
  core::AccountId a = resolve_account(e, o.account);
  json j{{"at_seq", core::raw(e.last_seq())}, {"trading_day", e.trading_day()},
         {"accounts", account_json(e, a)},    {"positions", positions_json(e, a)},
         {"orders", orders_json(e, a)},       {"trades", trades_json(e, a)}};
  out << (o.json ? j.dump() : j.dump(2)) << '\n';
  return 0;
}

int run_book(const BookOptions& o, std::ostream& out) {
  auto r = replay_to(o.dir, o.at_seq, true);
  const core::Engine& e = r.engine;
  core::InstrumentId i = resolve_instrument(e, o.instrument);
  json j = book_json(e, i, o.depth);
  j["at_seq"] = core::raw(e.last_seq());
  if (o.json) {
    out << j.dump() << '\n';
    return 0;
  }
  out << j["instrument_id"].get<std::string>() << " at seq " << core::raw(e.last_seq()) << '\n';
  out << "        bid vol       price       ask vol\n";
  for (auto it = j["asks"].rbegin(); it != j["asks"].rend(); ++it) {
    char line[96];
    std::snprintf(line, sizeof line, "%14s %11s %13lld\n", "",
                  (*it)["price"].get<std::string>().c_str(),
                  static_cast<long long>((*it)["volume"].get<std::int64_t>()));
    out << line;
  }
  for (const auto& l : j["bids"]) {
    char line[96];
    std::snprintf(line, sizeof line, "%14lld %11s\n",
                  static_cast<long long>(l["volume"].get<std::int64_t>()),
                  l["price"].get<std::string>().c_str());
    out << line;
  }
  return 0;
}

int run_events(const EventsOptions& o, std::ostream& out) {
  if (o.format != "json" && o.format != "csv") {
    throw std::runtime_error("--format must be json or csv");
  }
  core::Engine engine = update_indexes(o.dir, false);
  auto store = unwrap(replay::Store::open(o.dir));
  std::optional<std::vector<std::uint64_t>> seqs;
  auto narrow_to = [&](std::vector<std::uint64_t> v) {
    seqs = seqs ? intersect(*seqs, v) : std::move(v);
  };
  if (o.account) {
    auto id = resolve_account(engine, *o.account);
    narrow_to(unwrap(store.lookup({replay::IndexKind::kAccount, core::raw(id)})));
  }
  if (o.instrument) {
    auto id = resolve_instrument(engine, *o.instrument);
    narrow_to(unwrap(store.lookup({replay::IndexKind::kInstrument, core::raw(id)})));
  }
  std::int64_t from = o.from ? parse_time_ns(*o.from) : 0;
  std::int64_t to = o.to ? parse_time_ns(*o.to) : std::numeric_limits<std::int64_t>::max();
  if (from > to) throw std::runtime_error("--from is after --to");
  if (o.from || o.to || !seqs) narrow_to(unwrap(store.lookup_time(from, to)));

  json rows = json::array();
  if (o.format == "csv") out << "seq,timestamp_ns,source,type,account,instrument,event\n";
  if (!seqs->empty()) {
    auto reader = unwrap(replay::JournalReader::open_at(o.dir, core::Seq(seqs->front())));
    replay::Record rec;
    auto want = seqs->begin();
    while (want != seqs->end() && unwrap(reader.next(rec))) {
      if (core::raw(rec.seq) != *want) continue;
      ++want;
      if (rec.timestamp_ns < from || rec.timestamp_ns > to) continue;
      auto ev = unwrap(replay::decode_event(rec.payload));
      json j = event_json(engine, ev);
      if (o.format == "json") {
        rows.push_back(std::move(j));
      } else {
        out << j["seq"] << ',' << j["timestamp_ns"] << ',' << j["source"] << ','
            << j["type"].get<std::string>() << ',' << csv_field(j.value("account", std::string()))
            << ',' << csv_field(j.value("instrument", std::string())) << ',' << csv_field(j.dump())
            << '\n';
      }
    }
  }
  if (o.format == "json") out << rows.dump() << '\n';
  return 0;
}

// The sequence numbers of the stored snapshots, without creating a store where there is none.
int list_snapshots(const StoreCmdOptions& o, std::ostream& out) {
  require_journal(o.dir);
  std::vector<std::uint64_t> seqs;
  if (fs::exists(fs::path(o.dir) / "lmdb")) {
    auto store = unwrap(replay::Store::open(o.dir));
    for (core::Seq s : unwrap(store.snapshot_seqs())) seqs.push_back(core::raw(s));
  }
  if (o.json) {
    out << json{{"snapshot_seqs", seqs}}.dump() << '\n';
  } else if (seqs.empty()) {
    out << "no snapshots\n";
  } else {
    for (std::uint64_t s : seqs) out << "snapshot at seq " << s << '\n';
  }
  return 0;
}

int run_snapshot(const StoreCmdOptions& o, std::ostream& out) {
  if (o.list) return list_snapshots(o, out);
  auto r = replay_to(o.dir, std::nullopt, true);
  auto store = unwrap(replay::Store::open(o.dir));
  check(store.put_snapshot(r.engine.snapshot()));
  json j{{"snapshot_seq", core::raw(r.engine.last_seq())},
         {"state_hash", replay::hex64(r.engine.state_hash())}};
  if (o.json) {
    out << j.dump() << '\n';
  } else {
    out << "snapshot at seq " << core::raw(r.engine.last_seq())
        << " state_hash=" << replay::hex64(r.engine.state_hash()) << '\n';
  }
  return 0;
}

int run_index(const StoreCmdOptions& o, std::ostream& out) {
  core::Engine e = update_indexes(o.dir, true);
  if (o.json) {
    out << json{{"indexed_seq", core::raw(e.last_seq())}}.dump() << '\n';
  } else {
    out << "indexes rebuilt up to seq " << core::raw(e.last_seq()) << '\n';
  }
  return 0;
}

int run_recover(const StoreCmdOptions& o, std::ostream& out) {
  require_journal(o.dir);
  std::optional<std::string> torn;
  {
    auto writer = unwrap(replay::JournalWriter::open(o.dir, {}));
    torn = writer.open_report().torn_tail;
  }
  replay::ReplayOptions opt;
  opt.use_snapshot = true;
  auto start = std::chrono::steady_clock::now();
  auto r = unwrap(replay::replay_journal(o.dir, opt));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (torn) r.notes.insert(r.notes.begin(), "cut torn tail: " + *torn);
  print_hashes(out, r, seconds, o.json);
  return 0;
}

}  // namespace qx::app
