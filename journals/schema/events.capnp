# The journaled input events and the effect record: the wire and disk contract of QAExchange.
#
# This file mirrors core/events.h, core/types.h and core/effects.h field by field; replay/codec
# converts between the two. Design choices:
#   - Fields are only ever appended with new ordinals; an ordinal is never reused or renumbered.
#   - Units are the core's: prices are integer counts of the instrument's price tick, volumes are
#     integer counts of lots, money is integer minor units (10,000 minor units per currency unit),
#     rates are parts per billion (1,000,000,000 = 100%), times are nanoseconds since the Unix
#     epoch (UTC). No floating point appears anywhere.
#   - Every enum starts with `invalid @0`, and each enumerant's ordinal equals the explicit value
#     of the core enum it mirrors, so conversion is a checked cast. `invalid` round-trips to the
#     core's zero value (which core itself treats as invalid); an ordinal this schema does not
#     define is a decoding error.
#   - Optional values are unions whose first member is `none :Void`, so an absent value is
#     distinct from zero and a field left unset reads as absent.
#   - The event body union starts with `none`; an event whose body is `none` (or a member this
#     reader does not know) is rejected by the decoder rather than read as some default event.
#   - Null struct pointers read as the struct's defaults, as usual in Cap'n Proto.
#   - Text fields hold the bytes the client sent; the codec caps each at 1,024 bytes (the engine
#     applies the tighter business limits and rejects longer names with a reason code).
@0xfd0a90357b1edab1;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qx::schema");

# Version of this schema. Bumped when a field or enumerant is appended; readers accept every
# version up to their own. Journal and snapshot headers record it.
const schemaVersion :UInt32 = 1;

# ---------------------------------------------------------------------------------------------
# Enums (ordinals equal core's explicit values; 0 is invalid).

# Side of an order. Mirrors core::Direction.
enum Direction {
  invalid @0;
  buy @1;    # bid: buys from sellers
  sell @2;   # ask: sells to buyers
}

# Whether an order opens or closes a position. Mirrors core::Offset.
enum Offset {
  invalid @0;
  open @1;             # open a new position
  close @2;            # close, history first then today (exchange rules)
  closeToday @3;       # close today's position only
  closeYesterday @4;   # close the history position only
}

# Mirrors core::PriceType.
enum PriceType {
  invalid @0;
  limit @1;    # rests at its price
  market @2;   # takes the book within the price band; the remainder is cancelled
  best @3;     # a limit at the best opposite price at arrival
}

# Mirrors core::TimeCondition.
enum TimeCondition {
  invalid @0;
  gfd @1;   # good for day: expires at settlement
  gtc @2;   # good till cancelled: survives settlement
  ioc @3;   # immediate or cancel (FAK): what does not fill at once is cancelled
}

# Mirrors core::VolumeCondition.
enum VolumeCondition {
  invalid @0;
  any @1;   # any volume may fill
  all @2;   # all or nothing; with IOC this is FOK
}

# Self-trade prevention (core::StpMode): what an incoming order meeting a resting order of its own
# account (or user, scope user) does.
enum StpMode {
  invalid @0;
  cancelNewest @1;   # the incoming order's remainder is cancelled
  cancelOldest @2;   # the resting order is cancelled; matching goes on
  cancelBoth @3;     # both
}

enum StpScope {
  invalid @0;
  account @1;        # orders of the same account
  user @2;           # orders of any account of the same user
}

# Mirrors core::TriggerKind: when a stop order fires (core/types.h).
enum TriggerKind {
  invalid @0;
  stop @1;         # a buy when the price rises to the trigger, a sell when it falls to it
  takeProfit @2;   # a buy when the price falls to the trigger, a sell when it rises to it
}

# Mirrors core::TriggerSource: the reference price a trigger watches.
enum TriggerSource {
  invalid @0;
  last @1;         # the last trade price
  mark @2;         # the mark: the last trade price, else the previous settlement price
}

# Mirrors core::TradingPhase: what an instrument takes in a session phase (core/types.h).
enum TradingPhase {
  invalid @0;
  continuous @1;   # everything; orders match as they arrive
  auction @2;      # call auction: limit GFD/GTC orders rest unmatched; uncross when it ends
  preOpen @3;      # frozen book: no orders, amendments or cancels
  break @4;        # cancels only
  closed @5;       # cancels only
}

# Mirrors core::InstrumentStatus.
enum InstrumentStatus {
  invalid @0;
  trading @1;    # orders accepted and matched
  halted @2;     # trading suspended
  delisted @3;   # removed from trading for good
}

# Mirrors core::OrderStatus.
enum OrderStatus {
  invalid @0;
  alive @1;      # may still trade
  finished @2;   # will never trade again
}

