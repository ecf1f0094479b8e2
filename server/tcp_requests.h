// The binary TCP protocol's order requests (journals/schema/wire.capnp: NewOrder, Amend, Cancel)
// as the order gateway's typed requests (server/gateway.h), for the principal of the session.
// Nothing is checked here: the gateway checks every field (check() and its sequencer job), the
// same rules whichever transport a request came in on. The schema's enums start at 0 = unset; an
// unset enum takes the field's default except the direction (0 stays invalid and is refused).
//
//   OrderRequest q = order_request(principal, msg.getBody().getNewOrder());
//   gateway.submit(std::move(q), done);
//
// The three structs hold only numbers and enums, so reading them cannot throw.
#pragma once

#include "journals/schema/wire.capnp.h"
#include "server/auth.h"
#include "server/gateway.h"

namespace qx::server {

[[nodiscard]] OrderRequest order_request(const Principal& who, wire::NewOrder::Reader r);
[[nodiscard]] AmendRequest amend_request(const Principal& who, wire::Amend::Reader r);
[[nodiscard]] CancelRequest cancel_request(const Principal& who, wire::Cancel::Reader r);

}  // namespace qx::server
