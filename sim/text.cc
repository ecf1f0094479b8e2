#include "sim/text.h"

#include <algorithm>
#include <limits>

namespace qx::sim::text {

namespace {
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr int kMaxDecimals = 18;
}  // namespace

std::string quoted(std::string_view text) {
  constexpr std::size_t kShown = 40;
  std::string s = "'";
  s.append(text.substr(0, kShown));
  if (text.size() > kShown) s += "...";
  s += "'";
  return s;
}

std::size_t csv_columns(std::string_view line) {
  return static_cast<std::size_t>(std::count(line.begin(), line.end(), ',')) + 1;
}

bool split(std::string_view line, std::size_t n, std::string_view* fields) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t comma = line.find(',', start);
    bool last = i + 1 == n;
    if (last != (comma == std::string_view::npos)) return false;
    fields[i] = line.substr(start, last ? std::string_view::npos : comma - start);
    start = comma + 1;
  }
  return true;
}

bool digits_value(std::string_view text, std::int64_t& value) {
  if (text.empty()) return false;
  std::int64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    std::int64_t d = c - '0';
    if (v > (kInt64Max - d) / 10) return false;
    v = v * 10 + d;
  }
  value = v;
  return true;
}

replay::Result<std::int64_t> parse_fixed(std::string_view text, int decimals, bool allow_negative) {
  if (decimals < 0 || decimals > kMaxDecimals) {
    return replay::Error{"decimals " + std::to_string(decimals) + " out of range 0..18"};
  }
  bool negative = !text.empty() && text.front() == '-';
  if (negative && !allow_negative) return replay::Error{quoted(text) + " must not be negative"};
  std::string_view body = negative ? text.substr(1) : text;
  std::size_t dot = body.find('.');
  std::string_view whole = body.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : body.substr(dot + 1);
  std::int64_t v = 0;
  if (!digits_value(whole, v) || (dot != std::string_view::npos && frac.empty()) ||
      !std::all_of(frac.begin(), frac.end(), is_digit)) {
    return replay::Error{quoted(text) + " is not a decimal number"};
  }
  for (std::size_t i = static_cast<std::size_t>(decimals); i < frac.size(); ++i) {
    if (frac[i] != '0') {
      return replay::Error{quoted(text) + " has more than " + std::to_string(decimals) +
                           " decimals"};
    }
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(decimals); ++i) {
    std::int64_t d = i < frac.size() ? frac[i] - '0' : 0;
    if (v > (kInt64Max - d) / 10) return replay::Error{quoted(text) + " is too large"};
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

}  // namespace qx::sim::text
