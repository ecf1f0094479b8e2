// Properties of replay/codec over generated core values (tests/property/generators.h):
//   - decode(encode(x)) == x, field by field, for every event kind, Effect and Snapshot;
//   - encoding is canonical: re-encoding a decoded value gives the same bytes;
//   - decoding works at any alignment, and refuses every strict prefix and trailing bytes;
//   - corrupting a valid message never crashes, and whatever still decodes encodes again
//     (decoding checks everything encoding checks).
// Each property runs RC_PARAMS max_success cases (1,000 under ctest) and prints its seed.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "replay/codec.h"
#include "replay/core_equal.h"
#include "tests/property/generators.h"

namespace {

using qx::replay::testkit::diff;
namespace core = qx::core;
namespace replay = qx::replay;

constexpr std::array<const char*, 18> kEventKindNames = {
    "CreateInstrument", "UpdateInstrument", "SetInstrumentStatus", "CreateUser",    "CreateAccount",
    "Deposit",          "Withdraw",         "SetAccountRisk",      "SetRiskParams", "Settle",
    "NewOrder",         "AmendOrder",       "CancelOrder",         "MarkToMarket",  "SetCurrency",
    "SetLimits",        "SetSession",       "LeaderTerm"};
static_assert(kEventKindNames.size() == std::variant_size_v<core::EventBody>);

// Encodes `value`, failing the property with the codec's message if it cannot.
template <class T, class Encode>
replay::Bytes must_encode(const T& value, Encode encode) {
  auto bytes = encode(value);
  if (!bytes.ok()) RC_FAIL(bytes.error().message);
  return std::move(bytes).value();
}

template <class T, class Decode>
T must_decode(std::span<const std::uint8_t> bytes, Decode decode) {
  auto value = decode(bytes);
  if (!value.ok()) RC_FAIL(value.error().message);
  return std::move(value).value();
}

RC_GTEST_PROP(CodecRoundTrip, EventRoundTrips, (const core::Event& event)) {
  RC_TAG(kEventKindNames[event.body.index()]);
  const auto bytes = must_encode(event, replay::encode_event);
  const auto back = must_decode<core::Event>(bytes, replay::decode_event);
  RC_ASSERT(diff(event, back) == std::string());
  RC_ASSERT(must_encode(back, replay::encode_event) == bytes);
}

RC_GTEST_PROP(CodecRoundTrip, EffectRoundTrips, (const core::Effect& effect)) {
  const auto bytes = must_encode(effect, replay::encode_effect);
  const auto back = must_decode<core::Effect>(bytes, replay::decode_effect);
  RC_ASSERT(diff(effect, back) == std::string());
  RC_ASSERT(must_encode(back, replay::encode_effect) == bytes);
}

RC_GTEST_PROP(CodecRoundTrip, SnapshotRoundTrips, (const core::Snapshot& snapshot)) {
  RC_CLASSIFY(snapshot.orders.empty() && snapshot.accounts.empty(), "no orders or accounts");
  const auto bytes = must_encode(snapshot, replay::encode_snapshot);
  const auto back = must_decode<core::Snapshot>(bytes, replay::decode_snapshot);
  RC_ASSERT(diff(snapshot, back) == std::string());
  RC_ASSERT(must_encode(back, replay::encode_snapshot) == bytes);
}

RC_GTEST_PROP(CodecRoundTrip, DecodesAtAnyAlignment, (const core::Event& event)) {
  const auto bytes = must_encode(event, replay::encode_event);
  const auto shift = *rc::gen::inRange<std::size_t>(0, 8);
  std::vector<std::uint8_t> buffer(bytes.size() + 8);
  std::memcpy(buffer.data() + shift, bytes.data(), bytes.size());
  const auto back = must_decode<core::Event>(std::span(buffer.data() + shift, bytes.size()),
                                             replay::decode_event);
  RC_ASSERT(diff(event, back) == std::string());
}

RC_GTEST_PROP(CodecRoundTrip, PrefixesAndTrailingBytesAreRefused, (const core::Event& event)) {
  const auto bytes = must_encode(event, replay::encode_event);
  const auto n = *rc::gen::inRange<std::size_t>(0, bytes.size());
  RC_ASSERT(!replay::decode_event(std::span(bytes.data(), n)).ok());
  auto longer = bytes;
  longer.resize(bytes.size() + 8 * *rc::gen::inRange<std::size_t>(1, 4), 0);
  RC_ASSERT(!replay::decode_event(longer).ok());
}

RC_GTEST_PROP(CodecRoundTrip, CorruptedEventsNeverCrash, (const core::Event& event)) {
  auto bytes = must_encode(event, replay::encode_event);
  const auto flips = *rc::gen::container<std::vector<std::size_t>>(
      *rc::gen::inRange<std::size_t>(1, 5), rc::gen::inRange<std::size_t>(0, bytes.size() * 8));
  for (std::size_t bit : flips) bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  const auto back = replay::decode_event(bytes);
  RC_CLASSIFY(back.ok(), "still decodes");
  if (back.ok()) RC_ASSERT(replay::encode_event(back.value()).ok());
}

RC_GTEST_PROP(CodecRoundTrip, CorruptedSnapshotsNeverCrash, (const core::Snapshot& snapshot)) {
  auto bytes = must_encode(snapshot, replay::encode_snapshot);
  const auto flips = *rc::gen::container<std::vector<std::size_t>>(
      *rc::gen::inRange<std::size_t>(1, 5), rc::gen::inRange<std::size_t>(0, bytes.size() * 8));
  for (std::size_t bit : flips) bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  const auto back = replay::decode_snapshot(bytes);
  RC_CLASSIFY(back.ok(), "still decodes");
  if (back.ok()) RC_ASSERT(replay::encode_snapshot(back.value()).ok());
}

}  // namespace
