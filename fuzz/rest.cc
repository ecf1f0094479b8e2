// Fuzz target: REST request bodies, paths and query strings through the real service
// (server/service.h), its order gateway and sequencer, on a fresh in-process exchange per input
// (fuzz/exchange.h).
//
// The input is a list of requests, each: a byte for who sends it (admin, alice, bob, viewer,
// auditor, or a bad token), a byte for the route (below; its high bit swaps GET and POST), a byte
// for the path parameter (low 4 bits) and query string (high 4 bits), a 2-byte length, then the
// body. Every reply must be a client error or a success with a JSON body that parses
// (fuzz/exchange.h); after the last request the journal must replay to the server's state. Routes
// that hash a password (login, password changes, creating users) are left out: each would cost a
// tenth of a second.
//
//   scripts/fuzz.sh rest
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/exchange.h"
#include "fuzz/fuzz_input.h"

namespace {

struct Route {
  const char* method;
  const char* path;  // "{}" is replaced by a parameter
};
constexpr Route kRoutes[] = {
    {"GET", "/healthz"},
    {"GET", "/metrics"},
    {"GET", "/api/cluster/status"},
    {"GET", "/api/admin/status"},
    {"GET", "/api/instruments"},
    {"GET", "/api/orderbook/{}"},
    {"GET", "/api/market/trades/{}"},
    {"GET", "/api/klines/{}"},
    {"GET", "/api/accounts"},
    {"GET", "/api/account/{}"},
    {"GET", "/api/positions/{}"},
    {"GET", "/api/orders/{}"},
    {"GET", "/api/trades/{}"},
    {"POST", "/api/order/submit"},
    {"POST", "/api/order/amend"},
    {"POST", "/api/order/cancel"},
    {"POST", "/api/admin/user/{}/disable"},
    {"POST", "/api/admin/user/{}/enable"},
    {"POST", "/api/admin/account"},
    {"POST", "/api/admin/account/{}/risk"},
    {"POST", "/api/admin/deposit"},
    {"POST", "/api/admin/withdraw"},
    {"POST", "/api/admin/instrument"},
    {"POST", "/api/admin/instrument/{}/halt"},
    {"POST", "/api/admin/instrument/{}/resume"},
    {"POST", "/api/admin/instrument/{}/session"},
    {"POST", "/api/admin/settle"},
    {"POST", "/api/admin/risk"},
    {"POST", "/api/admin/currency"},
    {"POST", "/api/admin/limits"},
    {"GET", "/api/nowhere"},
};
constexpr const char* kParams[] = {"IF2501", "cu2501", "alice-01", "bob-01",
                                   "alice",  "bob",    "0",        "1",
                                   "",       "%00",    "..%2fx",   "99999999999999999999"};
constexpr const char* kQueries[] = {
    "",          "?depth=5",           "?limit=3",           "?period=1m",
    "?limit=-1", "?depth=99999999999", "?period=1d&limit=2", "?x"};

// Engine limits the server accepts (up to half of the machine's memory) but the fuzzer's 2 GiB
// cap does not: the engine reserves them at once, and again for the replay. Any number above
// kLimitMax in a limits body skips the request; the e2e tests cover large limits.
constexpr std::int64_t kLimitMax = 100'000;
bool too_much_memory(const std::string& target, const std::string& body) {
  if (target.rfind("/api/admin/limits", 0) != 0) return false;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return false;
  for (const auto& item : j.items()) {
    const auto& v = item.value();
    if (v.is_number() && !(v.get<double>() <= static_cast<double>(kLimitMax))) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  qx::fuzz::Exchange x;
  for (int n = 0; !in.empty() && n < 64; ++n) {
    const std::size_t who = in.byte() % (std::size(qx::fuzz::kExchangeUsers) + 1);
    const std::uint8_t route_byte = in.byte();
    const Route& route = kRoutes[(route_byte & 0x7f) % std::size(kRoutes)];
    const std::uint8_t param = in.byte();
    const std::string body(in.text(in.u64(2)));
    std::string target = route.path;
    if (const auto at = target.find("{}"); at != std::string::npos) {
      target.replace(at, 2, kParams[(param & 0x0f) % std::size(kParams)]);
    }
    target += kQueries[(param >> 4) % std::size(kQueries)];
    std::string method = route.method;
    if ((route_byte & 0x80) != 0) method = method == "GET" ? "POST" : "GET";
    if (too_much_memory(target, body)) continue;
    (void)x.call(method, target, body, qx::fuzz::Exchange::token(who));
  }
  x.check_replay();
  return 0;
}
