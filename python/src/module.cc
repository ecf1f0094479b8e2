// pybind11 bindings of the `qaexchange` package: replay a journal directory and read it as an
// auditor would, through the same code `qx replay` and `qx audit` use.
//
//   import qaexchange
//   r = qaexchange.replay("/tmp/j")            # r.state_hash == `qx replay /tmp/j --json`
//   j = qaexchange.Journal("/tmp/j")
//   j.events(account="acct100001")             # pandas DataFrame (python/qaexchange/__init__.py)
//
// Design: this file only wires replay/ and the JSON rendering of app/render.h to Python; every
// value an auditor compares (hashes, statements, event rows) is produced by the same functions as
// the `qx` tool, so the two cannot drift. Long work (a replay) runs with the GIL released. Errors
// from replay/ (a damaged journal) become Python exceptions (RuntimeError) here, at the edge.
//
// Caveats: a Journal holds the engine at the journal's end (for names); it does not notice events
// appended after it was opened.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "python/src/backtest.h"
#include "python/src/venues_py.h"
#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"
#include "replay/views.h"

namespace py = pybind11;

namespace qx::python {
namespace {

using nlohmann::json;

template <class T>
T unwrap(replay::Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r.value());
}

struct ReplayInfo {
  std::uint64_t last_seq = 0;
  std::string state_hash;
  std::string effects_hash;
  std::uint64_t events_applied = 0;
  std::int64_t last_timestamp_ns = 0;
};

replay::ReplayResult replay_dir(const std::string& dir, std::optional<std::uint64_t> until_seq) {
  replay::ReplayOptions opt;
  if (until_seq) opt.until_seq = core::Seq(*until_seq);
  py::gil_scoped_release unlocked;
  return unwrap(replay::replay_journal(dir, opt));
}

ReplayInfo replay_info(const std::string& dir, std::optional<std::uint64_t> until_seq) {
  replay::ReplayResult r = replay_dir(dir, until_seq);
  const core::Engine& e = r.engine;
  return ReplayInfo{core::raw(e.last_seq()), replay::hex64(e.state_hash()),
                    replay::hex64(e.effects_hash()), r.events_applied, e.last_timestamp_ns()};
}

// Whether an event touches an account or instrument, by the rules of the journal's indexes
// (replay/store.h): the event's own fields, then its effects (a trade touches both sides).
struct Touch {
  std::optional<std::uint32_t> account;
  std::optional<std::uint32_t> instrument;

  bool matches(const core::Event& ev, const core::EffectBuffer& fx) const {
    bool acc = !account, ins = !instrument;
    auto see_account = [&](core::AccountId a) { acc = acc || core::raw(a) == *account; };
    auto see_instrument = [&](core::InstrumentId i) { ins = ins || core::raw(i) == *instrument; };
    std::visit(
        [&](const auto& b) {
          using T = std::decay_t<decltype(b)>;
          if constexpr (requires { b.account; }) see_account(b.account);
          if constexpr (requires { b.instrument; }) see_instrument(b.instrument);
          if constexpr (std::is_same_v<T, core::Settle>) {
            for (const auto& p : b.prices) see_instrument(p.instrument);
          }
        },
        ev.body);
    using K = core::EffectKind;
    for (const core::Effect& e : fx) {
      switch (e.kind) {
        case K::kTrade:
          see_account(e.account);
          see_account(e.counter_account);
          see_instrument(e.instrument);
          break;
        case K::kOrderAccepted:
        case K::kOrderAmended:
        case K::kOrderCancelled:
          see_account(e.account);
          see_instrument(e.instrument);
          break;
        case K::kAccountCreated:
        case K::kDeposited:
        case K::kWithdrawn:
        case K::kAccountRiskSet:
        case K::kAccountSettled:
        case K::kLiquidationStarted: see_account(e.account); break;
        case K::kInstrumentCreated:
        case K::kInstrumentUpdated:
        case K::kInstrumentStatusChanged: see_instrument(e.instrument); break;
        default: break;
      }
    }
    return acc && ins;
  }
};

// A journal opened for reading: the engine at its end resolves names, as `qx audit` does.
class Journal {
 public:
  explicit Journal(std::string dir) : dir_(std::move(dir)), end_(replay_dir(dir_, std::nullopt)) {}

