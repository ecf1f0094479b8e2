#include "server/gateway.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

namespace qx::server {

unsigned gate_http_status(GateCode c) {
  switch (c) {
    case GateCode::kBadRequest: return 400;
    case GateCode::kBadPrice: return 400;
    case GateCode::kUnauthorized: return 401;
    case GateCode::kForbidden: return 403;
    case GateCode::kUnknownAccount: return 404;
    case GateCode::kUnknownInstrument: return 404;
    case GateCode::kRateLimited: return 429;
    case GateCode::kOverloaded: return 503;
    case GateCode::kNotLeader: return 421;
    case GateCode::kOutcomeUnknown: return 503;
  }
  return 500;
}

const char* gate_code_name(GateCode c) {
  switch (c) {
    case GateCode::kBadRequest: return "bad_request";
    case GateCode::kBadPrice: return "bad_price";
    case GateCode::kUnauthorized: return "unauthorized";
    case GateCode::kForbidden: return "forbidden";
    case GateCode::kUnknownAccount: return "unknown_account";
    case GateCode::kUnknownInstrument: return "unknown_instrument";
    case GateCode::kRateLimited: return "rate_limited";
    case GateCode::kOverloaded: return "overloaded";
    case GateCode::kNotLeader: return "not_leader";
    case GateCode::kOutcomeUnknown: return "outcome_unknown";
  }
  return "internal";
}

namespace {

GateError bad(std::string message) {
  return GateError{GateCode::kBadRequest, std::move(message)};
}

std::optional<GateError> check_trader(const Principal& p) {
  if (p.role == Role::kTrader) return std::nullopt;
  return GateError{GateCode::kForbidden, "only traders submit, amend and cancel orders"};
}

std::optional<GateError> check_account_ref(const AccountRef& a) {
  if (const auto* name = std::get_if<std::string>(&a); name != nullptr && !valid_name(*name)) {
    return bad("'account' must be a valid name (1 to 31 of A-Z a-z 0-9 _ . -)");
  }
  return std::nullopt;
}

std::optional<GateError> check_price(const PriceRef& p) {
  if (p.value < 1 || p.value > kPriceMax) return bad("price must be positive and below 2^62");
  return std::nullopt;
}

template <class E>
bool known(E e, std::uint32_t max) {
  const auto v = static_cast<std::uint32_t>(e);
  return v >= 1 && v <= max;
}

// Ticks of a price for an instrument; nullopt when a decimal price is off the tick.
std::optional<core::PriceTicks> to_ticks(const core::Engine& e, core::InstrumentId id,
                                         const PriceRef& p) {
  if (p.in_ticks) return core::PriceTicks(p.value);
  const std::int64_t tick = e.instrument(id).params.price_tick_e8;
  if (tick <= 0 || p.value % tick != 0) return std::nullopt;
  return core::PriceTicks(p.value / tick);
}

std::optional<GateError> find_instrument(const core::Engine& e, const InstrumentRef& ref,
                                         core::InstrumentId& out) {
  if (const auto* name = std::get_if<std::string>(&ref)) {
    auto id = e.find_instrument(*name);
    if (!id) return GateError{GateCode::kUnknownInstrument, "no instrument '" + *name + "'"};
    out = *id;
    return std::nullopt;
  }
  out = std::get<core::InstrumentId>(ref);
  if (core::raw(out) >= e.instrument_count()) {
    return GateError{GateCode::kUnknownInstrument, "no such instrument id"};
  }
  return std::nullopt;
}

OrderResult result_of(const core::Engine& e, const core::EffectBuffer& fx, OrderStatus ok) {
  OrderResult r;
  r.seq = core::raw(e.last_seq());
  r.status = ok;
  // The request's own outcome is the event's first order effect; later ones belong to others
  // (stops its trades fired, forced liquidations), whose rejects are not this request's.
  for (const core::Effect& x : fx) {
    if (x.kind == core::EffectKind::kOrderRejected) {
      r.status = OrderStatus::kRejected;
      r.reject_code = x.reason;
      r.client_order_id = core::raw(x.client_order_id);
      r.order_id = 0;
      break;
    }
    if (x.kind == core::EffectKind::kOrderAccepted || x.kind == core::EffectKind::kOrderAmended ||
        x.kind == core::EffectKind::kOrderCancelled || x.kind == core::EffectKind::kStopAccepted) {
      r.order_id = core::raw(x.order);
      r.client_order_id = core::raw(x.client_order_id);
      break;
    }
  }
  return r;
}

// Journals and applies `body`, then reads the outcome (and renders the effects) while the
// effects are valid.
OrderResult submitted(Sequencer::Ctx& c, core::EventBody body, OrderStatus ok,
                      const Render& render) {
  const auto& fx = c.submit(std::move(body));
  OrderResult out = result_of(c.engine(), fx, ok);
  if (render) out.rendered = render(c.engine(), fx);
  return out;
}

OrderResult refused(GateError e) {
  OrderResult r;
  r.error = std::move(e);
  return r;
}

}  // namespace

std::optional<GateError> check_order_ref(const core::OrderRef& ref) {
  const std::uint64_t order = ref.order_id ? core::raw(*ref.order_id) : 0;
  const std::uint64_t client = core::raw(ref.client_order_id);
  if ((order == 0) == (client == 0) || order > kIdMax || client > kIdMax) {
    return bad("name the order by exactly one of order_id, client_order_id (1 to 2^62)");
  }
  return std::nullopt;
}

std::optional<GateError> check(const OrderRequest& r) {
  if (auto e = check_trader(r.who)) return e;
  if (auto e = check_account_ref(r.account)) return e;
  if (const auto* name = std::get_if<std::string>(&r.instrument); name && !valid_name(*name)) {
    return bad("'instrument' must be a valid name");
  }
  const core::NewOrder& o = r.order;
  if (!known(o.direction, 2) || !known(o.offset, 4) || !known(o.price_type, 3) ||
      !known(o.time_condition, 3) || !known(o.volume_condition, 2) ||
      (o.stp && (!known(o.stp->mode, 3) || !known(o.stp->scope, 2))) ||
      (o.trigger && (!known(o.trigger->kind, 2) || !known(o.trigger->source, 2)))) {
    return bad("direction is required; enums must be known values");
  }
  if (o.trigger) {
    if (o.price_type == core::PriceType::kBest) {
      return bad("a stop order enters as LIMIT or MARKET, not BEST");
    }
    if (check_price(r.trigger_price)) return bad("trigger_price must be positive and below 2^62");
  }
  if (o.volume.value < 1 || o.volume.value > kVolumeMax) {
    return bad("volume must be 1 to 1000000000");
  }
  if (core::raw(o.client_order_id) > kIdMax) return bad("client_order_id must be below 2^62");
  if (o.price_type == core::PriceType::kLimit) return check_price(r.price);
  return std::nullopt;
}

std::optional<GateError> check(const AmendRequest& r) {
  if (auto e = check_trader(r.who)) return e;
  if (auto e = check_account_ref(r.account)) return e;
  if (auto e = check_order_ref(r.ref)) return e;
  if (auto e = check_price(r.price)) return e;
  if (r.volume_left.value < 1 || r.volume_left.value > kVolumeMax) {
    return bad("volume_left must be 1 to 1000000000");
  }
  return std::nullopt;
}

std::optional<GateError> check(const CancelRequest& r) {
  if (auto e = check_trader(r.who)) return e;
  if (auto e = check_account_ref(r.account)) return e;
  return check_order_ref(r.ref);
}

std::optional<GateError> authorize(const core::Engine& e, const Principal& p, const AccountRef& ref,
                                   Access access, core::AccountId& out) {
  std::optional<core::AccountId> a;
  if (const auto* name = std::get_if<std::string>(&ref)) {
    a = e.find_account(*name);
    if (!a) return GateError{GateCode::kUnknownAccount, "no account '" + *name + "'"};
  } else {
    a = std::get<core::AccountId>(ref);
    if (core::raw(*a) >= e.account_count()) {
      return GateError{GateCode::kUnknownAccount, "no such account id"};
    }
  }
  if (access == Access::kTrade && p.role != Role::kTrader) {
    return GateError{GateCode::kForbidden, "only traders submit, amend and cancel orders"};
  }
  const bool reads_all = p.role == Role::kAdmin || p.role == Role::kAuditor;
  if (access == Access::kTrade || !reads_all) {
    auto u = e.find_user(p.user);
    if (!u || e.account_state(*a).user != *u) {
      return GateError{GateCode::kForbidden, "the account is not yours"};
    }
  }
  out = *a;
  return std::nullopt;
}

void Gateway::post(Job job, Done done) {
  auto result = std::make_shared<OrderResult>();
  Sequencer::Job seq_job = [job = std::move(job), result](Sequencer::Ctx& c) {
    *result = job(c.engine(), c);
    return Reply{};
  };
  Sequencer::Done seq_done = [result, done](Reply rep) {
    // A job that threw answers 500 (Sequencer::run); nothing of it reached the engine.
    if (rep.status == 503 && rep.body.find("\"outcome_unknown\"") != std::string::npos) {
      return done(refused(GateError{GateCode::kOutcomeUnknown,
                                    "leadership was lost before a majority held the request; its "
                                    "outcome is unknown: ask the new leader"}));
    }
    if (rep.status >= 500) {
      return done(refused(GateError{GateCode::kOverloaded, "the request failed; retry"}));
    }
    if (rep.status == 421) {
      // The sequencer's body is {"error":"not_leader","message":"<which node leads>",...}.
      const auto j = nlohmann::json::parse(rep.body, nullptr, false);
      const bool shaped = j.is_object() && j.contains("message") && j["message"].is_string();
      return done(refused(GateError{GateCode::kNotLeader, shaped ? j["message"].get<std::string>()
                                                                 : "this node does not lead"}));
    }
    done(std::move(*result));
  };
  if (!seq_.post(std::move(seq_job), std::move(seq_done))) {
    done(refused(GateError{GateCode::kOverloaded, "the sequencer queue is full; retry later"}));
  }
}

void Gateway::submit(OrderRequest r, Done done, Render render) {
  if (auto e = check(r)) return done(refused(std::move(*e)));
  post(
      [r = std::move(r), render = std::move(render)](const core::Engine& e, Sequencer::Ctx& c) {
        core::NewOrder o = r.order;
        if (auto err = authorize(e, r.who, r.account, Access::kTrade, o.account)) {
          return refused(std::move(*err));
        }
        if (auto err = find_instrument(e, r.instrument, o.instrument)) {
          return refused(std::move(*err));
        }
        o.price = core::PriceTicks(0);
        if (o.price_type == core::PriceType::kLimit) {
          auto ticks = to_ticks(e, o.instrument, r.price);
          if (!ticks) {
            return refused({GateCode::kBadPrice, "price is not a multiple of the price tick"});
          }
          o.price = *ticks;
        }
        if (o.trigger) {
          auto ticks = to_ticks(e, o.instrument, r.trigger_price);
          if (!ticks) {
            return refused(
                {GateCode::kBadPrice, "trigger_price is not a multiple of the price tick"});
          }
          o.trigger->price = *ticks;
        }
        return submitted(c, o, OrderStatus::kAccepted, render);
      },
      std::move(done));
}

void Gateway::amend(AmendRequest r, Done done, Render render) {
  if (auto e = check(r)) return done(refused(std::move(*e)));
  post(
      [r = std::move(r), render = std::move(render)](const core::Engine& e, Sequencer::Ctx& c) {
        core::AmendOrder a{{}, r.ref, {}, r.volume_left};
        if (auto err = authorize(e, r.who, r.account, Access::kTrade, a.account)) {
          return refused(std::move(*err));
        }
        // A decimal price is in the order's instrument's ticks; an unknown order is journaled
        // with price 0 and rejected by the engine like any other unknown reference.
        std::optional<core::OrderState> o;
        if (r.ref.order_id) {
          o = e.order(*r.ref.order_id);
        } else if (auto id = e.find_order(a.account, r.ref.client_order_id)) {
          o = e.order(*id);
        }
        if (r.price.in_ticks) {
          a.new_price = core::PriceTicks(r.price.value);
        } else if (o) {
          auto ticks = to_ticks(e, o->instrument, r.price);
          if (!ticks) {
            return refused({GateCode::kBadPrice, "price is not a multiple of the price tick"});
          }
          a.new_price = *ticks;
        }
        return submitted(c, a, OrderStatus::kAmended, render);
      },
      std::move(done));
}

void Gateway::cancel(CancelRequest r, Done done, Render render) {
  if (auto e = check(r)) return done(refused(std::move(*e)));
  post(
      [r = std::move(r), render = std::move(render)](const core::Engine& e, Sequencer::Ctx& c) {
        core::CancelOrder x{{}, r.ref};
        if (auto err = authorize(e, r.who, r.account, Access::kTrade, x.account)) {
          return refused(std::move(*err));
        }
        return submitted(c, x, OrderStatus::kCancelled, render);
      },
      std::move(done));
}

}  // namespace qx::server
