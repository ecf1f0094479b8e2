// The engine: a deterministic state machine for a futures exchange.
//
//   qx::core::Engine engine;
//   qx::core::EffectBuffer effects;
//   engine.apply(Event{{Seq{1}, t_ns, 0}, CreateInstrument{"IF2501", "CFFEX", params, ...}},
//   effects); engine.apply(Event{{Seq{2}, t_ns, 0}, CreateUser{"alice"}}, effects);
//   ...
//   std::uint64_t h = engine.state_hash();
//
// `apply` takes one sequenced event and appends its effects to a buffer the caller owns (it does
// not clear it). Business outcomes (a reject, a cancel) are effects. A broken invariant or an
// event out of sequence is a bug in the caller and stops the process (QX_ASSERT).
//
// Caveats: the caller must
//   - feed events with consecutive sequence numbers starting after `last_seq()`;
//   - never call into the engine from two threads;
//   - treat views as valid only until the next `apply`.
//
// Determinism (DESIGN.md section 6): no clocks, floating point, randomness, threads, I/O or
// unordered iteration; time comes from event headers; ids from counters in state.
//
// Semantics are documented in docs/semantics.md; the short version:
//   - price-time priority; trades at the resting order's price;
//   - self-trade prevention: an incoming order that would trade with a resting order of its own
//     account has its remaining volume cancelled (reason kSelfTradePrevention); fills it made
//     before that point stand;
//   - MARKET: IOC at the protective price (the worst price needed to fill the volume against the
//     book at arrival, capped by the band); BEST: a limit at the best opposite price at arrival;
//   - margin and commission are frozen on acceptance and released pro rata on fills and cancels;
//   - daily settlement marks to the settlement price (mark-to-market), rolls today into history,
//     expires GFD orders and sets the new pre_balance;
//   - forced liquidation when margin / balance reaches the journaled ratio, closing only as much
//     as restores it; MarkToMarket re-checks holders who do not trade.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/assert.h"
#include "core/book.h"
#include "core/effects.h"
#include "core/events.h"
#include "core/handle_index.h"
#include "core/limits.h"
#include "core/numeric.h"
#include "core/pool.h"
#include "core/sessions.h"
#include "core/snapshot.h"
#include "core/types.h"

namespace qx::core {

// QIFI-shaped views. Money in minor units; prices in ticks; ratios in ppb.
struct AccountView {
  AccountId id{};
  std::string_view name;
  UserId user{};
  Money pre_balance, deposit, withdraw, close_profit, commission;
  Money position_profit;  // at last price against the settlement basis
  Money float_profit;     // at last price against the open cost
  Money static_balance;   // pre_balance + deposit - withdraw
  Money balance;          // static_balance + close_profit - commission + position_profit
  Money margin, frozen_margin, frozen_commission;
  Money available;                // balance - margin - frozen_margin - frozen_commission
  std::int64_t risk_ratio_ppb{};  // margin / balance; 0 when margin is 0
};

struct PositionView {
  InstrumentId instrument{};
  PositionSide long_side, short_side;
  std::optional<PriceTicks> last_price;
  Money float_profit_long, float_profit_short;
  Money position_profit_long, position_profit_short;
};

struct LevelView {
  PriceTicks price;
  Lots volume;
  std::uint32_t orders{};
};

struct BookView {
  std::vector<LevelView> bids;  // best first
  std::vector<LevelView> asks;  // best first
};

struct EngineStats {
  std::uint64_t orders_resting{};
  std::uint64_t accounts{};
  std::uint64_t instruments{};
  std::uint64_t trades_today{};
};

// Money per tick per lot: tick * multiplier * money_scale / 1e16 (money_scale: minor units per
// currency unit, Engine::money_scale()); nullopt unless exact and > 0.
std::optional<Money> tick_value_of(const InstrumentParams& p, std::int64_t money_scale);
// The largest position limit that lets an instrument with these parameters trade up to
// `price_max` ticks (core/limits.h: a side of position_limit lots at the price ceiling is worth at
// most kSideValueMax); 0 when not even one lot fits. For tools that list an instrument with "as
// large a limit as allowed", e.g. a backtest: position_limit_max(p, PriceTicks(10 * reference),
// engine.money_scale()).
Lots position_limit_max(const InstrumentParams& p, PriceTicks price_max, std::int64_t money_scale);

class Engine {
 public:
  Engine();
  // Builds an engine that continues exactly where the snapshot's engine stopped.
  static Engine restore(const Snapshot& snapshot);

