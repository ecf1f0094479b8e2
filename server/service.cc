#include "server/service.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "replay/replay.h"
#include "replay/views.h"
#include "server/log.h"

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

// A name field (user, account, instrument, exchange): the character set of valid_name.
std::string name_field(const json& j, const char* key, std::size_t max_bytes = kNameBytesMax) {
  std::string s = text_field(j, key, max_bytes);
  if (!valid_name(s)) {
    throw BadRequest{std::string("'") + key +
                     "' must be 1 to 31 of A-Z a-z 0-9 _ . - (starting with a letter or digit)"};
  }
  return s;
}

// A new password: 8 to 1024 bytes.
std::string new_password(const json& j, const char* key) {
  std::string s = text_field(j, key, 1024);
  if (s.size() < 8) throw BadRequest{std::string("'") + key + "' must have at least 8 bytes"};
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

// "HH:MM" or "HH:MM:SS" (00:00 to 23:59:59) as seconds after midnight.
std::optional<std::uint32_t> parse_time_of_day(const std::string& t) {
  auto two = [&](std::size_t at) -> int {
    if (at + 2 > t.size() || !std::isdigit(static_cast<unsigned char>(t[at])) ||
        !std::isdigit(static_cast<unsigned char>(t[at + 1]))) {
      return -1;
    }
    return (t[at] - '0') * 10 + (t[at + 1] - '0');
  };
  if ((t.size() != 5 && t.size() != 8) || t[2] != ':' || (t.size() == 8 && t[5] != ':')) {
    return std::nullopt;
  }
  const int h = two(0);
  const int m = two(3);
  const int sec = t.size() == 8 ? two(6) : 0;
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59) return std::nullopt;
  return static_cast<std::uint32_t>(h * 3600 + m * 60 + sec);
}

