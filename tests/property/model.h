// A deliberately naive reference model of the engine, written from docs/semantics.md alone.
//
// The model answers "what should the engine have done?" for the model-agreement property. It is
// built for obviousness, not speed: the book is one std::vector of every resting order, scanned
// linearly for the best (price, arrival) order; accounts and positions are plain structs; money
// is computed in __int128 and narrowed at the end. It shares no code with core/: only the value
// types of the journal (events, effects, enums) so that its output can be compared field by field.
//
// Stops (docs/semantics.md, "Stop orders") are modelled from the rule as written: after every
// event, every pending stop whose reference price has reached its trigger is hit, and the hit
// stops are entered one by one, oldest first, re-checking the pending ones after each.
//
// Forced liquidation (docs/semantics.md, "Forced liquidation" and "MarkToMarket") is modelled
// the same way: a queue of account ids and a flag per account for the current round (filled
// after trades, settlement, SetRiskParams, MarkToMarket and insurance payments), drained after
// the event's own work and after each triggered stop's order (each a round of its own); each
// check recomputes the account's balance and margin from scratch and closes with the documented
// k formula, a side whose forced order fills nothing (or cannot be entered) left for the next.
//
// Sessions and call auctions (docs/semantics.md, "Sessions and call auctions") are in
// model_sessions.cc: phases by the event's timestamp, the uncross by evaluating every candidate
// price against every resting order.
//
// UpdateInstrument is not generated and is answered with a reject.
//
// Admin validation (names, parameter ranges) is only as deep as the generator needs. The money
// bounds of docs/semantics.md ("Bounds") are modelled from that table: the price ceiling, the
// instruments-per-account limit, deposits, withdrawals and settlement past 1e18, the MONEY_LIMIT
// cancel before a fill; resting OPEN orders count against the position limit; a moved band
// cancels what it leaves outside (at settlement; UpdateInstrument is not generated).
//
// The generator (engine_gen.h) also uses the model, as a source of plausible targets for closes,
// amends, cancels and withdrawals.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/types.h"

namespace qx::property {

struct ModelSide {
  std::int64_t today = 0;
  std::int64_t his = 0;
  std::int64_t frozen_today = 0;
  std::int64_t frozen_his = 0;
  std::int64_t open_cost = 0;
  std::int64_t cost_today = 0;  // settlement basis of the today lots (their open notionals)
  std::int64_t cost_his = 0;    // settlement basis of the history lots (last settlement notional)
  std::int64_t margin = 0;
  std::int64_t lots() const { return today + his; }
  bool empty() const;
};

struct ModelPosition {
  ModelSide long_side;
  ModelSide short_side;
};

struct ModelOrder {
  std::uint64_t id = 0;
  std::uint64_t client_id = 0;
  std::uint32_t account = 0;
  std::uint32_t instrument = 0;
  core::Direction direction{};
  core::Offset offset{};
  core::PriceType price_type{};
  core::TimeCondition time_condition{};
  bool post_only = false;
  core::SelfTradePrevention stp{};
  std::int64_t price = 0;
  std::int64_t volume_orig = 0;
  std::int64_t volume_left = 0;
  std::int64_t frozen_margin = 0;
  std::int64_t frozen_commission = 0;
  std::int64_t frozen_today = 0;
  std::int64_t frozen_his = 0;
  std::uint64_t arrival = 0;  // time priority within a price level: smaller is earlier
};

// A pending stop order: the request as placed and its id.
struct ModelStop {
  std::uint64_t id = 0;
  core::NewOrder order;
};

// The account numbers the property compares with core::AccountView.
struct ModelAccountView {
  std::int64_t pre_balance = 0, deposit = 0, withdraw = 0, close_profit = 0, commission = 0;
  std::int64_t position_profit = 0, balance = 0, margin = 0;
  std::int64_t frozen_margin = 0, frozen_commission = 0, available = 0;
};

struct ModelLevel {
  std::int64_t price = 0;
  std::int64_t volume = 0;
  std::uint32_t orders = 0;
};

class Model {
 public:
  // Applies one event body and appends the effects the engine must produce. Only the fields the
  // property compares (effects_agree in model_compare.h) are filled in.
  // `time_ns` is the event's timestamp (trading sessions change phase by it).
  void apply(std::int64_t time_ns, const core::EventBody& body, std::vector<core::Effect>& out);

