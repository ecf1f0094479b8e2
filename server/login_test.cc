#include "server/login.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <string>

namespace qx::server {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

TEST(LoginGuard, FreeFailuresThenDoublingBackOffUpToTheMaximum) {
  LoginGuard g({.free_failures = 2, .first_backoff_ns = kSecond, .max_backoff_ns = 5 * kSecond});
  const std::int64_t t = 100 * kSecond;
  g.failed("user:bob", t, 2);
  g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), 0);  // two free failures
  g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), kSecond);
  g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), 2 * kSecond);
  g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), 4 * kSecond);
  g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), 5 * kSecond);  // capped
  for (int i = 0; i < 100; ++i) g.failed("user:bob", t, 2);
  EXPECT_EQ(g.wait_ns("user:bob", t), 5 * kSecond);  // no overflow however many
  EXPECT_EQ(g.wait_ns("user:bob", t + 5 * kSecond), 0);
  EXPECT_EQ(g.wait_ns("user:alice", t), 0);  // keys are separate
}

TEST(LoginGuard, SuccessClearsTheKey) {
  LoginGuard g({.free_failures = 1});
  g.failed("user:bob", 0, 1);
  g.failed("user:bob", 0, 1);
  EXPECT_GT(g.wait_ns("user:bob", 0), 0);
  g.succeeded("user:bob");
  EXPECT_EQ(g.wait_ns("user:bob", 0), 0);
  EXPECT_EQ(g.keys(), 0u);
}

TEST(LoginGuard, AFullMapTreatsNewKeysAsLockedUntilOldOnesExpire) {
  LoginGuard g({.free_failures = 1,
                .first_backoff_ns = kSecond,
                .max_backoff_ns = 2 * kSecond,
                .keys_max = 3});
  for (int i = 0; i < 3; ++i) g.failed("k" + std::to_string(i), 0, 1);
  EXPECT_EQ(g.keys(), 3u);
  // A fresh name cannot buy free guesses while the map is full.
  EXPECT_EQ(g.wait_ns("fresh", 0), kSecond);
  g.failed("fresh", 0, 1);
  EXPECT_EQ(g.keys(), 3u);
  // Long after, the old entries are pruned and the new key is tracked.
  g.failed("fresh", 10 * kSecond, 1);
  EXPECT_EQ(g.keys(), 1u);
}

class LoginGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "qx-login-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  LoginOutcome login(LoginGate& gate, const std::string& user, const std::string& pw) {
    std::promise<LoginOutcome> p;
    gate.login(user, pw, "10.0.0.1", [&](LoginOutcome o) { p.set_value(std::move(o)); });
    return p.get_future().get();
  }

  std::filesystem::path dir_;
  Metrics metrics_;
};

TEST_F(LoginGateTest, RefusesBadNamesLocksAfterFailuresAndCountsThem) {
  Auth auth(dir_ / "users.json", std::string(40, 's'), 60, false);
  ASSERT_TRUE(auth.add_user("bob", "bob-password", Role::kTrader));
  LoginGate gate(auth, metrics_, {.free_failures = 2});
  EXPECT_EQ(login(gate, "bob\0x", "bob-password").error, LoginError::kNone);  // C string: "bob"
  EXPECT_EQ(login(gate, std::string("bob\0x", 5), "bob-password").error, LoginError::kBadRequest);
  EXPECT_EQ(login(gate, "bob ", "bob-password").error, LoginError::kBadRequest);
  EXPECT_EQ(login(gate, "bob", "").error, LoginError::kBadRequest);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(login(gate, "bob", "wrong").error, LoginError::kBadCredentials);
  }
  const LoginOutcome locked = login(gate, "bob", "bob-password");
  EXPECT_EQ(locked.error, LoginError::kLocked);
  EXPECT_GE(locked.retry_after_s, 1);
  EXPECT_NE(metrics_.text().find(R"(qx_login_failures_total{reason="bad_credentials"} 3)"),
            std::string::npos)
      << metrics_.text();
}

