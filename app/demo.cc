// `qx demo`: generate a realistic session (sim::SessionGenerator), apply it, report.
//
// The generator observes the effects of every event, like a client reading its feeds. Only the
// engine's apply calls are timed (wall clock), so the events/s figure is the engine's, not the
// generator's. Counts are kept in ordered maps so the report's order is fixed.
#include "app/demo.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <variant>

#include "core/engine.h"
#include "replay/journal.h"
#include "replay/store.h"
#include "sim/workload.h"

namespace qx::app {

namespace {

// What kind of request an event was, for attributing rejects.
enum class Request : std::uint8_t { kNewOrder, kAmend, kCancel, kAdmin };

Request request_of(const core::Event& e) {
  if (std::holds_alternative<core::NewOrder>(e.body)) return Request::kNewOrder;
  if (std::holds_alternative<core::AmendOrder>(e.body)) return Request::kAmend;
  if (std::holds_alternative<core::CancelOrder>(e.body)) return Request::kCancel;
  return Request::kAdmin;
}

struct Tally {
  std::uint64_t accepted = 0;
  std::uint64_t forced = 0;  // engine-generated liquidation orders among the accepted
  std::uint64_t amended = 0;
  std::uint64_t cancel_requests_done = 0;
  std::uint64_t trades = 0;
  std::int64_t volume_lots = 0;
  std::uint64_t settlements = 0;
  std::uint64_t liquidations = 0;
  std::uint64_t deposits = 0;
  std::uint64_t withdrawals = 0;
  std::map<std::uint16_t, std::uint64_t> new_rejects;  // by RejectReason
  std::map<std::uint16_t, std::uint64_t> amend_rejects;
  std::map<std::uint16_t, std::uint64_t> cancel_rejects;
  std::map<std::uint16_t, std::uint64_t> admin_rejects;
  std::map<std::uint16_t, std::uint64_t> cancels;  // by CancelReason

  void add(Request request, const core::Effect& e) {
    using K = core::EffectKind;
    switch (e.kind) {
      case K::kOrderAccepted:
        accepted += 1;
        forced += e.reason == 1 ? 1 : 0;
        break;
      case K::kOrderRejected:
        (request == Request::kAmend    ? amend_rejects
         : request == Request::kCancel ? cancel_rejects
                                       : new_rejects)[e.reason] += 1;
        break;
      case K::kOrderAmended: amended += 1; break;
      case K::kOrderCancelled: cancels[e.reason] += 1; break;
      case K::kTrade:
        trades += 1;
        volume_lots += e.volume.value;
        break;
      case K::kAdminRejected: admin_rejects[e.reason] += 1; break;
      case K::kSettlementDone: settlements += 1; break;
      case K::kLiquidationStarted: liquidations += 1; break;
      case K::kDeposited: deposits += 1; break;
      case K::kWithdrawn: withdrawals += 1; break;
      default: break;
    }
  }
};

std::uint64_t sum(const std::map<std::uint16_t, std::uint64_t>& m) {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : m) n += count;
  return n;
}

void print_rejects(std::ostream& out, const std::map<std::uint16_t, std::uint64_t>& m) {
  for (const auto& [reason, count] : m) {
    out << "    " << core::to_string(static_cast<core::RejectReason>(reason)) << ": " << count
        << '\n';
  }
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Journals the demo's events: group commit every kGroupEvents events, indexes flushed every
// kIndexEvents, a snapshot every `snapshot_every`. Errors throw (main prints them on one line).
class DemoJournal {
 public:
  DemoJournal(const std::string& dir, std::uint64_t snapshot_every, std::ostream* durable_out)
      : writer_(open_writer(dir)),
        store_(unwrap(replay::Store::open(dir))),
        snapshot_every_(snapshot_every),
        durable_out_(durable_out) {}

  void append(const core::Event& event) {
    check(writer_.append(event));
    if (writer_.pending_bytes() >= kGroupBytes) commit();
  }
  void applied(const core::Event& event, const core::EffectBuffer& effects,
               const core::Engine& engine) {
    index_.add(event, effects);
    std::uint64_t seq = core::raw(event.header.seq);
    if (seq % kIndexEvents == 0) check(store_.flush(index_));
    if (snapshot_every_ != 0 && seq % snapshot_every_ == 0) {
      commit();
      check(store_.put_snapshot(engine.snapshot()));
    }
  }
  void finish(const core::Engine& engine) {
    commit();
    check(store_.flush(index_));
    check(store_.put_snapshot(engine.snapshot()));
  }

 private:
  static constexpr std::size_t kGroupBytes = 1u << 20;
  static constexpr std::uint64_t kIndexEvents = 1u << 16;

  template <class T>
  static T unwrap(replay::Result<T> r) {
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r.value());
  }
  template <class T>
  static void check(const replay::Result<T>& r) {
    if (!r) throw std::runtime_error(r.error().message);
  }
  static void check(const replay::Status& s) {
    if (!s) throw std::runtime_error(s.error().message);
  }
  static replay::JournalWriter open_writer(const std::string& dir) {
    auto w = unwrap(replay::JournalWriter::open(dir, {}));
    if (w.last_seq() != core::Seq{}) {
      throw std::runtime_error("journal " + dir + " already holds events (up to seq " +
                               std::to_string(core::raw(w.last_seq())) +
                               "); give the demo a new directory");
    }
    return w;
  }

  void commit() {
    auto durable = writer_.commit();
    check(durable);
    if (durable_out_ != nullptr) {
      *durable_out_ << "durable=" << core::raw(durable.value()) << std::endl;  // flushed
    }
  }

  replay::JournalWriter writer_;
  replay::Store store_;
  replay::IndexBuilder index_;
  std::uint64_t snapshot_every_;
  std::ostream* durable_out_;
};

}  // namespace

