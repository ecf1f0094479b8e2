// The REST service: routes, authentication, role checks and input validation, independent of the
// transport (server/http.cc feeds it parsed requests; no Asio or Beast here).
//
//   Service svc(sequencer, auth, metrics, login_gate);
//   svc.handle(request, [](Reply r) { /* any thread: hand r to the connection */ });
//
// Routes are data: one table (service.cc, kRoutes) of (method, path pattern, roles, handler).
// A request that names no route gets 404 (405 when only the method is wrong); a route that needs a
// role gets 401 without a valid bearer token and 403 for a role outside its set, before any field
// is read. Shape checks (JSON syntax, nesting depth, types, ranges, decimal places, overflow)
// happen on the calling I/O thread and answer 400 without touching the engine; a field of any
// wrong type is a 400, never an exception that escapes. Everything that reads or changes engine
// state runs as a sequencer job, so reads are consistent and writes are durable before the
// reply. Orders, amends and cancels go through the order gateway (server/gateway.h), the same
// one the binary TCP protocol uses; logins through the login gate (server/login.h). Business
// rejects (insufficient funds, unknown order) are journaled engine outcomes and answered 200
// with "status": "REJECTED" and the stable reason name.
//
// Roles: admin manages instruments, users, accounts and money and reads everything but does not
// trade; auditor reads everything; trader trades and reads only accounts of its own user; viewer
// reads only its own accounts and market data. /api/admin/status is for admin and auditor.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/auth.h"
#include "server/gateway.h"
#include "server/klines.h"
#include "server/limits.h"
#include "server/login.h"
#include "server/metrics.h"
#include "server/sequencer.h"

namespace qx::server {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string authorization;  // the Authorization header, as sent
  std::chrono::steady_clock::time_point received;
  std::string peer_ip;  // the client's address (login back-off per address)
  // Under mutual TLS with tls_client_users: the user the connection's certificate maps to; a
  // token of any other user is refused (403).
  std::optional<std::string> certificate_user;
};

// Nesting depth of JSON text (arrays and objects), found without parsing it, so that a deeply
// nested body is refused before it reaches the parser's recursion.
std::size_t json_depth(std::string_view text);
inline constexpr std::size_t kJsonDepthMax = 16;

// The bearer token of an Authorization header value ("" when there is none).
std::string bearer_token(const std::string& authorization);

class Service {
 public:
  using Done = std::function<void(Reply)>;

  Service(Sequencer& sequencer, Auth& auth, Metrics& metrics, LoginGate& login);
  // Never throws; `done` is called exactly once (on this thread or another).
  void handle(Request req, Done done) noexcept;
  // The principal of a bearer token, or nullopt.
  [[nodiscard]] std::optional<Principal> verify(const std::string& token) const {
    return auth_.verify(token);
  }
  // A DIFF chart (set_chart): the newest `width` bars of one instrument and period.
  struct Chart {
    std::string code;
    Period period{};
    std::size_t width = 0;
  };
  // The DIFF view of a principal as JSON text in the reply body: {"trade": {<user>: {"accounts",
  // "positions", "orders", "trades"} keyed by account name}, "quotes": {<code>: five levels},
  // "klines": {<code>: {<period ns>: {"last_id", "data": {<id>: bar}}}}}.
  void diff_view(const Principal& p, std::vector<std::string> quotes, std::vector<Chart> charts,
                 Done done);
  // K-lines for GET /api/klines and DIFF charts; set once before the first request.
  void set_klines(const Klines* klines) { klines_ = klines; }
  // Set once before the first request (nullptr: no limit): every authenticated request takes a
  // token from its user's bucket, by the request's `received` time; none left answers 429
  // {"error": "rate_limited"} before anything else is looked at.
  void set_rate_limiter(RateLimiter* limiter) { rate_ = limiter; }
  // GET /api/cluster/status (public, like /metrics): the JSON this returns; unset (single-node
  // mode) answers 404 not_clustered. Set once before the first request; called on any thread.
  void set_cluster_status(std::function<std::string()> f) { cluster_status_ = std::move(f); }
  [[nodiscard]] LoginGate& login_gate() { return login_; }
  // Grows on every token revocation (logout, password change, disabled user).
  [[nodiscard]] std::uint64_t auth_revision() const { return auth_.revision(); }

  struct Call;  // one request on its way through a route (service.cc)

 private:
  friend struct Routes;
  void dispatch(Request& req, Done& done);

  Sequencer& seq_;
  Auth& auth_;
  Metrics& metrics_;
  LoginGate& login_;
  Gateway gateway_;
  const Klines* klines_ = nullptr;
  RateLimiter* rate_ = nullptr;
  std::function<std::string()> cluster_status_;
};

// A JSON error reply: {"error": code, "message": message}.
Reply error_reply(unsigned status, const std::string& code, const std::string& message);

// RFC 7386 merge patch that turns `from` into `to` (an empty object when they are equal).
nlohmann::json merge_diff(const nlohmann::json& from, const nlohmann::json& to);

// Adds the demo's instruments, users (admin, alice, bob, viewer) and funded accounts; run once on
// an empty journal before the sequencer thread starts. Returns the credentials as text lines.
// Its two halves: journal_demo journals the events (in a job: a cluster's first term), and
// add_demo_users adds the demo's logins to this node's users file (every node of a cluster).
std::string setup_demo(Sequencer& sequencer, Auth& auth);
void journal_demo(Sequencer::Ctx& c);
std::string add_demo_users(Auth& auth);

// The fields of core::EngineLimits as the API and the config file name them, each with the
// largest value the engine takes (POST /api/admin/limits and the `engine_limits` config key).
struct EngineLimitField {
  const char* key;
  std::uint32_t core::EngineLimits::*member;
  std::int64_t max;
};
extern const EngineLimitField kEngineLimitFields[5];

// This machine's physical memory in bytes (its container's limit when lower); 0 when unknown.
std::uint64_t physical_memory_bytes();
// Why limits `next` may not be journaled over `now` on this machine (what the engine reserves for
// both, since reservations never shrink, passes half of its memory, and every replay of the
// journal reserves it again), or nullopt.
std::optional<std::string> limits_too_large(const core::EngineLimits& now,
                                            const core::EngineLimits& next);

// Journals user "admin" (unless the engine has it) and stores (or replaces) its credentials with
// the admin role; run before the sequencer thread starts.
void bootstrap_admin(Sequencer& sequencer, Auth& auth, const std::string& password);

}  // namespace qx::server
