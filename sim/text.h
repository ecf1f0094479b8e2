// Small text helpers shared by the market-data adapters: CSV splitting and decimal text straight
// to integers (no floating point anywhere). Errors are plain strings without a file position;
// the readers add file and line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "replay/result.h"

namespace qx::sim::text {

[[nodiscard]] inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// At most 40 characters of `text`, in quotes, for error messages.
[[nodiscard]] std::string quoted(std::string_view text);

// Drops one trailing '\r' (files written on Windows).
[[nodiscard]] inline std::string_view chomp(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Number of columns of a CSV line (commas + 1).
[[nodiscard]] std::size_t csv_columns(std::string_view line);

// Splits `line` at commas into exactly `n` fields, or returns false.
[[nodiscard]] bool split(std::string_view line, std::size_t n, std::string_view* fields);

// Unsigned decimal digits to an integer (overflow checked); false on anything else.
[[nodiscard]] bool digits_value(std::string_view text, std::int64_t& value);

// A decimal such as "61800.30" scaled by 10^decimals to an integer: with decimals 1 it is
// 618003. Digits beyond `decimals` must be zeros (nothing is rounded); a sign is refused unless
// `allow_negative`. Errors say what is wrong with the text.
[[nodiscard]] replay::Result<std::int64_t> parse_fixed(std::string_view text, int decimals,
                                                       bool allow_negative = false);

}  // namespace qx::sim::text
