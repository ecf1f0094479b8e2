// Backtests on the sim/ fill modes, for Python: `ExactDriver` replays LOBSTER messages through
// sim::ExactLobsterVenue (label "exact"); `TickDriver` replays Binance-style trades and best
// bid/offer through sim::ReplayOnlyVenue (label "replay-only/<queue model>").
//
//   ExactDriver d(exact_config, messages, orderbook, journal_dir);
//   MarketEvent ev;
//   while (d.next(ev)) {                       // one historical message / tick
//     if (...) d.submit(Direction::kBuy, Offset::kOpen, price_ticks, lots);  // after latency
//   }
//   d.finish();                                // journal: every event of venue.events()
//
// Design: the venue owns the engine and numbers the events; the driver only feeds it history,
// records the strategy's orders (direction, offset, price, volume as asked) and samples the
// strategy's account for the equity curve, and appends venue.events() to the journal (replay/)
// as they appear, so `qx replay DIR` reaches the venue's state hash. Strategy actions are stamped
// with the time of the last historical event; they reach the venue after its order-entry latency.
// Caveats: single-threaded; records grow with the run; prices in engine ticks, volumes in lots.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"
#include "sim/binance.h"
#include "sim/exact.h"
#include "sim/fill.h"
#include "sim/lobster.h"

namespace qx::python {

// One historical event as the strategy sees it: a quote change or a trade, with the best
// bid/offer after it (0 when a side is empty).
struct MarketEvent {
  std::int64_t time_ns = 0;
  std::uint8_t kind = 0;  // 0 quote, 1 trade
  std::int64_t price = 0, qty = 0;
  std::int8_t side = 0;  // trade aggressor: 1 buy, -1 sell; 0 for quotes
  std::int64_t bid = 0, bid_qty = 0, ask = 0, ask_qty = 0;
};

// One price level: price in ticks, quantity in lots.
struct Level {
  std::int64_t price = 0;
  std::int64_t qty = 0;
};

struct DriverOrder {
  std::uint64_t id = 0;
  std::int64_t time_ns = 0;
  core::Direction direction{};
  core::Offset offset{};
  std::int64_t price = 0, volume = 0, filled = 0;
  bool cancel_requested = false;
  std::optional<std::uint16_t> reject;
};

struct DriverSample {
  std::int64_t time_ns = 0;
  std::int64_t cash_minor = 0;
  std::int64_t long_lots = 0, short_lots = 0;
  std::int64_t long_cost_minor = 0, short_cost_minor = 0;
  std::int64_t bid = 0, ask = 0;
};

// What every driver shares: the journal, the strategy's records and samples.
template <class Venue>
class DriverBase {
 public:
  explicit DriverBase(const std::string& journal_dir) : journal_(open_journal(journal_dir)) {}
  DriverBase(const DriverBase&) = delete;
  DriverBase& operator=(const DriverBase&) = delete;
  virtual ~DriverBase() {
    if (journal_) (void)journal_->commit();
  }

  std::uint64_t submit(core::Direction d, core::Offset o, std::int64_t price, std::int64_t lots) {
    Venue& v = venue();
    std::uint64_t id = v.submit(last_.time_ns, d, o, price, lots);
    DriverOrder rec;
    rec.id = id;
    rec.time_ns = last_.time_ns;
    rec.direction = d;
    rec.offset = o;
    rec.price = price;
    rec.volume = lots;
    index_[id] = orders_.size();
    orders_.push_back(rec);
    return id;
  }

  bool cancel(std::uint64_t id) {
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    DriverOrder& o = orders_[it->second];
    if (o.cancel_requested || o.reject || o.filled >= o.volume) return false;
    o.cancel_requested = true;
    venue().cancel(last_.time_ns, id);
    return true;
  }

  // Lets every pending action that has arrived by `time_ns` reach the venue.
  void flush_actions(std::int64_t time_ns) {
    venue().advance_to(time_ns);
    collect();
  }

