// Replay-only fills: a strategy trades against historical top-of-book data (best bid/offer and
// trades) through the real engine, without changing history, using a queue-position model and
// seeded latency models. Every fill is labelled with the mode that produced it.
//
//   VenueConfig c;  c.params = ...;  c.queue = QueueModel::kRiskAverse;  c.order_entry =
//   {2'000'000, 0}; ReplayOnlyVenue v(c); v.on_bbo(t, bid, bid_qty, ask, ask_qty);            //
//   history, in time order std::uint64_t id = v.submit(t, Direction::kBuy, Offset::kOpen, price,
//   3);  // arrives later v.on_trade(t2, price, qty, Direction::kSell);       // may fill the
//   strategy's bid v.fills();  v.events();  v.engine().state_hash();
//
// The engine holds only the strategy's orders and a liquidity account's counter-orders; history
// lives in the model. `events()` is everything applied to the engine, in order, so a journal of
// them replays to the same state (the backtest's journal).
//
// Rules (documented in docs/backtesting.md):
//   - Arrival: a submit or cancel made at time t reaches the venue at t + order-entry latency;
//     an arrival at the same time as a market event is processed after it.
//   - Marketable on arrival (buy at or above the ask; sell at or below the bid): it takes the
//     displayed quantity at the best price, less what the strategy already took there since the
//     last BBO update (displayed liquidity is taken once). The rest rests at its limit price.
//     A later BBO that crosses a resting strategy order fills it the same way.
//   - Resting at the best price: queue position ahead = the displayed quantity there (joins the
//     back). Inside the spread: ahead = 0. Behind the best: ahead unknown until the level shows
//     as the best, then at most the displayed quantity.
//   - A historical trade at the order's price first consumes the volume ahead, then fills the
//     order; a trade through its price (a sell below a bid, a buy above an ask) fills it with up
//     to the trade's quantity.
//   - A decrease of the displayed quantity at the order's price that trades do not explain is a
//     cancellation: kRiskAverse assumes it came from behind (ahead only falls to the displayed
//     quantity); kProportional takes it from ahead in proportion to ahead's share of the level
//     (the reduction rounded down), and ahead never exceeds the displayed quantity.
//   - Fills are journaled as engine trades: the liquidity account sends an IOC at the strategy
//     order's price (passive fills), or rests the displayed quantity just before the strategy's
//     marketable order arrives (aggressive fills), so trades, fees, margin and positions are
//     the engine's own.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"
#include "core/events.h"
#include "replay/result.h"
#include "sim/prng.h"

namespace qx::sim {

enum class QueueModel : std::uint8_t { kRiskAverse = 1, kProportional = 2 };
[[nodiscard]] std::string_view queue_model_name(QueueModel m);  // "risk_averse", "proportional"
[[nodiscard]] replay::Result<QueueModel> parse_queue_model(std::string_view name);

// Latency uniform in [base_ns, base_ns + jitter_ns], drawn from a seeded generator.
struct LatencySpec {
  std::int64_t base_ns = 0;
  std::int64_t jitter_ns = 0;
};

class Latency {
 public:
  Latency(LatencySpec spec, std::uint64_t seed) : spec_(spec), prng_(seed) {}
  [[nodiscard]] std::int64_t next();