  Engine(Engine&&) = default;
  Engine& operator=(Engine&&) = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void apply(const Event& event, EffectBuffer& out);

  [[nodiscard]] Snapshot snapshot() const;
  [[nodiscard]] std::uint64_t state_hash() const;
  [[nodiscard]] std::uint64_t effects_hash() const { return effects_hash_; }
  [[nodiscard]] Seq last_seq() const { return last_seq_; }
  [[nodiscard]] std::int64_t last_timestamp_ns() const { return last_timestamp_ns_; }
  [[nodiscard]] std::uint32_t trading_day() const { return trading_day_; }

  // Lookups by name; nullopt when unknown.
  [[nodiscard]] std::optional<InstrumentId> find_instrument(std::string_view code) const;
  [[nodiscard]] std::optional<AccountId> find_account(std::string_view name) const;
  [[nodiscard]] std::optional<UserId> find_user(std::string_view name) const;
  [[nodiscard]] std::optional<OrderId> find_order(AccountId a, ClientOrderId c) const;

  // Views.
  [[nodiscard]] std::size_t instrument_count() const { return instruments_.size(); }
  [[nodiscard]] std::size_t account_count() const { return accounts_.size(); }
  [[nodiscard]] std::size_t user_count() const { return users_.size(); }
  [[nodiscard]] const InstrumentState& instrument(InstrumentId id) const;
  [[nodiscard]] const AccountState& account_state(AccountId id) const;
  [[nodiscard]] const std::string& user_name(UserId id) const;
  [[nodiscard]] AccountView account(AccountId id) const;
  [[nodiscard]] std::vector<PositionView> positions(AccountId id) const;
  [[nodiscard]] std::vector<OrderState> orders(AccountId id) const;  // resting, by order id
  [[nodiscard]] std::optional<OrderState> order(OrderId id) const;
  [[nodiscard]] std::vector<StopState> stops(AccountId id) const;  // pending, by id
  [[nodiscard]] const std::map<OrderId, StopState>& all_stops() const { return stops_; }
  [[nodiscard]] std::vector<TradeState> trades(AccountId id) const;  // today's
  [[nodiscard]] const std::vector<TradeState>& trades_today() const { return trades_; }
  [[nodiscard]] BookView book(InstrumentId id, std::size_t depth) const;
  [[nodiscard]] EngineStats stats() const;
  // The exchange's currency (SetCurrency): its code, its decimals and 10^decimals.
  [[nodiscard]] const std::string& currency() const { return currency_; }
  [[nodiscard]] std::uint32_t money_decimals() const { return money_decimals_; }
  [[nodiscard]] std::int64_t money_scale() const { return money_scale_; }
  [[nodiscard]] const EngineLimits& limits() const { return limits_; }
  // The current leadership term (LeaderTerm): its epoch (0 before the first) and leader's node.
  [[nodiscard]] std::uint64_t epoch() const { return epoch_; }
  [[nodiscard]] std::uint32_t leader() const { return leader_; }
  [[nodiscard]] std::optional<std::int64_t> liquidation_ratio_ppb() const {
    return liquidation_ratio_ppb_;
  }
  // Accounts whose last liquidation attempt left them at risk (the book could not take their
  // forced orders): a hint for the server to journal another MarkToMarket. Not part of the state:
  // 0 after restore until the next check.
  [[nodiscard]] std::size_t stuck_liquidations() const { return stuck_count_; }

  // The earliest time at which some instrument's trading phase changes; an event stamped then
  // or later applies the change first (the live server journals a MarkToMarket at that time).
  [[nodiscard]] std::optional<std::int64_t> next_phase_change_ns() const {
    if (phase_changes_.empty()) return std::nullopt;
    return phase_changes_.begin()->first;
  }

  // Full O(n) invariant check (tests and simulation only): totals, books, frozen sums, indexes.
  void check_invariants() const;

