#include "server/limits.h"

#include <iterator>
#include <utility>

#include "core/assert.h"

namespace qx::server {

namespace {

constexpr std::uint64_t kNanoPerToken = 1'000'000'000;

}  // namespace

ConnectionSlot::ConnectionSlot(ConnectionSlot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), key_(std::move(other.key_)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    key_ = std::move(other.key_);
  }
  return *this;
}

ConnectionSlot::~ConnectionSlot() {
  release();
}

void ConnectionSlot::release() {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->release(key_);
}

const char* to_string(ConnectionRefusal refusal) {
  switch (refusal) {
    case ConnectionRefusal::kPerKey: return "max_connections_per_ip";
    case ConnectionRefusal::kTotal: return "max_connections";
  }
  return "unknown";
}

ConnectionLimiter::ConnectionLimiter(std::size_t per_key_max, std::size_t total_max)
    : per_key_max_(per_key_max), total_max_(total_max) {
  QX_ASSERT(per_key_max_ > 0);
  QX_ASSERT(total_max_ > 0);
}

std::optional<ConnectionSlot> ConnectionLimiter::try_acquire(const std::string& key,
                                                             ConnectionRefusal& why) {
  std::lock_guard lock(mu_);
  QX_ASSERT(total_ <= total_max_);
  if (total_ >= total_max_) {
    why = ConnectionRefusal::kTotal;
    return std::nullopt;
  }
  auto [it, added] = open_.try_emplace(key, 0);
  QX_ASSERT(added == (it->second == 0));
  if (it->second >= per_key_max_) {  // never for a new entry: per_key_max is at least 1
    why = ConnectionRefusal::kPerKey;
    return std::nullopt;
  }
  it->second += 1;
  total_ += 1;
  return ConnectionSlot(this, key);
}

std::optional<ConnectionSlot> ConnectionLimiter::try_acquire(const std::string& key) {
  ConnectionRefusal ignored{};
  return try_acquire(key, ignored);
}

void ConnectionLimiter::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  QX_ASSERT(it != open_.end() && it->second > 0);
  QX_ASSERT(total_ >= it->second);
  if (--it->second == 0) open_.erase(it);
  total_ -= 1;
}

std::size_t ConnectionLimiter::count(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  return it == open_.end() ? 0 : it->second;
}

std::size_t ConnectionLimiter::keys() const {
  std::lock_guard lock(mu_);
  return open_.size();
}

std::size_t ConnectionLimiter::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

RateLimiter::RateLimiter(RateLimit limit, std::size_t keys_max)
    : limit_(limit), keys_max_(keys_max), prune_at_(keys_max) {
  QX_ASSERT(limit_.per_s >= 1 && limit_.per_s <= kRateMax);
  QX_ASSERT(limit_.burst >= 1 && limit_.burst <= kRateMax);
  QX_ASSERT(keys_max_ > 0);
}

void RateLimiter::refill(Bucket& b, std::int64_t now_ns) const {
  const std::uint64_t full = limit_.burst * kNanoPerToken;
  QX_ASSERT(b.tokens_nano <= full);
  if (now_ns <= b.refilled_ns) return;
  const auto elapsed_ns = static_cast<std::uint64_t>(now_ns - b.refilled_ns);
  b.refilled_ns = now_ns;
  // elapsed_ns * per_s >= missing exactly when elapsed_ns >= ceil(missing / per_s); below that
  // the product is less than `missing`, so it cannot overflow.
  const std::uint64_t missing = full - b.tokens_nano;
  if (elapsed_ns >= (missing + limit_.per_s - 1) / limit_.per_s) {
    b.tokens_nano = full;
  } else {
    b.tokens_nano += elapsed_ns * limit_.per_s;
  }
  QX_ASSERT(b.tokens_nano <= full);
}

bool RateLimiter::try_take(std::string_view key, std::int64_t now_ns) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= prune_at_) prune_locked(now_ns);
    it = buckets_.emplace(std::string(key), Bucket{limit_.burst * kNanoPerToken, now_ns}).first;
  } else {
    refill(it->second, now_ns);
  }
  if (it->second.tokens_nano < kNanoPerToken) return false;
  it->second.tokens_nano -= kNanoPerToken;
  return true;
}

// Drops the buckets that have refilled completely: a new bucket would start in the same state.
// When most buckets are in use the next prune waits until the map has doubled, so pruning costs
// O(1) amortised per new key.
void RateLimiter::prune_locked(std::int64_t now_ns) {
  const std::uint64_t full = limit_.burst * kNanoPerToken;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now_ns);
    it = it->second.tokens_nano == full ? buckets_.erase(it) : std::next(it);
  }
  prune_at_ = buckets_.size() * 2 > keys_max_ ? buckets_.size() * 2 : keys_max_;
}

std::size_t RateLimiter::keys() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace qx::server