  // Appends the events not yet journaled and commits.
  void finish() {
    write_journal();
    if (!journal_) return;
    auto r = journal_->commit();
    if (!r) throw std::runtime_error(r.error().message);
  }

  // New fills and rejects since the last call go into the records; returns fills recorded.
  std::size_t collect() {
    const Venue& v = venue();
    std::size_t before = fills_seen_;
    for (; fills_seen_ < v.fills().size(); ++fills_seen_) {
      const sim::SimFill& f = v.fills()[fills_seen_];
      auto it = index_.find(f.order);
      if (it != index_.end()) orders_[it->second].filled += f.volume.value;
    }
    for (; rejects_seen_ < v.rejects().size(); ++rejects_seen_) {
      const sim::SimReject& r = v.rejects()[rejects_seen_];
      auto it = index_.find(r.order);
      if (it != index_.end()) orders_[it->second].reject = r.reason;
    }
    write_journal();
    return fills_seen_ - before;
  }

  void sample() {
    const core::Engine& e = venue().engine();
    core::AccountId a = strategy_account();
    if (core::raw(a) >= e.account_count()) return;
    DriverSample s;
    s.time_ns = last_.time_ns;
    core::AccountView av = e.account(a);
    s.cash_minor = (av.static_balance + av.close_profit - av.commission).value;
    for (const core::PositionView& p : e.positions(a)) {
      s.long_lots += p.long_side.total().value;
      s.short_lots += p.short_side.total().value;
      s.long_cost_minor += p.long_side.open_cost.value;
      s.short_cost_minor += p.short_side.open_cost.value;
    }
    s.bid = last_.bid;
    s.ask = last_.ask;
    samples_.push_back(s);
  }

  // Net lots of the strategy (long - short) in the engine now.
  [[nodiscard]] std::int64_t position() const {
    const core::Engine& e = venue().engine();
    core::AccountId a = strategy_account();
    if (core::raw(a) >= e.account_count()) return 0;
    std::int64_t net = 0;
    for (const core::PositionView& p : e.positions(a)) {
      net += p.long_side.total().value - p.short_side.total().value;
    }
    return net;
  }

  [[nodiscard]] std::string status(const DriverOrder& o) const {
    if (o.reject) return "REJECTED";
    if (o.filled >= o.volume) return "FILLED";
    if (venue().working(o.id) > 0) return o.cancel_requested ? "CANCEL_PENDING" : "ALIVE";
    return o.cancel_requested ? "CANCELLED" : "PENDING";
  }

  [[nodiscard]] const DriverOrder* find_order(std::uint64_t id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &orders_[it->second];
  }
  [[nodiscard]] const MarketEvent& last() const { return last_; }
  [[nodiscard]] const std::vector<DriverOrder>& orders() const { return orders_; }
  [[nodiscard]] const std::vector<DriverSample>& samples() const { return samples_; }
  [[nodiscard]] std::uint64_t events_read() const { return events_read_; }
  [[nodiscard]] std::size_t fills_seen() const { return fills_seen_; }
  [[nodiscard]] virtual const Venue& venue() const = 0;
  [[nodiscard]] virtual Venue& venue() = 0;
  [[nodiscard]] static core::AccountId strategy_account() { return Venue::strategy_account(); }

 protected:
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

  void write_journal() {
    const std::vector<core::Event>& ev = venue().events();
    if (!journal_) {
      written_ = ev.size();
      return;
    }
    for (; written_ < ev.size(); ++written_) {
      replay::Status s = journal_->append(ev[written_]);
      if (!s) throw std::runtime_error(s.error().message);
    }
  }

  MarketEvent last_;
  std::uint64_t events_read_ = 0;