TEST_F(LoginGateTest, TheQueueOfPasswordChecksIsBounded) {
  Auth auth(dir_ / "users.json", std::string(40, 's'), 60, false);
  LoginGate gate(auth, metrics_, {.pending_max = 2});
  std::promise<void> release;
  auto gate_open = release.get_future().share();
  std::atomic<int> ran{0};
  EXPECT_TRUE(gate.run_slow([&] {
    gate_open.wait();
    ++ran;
  }));
  EXPECT_TRUE(gate.run_slow([&] {
    gate_open.wait();
    ++ran;
  }));
  EXPECT_FALSE(gate.run_slow([&] { ++ran; }));  // full: refused, never queued
  std::promise<LoginOutcome> p;
  gate.login("bob", "pw", "", [&](LoginOutcome o) { p.set_value(std::move(o)); });
  EXPECT_EQ(p.get_future().get().error, LoginError::kBusy);
  release.set_value();
  gate.join();
  EXPECT_EQ(ran.load(), 2);
}

TEST(AuthNames, TheDocumentedCharacterSet) {
  for (const char* ok : {"alice", "alice-01", "a", "A.b_c-9", "0x"}) EXPECT_TRUE(valid_name(ok));
  for (std::string bad : {std::string("alice\0", 6), std::string("alice "), std::string(" alice"),
                          std::string("-alice"), std::string("\xd0\xb0lice"), std::string(""),
                          std::string(32, 'a'), std::string("a/b"), std::string("a\tb")}) {
    EXPECT_FALSE(valid_name(bad)) << bad;
  }
}

TEST_F(LoginGateTest, TokensNameTheUserByIdAndDieOnRevocation) {
  Auth auth(dir_ / "users.json", std::string(40, 's'), 60, false);
  ASSERT_TRUE(auth.add_user("bob", "bob-password", Role::kTrader));
  ASSERT_TRUE(auth.add_user("carol", "carol-password", Role::kViewer));
  LoginResult a = auth.login("bob", "bob-password");
  LoginResult b = auth.login("bob", "bob-password");
  ASSERT_EQ(a.status, LoginStatus::kOk);
  auto who = auth.verify(a.token);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->user, "bob");
  EXPECT_NE(who->uid, auth.verify(auth.login("carol", "carol-password").token)->uid);
  const std::uint64_t rev = auth.revision();
  auth.logout(*who);
  EXPECT_FALSE(auth.verify(a.token));  // this token only
  EXPECT_TRUE(auth.verify(b.token));
  EXPECT_GT(auth.revision(), rev);
  ASSERT_TRUE(auth.set_disabled("bob", true));
  EXPECT_FALSE(auth.verify(b.token));
  EXPECT_EQ(auth.login("bob", "bob-password").status, LoginStatus::kDisabled);
  ASSERT_TRUE(auth.set_disabled("bob", false));
  LoginResult c = auth.login("bob", "bob-password");
  ASSERT_TRUE(auth.set_password_hashed("bob", Auth::hash_password("new-password")));
  EXPECT_FALSE(auth.verify(c.token));
  // A restart keeps the revocations (the users file holds them).
  Auth again(dir_ / "users.json", std::string(40, 's'), 60, false);
  EXPECT_FALSE(again.verify(a.token));
  EXPECT_FALSE(again.verify(c.token));
  EXPECT_EQ(again.login("bob", "new-password").status, LoginStatus::kOk);
}

TEST_F(LoginGateTest, DemoUsersOnlyUnderDemo) {
  {
    Auth demo(dir_ / "users.json", std::string(40, 's'), 60, true);
    ASSERT_TRUE(demo.add_user_hashed("alice", Auth::hash_password("alice-demo-pw"), Role::kTrader,
                                     /*demo=*/true));
    EXPECT_EQ(demo.login("alice", "alice-demo-pw").status, LoginStatus::kOk);
  }
  Auth prod(dir_ / "users.json", std::string(40, 's'), 60, false);
  EXPECT_EQ(prod.login("alice", "alice-demo-pw").status, LoginStatus::kDemoUser);
  EXPECT_EQ(prod.login("alice", "wrong").status, LoginStatus::kBadCredentials);
}

}  // namespace
}  // namespace qx::server
