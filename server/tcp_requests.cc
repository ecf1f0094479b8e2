#include "server/tcp_requests.h"

#include <cstdint>

namespace qx::server {

namespace {

// An enum of the schema (0 = unset) as the core's, or `fallback` when unset.
template <class W, class E>
E pick(W wire_value, E fallback) {
  const auto v = static_cast<std::uint32_t>(wire_value);
  return v == 0 ? fallback : static_cast<E>(v);
}

core::OrderRef order_ref(std::uint64_t order, std::uint64_t client) {
  core::OrderRef ref;
  if (order != 0) ref.order_id = core::OrderId(order);
  ref.client_order_id = core::ClientOrderId(client);
  return ref;
}

}  // namespace

OrderRequest order_request(const Principal& who, wire::NewOrder::Reader r) {
  OrderRequest q;
  q.who = who;
  q.account = core::AccountId(r.getAccount());
  q.instrument = core::InstrumentId(r.getInstrument());
  core::NewOrder& o = q.order;
  o.direction = pick(r.getDirection(), core::Direction{});
  o.offset = pick(r.getOffset(), core::Offset::kOpen);
  o.price_type = pick(r.getPriceType(), core::PriceType::kLimit);
  o.time_condition = pick(r.getTimeCondition(), core::TimeCondition::kGfd);
  o.volume_condition = pick(r.getVolumeCondition(), core::VolumeCondition::kAny);
  o.post_only = r.getPostOnly();
  // Both unset: the account's self-trade prevention; else the order's (unset parts default).
  if (static_cast<unsigned>(r.getStpMode()) != 0 || static_cast<unsigned>(r.getStpScope()) != 0) {
    o.stp = core::SelfTradePrevention{pick(r.getStpMode(), core::StpMode::kCancelNewest),
                                      pick(r.getStpScope(), core::StpScope::kAccount)};
  }
  o.volume = core::Lots(r.getVolume());
  o.client_order_id = core::ClientOrderId(r.getClientOrderId());
  q.price = PriceRef{true, r.getPrice()};
  if (r.getTriggerPrice() != 0) {
    o.trigger = core::StopTrigger{pick(r.getTriggerKind(), core::TriggerKind::kStop),
                                  pick(r.getTriggerSource(), core::TriggerSource::kLast),
                                  {}};
    q.trigger_price = PriceRef{true, r.getTriggerPrice()};
  }
  return q;
}

AmendRequest amend_request(const Principal& who, wire::Amend::Reader r) {
  AmendRequest q;
  q.who = who;
  q.account = core::AccountId(r.getAccount());
  q.ref = order_ref(r.getOrderId(), r.getClientOrderId());
  q.price = PriceRef{true, r.getPrice()};
  q.volume_left = core::Lots(r.getVolumeLeft());
  return q;
}

CancelRequest cancel_request(const Principal& who, wire::Cancel::Reader r) {
  CancelRequest q;
  q.who = who;
  q.account = core::AccountId(r.getAccount());
  q.ref = order_ref(r.getOrderId(), r.getClientOrderId());
  return q;
}

}  // namespace qx::server