 private:
  std::optional<replay::JournalWriter> journal_;
  std::size_t written_ = 0, fills_seen_ = 0, rejects_seen_ = 0;
  std::vector<DriverOrder> orders_;
  std::map<std::uint64_t, std::size_t> index_;
  std::vector<DriverSample> samples_;
};

// LOBSTER through sim::ExactLobsterVenue.
class ExactDriver : public DriverBase<sim::ExactLobsterVenue> {
 public:
  ExactDriver(const sim::ExactConfig& config, const std::string& messages,
              const std::string& orderbook, const std::string& journal_dir)
      : DriverBase(journal_dir), reader_(open_reader(messages, orderbook, config.lobster.levels)) {
    sim::ExactConfig c = config;
    c.lobster.levels = reader_.levels();
    day_start_ns_ = c.lobster.day_start_ns;
    tick_units_ = c.lobster.tick_units;
    venue_.emplace(c);
  }

  // The time (Unix ns) of the next message; false at the end of the data.
  bool peek_time(std::int64_t& t) {
    if (!have_) {
      auto more = reader_.next(m_, row_);
      if (!more) throw std::runtime_error(more.error().message);
      have_ = more.value();
    }
    if (have_) t = day_start_ns_ + m_.time_ns;
    return have_;
  }

  // The next message; false at the end of the data.
  bool next(MarketEvent& ev) {
    std::int64_t t = 0;
    if (!peek_time(t)) return false;
    have_ = false;
    replay::Status s = venue_->on_message(m_, row_);
    if (!s) throw std::runtime_error(s.error().message);
    events_read_ += 1;
    ev = MarketEvent{};
    ev.time_ns = day_start_ns_ + m_.time_ns;
    bool trade =
        m_.type == sim::LobsterType::kExecuteVisible || m_.type == sim::LobsterType::kExecuteHidden;
    ev.kind = trade ? 1 : 0;
    if (trade) {
      ev.price = m_.price / tick_units_;
      ev.qty = m_.size;
      // The executed order rests on m.direction's side: the aggressor is the other side.
      ev.side = m_.direction == core::Direction::kBuy ? -1 : 1;
    }
    if (!row_.bids.empty()) {
      ev.bid = row_.bids[0].price / tick_units_;
      ev.bid_qty = row_.bids[0].size;
    }
    if (!row_.asks.empty()) {
      ev.ask = row_.asks[0].price / tick_units_;
      ev.ask_qty = row_.asks[0].size;
    }
    last_ = ev;
    collect();
    return true;
  }

  [[nodiscard]] const sim::ExactLobsterVenue& venue() const override { return *venue_; }
  [[nodiscard]] sim::ExactLobsterVenue& venue() override { return *venue_; }
  [[nodiscard]] std::string mode() const { return "exact"; }

  // The book the strategy trades in: the engine's top N levels (N of the data), the strategy's
  // own orders included, best first.
  void depth(std::vector<Level>& bids, std::vector<Level>& asks) const {
    core::BookView b = venue_->engine().book(venue_->book().instrument(), reader_.levels());
    bids.clear();
    asks.clear();
    for (const core::LevelView& l : b.bids) bids.push_back({l.price.value, l.volume.value});
    for (const core::LevelView& l : b.asks) asks.push_back({l.price.value, l.volume.value});
  }

 private:
  static sim::LobsterReader open_reader(const std::string& m, const std::string& b,
                                        std::size_t levels) {
    auto r = sim::LobsterReader::open(m, b, levels);
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r.value());
  }

  sim::LobsterReader reader_;
  std::optional<sim::ExactLobsterVenue> venue_;
  sim::LobsterMessage m_;
  sim::LobsterRow row_;
  bool have_ = false;
  std::int64_t day_start_ns_ = 0;
  std::int64_t tick_units_ = 100;
};

// One tick of trades + best bid/offer data, in engine units.
struct Tick {
  std::int64_t time_ns = 0;
  bool trade = false;
  std::int64_t price = 0, qty = 0;                          // trade
  core::Direction aggressor{};                              // trade
  std::int64_t bid = 0, bid_qty = 0, ask = 0, ask_qty = 0;  // BBO
};

