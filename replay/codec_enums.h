// Internal to replay/codec.cc: the 1:1 mapping between core enums and schema enums.
//
// Each schema enum starts with `invalid @0` and its ordinals equal the explicit values of the
// core enum it mirrors, so a conversion is a range check and a cast. The static_asserts below
// check every enumerant at compile time; EnumMap<C>::kMax is the largest value both sides
// define, and anything above it is refused in both directions.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>

#include "core/effects.h"
#include "core/types.h"
#include "journals/schema/events.capnp.h"

namespace qx::replay::detail {

template <class C, class S>
constexpr bool same_value(C c, S s) {
  return static_cast<std::uint32_t>(core::raw(c)) == static_cast<std::uint32_t>(s);
}

template <class Core>
struct EnumMap;

template <>
struct EnumMap<core::Direction> {
  using Schema = schema::Direction;
  static constexpr std::uint32_t kMax = 2;
  static constexpr const char* kName = "Direction";
};
static_assert(same_value(core::Direction::kBuy, schema::Direction::BUY));
static_assert(same_value(core::Direction::kSell, schema::Direction::SELL));
static_assert(EnumMap<core::Direction>::kMax == core::raw(core::Direction::kSell));

template <>
struct EnumMap<core::Offset> {
  using Schema = schema::Offset;
  static constexpr std::uint32_t kMax = 4;
  static constexpr const char* kName = "Offset";
};
static_assert(same_value(core::Offset::kOpen, schema::Offset::OPEN));
static_assert(same_value(core::Offset::kClose, schema::Offset::CLOSE));
static_assert(same_value(core::Offset::kCloseToday, schema::Offset::CLOSE_TODAY));
static_assert(same_value(core::Offset::kCloseYesterday, schema::Offset::CLOSE_YESTERDAY));
static_assert(EnumMap<core::Offset>::kMax == core::raw(core::Offset::kCloseYesterday));

template <>
struct EnumMap<core::PriceType> {
  using Schema = schema::PriceType;
  static constexpr std::uint32_t kMax = 3;
  static constexpr const char* kName = "PriceType";
};
static_assert(same_value(core::PriceType::kLimit, schema::PriceType::LIMIT));
static_assert(same_value(core::PriceType::kMarket, schema::PriceType::MARKET));
static_assert(same_value(core::PriceType::kBest, schema::PriceType::BEST));
static_assert(EnumMap<core::PriceType>::kMax == core::raw(core::PriceType::kBest));

template <>
struct EnumMap<core::TimeCondition> {
  using Schema = schema::TimeCondition;
  static constexpr std::uint32_t kMax = 3;
  static constexpr const char* kName = "TimeCondition";
};
static_assert(same_value(core::TimeCondition::kGfd, schema::TimeCondition::GFD));
static_assert(same_value(core::TimeCondition::kGtc, schema::TimeCondition::GTC));
static_assert(same_value(core::TimeCondition::kIoc, schema::TimeCondition::IOC));
static_assert(EnumMap<core::TimeCondition>::kMax == core::raw(core::TimeCondition::kIoc));

template <>
struct EnumMap<core::VolumeCondition> {
  using Schema = schema::VolumeCondition;
  static constexpr std::uint32_t kMax = 2;
  static constexpr const char* kName = "VolumeCondition";
};
static_assert(same_value(core::VolumeCondition::kAny, schema::VolumeCondition::ANY));
static_assert(same_value(core::VolumeCondition::kAll, schema::VolumeCondition::ALL));
static_assert(EnumMap<core::VolumeCondition>::kMax == core::raw(core::VolumeCondition::kAll));

template <>
struct EnumMap<core::StpMode> {
  using Schema = schema::StpMode;
  static constexpr std::uint32_t kMax = 3;
  static constexpr const char* kName = "StpMode";
};
static_assert(same_value(core::StpMode::kCancelNewest, schema::StpMode::CANCEL_NEWEST));
static_assert(same_value(core::StpMode::kCancelOldest, schema::StpMode::CANCEL_OLDEST));
static_assert(same_value(core::StpMode::kCancelBoth, schema::StpMode::CANCEL_BOTH));
static_assert(EnumMap<core::StpMode>::kMax == core::raw(core::StpMode::kCancelBoth));

template <>
struct EnumMap<core::StpScope> {
  using Schema = schema::StpScope;
  static constexpr std::uint32_t kMax = 2;
  static constexpr const char* kName = "StpScope";
};
static_assert(same_value(core::StpScope::kAccount, schema::StpScope::ACCOUNT));
static_assert(same_value(core::StpScope::kUser, schema::StpScope::USER));
static_assert(EnumMap<core::StpScope>::kMax == core::raw(core::StpScope::kUser));

template <>
struct EnumMap<core::TriggerKind> {
  using Schema = schema::TriggerKind;
  static constexpr std::uint32_t kMax = 2;
  static constexpr const char* kName = "TriggerKind";
};
static_assert(same_value(core::TriggerKind::kStop, schema::TriggerKind::STOP));
static_assert(same_value(core::TriggerKind::kTakeProfit, schema::TriggerKind::TAKE_PROFIT));
static_assert(EnumMap<core::TriggerKind>::kMax == core::raw(core::TriggerKind::kTakeProfit));

template <>
struct EnumMap<core::TriggerSource> {
  using Schema = schema::TriggerSource;
  static constexpr std::uint32_t kMax = 2;
  static constexpr const char* kName = "TriggerSource";
};
static_assert(same_value(core::TriggerSource::kLast, schema::TriggerSource::LAST));
static_assert(same_value(core::TriggerSource::kMark, schema::TriggerSource::MARK));
static_assert(EnumMap<core::TriggerSource>::kMax == core::raw(core::TriggerSource::kMark));

template <>
struct EnumMap<core::InstrumentStatus> {
  using Schema = schema::InstrumentStatus;
  static constexpr std::uint32_t kMax = 3;
  static constexpr const char* kName = "InstrumentStatus";
};
static_assert(same_value(core::InstrumentStatus::kTrading, schema::InstrumentStatus::TRADING));
static_assert(same_value(core::InstrumentStatus::kHalted, schema::InstrumentStatus::HALTED));
static_assert(same_value(core::InstrumentStatus::kDelisted, schema::InstrumentStatus::DELISTED));
static_assert(EnumMap<core::InstrumentStatus>::kMax ==
              core::raw(core::InstrumentStatus::kDelisted));

template <>
struct EnumMap<core::TradingPhase> {
  using Schema = schema::TradingPhase;
  static constexpr std::uint32_t kMax = 5;
  static constexpr const char* kName = "TradingPhase";
};
static_assert(same_value(core::TradingPhase::kContinuous, schema::TradingPhase::CONTINUOUS));
static_assert(same_value(core::TradingPhase::kAuction, schema::TradingPhase::AUCTION));
static_assert(same_value(core::TradingPhase::kPreOpen, schema::TradingPhase::PRE_OPEN));
static_assert(same_value(core::TradingPhase::kBreak, schema::TradingPhase::BREAK));
static_assert(same_value(core::TradingPhase::kClosed, schema::TradingPhase::CLOSED));
static_assert(EnumMap<core::TradingPhase>::kMax == core::raw(core::TradingPhase::kClosed));

static_assert(same_value(core::OrderStatus::kAlive, schema::OrderStatus::ALIVE));
static_assert(same_value(core::OrderStatus::kFinished, schema::OrderStatus::FINISHED));

template <>
struct EnumMap<core::EffectKind> {
  using Schema = schema::EffectKind;
  static constexpr std::uint32_t kMax = 29;
  static constexpr const char* kName = "EffectKind";
};
static_assert(same_value(core::EffectKind::kOrderAccepted, schema::EffectKind::ORDER_ACCEPTED));
static_assert(same_value(core::EffectKind::kOrderRejected, schema::EffectKind::ORDER_REJECTED));
static_assert(same_value(core::EffectKind::kOrderAmended, schema::EffectKind::ORDER_AMENDED));
static_assert(same_value(core::EffectKind::kOrderCancelled, schema::EffectKind::ORDER_CANCELLED));
static_assert(same_value(core::EffectKind::kTrade, schema::EffectKind::TRADE));
static_assert(same_value(core::EffectKind::kInstrumentCreated,
                         schema::EffectKind::INSTRUMENT_CREATED));
static_assert(same_value(core::EffectKind::kInstrumentUpdated,
                         schema::EffectKind::INSTRUMENT_UPDATED));
static_assert(same_value(core::EffectKind::kInstrumentStatusChanged,
                         schema::EffectKind::INSTRUMENT_STATUS_CHANGED));
static_assert(same_value(core::EffectKind::kUserCreated, schema::EffectKind::USER_CREATED));
static_assert(same_value(core::EffectKind::kAccountCreated, schema::EffectKind::ACCOUNT_CREATED));
static_assert(same_value(core::EffectKind::kDeposited, schema::EffectKind::DEPOSITED));
static_assert(same_value(core::EffectKind::kWithdrawn, schema::EffectKind::WITHDRAWN));
static_assert(same_value(core::EffectKind::kAdminRejected, schema::EffectKind::ADMIN_REJECTED));
static_assert(same_value(core::EffectKind::kAccountRiskSet, schema::EffectKind::ACCOUNT_RISK_SET));
static_assert(same_value(core::EffectKind::kRiskParamsSet, schema::EffectKind::RISK_PARAMS_SET));
static_assert(same_value(core::EffectKind::kAccountSettled, schema::EffectKind::ACCOUNT_SETTLED));
static_assert(same_value(core::EffectKind::kSettlementDone, schema::EffectKind::SETTLEMENT_DONE));
static_assert(same_value(core::EffectKind::kLiquidationStarted,
                         schema::EffectKind::LIQUIDATION_STARTED));
static_assert(same_value(core::EffectKind::kMarkedToMarket, schema::EffectKind::MARKED_TO_MARKET));
static_assert(same_value(core::EffectKind::kInsuranceCovered,
                         schema::EffectKind::INSURANCE_COVERED));
static_assert(same_value(core::EffectKind::kCurrencySet, schema::EffectKind::CURRENCY_SET));
static_assert(same_value(core::EffectKind::kPositionDelivered,
                         schema::EffectKind::POSITION_DELIVERED));
static_assert(same_value(core::EffectKind::kStopAccepted, schema::EffectKind::STOP_ACCEPTED));
static_assert(same_value(core::EffectKind::kStopTriggered, schema::EffectKind::STOP_TRIGGERED));
static_assert(same_value(core::EffectKind::kLimitsSet, schema::EffectKind::LIMITS_SET));
static_assert(same_value(core::EffectKind::kSessionSet, schema::EffectKind::SESSION_SET));
static_assert(same_value(core::EffectKind::kAuctionUncrossed,
                         schema::EffectKind::AUCTION_UNCROSSED));
static_assert(same_value(core::EffectKind::kPhaseChanged, schema::EffectKind::PHASE_CHANGED));
static_assert(same_value(core::EffectKind::kTermStarted, schema::EffectKind::TERM_STARTED));
static_assert(EnumMap<core::EffectKind>::kMax == core::raw(core::EffectKind::kTermStarted));

// The schema enumerant for a core value, or nullopt when the schema does not define it.
template <class C>
std::optional<typename EnumMap<C>::Schema> to_schema_enum(C value) {
  const auto raw = static_cast<std::uint32_t>(core::raw(value));
  if (raw > EnumMap<C>::kMax) return std::nullopt;
  return static_cast<typename EnumMap<C>::Schema>(raw);
}

// The core value for a schema ordinal, or nullopt when core does not define it (an ordinal
// from a newer schema, or garbage).
template <class C>
std::optional<C> to_core_enum(typename EnumMap<C>::Schema value) {
  const auto raw = static_cast<std::uint32_t>(value);
  if (raw > EnumMap<C>::kMax) return std::nullopt;
  return static_cast<C>(static_cast<std::underlying_type_t<C>>(raw));
}

}  // namespace qx::replay::detail
