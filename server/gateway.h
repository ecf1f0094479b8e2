// The order gateway: the one place where an order, amend or cancel is validated, authorised and
// submitted, whichever transport it came in on (REST and WebSocket DIFF through server/service,
// the binary TCP protocol through server/tcp).
//
//   Gateway gw(sequencer);
//   OrderRequest r{principal, AccountName{"alice-01"}, InstrumentName{"IF2501"}, ...};
//   gw.submit(std::move(r), [](const OrderResult& res) { /* sequencer thread, after fsync */ });
//
// Each transport decodes its own encoding into these typed requests (names or ids, decimal text
// or ticks), then hands them here. check() applies the shape rules on the caller's thread
// (ranges, enum values, ids, the trader role); the rest runs as a sequencer job: the account must
// exist and belong to the principal's user, the instrument must exist, a decimal price must be a
// multiple of the tick. Only then is the event journaled. Every refusal is a typed GateError
// (code + message); each transport maps the code to its own answer (an HTTP status, a wire error
// code) through one table, gate_http_status() / gate_code_name().
//
// Caveats: `done` runs on the sequencer thread after the batch is durable and must only hand the
// result to another thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "core/engine.h"
#include "server/auth.h"
#include "server/sequencer.h"

namespace qx::server {

enum class GateCode : std::uint8_t {
  kBadRequest = 1,         // 400 bad_request
  kBadPrice = 2,           // 400 bad_price (off the tick)
  kUnauthorized = 3,       // 401 unauthorized
  kForbidden = 4,          // 403 forbidden
  kUnknownAccount = 5,     // 404 unknown_account
  kUnknownInstrument = 6,  // 404 unknown_instrument
  kRateLimited = 7,        // 429 rate_limited
  kOverloaded = 8,         // 503 overloaded
  kNotLeader = 9,          // 421 not_leader (a cluster's follower; the message names the leader)
  kOutcomeUnknown = 10,    // 503 outcome_unknown (leadership lost before a majority held it)
};
unsigned gate_http_status(GateCode c);
const char* gate_code_name(GateCode c);

struct GateError {
  GateCode code{};
  std::string message;
};

// An account or instrument as the transport names it: REST and DIFF by name, TCP by id.
using AccountRef = std::variant<std::string, core::AccountId>;
using InstrumentRef = std::variant<std::string, core::InstrumentId>;

// A price as the transport gives it: decimal text scaled by 1e8 (REST, DIFF) or ticks (TCP).
struct PriceRef {
  bool in_ticks = false;
  std::int64_t value = 0;
};

inline constexpr std::int64_t kVolumeMax = 1'000'000'000;
inline constexpr std::int64_t kPriceMax = std::int64_t{1} << 62;  // ticks, or 1e-8 units
inline constexpr std::uint64_t kIdMax = std::uint64_t{1} << 62;

struct OrderRequest {
  Principal who;
  AccountRef account;
  InstrumentRef instrument;
  core::NewOrder order;    // every field but account, instrument, price and trigger price
  PriceRef price;          // LIMIT orders only
  PriceRef trigger_price;  // stops only (order.trigger set; its price is filled in from this)
};

struct AmendRequest {
  Principal who;
  AccountRef account;
  core::OrderRef ref;
  PriceRef price;
  core::Lots volume_left{};
};

struct CancelRequest {
  Principal who;
  AccountRef account;
  core::OrderRef ref;
};

enum class OrderStatus : std::uint8_t {
  kAccepted = 1,
  kRejected = 2,
  kAmended = 3,
  kCancelled = 4
};

struct OrderResult {
  std::optional<GateError> error;  // refused before the engine: nothing journaled
  OrderStatus status = OrderStatus::kAccepted;
  std::uint64_t seq = 0;
  std::uint16_t reject_code = 0;  // core::RejectReason when kRejected
  std::uint64_t order_id = 0;
  std::uint64_t client_order_id = 0;
  std::string rendered;  // what the request's Render made of the effects
};

// Runs inside the sequencer job right after the event is applied (the effects are valid only
// then): a transport that answers with the effects (REST) renders them here.
using Render = std::function<std::string(const core::Engine&, const core::EffectBuffer&)>;

// Shape rules, on any thread.
[[nodiscard]] std::optional<GateError> check(const OrderRequest& r);
[[nodiscard]] std::optional<GateError> check(const AmendRequest& r);
[[nodiscard]] std::optional<GateError> check(const CancelRequest& r);
[[nodiscard]] std::optional<GateError> check_order_ref(const core::OrderRef& ref);

// Who may read or trade an account: traders trade their own user's accounts; admins and auditors
// read every account; traders and viewers read their own. Sequencer thread (reads the engine).
enum class Access : std::uint8_t { kRead = 1, kTrade = 2 };
[[nodiscard]] std::optional<GateError> authorize(const core::Engine& e, const Principal& p,
                                                 const AccountRef& ref, Access access,
                                                 core::AccountId& out);

class Gateway {
 public:
  explicit Gateway(Sequencer& sequencer) : seq_(sequencer) {}
  // On the sequencer thread after the batch is durable; on the calling thread when check()
  // refuses or the queue is full (error set, nothing journaled).
  using Done = std::function<void(OrderResult)>;
  void submit(OrderRequest r, Done done, Render render = {});
  void amend(AmendRequest r, Done done, Render render = {});
  void cancel(CancelRequest r, Done done, Render render = {});

 private:
  using Job = std::function<OrderResult(const core::Engine&, Sequencer::Ctx&)>;
  void post(Job job, Done done);
  Sequencer& seq_;
};

}  // namespace qx::server
