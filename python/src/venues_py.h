// pybind11 bindings of python/src/venues.h: the explicit loop (step, advance_to, submit, cancel),
// the callback loop `run` (per event, or batched into numpy arrays), and the records as columns.
// Included once, by module.cc.
//
// run(strategy, batch, timer_ns, sample_every, tick): prices reach Python as floats (ticks * tick);
//   per event: on_quote(t_ns, bid, bid_qty, ask, ask_qty), on_trade(t_ns, price, qty, side)
//   (side 1 buy aggressor, -1 sell), on_timer(t_ns) every timer_ns of data time;
//   batched (batch > 0): on_batch(dict of numpy arrays: time_ns, kind, price, qty, side, bid,
//   bid_qty, ask, ask_qty) every `batch` events, the data read with the GIL released;
//   both: on_fill(order_id, direction, price, volume, fee, aggressive) and
//   on_order(order_id, status, filled) as the strategy's fills and rejects are recorded.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "python/src/venues.h"
#include "replay/replay.h"

namespace qx::python {

namespace py = pybind11;

// Minor money units per currency unit of the venue's engine (its SetCurrency, or the default).
template <class D>
double money_scale(const D& d) {
  return static_cast<double>(d.venue().engine().money_scale());
}

template <class D>
bool driver_step(D& d, std::uint64_t n) {
  std::uint64_t done = 0;
  {
    py::gil_scoped_release unlocked;
    MarketEvent ev;
    for (; done < n; ++done) {
      if (!d.next(ev)) break;
    }
    if (done > 0) d.sample();
  }
  return done > 0;
}

template <class D>
bool driver_advance_to(D& d, std::int64_t time_ns) {
  py::gil_scoped_release unlocked;
  MarketEvent ev;
  std::int64_t t = 0;
  bool any = false;
  while (d.peek_time(t) && t <= time_ns) {
    d.next(ev);
    any = true;
  }
  d.flush_actions(time_ns);
  if (any) d.sample();
  return d.peek_time(t);
}

template <class D>
struct Callbacks {
  py::object quote, trade, book, fill, order, timer, batch;
  std::size_t fills_done = 0;

  explicit Callbacks(const py::object& s) {
    auto get = [&](const char* name) {
      return py::hasattr(s, name) ? py::getattr(s, name) : py::object(py::none());
    };
    quote = get("on_quote");
    trade = get("on_trade");
    book = get("on_book");
    fill = get("on_fill");
    order = get("on_order");
    timer = get("on_timer");
    batch = get("on_batch");
  }

