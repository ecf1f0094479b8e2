// Fuzz target: the journal payload codec (replay/codec.h): events, effects and snapshots.
//
// Byte 0 picks the decoder (event, effect or snapshot); the rest is its input. A decode that
// succeeds must survive a round trip: encoding the value and decoding that again succeeds and
// encodes to the same bytes (the encoding is canonical).
//
// Engine::restore is not fed here: it trusts its snapshot as the engine wrote it (its checks are
// assertions), and a snapshot reaches it only after its bytes passed the store's CRC and their
// content the recorded state hash (replay/store.h), or, installed from a leader, the leader's
// state hash (server/replicator.h). Damage stops there.
//
//   scripts/fuzz.sh codec
#include "replay/codec.h"

#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.h"

namespace {

template <class Decode, class Encode>
void round_trip(std::span<const std::uint8_t> bytes, Decode decode, Encode encode) {
  auto value = decode(bytes);
  if (!value.ok()) return;
  auto once = encode(value.value());
  QX_FUZZ_CHECK(once.ok(), "a decoded value encodes");
  auto back = decode(once.value());
  QX_FUZZ_CHECK(back.ok(), "an encoded value decodes");
  auto twice = encode(back.value());
  QX_FUZZ_CHECK(twice.ok() && twice.value() == once.value(), "the encoding is canonical");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  const std::uint8_t which = in.byte() % 3;
  const auto bytes = in.rest();
  using namespace qx::replay;
  if (which == 0) {
    round_trip(
        bytes, [](auto b) { return decode_event(b); },
        [](const auto& v) { return encode_event(v); });
  } else if (which == 1) {
    round_trip(
        bytes, [](auto b) { return decode_effect(b); },
        [](const auto& v) { return encode_effect(v); });
  } else {
    round_trip(
        bytes, [](auto b) { return decode_snapshot(b); },
        [](const auto& v) { return encode_snapshot(v); });
  }
  return 0;
}
