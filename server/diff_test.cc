// The WebSocket DIFF decoder (server/diff.h): each message's shape rules, without a session.
#include "server/diff.h"

#include <gtest/gtest.h>

#include <string>

namespace qx::server {
namespace {

// The message as kind T (a copy: the decoded message is a temporary), or an empty T after a
// failed expectation.
template <class T>
T as(const DiffMessage& m) {
  EXPECT_TRUE(std::holds_alternative<T>(m)) << "message kind " << m.index();
  const T* p = std::get_if<T>(&m);
  return p != nullptr ? *p : T{};
}

TEST(Diff, SubscribeQuoteDropsTheExchangeAndSkipsBadNames) {
  const auto& q = as<DiffSubscribeQuote>(decode_diff_message(
      R"({"aid": "subscribe_quote", "ins_list": "CFFEX.IF2501,bad name,SHFE.cu2501,,au2506"})"));
  EXPECT_EQ(q.codes, (std::vector<std::string>{"IF2501", "cu2501", "au2506"}));
  std::string many = R"({"aid": "subscribe_quote", "ins_list": ")";
  for (int i = 0; i < 150; ++i) many += "c" + std::to_string(i) + ",";
  many += "\"}";
  EXPECT_EQ(as<DiffSubscribeQuote>(decode_diff_message(many)).codes.size(), kDiffQuotesMax);
  const auto& r =
      as<DiffRefused>(decode_diff_message(R"({"aid": "subscribe_quote", "ins_list": 7})"));
  EXPECT_EQ(r.code, 400u);
  EXPECT_TRUE(r.needs_login);
}

TEST(Diff, SetChartChecksDurationWidthAndId) {
  const auto& c = as<DiffSetChart>(decode_diff_message(
      R"({"aid": "set_chart", "chart_id": "c1", "ins_list": "SHFE.cu2501", "duration": 300000000000, "view_width": 50})"));
  EXPECT_EQ(c.id, "c1");
  EXPECT_EQ(c.code, "cu2501");
  EXPECT_EQ(c.period, Period::k5m);
  EXPECT_EQ(c.width, 50u);
  const auto& remove = as<DiffSetChart>(
      decode_diff_message(R"({"aid": "set_chart", "chart_id": "c1", "ins_list": ""})"));
  EXPECT_FALSE(remove.code.has_value());
  for (
      const char* bad :
      {R"({"aid": "set_chart", "chart_id": "c1", "ins_list": "cu2501", "duration": 61000000000})",
       R"({"aid": "set_chart", "chart_id": "c1", "ins_list": "cu2501", "duration": 60000000000, "view_width": 2001})",
       R"({"aid": "set_chart", "chart_id": 1, "ins_list": "cu2501", "duration": 60000000000})"}) {
    EXPECT_EQ(as<DiffRefused>(decode_diff_message(bad)).code, 400u) << bad;
  }
  const std::string long_id(kDiffChartIdBytesMax + 1, 'x');
  EXPECT_EQ(as<DiffRefused>(decode_diff_message(R"({"aid": "set_chart", "chart_id": ")" + long_id +
                                                R"(", "ins_list": ""})"))
                .code,
            400u);
}

TEST(Diff, OrdersAreRenamedToTheRestFields) {
  const auto& o = as<DiffOrder>(decode_diff_message(
      R"({"aid": "insert_order", "account_id": "alice-01", "instrument_id": "IF2501", "limit_price": "3700.0", "price_type": "ANY", "order_id": 5, "user_id": "x"})"));
  EXPECT_EQ(o.target, "/api/order/submit");
  EXPECT_EQ(o.body, (nlohmann::json{{"account", "alice-01"},
                                    {"instrument", "IF2501"},
                                    {"price", "3700.0"},
                                    {"price_type", "MARKET"},
                                    {"client_order_id", 5}}));
  const auto& c = as<DiffOrder>(
      decode_diff_message(R"({"aid": "cancel_order", "account_id": "alice-01", "order_id": 5})"));
  EXPECT_EQ(c.target, "/api/order/cancel");
  EXPECT_EQ(c.body, (nlohmann::json{{"account", "alice-01"}, {"order_id", 5}}));
}

TEST(Diff, BadMessagesAreRefusedWithAReason) {
  for (const char* bad : {"", "not json", "[1]", R"({"aid": 1})", R"({"x": "ping"})",
                          "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"}) {
    const auto& r = as<DiffRefused>(decode_diff_message(bad));
    EXPECT_EQ(r.code, 400u) << bad;
    EXPECT_FALSE(r.needs_login) << bad;
  }
  const auto& unknown = as<DiffRefused>(decode_diff_message(R"({"aid": "launch"})"));
  EXPECT_EQ(unknown.message, "unknown aid 'launch'");
  EXPECT_TRUE(unknown.needs_login);
  EXPECT_TRUE(std::holds_alternative<DiffPing>(decode_diff_message(R"({"aid": "ping"})")));
  EXPECT_TRUE(std::holds_alternative<DiffPeek>(decode_diff_message(R"({"aid": "peek_message"})")));
  const auto& l = as<DiffLogin>(
      decode_diff_message(R"({"aid": "req_login", "user_name": "alice", "password": 3})"));
  EXPECT_EQ(l.body, (nlohmann::json{{"username", "alice"}, {"password", 3}}));
}

}  // namespace
}  // namespace qx::server