// Reads Binance trades + BBO files (sim/binance.h) into ticks, by arrival time (local_ts_ns).
inline std::vector<Tick> read_binance(const std::string& trades, const std::string& bbo,
                                      const sim::BinanceScale& scale) {
  auto r = sim::BinanceReader::open(trades, bbo, scale);
  if (!r) throw std::runtime_error(r.error().message);
  std::vector<Tick> out;
  sim::BinanceTick t;
  for (;;) {
    auto more = r.value().next(t);
    if (!more) throw std::runtime_error(more.error().message);
    if (!more.value()) break;
    Tick k;
    if (t.kind == sim::BinanceTickKind::kTrade) {
      k.time_ns = t.trade.local_ts_ns;
      k.trade = true;
      k.price = t.trade.price;
      k.qty = t.trade.qty;
      k.aggressor = t.trade.aggressor;
    } else {
      k.time_ns = t.bbo.local_ts_ns;
      k.bid = t.bbo.bid_price;
      k.bid_qty = t.bbo.bid_qty;
      k.ask = t.bbo.ask_price;
      k.ask_qty = t.bbo.ask_qty;
    }
    out.push_back(k);
  }
  return out;
}

// Ticks through sim::ReplayOnlyVenue. The venue's reference price is the first tick's price.
class TickDriver : public DriverBase<sim::ReplayOnlyVenue> {
 public:
  TickDriver(sim::VenueConfig config, std::vector<Tick> ticks, const std::string& journal_dir)
      : DriverBase(journal_dir), ticks_(std::move(ticks)) {
    for (const Tick& t : ticks_) {
      std::int64_t p = t.trade ? t.price : (t.bid + t.ask) / 2;
      if (p > 0) {
        config.reference_price = core::PriceTicks(p);
        break;
      }
    }
    venue_.emplace(config);
    collect();
  }

  bool peek_time(std::int64_t& t) const {
    if (pos_ >= ticks_.size()) return false;
    t = ticks_[pos_].time_ns;
    return true;
  }

  bool next(MarketEvent& ev) {
    if (pos_ >= ticks_.size()) return false;
    const Tick& t = ticks_[pos_++];
    replay::Status s = t.trade ? venue_->on_trade(t.time_ns, t.price, t.qty, t.aggressor)
                               : venue_->on_bbo(t.time_ns, t.bid, t.bid_qty, t.ask, t.ask_qty);
    if (!s) {
      throw std::runtime_error("tick " + std::to_string(pos_ - 1) + ": " + s.error().message);
    }
    events_read_ += 1;
    ev = last_;
    ev.time_ns = t.time_ns;
    ev.kind = t.trade ? 1 : 0;
    if (t.trade) {
      ev.price = t.price;
      ev.qty = t.qty;
      ev.side = t.aggressor == core::Direction::kBuy ? 1 : -1;
    } else {
      ev.price = ev.qty = 0;
      ev.side = 0;
      ev.bid = t.bid;
      ev.bid_qty = t.bid_qty;
      ev.ask = t.ask;
      ev.ask_qty = t.ask_qty;
    }
    last_ = ev;
    collect();
    return true;
  }

  [[nodiscard]] const sim::ReplayOnlyVenue& venue() const override { return *venue_; }
  [[nodiscard]] sim::ReplayOnlyVenue& venue() override { return *venue_; }
  [[nodiscard]] std::string mode() const { return venue_->mode(); }

  // The historical best bid and offer (the data has no deeper levels), best first.
  void depth(std::vector<Level>& bids, std::vector<Level>& asks) const {
    bids.clear();
    asks.clear();
    if (last_.bid > 0) bids.push_back({last_.bid, last_.bid_qty});
    if (last_.ask > 0) asks.push_back({last_.ask, last_.ask_qty});
  }
  [[nodiscard]] std::size_t size() const { return ticks_.size(); }

 private:
  std::vector<Tick> ticks_;
  std::size_t pos_ = 0;
  std::optional<sim::ReplayOnlyVenue> venue_;
};

}  // namespace qx::python