 private:
  LatencySpec spec_;
  Prng prng_;
};

// A strategy's order or cancel on its way to a venue.
struct StrategyAction {
  bool cancel{};
  std::uint64_t order{};
  core::Direction direction{};
  core::Offset offset{};
  std::int64_t price{};
  std::int64_t volume{};
};

// Strategy actions in flight: each reaches the venue after the order-entry latency. Ids are the
// strategy's order ids (1, 2, ...), in submission order; arrivals come out in arrival order
// (submission order among equal arrival times).
class ActionQueue {
 public:
  ActionQueue(LatencySpec order_entry, std::uint64_t seed) : entry_(order_entry, seed) {}
  std::uint64_t submit(std::int64_t time_ns, core::Direction d, core::Offset offset,
                       std::int64_t price, std::int64_t volume) {
    std::uint64_t id = next_order_++;
    pending_.emplace(time_ns + entry_.next(), StrategyAction{false, id, d, offset, price, volume});
    return id;
  }
  void cancel(std::int64_t time_ns, std::uint64_t order) {
    StrategyAction a;
    a.cancel = true;
    a.order = order;
    pending_.emplace(time_ns + entry_.next(), a);
  }
  // Calls arrive(arrival_ns, action) for every action arriving at or before `time_ns`.
  template <class F>
  void release(std::int64_t time_ns, F&& arrive) {
    while (!pending_.empty() && pending_.begin()->first <= time_ns) {
      auto node = pending_.extract(pending_.begin());
      arrive(node.key(), node.mapped());
    }
  }

 private:
  Latency entry_;
  std::uint64_t next_order_ = 1;
  std::multimap<std::int64_t, StrategyAction> pending_;  // by arrival time
};

// The queue position of one resting order: volume ahead of it at its price level.
class QueuePosition {
 public:
  static constexpr std::int64_t kUnknown = std::numeric_limits<std::int64_t>::max();

  QueuePosition(QueueModel model, std::int64_t ahead) : model_(model), ahead_(ahead) {}
  // The level shows `shown` after `shown_before` (both displayed), with `traded` lots traded at
  // the level in between. Only the unexplained decrease counts as cancellations.
  void on_level(std::int64_t shown_before, std::int64_t shown, std::int64_t traded);
  // The level became visible showing `shown` (it was not the best before).
  void on_visible(std::int64_t shown);
  // A trade of `qty` at the order's price: returns the lots that reach the order (after ahead).
  [[nodiscard]] std::int64_t on_trade_at_price(std::int64_t qty);
  [[nodiscard]] std::int64_t ahead() const { return ahead_; }
  [[nodiscard]] QueueModel model() const { return model_; }

 private:
  QueueModel model_;
  std::int64_t ahead_;
};

// Stops a backtest whose setup the engine refused: throws std::invalid_argument naming the event
// and the reject reason when `effects` (of `event`) hold an admin reject. A venue applies it after
// every event, so an instrument, user, account or deposit the engine refused ends the run at
// once instead of letting every later order fail as UNKNOWN_INSTRUMENT.
void require_admin_accepted(const core::Event& event, const core::EffectBuffer& effects);

struct VenueConfig {
  std::string instrument_code = "BTCUSDT";
  std::string exchange = "BINANCE";
  // Tick, multiplier, margins, fees of the simulated contract. A position limit of 0 means the
  // largest the engine allows with a price ceiling of 10x the reference price.
  core::InstrumentParams params;
  core::PriceTicks reference_price{1};
  // The venue's currency, journaled first (core::SetCurrency); none: the engine's default (CNY,
  // 4 decimals). Money below (deposit, fees per lot) is in its minor units.
  std::optional<core::SetCurrency> currency;
  core::Money strategy_deposit{};
  QueueModel queue = QueueModel::kRiskAverse;
  LatencySpec order_entry;
  LatencySpec market_data;  // delay before the strategy learns of its fills and rejects
  std::uint64_t seed = 1;
};

struct SimFill {
  std::int64_t time_ns{};     // when the venue filled it
  std::int64_t visible_ns{};  // when the strategy learns of it (market-data latency)
  std::uint64_t order{};      // the strategy's order id (from submit)
  core::Direction direction{};
  core::PriceTicks price{};
  core::Lots volume{};
  core::Money fee{};
  bool aggressive{};  // the strategy took liquidity
  std::string mode;   // "replay-only/risk_averse" ...
};

struct SimReject {
  std::int64_t time_ns{};
  std::int64_t visible_ns{};
  std::uint64_t order{};
  std::uint16_t reason{};  // core::RejectReason
};

class ReplayOnlyVenue {
 public:
  explicit ReplayOnlyVenue(const VenueConfig& config);

