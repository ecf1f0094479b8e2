// CRC32C (Castagnoli), the checksum of every journal record.
//
// Written here because Debian 12 packages no CRC32C library; it is a few lines around the SSE4.2
// `crc32` instruction, with a table-driven fallback for CPUs without it (chosen once at start-up).
// Both paths compute the same standard CRC32C (reflected, init and final xor 0xFFFFFFFF): the
// check value of "123456789" is 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qx::replay {

// Continues a CRC32C over more bytes: crc32c(b, crc32c(a)) == crc32c(a ++ b).
[[nodiscard]] std::uint32_t crc32c(std::span<const std::uint8_t> bytes, std::uint32_t crc = 0);

// The portable table-driven implementation (for tests comparing the two paths).
[[nodiscard]] std::uint32_t crc32c_portable(std::span<const std::uint8_t> bytes,
                                            std::uint32_t crc = 0);

}  // namespace qx::replay
