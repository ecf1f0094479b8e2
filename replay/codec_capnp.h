// Codec at the Cap'n Proto level: core values into schema builders and out of schema readers.
//
//   capnp::MallocMessageBuilder message;
//   auto request = message.initRoot<MyProtocol>();
//   if (Status s = write_event(event, request.initEvent()); !s.ok()) return s.error();
//
// The byte-level API in replay/codec.h is built on these; use them directly only when the struct
// is part of a larger message (a network protocol, a journal batch). The same checks apply (see
// codec.h). Each function catches kj::Exception from Cap'n Proto and returns it as an Error, so a
// reader over hostile bytes is safe to pass in. On failure a builder may be partly written and
// should be discarded.
#pragma once

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"
#include "journals/schema/events.capnp.h"
#include "journals/schema/snapshot.capnp.h"
#include "replay/result.h"

namespace qx::replay {

[[nodiscard]] Status write_event(const core::Event& event, schema::Event::Builder out);
[[nodiscard]] Result<core::Event> read_event(schema::Event::Reader in);

[[nodiscard]] Status write_effect(const core::Effect& effect, schema::Effect::Builder out);
[[nodiscard]] Result<core::Effect> read_effect(schema::Effect::Reader in);

[[nodiscard]] Status write_snapshot(const core::Snapshot& snapshot, schema::Snapshot::Builder out);
[[nodiscard]] Result<core::Snapshot> read_snapshot(schema::Snapshot::Reader in);

}  // namespace qx::replay
