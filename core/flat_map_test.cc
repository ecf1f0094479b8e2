// FlatMap against std::map as a model, through many inserts and erases (deletion by backward
// shift is the delicate part).
#include "core/flat_map.h"

#include <gtest/gtest.h>

#include <map>

namespace qx::core {
namespace {

TEST(FlatMap, AgreesWithOrderedMapUnderChurn) {
  FlatMap<std::uint32_t> m;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint32_t> model;
  std::uint64_t x = 12345;
  for (std::uint32_t i = 0; i < 200'000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::uint64_t a = (x >> 33) % 5000;
    std::uint64_t b = (x >> 20) % 3;
    if ((x >> 60) < 9) {
      bool fresh = model.emplace(std::pair(a, b), i).second;
      EXPECT_EQ(m.insert(a, b, i), fresh);
    } else {
      EXPECT_EQ(m.erase(a, b), model.erase(std::pair(a, b)) == 1);
    }
  }
  EXPECT_EQ(m.size(), model.size());
  for (const auto& [k, v] : model) EXPECT_EQ(m.find(k.first, k.second), v);
  for (std::uint64_t a = 0; a < 5000; ++a) {
    for (std::uint64_t b = 0; b < 3; ++b) {
      EXPECT_EQ(m.find(a, b).has_value(), model.count(std::pair(a, b)) == 1);
    }
  }
}

}  // namespace
}  // namespace qx::core