  std::size_t instrument_count() const { return instruments_.size(); }
  std::size_t account_count() const { return accounts_.size(); }
  ModelAccountView account(std::uint32_t id) const;
  // Positions by instrument id, including empty ones kept until settlement.
  const std::map<std::uint32_t, ModelPosition>& positions(std::uint32_t account) const;
  // Resting orders of an account by order id.
  std::vector<ModelOrder> orders(std::uint32_t account) const;
  // Every resting order, by order id.
  std::vector<ModelOrder> live_orders() const;
  // Pending stop orders of an account, and of all accounts, by id.
  std::vector<ModelStop> stops(std::uint32_t account) const;
  const std::vector<ModelStop>& all_stops() const { return stops_; }
  // Price levels, best first.
  std::vector<ModelLevel> levels(std::uint32_t instrument, core::Direction side) const;

 private:
  struct Instrument {
    std::string code;
    core::InstrumentParams params;
    std::int64_t tick_value = 0;
    core::InstrumentStatus status{};
    std::int64_t pre_settlement = 0;
    std::int64_t price_max = 0;  // fixed at creation: 1e15 / (position_limit * tick_value)
    std::optional<std::int64_t> last_price;
    core::SessionSchedule session;  // no entries: always CONTINUOUS
    core::TradingPhase phase = core::TradingPhase::kContinuous;
    std::optional<std::int64_t> next_change;  // the next boundary of its schedule
  };
  struct Account {
    std::string name;
    std::uint32_t user = 0;
    bool enabled = true;
    std::uint32_t max_open_orders = 0;
    core::SelfTradePrevention stp{};
    std::int64_t pre_balance = 0, deposit = 0, withdraw = 0, close_profit = 0, commission = 0;
    std::map<std::uint32_t, ModelPosition> positions;
  };

  void on(const core::CreateInstrument& e, std::vector<core::Effect>& out);
  void on(const core::UpdateInstrument& e, std::vector<core::Effect>& out);
  void on(const core::SetInstrumentStatus& e, std::vector<core::Effect>& out);
  void on(const core::CreateUser& e, std::vector<core::Effect>& out);
  void on(const core::CreateAccount& e, std::vector<core::Effect>& out);
  void on(const core::Deposit& e, std::vector<core::Effect>& out);
  void on(const core::Withdraw& e, std::vector<core::Effect>& out);
  void on(const core::SetAccountRisk& e, std::vector<core::Effect>& out);
  void on(const core::SetRiskParams& e, std::vector<core::Effect>& out);
  void on(const core::Settle& e, std::vector<core::Effect>& out);
  void on(const core::NewOrder& e, std::vector<core::Effect>& out);
  void on(const core::AmendOrder& e, std::vector<core::Effect>& out);
  void on(const core::CancelOrder& e, std::vector<core::Effect>& out);
  void on(const core::MarkToMarket& e, std::vector<core::Effect>& out);
  void on(const core::SetCurrency& e, std::vector<core::Effect>& out);
  void on(const core::SetLimits& e, std::vector<core::Effect>& out);
  void on(const core::SetSession& e, std::vector<core::Effect>& out);
  void on(const core::LeaderTerm& e, std::vector<core::Effect>& out);

  // Sessions and call auctions (model_sessions.cc).
  void advance_sessions(std::int64_t now, std::vector<core::Effect>& out);
  void enter_phase(std::uint32_t instrument, std::int64_t now, std::vector<core::Effect>& out);
  void uncross(std::uint32_t instrument, std::vector<core::Effect>& out);
  static std::optional<core::RejectReason> phase_refuses(const Instrument& ins,
                                                         const core::NewOrder& e);
  core::TradingPhase ins_phase(std::uint32_t instrument) const {
    return instruments_[instrument].phase;
  }

  // Stops.
  void enter(const core::NewOrder& e, std::vector<core::Effect>& out);
  void place_stop(const core::NewOrder& e, std::vector<core::Effect>& out);
  std::optional<std::int64_t> reference(const Instrument& ins, core::TriggerSource s) const;
  bool reached(const ModelStop& s) const;
  void fire_stops(std::vector<core::Effect>& out);
  // Cancels the pending stops that `doomed` picks, in id order.
  template <class Pred>
  void cancel_stops(Pred doomed, core::CancelReason why, std::vector<core::Effect>& out);
  std::optional<std::size_t> find_stop(std::uint32_t account, const core::OrderRef& ref,
                                       core::RejectReason& why) const;

