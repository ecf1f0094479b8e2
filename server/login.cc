#include "server/login.h"

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace qx::server {

std::int64_t LoginGuard::wait_ns(std::string_view key, std::int64_t now_ns) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    // A full map cannot track a new key: treat it as at the limit (see the header).
    return entries_.size() >= limits_.keys_max ? limits_.first_backoff_ns : 0;
  }
  return it->second.until_ns > now_ns ? it->second.until_ns - now_ns : 0;
}

void LoginGuard::failed(std::string_view key, std::int64_t now_ns, std::uint32_t free) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= limits_.keys_max) prune_locked(now_ns);
    if (entries_.size() >= limits_.keys_max) return;
    it = entries_.emplace(std::string(key), Entry{}).first;
  }
  Entry& e = it->second;
  e.failures += 1;
  if (e.failures <= free) return;
  // first, 2 x first, 4 x first, ... up to max_backoff.
  std::int64_t backoff = limits_.first_backoff_ns;
  for (std::uint32_t i = free + 1; i < e.failures; ++i) {
    if (backoff >= limits_.max_backoff_ns / 2) {
      backoff = limits_.max_backoff_ns;
      break;
    }
    backoff *= 2;
  }
  e.until_ns = now_ns + std::min(backoff, limits_.max_backoff_ns);
}

void LoginGuard::succeeded(std::string_view key) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) entries_.erase(it);
}

std::size_t LoginGuard::keys() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void LoginGuard::prune_locked(std::int64_t now_ns) {
  // An entry whose back-off ended more than max_backoff ago has been quiet long enough.
  std::erase_if(entries_, [&](const auto& kv) {
    return kv.second.until_ns + limits_.max_backoff_ns < now_ns;
  });
}

unsigned http_status(LoginError e) {
  switch (e) {
    case LoginError::kNone: return 200;
    case LoginError::kBadRequest: return 400;
    case LoginError::kBadCredentials: return 401;
    case LoginError::kLocked: return 429;
    case LoginError::kBusy: return 503;
    case LoginError::kDisabled: return 403;
    case LoginError::kDemoUser: return 403;
  }
  return 500;
}

const char* error_name(LoginError e) {
  switch (e) {
    case LoginError::kNone: return "ok";
    case LoginError::kBadRequest: return "bad_request";
    case LoginError::kBadCredentials: return "bad_credentials";
    case LoginError::kLocked: return "login_locked";
    case LoginError::kBusy: return "busy";
    case LoginError::kDisabled: return "user_disabled";
    case LoginError::kDemoUser: return "demo_user";
  }
  return "internal";
}

struct LoginGate::Pool {
  boost::asio::thread_pool threads{2};
};

LoginGate::LoginGate(Auth& auth, Metrics& metrics, LoginLimits limits)
    : auth_(auth),
      metrics_(metrics),
      limits_(limits),
      guard_(limits),
      pool_(std::make_unique<Pool>()) {}

LoginGate::~LoginGate() {
  join();
}

void LoginGate::join() {
  pool_->threads.join();
}

bool LoginGate::run_slow(std::function<void()> work) {
  if (pending_.fetch_add(1) >= limits_.pending_max) {
    pending_.fetch_sub(1);
    return false;
  }
  boost::asio::post(pool_->threads, [this, work = std::move(work)] {
    try {
      work();
    } catch (const std::exception& e) {
      // The work answers its own failures; this only keeps a worker thread alive.
      log_event(LogLevel::kError, "slow_work_failed", {{"error", e.what()}});
    }
    pending_.fetch_sub(1);
  });
  return true;
}

void LoginGate::refuse(LoginOutcome& o, const std::string& user, const std::string& address) const {
  if (o.message.empty()) {
    switch (o.error) {
      case LoginError::kBadCredentials: o.message = "unknown user or wrong password"; break;
      case LoginError::kBusy: o.message = "too many logins in progress; retry later"; break;
      case LoginError::kDisabled: o.message = "the user is disabled"; break;
      case LoginError::kDemoUser:
        o.message = "a --demo user; this data directory is served without --demo";
        break;
      default: o.message = error_name(o.error);
    }
  }
  metrics_.login_failed(error_name(o.error));
  if (std::uint64_t dropped = 0; log_throttle_.allow(steady_now_ns(), dropped)) {
    log_event(LogLevel::kWarn, "login_failed",
              {{"user", user},
               {"ip", address},
               {"reason", error_name(o.error)},
               {"suppressed", dropped}});
  }
}

void LoginGate::login(std::string user, std::string password, std::string address, Done done) {
  LoginOutcome o;
  if (!valid_name(user) || password.empty() || password.size() > 1024) {
    o.error = LoginError::kBadRequest;
    o.message =
        "a user name is 1 to 31 of A-Z a-z 0-9 _ . - (starting with a letter or digit); "
        "a password 1 to 1024 bytes";
    refuse(o, valid_name(user) ? user : std::string("(invalid)"), address);
    return done(std::move(o));
  }
  const std::string user_key = "user:" + user;
  const std::string addr_key = "ip:" + address;
  const std::int64_t now = steady_now_ns();
  if (const std::int64_t wait = std::max(guard_.wait_ns(user_key, now),
                                         address.empty() ? 0 : guard_.wait_ns(addr_key, now));
      wait > 0) {
    o.error = LoginError::kLocked;
    o.retry_after_s = (wait + 999'999'999) / 1'000'000'000;
    o.message = "too many failed logins; retry in " + std::to_string(o.retry_after_s) + " s";
    refuse(o, user, address);
    return done(std::move(o));
  }
  auto work = [this, user, password = std::move(password), address, user_key, addr_key, done] {
    LoginResult r;
    try {
      r = auth_.login(user, password);
    } catch (const std::exception& e) {
      log_event(LogLevel::kError, "login_error", {{"user", user}, {"error", e.what()}});
      LoginOutcome busy;
      busy.error = LoginError::kBusy;
      busy.message = "the login failed on the server; retry later";
      return done(std::move(busy));
    }
    LoginOutcome out;
    switch (r.status) {
      case LoginStatus::kOk:
        guard_.succeeded(user_key);
        out.token = std::move(r.token);
        out.principal = std::move(r.principal);
        return done(std::move(out));
      case LoginStatus::kBadCredentials: out.error = LoginError::kBadCredentials; break;
      case LoginStatus::kDisabled: out.error = LoginError::kDisabled; break;
      case LoginStatus::kDemoUser: out.error = LoginError::kDemoUser; break;
    }
    const std::int64_t at = steady_now_ns();
    guard_.failed(user_key, at, limits_.free_failures);
    if (!address.empty()) guard_.failed(addr_key, at, limits_.address_free_failures);
    refuse(out, user, address);
    done(std::move(out));
  };
  if (!run_slow(std::move(work))) {
    o.error = LoginError::kBusy;
    refuse(o, user, address);
    done(std::move(o));
  }
}

}  // namespace qx::server
