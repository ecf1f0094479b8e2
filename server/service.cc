#include "server/service.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "replay/views.h"
#include "replay/replay.h"

namespace qx::server {

using nlohmann::json;

namespace {

// JSON text; bytes that are not UTF-8 (echoed from a request path) become U+FFFD, never a throw.
std::string text_of(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Reply error_reply(unsigned status, const std::string& code, const std::string& message) {
  return Reply{status, text_of(json{{"error", code}, {"message", message}})};
}

namespace {

constexpr std::size_t kNameBytesMax = 31;

Reply ok(const json& j) {
  return Reply{200, text_of(j)};
}

// A request-shape problem, thrown by the field readers and answered 400 by handle().
struct BadRequest {
  std::string message;
};

// Integer value of a decimal text with at most `places` fractional digits, scaled by 10^places;
// nullopt on anything else (signs other than a leading '-', exponents, overflow).
std::optional<std::int64_t> parse_decimal(std::string_view s, int places) {
  bool neg = false;
  if (!s.empty() && s.front() == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 40) return std::nullopt;
  std::int64_t v = 0;
  int frac = -1;
  bool digits = false;
  for (char c : s) {
    if (c == '.') {
      if (frac >= 0) return std::nullopt;
      frac = 0;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (frac >= 0 && ++frac > places) return std::nullopt;
    digits = true;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  for (int i = frac < 0 ? 0 : frac; i < places; ++i) {
    if (__builtin_mul_overflow(v, 10, &v)) return std::nullopt;
  }
  return neg ? -v : v;
}

const json& field(const json& j, const char* key) {
  if (!j.contains(key)) throw BadRequest{std::string("missing field '") + key + "'"};
  return j[key];
}

std::string text_field(const json& j, const char* key, std::size_t max_bytes = kNameBytesMax) {
  const json& v = field(j, key);
  if (!v.is_string()) throw BadRequest{std::string("'") + key + "' must be a string"};
  auto s = v.get<std::string>();
  if (s.empty() || s.size() > max_bytes) {
    throw BadRequest{std::string("'") + key + "' must have 1 to " + std::to_string(max_bytes) +
                     " bytes"};
  }
  return s;
}

std::int64_t int_field(const json& j, const char* key, std::int64_t lo, std::int64_t hi) {
  const json& v = field(j, key);
  bool in_range = false;
  std::int64_t out = 0;
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    in_range = u <= static_cast<std::uint64_t>(hi);
    out = in_range ? static_cast<std::int64_t>(u) : 0;
  } else if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    in_range = true;
  } else {
    throw BadRequest{std::string("'") + key + "' must be an integer"};
  }
  if (!in_range || out < lo || out > hi) {
    throw BadRequest{std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                     std::to_string(hi)};
  }
  return out;
}

// {"order_id": N} or {"client_order_id": N}: the order a cancel or amend refers to.
core::OrderRef order_ref_field(const json& body) {
  constexpr std::int64_t kIdMax = std::int64_t{1} << 62;
  core::OrderRef ref;
  if (body.contains("order_id")) {
    ref.order_id =
        core::OrderId(static_cast<std::uint64_t>(int_field(body, "order_id", 1, kIdMax)));
  } else {
    ref.client_order_id = core::ClientOrderId(
        static_cast<std::uint64_t>(int_field(body, "client_order_id", 1, kIdMax)));
  }
  return ref;
}

// A decimal given as a string or a JSON number, scaled by 10^places, within [lo, hi].
std::int64_t decimal_field(const json& j, const char* key, int places, std::int64_t lo,
                           std::int64_t hi) {
  const json& v = field(j, key);
  std::optional<std::int64_t> d;
  if (v.is_string()) {
    d = parse_decimal(v.get<std::string>(), places);
  } else if (v.is_number()) {
    d = parse_decimal(v.dump(), places);  // shortest round-trip text of the number
  }
  if (!d || *d < lo || *d > hi) {
    throw BadRequest{std::string("'") + key + "' must be a decimal with at most " +
                     std::to_string(places) + " places, within range"};
  }
  return *d;
}

template <class E>
E enum_field(const json& j, const char* key, std::initializer_list<E> values, E fallback,
             bool required) {
  if (!j.contains(key)) {
    if (required) throw BadRequest{std::string("missing field '") + key + "'"};
    return fallback;
  }
  const json& v = j[key];
  if (v.is_string()) {
    for (E e : values) {
      if (v.get<std::string>() == core::to_string(e)) return e;
    }
  }
  std::string names;
  for (E e : values) names += std::string(names.empty() ? "" : ", ") + core::to_string(e);
  throw BadRequest{std::string("'") + key + "' must be one of " + names};
}

struct Route {
  std::string method;
  std::vector<std::string> parts;  // path segments
  std::string query;
};

Route split(const Request& req) {
  Route r{req.method, {}, {}};
  std::string path = req.target;
  if (auto q = path.find('?'); q != std::string::npos) {
    r.query = path.substr(q + 1);
    path.resize(q);
  }
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    r.parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return r;
}

std::optional<std::string> query_param(const std::string& query, const std::string& key) {
  std::size_t i = 0;
  while (i <= query.size()) {
    auto j = query.find('&', i);
    if (j == std::string::npos) j = query.size();
    auto kv = query.substr(i, j - i);
    if (auto eq = kv.find('='); eq != std::string::npos && kv.substr(0, eq) == key) {
      return kv.substr(eq + 1);
    }
    i = j + 1;
  }
  return std::nullopt;
}

// The positive integer query parameter `key` (at most `max`), or `fallback` when absent.
std::size_t count_param(const std::string& query, const char* key, std::size_t fallback,
                        std::size_t max) {
  auto text = query_param(query, key);
  if (!text) return fallback;
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc{} || ptr != text->data() + text->size() || n == 0 || n > max) {
    throw BadRequest{std::string(key) + " must be 1.." + std::to_string(max)};
  }
  return n;
}

bool is_reader(Role r) {
  return r == Role::kAdmin || r == Role::kAuditor;
}

// Resolves an account for a principal: 404 when unknown, 403 when not theirs to read or trade.
std::optional<Reply> account_access(const core::Engine& e, const Principal& p,
                                    const std::string& name, bool trade, core::AccountId& out) {
  auto a = e.find_account(name);
  if (!a) return error_reply(404, "unknown_account", "no account '" + name + "'");
  if (trade && p.role != Role::kTrader) {
    return error_reply(403, "forbidden", "only traders submit and cancel orders");
  }
  if (!is_reader(p.role)) {
    auto u = e.find_user(p.user);
    if (!u || e.account_state(*a).user != *u) {
      return error_reply(403, "forbidden", "account '" + name + "' is not yours");
    }
  }
  out = *a;
  return std::nullopt;
}

json effects_json(const core::Engine& e, const core::EffectBuffer& fx) {
  json out = json::array();
  for (const core::Effect& x : fx) out.push_back(replay::effect_json(e, x));
  return out;
}

// {"seq", "status": "OK"|"REJECTED", "reason"?, "effects"} of an admin event's effects.
Reply admin_outcome(const core::Engine& e, const core::EffectBuffer& fx) {
  json j{{"seq", core::raw(e.last_seq())}, {"status", "OK"}, {"effects", effects_json(e, fx)}};
  for (const core::Effect& x : fx) {
    if (x.kind == core::EffectKind::kAdminRejected) {
      j["status"] = "REJECTED";
      j["reason"] = core::to_string(static_cast<core::RejectReason>(x.reason));
    }
  }
  return Reply{j["status"] == "OK" ? 200u : 409u, text_of(j)};
}

json instrument_json(const core::Engine& e, core::InstrumentId id) {
  const core::InstrumentState& s = e.instrument(id);
  const auto& p = s.params;
  json j{{"instrument_id", s.code},
         {"exchange", s.exchange},
         {"status", core::to_string(s.status)},
         {"price_tick_e8", p.price_tick_e8},
         {"multiplier_e8", p.multiplier_e8},
         {"margin_long_ppb", p.margin_long_ppb},
         {"margin_short_ppb", p.margin_short_ppb},
         {"max_order_volume", p.max_order_volume.value},
         {"position_limit", p.position_limit.value},
         {"pre_settlement", replay::price_text(e, id, s.pre_settlement)},
         {"volume_today", s.volume_today.value}};
  if (s.last_price) j["last_price"] = replay::price_text(e, id, *s.last_price);
  return j;
}

// Decimal price text to ticks of the instrument; nullopt when not a multiple of the tick.
std::optional<core::PriceTicks> to_ticks(const core::Engine& e, core::InstrumentId id,
                                         std::int64_t price_e8) {
  const std::int64_t tick = e.instrument(id).params.price_tick_e8;
  if (tick <= 0 || price_e8 % tick != 0) return std::nullopt;
  return core::PriceTicks(price_e8 / tick);
}

constexpr std::int64_t kPriceE8Max = std::numeric_limits<std::int64_t>::max() / 2;
constexpr std::int64_t kMoneyMax = 1'000'000'000'000'000;  // 1e11 currency units, in minor units

}  // namespace

json merge_diff(const json& from, const json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  json patch = json::object();
  for (const auto& [k, v] : from.items()) {
    if (!to.contains(k)) patch[k] = nullptr;
  }
  for (const auto& [k, v] : to.items()) {
    auto it = from.find(k);
    if (it == from.end()) {
      patch[k] = v;
    } else if (*it != v) {
      patch[k] = merge_diff(*it, v);
    }
  }
  return patch;
}

namespace {

json quote_json(const core::Engine& e, core::InstrumentId id) {
  const core::BookView b = e.book(id, 5);
  const core::InstrumentState& s = e.instrument(id);
  json q{{"instrument_id", s.code}, {"volume", s.volume_today.value}};
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string n = std::to_string(i + 1);
    if (i < b.bids.size()) {
      q["bid_price" + n] = replay::price_text(e, id, b.bids[i].price);
      q["bid_volume" + n] = b.bids[i].volume.value;
    }
    if (i < b.asks.size()) {
      q["ask_price" + n] = replay::price_text(e, id, b.asks[i].price);
      q["ask_volume" + n] = b.asks[i].volume.value;
    }
  }
  if (s.last_price) q["last_price"] = replay::price_text(e, id, *s.last_price);
  return q;
}

}  // namespace

namespace {

// {"datetime": start ns, "open", "high", "low", "close" (price text), "volume", "trades"}.
json kline_json(const core::Engine& e, core::InstrumentId id, const Kline& k) {
  return json{{"datetime", k.start_ns},
              {"open", replay::price_text(e, id, core::PriceTicks(k.open))},
              {"high", replay::price_text(e, id, core::PriceTicks(k.high))},
              {"low", replay::price_text(e, id, core::PriceTicks(k.low))},
              {"close", replay::price_text(e, id, core::PriceTicks(k.close))},
              {"volume", k.volume},
              {"trades", k.trades}};
}

}  // namespace

void Service::diff_view(const Principal& p, std::vector<std::string> quotes,
                        std::vector<Chart> charts, Done done) {
  auto job = [p, quotes = std::move(quotes), charts = std::move(charts),
              klines = klines_](Sequencer::Ctx& c) {
    const core::Engine& e = c.engine();
    json mine{{"accounts", json::object()},
              {"positions", json::object()},
              {"orders", json::object()},
              {"trades", json::object()}};
    if (auto u = e.find_user(p.user)) {
      for (std::uint32_t i = 0; i < e.account_count(); ++i) {
        const auto a = static_cast<core::AccountId>(i);
        const auto& st = e.account_state(a);
        if (st.user != *u) continue;
        mine["accounts"][st.name] = replay::account_json(e, a);
        mine["positions"][st.name] = replay::positions_json(e, a);
        mine["orders"][st.name] = replay::orders_json(e, a);
        mine["trades"][st.name] = replay::trades_json(e, a);
      }
    }
    json q = json::object();
    for (const std::string& code : quotes) {
      if (auto id = e.find_instrument(code)) q[code] = quote_json(e, *id);
    }
    // DIFF's layout: klines.<code>.<duration ns>.data.<id>, the id counting bars since the epoch.
    json k = json::object();
    for (const Chart& chart : charts) {
      auto id = e.find_instrument(chart.code);
      if (!id || klines == nullptr) continue;
      const std::int64_t len = period_ns(chart.period);
      json data = json::object();
      std::int64_t last_id = -1;
      for (const Kline& bar : klines->query(core::raw(*id), chart.period, chart.width)) {
        last_id = bar.start_ns / len;
        data[std::to_string(last_id)] = kline_json(e, *id, bar);
      }
      k[chart.code][std::to_string(len)] = json{{"last_id", last_id}, {"data", data}};
    }
    json view{{"trade", {{p.user, mine}}}, {"quotes", q}};
    if (!k.empty()) view["klines"] = k;
    return ok(view);
  };
  Done d = done;
  if (!seq_.post(std::move(job), std::move(d))) {
    done(error_reply(503, "overloaded", "the sequencer queue is full"));
  }
}

Service::Service(Sequencer& sequencer, Auth& auth, Metrics& metrics)
    : seq_(sequencer),
      auth_(auth),
      metrics_(metrics),
      offload_([](std::function<void()> f) { f(); }) {}

void Service::handle(Request req, Done done) {
  const Route r = split(req);
  const auto& parts = r.parts;
  auto post_job = [this, &done](Sequencer::Job job) {
    Done d = done;
    if (!seq_.post(std::move(job), std::move(d))) {
      done(error_reply(503, "overloaded", "the sequencer queue is full; retry later"));
    }
  };
  try {
    if (r.method == "GET" && parts == std::vector<std::string>{"healthz"}) {
      return done(ok({{"status", "ok"}}));
    }
    if (r.method == "GET" && parts == std::vector<std::string>{"metrics"}) {
      return done(Reply{200, metrics_.text(), "text/plain; version=0.0.4; charset=utf-8"});
    }
    json body;
    if (r.method == "POST") {
      body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return done(error_reply(400, "bad_json", "the body must be one JSON object"));
      }
    }
    if (r.method == "POST" && parts == std::vector<std::string>{"api", "auth", "login"}) {
      std::string user = text_field(body, "username");
      std::string password = text_field(body, "password", 1024);
      offload_([this, user, password, done] {
        auto token = auth_.login(user, password);
        done(token ? ok({{"token", *token}, {"username", user}})
                   : error_reply(401, "bad_credentials", "unknown user or wrong password"));
      });
      return;
    }
    // Everything else needs a valid bearer token.
    const std::string prefix = "Bearer ";
    std::optional<Principal> who;
    if (req.authorization.compare(0, prefix.size(), prefix) == 0) {
      who = auth_.verify(req.authorization.substr(prefix.size()));
    }
    if (!who) {
      return done(error_reply(401, "unauthorized", "a valid 'Authorization: Bearer' is required"));
    }
    const Principal p = *who;
    const auto received_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(req.received.time_since_epoch());
    if (rate_ != nullptr && !rate_->try_take(p.user, received_ns.count())) {
      metrics_.rate_limited();
      return done(error_reply(429, "rate_limited",
                              "user '" + p.user + "' is over " +
                                  std::to_string(rate_->limit().per_s) +
                                  " requests a second; retry later"));
    }
    if (parts.size() < 2 || parts[0] != "api") {
      return done(error_reply(404, "not_found", "no route " + req.target));
    }
    const std::string& group = parts[1];

    // Reads.
    if (r.method == "GET") {
      if (group == "admin" && parts.size() == 3 && parts[2] == "status") {
        return post_job([](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          auto st = e.stats();
          return ok({{"last_seq", core::raw(e.last_seq())},
                     {"state_hash", replay::hex64(e.state_hash())},
                     {"effects_hash", replay::hex64(e.effects_hash())},
                     {"trading_day", e.trading_day()},
                     {"orders_resting", st.orders_resting},
                     {"accounts", st.accounts},
                     {"instruments", st.instruments}});
        });
      }
      if (group == "instruments" && parts.size() == 2) {
        return post_job([](Sequencer::Ctx& c) {
          json out = json::array();
          for (std::uint32_t i = 0; i < c.engine().instrument_count(); ++i) {
            out.push_back(instrument_json(c.engine(), core::InstrumentId(i)));
          }
          return ok(out);
        });
      }
      if (group == "orderbook" && parts.size() == 3) {
        const std::size_t depth = count_param(r.query, "depth", 10, 1000);
        return post_job([code = parts[2], depth](Sequencer::Ctx& c) {
          auto id = c.engine().find_instrument(code);
          if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
          return ok(replay::book_json(c.engine(), *id, depth));
        });
      }
      if (group == "market" && parts.size() == 4 && parts[2] == "trades") {
        // GET /api/market/trades/{code}?count=N: today's public trades, newest last (no accounts).
        const std::size_t count = count_param(r.query, "count", 100, 1000);
        return post_job([code = parts[3], count](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          auto id = e.find_instrument(code);
          if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
          std::vector<const core::TradeState*> mine;
          const auto& all = e.trades_today();
          for (auto it = all.rbegin(); it != all.rend() && mine.size() < count; ++it) {
            if (it->instrument == *id) mine.push_back(&*it);
          }
          json out = json::array();
          for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
            const core::TradeState& t = **it;
            out.push_back({{"trade_id", core::raw(t.id)},
                           {"price", replay::price_text(e, t.instrument, t.price)},
                           {"volume", t.volume.value},
                           {"aggressor", core::to_string(t.taker_direction)},
                           {"datetime", t.time_ns}});
          }
          return ok({{"instrument_id", code}, {"trades", out}});
        });
      }
      if (group == "klines" && parts.size() == 3) {
        // GET /api/klines/{code}?period=1m|5m|1d&count=N (default 200, at most 2000).
        const auto period = parse_period(query_param(r.query, "period").value_or("1m"));
        if (!period) return done(error_reply(400, "bad_request", "period must be 1m, 5m or 1d"));
        const std::size_t count = count_param(r.query, "count", 200, Klines::kKeep);
        return post_job([code = parts[2], period, count, klines = klines_](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          auto id = e.find_instrument(code);
          if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
          json bars = json::array();
          if (klines != nullptr) {
            for (const Kline& k : klines->query(core::raw(*id), *period, count)) {
              bars.push_back(kline_json(e, *id, k));
            }
          }
          return ok({{"instrument_id", code},
                     {"period", to_string(*period)},
                     {"complete", klines != nullptr && klines->complete()},
                     {"klines", bars}});
        });
      }
      if (group == "accounts" && parts.size() == 2) {
        return post_job([p](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          auto u = e.find_user(p.user);
          json out = json::array();
          for (std::uint32_t i = 0; i < e.account_count(); ++i) {
            const auto& a = e.account_state(core::AccountId(i));
            if (is_reader(p.role) || (u && a.user == *u)) out.push_back(a.name);
          }
          return ok(out);
        });
      }
      if ((group == "account" || group == "positions" || group == "orders" || group == "trades") &&
          parts.size() == 3) {
        return post_job([p, group, name = parts[2]](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          core::AccountId a{};
          if (auto denied = account_access(e, p, name, false, a)) return *denied;
          if (group == "account") return ok(replay::account_json(e, a));
          if (group == "positions") return ok(replay::positions_json(e, a));
          if (group == "orders") return ok(replay::orders_json(e, a));
          return ok(replay::trades_json(e, a));
        });
      }
      return done(error_reply(404, "not_found", "no route GET " + req.target));
    }
    if (r.method != "POST") {
      return done(error_reply(405, "method_not_allowed", "use GET or POST"));
    }