  // Fills and rejects recorded since the last call.
  void report(D& d, double tick, std::size_t& rejects_done) {
    const auto& fills = d.venue().fills();
    for (; fills_done < fills.size(); ++fills_done) {
      const sim::SimFill& f = fills[fills_done];
      if (!fill.is_none()) {
        fill(f.order, core::to_string(f.direction), static_cast<double>(f.price.value) * tick,
             f.volume.value, static_cast<double>(f.fee.value) / money_scale(d), f.aggressive);
      }
      const DriverOrder* o = d.find_order(f.order);
      if (!order.is_none() && o != nullptr) order(o->id, d.status(*o), o->filled);
    }
    const auto& rejects = d.venue().rejects();
    for (; rejects_done < rejects.size(); ++rejects_done) {
      if (!order.is_none()) order(rejects[rejects_done].order, "REJECTED", 0);
    }
  }
};

template <class D>
std::uint64_t driver_run(D& d, const py::object& strategy, std::size_t batch, std::int64_t timer_ns,
                         std::uint64_t sample_every, double tick, std::uint64_t max_events) {
  Callbacks<D> cb(strategy);
  cb.fills_done = d.venue().fills().size();
  std::size_t rejects_done = d.venue().rejects().size();
  if (sample_every == 0) sample_every = 1;
  std::uint64_t n = 0;
  std::int64_t next_timer = 0;
  MarketEvent ev;
  if (batch > 0) {
    if (cb.batch.is_none()) throw py::value_error("batch > 0 needs an on_batch method");
    std::vector<std::int64_t> time, price, qty, bid, bidq, ask, askq;
    std::vector<std::int8_t> kind, side;
    for (;;) {
      bool more = true;
      {
        py::gil_scoped_release unlocked;
        time.clear(), price.clear(), qty.clear(), bid.clear(), bidq.clear(), ask.clear();
        askq.clear(), kind.clear(), side.clear();
        while (time.size() < batch && n < max_events) {
          if (!d.next(ev)) {
            more = false;
            break;
          }
          n += 1;
          if (n == 1 || n % sample_every == 0) d.sample();
          time.push_back(ev.time_ns);
          kind.push_back(static_cast<std::int8_t>(ev.kind));
          price.push_back(ev.price);
          qty.push_back(ev.qty);
          side.push_back(ev.side);
          bid.push_back(ev.bid);
          bidq.push_back(ev.bid_qty);
          ask.push_back(ev.ask);
          askq.push_back(ev.ask_qty);
        }
      }
      if (n >= max_events) more = false;
      cb.report(d, tick, rejects_done);
      if (time.empty()) break;
      auto ticks = [&](const std::vector<std::int64_t>& v) {
        py::array_t<double> a(static_cast<py::ssize_t>(v.size()));
        double* p = a.mutable_data();
        for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<double>(v[i]) * tick;
        return a;
      };
      auto ints = [](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
        std::copy(v.begin(), v.end(), a.mutable_data());
        return a;
      };
      py::dict arrays;
      arrays["time_ns"] = ints(time);
      arrays["kind"] = ints(kind);
      arrays["price"] = ticks(price);
      arrays["qty"] = ints(qty);
      arrays["side"] = ints(side);
      arrays["bid"] = ticks(bid);
      arrays["bid_qty"] = ints(bidq);
      arrays["ask"] = ticks(ask);
      arrays["ask_qty"] = ints(askq);
      cb.batch(arrays);
      if (!cb.timer.is_none() && timer_ns > 0 && time.back() >= next_timer) {
        cb.timer(time.back());
        next_timer = time.back() - time.back() % timer_ns + timer_ns;
      }
      if (!more) break;
    }
  } else {
    std::vector<Level> bid_levels, ask_levels;
    while (n < max_events && d.next(ev)) {
      n += 1;
      if (n == 1 || n % sample_every == 0) d.sample();
      if (ev.kind == 0) {
        if (!cb.quote.is_none()) {
          cb.quote(ev.time_ns, static_cast<double>(ev.bid) * tick, ev.bid_qty,
                   static_cast<double>(ev.ask) * tick, ev.ask_qty);
        }
      } else if (!cb.trade.is_none()) {
        cb.trade(ev.time_ns, static_cast<double>(ev.price) * tick, ev.qty, ev.side);
      }
      if (!cb.book.is_none()) {
        d.depth(bid_levels, ask_levels);
        auto levels = [&](const std::vector<Level>& v) {
          py::list out;
          for (const Level& l : v)
            out.append(py::make_tuple(static_cast<double>(l.price) * tick, l.qty));
          return out;
        };
        cb.book(ev.time_ns, levels(bid_levels), levels(ask_levels));
      }
      if (d.venue().fills().size() > cb.fills_done || d.venue().rejects().size() > rejects_done) {
        cb.report(d, tick, rejects_done);
      }
      if (!cb.timer.is_none() && timer_ns > 0 && ev.time_ns >= next_timer) {
        cb.timer(ev.time_ns);
        next_timer = ev.time_ns - ev.time_ns % timer_ns + timer_ns;
      }
    }
  }
  d.sample();
  return n;
}

template <class D>
py::dict driver_orders(const D& d, double tick) {
  py::list id, time, dir, off, price, vol, filled, status, reason;
  for (const DriverOrder& o : d.orders()) {
    id.append(o.id);
    time.append(o.time_ns);
    dir.append(core::to_string(o.direction));
    off.append(core::to_string(o.offset));
    price.append(static_cast<double>(o.price) * tick);
    vol.append(o.volume);
    filled.append(o.filled);
    status.append(d.status(o));
    reason.append(o.reject ? core::to_string(static_cast<core::RejectReason>(*o.reject)) : "");
  }
  py::dict c;
  c["order_id"] = id;
  c["timestamp_ns"] = time;
  c["direction"] = dir;
  c["offset"] = off;
  c["price"] = price;
  c["volume"] = vol;
  c["volume_filled"] = filled;
  c["status"] = status;
  c["reason"] = reason;
  return c;
}

template <class D>
py::dict driver_fills(const D& d, double tick) {
  py::list time, visible, id, dir, off, price, vol, fee, aggressive, mode;
  std::map<std::uint64_t, core::Offset> offsets;
  for (const DriverOrder& o : d.orders()) offsets[o.id] = o.offset;
  for (const sim::SimFill& f : d.venue().fills()) {
    time.append(f.time_ns);
    visible.append(f.visible_ns);
    id.append(f.order);
    dir.append(core::to_string(f.direction));
    off.append(core::to_string(offsets[f.order]));
    price.append(static_cast<double>(f.price.value) * tick);
    vol.append(f.volume.value);
    fee.append(static_cast<double>(f.fee.value) / money_scale(d));
    aggressive.append(f.aggressive);
    mode.append(f.mode);
  }
  py::dict c;
  c["timestamp_ns"] = time;
  c["visible_ns"] = visible;
  c["order_id"] = id;
  c["direction"] = dir;
  c["offset"] = off;
  c["price"] = price;
  c["volume"] = vol;
  c["fee"] = fee;
  c["aggressive"] = aggressive;
  py::list maker;
  for (const auto& a : aggressive) maker.append(!a.cast<bool>());
  c["maker"] = maker;
  c["mode"] = mode;
  return c;
}

template <class D>
py::dict driver_samples(const D& d, double tick) {
  py::list time, cash, lng, sht, lcost, scost, bid, ask;
  for (const DriverSample& s : d.samples()) {
    time.append(s.time_ns);
    cash.append(static_cast<double>(s.cash_minor) / money_scale(d));
    lng.append(s.long_lots);
    sht.append(s.short_lots);
    lcost.append(static_cast<double>(s.long_cost_minor) / money_scale(d));
    scost.append(static_cast<double>(s.short_cost_minor) / money_scale(d));
    bid.append(s.bid > 0 ? py::object(py::float_(static_cast<double>(s.bid) * tick))
                         : py::object(py::none()));
    ask.append(s.ask > 0 ? py::object(py::float_(static_cast<double>(s.ask) * tick))
                         : py::object(py::none()));
  }
  py::dict c;
  c["timestamp_ns"] = time;
  c["cash"] = cash;
  c["long_lots"] = lng;
  c["short_lots"] = sht;
  c["long_cost"] = lcost;
  c["short_cost"] = scost;
  c["bid"] = bid;
  c["ask"] = ask;
  return c;
}

template <class D>
void bind_driver(py::class_<D>& c) {
  c.def("step", &driver_step<D>, py::arg("n"))
      .def("advance_to", &driver_advance_to<D>, py::arg("time_ns"))
      .def(
          "submit",
          [](D& d, const std::string& dir, const std::string& off, std::int64_t price,
             std::int64_t lots) {
            core::Direction di = dir == "BUY" ? core::Direction::kBuy : core::Direction::kSell;
            if (dir != "BUY" && dir != "SELL") throw py::value_error("direction BUY or SELL");
            core::Offset o = off == "OPEN"    ? core::Offset::kOpen
                             : off == "CLOSE" ? core::Offset::kClose
                                              : core::Offset::kCloseToday;
            if (off != "OPEN" && off != "CLOSE" && off != "CLOSE_TODAY") {
              throw py::value_error("offset OPEN, CLOSE or CLOSE_TODAY");
            }
            return d.submit(di, o, price, lots);
          },
          py::arg("direction"), py::arg("offset"), py::arg("price_ticks"), py::arg("volume"))
      .def("cancel", &D::cancel, py::arg("order_id"))
      .def("finish", &D::finish, py::call_guard<py::gil_scoped_release>())
      .def("run", &driver_run<D>, py::arg("strategy"), py::arg("batch"), py::arg("timer_ns"),
           py::arg("sample_every"), py::arg("tick"), py::arg("max_events"))
      .def("best",
           [](const D& d) {
             const MarketEvent& e = d.last();
             return py::make_tuple(e.bid > 0 ? py::object(py::int_(e.bid)) : py::none(),
                                   e.ask > 0 ? py::object(py::int_(e.ask)) : py::none());
           })
      .def("working", [](const D& d, std::uint64_t id) { return d.venue().working(id); })
      .def_property_readonly("position", &D::position)
      .def_property_readonly("mode", &D::mode)
      .def_property_readonly("time_ns", [](const D& d) { return d.last().time_ns; })
      .def_property_readonly("events_read", &D::events_read)
      .def_property_readonly("last_seq",
                             [](const D& d) { return core::raw(d.venue().engine().last_seq()); })
      .def_property_readonly(
          "state_hash", [](const D& d) { return replay::hex64(d.venue().engine().state_hash()); })
      .def_property_readonly(
          "effects_hash",
          [](const D& d) { return replay::hex64(d.venue().engine().effects_hash()); })
      .def("order_columns", &driver_orders<D>, py::arg("tick"))
      .def("fill_columns", &driver_fills<D>, py::arg("tick"))
      .def("sample_columns", &driver_samples<D>, py::arg("tick"));
}

}  // namespace qx::python
