// Workload generators: seeded streams of journal events for demos, tests and benchmarks.
//
//   qx::sim::SessionGenerator gen(qx::sim::SessionConfig{.seed = 1});
//   qx::core::Engine engine;
//   qx::core::EffectBuffer effects;
//   for (int i = 0; i < 1'000'000; ++i) {
//     effects.clear();
//     engine.apply(gen.next(), effects);
//     gen.observe(effects);          // the generator reacts to what the engine did
//   }
//
// Two generators:
//   - `SessionGenerator`: a realistic Chinese-futures trading session. Setup (risk parameters,
//     IF2501/cu2501/au2506 with real tick sizes, multipliers, margins, fees and +-10% bands,
//     users, accounts, deposits, order limits), then a random mix of LIMIT GFD/GTC orders around
//     a random-walk mid, FAK (IOC), FOK, MARKET, BEST and post-only orders, OPEN and CLOSE
//     offsets (CLOSE only for positions the model believes are held), amends, cancels by order
//     id or client order id, deposits, withdrawals, and a daily Settle every N events. Rejects
//     happen (insufficient funds, band, volume limit, FOK unfillable, ...) as they would live.
//   - `MixGenerator`: exchange-core's benchmark mix (reference/exchange-engines.md): accounts
//     well funded, a prefill of resting orders over a fixed number of price levels, then ~82%
//     amend (price one or two ticks, mostly toward the mid; volume kept), 9% new GTC limit,
//     6% cancel, 3% IOC (priced through the opposite best, so it trades). The resting count is
//     steered toward its target as exchange-core's generator does: a new GTC order takes
//     liquidity when its book is at the target (and one time in eight anyway), and while fewer
//     than 95% of the target rest, a cancel becomes a new order. Measured on the default config:
//     ~954 resting over ~530 levels, ~4.3% of commands trade, shares 82/9.8/5.2/3. Also used at
//     scale (10K instruments, 1M accounts, 10M resting orders).
//
// Design: a generator is a deterministic function of its seed and of the effects it observes,
// like a trading client. It owns an `OrderModel` built from effects, so it amends and cancels
// orders that rest and closes positions that exist without reading engine internals. All
// randomness comes from sim/prng.h; there is no floating point, clock or unordered iteration,
// so the same seed gives the same event stream on every build.
//
// Caveats:
//   - Setup events need the ids the engine assigns (user, account, instrument): during setup,
//     call `observe` with the effects of each event before asking for the next one.
//   - `SessionGenerator` expects `observe` after every event (it asserts so); `MixGenerator`
//     also accepts effects in batches during its command phase (its model is then a batch
//     behind, so a few amends or cancels may reach orders that already filled: realistic rejects).
//   - Headers: seq runs 1, 2, 3, ... from the generator's first event, time strictly increases
//     from `start_time_ns`; so a generator's stream must be applied to a fresh engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"
#include "core/types.h"
#include "sim/order_model.h"
#include "sim/prng.h"

namespace qx::sim {

// 2025-01-02 09:30:00 China Standard Time (UTC+8), in nanoseconds since the Unix epoch.
inline constexpr std::int64_t kSessionStartNs = 1'735'781'400'000'000'000;
inline constexpr std::int64_t kNsPerDay = 86'400'000'000'000;

// An instrument as the operator would list it.
struct InstrumentSpec {
  std::string code;
  std::string exchange;
  core::InstrumentParams params;
  core::PriceTicks pre_settlement{};
};

// The three instruments of the realistic session.
[[nodiscard]] InstrumentSpec if2501_spec();  // CSI 300 index future, CFFEX
[[nodiscard]] InstrumentSpec cu2501_spec();  // copper, SHFE
[[nodiscard]] InstrumentSpec au2506_spec();  // gold, SHFE

// Money in minor units from whole currency units (yuan).
constexpr core::Money yuan(std::int64_t units) {
  return core::Money(units * core::kMoneyScale);
}

struct SessionConfig {
  std::uint64_t seed = 1;
  std::uint32_t users = 100;
  std::uint32_t accounts_per_user = 2;
  // A Settle is generated after this many trading events (0: never).
  std::uint64_t settle_every_events = 200'000;
  // The generator steers the number of resting orders per instrument toward this.
  std::uint32_t resting_target_per_instrument = 300;
  std::int64_t start_time_ns = kSessionStartNs;
};

class SessionGenerator {
 public:
  explicit SessionGenerator(const SessionConfig& config);

  // The next event to apply; its seq is one more than the previous event's.
  [[nodiscard]] core::Event next();
  // The effects of the event last returned by `next` (required before the next call).
  void observe(std::span<const core::Effect> effects);

  [[nodiscard]] bool in_setup() const { return setup_done_ < setup_.size(); }
  [[nodiscard]] std::size_t setup_event_count() const { return setup_.size(); }
  [[nodiscard]] const OrderModel& model() const { return model_; }
  [[nodiscard]] std::uint64_t events_generated() const { return seq_; }

