#include "server/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/assert.h"

namespace qx::server {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kFatal: return "fatal";
  }
  return "invalid";
}

std::string rfc3339_ms(std::int64_t unix_ms) {
  QX_ASSERT(unix_ms >= 0);
  const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  const bool converted = ::gmtime_r(&seconds, &utc) != nullptr;
  QX_ASSERT(converted);
  char text[40];
  const int n = std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                              utc.tm_min, utc.tm_sec, static_cast<int>(unix_ms % 1000));
  QX_ASSERT(n == 24);
  return std::string(text, static_cast<std::size_t>(n));
}

std::string format_log_line(LogLevel level, std::string_view event, const nlohmann::json& fields,
                            std::int64_t unix_ms) {
  QX_ASSERT(fields.is_object() || fields.is_null());
  nlohmann::ordered_json line;
  line["ts"] = rfc3339_ms(unix_ms);
  line["level"] = to_string(level);
  line["event"] = std::string(event);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      if (key != "ts" && key != "level" && key != "event") line[key] = value;
    }
  }
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void log_event(LogLevel level, std::string_view event, const nlohmann::json& fields) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string line = format_log_line(
      level, event, fields, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  line += '\n';
  static std::mutex mu;  // see the header: one lock for the one stderr
  std::lock_guard lock(mu);
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed or full: the log is lost, the server goes on
    done += static_cast<std::size_t>(n);
  }
}

bool LogThrottle::allow(std::int64_t now_ns, std::uint64_t& suppressed) {
  std::lock_guard lock(mu_);
  if (now_ns - window_start_ns_ >= 1'000'000'000 || now_ns < window_start_ns_) {
    window_start_ns_ = now_ns;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= lines_per_s_) {
    suppressed_ += 1;
    return false;
  }
  lines_in_window_ += 1;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace qx::server
