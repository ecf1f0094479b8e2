#include "server/diff.h"

#include <cstdint>

#include "server/auth.h"
#include "server/service.h"

namespace qx::server {

namespace {

using nlohmann::json;

// A DIFF field of the wanted type, or nullopt (absent or another type).
std::optional<std::string> string_at(const json& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

DiffMessage subscribe_quote(const json& m) {
  const auto list = string_at(m, "ins_list");
  if (!list) return DiffRefused{400, "subscribe_quote wants 'ins_list', a string of codes", true};
  DiffSubscribeQuote out;
  std::size_t i = 0;
  while (i < list->size() && out.codes.size() < kDiffQuotesMax) {
    auto j = list->find(',', i);
    if (j == std::string::npos) j = list->size();
    std::string code = list->substr(i, j - i);
    if (auto dot = code.find('.'); dot != std::string::npos) code = code.substr(dot + 1);
    if (valid_name(code)) out.codes.push_back(code);
    i = j + 1;
  }
  return out;
}

DiffMessage set_chart(const json& m) {
  const auto id = string_at(m, "chart_id");
  auto code = string_at(m, "ins_list");
  if (!id || id->size() > kDiffChartIdBytesMax || !code) {
    return DiffRefused{400, "set_chart wants string 'chart_id' (at most 64 bytes) and 'ins_list'",
                       true};
  }
  if (auto dot = code->find('.'); dot != std::string::npos) code = code->substr(dot + 1);
  if (code->empty()) return DiffSetChart{*id, std::nullopt, {}, 0};
  std::optional<Period> period;
  const json d = m.value("duration", json());
  for (Period p : kPeriods) {
    if (d.is_number_integer() && d.get<std::int64_t>() == period_ns(p)) period = p;
  }
  const json w = m.value("view_width", json(200));
  if (!valid_name(*code) || !period || !w.is_number_integer() || w.get<std::int64_t>() < 1 ||
      w.get<std::int64_t>() > static_cast<std::int64_t>(Klines::kKeep)) {
    return DiffRefused{400,
                       "set_chart wants an instrument code, duration 60e9, 300e9 or 86400e9 ns, "
                       "view_width 1..2000, at most 16 charts",
                       true};
  }
  return DiffSetChart{*id, *code, *period, w.get<std::size_t>()};
}

// insert_order / cancel_order: DIFF names to REST names; the REST route checks every field.
DiffMessage order(const std::string& aid, const json& m) {
  json body = json::object();
  for (const char* k :
       {"account_id", "instrument_id", "direction", "offset", "volume", "price_type", "limit_price",
        "time_condition", "volume_condition", "order_id"}) {
    if (m.contains(k)) body[k] = m[k];
  }
  auto rename = [&](const char* from, const char* to) {
    if (body.contains(from)) {
      body[to] = body[from];
      body.erase(from);
    }
  };
  rename("account_id", "account");
  rename("instrument_id", "instrument");
  rename("limit_price", "price");
  if (body.value("price_type", json()) == "ANY") body["price_type"] = "MARKET";
  const bool insert = aid == "insert_order";
  if (insert) rename("order_id", "client_order_id");
  return DiffOrder{insert ? "/api/order/submit" : "/api/order/cancel", std::move(body)};
}

}  // namespace

DiffMessage decode_diff_message(std::string_view text) {
  if (json_depth(text) > kJsonDepthMax)
    return DiffRefused{400, "the message nests too deeply", false};
  const json m = json::parse(text, nullptr, false);
  if (m.is_discarded() || !m.is_object() || !string_at(m, "aid")) {
    return DiffRefused{400, "each message must be a JSON object with a string 'aid'", false};
  }
  const std::string aid = *string_at(m, "aid");
  if (aid == "ping") return DiffPing{};
  if (aid == "req_login") {
    return DiffLogin{json{{"username", m.value("user_name", json())},
                          {"password", m.value("password", json())}}};
  }
  if (aid == "peek_message") return DiffPeek{};
  if (aid == "subscribe_quote") return subscribe_quote(m);
  if (aid == "set_chart") return set_chart(m);
  if (aid == "insert_order" || aid == "cancel_order") return order(aid, m);
  return DiffRefused{400, "unknown aid '" + aid + "'", true};
}

}  // namespace qx::server
