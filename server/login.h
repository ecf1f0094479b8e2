// Login, the one way in for every transport (REST, WebSocket DIFF's req_login, binary TCP).
//
//   LoginGuard guard;                                   // failures per user and per address
//   LoginGate gate(auth, metrics, guard, {});
//   gate.login("alice", "pw", "10.0.0.7", [](LoginOutcome o) { /* any thread */ });
//
// What an attacker meets, in order:
// 1. Shape: a name outside the character set of valid_name (server/auth.h), an empty or over-long
//    password -> kBadRequest at once.
// 2. Back-off (LoginGuard): after `free_failures` failed logins in a row for a user name (or
//    `address_free_failures` from a client address), that key waits first_backoff, then twice as
//    long after each further failure, up to max_backoff; a login while either key waits is refused
//    (kLocked, with the seconds left) without any password work. A success clears the user's key.
//    Keys are the name tried, whether or not it exists, so a lock says nothing about which users
//    exist.
// 3. A bounded queue for argon2id: at most `pending_max` logins (and other password work, see
//    run_slow) wait or run at once; one more is refused with kBusy (503), never queued.
// 4. The check itself costs the same argon2id work for unknown and known users (Auth::login).
// Every failure is counted (qx_login_failures_total{reason}) and logged (login_failed, throttled).
//
// Design: the guard takes the time as a parameter (no clock inside), so its tests are
// deterministic. Its map is bounded: when it passes keys_max, entries whose back-off has long
// expired are dropped; if it is still full, new keys are treated as already at the limit, so a
// flood of fresh names cannot buy unlimited free guesses.
//
// Thread safety: every method may be called from any thread. The gate's `done` runs on one of
// its two worker threads, or on the calling thread when the login is refused before any work.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "server/auth.h"
#include "server/log.h"
#include "server/metrics.h"

namespace qx::server {

struct LoginLimits {
  std::uint32_t free_failures = 5;                // per user name
  std::uint32_t address_free_failures = 20;       // per client address (many users share one NAT)
  std::int64_t first_backoff_ns = 1'000'000'000;  // 1 s
  std::int64_t max_backoff_ns = 300'000'000'000;  // 5 min
  std::size_t keys_max = 100'000;
  std::size_t pending_max = 32;  // password checks waiting or running at once
};

class LoginGuard {
 public:
  explicit LoginGuard(LoginLimits limits = {}) : limits_(limits) {}
  // Nanoseconds until `key` may try again (0: now).
  [[nodiscard]] std::int64_t wait_ns(std::string_view key, std::int64_t now_ns) const;
  // `free` failures pass without back-off.
  void failed(std::string_view key, std::int64_t now_ns, std::uint32_t free);
  void succeeded(std::string_view key);
  [[nodiscard]] std::size_t keys() const;

 private:
  struct Entry {
    std::uint32_t failures = 0;
    std::int64_t until_ns = 0;  // no try before this time
  };
  void prune_locked(std::int64_t now_ns);

  const LoginLimits limits_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

enum class LoginError : std::uint8_t {
  kNone = 0,
  kBadRequest = 1,      // 400
  kBadCredentials = 2,  // 401
  kLocked = 3,          // 429, retry_after_s
  kBusy = 4,            // 503
  kDisabled = 5,        // 403
  kDemoUser = 6,        // 403
};

struct LoginOutcome {
  LoginError error = LoginError::kNone;
  std::string message;
  std::string token;
  Principal principal;
  std::int64_t retry_after_s = 0;
};
// The HTTP status and the stable error name of an outcome ("bad_credentials", ...).
unsigned http_status(LoginError e);
const char* error_name(LoginError e);

class LoginGate {
 public:
  LoginGate(Auth& auth, Metrics& metrics, LoginLimits limits = {});
  ~LoginGate();
  LoginGate(const LoginGate&) = delete;
  LoginGate& operator=(const LoginGate&) = delete;

  using Done = std::function<void(LoginOutcome)>;
  void login(std::string user, std::string password, std::string address, Done done);
  // Other password work (hashing a new password) under the same bound; false when full.
  [[nodiscard]] bool run_slow(std::function<void()> work);
  [[nodiscard]] Auth& auth() { return auth_; }
  // Waits for the work in flight (at shutdown).
  void join();

 private:
  void refuse(LoginOutcome& o, const std::string& user, const std::string& address) const;

  Auth& auth_;
  Metrics& metrics_;
  LoginLimits limits_;
  LoginGuard guard_;
  mutable LogThrottle log_throttle_{5};
  std::atomic<std::size_t> pending_{0};
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

}  // namespace qx::server
