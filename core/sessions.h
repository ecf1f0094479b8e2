// Trading session schedules (docs/semantics.md, "Sessions and call auctions"): pure functions of a
// schedule and a time, shared by the engine, the snapshot decoder and the server.
#pragma once

#include <cstdint>

#include "core/types.h"

namespace qx::core {

// Whether SetSession accepts the schedule: the UTC offset within +-18 h, at most
// kSessionEntriesMax entries, starts strictly increasing and below 86,400, defined phases.
bool session_ok(const SessionSchedule& s);
// The phase the schedule gives at time t_ns (CONTINUOUS without entries).
TradingPhase phase_at(const SessionSchedule& s, std::int64_t t_ns);
// The first boundary after t_ns (kNoPhaseChange without entries).
std::int64_t next_phase_change(const SessionSchedule& s, std::int64_t t_ns);

}  // namespace qx::core