# Mirrors core::EffectKind. The comment says which Effect fields each kind fills.
enum EffectKind {
  invalid @0;
  orderAccepted @1;            # order, account, instrument, clientOrderId, direction, offset,
                               # price, volume
  orderRejected @2;            # reason = RejectReason; order ids zero; echoes the request
  orderAmended @3;             # order, price = new price, volumeLeft = new remaining volume
  orderCancelled @4;           # reason = CancelReason, volumeLeft = volume cancelled
  trade @5;                    # trade, order = taker, counterOrder = maker, price, volume, fees
  instrumentCreated @6;        # instrument
  instrumentUpdated @7;        # instrument
  instrumentStatusChanged @8;  # instrument
  userCreated @9;              # user
  accountCreated @10;          # account, user
  deposited @11;               # amount
  withdrawn @12;               # amount
  adminRejected @13;           # reason = RejectReason
  accountRiskSet @14;          # account
  riskParamsSet @15;           # no fields
  accountSettled @16;          # amount = new pre-balance
  settlementDone @17;          # amount = trading day number after settlement
  liquidationStarted @18;      # amount = balance, amount2 = margin at the trigger
  markedToMarket @19;          # volume = accounts checked
  insuranceCovered @20;        # amount = paid by the fund (counter account), amount2 = unpaid
  currencySet @21;             # amount = minor units per currency unit (10^decimals)
  positionDelivered @22;       # expiry: direction (buy = long side), volume, price, amount = value
  stopAccepted @23;            # order = stop id, price = limit price (0: market), volume,
                               # amount = trigger price (ticks), reason = kind | source << 8
  stopTriggered @24;           # order = stop id, price = the reference price that fired it,
                               # amount = trigger price; its entry's effects follow
  limitsSet @25;               # no fields (the limits are in the event)
  sessionSet @26;              # instrument (the schedule is in the event)
  auctionUncrossed @27;        # instrument, price = auction price, volume = matchable lots
  phaseChanged @28;            # instrument, reason = new TradingPhase, amount = previous one
  termStarted @29;             # amount = epoch, volume = the leader's node id
}

# ---------------------------------------------------------------------------------------------
# Shared structs.

# Stamped by the sequencer; the engine reads time from nowhere else. Mirrors core::EventHeader.
struct EventHeader {
  seq @0 :UInt64;           # sequence number: 1, 2, 3, ... with no gaps
  timestampNs @1 :Int64;    # sequencer time, ns since the Unix epoch (UTC)
  source @2 :UInt32;        # submitting session id; 0 = operator or simulator
}

# Fees charged per fill: perLot * lots + ceil(notional * ppb / 1e9), each part rounded up
# separately. Mirrors core::FeeSchedule.
struct FeeSchedule {
  openPerLot @0 :Int64;         # money (minor units) per lot when opening
  openPpb @1 :Int64;            # rate on notional when opening, parts per billion
  closePerLot @2 :Int64;        # money (minor units) per lot when closing history
  closePpb @3 :Int64;           # rate on notional when closing history, ppb
  closeTodayPerLot @4 :Int64;   # money (minor units) per lot when closing today's position
  closeTodayPpb @5 :Int64;      # rate on notional when closing today's position, ppb
}

# Tradable parameters of an instrument. Mirrors core::InstrumentParams.
struct InstrumentParams {
  priceTickE8 @0 :Int64;        # price tick as a decimal in units of 1e-8 (0.2 -> 20,000,000)
  multiplierE8 @1 :Int64;       # contract size per lot in units of 1e-8 (300 -> 30,000,000,000)
  marginLongPpb @2 :Int64;      # margin ratio of long positions, ppb of notional
  marginShortPpb @3 :Int64;     # margin ratio of short positions, ppb of notional
  fees @4 :FeeSchedule;         # commission schedule
  priceBand :union {            # limit up/down around the previous settlement price
    none @5 :Void;              # no band
    ppb @6 :Int64;              # band half-width, ppb of the previous settlement price
  }
  maxOrderVolume @7 :Int64;     # largest single order, lots
  positionLimit @8 :Int64;      # largest long or short position of one account, lots
  lastTradingDay @9 :UInt32;    # engine trading day whose settlement expires it; 0 = never
}

# Identifies a live order by the exchange's id or by the client's id within the account.
# Mirrors core::OrderRef.
struct OrderRef {
  orderId :union {
    none @0 :Void;              # not given: use clientOrderId
    id @1 :UInt64;              # the exchange's order id
  }
  clientOrderId @2 :UInt64;     # the client's order id, unique within the account
}

# ---------------------------------------------------------------------------------------------
# Event bodies (one per alternative of core::EventBody).

