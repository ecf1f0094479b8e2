// A backtest on the real engine, explicit-loop style: historical LOBSTER order flow is replayed
// through sim::LobsterBook as a synthetic participant (accounts lobster_bids / lobster_asks), and
// one strategy account submits and cancels orders between steps. Every event applied is journaled,
// so `qx replay` (or qaexchange.replay) of the journal reaches the backtest's state hash.
//
//   Backtest bt(config);              // opens the data and an empty journal directory
//   while (bt.step(100)) {            // applies the next 100 messages
//     auto [bid, ask] = bt.best();    // the engine's book, which the strategy trades against
//     bt.submit(Direction::kBuy, Offset::kOpen, std::nullopt, Lots(10));   // MARKET
//   }
//   bt.finish();                      // commits the journal
//
// Design: the driver owns the engine and numbers the events itself: the LOBSTER translation's
// events are renumbered into one sequence with the strategy's, and the strategy's are stamped with
// the time of the last message applied (time never goes backwards). The instrument is the one the
// translation creates; right after its setup the driver journals the strategy's user, account and
// deposit, and an UpdateInstrument with the configured fees and margin (the same for everyone).
// Fill model: the engine's. Strategy orders trade with whatever the book holds; historical orders
// that cross a resting strategy order trade with it. There is no market-impact model: liquidity the
// strategy takes is not replaced, and the data's later reductions of an order the strategy
// consumed are rejected by the engine (counted in data_rejects()).
//
// Caveats: single-threaded; the strategy's records (orders, fills, equity samples) grow with the
// run; money is integer minor units throughout (the Python side turns it into floats for stats).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"
#include "sim/lobster.h"

namespace qx::python {

struct BacktestConfig {
  std::string journal_dir;
  std::string messages, orderbook;  // LOBSTER files
  std::size_t levels = 0;           // 0: from the orderbook file
  std::int64_t day_start_ns = 0;    // midnight (exchange time) of the data's day, Unix ns
  std::string instrument = "AMZN";
  std::int64_t cash_minor = 0;  // the strategy's deposit
  core::FeeSchedule fees;       // for every account
  std::int64_t margin_ppb = 0;  // both sides
};

struct BacktestOrder {
  std::uint64_t client_order_id = 0;
  std::uint64_t order_id = 0;  // 0 when rejected
  std::int64_t time_ns = 0;
  std::uint64_t seq = 0;
  core::Direction direction{};
  core::Offset offset{};
  bool market = false;
  std::int64_t price_ticks = 0;  // limit price (0 for market)
  std::int64_t volume = 0;
  std::int64_t volume_left = 0;  // after its last fill or cancel
  std::int64_t volume_filled = 0;
  std::string status;  // ALIVE, FILLED, CANCELLED, REJECTED
  std::string reason;  // reject or cancel reason
};

struct BacktestFill {
  std::int64_t time_ns = 0;
  std::uint64_t seq = 0;
  std::uint64_t trade_id = 0;
  std::uint64_t order_id = 0;
  std::uint64_t client_order_id = 0;
  core::Direction direction{};
  core::Offset offset{};
  std::int64_t price_ticks = 0;
  std::int64_t volume = 0;
  std::int64_t fee_minor = 0;
  bool maker = false;
};

// One sample of the strategy's account, taken after every step.
struct BacktestSample {
  std::int64_t time_ns = 0;
  std::uint64_t seq = 0;
  std::int64_t cash_minor = 0;  // static balance + close profit - commission
  std::int64_t long_lots = 0, short_lots = 0;
  std::int64_t long_open_cost_minor = 0, short_open_cost_minor = 0;
  std::optional<std::int64_t> bid_ticks, ask_ticks;
};

class Backtest {
 public:
  explicit Backtest(BacktestConfig config)
      : config_(std::move(config)),
        reader_(open_reader(config_)),
        book_(sim::LobsterConfig{.instrument_code = config_.instrument,
                                 .exchange = "NASDAQ",
                                 .tick_units = 100,
                                 .day_start_ns = config_.day_start_ns,
                                 .levels = reader_.levels()}),
        journal_(open_journal(config_.journal_dir)) {}

  // Applies up to `messages` more messages (at least one); false when the data had none left.
  bool step(std::uint64_t messages) {
    std::uint64_t done = 0;
    for (; done < messages; ++done) {
      if (!next_message()) break;
    }
    if (done > 0) sample();
    return done > 0;
  }

  // Applies every message stamped at or before `time_ns` (Unix ns); false at the end of data.
  bool advance_to(std::int64_t time_ns) {
    bool any = false;
    while (peek() && config_.day_start_ns + pending_m_.time_ns <= time_ns) {
      next_message();
      any = true;
    }
    if (any) sample();
    return peek();
  }

