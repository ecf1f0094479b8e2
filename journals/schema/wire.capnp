# The binary TCP protocol of `qx serve` (default 127.0.0.1:9090): client requests and server
# messages as Cap'n Proto structs.
#
# Framing: each message on the stream is a 4-byte little-endian length N followed by N bytes of
# one Cap'n Proto message in the standard stream encoding (segment table, then segments; what
# capnp::messageToFlatArray writes), unpacked. N is at most 65,536 from a client; a larger N, a
# message that does not decode, or a request without a body is a protocol error: the server sends
# an `error` and closes the connection, and nothing is journaled.
#
# Units are the journal's (events.capnp): prices in ticks of the instrument, volumes in lots,
# money in minor units (10^loginOk.moneyDecimals per currency unit: 10,000 on an exchange in CNY
# with the default 4 decimals, 10^8 on one in USDT with 8), times in ns since the Unix epoch. Accounts
# and instruments are named by their dense ids, learnt from `loginOk.accounts` and
# `instruments`; a client never sends a name on the hot path.
#
# Flow: log in first (password or a token from POST /api/auth/login); every other request before
# a successful login gets `error` code "unauthorized". Each request carries a client-chosen
# requestId that its direct answer echoes. An order request is answered after its event is
# durable (`orderResult`); what happens to the order then (acceptance, trades, cancels, amends,
# including fills as the resting side) arrives as `execution` messages (requestId 0) on every
# session of the owning user, in journal order. Market data (`book`, `trade`) arrives for
# instruments the session subscribed to; a session that reads too slowly gets conflated book
# snapshots (only the newest per instrument), and is disconnected if its execution reports
# back up beyond the server's buffer.
#
# Fields are only appended with new ordinals; an ordinal is never reused.
@0xc3a5e1d0b7f29a41;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qx::wire");

using Ev = import "events.capnp";

# Version of this protocol; the server sends it in loginOk.
const wireVersion :UInt32 = 1;

# ---------------------------------------------------------------------------------------------
# Client to server.

struct ClientMessage {
  requestId @0 :UInt64;   # chosen by the client; echoed in the direct answer
  body :union {
    none @1 :Void;                  # a protocol error
    login @2 :Login;
    newOrder @3 :NewOrder;
    amend @4 :Amend;
    cancel @5 :Cancel;
    subscribe @6 :Subscribe;        # market data of one instrument
    unsubscribe @7 :UInt32;         # instrument id; answered by `pong`
    instruments @8 :Void;           # answered by `instruments`
    account @9 :UInt32;             # account id; answered by `account`
    orders @10 :UInt32;             # account id; resting orders, answered by `orders`
    ping @11 :Void;                 # answered by `pong`
  }
}

struct Login {
  union {
    password :group {
      username @0 :Text;
      password @1 :Text;      # checked against the argon2id hash (slow by design, ~0.1 s)
    }
    token @2 :Text;           # a bearer token from POST /api/auth/login or an earlier loginOk
  }
  noExecutions @3 :Bool;      # this session wants no execution reports, only direct answers
}

struct NewOrder {
  account @0 :UInt32;                   # account id (one of loginOk.accounts)
  instrument @1 :UInt32;                # instrument id
  clientOrderId @2 :UInt64;             # unique within the account; 0 = the server assigns
  direction @3 :Ev.Direction;
  offset @4 :Ev.Offset;                 # invalid reads as open
  priceType @5 :Ev.PriceType;           # invalid reads as limit
  timeCondition @6 :Ev.TimeCondition;   # invalid reads as gfd
  volumeCondition @7 :Ev.VolumeCondition;  # invalid reads as any
  postOnly @8 :Bool;
  price @9 :Int64;                      # ticks; limit orders only
  volume @10 :Int64;                    # lots, >= 1
  stpMode @11 :Ev.StpMode;              # self-trade prevention; both invalid (unset) = the
  stpScope @12 :Ev.StpScope;            # account's; one unset = cancelNewest / account
  triggerPrice @13 :Int64;              # ticks; non-zero makes this a stop order, held until
  triggerKind @14 :Ev.TriggerKind;      # the reference price reaches it (invalid reads as stop)
  triggerSource @15 :Ev.TriggerSource;  # the last price or the mark (invalid reads as last)
}

struct Amend {
  account @0 :UInt32;
  orderId @1 :UInt64;          # the exchange's order id, or 0 and:
  clientOrderId @2 :UInt64;    # the client's id of the order
  price @3 :Int64;             # new price, ticks
  volumeLeft @4 :Int64;        # new remaining volume, lots
}

struct Cancel {
  account @0 :UInt32;
  orderId @1 :UInt64;          # the exchange's order id, or 0 and:
  clientOrderId @2 :UInt64;    # the client's id of the order
}

struct Subscribe {
  instrument @0 :UInt32;
  depth @1 :UInt8;             # book levels per side: 1 (L1), 5 or 10; 0 = trades only
  trades @2 :Bool;             # also public trades
}

# ---------------------------------------------------------------------------------------------
# Server to client.

struct ServerMessage {
  requestId @0 :UInt64;        # the request answered; 0 for execution reports and market data
  body :union {
    none @1 :Void;
    error @2 :Error;
    loginOk @3 :LoginOk;
    orderResult @4 :OrderResult;
    execution @5 :Execution;
    book @6 :Book;
    trade @7 :PublicTrade;
    instruments @8 :List(InstrumentInfo);
    account @9 :AccountInfo;
    orders @10 :List(OrderInfo);
    pong @11 :Void;
    subscribed @12 :UInt32;     # instrument id; the current book follows
    notLeader @13 :NotLeader;   # a cluster's follower refuses a write: send it to the leader
  }
}