int run_demo(const DemoOptions& options, std::ostream& out) {
  sim::SessionConfig config;
  config.seed = options.seed;
  sim::SessionGenerator gen(config);
  core::Engine engine;
  core::EffectBuffer effects;
  Tally tally;
  std::chrono::steady_clock::duration apply_time{};

  std::optional<DemoJournal> journal;
  if (options.journal_dir) {
    journal.emplace(*options.journal_dir, options.snapshot_every,
                    options.print_durable ? &out : nullptr);
  }

  for (std::uint64_t i = 0; i < options.events; ++i) {
    const core::Event event = gen.next();
    if (journal) journal->append(event);
    effects.clear();
    const auto start = std::chrono::steady_clock::now();
    engine.apply(event, effects);
    apply_time += std::chrono::steady_clock::now() - start;
    gen.observe(effects);
    if (journal) journal->applied(event, effects, engine);
    const Request request = request_of(event);
    for (const core::Effect& e : effects) tally.add(request, e);
  }

  const double seconds = std::chrono::duration<double>(apply_time).count();
  const core::EngineStats stats = engine.stats();
  out << "qx demo: seed " << options.seed << ", " << stats.instruments << " instruments, "
      << stats.accounts << " accounts, " << gen.setup_event_count() << " setup events\n";
  out << "events applied: " << options.events << '\n';
  out << "events/s: "
      << (seconds > 0 ? static_cast<std::uint64_t>(static_cast<double>(options.events) / seconds)
                      : 0)
      << " (engine apply only, " << static_cast<std::uint64_t>(seconds * 1e3) << " ms)\n";
  out << "orders accepted: " << tally.accepted << " (" << tally.forced
      << " forced liquidation orders)\n";
  out << "orders rejected: " << sum(tally.new_rejects) << '\n';
  print_rejects(out, tally.new_rejects);
  out << "amends: " << tally.amended << " done, " << sum(tally.amend_rejects) << " rejected\n";
  print_rejects(out, tally.amend_rejects);
  out << "cancel requests rejected: " << sum(tally.cancel_rejects) << '\n';
  print_rejects(out, tally.cancel_rejects);
  out << "orders cancelled: " << sum(tally.cancels) << '\n';
  for (const auto& [reason, count] : tally.cancels) {
    out << "    " << core::to_string(static_cast<core::CancelReason>(reason)) << ": " << count
        << '\n';
  }
  out << "trades: " << tally.trades << '\n';
  out << "volume: " << tally.volume_lots << " lots\n";
  out << "orders resting: " << stats.orders_resting << '\n';
  out << "deposits: " << tally.deposits << ", withdrawals: " << tally.withdrawals
      << ", admin rejects: " << sum(tally.admin_rejects) << '\n';
  print_rejects(out, tally.admin_rejects);
  out << "settlements: " << tally.settlements << ", liquidations: " << tally.liquidations
      << ", trading day: " << engine.trading_day() << '\n';
  out << "state_hash=" << hex16(engine.state_hash()) << '\n';
  out << "effects_hash=" << hex16(engine.effects_hash()) << '\n';
  if (journal) {
    journal->finish(engine);
    out << "journal=" << *options.journal_dir << " last_seq=" << core::raw(engine.last_seq())
        << '\n';
  }
  return 0;
}

}  // namespace qx::app
