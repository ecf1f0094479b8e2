#include "server/limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace qx::server {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

TEST(ConnectionLimiter, RefusesPastTheLimitPerKeyAndReleasesOnDestruction) {
  ConnectionLimiter limiter(2);
  auto a = limiter.try_acquire("10.0.0.1");
  auto b = limiter.try_acquire("10.0.0.1");
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(limiter.try_acquire("10.0.0.1"));
  EXPECT_EQ(limiter.count("10.0.0.1"), 2u);
  // Another address has its own count.
  auto c = limiter.try_acquire("10.0.0.2");
  EXPECT_TRUE(c);
  a.reset();
  EXPECT_EQ(limiter.count("10.0.0.1"), 1u);
  EXPECT_TRUE(limiter.try_acquire("10.0.0.1"));  // acquired and released at once
  EXPECT_EQ(limiter.count("10.0.0.1"), 1u);
  b.reset();
  c.reset();
  EXPECT_EQ(limiter.keys(), 0u);  // no entry stays behind for an address without connections
}

TEST(ConnectionLimiter, AMovedSlotReleasesOnce) {
  ConnectionLimiter limiter(1);
  auto a = limiter.try_acquire("::1");
  ASSERT_TRUE(a);
  {
    ConnectionSlot moved = std::move(*a);
    a.reset();  // the moved-from slot releases nothing
    EXPECT_EQ(limiter.count("::1"), 1u);
    EXPECT_FALSE(limiter.try_acquire("::1"));
  }
  EXPECT_EQ(limiter.count("::1"), 0u);
  auto b = limiter.try_acquire("::1");
  auto c = limiter.try_acquire("::2");
  ASSERT_TRUE(b && c);
  *b = std::move(*c);  // assignment releases the place b held
  EXPECT_EQ(limiter.count("::1"), 0u);
  EXPECT_EQ(limiter.count("::2"), 1u);
}