# The answer of a cluster's follower (docs/cluster.md) to a write: nothing of the request was
# journaled; connect to the leader's tcp address, log in again and send it there. Reads are
# answered by any node.
struct NotLeader {
  node @0 :UInt32;    # the leader's node id; 0: no leader is known yet (retry shortly)
  tcp @1 :Text;       # its binary TCP address HOST:PORT (empty when node is 0)
  http @2 :Text;      # its HTTP address
  message @3 :Text;   # for people
}

struct Error {
  code @0 :Text;      # stable: unauthorized, forbidden, bad_request, unknown_account,
                      # unknown_instrument, overloaded, rate_limited, protocol,
                      # outcome_unknown (a cluster's leader lost its term before a majority
                      # held the request: it may or may not be journaled; ask the new leader)
  message @1 :Text;   # for people
}

struct LoginOk {
  user @0 :Text;
  role @1 :Text;                  # admin, trader, viewer or auditor
  accounts @2 :List(AccountRef);  # the user's accounts
  version @3 :UInt32;             # wireVersion
  token @4 :Text;                 # after a password login: a bearer token for more sessions
                                  # (and REST), valid for the server's token lifetime
  currency @5 :Text;              # the exchange's currency, e.g. "CNY" or "USDT"
  moneyDecimals @6 :UInt32;       # money fields count 10^-moneyDecimals of it (4 for CNY)
}

struct AccountRef {
  id @0 :UInt32;
  name @1 :Text;
}

# The outcome of newOrder, amend or cancel, after its event is durable.
struct OrderResult {
  seq @0 :UInt64;              # the journaled event; 0 when refused before the journal
  accepted @1 :Bool;           # false: rejected by the engine (reason says why)
  reason @2 :Text;             # stable reject reason name (core RejectReason), empty if accepted
  rejectCode @3 :UInt16;       # its number
  orderId @4 :UInt64;          # the order (newOrder: assigned; 0 when rejected)
  clientOrderId @5 :UInt64;    # the client's id (assigned by the server when sent as 0)
}

enum ExecKind {
  invalid @0;
  accepted @1;     # the order rests or is being matched
  rejected @2;     # reason = RejectReason
  amended @3;      # price and volumeLeft are the new values
  cancelled @4;    # reason = CancelReason; volumeLeft = the volume cancelled
  trade @5;        # one fill of this order
  stopAccepted @6;   # a stop order waits: price = limit price (0: market), triggerPrice
  stopTriggered @7;  # its trigger fired (price = the reference price); its order follows as
                     # accepted (a new orderId, the same clientOrderId) or rejected
}

struct Execution {
  seq @0 :UInt64;
  timestampNs @1 :Int64;
  kind @2 :ExecKind;
  account @3 :UInt32;
  instrument @4 :UInt32;
  orderId @5 :UInt64;
  clientOrderId @6 :UInt64;
  direction @7 :Ev.Direction;
  offset @8 :Ev.Offset;
  price @9 :Int64;             # ticks: order price, or the trade price
  volume @10 :Int64;           # lots: order volume, or the fill volume
  volumeLeft @11 :Int64;       # lots still open after this
  tradeId @12 :UInt64;         # trades only
  fee @13 :Int64;              # trades only: this side's commission, minor units
  reason @14 :UInt16;          # rejects and cancels
  maker @15 :Bool;             # trades only: this order was resting
  triggerPrice @16 :Int64;     # stops only: the trigger price, ticks
}

struct Level {
  price @0 :Int64;             # ticks
  volume @1 :Int64;            # lots
  orders @2 :UInt32;
}

# The book of one instrument after event `seq` (a snapshot, not a delta: conflation drops
# nothing a client needs).
struct Book {
  instrument @0 :UInt32;
  seq @1 :UInt64;
  timestampNs @2 :Int64;
  bids @3 :List(Level);        # best first, at most the subscribed depth
  asks @4 :List(Level);
  lastPrice @5 :Int64;         # ticks; 0 before the first trade
  volume @6 :Int64;            # lots traded today
}

struct PublicTrade {
  instrument @0 :UInt32;
  seq @1 :UInt64;
  timestampNs @2 :Int64;
  tradeId @3 :UInt64;
  price @4 :Int64;
  volume @5 :Int64;
  aggressor @6 :Ev.Direction;  # the taker's side
}

struct InstrumentInfo {
  id @0 :UInt32;
  code @1 :Text;
  exchange @2 :Text;
  status @3 :Ev.InstrumentStatus;
  priceTickE8 @4 :Int64;       # tick size x 1e8
  multiplierE8 @5 :Int64;      # contract multiplier x 1e8
  maxOrderVolume @6 :Int64;
  preSettlement @7 :Int64;     # ticks
}

# QIFI-shaped account figures, money in minor units.
struct AccountInfo {
  id @0 :UInt32;
  name @1 :Text;
  preBalance @2 :Int64;
  deposit @3 :Int64;
  withdraw @4 :Int64;
  closeProfit @5 :Int64;
  commission @6 :Int64;
  positionProfit @7 :Int64;
  balance @8 :Int64;
  margin @9 :Int64;
  frozenMargin @10 :Int64;
  frozenCommission @11 :Int64;
  available @12 :Int64;
  riskRatioPpb @13 :Int64;
}

struct OrderInfo {
  orderId @0 :UInt64;
  clientOrderId @1 :UInt64;
  instrument @2 :UInt32;
  direction @3 :Ev.Direction;
  offset @4 :Ev.Offset;
  priceType @5 :Ev.PriceType;
  timeCondition @6 :Ev.TimeCondition;
  price @7 :Int64;
  volume @8 :Int64;
  volumeLeft @9 :Int64;
  insertTimeNs @10 :Int64;
}
