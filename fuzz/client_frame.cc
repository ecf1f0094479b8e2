// Fuzz target: the binary TCP protocol's frame reader (server/wire_frame.h) and its client
// messages (journals/schema/wire.capnp), as the server reads a client's bytes.
//
// Byte 0 picks a chunk size (1..256 bytes); the rest is fed to a FrameReader with the server's
// limit in chunks of that size. Every frame's ClientMessage is read field by field, the way the
// server's handlers do, through Cap'n Proto's reflection (every struct, list, text and data
// field, with the reader's traversal and nesting limits): a bad pointer must be a kj::Exception,
// which the server turns into a protocol error, never a crash. Orders, amends and cancels are then
// turned into the gateway's requests as the session does (server/tcp_requests.h) and submitted
// as user alice's to an in-process exchange (fuzz/exchange.h): the gateway may refuse them only
// as the client's fault, and the journal must replay to the server's state at the end.
//
//   scripts/fuzz.sh client_frame
#include <capnp/dynamic.h>
#include <capnp/pretty-print.h>
#include <kj/exception.h>

#include <cstdint>
#include <memory>

#include "fuzz/exchange.h"
#include "fuzz/fuzz_input.h"
#include "server/tcp_requests.h"
#include "server/wire_frame.h"

namespace {

using Body = qx::wire::ClientMessage::Body;

// Orders, amends and cancels go on, as alice's, through the gateway as the session sends them.
void submit(Body::Reader body, std::unique_ptr<qx::fuzz::Exchange>& x) {
  const auto which = body.which();
  if (which != Body::NEW_ORDER && which != Body::AMEND && which != Body::CANCEL) return;
  if (!x) x = std::make_unique<qx::fuzz::Exchange>();
  const auto alice = qx::fuzz::Exchange::principal(1);
  qx::server::OrderResult r;
  if (which == Body::NEW_ORDER) {
    r = x->gateway(qx::server::order_request(alice, body.getNewOrder()));
  } else if (which == Body::AMEND) {
    r = x->gateway(qx::server::amend_request(alice, body.getAmend()));
  } else {
    r = x->gateway(qx::server::cancel_request(alice, body.getCancel()));
  }
  if (r.error) {
    QX_FUZZ_CHECK(!r.error->message.empty(), "a refusal says why");
    // Never overloaded here (one request at a time), and a job that threw is answered overloaded.
    QX_FUZZ_CHECK(qx::server::gate_http_status(r.error->code) < 500,
                  "the gateway refuses only for the client's fault");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  std::unique_ptr<qx::fuzz::Exchange> x;  // made at the first order: most inputs have none
  const std::size_t chunk = std::size_t{in.byte()} + 1;
  qx::wire::FrameReader reader(qx::wire::kClientFrameMax);
  bool usable = true;  // the server cuts a stream once it is too large or malformed
  while (usable && !in.empty()) {
    const auto piece = in.take(chunk);
    reader.feed(reinterpret_cast<const char*>(piece.data()), piece.size());
    for (;;) {
      const auto status = reader.next();
      if (status == qx::wire::FrameReader::Status::kNeedMore) break;
      if (status != qx::wire::FrameReader::Status::kFrame) {
        usable = false;
        break;
      }
      try {
        auto msg = reader.message().getRoot<qx::wire::ClientMessage>();
        (void)capnp::prettyPrint(msg);
        submit(msg.getBody(), x);
      } catch (const kj::Exception&) {
        // What the server answers with a protocol error.
      }
    }
  }
  if (x) x->check_replay();
  return 0;
}
