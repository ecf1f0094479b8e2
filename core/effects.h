// Effects: what applying an event did, written into a buffer the caller owns.
//
// One flat record type keeps the hot path free of allocation and makes hashing canonical: every
// effect is folded, field by field in declaration order, into the engine's running effects hash.
// Fields a kind does not use stay zero. Business outcomes (rejects) are effects, never errors.
#pragma once

#include <cstdint>
#include <vector>

#include "core/hash.h"
#include "core/types.h"

namespace qx::core {

enum class EffectKind : std::uint8_t {
  kOrderAccepted = 1,   // order, account, instrument, client id, direction, offset, price, volume
  kOrderRejected = 2,   // reason = RejectReason; order ids zero; echoes the request
  kOrderAmended = 3,    // order, price = new price, volume_left = new remaining volume
  kOrderCancelled = 4,  // reason = CancelReason, volume_left = volume that was cancelled
  kTrade = 5,           // trade, order = taker, counter_order = maker, price, volume, fees
  kInstrumentCreated = 6,
  kInstrumentUpdated = 7,
  kInstrumentStatusChanged = 8,
  kUserCreated = 9,
  kAccountCreated = 10,
  kDeposited = 11,      // amount
  kWithdrawn = 12,      // amount
  kAdminRejected = 13,  // reason = RejectReason
  kAccountRiskSet = 14,
  kRiskParamsSet = 15,
  kAccountSettled = 16,      // amount = new pre_balance
  kSettlementDone = 17,      // amount = trading day number after settlement
  kLiquidationStarted = 18,  // amount = balance, amount2 = margin at the trigger
  kMarkedToMarket = 19,      // volume = accounts checked (0 when no liquidation ratio is set)
  // account = the liquidated account, counter_account = the insurance fund, amount = what the fund
  // paid, amount2 = what it could not (stays on the account as a negative balance)
  kInsuranceCovered = 20,
  kCurrencySet = 21,  // amount = minor units per currency unit (10^decimals)
  // At expiry: account, instrument, direction (BUY = the long side, SELL = the short side),
  // volume = lots delivered, price = the final settlement price, amount = their value there
  // (cash delivery; the mark to that price is already in the account's settlement).
  kPositionDelivered = 22,
  // A stop order placed and held out of the book: order = its id, account, instrument, client id,
  // direction, offset, price = its limit price (0 for MARKET), volume, amount = the trigger price
  // in ticks, reason = TriggerKind | TriggerSource << 8.
  kStopAccepted = 23,
  // A stop order's trigger price was reached: order = the stop's id, price = the reference price
  // that reached it, amount = the trigger price, the rest as STOP_ACCEPTED. The order it enters
  // follows at once as ORDER_ACCEPTED (a new order id, the same client id) or ORDER_REJECTED.
  kStopTriggered = 24,
  kLimitsSet = 25,   // SetLimits accepted (no fields: the limits are in the event)
  kSessionSet = 26,  // SetSession accepted: instrument (the schedule is in the event)
  // A call auction's uncrossing round: instrument, price = the auction price, volume = the lots
  // matchable there by the rule (docs/semantics.md); its TRADEs follow at that price.
  kAuctionUncrossed = 27,
  // instrument, reason = the new TradingPhase, amount = the previous one
  kPhaseChanged = 28,
  // LeaderTerm accepted: amount = the epoch, volume = the leader's node id
  kTermStarted = 29,
};

struct Effect {
  EffectKind kind{};
  Direction direction{};        // the order's (or the taker's) direction
  Offset offset{};              // the order's (or the taker's) offset
  Offset counter_offset{};      // maker's offset on trades
  std::uint16_t reason{};       // RejectReason or CancelReason
  std::uint16_t pad_{};         // always zero; keeps the record free of padding bytes
  AccountId account{};          // the order's (or the taker's) account
  AccountId counter_account{};  // maker's account on trades
  InstrumentId instrument{};
  UserId user{};
  OrderId order{};
  OrderId counter_order{};
  ClientOrderId client_order_id{};
  TradeId trade{};
  PriceTicks price{};
  Lots volume{};
  Lots volume_left{};
  Money amount{};   // taker fee on trades; money for deposits, withdrawals, settlement
  Money amount2{};  // maker fee on trades
};

using EffectBuffer = std::vector<Effect>;

// One step of the effects hash chain: the previous hash, then every field of e in declaration
// order (small fields packed into words). Inline so that an engine call site that has just set
// the fields can hash them from registers instead of reading the record back from memory.
inline std::uint64_t chain_effect(std::uint64_t previous, const Effect& e) {
  Hasher h(previous);
  h.word(static_cast<std::uint64_t>(e.kind) | static_cast<std::uint64_t>(e.direction) << 8 |
         static_cast<std::uint64_t>(e.offset) << 16 |
         static_cast<std::uint64_t>(e.counter_offset) << 24 |
         static_cast<std::uint64_t>(e.reason) << 32);
  h.word(raw(e.account) | static_cast<std::uint64_t>(raw(e.counter_account)) << 32);
  h.word(raw(e.instrument) | static_cast<std::uint64_t>(raw(e.user)) << 32);
  h.word(raw(e.order));
  h.word(raw(e.counter_order));
  h.word(raw(e.client_order_id));
  h.word(raw(e.trade));
  h.i64(e.price.value);
  h.i64(e.volume.value);
  h.i64(e.volume_left.value);
  h.i64(e.amount.value);
  h.i64(e.amount2.value);
  return h.finish();
}

const char* to_string(EffectKind k);

}  // namespace qx::core