# Mirrors core::CreateInstrument.
struct CreateInstrument {
  code @0 :Text;                # e.g. "IF2501"; the engine accepts at most 31 bytes, unique
  exchange @1 :Text;            # e.g. "CFFEX"; the engine accepts at most 15 bytes
  params @2 :InstrumentParams; # initial tradable parameters
  preSettlement @3 :Int64;      # band reference price until the first settlement, ticks
}

# Mirrors core::UpdateInstrument.
struct UpdateInstrument {
  instrument @0 :UInt32;        # instrument id (dense index in creation order)
  params @1 :InstrumentParams;  # replaces all parameters
}

# Mirrors core::SetInstrumentStatus.
struct SetInstrumentStatus {
  instrument @0 :UInt32;        # instrument id
  status @1 :InstrumentStatus;  # new status
}

# Mirrors core::CreateUser.
struct CreateUser {
  name @0 :Text;                # the engine accepts at most 31 bytes, unique
}

# Mirrors core::CreateAccount.
struct CreateAccount {
  user @0 :UInt32;              # owning user id
  name @1 :Text;                # the engine accepts at most 31 bytes, unique
}

# Mirrors core::Deposit.
struct Deposit {
  account @0 :UInt32;           # account id
  amount @1 :Int64;             # money, minor units
}

# Mirrors core::Withdraw.
struct Withdraw {
  account @0 :UInt32;           # account id
  amount @1 :Int64;             # money, minor units
}

# Per-account limits and switch; a disabled account may only cancel. Mirrors core::SetAccountRisk.
struct SetAccountRisk {
  account @0 :UInt32;           # account id
  maxOpenOrders @1 :UInt32;     # most resting orders the account may have
  enabled @2 :Bool = true;      # false: the account may only cancel (default mirrors core)
  stpMode @3 :StpMode = cancelNewest;   # self-trade prevention of orders that choose none
  stpScope @4 :StpScope = account;
}

# Risk check of every account holding an instrument traded since the last settlement. Mirrors
# core::MarkToMarket (no fields).
struct MarkToMarket {}

# The exchange's one currency; only before the first instrument or account. Mirrors
# core::SetCurrency.
struct SetCurrency {
  code @0 :Text;         # 1 to 7 bytes, A-Z and 0-9, e.g. "USDT"
  decimals @1 :UInt32;   # money is in units of 10^-decimals of the currency (0..8)
}

# The engine's capacity; 0 = no limit. Mirrors core::EngineLimits (core/limits.h).
struct EngineLimits {
  instruments @0 :UInt32;        # listed instruments
  accounts @1 :UInt32;           # accounts
  orders @2 :UInt32;             # live orders and pending stops, exchange-wide
  ordersPerAccount @3 :UInt32;   # for accounts whose own maxOpenOrders is 0
  ordersPerLevel @4 :UInt32;     # resting orders at one price of one side of a book
}

# Mirrors core::SetLimits.
struct SetLimits {
  limits @0 :EngineLimits;
}

# One phase of a daily session schedule. Mirrors core::SessionEntry.
struct SessionEntry {
  startS @0 :UInt32;             # seconds after local midnight (below 86,400)
  phase @1 :TradingPhase;        # from then until the next entry's start
}

# An instrument's daily schedule. Mirrors core::SessionSchedule.
struct SessionSchedule {
  utcOffsetS @0 :Int32;                 # local time = UTC + this, seconds (within +-18 h)
  entries @1 :List(SessionEntry);       # strictly increasing starts; none: always continuous
}

# Mirrors core::SetSession.
struct SetSession {
  instrument @0 :UInt32;                # instrument id
  schedule @1 :SessionSchedule;
}

# The first event of a leadership term of a replicated exchange. Mirrors core::LeaderTerm.
struct LeaderTerm {
  epoch @0 :UInt64;                     # grows with every term (1 or more)
  node @1 :UInt32;                      # the leader's node id (1 or more)
}

# Exchange-wide risk parameters. Mirrors core::SetRiskParams.
struct SetRiskParams {
  liquidationRatioPpb @0 :Int64;  # liquidate when margin / balance >= this (1e9 = 100%)
  insuranceAccount :union {       # the insurance fund
    none @1 :Void;                # no fund: deficits stay on the liquidated account
    id @2 :UInt32;                # account id
  }
}

# One instrument's settlement price. Mirrors core::SettlementPrice.
struct SettlementPrice {
  instrument @0 :UInt32;        # instrument id
  price @1 :Int64;              # settlement price, ticks
}

# Daily settlement; unlisted instruments settle at their last trade price (or, with no trade
# yet, at the previous settlement price). Mirrors core::Settle.
struct Settle {
  prices @0 :List(SettlementPrice);   # explicit settlement prices
}

