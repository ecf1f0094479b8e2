// Structured logs of `qx serve`: one JSON object per line on stderr, for log shippers.
//
//   log_event(LogLevel::kInfo, "listening", {{"address", "127.0.0.1"}, {"port", 8080}});
//   // {"ts":"2024-08-08T12:34:56.789Z","level":"info","event":"listening","address":...}
//
//   LogThrottle refusals(5);                       // at most 5 lines a second
//   if (std::uint64_t dropped = 0; refusals.allow(now_ns, dropped)) {
//     log_event(LogLevel::kWarn, "connection_refused", {{"ip", ip}, {"suppressed", dropped}});
//   }
//
// Every line starts with "ts" (RFC 3339, UTC, milliseconds), "level" (info, warn, error, fatal)
// and "event" (a stable snake_case name), then the event's fields. Fields named ts, level or
// event are dropped rather than allowed to shadow those. Text that is not UTF-8 (a request path
// echoed into a field) becomes U+FFFD instead of throwing.
//
// Human-readable progress ("listening on ...", "recovered ...") stays on stdout; stderr carries
// only these lines, so a process supervisor can parse all of it.
//
// Design: stderr is one process-wide resource, so the lock that keeps lines whole is one
// process-wide lock too (inside log.cc); each line goes out in one write(2), unbuffered, so a
// crash right after an event still leaves the event in the log. Events that a client can cause at
// will (refused connections, failed handshakes, 5xx replies) go through a LogThrottle so that a
// flood of them cannot turn into a flood of log lines; the next line reports how many were
// suppressed.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace qx::server {

enum class LogLevel : std::uint8_t { kInfo = 1, kWarn = 2, kError = 3, kFatal = 4 };
const char* to_string(LogLevel level);

// "1970-01-01T00:00:00.000Z" for 0; unix_ms must not be negative.
std::string rfc3339_ms(std::int64_t unix_ms);

// One log line without its newline; `fields` must be a JSON object (or null for none).
std::string format_log_line(LogLevel level, std::string_view event, const nlohmann::json& fields,
                            std::int64_t unix_ms);

// Formats with the current time and writes the line and a newline to stderr. Thread-safe.
void log_event(LogLevel level, std::string_view event,
               const nlohmann::json& fields = nlohmann::json::object());

// Allows at most `lines_per_s` lines in each one-second window; counts what it refuses.
// Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(std::uint32_t lines_per_s) : lines_per_s_(lines_per_s) {}
  // True when a line may be written now; `suppressed` is then set to the number of lines refused
  // since the last one allowed.
  [[nodiscard]] bool allow(std::int64_t now_ns, std::uint64_t& suppressed);

 private:
  const std::uint32_t lines_per_s_;
  std::mutex mu_;
  std::int64_t window_start_ns_ = 0;
  std::uint32_t lines_in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

// Nanoseconds of the steady clock, for LogThrottle::allow.
std::int64_t steady_now_ns();

}  // namespace qx::server
