// Codec: core events, effects and snapshots to and from flat Cap'n Proto message bytes, using the
// schema in journals/schema/ (the contract with clients and auditors).
//
//   Result<Bytes> bytes = encode_event(event);   // fails only on values the schema cannot hold
//   if (!bytes.ok()) return bytes.error();
//   Result<core::Event> back = decode_event(bytes.value());   // == event, field by field
//
// Design:
//   - One message per value, in the standard flat (unpacked) serialisation: a segment table then
//     the segments. Lengths and checksums belong to the journal record around it, not here.
//   - Encoding checks what decoding checks, so every message written can be read back: an enum
//     value the schema does not define, a text longer than kTextBytesMax, a non-zero Effect::pad_
//     or a list with more elements than Cap'n Proto allows is an error, not a silent truncation.
//   - Decoding treats its input as hostile. It never crashes or reads out of bounds: Cap'n Proto's
//     own validation errors (kj::Exception) are caught, every enum ordinal is checked against the
//     values core defines, text lengths are capped, the body union must name a known event kind,
//     and bytes after the message are an error. Work is bounded: the traversal limit is
//     proportional to the input size, so a small message cannot make the reader do huge work.
//   - Input may have any alignment; unaligned input is copied once into an aligned buffer.
//   - Enums: `invalid` (0) round-trips to the core's zero value, which core treats as invalid and
//     rejects with a reason code; it is not a decoding error, because the journal must be able to
//     hold a malformed request that the engine rejected.
//
// Caveats:
//   - Decoding checks representation, not business rules: seq gaps, name lengths within the
//     engine's limits, or a snapshot's semantics version are checked by the journal reader and
//     the engine.
//   - A decoded snapshot's schema version must be between 1 and kSchemaVersion.
//
// For protocols that embed these structs in their own messages, replay/codec_capnp.h offers the
// same conversions on Cap'n Proto builders and readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"
#include "replay/result.h"

namespace qx::replay {

using Bytes = std::vector<std::uint8_t>;

// The schema version this codec writes (journals/schema/events.capnp `schemaVersion`).
inline constexpr std::uint32_t kSchemaVersion = 1;
// Longest text field (names, codes) the codec writes or accepts, in bytes.
inline constexpr std::size_t kTextBytesMax = 1024;

[[nodiscard]] Result<Bytes> encode_event(const core::Event& event);
[[nodiscard]] Result<core::Event> decode_event(std::span<const std::uint8_t> bytes);

[[nodiscard]] Result<Bytes> encode_effect(const core::Effect& effect);
[[nodiscard]] Result<core::Effect> decode_effect(std::span<const std::uint8_t> bytes);

[[nodiscard]] Result<Bytes> encode_snapshot(const core::Snapshot& snapshot);
[[nodiscard]] Result<core::Snapshot> decode_snapshot(std::span<const std::uint8_t> bytes);

}  // namespace qx::replay
