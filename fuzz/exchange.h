// An exchange in one process and one thread for the fuzz targets of the server's request paths: a
// real journal (in a scratch folder, no fsync), engine, sequencer (driven by run_pending() on the
// calling thread instead of its own thread, so that an input's requests run in the same order
// every time; the sequencer still stamps events with the wall clock, so a session schedule can
// make a replayed input take another path), users, K-lines and REST service, set up as `qx serve
// --demo` sets up its market (instruments IF2501, cu2501, au2506; users admin, alice and bob with
// accounts alice-01 and bob-01, viewer, auditor), with a token for each user signed by the fuzz
// secret (fuzz/tokens.h), so that no input pays for a password hash.
//
//   qx::fuzz::Exchange x;                               // fresh for each input
//   Reply r = x.call("POST", "/api/order/submit", body, x.token(1));   // waits for the answer
//   x.check_replay();   // the journal must replay to the engine's state
//
// QX_FUZZ_VERBOSE=1 prints every request and its answer, to see what an input does.
//
// Every reply is checked on the way out: a status under 500 and, when it says JSON, a body that
// parses. A 500 means an exception escaped a route, a 503 here that an order job threw (the
// gateway answers that as overloaded; nothing else can overload this exchange): a bug either way.
#pragma once

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>

#include "fuzz/fuzz_input.h"
#include "fuzz/tokens.h"
#include "replay/replay.h"
#include "server/auth.h"
#include "server/gateway.h"
#include "server/klines.h"
#include "server/login.h"
#include "server/metrics.h"
#include "server/sequencer.h"
#include "server/service.h"

namespace qx::fuzz {

struct ExchangeUser {
  const char* name;
  server::Role role;
};
// In the order the users file numbers them (uid 1, 2, ...).
inline constexpr ExchangeUser kExchangeUsers[] = {{"admin", server::Role::kAdmin},
                                                  {"alice", server::Role::kTrader},
                                                  {"bob", server::Role::kTrader},
                                                  {"viewer", server::Role::kViewer},
                                                  {"auditor", server::Role::kAuditor}};

class Exchange {
 public:
  static constexpr std::int64_t kExpiresS = 4'102'444'800;  // 2100-01-01

  Exchange()
      : dir_(prepared_dir()),
        sequencer_(open_journal(dir_ / "journal"), core::Engine{}, shared().metrics, {}),
        auth_(dir_ / "users.json", std::string(kSecret), 3600, false),
        service_(sequencer_, auth_, shared().metrics, shared().login),
        gateway_(sequencer_) {
    sequencer_.execute([](server::Sequencer::Ctx& c) {
      server::journal_demo(c);
      return server::Reply{};
    });
    sequencer_.add_event_listener([this](const core::Event& ev, const core::EffectBuffer& fx,
                                         const core::Engine&) { klines_.on_event(ev, fx); });
    service_.set_klines(&klines_);
  }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // A valid token of user i of kExchangeUsers; i past the end: a token of nobody.
  static std::string token(std::size_t i) {
    if (i >= std::size(kExchangeUsers)) return "not-a-token";
    const auto& u = kExchangeUsers[i];
    const nlohmann::json claims{{"sub", u.name},
                                {"role", server::to_string(u.role)},
                                {"jti", "fuzz-" + std::to_string(i)},
                                {"uid", i + 1},
                                {"gen", 0},
                                {"exp", kExpiresS}};
    return sign_token(R"({"alg":"HS256","typ":"JWT"})", claims.dump());
  }

  // The principal token(i) verifies to.
  static server::Principal principal(std::size_t i) {
    const auto& u = kExchangeUsers[i];
    return server::Principal{u.name, u.role, i + 1, "fuzz-" + std::to_string(i), kExpiresS};
  }

  // An order, amend or cancel through the order gateway, as the binary TCP protocol sends them;
  // waits for the result.
  template <class Request>
  server::OrderResult gateway(Request r) {
    std::optional<server::OrderResult> answer;
    auto done = [&answer](server::OrderResult res) { answer = std::move(res); };
    if constexpr (std::is_same_v<Request, server::OrderRequest>) {
      gateway_.submit(std::move(r), done);
    } else if constexpr (std::is_same_v<Request, server::AmendRequest>) {
      gateway_.amend(std::move(r), done);
    } else {
      gateway_.cancel(std::move(r), done);
    }
    sequencer_.run_pending();
    QX_FUZZ_CHECK(answer.has_value(), "the gateway answers every request");
    server::OrderResult res = std::move(*answer);
    if (verbose()) {
      std::fprintf(stderr, "gateway -> %s status %d reject %u seq %llu\n",
                   res.error ? res.error->message.c_str() : "ok", static_cast<int>(res.status),
                   res.reject_code, static_cast<unsigned long long>(res.seq));
    }
    return res;
  }