 private:
  struct SetupStep {
    enum class Kind : std::uint8_t {
      kRiskParams,
      kInstrument,
      kUser,
      kAccount,
      kDeposit,
      kAccountRisk
    } kind;
    std::uint32_t index;  // instrument, user or account index in creation order
  };
  struct Market {
    InstrumentSpec spec;
    core::InstrumentId id{};
    std::int64_t mid_ticks{};
    std::int64_t band_low_ticks{};   // the engine's limit down and limit up, recomputed
    std::int64_t band_high_ticks{};  // whenever the settlement price changes
  };

  core::Event make(core::EventBody body, std::uint32_t source, std::int64_t gap_ns_max);
  core::EventBody setup_body(const SetupStep& step);
  core::EventBody trading_body(std::uint32_t& source);
  core::EventBody new_order();
  core::EventBody amend_order();
  core::EventBody cancel_order();
  core::EventBody money_transfer(bool deposit);
  core::EventBody settle();
  bool choose_close(core::AccountId a, std::size_t m, core::NewOrder& o);
  std::int64_t limit_price(const Market& mk, core::Direction d, bool aggressive);
  void set_band(Market& mk, std::int64_t settlement_ticks);
  std::uint32_t source_of(core::AccountId a) const;

  SessionConfig config_;
  Prng rng_;
  OrderModel model_;
  std::vector<SetupStep> setup_;
  std::size_t setup_done_ = 0;
  std::vector<Market> markets_;
  std::vector<core::UserId> user_ids_;
  std::vector<core::AccountId> account_ids_;
  std::vector<std::uint32_t> account_user_;  // index of each account's user
  std::uint64_t seq_ = 0;
  std::int64_t time_ns_ = 0;
  std::uint64_t trading_events_ = 0;
  std::uint32_t trading_day_ = 0;
  std::uint64_t next_client_order_id_ = 1;
  std::int64_t next_day_start_ns_ = 0;  // set by a Settle: where the next session opens
  bool awaiting_observe_ = false;
};

// Runs a fresh engine on a fresh `SessionGenerator` for `count` events and returns the events:
// the journal of a realistic session (for tests, property tests and golden journals).
[[nodiscard]] std::vector<core::Event> generate_session(const SessionConfig& config,
                                                        std::size_t count);

struct MixConfig {
  std::uint64_t seed = 1;
  std::uint32_t instruments = 1;
  std::uint32_t accounts = 2'000;
  // Resting orders placed before the commands start, spread evenly over the instruments; the
  // command stream steers the count back toward this number.
  std::uint64_t resting_orders = 1'000;
  // Distinct prices the prefill occupies per instrument, half on each side of the mid.
  std::uint32_t price_levels = 750;
  // Command mix in parts of 100 (exchange-core: 82 / 9 / 6 / 3).
  std::uint32_t amend_weight = 82;
  std::uint32_t new_gtc_weight = 9;
  std::uint32_t cancel_weight = 6;
  std::uint32_t ioc_weight = 3;
  std::int64_t start_time_ns = kSessionStartNs;
};

class MixGenerator {
 public:
  enum class Phase : std::uint8_t { kSetup = 1, kPrefill = 2, kCommands = 3 };

  explicit MixGenerator(const MixConfig& config);

  [[nodiscard]] Phase phase() const;
  // The next event of the current phase. In the command phase the model must have been
  // synchronised with `load` once after the prefill.
  [[nodiscard]] core::Event next();
  // Effects of events applied so far, in order, attributed to the phase of the event last
  // returned by `next` (so a batch must not span two phases). Prefill effects are ignored: the
  // model is loaded from a snapshot afterwards, which keeps a huge prefill cheap.
  void observe(std::span<const core::Effect> effects);
  // Adopts the engine's resting orders and positions (call after the prefill).
  void load(const core::Snapshot& s);

  [[nodiscard]] std::size_t setup_event_count() const;
  [[nodiscard]] std::uint64_t prefill_event_count() const { return config_.resting_orders; }
  [[nodiscard]] const OrderModel& model() const { return model_; }
  [[nodiscard]] std::uint64_t events_generated() const { return seq_; }
  // The parameters of every instrument of the mix: price 10,000.0 ticks of 1.0, multiplier 1,
  // margin 10%, fee 1.00 per lot plus 10 ppm, no price band.
  [[nodiscard]] static InstrumentSpec instrument_spec(std::uint32_t index);

 private:
  core::Event make(core::EventBody body, std::uint32_t source);
  core::EventBody setup_body();
  core::EventBody prefill_body();
  core::EventBody command_body();
  core::EventBody amend(std::size_t live_index);
  core::EventBody new_limit(bool ioc);
  std::int64_t mid_of(core::InstrumentId i) const;
  core::AccountId random_account();

  MixConfig config_;
  Prng rng_;
  OrderModel model_;
  std::uint64_t seq_ = 0;
  std::int64_t time_ns_ = 0;
  std::uint64_t setup_done_ = 0;
  std::uint64_t prefill_done_ = 0;
  bool loaded_ = false;
  Phase last_phase_ = Phase::kSetup;  // of the event last returned: observe() follows it
  std::vector<core::InstrumentId> instrument_ids_;
  std::vector<core::UserId> user_ids_;
  std::vector<core::AccountId> account_ids_;
  std::uint64_t next_client_order_id_ = 1;
};

}  // namespace qx::sim
