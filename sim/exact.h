// Exact fill mode on LOBSTER order-by-order data: the strategy's orders rest in the real
// engine book beside the replayed historical liquidity and keep their queue position there.
//
//   ExactConfig c;  c.lobster = LobsterConfig{...};  c.order_entry = {5'000, 0};
//   ExactLobsterVenue v(c);
//   v.on_message(m, row);                        // every LOBSTER message, in file order
//   std::uint64_t id = v.submit(t, Direction::kBuy, Offset::kOpen, price_ticks, lots);
//   v.fills();  v.events();  v.engine().state_hash();
//
// How history and the strategy meet (also in docs/backtesting.md):
//   - Historical messages become engine events as in `LobsterBook` (limit orders of two
//     synthetic accounts). The strategy trades on a third account; a fourth account, the
//     historical takers, sends the aggressive orders described below.
//   - A strategy order that crosses the book trades with the historical orders at the front of
//     the queue, at their prices, exactly as the engine matches.
//   - A historical visible execution (type 4) of s lots at price p on order X first fills the
//     strategy's resting orders that a taker would have met before X: those at a better price,
//     and those at p that reached the book before X. The historical takers' account sends an IOC
//     for that volume (at most s) at p; X then loses only what is left of s.
//   - Each historical order keeps `delta` = engine volume - historical volume: negative when the
//     strategy (or a crossing historical order) took from it, positive when the strategy absorbed
//     an execution meant for it. A later message that reduces X (partial cancel, execution)
//     leaves it at historical volume + delta; when that is zero or less X is cancelled, and the
//     volume the message wanted but X no longer had is counted (`history_lots_missing`). A delete
//     (type 3) removes whatever X has.
//   - Arrivals after order-entry latency; an arrival at the same nanosecond as a message is
//     processed after it. Fills carry `visible_ns` (market-data latency). Label: "exact".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "core/engine.h"
#include "sim/fill.h"
#include "sim/lobster.h"

namespace qx::sim {

struct ExactConfig {
  LobsterConfig lobster;
  // Replaces the instrument's parameters after the setup (margins, fees); same tick required.
  // Replaces the translation's instrument parameters; a position limit of 0 keeps its limit.
  std::optional<core::InstrumentParams> params;
  core::Money strategy_deposit{};
  LatencySpec order_entry;
  LatencySpec market_data;
  std::uint64_t seed = 1;
};

struct ExactStats {
  std::uint64_t absorbed_lots = 0;           // historical executions that filled the strategy
  std::uint64_t taken_from_history = 0;      // historical lots the strategy took as a taker
  std::uint64_t history_lots_missing = 0;    // lots messages removed that the book no longer had
  std::uint64_t history_events_skipped = 0;  // events on historical orders already gone
  std::uint64_t history_rejects = 0;         // historical events the engine refused (a defect)
};

class ExactLobsterVenue {
 public:
  explicit ExactLobsterVenue(const ExactConfig& config);

  // One LOBSTER message and the reference row after it (file order).
  [[nodiscard]] replay::Status on_message(const LobsterMessage& m, const LobsterRow& row);
  std::uint64_t submit(std::int64_t time_ns, core::Direction d, core::Offset offset,
                       std::int64_t price_ticks, std::int64_t volume);
  void cancel(std::int64_t time_ns, std::uint64_t order);
  // Processes strategy actions that arrive at or before `time_ns` (Unix ns). Before the first
  // message there is no market: actions wait for it.
  void advance_to(std::int64_t time_ns);

  [[nodiscard]] const std::vector<SimFill>& fills() const { return fills_; }
  [[nodiscard]] const std::vector<SimReject>& rejects() const { return rejects_; }
  [[nodiscard]] const std::vector<core::Event>& events() const { return events_; }
  [[nodiscard]] const core::Engine& engine() const { return engine_; }
  [[nodiscard]] const ExactStats& stats() const { return stats_; }
  [[nodiscard]] const LobsterBook& book() const { return book_; }
  [[nodiscard]] std::int64_t working(std::uint64_t order) const;
  [[nodiscard]] static core::AccountId strategy_account() { return core::AccountId{2}; }
  [[nodiscard]] static core::AccountId takers_account() { return core::AccountId{3}; }

 private:
  struct Working {
    core::Direction direction{};
    std::int64_t price{};
    std::int64_t left{};
    core::OrderId engine_id{};
  };
  struct Historical {
    core::OrderId engine_id{};
    core::PriceTicks price{};
    std::int64_t left{};   // volume in the engine
    std::int64_t delta{};  // engine volume - historical volume
  };
  void apply(core::EventBody body, std::int64_t time_ns);
  void arrive(std::int64_t time_ns, const StrategyAction& a);
  // Bookkeeping after every event: historical order ids and deltas, strategy fills.
  void observe();
  void history_event(const core::Event& e, const LobsterMessage& m);
  // A historical reduction of order `client` to `volume` (0: cancelled), applied with its delta.
  void reduce_historical(core::AccountId account, const core::OrderRef& ref, std::int64_t volume,
                         std::int64_t time_ns);
  // Strategy volume a taker meets before historical order `x` on side d at price p.
  [[nodiscard]] std::int64_t strategy_ahead(core::Direction d, std::int64_t p,
                                            std::optional<core::OrderId> x) const;

  ExactConfig config_;
  LobsterBook book_;
  core::Engine engine_;
  core::EffectBuffer effects_;
  std::vector<core::Event> events_;
  std::vector<core::Event> scratch_;
  ActionQueue actions_;
  Latency data_;
  std::int64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t next_taker_ = 1;
  bool ready_ = false;                                   // setup done: the strategy can trade
  std::map<std::uint64_t, Working> working_;             // strategy orders by id
  std::map<std::uint64_t, Historical> historical_;       // by LOBSTER (or anonymous) client id
  std::map<std::uint64_t, std::uint64_t> by_engine_id_;  // engine order id -> client id
  std::map<std::uint64_t, std::uint64_t> strategy_by_engine_id_;
  std::int64_t pending_absorbed_ = 0;  // of the current execution, for its order's delta
  std::vector<SimFill> fills_;
  std::vector<SimReject> rejects_;
  ExactStats stats_;
};

}  // namespace qx::sim