  [[nodiscard]] std::uint64_t last_seq() const { return core::raw(end_.engine.last_seq()); }

  [[nodiscard]] std::vector<std::string> accounts() const {
    std::vector<std::string> out;
    const core::Engine& e = end_.engine;
    for (std::uint32_t i = 0; i < e.account_count(); ++i) {
      out.push_back(e.account_state(core::AccountId(i)).name);
    }
    return out;
  }

  [[nodiscard]] std::vector<std::string> instruments() const {
    std::vector<std::string> out;
    const core::Engine& e = end_.engine;
    for (std::uint32_t i = 0; i < e.instrument_count(); ++i) {
      out.push_back(e.instrument(core::InstrumentId(i)).code);
    }
    return out;
  }

  // Every event touching the account and/or instrument, each rendered as `qx audit events` does,
  // plus "effects" (what the engine did) and "order_id" (the order it created or referred to).
  // One JSON array as text: Python parses it in one call.
  [[nodiscard]] std::string events_json(const std::optional<std::string>& account,
                                        const std::optional<std::string>& instrument) const {
    const core::Engine& names = end_.engine;
    Touch touch;
    if (account) touch.account = core::raw(resolve_account(*account));
    if (instrument) {
      auto i = names.find_instrument(*instrument);
      if (!i) throw py::key_error("unknown instrument '" + *instrument + "'");
      touch.instrument = core::raw(*i);
    }
    json rows = json::array();
    {
      py::gil_scoped_release unlocked;
      replay::ReplayOptions opt;
      opt.on_event = [&](const core::Event& ev, const core::EffectBuffer& fx) {
        if (!touch.matches(ev, fx)) return;
        json j = replay::event_json(names, ev);
        json effects = json::array();
        std::optional<std::uint64_t> order;
        std::visit(
            [&](const auto& b) {
              if constexpr (requires { b.ref; }) {
                if (b.ref.order_id) order = core::raw(*b.ref.order_id);
              }
            },
            ev.body);
        for (const core::Effect& e : fx) {
          effects.push_back(replay::effect_json(names, e));
          if (!order && e.kind == core::EffectKind::kOrderAccepted) order = core::raw(e.order);
        }
        if (order) j["order_id"] = *order;
        j["effects"] = std::move(effects);
        rows.push_back(std::move(j));
      };
      (void)unwrap(replay::replay_journal(dir_, opt));
    }
    return rows.dump();
  }

  // The statement of `qx audit DIR statement ACCOUNT --at-seq N --json`, as JSON text.
  [[nodiscard]] std::string statement_json(const std::string& account,
                                           std::optional<std::uint64_t> at_seq) const {
    core::AccountId a = resolve_account(account);
    replay::ReplayResult r = replay_dir(dir_, at_seq);
    const core::Engine& e = r.engine;
    if (core::raw(a) >= e.account_count()) {
      throw py::key_error("account '" + account + "' does not exist at seq " +
                          std::to_string(core::raw(e.last_seq())));
    }
    json j{{"at_seq", core::raw(e.last_seq())},      {"trading_day", e.trading_day()},
           {"accounts", replay::account_json(e, a)}, {"positions", replay::positions_json(e, a)},
           {"orders", replay::orders_json(e, a)},    {"trades", replay::trades_json(e, a)}};
    return j.dump();
  }

 private:
  [[nodiscard]] core::AccountId resolve_account(const std::string& text) const {
    const core::Engine& e = end_.engine;
    if (auto a = e.find_account(text)) return *a;
    throw py::key_error("unknown account '" + text + "'");
  }

