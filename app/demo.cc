// `qx demo`: generate a realistic session (sim::SessionGenerator), apply it, report.
//
// The generator observes the effects of every event, like a client reading its feeds. Only the
// engine's apply calls are timed (wall clock), so the events/s figure is the engine's, not the
// generator's. Counts are kept in ordered maps so the report's order is fixed.
#include "app/demo.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <variant>

#include "core/engine.h"
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

}  // namespace

int run_demo(const DemoOptions& options, std::ostream& out) {
  sim::SessionConfig config;
  config.seed = options.seed;
  sim::SessionGenerator gen(config);
  core::Engine engine;
  core::EffectBuffer effects;
  Tally tally;
  std::chrono::steady_clock::duration apply_time{};

  for (std::uint64_t i = 0; i < options.events; ++i) {
    const core::Event event = gen.next();
    effects.clear();
    const auto start = std::chrono::steady_clock::now();
    engine.apply(event, effects);
    apply_time += std::chrono::steady_clock::now() - start;
    gen.observe(effects);
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
  return 0;
}

}  // namespace qx::app