 private:
  struct Instrument {
    InstrumentState s;
    Money tick_value{};  // money per tick per lot, derived from tick and multiplier
    // Price limits derived from the band and the previous settlement price (refresh_band).
    std::optional<PriceTicks> band_up, band_down;
    Book book;
    // Accounts with a position entry in the instrument, by account id (MarkToMarket's index).
    std::vector<AccountId> holders;
    // Pending stops by (trigger price, id), by [source - 1][fires rising]: the ones to fire when
    // the reference price reaches a value are a prefix (rising) or a suffix (falling).
    std::set<std::pair<PriceTicks, OrderId>> triggers[2][2];
    bool moved = false;  // its last or mark price may have changed during this event
  };
  // Lots of the resting OPEN orders of one account in one instrument, by direction: they count
  // against the position limit as if filled.
  struct PendingOpen {
    InstrumentId instrument{};
    Lots buy{}, sell{};
  };
  struct Account {
    AccountState s;
    Money margin{};
    Money frozen_margin{};
    Money frozen_commission{};
    std::uint32_t open_orders{};
    std::uint32_t stops{};  // pending stop orders; they count against max_open_orders too
    std::vector<PendingOpen> pending;  // sorted by instrument id; no entry when both are 0
    // The account's live orders in order id order (a list through Order::acc_prev/acc_next).
    OrderHandle first_order = kNoOrder;
    OrderHandle last_order = kNoOrder;
  };
  // A live order: OrderState's fields in 96 bytes. An OPEN order never holds position lots and a
  // CLOSE order never holds margin, so one field carries frozen margin (OPEN) or frozen today
  // lots (CLOSE); the accessors give OrderState's view of it.
  struct Order {
    OrderHandle prev = kNoOrder;
    OrderHandle next = kNoOrder;
    OrderHandle acc_prev = kNoOrder;  // the account's order list, in order id order
    OrderHandle acc_next = kNoOrder;
    AccountId account{};
    InstrumentId instrument{};
    OrderId id{};
    ClientOrderId client_order_id{};
    PriceTicks price{};
    Lots volume_left{};
    Lots volume_orig{};
    Money frozen_commission{};
    Lots frozen_his{};
    std::int64_t frozen_margin_or_today{};
    std::int64_t insert_time_ns{};
    Direction direction{};
    Offset offset{};
    PriceType price_type{};
    TimeCondition time_condition{};
    bool post_only{};
    bool forced{};
    SelfTradePrevention stp{};

    [[nodiscard]] bool live() const { return raw(id) != 0; }
    [[nodiscard]] Money frozen_margin() const {
      return Money(offset == Offset::kOpen ? frozen_margin_or_today : 0);
    }
    [[nodiscard]] Lots frozen_today() const {
      return Lots(offset == Offset::kOpen ? 0 : frozen_margin_or_today);
    }
    [[nodiscard]] OrderState state() const;
    static Order from(const OrderState& s);
  };
  friend class BookAccess;

  // engine.cc: dispatch and admin events.
  void on(const CreateInstrument& e);
  void on(const UpdateInstrument& e);
  void on(const SetInstrumentStatus& e);
  void on(const CreateUser& e);
  void on(const CreateAccount& e);
  void on(const Deposit& e);
  void on(const Withdraw& e);
  void on(const SetAccountRisk& e);
  void on(const SetRiskParams& e);
  void on(const Settle& e);
  void on(const NewOrder& e);
  void enter(const NewOrder& e);
  void on(const AmendOrder& e);
  void on(const CancelOrder& e);
  void on(const MarkToMarket& e);
  void on(const SetCurrency& e);
  void on(const SetLimits& e);
  void on(const SetSession& e);
  void on(const LeaderTerm& e);
  // Makes room for the limits' instruments, accounts and orders (SetLimits).
  void reserve(const EngineLimits& l);
  // Whether one more order (or stop) of account a fits the exchange's and the account's limits;
  // the reject when not.
  std::optional<RejectReason> order_room(const Account& a) const;
  // Whether a resting order at `price` on side d of ins would exceed orders_per_level.
  bool level_full(Instrument& ins, Direction d, PriceTicks price);
  // Appends e to the caller's buffer and chains it into the effects hash.
  void emit(const Effect& e) {
    QX_ASSERT(out_ != nullptr);
    effects_hash_ = chain_effect(effects_hash_, e);
    out_->push_back(e);
  }
  void admin_reject(RejectReason r);