  // History, in non-decreasing time. Prices in ticks, quantities in lots. A BBO must have
  // bid < ask and positive quantities; errors say what is wrong and change nothing.
  [[nodiscard]] replay::Status on_bbo(std::int64_t time_ns, std::int64_t bid, std::int64_t bid_qty,
                                      std::int64_t ask, std::int64_t ask_qty);
  [[nodiscard]] replay::Status on_trade(std::int64_t time_ns, std::int64_t price, std::int64_t qty,
                                        core::Direction aggressor);
  // Strategy actions at decision time `time_ns`; they reach the venue after the order-entry
  // latency. submit returns the order's id (its client order id in the engine).
  std::uint64_t submit(std::int64_t time_ns, core::Direction d, core::Offset offset,
                       std::int64_t price, std::int64_t volume);
  void cancel(std::int64_t time_ns, std::uint64_t order);
  // Processes every action that arrives at or before `time_ns`.
  void advance_to(std::int64_t time_ns);

  [[nodiscard]] const std::vector<SimFill>& fills() const { return fills_; }
  [[nodiscard]] const std::vector<SimReject>& rejects() const { return rejects_; }
  [[nodiscard]] const std::vector<core::Event>& events() const { return events_; }
  [[nodiscard]] const core::Engine& engine() const { return engine_; }
  [[nodiscard]] std::string mode() const;
  [[nodiscard]] static core::AccountId strategy_account() { return core::AccountId{0}; }
  [[nodiscard]] static core::AccountId liquidity_account() { return core::AccountId{1}; }
  // Lots still working for a strategy order (0 when done or unknown); its queue position.
  [[nodiscard]] std::int64_t working(std::uint64_t order) const;
  [[nodiscard]] std::int64_t ahead(std::uint64_t order) const;

 private:
  struct Working {
    core::Direction direction{};
    std::int64_t price{};
    std::int64_t left{};
    std::uint64_t arrival{};  // arrival order at the venue (the engine's time priority)
    QueuePosition queue{QueueModel::kRiskAverse, 0};
  };
  void arrive(std::int64_t time_ns, const StrategyAction& a);
  void apply(core::EventBody body);
  // The liquidity account's IOC at the order's price: the engine fills the strategy's order.
  void passive_fill(std::uint64_t id, Working& w, std::int64_t lots);
  // Fills and rejects of strategy order `id` among the last event's effects; returns lots.
  std::int64_t record_effects(std::uint64_t id, core::Direction d, bool aggressive);
  // Working orders of one side, best price first, then arrival.
  [[nodiscard]] std::vector<std::uint64_t> by_priority(core::Direction d) const;
  void finish(std::uint64_t id);  // forgets a working order that has nothing left
  [[nodiscard]] std::int64_t best(core::Direction d) const {
    return d == core::Direction::kBuy ? bid_ : ask_;
  }

  VenueConfig config_;
  core::Engine engine_;
  core::EffectBuffer effects_;
  std::vector<core::Event> events_;
  ActionQueue actions_;
  Latency data_;
  std::int64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t next_liquidity_ = 1;
  std::uint64_t arrivals_ = 0;
  std::map<std::uint64_t, Working> working_;                    // by id = time order
  std::int64_t bid_ = 0, bid_qty_ = 0, ask_ = 0, ask_qty_ = 0;  // 0: no BBO yet
  std::int64_t bid_taken_ = 0, ask_taken_ = 0;  // displayed lots the strategy took since the BBO
  std::int64_t bid_traded_ = 0,
               ask_traded_ = 0;  // historical lots traded at the best since the BBO
  std::vector<SimFill> fills_;
  std::vector<SimReject> rejects_;
};

}  // namespace qx::sim
