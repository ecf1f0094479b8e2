// HandleIndex against std::map as a model through many inserts and erases (backward-shift
// deletion and growth are the delicate parts), with a deliberately weak hash so that probe runs
// are long; and Pool's handle reuse and reference stability.
#include "core/handle_index.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "core/hash.h"
#include "core/pool.h"

namespace qx::core {
namespace {

// Handles index into `keys` (never reused); a handle's key is keys[handle].
struct Table {
  HandleIndex index;
  std::vector<std::uint64_t> keys;
  bool weak = false;

  std::uint64_t key_hash(std::uint64_t k) const {
    return weak ? (k % 7) << 58 : mix64(k);  // weak: seven homes, long runs
  }
  std::optional<std::uint32_t> find(std::uint64_t k) const {
    return index.find(key_hash(k), [&](std::uint32_t h) { return keys[h] == k; });
  }
  bool insert(std::uint64_t k, std::uint32_t& h) {
    h = static_cast<std::uint32_t>(keys.size());
    keys.push_back(k);
    bool ok = index.insert(key_hash(k), h, [&](std::uint32_t x) { return keys[x] == k; });
    if (!ok) keys.pop_back();
    return ok;
  }
  bool erase(std::uint64_t k) {
    auto h = find(k);
    if (!h) return false;
    EXPECT_TRUE(index.erase(key_hash(k), [&](std::uint32_t x) { return x == *h; }));
    return true;
  }
};

TEST(HandleIndex, AgreesWithOrderedMapUnderChurn) {
  for (bool weak : {false, true}) {
    Table t;
    t.weak = weak;
    std::map<std::uint64_t, std::uint32_t> model;
    std::uint64_t x = 12345;
    int steps = weak ? 20'000 : 200'000;
    for (int i = 0; i < steps; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      std::uint64_t k = (x >> 33) % (weak ? 700 : 5000);
      if ((x >> 60) < 9) {
        std::uint32_t h = 0;
        bool fresh = model.count(k) == 0;
        ASSERT_EQ(t.insert(k, h), fresh);
        if (fresh) model[k] = h;
      } else {
        ASSERT_EQ(t.erase(k), model.erase(k) == 1);
      }
    }
    ASSERT_EQ(t.index.size(), model.size());
    for (const auto& [k, h] : model) EXPECT_EQ(t.find(k), h);
    for (std::uint64_t k = 0; k < 5000; ++k) EXPECT_EQ(t.find(k).has_value(), model.count(k) == 1);
  }
}

TEST(Pool, ReusesReleasedHandlesAndKeepsRecordsInPlace) {
  struct Rec {
    std::uint64_t v = 0;
  };
  Pool<Rec> pool;
  std::vector<std::uint32_t> hs;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    hs.push_back(pool.allocate());
    EXPECT_EQ(hs.back(), i);
    pool[hs.back()].v = i + 1;
  }
  Rec* first = &pool[0];
  EXPECT_EQ(pool.live(), 3000u);
  pool.release(17);
  pool.release(2999);
  EXPECT_EQ(pool[17].v, 0u);  // reset on release
  EXPECT_EQ(pool.allocate(), 2999u);
  EXPECT_EQ(pool.allocate(), 17u);
  EXPECT_EQ(pool.allocate(), 3000u);
  EXPECT_EQ(&pool[0], first);  // growth never moves records
  EXPECT_EQ(pool[1500].v, 1501u);
  EXPECT_EQ(pool.extent(), 3001u);
}

}  // namespace
}  // namespace qx::core
