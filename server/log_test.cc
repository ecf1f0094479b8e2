#include "server/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace qx::server {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

TEST(Log, Rfc3339InUtcWithMilliseconds) {
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(1'723'120'496'789), "2024-08-08T12:34:56.789Z");
  EXPECT_EQ(rfc3339_ms(951'868'799'999), "2000-02-29T23:59:59.999Z");  // a leap day
  EXPECT_EQ(rfc3339_ms(951'868'800'000), "2000-03-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(5), "1970-01-01T00:00:00.005Z");  // milliseconds keep their zeros
}

TEST(Log, ALineIsOneJsonObjectWithTsLevelAndEventFirst) {
  const std::string line = format_log_line(LogLevel::kWarn, "connection_refused",
                                           {{"ip", "10.0.0.7"}, {"limit", 4}}, 1'723'120'496'789);
  EXPECT_EQ(line, R"({"ts":"2024-08-08T12:34:56.789Z","level":"warn","event":"connection_refused",)"
                  R"("ip":"10.0.0.7","limit":4})");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["event"], "connection_refused");
}

TEST(Log, FieldsCannotShadowTheFixedKeys) {
  const auto j = nlohmann::json::parse(
      format_log_line(LogLevel::kInfo, "start",
                      {{"event", "forged"}, {"level", "debug"}, {"ts", "x"}, {"a", 1}}, 0));
  EXPECT_EQ(
      j, (nlohmann::json{
             {"ts", "1970-01-01T00:00:00.000Z"}, {"level", "info"}, {"event", "start"}, {"a", 1}}));
}

TEST(Log, TextThatIsNotUtf8IsReplacedNotThrown) {
  const std::string line =
      format_log_line(LogLevel::kError, "http_5xx", {{"target", "/api/\xff\xfe"}}, 0);
  const auto j = nlohmann::json::parse(line);  // valid JSON, valid UTF-8
  EXPECT_EQ(j["target"], "/api/\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Log, NoFieldsAndEveryLevel) {
  EXPECT_EQ(format_log_line(LogLevel::kFatal, "fatal", nullptr, 0),
            R"({"ts":"1970-01-01T00:00:00.000Z","level":"fatal","event":"fatal"})");
  EXPECT_STREQ(to_string(LogLevel::kInfo), "info");
  EXPECT_STREQ(to_string(LogLevel::kWarn), "warn");
  EXPECT_STREQ(to_string(LogLevel::kError), "error");
}

TEST(LogThrottle, AllowsNPerSecondAndReportsWhatItSuppressed) {
  LogThrottle throttle(2);
  std::uint64_t suppressed = 99;
  const std::int64_t t0 = 1000 * kSecond;
  ASSERT_TRUE(throttle.allow(t0, suppressed));
  EXPECT_EQ(suppressed, 0u);
  ASSERT_TRUE(throttle.allow(t0 + 1, suppressed));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(throttle.allow(t0 + 2 + i, suppressed));
  EXPECT_FALSE(throttle.allow(t0 + kSecond - 1, suppressed));  // still the same window
  ASSERT_TRUE(throttle.allow(t0 + kSecond, suppressed));       // a new window
  EXPECT_EQ(suppressed, 6u);
  ASSERT_TRUE(throttle.allow(t0 + kSecond + 1, suppressed));
  EXPECT_EQ(suppressed, 0u);  // reported once
}

}  // namespace
}  // namespace qx::server