  // A new order of the strategy; MARKET when price is absent. Returns its client order id.
  std::uint64_t submit(core::Direction d, core::Offset o, std::optional<std::int64_t> price_ticks,
                       std::int64_t volume) {
    require_started();
    std::uint64_t cid = next_client_id_++;
    core::NewOrder n;
    n.account = strategy_;
    n.instrument = book_.instrument();
    n.client_order_id = core::ClientOrderId(cid);
    n.direction = d;
    n.offset = o;
    n.price_type = price_ticks ? core::PriceType::kLimit : core::PriceType::kMarket;
    n.price = core::PriceTicks(price_ticks.value_or(0));
    n.volume = core::Lots(volume);
    n.time_condition = price_ticks ? core::TimeCondition::kGtc : core::TimeCondition::kIoc;
    n.volume_condition = core::VolumeCondition::kAny;
    BacktestOrder rec;
    rec.client_order_id = cid;
    rec.time_ns = now_ns_;
    rec.seq = seq_ + 1;
    rec.direction = d;
    rec.offset = o;
    rec.market = !price_ticks;
    rec.price_ticks = price_ticks.value_or(0);
    rec.volume = volume;
    rec.volume_left = volume;
    rec.status = "ALIVE";
    orders_.push_back(rec);
    by_client_.push_back(orders_.size() - 1);
    apply(n, now_ns_);
    return cid;
  }

  // Cancels a live strategy order by client id; false when the engine rejected the cancel.
  bool cancel(std::uint64_t client_order_id) {
    require_started();
    std::uint64_t rejects = cancel_rejects_;
    apply(core::CancelOrder{strategy_,
                            core::OrderRef{std::nullopt, core::ClientOrderId(client_order_id)}},
          now_ns_);
    return cancel_rejects_ == rejects;
  }

  // Commits the journal (also done every few thousand events and on destruction).
  void finish() {
    if (!journal_) return;
    auto r = journal_->commit();
    if (!r) throw std::runtime_error(r.error().message);
  }

  ~Backtest() {
    if (journal_) (void)journal_->commit();
  }
  Backtest(const Backtest&) = delete;
  Backtest& operator=(const Backtest&) = delete;

  [[nodiscard]] const core::Engine& engine() const { return engine_; }
  [[nodiscard]] bool started() const { return started_; }
  [[nodiscard]] std::int64_t now_ns() const { return now_ns_; }
  [[nodiscard]] std::uint64_t messages() const { return messages_; }
  [[nodiscard]] std::uint64_t data_rejects() const { return data_rejects_; }
  [[nodiscard]] core::AccountId strategy() const { return strategy_; }
  [[nodiscard]] core::InstrumentId instrument() const { return book_.instrument(); }
  [[nodiscard]] const std::vector<BacktestOrder>& orders() const { return orders_; }
  [[nodiscard]] const std::vector<BacktestFill>& fills() const { return fills_; }
  [[nodiscard]] const std::vector<BacktestSample>& samples() const { return samples_; }
  [[nodiscard]] const BacktestConfig& config() const { return config_; }

 private:
  static constexpr std::uint32_t kStrategySource = 1;
  static constexpr std::uint64_t kCommitEvery = 4096;

  static sim::LobsterReader open_reader(const BacktestConfig& c) {
    auto r = sim::LobsterReader::open(c.messages, c.orderbook, c.levels);
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r.value());
  }

  static std::optional<replay::JournalWriter> open_journal(const std::string& dir) {
    if (dir.empty()) return std::nullopt;
    replay::JournalOptions opt;
    opt.fsync = replay::FsyncPolicy::kNone;
    auto w = replay::JournalWriter::open(dir, opt);
    if (!w) throw std::runtime_error(w.error().message);
    if (core::raw(w.value().last_seq()) != 0) {
      throw std::runtime_error("journal " + dir + " already holds events: give an empty directory");
    }
    return std::move(w.value());
  }

  void require_started() const {
    if (!started_) throw std::runtime_error("step() the backtest once before trading");
  }

  bool peek() {
    if (have_pending_) return true;
    auto more = reader_.next(pending_m_, pending_row_);
    if (!more) throw std::runtime_error(more.error().message);
    have_pending_ = more.value();
    return have_pending_;
  }

  bool next_message() {
    if (!peek()) return false;
    have_pending_ = false;
    events_.clear();
    sim::Status s = book_.step(pending_m_, pending_row_, events_);
    if (!s) throw std::runtime_error(s.error().message);
    messages_ += 1;
    for (const core::Event& e : events_) apply(e.body, e.header.timestamp_ns, 0);
    if (!started_) start();
    return true;
  }

  // The strategy's setup, journaled right after the translation's own.
  void start() {
    started_ = true;
    apply(core::CreateUser{"strategy"}, now_ns_);
    auto user = engine_.find_user("strategy");
    QX_ASSERT(user.has_value());
    apply(core::CreateAccount{*user, "strategy"}, now_ns_);
    auto account = engine_.find_account("strategy");
    QX_ASSERT(account.has_value());
    strategy_ = *account;
    if (config_.cash_minor > 0)
      apply(core::Deposit{strategy_, core::Money(config_.cash_minor)}, now_ns_);
    core::InstrumentParams p = engine_.instrument(book_.instrument()).params;
    p.fees = config_.fees;
    p.margin_long_ppb = config_.margin_ppb;
    p.margin_short_ppb = config_.margin_ppb;
    apply(core::UpdateInstrument{book_.instrument(), p}, now_ns_);
  }

