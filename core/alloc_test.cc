// Counts heap allocations on the engine's hot path: once SetLimits has reserved room for the
// orders, entering, matching, amending and cancelling orders allocates nothing, even as the
// number of resting orders and the day's trades reach new highs. The same workload without the
// reservation allocates (the control), so the counter is seen to count.
//
// Its own executable: it replaces the global operator new and delete.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/engine.h"
#include "core/test_support.h"

namespace {
bool g_counting = false;
std::size_t g_allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting) {
    g_allocations += 1;
    if (std::getenv("QX_ALLOC_TRAP") != nullptr) __builtin_trap();  // to find one in a debugger
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace qx::core {
namespace {

using testing::cny;
using testing::kBuy;
using testing::kOpen;
using testing::kSell;

class Session {
 public:
  explicit Session(const EngineLimits& limits) {
    effects_.reserve(4'096);
    apply(SetLimits{limits});
    apply(CreateInstrument{"IF2501", "CFFEX", testing::if_params(), PriceTicks(19'000)});
    std::uint32_t n = 0;
    for (const char* name : {"alice", "bob"}) {
      apply(CreateUser{name});
      apply(CreateAccount{UserId(n), name});
      apply(Deposit{AccountId(n), cny(1'000'000'000)});
      n += 1;
    }
    // Warm-up: each account holds a position, and the book has held every price level the
    // workload uses at once (its level storage grows a page of 64 prices at a time, for prices it
    // has never held together; no limit bounds the number of prices, so none reserves them).
    order(bob, kSell, 19'000, 1, TimeCondition::kGfd);
    order(alice, kBuy, 19'000, 1, TimeCondition::kGfd);
    const std::uint64_t first = next_id_;
    for (std::int64_t p = 18'900; p < 19'000; ++p) order(alice, kBuy, p, 1, TimeCondition::kGtc);
    for (std::uint64_t id = first; id < next_id_; ++id) {
      apply(CancelOrder{alice, OrderRef{OrderId(id), ClientOrderId(0)}});
    }
  }

  // 5,000 resting bids over 100 levels (five times the warm-up's), 2,000 lots sold into them in
  // IOC orders of 10, 500 amendments and 1,000 cancels.
  //
  // Bid k rests at 18,900 + k % 100 (50 per level); the sales take the top 40 levels (18,960 and
  // up); the amendments move the bids at 18,920-18,929 to 18,950 and the cancels take those at
  // 18,900-18,919, none of which traded: 2,000 bids are left.
  void workload() {
    const std::uint64_t first = next_id_;
    for (int k = 0; k < 5'000; ++k) order(alice, kBuy, 18'900 + k % 100, 1, TimeCondition::kGtc);
    for (int k = 0; k < 200; ++k) order(bob, kSell, 18'900, 10, TimeCondition::kIoc);
    for (std::uint64_t k = 0; k < 5'000; ++k) {
      const OrderRef ref{OrderId(first + k), ClientOrderId(0)};
      if (k % 100 >= 20 && k % 100 < 30) apply(AmendOrder{alice, ref, PriceTicks(18'950), Lots(1)});
      if (k % 100 < 20) apply(CancelOrder{alice, ref});
    }
  }

  std::size_t trades() const { return engine_.trades_today().size(); }
  std::size_t resting() const { return engine_.stats().orders_resting; }
  std::size_t rejects() const { return rejects_; }

  AccountId alice{0};
  AccountId bob{1};

 private:
  void order(AccountId a, Direction d, std::int64_t price, std::int64_t lots, TimeCondition tc) {
    apply(NewOrder{a, InstrumentId(0), ClientOrderId(0), d, kOpen, PriceType::kLimit,
                   PriceTicks(price), Lots(lots), tc, VolumeCondition::kAny});
  }
  void apply(const EventBody& body) {
    effects_.clear();
    seq_ += 1;
    engine_.apply(
        Event{EventHeader{Seq(seq_),
                          1'735'781'400'000'000'000 + 1'000 * static_cast<std::int64_t>(seq_), 0},
              body},
        effects_);
    for (const Effect& f : effects_) {
      if (f.kind == EffectKind::kOrderAccepted) next_id_ = raw(f.order) + 1;
      if (f.kind == EffectKind::kOrderRejected) rejects_ += 1;
    }
  }

  Engine engine_;
  EffectBuffer effects_;
  std::uint64_t seq_ = 0;
  std::uint64_t next_id_ = 1;
  std::size_t rejects_ = 0;
};

std::size_t allocations_in_workload(const EngineLimits& limits, Session** out = nullptr) {
  static Session* keep = nullptr;
  delete keep;
  keep = new Session(limits);
  g_allocations = 0;
  g_counting = true;
  keep->workload();
  g_counting = false;
  if (out != nullptr) *out = keep;
  return g_allocations;
}

TEST(HotPath, WithItsLimitsReservedTheEngineDoesNotAllocate) {
  Session* s = nullptr;
  EXPECT_EQ(allocations_in_workload(EngineLimits{0, 0, 10'000, 0, 0}, &s), 0u);
  // The workload did what it says: 2,000 lots traded, 5,000 - 2,000 - 1,000 bids rest.
  EXPECT_EQ(s->trades(), 1u + 2'000u);
  EXPECT_EQ(s->resting(), 2'000u);
  EXPECT_EQ(s->rejects(), 0u);
}

TEST(HotPath, WithoutTheReservationTheSameWorkAllocates) {
  const std::size_t n = allocations_in_workload(EngineLimits{});
  EXPECT_GT(n, 0u);
  std::printf("allocations without SetLimits: %zu\n", n);
}

}  // namespace
}  // namespace qx::core