  // orders.cc: order entry, matching, fills.
  // Replaces what order o reserves with what `volume` lots at `price` need, or returns why not
  // and changes nothing. The funds check passes when the new reservation fits available (with
  // o's current reservation released), or is no larger than `grandfathered` (an amend that does
  // not increase what it holds; -1 for a new order).
  std::optional<RejectReason> reserve(Order& o, Account& a, Instrument& ins, PriceTicks price,
                                      Lots volume, Money grandfathered);
  void unfreeze(Order& o, Account& a);
  void match(OrderHandle h, Instrument& ins);
  void trade(Order& t, Order& m, Instrument& ins, PriceTicks price, Lots volume);
  void fill(Order& o, Account& a, Instrument& ins, PriceTicks price, Lots volume, Money& fee);
  void rest(OrderHandle h, Instrument& ins);
  void finish(OrderHandle h, Instrument& ins, std::optional<CancelReason> why);
  void cancel_resting(OrderHandle h, CancelReason why);
  std::optional<OrderHandle> resolve(AccountId a, const OrderRef& ref) const;
  std::optional<OrderHandle> find_by_client(AccountId a, ClientOrderId c) const;
  void index_order(OrderHandle h);
  void unindex_order(OrderHandle h);
  std::optional<PriceTicks> market_price(const Instrument& ins, Direction d, Lots volume) const;
  // The account's order list (order id order): append on acceptance, unlink when finished.
  void link_account(OrderHandle h);
  void unlink_account(OrderHandle h);
  std::vector<OrderHandle> account_orders(const Account& a) const;
  // Cancels the resting orders outside the instrument's band (bids then asks, best first).
  void cancel_outside_band(Instrument& ins);
  bool fok_fillable(const Instrument& ins, const Order& o) const;
  bool self_trade(const Order& t, const Order& m) const;
  bool expires_before_today(const InstrumentParams& p) const;
  void cancel_all_resting(Instrument& ins, CancelReason why);
  // Checks a request shared by orders and stops (enums, account, instrument state, volume,
  // combinations, client id, open order count); nullopt when it passes.
  std::optional<RejectReason> check_request(const NewOrder& e) const;
  void reject_order(const NewOrder& e, RejectReason r);
  // An effect of kind k that echoes the request: account, instrument, client order id,
  // direction, offset, price and volume.
  static Effect request_effect(EffectKind k, const NewOrder& e);

  // sessions.cc: trading phases and call auctions.
  // Applies every phase change due at `now` (boundary time, then instrument id), before the event.
  void advance_sessions(std::int64_t now);
  // Moves ins to the phase its schedule gives at `now` and books its next change.
  void enter_phase(Instrument& ins, std::int64_t now);
  void book_phase_change(Instrument& ins);
  // A delisted instrument's schedule ends: no more phase changes.
  void end_session(Instrument& ins);
  // Outside AUCTION a trading instrument's book must not cross: uncross it at one price per round
  // until it does not (docs/semantics.md, "Call auction").
  void uncross(Instrument& ins);
  // The auction price and the lots matchable there, when the book crosses.
  std::optional<std::pair<PriceTicks, Lots>> auction_price(const Instrument& ins) const;
  // Whether the instrument's phase takes a new order (nullopt) or why not.
  static std::optional<RejectReason> phase_refuses(const Instrument& ins, const NewOrder& e);

  // stops.cc: stop and take-profit orders.
  void place_stop(const NewOrder& e);
  static std::optional<PriceTicks> reference(const Instrument& ins, TriggerSource s);
  void cancel_stop(OrderId id, CancelReason why);
  static Effect stop_effect(EffectKind k, const StopState& s);
  std::optional<OrderId> resolve_stop(AccountId a, const OrderRef& ref) const;
  void index_stop(const StopState& s);
  void unindex_stop(const StopState& s);
  // Moves every pending stop of a moved instrument whose reference price has reached its trigger
  // price to hits_, and clears the moved marks.
  void collect_hits();
  // After the event's own work: liquidations, then the hit stops one at a time, oldest first.
  void settle_consequences();
  void trigger_stop(const StopState& s, PriceTicks at);
  void note_moved(Instrument& ins) {
    if (ins.moved) return;
    ins.moved = true;
    moved_.push_back(index_of(ins));
  }
  std::uint32_t index_of(const Instrument& ins) const {
    return static_cast<std::uint32_t>(&ins - instruments_.data());
  }