    // Order entry.
    if (group == "order" && parts.size() == 3 && parts[2] == "submit") {
      if (p.role != Role::kTrader) {
        return done(error_reply(403, "forbidden", "only traders submit orders"));
      }
      std::string account = text_field(body, "account");
      std::string instrument = text_field(body, "instrument");
      core::NewOrder o;
      o.direction = enum_field(body, "direction", {core::Direction::kBuy, core::Direction::kSell},
                               core::Direction::kBuy, true);
      o.offset = enum_field(body, "offset",
                            {core::Offset::kOpen, core::Offset::kClose, core::Offset::kCloseToday,
                             core::Offset::kCloseYesterday},
                            core::Offset::kOpen, false);
      o.price_type =
          enum_field(body, "price_type",
                     {core::PriceType::kLimit, core::PriceType::kMarket, core::PriceType::kBest},
                     core::PriceType::kLimit, false);
      o.time_condition = enum_field(
          body, "time_condition",
          {core::TimeCondition::kGfd, core::TimeCondition::kGtc, core::TimeCondition::kIoc},
          core::TimeCondition::kGfd, false);
      o.volume_condition = enum_field(body, "volume_condition",
                                      {core::VolumeCondition::kAny, core::VolumeCondition::kAll},
                                      core::VolumeCondition::kAny, false);
      o.volume = core::Lots(int_field(body, "volume", 1, 1'000'000'000));
      if (body.contains("client_order_id")) {
        o.client_order_id = core::ClientOrderId(
            static_cast<std::uint64_t>(int_field(body, "client_order_id", 1, (1LL << 62))));
      }
      if (body.contains("post_only")) {
        if (!body["post_only"].is_boolean()) throw BadRequest{"'post_only' must be a boolean"};
        o.post_only = body["post_only"].get<bool>();
      }
      std::int64_t price_e8 = 0;
      if (o.price_type == core::PriceType::kLimit) {
        price_e8 = decimal_field(body, "price", 8, 1, kPriceE8Max);
      }
      // Order-to-ack latency: from the request read to the durable reply leaving the sequencer.
      done = [this, received = req.received, inner = std::move(done)](Reply rep) {
        metrics_.order_ack_seconds(std::chrono::steady_clock::now() - received);
        inner(std::move(rep));
      };
      return post_job([p, account, instrument, o, price_e8](Sequencer::Ctx& c) {
        core::NewOrder order = o;
        if (auto denied = account_access(c.engine(), p, account, true, order.account)) {
          return *denied;
        }
        auto ins = c.engine().find_instrument(instrument);
        if (!ins) {
          return error_reply(404, "unknown_instrument", "no instrument '" + instrument + "'");
        }
        order.instrument = *ins;
        if (order.price_type == core::PriceType::kLimit) {
          auto ticks = to_ticks(c.engine(), *ins, price_e8);
          if (!ticks) {
            return error_reply(400, "bad_price", "price is not a multiple of the price tick");
          }
          order.price = *ticks;
        }
        const auto& fx = c.submit(order);
        const auto& e = c.engine();
        json j{{"seq", core::raw(e.last_seq())}, {"status", "ACCEPTED"}};
        for (const core::Effect& x : fx) {
          if (x.kind == core::EffectKind::kOrderAccepted && j.count("order_id") == 0) {
            j["order_id"] = core::raw(x.order);
            j["client_order_id"] = core::raw(x.client_order_id);
          }
          if (x.kind == core::EffectKind::kOrderRejected) {
            j["status"] = "REJECTED";
            j["reason"] = core::to_string(static_cast<core::RejectReason>(x.reason));
            j["client_order_id"] = core::raw(x.client_order_id);
          }
        }
        j["effects"] = effects_json(e, fx);
        return ok(j);
      });
    }
    if (group == "order" && parts.size() == 3 && parts[2] == "amend") {
      if (p.role != Role::kTrader) {
        return done(error_reply(403, "forbidden", "only traders amend orders"));
      }
      std::string account = text_field(body, "account");
      const core::OrderRef ref = order_ref_field(body);
      const std::int64_t price_e8 = decimal_field(body, "price", 8, 1, kPriceE8Max);
      const core::Lots volume_left(int_field(body, "volume_left", 1, 1'000'000'000));
      return post_job([p, account, ref, price_e8, volume_left](Sequencer::Ctx& c) {
        const core::Engine& e = c.engine();
        core::AmendOrder amend{{}, ref, {}, volume_left};
        if (auto denied = account_access(e, p, account, true, amend.account)) return *denied;
        // The price is in the order's instrument's ticks; an unknown order is journaled with
        // price 0 and rejected by the engine like any other unknown reference.
        std::optional<core::OrderState> o =
            ref.order_id ? e.order(*ref.order_id) : std::optional<core::OrderState>();
        if (!ref.order_id) {
          if (auto id = e.find_order(amend.account, ref.client_order_id)) o = e.order(*id);
        }
        if (o) {
          auto ticks = to_ticks(e, o->instrument, price_e8);
          if (!ticks) {
            return error_reply(400, "bad_price", "price is not a multiple of the price tick");
          }
          amend.new_price = *ticks;
        }
        const auto& fx = c.submit(amend);
        json j{{"seq", core::raw(c.engine().last_seq())}, {"status", "AMENDED"}};
        for (const core::Effect& x : fx) {
          if (x.kind == core::EffectKind::kOrderRejected) {
            j["status"] = "REJECTED";
            j["reason"] = core::to_string(static_cast<core::RejectReason>(x.reason));
          }
        }
        j["effects"] = effects_json(c.engine(), fx);
        return ok(j);
      });
    }
    if (group == "order" && parts.size() == 3 && parts[2] == "cancel") {
      if (p.role != Role::kTrader) {
        return done(error_reply(403, "forbidden", "only traders cancel orders"));
      }
      std::string account = text_field(body, "account");
      const core::OrderRef ref = order_ref_field(body);
      return post_job([p, account, ref](Sequencer::Ctx& c) {
        core::CancelOrder cancel{{}, ref};
        if (auto denied = account_access(c.engine(), p, account, true, cancel.account)) {
          return *denied;
        }
        const auto& fx = c.submit(cancel);
        json j{{"seq", core::raw(c.engine().last_seq())}, {"status", "CANCELLED"}};
        for (const core::Effect& x : fx) {
          if (x.kind == core::EffectKind::kOrderRejected) {
            j["status"] = "REJECTED";
            j["reason"] = core::to_string(static_cast<core::RejectReason>(x.reason));
          }
        }
        j["effects"] = effects_json(c.engine(), fx);
        return ok(j);
      });
    }

    // Administration.
    if (group != "admin" || parts.size() < 3) {
      return done(error_reply(404, "not_found", "no route POST " + req.target));
    }
    if (p.role != Role::kAdmin) {
      return done(error_reply(403, "forbidden", "admin role required"));
    }
    const std::string& what = parts[2];
    if (what == "user" && parts.size() == 3) {
      std::string name = text_field(body, "username");
      std::string password = text_field(body, "password", 1024);
      auto role = parse_role(text_field(body, "role"));
      if (!role) throw BadRequest{"'role' must be admin, trader, viewer or auditor"};
      if (password.size() < 8) throw BadRequest{"'password' must have at least 8 bytes"};
      offload_([this, name, password, role, done] {
        std::string hash = Auth::hash_password(password);
        Done d = done;
        bool queued = seq_.post(
            [this, name, hash, role](Sequencer::Ctx& c) {
              // The engine decides what exists: credentials written just before a crash that
              // lost the CreateUser event are simply replaced.
              if (c.engine().find_user(name)) {
                return error_reply(409, "duplicate_name", "user '" + name + "' exists");
              }
              const auto& fx = c.submit(core::CreateUser{name});
              Reply out = admin_outcome(c.engine(), fx);
              if (out.status == 200) auth_.put_user_hashed(name, hash, *role);
              return out;
            },
            std::move(d));
        if (!queued) done(error_reply(503, "overloaded", "the sequencer queue is full"));
      });
      return;
    }
    if (what == "account" && parts.size() == 3) {
      std::string user = text_field(body, "user");
      std::string name = text_field(body, "name");
      return post_job([user, name](Sequencer::Ctx& c) {
        auto u = c.engine().find_user(user);
        if (!u) return error_reply(404, "unknown_user", "no user '" + user + "'");
        return admin_outcome(c.engine(), c.submit(core::CreateAccount{*u, name}));
      });
    }
    if ((what == "deposit" || what == "withdraw") && parts.size() == 3) {
      std::string account = text_field(body, "account");
      core::Money amount(decimal_field(body, "amount", 4, 1, kMoneyMax));
      return post_job([what, account, amount](Sequencer::Ctx& c) {
        auto a = c.engine().find_account(account);
        if (!a) return error_reply(404, "unknown_account", "no account '" + account + "'");
        if (what == "deposit")
          return admin_outcome(c.engine(), c.submit(core::Deposit{*a, amount}));
        return admin_outcome(c.engine(), c.submit(core::Withdraw{*a, amount}));
      });
    }
    if (what == "instrument" && parts.size() == 5 && (parts[4] == "halt" || parts[4] == "resume")) {
      auto status =
          parts[4] == "halt" ? core::InstrumentStatus::kHalted : core::InstrumentStatus::kTrading;
      return post_job([code = parts[3], status](Sequencer::Ctx& c) {
        auto id = c.engine().find_instrument(code);
        if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
        return admin_outcome(c.engine(), c.submit(core::SetInstrumentStatus{*id, status}));
      });
    }
    if (what == "instrument" && parts.size() == 3) {
      core::CreateInstrument ci;
      ci.code = text_field(body, "code");
      ci.exchange = text_field(body, "exchange", 15);
      auto& pr = ci.params;
      pr.price_tick_e8 = decimal_field(body, "price_tick", 8, 1, kPriceE8Max);
      pr.multiplier_e8 = decimal_field(body, "multiplier", 8, 1, kPriceE8Max);
      pr.margin_long_ppb = pr.margin_short_ppb =
          decimal_field(body, "margin_ratio", 9, 1, core::kPpb);
      pr.fees.open_per_lot = pr.fees.close_per_lot = pr.fees.close_today_per_lot = core::Money(
          body.contains("fee_per_lot") ? decimal_field(body, "fee_per_lot", 4, 0, kMoneyMax) : 0);
      pr.fees.open_ppb = pr.fees.close_ppb = pr.fees.close_today_ppb =
          body.contains("fee_ratio") ? decimal_field(body, "fee_ratio", 9, 0, core::kPpb) : 0;
      if (body.contains("price_band")) {
        pr.price_band_ppb = decimal_field(body, "price_band", 9, 1, core::kPpb);
      }
      pr.max_order_volume = core::Lots(int_field(body, "max_order_volume", 1, 1'000'000'000));
      pr.position_limit = core::Lots(int_field(body, "position_limit", 1, 1'000'000'000));
      const std::int64_t pre_e8 = decimal_field(body, "pre_settlement", 8, 1, kPriceE8Max);
      if (pre_e8 % pr.price_tick_e8 != 0) {
        throw BadRequest{"'pre_settlement' must be a multiple of 'price_tick'"};
      }
      ci.pre_settlement = core::PriceTicks(pre_e8 / pr.price_tick_e8);
      return post_job([ci](Sequencer::Ctx& c) { return admin_outcome(c.engine(), c.submit(ci)); });
    }
    if (what == "settle" && parts.size() == 3) {
      // {"prices": {"IF2501": "3812.4", ...}}; instruments not listed settle at their last price.
      std::vector<std::pair<std::string, std::int64_t>> prices;
      if (body.contains("prices")) {
        const json& ps = body["prices"];
        if (!ps.is_object() || ps.size() > 10'000) throw BadRequest{"'prices' must be an object"};
        for (const auto& [code, v] : ps.items()) {
          json one{{"price", v}};
          prices.emplace_back(code, decimal_field(one, "price", 8, 1, kPriceE8Max));
        }
      }
      return post_job([prices](Sequencer::Ctx& c) {
        core::Settle settle;
        for (const auto& [code, e8] : prices) {
          auto id = c.engine().find_instrument(code);
          if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
          auto ticks = to_ticks(c.engine(), *id, e8);
          if (!ticks) return error_reply(400, "bad_price", "price of '" + code + "' is off tick");
          settle.prices.push_back({*id, *ticks});
        }
        return admin_outcome(c.engine(), c.submit(settle));
      });
    }
    return done(error_reply(404, "not_found", "no route POST " + req.target));
  } catch (const BadRequest& e) {
    return done(error_reply(400, "bad_request", e.message));
  } catch (const nlohmann::json::exception& e) {
    return done(error_reply(400, "bad_request", e.what()));
  }
}

}  // namespace qx::server

namespace qx::server {

namespace {

struct DemoInstrument {
  const char* code;
  const char* exchange;
  std::int64_t tick_e8, multiplier_e8, margin_ppb, fee_ppb, fee_per_lot_minor, band_ppb;
  std::int64_t max_order_volume, position_limit, pre_settlement_ticks;
};

// Contract specifications close to the exchanges' (CFFEX IF, SHFE cu and au).
constexpr DemoInstrument kDemoInstruments[] = {
    {"IF2501", "CFFEX", 20'000'000, 30'000'000'000, 120'000'000, 23'000, 0, 100'000'000, 20, 5'000,
     19'000},  // tick 0.2, x300, 12%, 0.23 per 10k, +-10%, 3800.0
    {"cu2501", "SHFE", 1'000'000'000, 500'000'000, 100'000'000, 50'000, 0, 80'000'000, 500, 10'000,
     7'500},  // tick 10, x5, 10%, 0.5 per 10k, +-8%, 75000
    {"au2506", "SHFE", 2'000'000, 100'000'000'000, 80'000'000, 0, 100'000, 70'000'000, 500, 10'000,
     31'000},  // tick 0.02, x1000, 8%, 10 CNY per lot, +-7%, 620.00
};

struct DemoUser {
  const char* name;
  const char* password;
  Role role;
  const char* account;  // nullptr: none
};

constexpr DemoUser kDemoUsers[] = {
    {"admin", "admin-demo-pw", Role::kAdmin, nullptr},
    {"alice", "alice-demo-pw", Role::kTrader, "alice-01"},
    {"bob", "bob-demo-pw", Role::kTrader, "bob-01"},
    {"viewer", "viewer-demo-pw", Role::kViewer, nullptr},
    {"auditor", "auditor-demo-pw", Role::kAuditor, nullptr},
};

constexpr std::int64_t kDemoFundsMinor = 10'000'000 * core::kMoneyScale;  // 10,000,000.0000 CNY

void expect_ok(const core::EffectBuffer& fx, const char* what) {
  for (const core::Effect& e : fx) {
    if (e.kind == core::EffectKind::kAdminRejected) {
      throw std::runtime_error(std::string("demo setup: ") + what + " rejected: " +
                               core::to_string(static_cast<core::RejectReason>(e.reason)));
    }
  }
}

}  // namespace

std::string setup_demo(Sequencer& sequencer, Auth& auth) {
  std::vector<std::string> hashes;
  for (const DemoUser& u : kDemoUsers) hashes.push_back(Auth::hash_password(u.password));
  sequencer.execute([&](Sequencer::Ctx& c) {
    for (const DemoInstrument& d : kDemoInstruments) {
      core::CreateInstrument ci;
      ci.code = d.code;
      ci.exchange = d.exchange;
      ci.params.price_tick_e8 = d.tick_e8;
      ci.params.multiplier_e8 = d.multiplier_e8;
      ci.params.margin_long_ppb = ci.params.margin_short_ppb = d.margin_ppb;
      ci.params.fees = {core::Money(d.fee_per_lot_minor), d.fee_ppb,
                        core::Money(d.fee_per_lot_minor), d.fee_ppb,
                        core::Money(d.fee_per_lot_minor), d.fee_ppb};
      ci.params.price_band_ppb = d.band_ppb;
      ci.params.max_order_volume = core::Lots(d.max_order_volume);
      ci.params.position_limit = core::Lots(d.position_limit);
      ci.pre_settlement = core::PriceTicks(d.pre_settlement_ticks);
      expect_ok(c.submit(ci), d.code);
    }
    for (std::size_t i = 0; i < std::size(kDemoUsers); ++i) {
      const DemoUser& u = kDemoUsers[i];
      expect_ok(c.submit(core::CreateUser{u.name}), u.name);
      auth.add_user_hashed(u.name, hashes[i], u.role);
      if (u.account == nullptr) continue;
      const auto user = c.engine().find_user(u.name);
      expect_ok(c.submit(core::CreateAccount{*user, u.account}), u.account);
      const auto account = c.engine().find_account(u.account);
      expect_ok(c.submit(core::Deposit{*account, core::Money(kDemoFundsMinor)}), u.account);
    }
    return Reply{};
  });
  std::string out = "demo users (username / password / role / account):\n";
  for (const DemoUser& u : kDemoUsers) {
    out += std::string("  ") + u.name + " / " + u.password + " / " + to_string(u.role) + " / " +
           (u.account != nullptr ? u.account : "-") + "\n";
  }
  return out;
}

void bootstrap_admin(Sequencer& sequencer, Auth& auth, const std::string& password) {
  const std::string hash = Auth::hash_password(password);
  sequencer.execute([&](Sequencer::Ctx& c) {
    if (!c.engine().find_user("admin")) expect_ok(c.submit(core::CreateUser{"admin"}), "admin");
    auth.add_user_hashed("admin", hash, Role::kAdmin);
    return Reply{};
  });
}

}  // namespace qx::server
