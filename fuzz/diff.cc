// Fuzz target: WebSocket DIFF messages (server/diff.h), decoded as a /ws/diff session reads them,
// with the order messages then sent through the real REST service of an in-process exchange
// (fuzz/exchange.h) as user alice, as the session does.
//
// The input is text; each line is one message. Whatever a line holds, decoding must not throw,
// and what it yields must keep the decoder's promises: at most 100 valid instrument names for
// subscribe_quote, a chart id of at most 64 bytes with a valid code and a width of 1..2000, an
// order body that is a JSON object for one of the two order routes. The orders' replies must be
// client errors or successes with JSON bodies, and the journal must replay to the server's state.
//
//   scripts/fuzz.sh diff
#include "server/diff.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/exchange.h"
#include "fuzz/fuzz_input.h"
#include "server/auth.h"

namespace {

using namespace qx::server;

void check(const DiffMessage& m) {
  if (const auto* q = std::get_if<DiffSubscribeQuote>(&m)) {
    QX_FUZZ_CHECK(q->codes.size() <= kDiffQuotesMax, "at most 100 quotes");
    for (const auto& c : q->codes) QX_FUZZ_CHECK(valid_name(c), "quotes are instrument names");
  } else if (const auto* c = std::get_if<DiffSetChart>(&m)) {
    QX_FUZZ_CHECK(c->id.size() <= kDiffChartIdBytesMax, "a chart id of at most 64 bytes");
    if (c->code) {
      QX_FUZZ_CHECK(valid_name(*c->code), "a chart's code is an instrument name");
      QX_FUZZ_CHECK(c->width >= 1 && c->width <= Klines::kKeep, "a chart's width is 1..2000");
    }
  } else if (const auto* o = std::get_if<DiffOrder>(&m)) {
    QX_FUZZ_CHECK(o->body.is_object(), "an order body is an object");
    QX_FUZZ_CHECK(o->target == "/api/order/submit" || o->target == "/api/order/cancel",
                  "an order goes to an order route");
  } else if (const auto* l = std::get_if<DiffLogin>(&m)) {
    QX_FUZZ_CHECK(l->body.is_object() && l->body.size() == 2, "a login body has two fields");
  } else if (const auto* r = std::get_if<DiffRefused>(&m)) {
    QX_FUZZ_CHECK(r->code == 400 && !r->message.empty(), "a refusal says why");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  std::string_view text = in.rest_text();
  std::unique_ptr<qx::fuzz::Exchange> x;  // made at the first order: most inputs have none
  const std::string alice = qx::fuzz::Exchange::token(1);
  for (int n = 0; !text.empty() && n < 64; ++n) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    DiffMessage m = decode_diff_message(line);
    check(m);
    if (auto* o = std::get_if<DiffOrder>(&m)) {
      if (!x) x = std::make_unique<qx::fuzz::Exchange>();
      (void)x->call("POST", o->target,
                    o->body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), alice);
    }
  }
  if (x) x->check_replay();
  return 0;
}