TEST(ConnectionLimiter, CountsStayExactUnderThreads) {
  ConnectionLimiter limiter(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto s = limiter.try_acquire("k");
        ASSERT_TRUE(s);  // at most 4 held at once
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(ConnectionLimiter, TheTotalCapHoldsAcrossAddressesAndSaysWhy) {
  ConnectionLimiter limiter(2, 3);
  auto a = limiter.try_acquire("10.0.0.1");
  auto b = limiter.try_acquire("10.0.0.2");
  ConnectionRefusal why{};
  auto c = limiter.try_acquire("10.0.0.1", why);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(limiter.total(), 3u);
  // A new address, under its own limit, is refused by the total.
  EXPECT_FALSE(limiter.try_acquire("10.0.0.3", why));
  EXPECT_EQ(why, ConnectionRefusal::kTotal);
  EXPECT_STREQ(to_string(why), "max_connections");
  EXPECT_EQ(limiter.keys(), 2u);  // the refused address left no entry
  EXPECT_EQ(limiter.count("10.0.0.3"), 0u);
  // One place back: the next connection of any address is admitted.
  b.reset();
  EXPECT_EQ(limiter.total(), 2u);
  auto d = limiter.try_acquire("10.0.0.3", why);
  EXPECT_TRUE(d);
  EXPECT_EQ(limiter.total(), 3u);
  a.reset();
  c.reset();
  d.reset();
  EXPECT_EQ(limiter.total(), 0u);
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(ConnectionLimiter, ThePerAddressLimitSaysWhy) {
  ConnectionLimiter limiter(1, 10);
  auto a = limiter.try_acquire("::1");
  ASSERT_TRUE(a);
  ConnectionRefusal why{};
  EXPECT_FALSE(limiter.try_acquire("::1", why));
  EXPECT_EQ(why, ConnectionRefusal::kPerKey);
  EXPECT_STREQ(to_string(why), "max_connections_per_ip");
  EXPECT_EQ(limiter.total(), 1u);  // a refusal takes no place
  EXPECT_EQ(limiter.total_max(), 10u);
}

TEST(ConnectionLimiter, TheTotalStaysExactUnderThreads) {
  ConnectionLimiter limiter(100, 6);
  std::atomic<std::size_t> admitted{0};
  std::atomic<std::size_t> peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::optional<ConnectionSlot>> held;
      for (int i = 0; i < 3000; ++i) {
        held.push_back(limiter.try_acquire("k" + std::to_string((t + i) % 3)));
        if (held.back()) ++admitted;
        std::size_t now = limiter.total();
        for (std::size_t p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
        }
        if (held.size() == 2) held.clear();  // hold up to two at a time
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 6u);
  EXPECT_GT(admitted.load(), 0u);
  EXPECT_EQ(limiter.total(), 0u);
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(RateLimiter, ANewKeyHasAFullBurstThenRefillsAtTheRate) {
  RateLimiter rate({10, 5});
  const std::int64_t t0 = 100 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rate.try_take("alice", t0)) << i;
  EXPECT_FALSE(rate.try_take("alice", t0));
  EXPECT_TRUE(rate.try_take("bob", t0));  // buckets are per key
  // 10 tokens a second: one token every 100 ms, not before.
  EXPECT_FALSE(rate.try_take("alice", t0 + 99'999'999));
  EXPECT_TRUE(rate.try_take("alice", t0 + 100'000'000));
  EXPECT_FALSE(rate.try_take("alice", t0 + 100'000'000));
  // A long idle time refills to the burst, never beyond.
  const std::int64_t t1 = t0 + 3600 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rate.try_take("alice", t1)) << i;
  EXPECT_FALSE(rate.try_take("alice", t1));
}

TEST(RateLimiter, FractionsOfATokenAccumulateExactly) {
  RateLimiter rate({3, 1});  // one token every 333,333,333.3 ns
  std::int64_t t = kSecond;
  ASSERT_TRUE(rate.try_take("k", t));
  // Ten steps of 33,333,333 ns are 333,333,330 ns: 0.99999999 of a token, not enough.
  for (int i = 0; i < 10; ++i) {
    t += 33'333'333;
    EXPECT_FALSE(rate.try_take("k", t)) << i;
  }
  t += 4;  // 333,333,334 ns in all: 1.000000002 tokens
  EXPECT_TRUE(rate.try_take("k", t));
}

TEST(RateLimiter, TimeGoingBackwardsAddsNothing) {
  RateLimiter rate({1, 1});
  ASSERT_TRUE(rate.try_take("k", 10 * kSecond));
  EXPECT_FALSE(rate.try_take("k", 5 * kSecond));
  EXPECT_FALSE(rate.try_take("k", 10 * kSecond + kSecond - 1));
  EXPECT_TRUE(rate.try_take("k", 11 * kSecond));
}

TEST(RateLimiter, LargestRatesDoNotOverflow) {
  RateLimiter rate({kRateMax, kRateMax});
  EXPECT_TRUE(rate.try_take("k", 0));
  EXPECT_TRUE(rate.try_take("k", std::int64_t{1} << 62));  // ~146 years later
  RateLimiter slow({1, kRateMax});
  EXPECT_TRUE(slow.try_take("k", 0));
  EXPECT_TRUE(slow.try_take("k", std::int64_t{1} << 62));
}

TEST(RateLimiter, FullBucketsArePrunedPastKeysMax) {
  RateLimiter rate({1, 2}, 4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(rate.try_take("k" + std::to_string(i), 0));
  EXPECT_EQ(rate.keys(), 4u);
  // Two seconds later every bucket is full again: the fifth key prunes them all.
  ASSERT_TRUE(rate.try_take("k4", 2 * kSecond));
  EXPECT_EQ(rate.keys(), 1u);
  // A pruned key starts again with a full burst, as it would have had anyway.
  EXPECT_TRUE(rate.try_take("k0", 2 * kSecond));
  EXPECT_TRUE(rate.try_take("k0", 2 * kSecond));
  EXPECT_FALSE(rate.try_take("k0", 2 * kSecond));
}

TEST(RateLimiter, BusyBucketsSurviveAPrune) {
  RateLimiter rate({1, 2}, 2);
  ASSERT_TRUE(rate.try_take("a", 0));
  ASSERT_TRUE(rate.try_take("a", 0));  // empty
  ASSERT_TRUE(rate.try_take("b", 0));
  ASSERT_TRUE(rate.try_take("c", 0));  // prunes: a and b are not full
  EXPECT_EQ(rate.keys(), 3u);
  EXPECT_FALSE(rate.try_take("a", 0));  // a kept its empty bucket
}

TEST(RateLimiter, ThreadsShareOneBucketExactly) {
  RateLimiter rate({1, 1000});
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) taken += rate.try_take("shared", 0) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), 1000);  // exactly the burst, no token lost or taken twice
}

}  // namespace
}  // namespace qx::server
