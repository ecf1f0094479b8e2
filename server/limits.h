// Admission limits of the server, independent of the transport: connections per client address
// and in total (across every listener), and a request rate per authenticated user.
//
//   ConnectionLimiter conns(256, 10'000);          // per address, in total
//   ConnectionRefusal why{};
//   std::optional<ConnectionSlot> slot = conns.try_acquire("10.0.0.7", why);
//   if (!slot) { /* refuse (why says which limit): close the socket at once */ }
//   // ... the connection holds the slot; its destructor gives the place back.
//
//   RateLimiter rate({2000, 4000});                // 2000 requests/s per user, bursts of 4000
//   if (!rate.try_take("alice", now_ns)) { /* answer 429 */ }
//
// Design: the token bucket counts nano-tokens (10^-9 token) in integers, so a refill is exactly
// elapsed_ns * per_s with no rounding, and it takes the time as a parameter, so its tests are
// deterministic (no clock inside). A bucket refills at `per_s` tokens a second up to `burst`; a
// request takes one token. Both are at most kRateMax, so no product overflows 64 bits. Buckets that
// are full again are indistinguishable from absent ones, so when the map grows past `keys_max` they
// are dropped.
//
// Invariants: a connection count is never negative and an address's entry exists only while its
// count is positive; the total is the sum of the addresses' counts and never above total_max; a
// bucket never holds more than `burst` tokens.
//
// Thread safety: every method of both classes may be called from any thread (one mutex each).
// Caveats: a ConnectionSlot must not outlive its ConnectionLimiter; time passed to try_take must
// come from one monotonic clock (a time earlier than a bucket's last refill adds nothing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace qx::server {

class ConnectionLimiter;

// A counted connection of one address; move-only, releases its place when destroyed.
class ConnectionSlot {
 public:
  ConnectionSlot(ConnectionSlot&& other) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();

 private:
  friend class ConnectionLimiter;
  ConnectionSlot(ConnectionLimiter* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
  void release();
  ConnectionLimiter* owner_ = nullptr;
  std::string key_;
};

// Why try_acquire refused: the limit that was reached.
enum class ConnectionRefusal : std::uint8_t {
  kPerKey = 1,  // the address has per_key_max connections (max_connections_per_ip)
  kTotal = 2,   // the server has total_max connections (max_connections)
};
const char* to_string(ConnectionRefusal refusal);  // "max_connections_per_ip", "max_connections"

class ConnectionLimiter {
 public:
  // Both limits at least 1.
  explicit ConnectionLimiter(std::size_t per_key_max, std::size_t total_max = 10'000);
  // A slot when there are fewer than total_max open connections and `key` (a client address)
  // has fewer than per_key_max; otherwise nullopt, and `why` says which limit was reached (the
  // total first).
  [[nodiscard]] std::optional<ConnectionSlot> try_acquire(const std::string& key,
                                                          ConnectionRefusal& why);
  [[nodiscard]] std::optional<ConnectionSlot> try_acquire(const std::string& key);
  [[nodiscard]] std::size_t count(const std::string& key) const;
  [[nodiscard]] std::size_t keys() const;
  [[nodiscard]] std::size_t total() const;
  [[nodiscard]] std::size_t per_key_max() const { return per_key_max_; }
  [[nodiscard]] std::size_t total_max() const { return total_max_; }

 private:
  friend class ConnectionSlot;
  void release(const std::string& key);

  const std::size_t per_key_max_;
  const std::size_t total_max_;
  mutable std::mutex mu_;
  std::map<std::string, std::size_t, std::less<>> open_;
  std::size_t total_ = 0;
};

inline constexpr std::uint64_t kRateMax = 1'000'000'000;

struct RateLimit {
  std::uint64_t per_s = 2000;  // refill rate, tokens a second, 1..kRateMax
  std::uint64_t burst = 4000;  // bucket size, tokens, 1..kRateMax
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimit limit, std::size_t keys_max = 100'000);
  // Takes one token from `key`'s bucket (a new bucket starts full); false when it is empty.
  [[nodiscard]] bool try_take(std::string_view key, std::int64_t now_ns);
  [[nodiscard]] std::size_t keys() const;
  [[nodiscard]] const RateLimit& limit() const { return limit_; }

 private:
  struct Bucket {
    std::uint64_t tokens_nano = 0;  // 1 token = 10^9
    std::int64_t refilled_ns = 0;
  };
  void refill(Bucket& b, std::int64_t now_ns) const;
  void prune_locked(std::int64_t now_ns);

  const RateLimit limit_;
  const std::size_t keys_max_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::size_t prune_at_;  // the map size that triggers the next prune
};

}  // namespace qx::server