// "+HH:MM" / "-HH:MM" (at most 18 hours) as seconds east of UTC.
std::optional<std::int32_t> parse_utc_offset(const std::string& t) {
  if (t.size() != 6 || (t[0] != '+' && t[0] != '-')) return std::nullopt;
  auto hm = parse_time_of_day(t.substr(1));
  if (!hm || *hm > static_cast<std::uint32_t>(core::kUtcOffsetMax)) return std::nullopt;
  const auto s = static_cast<std::int32_t>(*hm);
  return t[0] == '-' ? -s : s;
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

// The plain decimal text of a JSON number. nlohmann prints the shortest text that reads back as
// the same double, which for small or large ones has an exponent ("1e-05"); parse_decimal takes
// digits only, so the exponent is expanded here ("0.00001"). Texts past parse_decimal's length
// limit stay refused.
std::string number_text(const json& v) {
  std::string s = v.dump();
  const auto e = s.find_first_of("eE");
  if (e == std::string::npos) return s;
  const std::string exp_text = s.substr(e + 1);
  if (exp_text.empty() || exp_text.size() > 4) return s;  // a double's exponent has <= 3 digits
  const int exp = std::stoi(exp_text);
  std::string mantissa = s.substr(0, e);
  const bool negative = !mantissa.empty() && mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits = mantissa;
  int point = static_cast<int>(mantissa.size());
  if (const auto dot = mantissa.find('.'); dot != std::string::npos) {
    digits = mantissa.substr(0, dot) + mantissa.substr(dot + 1);
    point = static_cast<int>(dot);
  }
  point += exp;
  const int size = static_cast<int>(digits.size());
  if (point <= 0) {
    digits = "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
  } else if (point >= size) {
    digits += std::string(static_cast<std::size_t>(point - size), '0');
  } else {
    digits.insert(static_cast<std::size_t>(point), ".");
  }
  return (negative ? "-" : "") + digits;
}

// A decimal given as a string or a JSON number, scaled by 10^places, within [lo, hi].
std::int64_t decimal_field(const json& j, const char* key, int places, std::int64_t lo,
                           std::int64_t hi) {
  const json& v = field(j, key);
  std::optional<std::int64_t> d;
  if (v.is_string()) {
    d = parse_decimal(v.get<std::string>(), places);
  } else if (v.is_number()) {
    d = parse_decimal(number_text(v), places);
  }
  if (!d || *d < lo || *d > hi) {
    throw BadRequest{std::string("'") + key + "' must be a decimal with at most " +
                     std::to_string(places) + " places, within range"};
  }
  return *d;
}

template <class E>
E enum_field(const json& j, const char* key, std::initializer_list<E> values, E fallback,
             bool required);

constexpr std::initializer_list<core::StpMode> kStpModes = {
    core::StpMode::kCancelNewest, core::StpMode::kCancelOldest, core::StpMode::kCancelBoth};
constexpr std::initializer_list<core::StpScope> kStpScopes = {core::StpScope::kAccount,
                                                              core::StpScope::kUser};

// "stp_mode" / "stp_scope" of a body, each defaulting to `base`'s when absent.
core::SelfTradePrevention stp_fields(const json& j, core::SelfTradePrevention base) {
  return core::SelfTradePrevention{enum_field(j, "stp_mode", kStpModes, base.mode, false),
                                   enum_field(j, "stp_scope", kStpScopes, base.scope, false)};
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

struct Path {
  std::string method;
  std::vector<std::string> parts;  // path segments
  std::string query;
};

Path split(const Request& req) {
  Path r{req.method, {}, {}};
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
         {"currency", e.currency()},
         {"status", core::to_string(s.status)},
         {"price_tick_e8", p.price_tick_e8},
         {"multiplier_e8", p.multiplier_e8},
         {"margin_long_ppb", p.margin_long_ppb},
         {"margin_short_ppb", p.margin_short_ppb},
         {"max_order_volume", p.max_order_volume.value},
         {"position_limit", p.position_limit.value},
         {"last_trading_day", p.last_trading_day},  // 0: never expires
         {"pre_settlement", replay::price_text(e, id, s.pre_settlement)},
         {"price_max", replay::price_text(e, id, s.price_max)},  // the engine's price ceiling
         {"volume_today", s.volume_today.value},
         {"phase", core::to_string(s.phase)},  // the trading phase now (CONTINUOUS by default)
         {"session", replay::session_json(s.session)}};
  if (s.last_price) j["last_price"] = replay::price_text(e, id, *s.last_price);
  return j;
}

constexpr std::int64_t kPriceE8Max = std::numeric_limits<std::int64_t>::max() / 2;

// A money amount as the client wrote it (a decimal string or a JSON number). Its scale is the
// exchange's currency's (SetCurrency: 4 places for CNY by default, 8 for a USDT exchange), which
// only the sequencer thread may read, so the text is checked for shape here and scaled there.
struct MoneyInput {
  const char* key = "";
  std::string text;
};

MoneyInput money_input(const json& j, const char* key) {
  const json& v = field(j, key);
  if (v.is_string() && v.get_ref<const std::string&>().size() <= 64) {
    return {key, v.get<std::string>()};
  }
  if (v.is_number()) return {key, number_text(v)};
  throw BadRequest{std::string("'") + key + "' must be a decimal amount"};
}

// The amount in minor units of the engine's currency, within [lo, core::kMoneyMax].
std::optional<core::Money> to_money(const MoneyInput& m, const core::Engine& e, std::int64_t lo) {
  auto d = parse_decimal(m.text, static_cast<int>(e.money_decimals()));
  if (!d || *d < lo || *d > core::kMoneyMax) return std::nullopt;
  return core::Money(*d);
}

Reply bad_money(const MoneyInput& m, const core::Engine& e) {
  return error_reply(400, "bad_request",
                     std::string("'") + m.key + "' must be a decimal with at most " +
                         std::to_string(e.money_decimals()) + " places (" + e.currency() +
                         "), within range");
}

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

Service::Service(Sequencer& sequencer, Auth& auth, Metrics& metrics, LoginGate& login)
    : seq_(sequencer), auth_(auth), metrics_(metrics), login_(login), gateway_(sequencer) {}

std::size_t json_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string bearer_token(const std::string& authorization) {
  const std::string prefix = "Bearer ";
  if (authorization.compare(0, prefix.size(), prefix) != 0) return {};
  return authorization.substr(prefix.size());
}

// One request on its way through a route.
struct Service::Call {
  Request& req;
  Service::Done& done;
  Principal who;                    // the caller (empty on public routes)
  std::vector<std::string> params;  // the pattern's {} segments, in order
  std::string query;
  json body = json::object();

  void reply(Reply r) const { done(std::move(r)); }
  void ok(const json& j) const { done(Reply{200, text_of(j)}); }
  void error(unsigned status, const std::string& code, const std::string& message) const {
    done(error_reply(status, code, message));
  }

  // Posts a sequencer job whose Reply is the answer; 503 when the queue is full.
  void job(Sequencer& seq, Sequencer::Job j) const {
    Service::Done d = done;
    if (!seq.post(std::move(j), std::move(d))) {
      error(503, "overloaded", "the sequencer queue is full; retry later");
    }
  }
};

namespace {

using Call = Service::Call;

// Role sets of a route.
constexpr unsigned kPublic = 0;
constexpr unsigned bit(Role r) {
  return 1u << static_cast<unsigned>(r);
}
constexpr unsigned kAdminOnly = bit(Role::kAdmin);
constexpr unsigned kTraderOnly = bit(Role::kTrader);
constexpr unsigned kReaders = bit(Role::kAdmin) | bit(Role::kAuditor);
constexpr unsigned kAnyRole =
    bit(Role::kAdmin) | bit(Role::kTrader) | bit(Role::kViewer) | bit(Role::kAuditor);

const char* role_words(unsigned roles) {
  if (roles == kAdminOnly) return "the admin role";
  if (roles == kTraderOnly) return "the trader role";
  if (roles == kReaders) return "the admin or auditor role";
  return "a role";
}

}  // namespace

// Calls done with what `f` returns, or with a 500 when it throws (slow work on a pool thread,
// where nothing may escape).
template <class F>
void answer_or_500(const Service::Done& done, F&& f) {
  Reply r;
  try {
    r = f();
  } catch (const std::exception& e) {
    log_event(LogLevel::kError, "request_failed", {{"error", e.what()}});
    r = error_reply(500, "internal", "the request failed");
  }
  done(std::move(r));
}

// A gateway refusal as a REST error reply.
Reply gate_reply(const GateError& e) {
  return error_reply(gate_http_status(e.code), gate_code_name(e.code), e.message);
}

// The handlers, one per route; friends of Service.
struct Routes {
  using Handler = void (*)(Service&, Call&);
  struct Route {
    const char* method;
    const char* pattern;  // path segments; "{}" matches any one segment
    unsigned roles;       // kPublic: no token needed
    Handler handler;
  };

  static void healthz(Service&, Call& c) { c.ok({{"status", "ok"}}); }

  static void metrics(Service& s, Call& c) {
    c.reply(Reply{200, s.metrics_.text(), "text/plain; version=0.0.4; charset=utf-8"});
  }

  static void cluster_status(Service& s, Call& c) {
    if (!s.cluster_status_) {
      return c.error(404, "not_clustered", "this server runs without --cluster");
    }
    c.reply(Reply{200, s.cluster_status_()});
  }

  static void login(Service& s, Call& c) {
    std::string user = text_field(c.body, "username", 64);
    std::string password = text_field(c.body, "password", 1024);
    s.login_.login(user, std::move(password), c.req.peer_ip, [done = c.done, user](LoginOutcome o) {
      if (o.error == LoginError::kNone) {
        return done(ok({{"token", o.token}, {"username", user}}));
      }
      json j{{"error", error_name(o.error)}, {"message", o.message}};
      if (o.retry_after_s > 0) j["retry_after_s"] = o.retry_after_s;
      done(Reply{http_status(o.error), text_of(j)});
    });
  }

  static void logout(Service& s, Call& c) {
    s.auth_.logout(c.who);
    c.ok({{"status", "ok"}, {"message", "the token is revoked"}});
  }

  // POST /api/auth/password {"old_password", "new_password"}: every token of the user dies.
  static void change_password(Service& s, Call& c) {
    std::string old_pw = text_field(c.body, "old_password", 1024);
    std::string new_pw = new_password(c.body, "new_password");
    const bool queued =
        s.login_.run_slow([&auth = s.auth_, user = c.who.user, old_pw, new_pw, done = c.done] {
          answer_or_500(done, [&] {
            if (!auth.check_password(user, old_pw)) {
              return error_reply(403, "bad_credentials", "the old password is wrong");
            }
            auth.set_password_hashed(user, Auth::hash_password(new_pw));
            return ok({{"status", "ok"}, {"message", "password changed; every token is revoked"}});
          });
        });
    if (!queued) c.error(503, "busy", "too many password checks in progress; retry later");
  }

  static void status(Service& s, Call& c) {
    c.job(s.seq_, [](Sequencer::Ctx& x) {
      const auto& e = x.engine();
      auto st = e.stats();
      return ok({{"last_seq", core::raw(e.last_seq())},
                 {"state_hash", replay::hex64(e.state_hash())},
                 {"effects_hash", replay::hex64(e.effects_hash())},
                 {"trading_day", e.trading_day()},
                 {"currency", e.currency()},
                 {"money_decimals", e.money_decimals()},
                 {"orders_resting", st.orders_resting},
                 {"stops_pending", e.all_stops().size()},
                 {"accounts", st.accounts},
                 {"instruments", st.instruments},
                 {"limits", replay::limits_json(e.limits())}});
    });
  }

  static void instruments(Service& s, Call& c) {
    c.job(s.seq_, [](Sequencer::Ctx& x) {
      json out = json::array();
      for (std::uint32_t i = 0; i < x.engine().instrument_count(); ++i) {
        out.push_back(instrument_json(x.engine(), core::InstrumentId(i)));
      }
      return ok(out);
    });
  }

  static void orderbook(Service& s, Call& c) {
    const std::size_t depth = count_param(c.query, "depth", 10, 1000);
    c.job(s.seq_, [code = c.params[0], depth](Sequencer::Ctx& x) {
      auto id = x.engine().find_instrument(code);
      if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
      return ok(replay::book_json(x.engine(), *id, depth));
    });
  }

  // GET /api/market/trades/{code}?count=N: today's public trades, newest last (no accounts).
  static void market_trades(Service& s, Call& c) {
    const std::size_t count = count_param(c.query, "count", 100, 1000);
    c.job(s.seq_, [code = c.params[0], count](Sequencer::Ctx& x) {
      const auto& e = x.engine();
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

  // GET /api/klines/{code}?period=1m|5m|1d&count=N (default 200, at most 2000).
  static void klines(Service& s, Call& c) {
    const auto period = parse_period(query_param(c.query, "period").value_or("1m"));
    if (!period) return c.error(400, "bad_request", "period must be 1m, 5m or 1d");
    const std::size_t count = count_param(c.query, "count", 200, Klines::kKeep);
    c.job(s.seq_, [code = c.params[0], period, count, klines = s.klines_](Sequencer::Ctx& x) {
      const auto& e = x.engine();
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

  static void accounts(Service& s, Call& c) {
    c.job(s.seq_, [p = c.who](Sequencer::Ctx& x) {
      const auto& e = x.engine();
      auto u = e.find_user(p.user);
      const bool all = p.role == Role::kAdmin || p.role == Role::kAuditor;
      json out = json::array();
      for (std::uint32_t i = 0; i < e.account_count(); ++i) {
        const auto& a = e.account_state(core::AccountId(i));
        if (all || (u && a.user == *u)) out.push_back(a.name);
      }
      return ok(out);
    });
  }

  // GET /api/{account,positions,orders,trades}/{name}.
  template <json (*View)(const core::Engine&, core::AccountId)>
  static void account_view(Service& s, Call& c) {
    c.job(s.seq_, [p = c.who, name = c.params[0]](Sequencer::Ctx& x) {
      core::AccountId a{};
      if (auto err = authorize(x.engine(), p, AccountRef{name}, Access::kRead, a)) {
        return gate_reply(*err);
      }
      return ok(View(x.engine(), a));
    });
  }

  // The gateway's answer as REST JSON.
  static Gateway::Done order_reply(Service& s, Call& c, const char* done_status, bool timed) {
    return [&metrics = s.metrics_, &seq = s.seq_, done = c.done, done_status, timed,
            received = c.req.received](OrderResult r) {
      if (timed) metrics.order_ack_seconds(std::chrono::steady_clock::now() - received);
      if (r.error && r.error->code == GateCode::kNotLeader) {
        return done(Reply{421, seq.not_leader_body()});  // names the leader's addresses
      }
      if (r.error) {
        return done(gate_reply(*r.error));
      }
      json j{{"seq", r.seq}, {"status", done_status}};
      if (r.status == OrderStatus::kRejected) {
        j["status"] = "REJECTED";
        j["reason"] = core::to_string(static_cast<core::RejectReason>(r.reject_code));
        j["client_order_id"] = r.client_order_id;
      } else if (r.status == OrderStatus::kAccepted && r.order_id != 0) {
        j["order_id"] = r.order_id;
        j["client_order_id"] = r.client_order_id;
      }
      j["effects"] = json::parse(r.rendered, nullptr, false);
      done(ok(j));
    };
  }

  static std::string render_effects(const core::Engine& e, const core::EffectBuffer& fx) {
    return text_of(effects_json(e, fx));
  }

  static void submit(Service& s, Call& c) {
    const json& b = c.body;
    OrderRequest r;
    r.who = c.who;
    r.account = text_field(b, "account");
    r.instrument = text_field(b, "instrument");
    core::NewOrder& o = r.order;
    o.direction = enum_field(b, "direction", {core::Direction::kBuy, core::Direction::kSell},
                             core::Direction::kBuy, true);
    o.offset = enum_field(b, "offset",
                          {core::Offset::kOpen, core::Offset::kClose, core::Offset::kCloseToday,
                           core::Offset::kCloseYesterday},
                          core::Offset::kOpen, false);
    o.price_type =
        enum_field(b, "price_type",
                   {core::PriceType::kLimit, core::PriceType::kMarket, core::PriceType::kBest},
                   core::PriceType::kLimit, false);
    o.time_condition = enum_field(
        b, "time_condition",
        {core::TimeCondition::kGfd, core::TimeCondition::kGtc, core::TimeCondition::kIoc},
        core::TimeCondition::kGfd, false);
    o.volume_condition = enum_field(b, "volume_condition",
                                    {core::VolumeCondition::kAny, core::VolumeCondition::kAll},
                                    core::VolumeCondition::kAny, false);
    o.volume = core::Lots(int_field(b, "volume", 1, kVolumeMax));
    if (b.contains("client_order_id")) {
      o.client_order_id = core::ClientOrderId(static_cast<std::uint64_t>(
          int_field(b, "client_order_id", 1, static_cast<std::int64_t>(kIdMax))));
    }
    if (b.contains("post_only")) {
      if (!b["post_only"].is_boolean()) throw BadRequest{"'post_only' must be a boolean"};
      o.post_only = b["post_only"].get<bool>();
    }
    // The order's own self-trade prevention; without either field, the account's.
    if (b.contains("stp_mode") || b.contains("stp_scope")) {
      o.stp = stp_fields(b, core::SelfTradePrevention{});
    }
    if (o.price_type == core::PriceType::kLimit) {
      r.price = PriceRef{false, decimal_field(b, "price", 8, 1, kPriceE8Max)};
    }
    // A stop or take-profit: held until the last price (or the mark) reaches trigger_price.
    if (b.contains("trigger_price") || b.contains("trigger") || b.contains("trigger_by")) {
      o.trigger = core::StopTrigger{
          enum_field(b, "trigger", {core::TriggerKind::kStop, core::TriggerKind::kTakeProfit},
                     core::TriggerKind::kStop, false),
          enum_field(b, "trigger_by", {core::TriggerSource::kLast, core::TriggerSource::kMark},
                     core::TriggerSource::kLast, false),
          core::PriceTicks{}};
      r.trigger_price = PriceRef{false, decimal_field(b, "trigger_price", 8, 1, kPriceE8Max)};
    }
    s.gateway_.submit(std::move(r), order_reply(s, c, "ACCEPTED", true), render_effects);
  }

  static void amend(Service& s, Call& c) {
    AmendRequest r;
    r.who = c.who;
    r.account = text_field(c.body, "account");
    r.ref = order_ref_field(c.body);
    r.price = PriceRef{false, decimal_field(c.body, "price", 8, 1, kPriceE8Max)};
    r.volume_left = core::Lots(int_field(c.body, "volume_left", 1, kVolumeMax));
    s.gateway_.amend(std::move(r), order_reply(s, c, "AMENDED", false), render_effects);
  }

  static void cancel(Service& s, Call& c) {
    CancelRequest r;
    r.who = c.who;
    r.account = text_field(c.body, "account");
    r.ref = order_ref_field(c.body);
    s.gateway_.cancel(std::move(r), order_reply(s, c, "CANCELLED", false), render_effects);
  }

  static void create_user(Service& s, Call& c) {
    std::string name = name_field(c.body, "username");
    std::string password = new_password(c.body, "password");
    auto role = parse_role(text_field(c.body, "role"));
    if (!role) throw BadRequest{"'role' must be admin, trader, viewer or auditor"};
    const bool queued = s.login_.run_slow([&s, name, password, role, done = c.done] {
      std::string hash;
      try {
        hash = Auth::hash_password(password);
      } catch (const std::exception& e) {
        return done(error_reply(500, "internal", e.what()));
      }
      Service::Done d = done;
      bool posted = s.seq_.post(
          [&s, name, hash, role](Sequencer::Ctx& x) {
            // The engine decides what exists: credentials written just before a crash that
            // lost the CreateUser event are simply replaced.
            if (x.engine().find_user(name)) {
              return error_reply(409, "duplicate_name", "user '" + name + "' exists");
            }
            const auto& fx = x.submit(core::CreateUser{name});
            Reply out = admin_outcome(x.engine(), fx);
            if (out.status == 200) s.auth_.put_user_hashed(name, hash, *role);
            return out;
          },
          std::move(d));
      if (!posted) done(error_reply(503, "overloaded", "the sequencer queue is full"));
    });
    if (!queued) c.error(503, "busy", "too many password operations in progress; retry later");
  }

  // POST /api/admin/user/{name}/disable | enable: the user's tokens die and sessions close.
  template <bool Disable>
  static void set_disabled(Service& s, Call& c) {
    const std::string& name = c.params[0];
    if (!valid_name(name) || !s.auth_.set_disabled(name, Disable)) {
      return c.error(404, "unknown_user", "no user '" + name + "'");
    }
    c.ok({{"status", "ok"}, {"user", name}, {"disabled", Disable}});
  }

  // POST /api/admin/user/{name}/password {"password"}: a new password; the user's tokens die.
  static void reset_password(Service& s, Call& c) {
    const std::string name = c.params[0];
    std::string password = new_password(c.body, "password");
    if (!valid_name(name) || !s.auth_.has_user(name)) {
      return c.error(404, "unknown_user", "no user '" + name + "'");
    }
    const bool queued = s.login_.run_slow([&auth = s.auth_, name, password, done = c.done] {
      answer_or_500(done, [&] {
        if (!auth.set_password_hashed(name, Auth::hash_password(password))) {
          return error_reply(404, "unknown_user", "no user '" + name + "'");
        }
        return ok({{"status", "ok"}, {"user", name}});
      });
    });
    if (!queued) c.error(503, "busy", "too many password operations in progress; retry later");
  }

  static void create_account(Service& s, Call& c) {
    std::string user = name_field(c.body, "user");
    std::string name = name_field(c.body, "name");
    c.job(s.seq_, [user, name](Sequencer::Ctx& x) {
      auto u = x.engine().find_user(user);
      if (!u) return error_reply(404, "unknown_user", "no user '" + user + "'");
      return admin_outcome(x.engine(), x.submit(core::CreateAccount{*u, name}));
    });
  }

  // POST /api/admin/account/{name}/risk {"max_open_orders", "enabled", "stp_mode", "stp_scope"}:
  // the account's limits, switch and self-trade prevention; absent fields keep their values.
  static void account_risk(Service& s, Call& c) {
    const json& b = c.body;
    std::optional<std::uint32_t> max_open;
    if (b.contains("max_open_orders")) {
      max_open = static_cast<std::uint32_t>(int_field(b, "max_open_orders", 0, 1'000'000));
    }
    std::optional<bool> enabled;
    if (b.contains("enabled")) {
      if (!b["enabled"].is_boolean()) throw BadRequest{"'enabled' must be a boolean"};
      enabled = b["enabled"].get<bool>();
    }
    // Parsed against a placeholder now (types and names), against the account's values below.
    (void)stp_fields(b, core::SelfTradePrevention{});
    c.job(s.seq_, [name = c.params[0], body = b, max_open, enabled](Sequencer::Ctx& x) {
      auto a = x.engine().find_account(name);
      if (!a) return error_reply(404, "unknown_account", "no account '" + name + "'");
      const core::AccountState& now = x.engine().account_state(*a);
      core::SetAccountRisk r{*a, max_open.value_or(now.max_open_orders),
                             enabled.value_or(now.enabled), stp_fields(body, now.stp)};
      return admin_outcome(x.engine(), x.submit(r));
    });
  }

  template <bool Deposit>
  static void money(Service& s, Call& c) {
    std::string account = name_field(c.body, "account");
    MoneyInput amount_text = money_input(c.body, "amount");
    c.job(s.seq_, [account, amount_text](Sequencer::Ctx& x) {
      auto a = x.engine().find_account(account);
      if (!a) return error_reply(404, "unknown_account", "no account '" + account + "'");
      auto amount = to_money(amount_text, x.engine(), 1);
      if (!amount) return bad_money(amount_text, x.engine());
      if (Deposit) return admin_outcome(x.engine(), x.submit(core::Deposit{*a, *amount}));
      return admin_outcome(x.engine(), x.submit(core::Withdraw{*a, *amount}));
    });
  }

  template <core::InstrumentStatus Status>
  static void instrument_status(Service& s, Call& c) {
    c.job(s.seq_, [code = c.params[0]](Sequencer::Ctx& x) {
      auto id = x.engine().find_instrument(code);
      if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
      return admin_outcome(x.engine(), x.submit(core::SetInstrumentStatus{*id, Status}));
    });
  }

  static void create_instrument(Service& s, Call& c) {
    const json& b = c.body;
    core::CreateInstrument ci;
    ci.code = name_field(b, "code");
    ci.exchange = name_field(b, "exchange", 15);
    auto& pr = ci.params;
    pr.price_tick_e8 = decimal_field(b, "price_tick", 8, 1, kPriceE8Max);
    pr.multiplier_e8 = decimal_field(b, "multiplier", 8, 1, kPriceE8Max);
    pr.margin_long_ppb = pr.margin_short_ppb = decimal_field(b, "margin_ratio", 9, 1, core::kPpb);
    std::optional<MoneyInput> fee_per_lot;
    if (b.contains("fee_per_lot")) fee_per_lot = money_input(b, "fee_per_lot");
    pr.fees.open_ppb = pr.fees.close_ppb = pr.fees.close_today_ppb =
        b.contains("fee_ratio") ? decimal_field(b, "fee_ratio", 9, 0, core::kPpb) : 0;
    if (b.contains("price_band")) {
      pr.price_band_ppb = decimal_field(b, "price_band", 9, 1, core::kPpb);
    }
    pr.max_order_volume = core::Lots(int_field(b, "max_order_volume", 1, kVolumeMax));
    pr.position_limit = core::Lots(int_field(b, "position_limit", 1, kVolumeMax));
    if (b.contains("last_trading_day")) {  // engine trading day whose settlement expires it
      pr.last_trading_day = static_cast<std::uint32_t>(
          int_field(b, "last_trading_day", 0, std::numeric_limits<std::uint32_t>::max()));
    }
    const std::int64_t pre_e8 = decimal_field(b, "pre_settlement", 8, 1, kPriceE8Max);
    if (pre_e8 % pr.price_tick_e8 != 0) {
      throw BadRequest{"'pre_settlement' must be a multiple of 'price_tick'"};
    }
    ci.pre_settlement = core::PriceTicks(pre_e8 / pr.price_tick_e8);
    c.job(s.seq_, [ci, fee_per_lot](Sequencer::Ctx& x) mutable {
      if (fee_per_lot) {
        auto fee = to_money(*fee_per_lot, x.engine(), 0);
        if (!fee) return bad_money(*fee_per_lot, x.engine());
        ci.params.fees.open_per_lot = ci.params.fees.close_per_lot =
            ci.params.fees.close_today_per_lot = *fee;
      }
      return admin_outcome(x.engine(), x.submit(ci));
    });
  }

  // {"utc_offset": "+08:00", "entries": [{"start": "08:55", "phase": "AUCTION"}, ...]}: the
  // instrument's daily trading sessions (docs/semantics.md, "Sessions and call auctions"); up
  // to 16 entries in increasing order of start (HH:MM or HH:MM:SS, local time); no entries:
  // continuous trading all day. The offset defaults to +00:00.
  static void session(Service& s, Call& c) {
    const json& b = c.body;
    core::SessionSchedule sch;
    if (b.contains("utc_offset")) {
      const std::string text = text_field(b, "utc_offset", 6);
      auto offset = parse_utc_offset(text);
      if (!offset) throw BadRequest{"'utc_offset' must be +HH:MM or -HH:MM, at most 18 hours"};
      sch.utc_offset_s = *offset;
    }
    const json& entries = field(b, "entries");
    if (!entries.is_array() || entries.size() > core::kSessionEntriesMax) {
      throw BadRequest{"'entries' must be an array of at most " +
                       std::to_string(core::kSessionEntriesMax) + " entries"};
    }
    static constexpr std::initializer_list<core::TradingPhase> kPhases = {
        core::TradingPhase::kContinuous, core::TradingPhase::kAuction, core::TradingPhase::kPreOpen,
        core::TradingPhase::kBreak, core::TradingPhase::kClosed};
    for (const json& e : entries) {
      if (!e.is_object()) throw BadRequest{"each of 'entries' must be an object"};
      auto start = parse_time_of_day(text_field(e, "start", 8));
      if (!start) throw BadRequest{"'start' must be HH:MM or HH:MM:SS, from 00:00 to 23:59:59"};
      const auto phase = enum_field(e, "phase", kPhases, core::TradingPhase::kContinuous, true);
      if (!sch.entries.empty() && *start <= sch.entries.back().start_s) {
        throw BadRequest{"'entries' must be in increasing order of 'start'"};
      }
      sch.entries.push_back({*start, phase});
    }
    c.job(s.seq_, [code = c.params[0], sch](Sequencer::Ctx& x) {
      auto id = x.engine().find_instrument(code);
      if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
      return admin_outcome(x.engine(), x.submit(core::SetSession{*id, sch}));
    });
  }

  // {"code": "USDT", "decimals": 8}: the exchange's one currency; money is then counted in
  // 10^-decimals of it. Only before the first instrument or account (409 CURRENCY_FIXED after).
  static void currency(Service& s, Call& c) {
    core::SetCurrency sc;
    sc.code = text_field(c.body, "code", 7);
    sc.decimals = static_cast<std::uint32_t>(
        int_field(c.body, "decimals", 0, static_cast<std::int64_t>(core::kMoneyDecimalsMax)));
    c.job(s.seq_, [sc](Sequencer::Ctx& x) { return admin_outcome(x.engine(), x.submit(sc)); });
  }

  // {"instruments", "accounts", "orders", "orders_per_account", "orders_per_level"}: the engine's
  // capacity (0 = no limit); absent fields keep their values. The engine reserves memory for the
  // limits when it applies them, and on every replay, so limits whose budget passes half of this
  // machine's memory are refused here, before they are journaled.
  static void limits(Service& s, Call& c) {
    const json& b = c.body;
    std::vector<std::pair<std::uint32_t core::EngineLimits::*, std::uint32_t>> given;
    for (const EngineLimitField& f : kEngineLimitFields) {
      if (b.contains(f.key)) {
        given.emplace_back(f.member, static_cast<std::uint32_t>(int_field(b, f.key, 0, f.max)));
      }
    }
    if (given.empty())
      throw BadRequest{
          "give at least one of instruments, accounts, orders, "
          "orders_per_account, orders_per_level"};
    c.job(s.seq_, [given](Sequencer::Ctx& x) {
      core::EngineLimits l = x.engine().limits();
      for (const auto& [member, value] : given) l.*member = value;
      if (auto why = limits_too_large(x.engine().limits(), l)) {
        return error_reply(400, "bad_request", *why);
      }
      return admin_outcome(x.engine(), x.submit(core::SetLimits{l}));
    });
  }

  // {"liquidation_ratio": "0.9", "insurance_account": "fund-01"}: forced liquidation when margin /
  // balance reaches the ratio (up to 100); the optional fund pays what liquidated accounts owe.
  static void risk(Service& s, Call& c) {
    const std::int64_t ppb = decimal_field(c.body, "liquidation_ratio", 9, 1, 100 * core::kPpb);
    std::optional<std::string> fund;
    if (c.body.contains("insurance_account")) fund = name_field(c.body, "insurance_account");
    c.job(s.seq_, [ppb, fund](Sequencer::Ctx& x) {
      core::SetRiskParams p{ppb, std::nullopt};
      if (fund) {
        auto a = x.engine().find_account(*fund);
        if (!a) return error_reply(404, "unknown_account", "no account '" + *fund + "'");
        p.insurance_account = *a;
      }
      return admin_outcome(x.engine(), x.submit(p));
    });
  }

  // {"prices": {"IF2501": "3812.4", ...}}; instruments not listed settle at their last price.
  static void settle(Service& s, Call& c) {
    std::vector<std::pair<std::string, std::int64_t>> prices;
    if (c.body.contains("prices")) {
      const json& ps = c.body["prices"];
      if (!ps.is_object() || ps.size() > 10'000) throw BadRequest{"'prices' must be an object"};
      for (const auto& [code, v] : ps.items()) {
        if (!valid_name(code)) throw BadRequest{"'prices' keys must be instrument codes"};
        json one{{"price", v}};
        prices.emplace_back(code, decimal_field(one, "price", 8, 1, kPriceE8Max));
      }
    }
    c.job(s.seq_, [prices](Sequencer::Ctx& x) {
      core::Settle settle;
      for (const auto& [code, e8] : prices) {
        auto id = x.engine().find_instrument(code);
        if (!id) return error_reply(404, "unknown_instrument", "no instrument '" + code + "'");
        const std::int64_t tick = x.engine().instrument(*id).params.price_tick_e8;
        if (tick <= 0 || e8 % tick != 0) {
          return error_reply(400, "bad_price", "price of '" + code + "' is off tick");
        }
        settle.prices.push_back({*id, core::PriceTicks(e8 / tick)});
      }
      return admin_outcome(x.engine(), x.submit(settle));
    });
  }

  static const std::vector<Route>& table() {
    static const std::vector<Route> routes = {
        {"GET", "healthz", kPublic, healthz},
        {"GET", "metrics", kPublic, metrics},
        {"GET", "api/cluster/status", kPublic, cluster_status},
        {"POST", "api/auth/login", kPublic, login},
        {"POST", "api/auth/logout", kAnyRole, logout},
        {"POST", "api/auth/password", kAnyRole, change_password},
        {"GET", "api/admin/status", kReaders, status},
        {"GET", "api/instruments", kAnyRole, instruments},
        {"GET", "api/orderbook/{}", kAnyRole, orderbook},
        {"GET", "api/market/trades/{}", kAnyRole, market_trades},
        {"GET", "api/klines/{}", kAnyRole, klines},
        {"GET", "api/accounts", kAnyRole, accounts},
        {"GET", "api/account/{}", kAnyRole, account_view<replay::account_json>},
        {"GET", "api/positions/{}", kAnyRole, account_view<replay::positions_json>},
        {"GET", "api/orders/{}", kAnyRole, account_view<replay::orders_json>},
        {"GET", "api/trades/{}", kAnyRole, account_view<replay::trades_json>},
        {"POST", "api/order/submit", kTraderOnly, submit},
        {"POST", "api/order/amend", kTraderOnly, amend},
        {"POST", "api/order/cancel", kTraderOnly, cancel},
        {"POST", "api/admin/user", kAdminOnly, create_user},
        {"POST", "api/admin/user/{}/disable", kAdminOnly, set_disabled<true>},
        {"POST", "api/admin/user/{}/enable", kAdminOnly, set_disabled<false>},
        {"POST", "api/admin/user/{}/password", kAdminOnly, reset_password},
        {"POST", "api/admin/account", kAdminOnly, create_account},
        {"POST", "api/admin/account/{}/risk", kAdminOnly, account_risk},
        {"POST", "api/admin/deposit", kAdminOnly, money<true>},
        {"POST", "api/admin/withdraw", kAdminOnly, money<false>},
        {"POST", "api/admin/instrument", kAdminOnly, create_instrument},
        {"POST", "api/admin/instrument/{}/halt", kAdminOnly,
         instrument_status<core::InstrumentStatus::kHalted>},
        {"POST", "api/admin/instrument/{}/resume", kAdminOnly,
         instrument_status<core::InstrumentStatus::kTrading>},
        {"POST", "api/admin/instrument/{}/session", kAdminOnly, session},
        {"POST", "api/admin/settle", kAdminOnly, settle},
        {"POST", "api/admin/risk", kAdminOnly, risk},
        {"POST", "api/admin/currency", kAdminOnly, currency},
        {"POST", "api/admin/limits", kAdminOnly, limits},
    };
    return routes;
  }

  // The route whose pattern matches `parts` (its {} segments appended to `params`); `path_only`
  // tells whether some route matched the path with another method.
  static const Route* match(const std::string& method, const std::vector<std::string>& parts,
                            std::vector<std::string>& params, bool& path_only) {
    path_only = false;
    for (const Route& r : table()) {
      std::vector<std::string> got;
      std::string_view pattern = r.pattern;
      std::size_t i = 0;
      bool fits = true;
      while (fits && !pattern.empty()) {
        const auto slash = pattern.find('/');
        const std::string_view seg = pattern.substr(0, slash);
        pattern = slash == std::string_view::npos ? std::string_view{} : pattern.substr(slash + 1);
        if (i >= parts.size()) {
          fits = false;
        } else if (seg == "{}") {
          got.push_back(parts[i++]);
        } else {
          fits = parts[i++] == seg;
        }
      }
      if (!fits || i != parts.size()) continue;
      if (method != r.method) {
        path_only = true;
        continue;
      }
      params = std::move(got);
      return &r;
    }
    return nullptr;
  }
};

void Service::handle(Request req, Done done) noexcept {
  try {
    dispatch(req, done);
  } catch (const BadRequest& e) {
    done(error_reply(400, "bad_request", e.message));
  } catch (const nlohmann::json::exception& e) {
    done(error_reply(400, "bad_request", std::string("bad field: ") + e.what()));
  } catch (const std::exception& e) {
    // Nothing a client sends may reach std::terminate: answer and log.
    log_event(LogLevel::kError, "request_failed", {{"target", req.target}, {"error", e.what()}});
    done(error_reply(500, "internal", "the request failed"));
  }
}

void Service::dispatch(Request& req, Done& done) {
  const Path r = split(req);
  std::vector<std::string> params;
  bool path_only = false;
  const Routes::Route* route = Routes::match(r.method, r.parts, params, path_only);
  if (route == nullptr) {
    if (path_only) return done(error_reply(405, "method_not_allowed", "wrong method"));
    return done(error_reply(404, "not_found", "no route " + r.method + " " + req.target));
  }
  Call c{req, done, {}, std::move(params), r.query};
  if (route->roles != kPublic) {
    std::optional<Principal> who = auth_.verify(bearer_token(req.authorization));
    if (!who) {
      return done(error_reply(401, "unauthorized", "a valid 'Authorization: Bearer' is required"));
    }
    if (req.certificate_user && *req.certificate_user != who->user) {
      return done(
          error_reply(403, "forbidden", "the token's user is not the client certificate's user"));
    }
    const auto received_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(req.received.time_since_epoch());
    if (rate_ != nullptr && !rate_->try_take(who->user, received_ns.count())) {
      metrics_.rate_limited();
      return done(error_reply(429, "rate_limited",
                              "user '" + who->user + "' is over " +
                                  std::to_string(rate_->limit().per_s) +
                                  " requests a second; retry later"));
    }
    if ((route->roles & bit(who->role)) == 0) {
      return done(error_reply(403, "forbidden",
                              std::string(role_words(route->roles)) + " is required for " +
                                  route->method + " /" + route->pattern));
    }
    c.who = std::move(*who);
  }
  if (r.method == "POST" && !req.body.empty()) {
    if (json_depth(req.body) > kJsonDepthMax) {
      return done(
          error_reply(400, "bad_json",
                      "the body nests deeper than " + std::to_string(kJsonDepthMax) + " levels"));
    }
    c.body = json::parse(req.body, nullptr, false);
    if (c.body.is_discarded() || !c.body.is_object()) {
      return done(error_reply(400, "bad_json", "the body must be one JSON object"));
    }
  }
  route->handler(*this, c);
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

std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  std::uint64_t bytes = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  // A container's memory limit (cgroup v2), when it is lower.
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");
  std::uint64_t limit = 0;
  if (cgroup >> limit && limit > 0) bytes = std::min(bytes, limit);
  return bytes;
}

const EngineLimitField kEngineLimitFields[5] = {
    {"instruments", &core::EngineLimits::instruments, core::kInstrumentsLimitMax},
    {"accounts", &core::EngineLimits::accounts, core::kAccountsLimitMax},
    {"orders", &core::EngineLimits::orders, core::kOrdersLimitMax},
    {"orders_per_account", &core::EngineLimits::orders_per_account, 0xFFFF'FFFF},
    {"orders_per_level", &core::EngineLimits::orders_per_level, 0xFFFF'FFFF}};

std::optional<std::string> limits_too_large(const core::EngineLimits& now,
                                            const core::EngineLimits& next) {
  // Reservations never shrink: what the engine holds after `next` is the larger of the two.
  const core::EngineLimits l{std::max(now.instruments, next.instruments),
                             std::max(now.accounts, next.accounts),
                             std::max(now.orders, next.orders), 0, 0};
  const std::uint64_t budget = core::reserve_budget(l);
  const std::uint64_t memory = physical_memory_bytes();
  if (memory == 0 || budget <= memory / 2) return std::nullopt;
  return "these limits budget " + std::to_string(budget) +
         " bytes of engine memory, more than half of this machine's " + std::to_string(memory);
}

std::string setup_demo(Sequencer& sequencer, Auth& auth) {
  sequencer.execute([](Sequencer::Ctx& c) {
    journal_demo(c);
    return Reply{};
  });
  return add_demo_users(auth);
}

void journal_demo(Sequencer::Ctx& c) {
  {
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
      if (u.account == nullptr) continue;
      const auto user = c.engine().find_user(u.name);
      expect_ok(c.submit(core::CreateAccount{*user, u.account}), u.account);
      const auto account = c.engine().find_account(u.account);
      expect_ok(c.submit(core::Deposit{*account, core::Money(kDemoFundsMinor)}), u.account);
    }
  }
}

std::string add_demo_users(Auth& auth) {
  for (const DemoUser& u : kDemoUsers) {
    if (!auth.has_user(u.name)) {
      auth.add_user_hashed(u.name, Auth::hash_password(u.password), u.role, /*demo=*/true);
    }
  }
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
    auth.put_user_hashed("admin", hash, Role::kAdmin);
    return Reply{};
  });
}

}  // namespace qx::server
