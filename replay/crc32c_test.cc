// CRC32C: the standard check value, incremental use, and hardware == portable on random data.
#include "replay/crc32c.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace qx::replay {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(bytes_of("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(bytes_of("")), 0u);
}

TEST(Crc32c, IncrementalEqualsWholeAndPathsAgree) {
  std::vector<std::uint8_t> data(1'000);
  std::uint32_t x = 1;
  for (auto& b : data) {
    x = x * 1'103'515'245u + 12'345u;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  for (std::size_t cut : {0u, 1u, 7u, 8u, 333u, 1'000u}) {
    std::span<const std::uint8_t> all(data);
    EXPECT_EQ(crc32c(all.subspan(cut), crc32c(all.first(cut))), crc32c(all));
    EXPECT_EQ(crc32c(all.first(cut)), crc32c_portable(all.first(cut)));
  }
}

}  // namespace
}  // namespace qx::replay