  server::Reply call(std::string method, std::string target, std::string body,
                     const std::string& token) {
    const std::string r_method = method, r_target = target;
    server::Request r{std::move(method),
                      std::move(target),
                      std::move(body),
                      token.empty() ? "" : "Bearer " + token,
                      std::chrono::steady_clock::now(),
                      "127.0.0.1",
                      std::nullopt};
    std::optional<server::Reply> answer;
    service_.handle(std::move(r), [&answer](server::Reply rep) { answer = std::move(rep); });
    sequencer_.run_pending();
    QX_FUZZ_CHECK(answer.has_value(), "the service answers every request");
    server::Reply rep = std::move(*answer);
    if (verbose()) {
      std::fprintf(stderr, "%s %s -> %u %.200s\n", r_method.c_str(), r_target.c_str(), rep.status,
                   rep.body.c_str());
    }
    check_reply(rep);
    return rep;
  }

  // QX_FUZZ_VERBOSE=1: every request and the start of its answer on stderr (to read an input).
  static bool verbose() {
    static const bool on = std::getenv("QX_FUZZ_VERBOSE") != nullptr;
    return on;
  }

  static void check_reply(const server::Reply& rep) {
    // The queue is never full and leadership never lost here: a 5xx (a 503 included, which the
    // gateway answers for a job that threw) is a bug.
    QX_FUZZ_CHECK(rep.status < 500, "no request ends in a server error");
    if (rep.content_type == "application/json") {
      QX_FUZZ_CHECK(!nlohmann::json::parse(rep.body, nullptr, false).is_discarded(),
                    "a JSON reply parses");
    }
  }

  // Replays the journal: nothing reached the engine that is not in the journal, in the order it
  // is there.
  void check_replay() {
    auto replayed = replay::replay_journal(dir_ / "journal", {});
    QX_FUZZ_CHECK(replayed.ok(), "the journal the server wrote replays");
    const core::Engine& live = sequencer_.engine();
    QX_FUZZ_CHECK(replayed.value().engine.last_seq() == live.last_seq(),
                  "replay ends where the server did");
    QX_FUZZ_CHECK(replayed.value().engine.state_hash() == live.state_hash(),
                  "replay reaches the server's state");
  }

  server::Service& service() { return service_; }
  server::Sequencer& sequencer() { return sequencer_; }

 private:
  static replay::JournalWriter open_journal(const std::filesystem::path& dir) {
    auto w = replay::JournalWriter::open(dir, {.fsync = replay::FsyncPolicy::kNone});
    QX_FUZZ_CHECK(w.ok(), "a journal opens in a scratch folder");
    return std::move(w.value());
  }
  // What every exchange of the process shares: the metrics registry (counters that only grow;
  // GET /metrics shows them) and the login gate with its thread pool, which none of the fuzzed
  // routes uses (login and password routes are left out: a reply from its pool would come after
  // run_pending() returns).
  struct Shared {
    server::Metrics metrics;
    server::Auth auth{scratch_dir("exchange-login") / "users.json", std::string(kSecret), 3600,
                      false};
    server::LoginGate login{auth, metrics};
  };
  static Shared& shared() {
    static Shared s;
    return s;
  }

  // The scratch folder with the users file in place: written once per process by an Auth (every
  // user with the hash of one password), copied for every exchange after that.
  static std::filesystem::path prepared_dir() {
    static const std::string users = [] {
      const auto dir = scratch_dir("exchange-users");
      server::Auth auth(dir / "users.json", std::string(kSecret), 3600, false);
      const std::string hash = server::Auth::hash_password("fuzz-password");
      for (const auto& u : kExchangeUsers) (void)auth.add_user_hashed(u.name, hash, u.role);
      std::ifstream in(dir / "users.json", std::ios::binary);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }();
    auto dir = scratch_dir("exchange");
    std::ofstream(dir / "users.json", std::ios::binary) << users;
    return dir;
  }
  std::filesystem::path dir_;
  server::Sequencer sequencer_;
  server::Auth auth_;
  server::Klines klines_;
  server::Service service_;
  server::Gateway gateway_;
};

}  // namespace qx::fuzz
