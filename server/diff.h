// The messages a WebSocket DIFF client sends (/ws/diff, server/http.cc), decoded without any
// session state into what the session should do. The session keeps the state (who is logged in,
// its quotes and charts) and the REST calls; this file only reads JSON text, so that every rule
// about a message's shape lives in one place and can be fuzzed alone (fuzz/diff.cc).
//
//   DiffMessage m = decode_diff_message(R"({"aid": "subscribe_quote", "ins_list": "SHFE.cu"})");
//   if (auto* s = std::get_if<DiffSubscribeQuote>(&m)) quotes = s->codes;   // {"cu"}
//
// Messages: {"aid": "ping"}; "req_login" {"user_name", "password"}; "peek_message";
// "subscribe_quote" {"ins_list": "EX.CODE,CODE,..."} (the exchange prefix is dropped, names that
// are not valid instrument names are skipped, at most 100 kept); "set_chart" {"chart_id" (at most
// 64 bytes), "ins_list" (one code; empty removes the chart), "duration" (60e9, 300e9 or 86400e9
// ns), "view_width" (1..2000, default 200)}; "insert_order" / "cancel_order" with the DIFF field
// names, renamed to the REST API's (the REST route then checks every field). Anything else is a
// DiffRefused with the notify code and message the client is sent.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/klines.h"

namespace qx::server {

struct DiffPing {};
struct DiffLogin {
  nlohmann::json body;  // for POST /api/auth/login: {"username", "password"} as sent
};
struct DiffPeek {};
struct DiffSubscribeQuote {
  std::vector<std::string> codes;
};
struct DiffSetChart {
  std::string id;
  std::optional<std::string> code;  // nullopt: remove the chart
  Period period{};
  std::size_t width = 0;
};
// An order message as a REST call: POST /api/order/submit or /api/order/cancel with this body.
struct DiffOrder {
  std::string target;
  nlohmann::json body;
};
struct DiffRefused {
  unsigned code = 400;
  std::string message;
  // A session nobody has logged in to answers 401 "log in first" instead (the message named a
  // request that needs a login).
  bool needs_login = false;
};

using DiffMessage = std::variant<DiffPing, DiffLogin, DiffPeek, DiffSubscribeQuote, DiffSetChart,
                                 DiffOrder, DiffRefused>;

inline constexpr std::size_t kDiffQuotesMax = 100;
inline constexpr std::size_t kDiffChartIdBytesMax = 64;

// Any text is a DiffMessage; nothing is thrown for any input (fuzz/diff.cc fails on an exception,
// and the session would end on one).
[[nodiscard]] DiffMessage decode_diff_message(std::string_view text);

}  // namespace qx::server