  // risk.cc: money, fees, margin, settlement, liquidation.
  Money fee(const Instrument& ins, Offset kind, PriceTicks p, Lots v) const;
  Money margin_for(const Instrument& ins, Direction d, PriceTicks p, Lots v) const;
  Money position_profit(const Account& a) const;
  Money balance(const Account& a) const;
  Money available(const Account& a) const;
  // Whether a fill can add to the account's day totals without passing kMoneyMax.
  static bool fill_fits(const Account& a);
  Lots pending_of(const Account& a, InstrumentId ins, Direction d) const;
  void add_pending(Account& a, InstrumentId ins, Direction d, Lots delta);
  // Settlement step 2 for one account: the day's mark-to-market P&L at the settlement prices.
  i128 settlement_pnl(const Account& a, const std::vector<PriceTicks>& price) const;
  PositionState& position(Account& a, InstrumentId ins);
  const PositionState* find_position(const Account& a, InstrumentId ins) const;
  void check_liquidation(AccountId a);
  // Whether a liquidation ratio is set and margin / balance has reached it (or balance <= 0).
  bool at_risk(const Account& a) const;
  Lots lots_to_restore(const Account& a, const PositionSide& side) const;
  void cover_deficit(AccountId id);
  void liquidate(AccountId a);
  void run_liquidations();
  void refresh_band(Instrument& ins);
  void rebuild_holders();
  static std::optional<PriceTicks> band_limit(const Instrument& ins, Direction d) {
    return d == Direction::kBuy ? ins.band_up : ins.band_down;
  }
  static bool within_band(const Instrument& ins, PriceTicks p) {
    return (!ins.band_up || p <= *ins.band_up) && (!ins.band_down || p >= *ins.band_down);
  }

  Instrument& ins_at(InstrumentId id);
  Account& acc_at(AccountId id);

  using NameIndex = std::map<std::string, std::uint32_t, std::less<>>;
  std::vector<Instrument> instruments_;
  NameIndex instrument_names_, user_names_, account_names_;
  std::vector<std::string> users_;
  std::vector<Account> accounts_;
  Pool<Order> orders_;        // live orders by handle
  HandleIndex order_index_;   // OrderId -> handle
  HandleIndex client_index_;  // (account, client order id) -> handle
  std::vector<TradeState> trades_;
  std::map<OrderId, StopState> stops_;  // pending stop orders
  std::map<std::pair<AccountId, ClientOrderId>, OrderId> stop_clients_;
  // Stops hit during this event, waiting their turn: the reference price that hit each.
  std::map<OrderId, std::pair<StopState, PriceTicks>> hits_;
  std::vector<std::uint32_t> moved_;  // instruments with `moved` set
  // Instruments with a schedule, by (next phase change, instrument id).
  std::set<std::pair<std::int64_t, std::uint32_t>> phase_changes_;
  std::vector<AccountId> liquidation_queue_;  // accounts to check at the end of this event
  std::vector<bool> liquidation_queued_;      // by account: in liquidation_queue_ already
  std::vector<bool> stuck_;                   // by account: at risk after its last liquidation
  std::size_t stuck_count_ = 0;

  EffectBuffer* out_ = nullptr;  // the caller's buffer during apply()
  const EventHeader* header_ = nullptr;
  Seq last_seq_{};
  std::int64_t last_timestamp_ns_{};
  std::uint32_t trading_day_ = 1;
  std::uint64_t next_order_id_ = 1;
  std::uint64_t next_trade_id_ = 1;
  std::uint64_t effects_hash_ = 0;
  std::optional<std::int64_t> liquidation_ratio_ppb_;
  std::optional<AccountId> insurance_account_;
  EngineLimits limits_;
  std::uint64_t epoch_ = 0;
  std::uint32_t leader_ = 0;
  std::string currency_ = "CNY";
  std::uint32_t money_decimals_ = kMoneyDecimalsDefault;
  std::int64_t money_scale_ = kMoneyScale;
};

}  // namespace qx::core