# Mirrors core::NewOrder.
struct NewOrder {
  account @0 :UInt32;                   # account id
  instrument @1 :UInt32;                # instrument id
  clientOrderId @2 :UInt64;             # chosen by the client, unique within the account
  direction @3 :Direction;              # buy or sell
  offset @4 :Offset;                    # open or which close
  priceType @5 :PriceType;              # limit, market or best
  price @6 :Int64;                      # limit price, ticks; ignored for market and best
  volume @7 :Int64;                     # lots
  timeCondition @8 :TimeCondition;      # gfd, gtc or ioc
  volumeCondition @9 :VolumeCondition;  # any or all (all + ioc = fok)
  postOnly @10 :Bool;                   # reject instead of taking liquidity
  stp :union {                          # self-trade prevention
    account @11 :Void;                  # the account's (SetAccountRisk)
    own :group {                        # this order's own
      mode @12 :StpMode;
      scope @13 :StpScope;
    }
  }
  trigger :union {                      # a stop or take-profit order (core::StopTrigger)
    none @14 :Void;                     # an ordinary order
    stop :group {                       # held until the reference price reaches `price`
      kind @15 :TriggerKind;
      source @16 :TriggerSource;
      price @17 :Int64;                 # trigger price, ticks
    }
  }
}

# Mirrors core::AmendOrder.
struct AmendOrder {
  account @0 :UInt32;           # account id
  ref @1 :OrderRef;             # which order
  newPrice @2 :Int64;           # ticks
  newVolumeLeft @3 :Int64;      # remaining volume after the amendment, lots
}

# Mirrors core::CancelOrder.
struct CancelOrder {
  account @0 :UInt32;           # account id
  ref @1 :OrderRef;             # which order
}

# One journaled input event. Mirrors core::Event.
struct Event {
  header @0 :EventHeader;                       # stamped by the sequencer
  body :union {                                 # exactly one event kind
    none @1 :Void;                              # never valid: rejected by the decoder
    createInstrument @2 :CreateInstrument;      # admin: list an instrument
    updateInstrument @3 :UpdateInstrument;      # admin: change its parameters
    setInstrumentStatus @4 :SetInstrumentStatus;  # admin: trade, halt or delist
    createUser @5 :CreateUser;                  # admin: add a user
    createAccount @6 :CreateAccount;            # admin: add an account to a user
    deposit @7 :Deposit;                        # admin: money in
    withdraw @8 :Withdraw;                      # admin: money out
    setAccountRisk @9 :SetAccountRisk;          # admin: per-account limits
    setRiskParams @10 :SetRiskParams;           # admin: exchange-wide risk parameters
    settle @11 :Settle;                         # admin: daily settlement
    newOrder @12 :NewOrder;                     # trading: enter an order
    amendOrder @13 :AmendOrder;                 # trading: change price or volume
    cancelOrder @14 :CancelOrder;               # trading: cancel an order
    markToMarket @15 :MarkToMarket;             # risk: check the holders of traded instruments
    setCurrency @16 :SetCurrency;               # admin: the exchange's currency and decimals
    setLimits @17 :SetLimits;                   # admin: the engine's capacity
    setSession @18 :SetSession;                 # admin: an instrument's trading sessions
    leaderTerm @19 :LeaderTerm;                 # cluster: a leader's term begins
  }
}

# ---------------------------------------------------------------------------------------------
# Effects.

# What applying an event did: one flat record, fields a kind does not use are zero (enums
# `invalid`). Mirrors core::Effect except its always-zero padding member, which is not stored.
struct Effect {
  kind @0 :EffectKind;          # what happened; decides which fields below are used
  direction @1 :Direction;      # the order's (or the taker's) direction
  offset @2 :Offset;            # the order's (or the taker's) offset
  counterOffset @3 :Offset;     # the maker's offset on trades
  reason @4 :UInt16;            # core RejectReason (1xx request, 2xx market, 3xx account/risk,
                                # 4xx order reference) or CancelReason (1..7) code, per kind
  account @5 :UInt32;           # the order's (or the taker's) account id
  counterAccount @6 :UInt32;    # the maker's account id on trades
  instrument @7 :UInt32;        # instrument id
  user @8 :UInt32;              # user id
  order @9 :UInt64;             # order id (the taker's on trades)
  counterOrder @10 :UInt64;     # the maker's order id on trades
  clientOrderId @11 :UInt64;    # the client's order id
  trade @12 :UInt64;            # trade id
  price @13 :Int64;             # ticks
  volume @14 :Int64;            # lots
  volumeLeft @15 :Int64;        # lots
  amount @16 :Int64;            # money, minor units: taker fee on trades; deposits etc.
  amount2 @17 :Int64;           # money, minor units: maker fee on trades; margin at liquidation
}
