// Stable text names of the domain enums, as clients and auditors see them (QIFI/DIFF spelling).
#include "core/effects.h"
#include "core/types.h"

namespace qx::core {

const char* to_string(RejectReason r) {
  switch (r) {
    case RejectReason::kInvalidVolume: return "INVALID_VOLUME";
    case RejectReason::kInvalidPrice: return "INVALID_PRICE";
    case RejectReason::kInvalidCombination: return "INVALID_COMBINATION";
    case RejectReason::kDuplicateClientOrderId: return "DUPLICATE_CLIENT_ORDER_ID";
    case RejectReason::kNumericOverflow: return "NUMERIC_OVERFLOW";
    case RejectReason::kInvalidParameter: return "INVALID_PARAMETER";
    case RejectReason::kDuplicateName: return "DUPLICATE_NAME";
    case RejectReason::kNameTooLong: return "INVALID_NAME";
    case RejectReason::kUnknownInstrument: return "UNKNOWN_INSTRUMENT";
    case RejectReason::kInstrumentHalted: return "INSTRUMENT_HALTED";
    case RejectReason::kInstrumentDelisted: return "INSTRUMENT_DELISTED";
    case RejectReason::kPriceOutsideBand: return "PRICE_OUTSIDE_BAND";
    case RejectReason::kNoLiquidity: return "NO_LIQUIDITY";
    case RejectReason::kPostOnlyWouldCross: return "POST_ONLY_WOULD_CROSS";
    case RejectReason::kFokUnfillable: return "FOK_UNFILLABLE";
    case RejectReason::kCurrencyFixed: return "CURRENCY_FIXED";
    case RejectReason::kStopWouldTrigger: return "STOP_WOULD_TRIGGER";
    case RejectReason::kPriceLevelFull: return "PRICE_LEVEL_FULL";
    case RejectReason::kInstrumentLimit: return "INSTRUMENT_LIMIT";
    case RejectReason::kMarketClosed: return "MARKET_CLOSED";
    case RejectReason::kAuctionOrderType: return "AUCTION_ORDER_TYPE";
    case RejectReason::kStaleEpoch: return "STALE_EPOCH";
    case RejectReason::kUnknownAccount: return "UNKNOWN_ACCOUNT";
    case RejectReason::kUnknownUser: return "UNKNOWN_USER";
    case RejectReason::kAccountDisabled: return "ACCOUNT_DISABLED";
    case RejectReason::kInsufficientFunds: return "INSUFFICIENT_FUNDS";
    case RejectReason::kInsufficientPosition: return "INSUFFICIENT_POSITION";
    case RejectReason::kPositionLimitExceeded: return "POSITION_LIMIT_EXCEEDED";
    case RejectReason::kOrderVolumeLimitExceeded: return "ORDER_VOLUME_LIMIT_EXCEEDED";
    case RejectReason::kTooManyOpenOrders: return "TOO_MANY_OPEN_ORDERS";
    case RejectReason::kWithdrawExceedsAvailable: return "WITHDRAW_EXCEEDS_AVAILABLE";
    case RejectReason::kTooManyInstruments: return "TOO_MANY_INSTRUMENTS";
    case RejectReason::kAccountLimit: return "ACCOUNT_LIMIT";
    case RejectReason::kOrderLimit: return "ORDER_LIMIT";
    case RejectReason::kUnknownOrder: return "UNKNOWN_ORDER";
    case RejectReason::kOrderNotOwned: return "ORDER_NOT_OWNED";
    case RejectReason::kAmendNoChange: return "AMEND_NO_CHANGE";
    case RejectReason::kStopNotAmendable: return "STOP_NOT_AMENDABLE";
  }
  return "UNKNOWN_REASON";
}

const char* to_string(CancelReason r) {
  switch (r) {
    case CancelReason::kUserRequest: return "USER_REQUEST";
    case CancelReason::kIocRemainder: return "IOC_REMAINDER";
    case CancelReason::kSelfTradePrevention: return "SELF_TRADE_PREVENTION";
    case CancelReason::kExpired: return "EXPIRED";
    case CancelReason::kForcedLiquidation: return "FORCED_LIQUIDATION";
    case CancelReason::kInstrumentDelisted: return "INSTRUMENT_DELISTED";
    case CancelReason::kOutsideBand: return "OUTSIDE_BAND";
    case CancelReason::kInstrumentExpired: return "INSTRUMENT_EXPIRED";
    case CancelReason::kMoneyLimit: return "MONEY_LIMIT";
  }
  return "UNKNOWN_REASON";
}

const char* to_string(Direction d) {
  return d == Direction::kBuy ? "BUY" : "SELL";
}

const char* to_string(Offset o) {
  switch (o) {
    case Offset::kOpen: return "OPEN";
    case Offset::kClose: return "CLOSE";
    case Offset::kCloseToday: return "CLOSETODAY";
    case Offset::kCloseYesterday: return "CLOSEYESTERDAY";
  }
  return "INVALID";
}

const char* to_string(PriceType p) {
  switch (p) {
    case PriceType::kLimit: return "LIMIT";
    case PriceType::kMarket: return "MARKET";
    case PriceType::kBest: return "BEST";
  }
  return "INVALID";
}

const char* to_string(TimeCondition t) {
  switch (t) {
    case TimeCondition::kGfd: return "GFD";
    case TimeCondition::kGtc: return "GTC";
    case TimeCondition::kIoc: return "IOC";
  }
  return "INVALID";
}

const char* to_string(VolumeCondition v) {
  switch (v) {
    case VolumeCondition::kAny: return "ANY";
    case VolumeCondition::kAll: return "ALL";
  }
  return "INVALID";
}

const char* to_string(StpMode m) {
  switch (m) {
    case StpMode::kCancelNewest: return "CANCEL_NEWEST";
    case StpMode::kCancelOldest: return "CANCEL_OLDEST";
    case StpMode::kCancelBoth: return "CANCEL_BOTH";
  }
  return "INVALID";
}

const char* to_string(StpScope s) {
  switch (s) {
    case StpScope::kAccount: return "ACCOUNT";
    case StpScope::kUser: return "USER";
  }
  return "INVALID";
}

const char* to_string(TriggerKind k) {
  switch (k) {
    case TriggerKind::kStop: return "STOP";
    case TriggerKind::kTakeProfit: return "TAKE_PROFIT";
  }
  return "INVALID";
}

const char* to_string(TriggerSource s) {
  switch (s) {
    case TriggerSource::kLast: return "LAST";
    case TriggerSource::kMark: return "MARK";
  }
  return "INVALID";
}

const char* to_string(TradingPhase p) {
  switch (p) {
    case TradingPhase::kContinuous: return "CONTINUOUS";
    case TradingPhase::kAuction: return "AUCTION";
    case TradingPhase::kPreOpen: return "PRE_OPEN";
    case TradingPhase::kBreak: return "BREAK";
    case TradingPhase::kClosed: return "CLOSED";
  }
  return "INVALID";
}

const char* to_string(InstrumentStatus s) {
  switch (s) {
    case InstrumentStatus::kTrading: return "TRADING";
    case InstrumentStatus::kHalted: return "HALTED";
    case InstrumentStatus::kDelisted: return "DELISTED";
  }
  return "INVALID";
}

const char* to_string(EffectKind k) {
  switch (k) {
    case EffectKind::kOrderAccepted: return "ORDER_ACCEPTED";
    case EffectKind::kOrderRejected: return "ORDER_REJECTED";
    case EffectKind::kOrderAmended: return "ORDER_AMENDED";
    case EffectKind::kOrderCancelled: return "ORDER_CANCELLED";
    case EffectKind::kTrade: return "TRADE";
    case EffectKind::kInstrumentCreated: return "INSTRUMENT_CREATED";
    case EffectKind::kInstrumentUpdated: return "INSTRUMENT_UPDATED";
    case EffectKind::kInstrumentStatusChanged: return "INSTRUMENT_STATUS_CHANGED";
    case EffectKind::kUserCreated: return "USER_CREATED";
    case EffectKind::kAccountCreated: return "ACCOUNT_CREATED";
    case EffectKind::kDeposited: return "DEPOSITED";
    case EffectKind::kWithdrawn: return "WITHDRAWN";
    case EffectKind::kAdminRejected: return "ADMIN_REJECTED";
    case EffectKind::kAccountRiskSet: return "ACCOUNT_RISK_SET";
    case EffectKind::kRiskParamsSet: return "RISK_PARAMS_SET";
    case EffectKind::kMarkedToMarket: return "MARKED_TO_MARKET";
    case EffectKind::kInsuranceCovered: return "INSURANCE_COVERED";
    case EffectKind::kCurrencySet: return "CURRENCY_SET";
    case EffectKind::kPositionDelivered: return "POSITION_DELIVERED";
    case EffectKind::kStopAccepted: return "STOP_ACCEPTED";
    case EffectKind::kStopTriggered: return "STOP_TRIGGERED";
    case EffectKind::kLimitsSet: return "LIMITS_SET";
    case EffectKind::kSessionSet: return "SESSION_SET";
    case EffectKind::kAuctionUncrossed: return "AUCTION_UNCROSSED";
    case EffectKind::kPhaseChanged: return "PHASE_CHANGED";
    case EffectKind::kTermStarted: return "TERM_STARTED";
    case EffectKind::kAccountSettled: return "ACCOUNT_SETTLED";
    case EffectKind::kSettlementDone: return "SETTLEMENT_DONE";
    case EffectKind::kLiquidationStarted: return "LIQUIDATION_STARTED";
  }
  return "INVALID";
}

}  // namespace qx::core