  void apply(core::EventBody body, std::int64_t time_ns, std::uint32_t source = kStrategySource) {
    now_ns_ = std::max(now_ns_, time_ns);
    core::Event ev{core::EventHeader{core::Seq(++seq_), now_ns_, source}, std::move(body)};
    effects_.clear();
    engine_.apply(ev, effects_);
    if (journal_) {
      replay::Status s = journal_->append(ev);
      if (!s) throw std::runtime_error(s.error().message);
      if (seq_ % kCommitEvery == 0) finish();
    }
    record(ev, source);
  }

  BacktestOrder* order_by_client(core::ClientOrderId c) {
    std::uint64_t i = core::raw(c);
    if (i == 0 || i > by_client_.size()) return nullptr;
    return &orders_[by_client_[i - 1]];
  }

  void record(const core::Event& ev, std::uint32_t source) {
    using K = core::EffectKind;
    for (const core::Effect& e : effects_) {
      bool mine = started_ && e.account == strategy_;
      if ((e.kind == K::kOrderRejected || e.kind == K::kAdminRejected) && source == 0) {
        data_rejects_ += 1;
      }
      if (e.kind == K::kOrderRejected && mine) {
        if (std::holds_alternative<core::CancelOrder>(ev.body)) {
          cancel_rejects_ += 1;
        } else if (BacktestOrder* o = order_by_client(e.client_order_id)) {
          o->status = "REJECTED";
          o->reason = core::to_string(static_cast<core::RejectReason>(e.reason));
          o->volume_left = 0;
        }
      } else if (e.kind == K::kOrderAccepted && mine) {
        if (BacktestOrder* o = order_by_client(e.client_order_id)) o->order_id = core::raw(e.order);
      } else if (e.kind == K::kOrderCancelled && mine) {
        if (BacktestOrder* o = order_by_client(e.client_order_id)) {
          o->status = "CANCELLED";
          o->reason = core::to_string(static_cast<core::CancelReason>(e.reason));
          o->volume_left = 0;
        }
      } else if (e.kind == K::kTrade && started_) {
        if (e.account == strategy_) fill(e, false);
        if (e.counter_account == strategy_) fill(e, true);
      }
    }
  }

  void fill(const core::Effect& e, bool maker) {
    BacktestFill f;
    f.time_ns = now_ns_;
    f.seq = seq_;
    f.trade_id = core::raw(e.trade);
    f.order_id = core::raw(maker ? e.counter_order : e.order);
    f.price_ticks = e.price.value;
    f.volume = e.volume.value;
    f.fee_minor = (maker ? e.amount2 : e.amount).value;
    f.maker = maker;
    for (std::size_t i = orders_.size(); i-- > 0;) {
      BacktestOrder& o = orders_[i];
      if (o.order_id != f.order_id) continue;
      f.client_order_id = o.client_order_id;
      f.direction = o.direction;
      f.offset = o.offset;
      o.volume_filled += f.volume;
      o.volume_left -= f.volume;
      if (o.volume_left == 0) o.status = "FILLED";
      break;
    }
    fills_.push_back(f);
  }

  void sample() {
    if (!started_) return;
    BacktestSample s;
    s.time_ns = now_ns_;
    s.seq = seq_;
    core::AccountView a = engine_.account(strategy_);
    s.cash_minor = (a.static_balance + a.close_profit - a.commission).value;
    for (const core::PositionView& p : engine_.positions(strategy_)) {
      s.long_lots += p.long_side.total().value;
      s.short_lots += p.short_side.total().value;
      s.long_open_cost_minor += p.long_side.open_cost.value;
      s.short_open_cost_minor += p.short_side.open_cost.value;
    }
    core::BookView b = engine_.book(book_.instrument(), 1);
    if (!b.bids.empty()) s.bid_ticks = b.bids[0].price.value;
    if (!b.asks.empty()) s.ask_ticks = b.asks[0].price.value;
    samples_.push_back(s);
  }

  BacktestConfig config_;
  sim::LobsterReader reader_;
  sim::LobsterBook book_;
  std::optional<replay::JournalWriter> journal_;
  core::Engine engine_;
  core::EffectBuffer effects_;
  std::vector<core::Event> events_;
  sim::LobsterMessage pending_m_;
  sim::LobsterRow pending_row_;
  bool have_pending_ = false;
  bool started_ = false;
  core::AccountId strategy_{};
  std::uint64_t seq_ = 0;
  std::int64_t now_ns_ = 0;
  std::uint64_t messages_ = 0;
  std::uint64_t next_client_id_ = 1;
  std::uint64_t data_rejects_ = 0;
  std::uint64_t cancel_rejects_ = 0;
  std::vector<BacktestOrder> orders_;
  std::vector<std::size_t> by_client_;  // client id - 1 -> index in orders_
  std::vector<BacktestFill> fills_;
  std::vector<BacktestSample> samples_;
};

}  // namespace qx::python
