// `qx sim lobster`: check a LOBSTER book rebuild row by row, then time it.
//
// Two passes, because a clock read per message would cost as much as the work it measures:
// the check (sim::check_lobster) applies each message's events and compares the engine's top N
// with the reference row after every message; each timed pass then translates the files in
// chunks of messages and times only the engine's apply calls over each chunk. File reading,
// parsing and translation are outside the timed region. Every timed pass must end with the
// check's state hash (the rebuild is deterministic).
#include "app/sim_cmd.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/engine.h"
#include "replay/replay.h"
#include "sim/binance.h"
#include "sim/lobster.h"

namespace qx::app {

namespace {

using nlohmann::json;

constexpr std::size_t kTimedChunkMessages = 16'384;

struct Identity {
  std::string ticker;
  std::string date;
};

// LOBSTER names files TICKER_YYYY-MM-DD_START_END_message_N.csv.
Identity identity_of(const SimLobsterOptions& o) {
  std::string name = std::filesystem::path(o.messages).filename().string();
  std::size_t us = name.find('_');
  Identity id;
  if (us != std::string::npos && us > 0) id.ticker = name.substr(0, us);
  if (us != std::string::npos && name.size() >= us + 11) id.date = name.substr(us + 1, 10);
  if (o.ticker) id.ticker = *o.ticker;
  if (o.date) id.date = *o.date;
  if (id.ticker.empty()) throw std::runtime_error("no ticker in the file name: give --ticker");
  if (!sim::parse_trading_date(id.date).ok()) {
    throw std::runtime_error("no trading date (YYYY-MM-DD) in the file name: give --date");
  }
  return id;
}

std::string time_text(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1'000'000'000),
                static_cast<long long>(ns % 1'000'000'000));
  return buf;
}

std::string message_text(const sim::LobsterMessage& m) {
  return time_text(m.time_ns) + "," + std::to_string(static_cast<int>(m.type)) + "," +
         std::to_string(m.order_id) + "," + std::to_string(m.size) + "," + std::to_string(m.price) +
         "," + (m.direction == core::Direction::kBuy ? "1" : "-1");
}

std::string side_text(const std::vector<sim::LobsterLevel>& v) {
  std::string s;
  for (const sim::LobsterLevel& l : v) {
    s += ' ' + std::to_string(l.price) + 'x' + std::to_string(l.size);
  }
  return s.empty() ? " (empty)" : s;
}

std::string level_text(const std::optional<sim::LobsterLevel>& l) {
  return l ? std::to_string(l->price) + " x " + std::to_string(l->size) : "no level";
}

// Times the engine's apply calls over a full rebuild; returns ns, checks the state hash.
std::int64_t timed_rebuild(const SimLobsterOptions& o, const sim::LobsterConfig& config,
                           std::uint64_t expected_hash) {
  using Clock = std::chrono::steady_clock;
  auto reader = sim::LobsterReader::open(o.messages, o.orderbook, config.levels);
  if (!reader.ok()) throw std::runtime_error(reader.error().message);
  sim::LobsterBook book(config);
  core::Engine engine;
  core::EffectBuffer effects;
  std::vector<core::Event> events;
  sim::LobsterMessage m;
  sim::LobsterRow row;
  Clock::duration spent{};
  for (bool more = true; more;) {
    events.clear();
    for (std::size_t i = 0; i < kTimedChunkMessages; ++i) {
      auto next = reader.value().next(m, row);
      if (!next.ok()) throw std::runtime_error(next.error().message);
      more = next.value();
      if (!more) break;
      if (auto s = book.step(m, row, events); !s.ok()) {
        throw std::runtime_error(o.messages + ":" + std::to_string(reader.value().line()) + ": " +
                                 s.error().message);
      }
    }
    Clock::time_point t0 = Clock::now();
    for (const core::Event& e : events) {
      effects.clear();
      engine.apply(e, effects);
    }
    spent += Clock::now() - t0;
  }
  if (engine.state_hash() != expected_hash) {
    throw std::runtime_error("a timed rebuild ended with another state hash than the check");
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count();
}

void print_text(std::ostream& out, const Identity& id, const sim::LobsterCheckReport& r,
                std::int64_t apply_ns, std::uint32_t runs, std::int64_t tick_units) {
  const sim::LobsterStats& s = r.stats;
  auto type = [&](sim::LobsterType t) { return s.by_type[static_cast<std::size_t>(t)]; };
  using T = sim::LobsterType;
  out << "input: " << id.ticker << ' ' << id.date << ", " << r.levels << " level"
      << (r.levels == 1 ? "" : "s") << ", tick " << tick_units << " (1e-4 USD units)\n";
  out << "messages: " << s.messages << " (submit " << type(T::kSubmit) << ", partial cancel "
      << type(T::kPartialCancel) << ", delete " << type(T::kDelete) << ", visible execution "
      << type(T::kExecuteVisible) << ", hidden execution " << type(T::kExecuteHidden) << ", cross "
      << type(T::kCross) << ", halt " << type(T::kHalt) << ")\n";
  out << "rows compared: " << r.rows_compared << '\n';
  out << "mismatches: " << r.rows_mismatched << '\n';
  if (r.first_mismatch) {
    const sim::LobsterMismatch& d = *r.first_mismatch;
    out << "first mismatch: line " << r.first_mismatch_line << " ("
        << message_text(r.first_mismatch_message)
        << "): " << (d.direction == core::Direction::kBuy ? "bid" : "ask") << " level "
        << d.level + 1 << ": expected " << level_text(d.expected) << ", engine "
        << level_text(d.actual) << '\n';
    out << "  reference asks" << side_text(r.first_mismatch_expected.asks) << '\n';
    out << "  engine    asks" << side_text(r.first_mismatch_actual.asks) << '\n';
    out << "  reference bids" << side_text(r.first_mismatch_expected.bids) << '\n';
    out << "  engine    bids" << side_text(r.first_mismatch_actual.bids) << '\n';
  }
  out << "levels seeded from the orderbook file: " << s.levels_seeded_at_start + s.levels_seeded
      << " (" << s.levels_seeded_at_start << " at start, " << s.levels_seeded << " of "
      << s.levels_entered << " levels that entered the window without a message; "
      << s.levels_dropped << " stale levels dropped)\n";
  out << "unknown order ids: " << s.unknown_order_messages
      << " messages; size disagreements: " << s.size_disagreements
      << "; shortfall: " << s.shortfall_lots << " shares\n";
  out << "engine events: " << s.events << " (rejects " << r.engine_rejects << ", trades "
      << r.engine_trades << ")\n";
  if (!r.first_engine_problem.empty())
    out << "first engine problem: " << r.first_engine_problem << '\n';
  out << "state_hash=" << replay::hex64(r.state_hash) << '\n';
  out << "effects_hash=" << replay::hex64(r.effects_hash) << '\n';
  if (runs == 0) return;
  std::int64_t ns = std::max<std::int64_t>(apply_ns, 1);
  auto msgs = static_cast<std::int64_t>(s.messages);
  std::int64_t per_s = msgs * 1'000'000'000 / ns;  // exact below 9.2e9 messages
  std::int64_t tenth_ns = ns * 10 / std::max<std::int64_t>(msgs, 1);
  out << "apply: " << ns / 1000 << " us for " << msgs << " messages (" << s.events
      << " events): " << per_s << " messages/s, " << tenth_ns / 10 << '.' << tenth_ns % 10
      << " ns/message (engine apply only, median of " << runs << " run" << (runs == 1 ? "" : "s")
      << ")\n";
}

void print_json(std::ostream& out, const Identity& id, const sim::LobsterCheckReport& r,
                std::int64_t apply_ns, std::uint32_t runs) {
  const sim::LobsterStats& s = r.stats;
  json types = json::object();
  static constexpr const char* kNames[sim::kLobsterTypes] = {
      "",      "submit", "partial_cancel", "delete", "visible_execution", "hidden_execution",
      "cross", "halt"};
  for (std::size_t t = 1; t < sim::kLobsterTypes; ++t) types[kNames[t]] = s.by_type[t];
  json j{{"ticker", id.ticker},
         {"date", id.date},
         {"levels", r.levels},
         {"messages", s.messages},
         {"message_types", types},
         {"rows_compared", r.rows_compared},
         {"mismatches", r.rows_mismatched},
         {"levels_seeded_at_start", s.levels_seeded_at_start},
         {"levels_entered", s.levels_entered},
         {"levels_seeded", s.levels_seeded},
         {"levels_dropped", s.levels_dropped},
         {"unknown_order_messages", s.unknown_order_messages},
         {"size_disagreements", s.size_disagreements},
         {"shortfall_shares", s.shortfall_lots},
         {"engine_events", s.events},
         {"engine_rejects", r.engine_rejects},
         {"engine_trades", r.engine_trades},
         {"state_hash", replay::hex64(r.state_hash)},
         {"effects_hash", replay::hex64(r.effects_hash)}};
  if (r.first_mismatch) {
    const sim::LobsterMismatch& d = *r.first_mismatch;
    auto level = [](const std::optional<sim::LobsterLevel>& l) {
      return l ? json{{"price", l->price}, {"size", l->size}} : json(nullptr);
    };
    j["first_mismatch"] = {{"line", r.first_mismatch_line},
                           {"message", message_text(r.first_mismatch_message)},
                           {"side", d.direction == core::Direction::kBuy ? "bid" : "ask"},
                           {"level", d.level + 1},
                           {"expected", level(d.expected)},
                           {"engine", level(d.actual)}};
  }
  if (runs > 0) {
    j["apply_ns"] = apply_ns;
    j["timing_runs"] = runs;
  }
  out << j.dump() << '\n';
}

}  // namespace

int run_sim_lobster(const SimLobsterOptions& o, std::ostream& out, std::ostream& err) {
  Identity id = identity_of(o);
  sim::LobsterConfig config;
  config.instrument_code = id.ticker;
  config.tick_units = o.tick_units;
  config.day_start_ns = sim::parse_trading_date(id.date).value();
  config.levels = o.levels;
  auto checked = sim::check_lobster(o.messages, o.orderbook, config);
  if (!checked.ok()) throw std::runtime_error(checked.error().message);
  const sim::LobsterCheckReport& r = checked.value();
  config.levels = r.levels;

  std::vector<std::int64_t> runs;
  for (std::uint32_t i = 0; i < o.timing_runs; ++i) {
    runs.push_back(timed_rebuild(o, config, r.state_hash));
  }
  std::sort(runs.begin(), runs.end());
  std::int64_t median_ns = runs.empty() ? 0 : runs[runs.size() / 2];
  if (o.json) {
    print_json(out, id, r, median_ns, o.timing_runs);
  } else {
    print_text(out, id, r, median_ns, o.timing_runs, o.tick_units);
  }
  if (r.rows_mismatched > 0) {
    err << "qx: " << r.rows_mismatched << " of " << r.rows_compared
        << " rows differ from the orderbook file (first at line " << r.first_mismatch_line << ")\n";
    return 1;
  }
  if (r.engine_rejects + r.engine_trades > 0) {
    err << "qx: the engine rejected or traded while rebuilding the book (" << r.first_engine_problem
        << ")\n";
    return 1;
  }
  return 0;
}

namespace {

// A scaled integer back to its decimal text: 618003 with 1 decimal is "61800.3".
std::string decimal_text(std::int64_t v, int decimals) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  auto d = static_cast<std::size_t>(decimals);
  if (d == 0) return (v < 0 ? "-" : "") + digits;
  if (digits.size() <= d) digits.insert(0, d + 1 - digits.size(), '0');
  digits.insert(digits.size() - d, ".");
  return (v < 0 ? "-" : "") + digits;
}

}  // namespace

int run_sim_binance(const SimBinanceOptions& o, std::ostream& out, std::ostream& err) {
  sim::BinanceScale scale{o.price_decimals, o.qty_decimals};
  auto started = std::chrono::steady_clock::now();
  auto opened = sim::BinanceReader::open(o.trades, o.bbo, scale);
  if (!opened.ok()) throw std::runtime_error(opened.error().message);
  sim::BinanceReader& reader = opened.value();
  sim::BinanceTick tick;
  std::int64_t first_ts = 0, last_ts = 0;
  std::uint64_t rows = 0;
  for (;;) {
    auto more = reader.next(tick);
    if (!more.ok()) throw std::runtime_error(more.error().message);
    if (!more.value()) break;
    std::int64_t ts =
        tick.kind == sim::BinanceTickKind::kTrade ? tick.trade.local_ts_ns : tick.bbo.local_ts_ns;
    if (rows == 0) first_ts = ts;
    last_ts = ts;
    ++rows;
  }
  auto ns = std::max<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - started)
                                       .count(),
                                   1);
  const sim::BinanceStats& s = reader.stats();
  auto rows_per_s = static_cast<std::int64_t>(rows) * 1'000'000'000 / ns;
  std::string span = time_text(last_ts - first_ts);
  if (o.json) {
    json j{{"trades", s.trades},
           {"bbo_updates", s.bbos},
           {"buy_aggressor", s.buy_aggressor},
           {"sell_aggressor", s.sell_aggressor},
           {"trade_id_gaps", s.trade_id_gaps},
           {"min_price",
            s.trades > 0 ? json(decimal_text(s.min_price, o.price_decimals)) : json(nullptr)},
           {"max_price",
            s.trades > 0 ? json(decimal_text(s.max_price, o.price_decimals)) : json(nullptr)},
           {"first_local_ts_ns", first_ts},
           {"last_local_ts_ns", last_ts},
           {"rows_per_s", rows_per_s}};
    out << j.dump() << '\n';
  } else {
    out << "trades: " << s.trades << " (buy aggressor " << s.buy_aggressor << ", sell aggressor "
        << s.sell_aggressor << ")\n"
        << "bbo updates: " << s.bbos << " (never crossed or locked)\n"
        << "trade id gaps: " << s.trade_id_gaps << '\n';
    if (s.trades > 0) {
      out << "trade prices: " << decimal_text(s.min_price, o.price_decimals) << " .. "
          << decimal_text(s.max_price, o.price_decimals) << '\n';
    }
    out << "arrival span: " << span << " s\n"
        << "read: " << rows << " rows, " << rows_per_s << " rows/s (parse and merge)\n";
  }
  if (s.trade_id_gaps > 0) {
    err << "qx: " << s.trade_id_gaps << " trade id gaps: the trade tape is incomplete\n";
    return 1;
  }
  return 0;
}

}  // namespace qx::app