  std::string dir_;
  replay::ReplayResult end_;
};

// Columns (name -> list) of the strategy's records, for pandas.DataFrame.
py::dict order_columns(const Backtest& bt) {
  py::list cid, oid, time, seq, dir, off, type, price, vol, left, filled, status, reason;
  for (const BacktestOrder& o : bt.orders()) {
    cid.append(o.client_order_id);
    oid.append(o.order_id);
    time.append(o.time_ns);
    seq.append(o.seq);
    dir.append(core::to_string(o.direction));
    off.append(core::to_string(o.offset));
    type.append(o.market ? "MARKET" : "LIMIT");
    price.append(o.price_ticks);
    vol.append(o.volume);
    left.append(o.volume_left);
    filled.append(o.volume_filled);
    status.append(o.status);
    reason.append(o.reason);
  }
  py::dict d;
  d["client_order_id"] = cid;
  d["order_id"] = oid;
  d["timestamp_ns"] = time;
  d["seq"] = seq;
  d["direction"] = dir;
  d["offset"] = off;
  d["price_type"] = type;
  d["price_ticks"] = price;
  d["volume"] = vol;
  d["volume_left"] = left;
  d["volume_filled"] = filled;
  d["status"] = status;
  d["reason"] = reason;
  return d;
}

py::dict fill_columns(const Backtest& bt) {
  py::list time, seq, trade, oid, cid, dir, off, price, vol, fee, maker;
  for (const BacktestFill& f : bt.fills()) {
    time.append(f.time_ns);
    seq.append(f.seq);
    trade.append(f.trade_id);
    oid.append(f.order_id);
    cid.append(f.client_order_id);
    dir.append(core::to_string(f.direction));
    off.append(core::to_string(f.offset));
    price.append(f.price_ticks);
    vol.append(f.volume);
    fee.append(f.fee_minor);
    maker.append(f.maker);
  }
  py::dict d;
  d["timestamp_ns"] = time;
  d["seq"] = seq;
  d["trade_id"] = trade;
  d["order_id"] = oid;
  d["client_order_id"] = cid;
  d["direction"] = dir;
  d["offset"] = off;
  d["price_ticks"] = price;
  d["volume"] = vol;
  d["fee_minor"] = fee;
  d["maker"] = maker;
  return d;
}

py::dict sample_columns(const Backtest& bt) {
  py::list time, seq, cash, lng, sht, lcost, scost, bid, ask;
  auto opt = [](const std::optional<std::int64_t>& v) -> py::object {
    return v ? py::object(py::int_(*v)) : py::object(py::none());
  };
  for (const BacktestSample& s : bt.samples()) {
    time.append(s.time_ns);
    seq.append(s.seq);
    cash.append(s.cash_minor);
    lng.append(s.long_lots);
    sht.append(s.short_lots);
    lcost.append(s.long_open_cost_minor);
    scost.append(s.short_open_cost_minor);
    bid.append(opt(s.bid_ticks));
    ask.append(opt(s.ask_ticks));
  }
  py::dict d;
  d["timestamp_ns"] = time;
  d["seq"] = seq;
  d["cash_minor"] = cash;
  d["long_lots"] = lng;
  d["short_lots"] = sht;
  d["long_open_cost_minor"] = lcost;
  d["short_open_cost_minor"] = scost;
  d["bid_ticks"] = bid;
  d["ask_ticks"] = ask;
  return d;
}

core::Direction direction_of(const std::string& s) {
  if (s == "BUY") return core::Direction::kBuy;
  if (s == "SELL") return core::Direction::kSell;
  throw py::value_error("direction must be BUY or SELL, not '" + s + "'");
}

core::Offset offset_of(const std::string& s) {
  if (s == "OPEN") return core::Offset::kOpen;
  if (s == "CLOSE") return core::Offset::kClose;
  if (s == "CLOSE_TODAY") return core::Offset::kCloseToday;
  throw py::value_error("offset must be OPEN, CLOSE or CLOSE_TODAY, not '" + s + "'");
}

std::unique_ptr<Backtest> make_backtest(std::string journal_dir, std::string messages,
                                        std::string orderbook, std::string date, std::size_t levels,
                                        std::string instrument, std::int64_t cash_minor,
                                        std::int64_t fee_per_lot_minor, std::int64_t fee_ppb,
                                        std::int64_t margin_ppb) {
  BacktestConfig c;
  c.journal_dir = std::move(journal_dir);
  c.messages = std::move(messages);
  c.orderbook = std::move(orderbook);
  c.levels = levels;
  c.day_start_ns = unwrap(sim::parse_trading_date(date));
  c.instrument = std::move(instrument);
  c.cash_minor = cash_minor;
  c.fees = core::FeeSchedule{core::Money(fee_per_lot_minor), fee_ppb,
                             core::Money(fee_per_lot_minor), fee_ppb,
                             core::Money(fee_per_lot_minor), fee_ppb};
  c.margin_ppb = margin_ppb;
  return std::make_unique<Backtest>(std::move(c));
}

core::FeeSchedule fee_schedule(std::int64_t per_lot_minor, std::int64_t ppb) {
  return core::FeeSchedule{core::Money(per_lot_minor), ppb, core::Money(per_lot_minor), ppb,
                           core::Money(per_lot_minor), ppb};
}

std::unique_ptr<ExactDriver> make_exact(std::string journal_dir, std::string messages,
                                        std::string orderbook, std::string date, std::size_t levels,
                                        std::string instrument, std::int64_t cash_minor,
                                        std::int64_t fee_per_lot_minor, std::int64_t fee_ppb,
                                        std::int64_t margin_ppb,
                                        std::pair<std::int64_t, std::int64_t> order_entry,
                                        std::pair<std::int64_t, std::int64_t> market_data,
                                        std::uint64_t seed) {
  sim::ExactConfig c;
  c.lobster.instrument_code = std::move(instrument);
  c.lobster.day_start_ns = unwrap(sim::parse_trading_date(date));
  c.lobster.levels = levels;
  c.lobster.tick_units = 100;
  // The translation's own instrument (sim/lobster.cc), with the configured fees and margin.
  core::InstrumentParams p;
  p.price_tick_e8 = c.lobster.tick_units * (core::kDecimalScale / 10'000);
  p.multiplier_e8 = core::kDecimalScale;
  p.max_order_volume = core::Lots(1'000'000'000);
  p.position_limit = core::Lots(0);  // keep the translation's (sim::ExactConfig)
  p.fees = fee_schedule(fee_per_lot_minor, fee_ppb);
  p.margin_long_ppb = margin_ppb;
  p.margin_short_ppb = margin_ppb;
  c.params = p;
  c.strategy_deposit = core::Money(cash_minor);
  c.order_entry = sim::LatencySpec{order_entry.first, order_entry.second};
  c.market_data = sim::LatencySpec{market_data.first, market_data.second};
  c.seed = seed;
  return std::make_unique<ExactDriver>(c, messages, orderbook, journal_dir);
}

// Ticks from files (trades, bbo paths) or from int64 arrays in engine units (arrays != None:
// time_ns, is_trade, price, qty, aggressor (1 buy / -1 sell), bid, bid_qty, ask, ask_qty).
std::unique_ptr<TickDriver> make_tick(std::string journal_dir, std::string trades, std::string bbo,
                                      std::optional<py::dict> arrays, std::string queue_model,
                                      int price_decimals, int qty_decimals, std::string instrument,
                                      std::string currency, int money_decimals,
                                      std::int64_t cash_minor, std::int64_t fee_ppb,
                                      std::int64_t margin_ppb, std::int64_t max_order_lots,
                                      std::pair<std::int64_t, std::int64_t> order_entry,
                                      std::pair<std::int64_t, std::int64_t> market_data,
                                      std::uint64_t seed) {
  sim::VenueConfig c;
  c.instrument_code = std::move(instrument);
  if (money_decimals < 0 || money_decimals > static_cast<int>(core::kMoneyDecimalsMax)) {
    throw py::value_error("money_decimals must be 0 to " + std::to_string(core::kMoneyDecimalsMax));
  }
  c.currency = core::SetCurrency{std::move(currency), static_cast<std::uint32_t>(money_decimals)};
  c.queue = unwrap(sim::parse_queue_model(queue_model));
  std::int64_t pscale = 1, qscale = 1;
  for (int i = 0; i < price_decimals; ++i) pscale *= 10;
  for (int i = 0; i < qty_decimals; ++i) qscale *= 10;
  c.params.price_tick_e8 = core::kDecimalScale / pscale;
  c.params.multiplier_e8 = core::kDecimalScale / qscale;
  c.params.margin_long_ppb = margin_ppb;
  c.params.margin_short_ppb = margin_ppb;
  c.params.fees = fee_schedule(0, fee_ppb);
  c.params.max_order_volume = core::Lots(max_order_lots);
  c.params.position_limit = core::Lots(0);  // the largest allowed (sim::VenueConfig)
  c.strategy_deposit = core::Money(cash_minor);
  c.order_entry = sim::LatencySpec{order_entry.first, order_entry.second};
  c.market_data = sim::LatencySpec{market_data.first, market_data.second};
  c.seed = seed;
  std::vector<Tick> ticks;
  if (arrays) {
    py::dict& a = *arrays;
    auto col = [&](const char* name) {
      return a[name].cast<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>();
    };
    auto time = col("time_ns"), is_trade = col("is_trade"), price = col("price"), qty = col("qty"),
         aggr = col("aggressor"), bid = col("bid"), bidq = col("bid_qty"), ask = col("ask"),
         askq = col("ask_qty");
    py::ssize_t n = time.size();
    for (auto* x : {&is_trade, &price, &qty, &aggr, &bid, &bidq, &ask, &askq}) {
      if (x->size() != n) throw py::value_error("tick arrays differ in length");
    }
    ticks.resize(static_cast<std::size_t>(n));
    for (py::ssize_t i = 0; i < n; ++i) {
      Tick& t = ticks[static_cast<std::size_t>(i)];
      t.time_ns = time.at(i);
      t.trade = is_trade.at(i) != 0;
      t.price = price.at(i);
      t.qty = qty.at(i);
      t.aggressor = aggr.at(i) > 0 ? core::Direction::kBuy : core::Direction::kSell;
      t.bid = bid.at(i);
      t.bid_qty = bidq.at(i);
      t.ask = ask.at(i);
      t.ask_qty = askq.at(i);
    }
  } else {
    py::gil_scoped_release unlocked;
    ticks = read_binance(trades, bbo, sim::BinanceScale{price_decimals, qty_decimals});
  }
  return std::make_unique<TickDriver>(c, std::move(ticks), journal_dir);
}

}  // namespace
}  // namespace qx::python

PYBIND11_MODULE(_qaexchange, m) {
  using qx::python::Journal;
  using qx::python::ReplayInfo;
  m.doc() = "QAExchange engine bindings (see the qaexchange package)";

  py::class_<ReplayInfo>(m, "ReplayInfo")
      .def_readonly("last_seq", &ReplayInfo::last_seq)
      .def_readonly("state_hash", &ReplayInfo::state_hash)
      .def_readonly("effects_hash", &ReplayInfo::effects_hash)
      .def_readonly("events_applied", &ReplayInfo::events_applied)
      .def_readonly("last_timestamp_ns", &ReplayInfo::last_timestamp_ns)
      .def("__repr__", [](const ReplayInfo& r) {
        return "ReplayInfo(last_seq=" + std::to_string(r.last_seq) + ", state_hash='" +
               r.state_hash + "', effects_hash='" + r.effects_hash + "')";
      });

  m.def("replay", &qx::python::replay_info, py::arg("path"), py::arg("until_seq") = py::none(),
        "Replays a journal directory (to until_seq) and returns its last_seq and hashes.");

  py::class_<Journal>(m, "Journal")
      .def(py::init<std::string>(), py::arg("path"))
      .def_property_readonly("last_seq", &Journal::last_seq)
      .def_property_readonly("accounts", &Journal::accounts)
      .def_property_readonly("instruments", &Journal::instruments)
      .def("events_json", &Journal::events_json, py::arg("account") = py::none(),
           py::arg("instrument") = py::none())
      .def("statement_json", &Journal::statement_json, py::arg("account"),
           py::arg("at_seq") = py::none());

  using qx::python::Backtest;
  using Release = py::call_guard<py::gil_scoped_release>;
  py::class_<Backtest>(m, "Backtest")
      .def(py::init(&qx::python::make_backtest), py::arg("journal_dir"), py::arg("messages"),
           py::arg("orderbook"), py::arg("date"), py::arg("levels"), py::arg("instrument"),
           py::arg("cash_minor"), py::arg("fee_per_lot_minor"), py::arg("fee_ppb"),
           py::arg("margin_ppb"))
      .def("step", &Backtest::step, py::arg("messages"), Release())
      .def("advance_to", &Backtest::advance_to, py::arg("time_ns"), Release())
      .def(
          "submit",
          [](Backtest& bt, const std::string& d, const std::string& o,
             std::optional<std::int64_t> price_ticks, std::int64_t volume) {
            return bt.submit(qx::python::direction_of(d), qx::python::offset_of(o), price_ticks,
                             volume);
          },
          py::arg("direction"), py::arg("offset"), py::arg("price_ticks"), py::arg("volume"))
      .def("cancel", &Backtest::cancel, py::arg("client_order_id"))
      .def("finish", &Backtest::finish, Release())
      .def("best",
           [](const Backtest& bt) {
             auto b = bt.engine().book(bt.instrument(), 1);
             py::object bid = py::none(), ask = py::none();
             if (!b.bids.empty()) bid = py::int_(b.bids[0].price.value);
             if (!b.asks.empty()) ask = py::int_(b.asks[0].price.value);
             return py::make_tuple(bid, ask);
           })
      .def_property_readonly("started", &Backtest::started)
      .def_property_readonly("time_ns", &Backtest::now_ns)
      .def_property_readonly("messages_applied", &Backtest::messages)
      .def_property_readonly("data_rejects", &Backtest::data_rejects)
      .def_property_readonly(
          "last_seq", [](const Backtest& bt) { return qx::core::raw(bt.engine().last_seq()); })
      .def_property_readonly(
          "state_hash",
          [](const Backtest& bt) { return qx::replay::hex64(bt.engine().state_hash()); })
      .def_property_readonly(
          "effects_hash",
          [](const Backtest& bt) { return qx::replay::hex64(bt.engine().effects_hash()); })
      .def("order_columns", &qx::python::order_columns)
      .def("fill_columns", &qx::python::fill_columns)
      .def("sample_columns", &qx::python::sample_columns);

  py::class_<qx::python::ExactDriver> exact(m, "ExactBacktest");
  exact.def(py::init(&qx::python::make_exact), py::arg("journal_dir"), py::arg("messages"),
            py::arg("orderbook"), py::arg("date"), py::arg("levels"), py::arg("instrument"),
            py::arg("cash_minor"), py::arg("fee_per_lot_minor"), py::arg("fee_ppb"),
            py::arg("margin_ppb"), py::arg("order_entry"), py::arg("market_data"), py::arg("seed"));
  qx::python::bind_driver(exact);
  py::class_<qx::python::TickDriver> tick(m, "TickBacktest");
  tick.def(py::init(&qx::python::make_tick), py::arg("journal_dir"), py::arg("trades"),
           py::arg("bbo"), py::arg("arrays"), py::arg("queue_model"), py::arg("price_decimals"),
           py::arg("qty_decimals"), py::arg("instrument"), py::arg("currency"),
           py::arg("money_decimals"), py::arg("cash_minor"), py::arg("fee_ppb"),
           py::arg("margin_ppb"), py::arg("max_order_lots"), py::arg("order_entry"),
           py::arg("market_data"), py::arg("seed"));
  qx::python::bind_driver(tick);
}
