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

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "app/render.h"
#include "replay/codec.h"
#include "replay/journal.h"
#include "replay/replay.h"

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
        json j = app::event_json(names, ev);
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
          effects.push_back(app::effect_json(names, e));
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
    json j{{"at_seq", core::raw(e.last_seq())},   {"trading_day", e.trading_day()},
           {"accounts", app::account_json(e, a)}, {"positions", app::positions_json(e, a)},
           {"orders", app::orders_json(e, a)},    {"trades", app::trades_json(e, a)}};
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
}
