// The REST service: routes, authentication, role checks and input validation, independent of the
// transport (server/http.cc feeds it parsed requests; no Asio or Beast here).
//
//   Service svc(sequencer, auth, metrics, offload);
//   svc.handle(request, [](Reply r) { /* any thread: hand r to the connection */ });
//
// Shape checks (JSON syntax, types, ranges, decimal places, overflow) and role checks happen on
// the calling I/O thread and answer 4xx without touching the engine. Everything that reads or
// changes engine state runs as a sequencer job, so reads are consistent and writes are durable
// before the reply. Business rejects (insufficient funds, unknown order) are journaled engine
// outcomes and answered 200 with "status": "REJECTED" and the stable reason name.
//
// Roles: admin manages instruments, users, accounts and money and reads everything but does not
// trade; auditor reads everything; trader trades and reads only accounts of its own user; viewer
// reads only its own accounts and market data.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/auth.h"
#include "server/klines.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/sequencer.h"

namespace qx::server {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string authorization;  // the Authorization header, as sent
  std::chrono::steady_clock::time_point received;
};

class Service {
 public:
  using Done = std::function<void(Reply)>;
  // Runs slow work (password hashing) off the I/O thread.
  using Offload = std::function<void(std::function<void()>)>;

  Service(Sequencer& sequencer, Auth& auth, Metrics& metrics);
  void handle(Request req, Done done);
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
  // Set once by the transport before the first request.
  void set_offload(Offload offload) { offload_ = std::move(offload); }
  // Set once before the first request (nullptr: no limit): every authenticated request takes a
  // token from its user's bucket, by the request's `received` time; none left answers 429
  // {"error": "rate_limited"} before anything else is looked at.
  void set_rate_limiter(RateLimiter* limiter) { rate_ = limiter; }

 private:
  Sequencer& seq_;
  Auth& auth_;
  Metrics& metrics_;
  Offload offload_;
  const Klines* klines_ = nullptr;
  RateLimiter* rate_ = nullptr;
};

// A JSON error reply: {"error": code, "message": message}.
Reply error_reply(unsigned status, const std::string& code, const std::string& message);

// RFC 7386 merge patch that turns `from` into `to` (an empty object when they are equal).
nlohmann::json merge_diff(const nlohmann::json& from, const nlohmann::json& to);

// Adds the demo's instruments, users (admin, alice, bob, viewer) and funded accounts; run once on
// an empty journal before the sequencer thread starts. Returns the credentials as text lines.
std::string setup_demo(Sequencer& sequencer, Auth& auth);

// Journals user "admin" (unless the engine has it) and stores its credentials with the admin
// role; run before the sequencer thread starts.
void bootstrap_admin(Sequencer& sequencer, Auth& auth, const std::string& password);

}  // namespace qx::server