  // Forced liquidation.
  void queue_check(std::uint32_t account);
  void run_checks(std::vector<core::Effect>& out);
  bool at_risk(std::uint32_t account) const;
  void liquidate(std::uint32_t account, std::vector<core::Effect>& out);
  void close_positions(std::uint32_t account, std::vector<core::Effect>& out);
  std::optional<std::int64_t> force_close(std::uint32_t account, std::uint32_t instrument,
                                          core::Direction d, std::int64_t lots,
                                          std::vector<core::Effect>& out);
  void cover_deficit(std::uint32_t account, std::vector<core::Effect>& out);

  void settle_account(std::uint32_t id, const std::vector<std::int64_t>& price,
                      const std::vector<bool>& expiring, std::vector<core::Effect>& out);

  // Order entry helpers.
  std::optional<core::RejectReason> check_request(const core::NewOrder& e) const;
  std::optional<core::RejectReason> order_price(const core::NewOrder& e, std::int64_t& price) const;
  std::optional<core::RejectReason> check_new(const core::NewOrder& e, ModelOrder& o) const;
  std::optional<core::RejectReason> reserve(ModelOrder& o) const;
  void match(ModelOrder& o, std::vector<core::Effect>& out);
  void cancel_unrested(ModelOrder& o, core::CancelReason why, std::vector<core::Effect>& out);
  bool same_owner(core::SelfTradePrevention stp, std::uint32_t taker, std::uint32_t maker) const;
  void fill(ModelOrder& o, std::int64_t price, std::int64_t lots, std::int64_t& fee);
  bool money_full(std::uint32_t account) const;
  void record_trade(ModelOrder& t, ModelOrder& m, std::int64_t price, std::int64_t lots,
                    std::vector<core::Effect>& out);
  void remove_resting(std::size_t index, core::CancelReason why, std::vector<core::Effect>& out);
  std::optional<core::RejectReason> check_amend(const core::AmendOrder& e,
                                                std::size_t& index) const;
  void release(const ModelOrder& o);
  void hold(const ModelOrder& o);
  std::optional<std::size_t> best(std::uint32_t instrument, core::Direction side) const;
  std::optional<std::size_t> find_live(std::uint32_t account, const core::OrderRef& ref,
                                       core::RejectReason& why) const;
  std::vector<std::size_t> priority_order(std::uint32_t instrument, core::Direction side) const;

  // Money helpers.
  std::int64_t notional(const Instrument& ins, std::int64_t price, std::int64_t lots) const;
  std::int64_t margin_of(const Instrument& ins, core::Direction side, std::int64_t price,
                         std::int64_t lots) const;
  std::int64_t fee_of(const Instrument& ins, core::Offset kind, std::int64_t price,
                      std::int64_t lots) const;
  std::int64_t mark_price(const Instrument& ins) const;
  std::int64_t available_without(std::uint32_t account, std::uint64_t skip_order) const;
  // [lowest, highest] allowed price around the previous settlement price; nullopt: no band.
  std::optional<std::pair<std::int64_t, std::int64_t>> band(const Instrument& ins) const;
  bool in_band(const Instrument& ins, std::int64_t price) const;

  std::vector<Instrument> instruments_;
  std::vector<std::string> users_;
  std::vector<Account> accounts_;
  std::vector<ModelOrder> resting_;  // every live order of every instrument, unordered
  std::vector<ModelStop> stops_;     // pending stops, by id
  std::uint64_t next_order_id_ = 1;
  std::uint64_t next_trade_id_ = 1;
  std::uint64_t next_arrival_ = 1;
  std::uint32_t trading_day_ = 1;
  std::optional<std::int64_t> ratio_;       // SetRiskParams: the liquidation ratio, ppb
  std::optional<std::uint32_t> fund_;       // SetRiskParams: the insurance fund's account
  std::vector<std::uint32_t> check_queue_;  // accounts to check after this round, in order
  std::vector<bool> queued_;                // per account: queued during this round already
  std::int64_t minor_per_unit_ = 10'000;    // CNY with 4 decimals until SetCurrency
  core::EngineLimits limits_;               // SetLimits; 0 = no limit
  std::uint64_t epoch_ = 0;                 // LeaderTerm: the current term's epoch
  std::int64_t now_ = 0;                    // the timestamp of the event being applied
  // Resting orders of `instrument` on side d at `price`.
  std::uint32_t level_count(std::uint32_t instrument, core::Direction d, std::int64_t price) const;
};

}  // namespace qx::property
