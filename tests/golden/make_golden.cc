// Writes the hand-made golden journals of journals/golden/: small sessions that together use every
// event type and provoke every reject reason the engine can produce. Run by
// scripts/make-golden.sh, which also records their hashes; see journals/golden/README.md.
//
//   qx_make_golden OUT_DIR      -> OUT_DIR/basic, OUT_DIR/rejects, OUT_DIR/rules
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"

namespace {

using namespace qx::core;

class Script {
 public:
  explicit Script(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void add(EventBody body) {
    seq_ += 1;
    time_ns_ += 250'000'000;
    events_.push_back(Event{EventHeader{Seq(seq_), time_ns_, 1}, std::move(body)});
    effects_.clear();
    engine_.apply(events_.back(), effects_);
  }
  // Stamps the next event at `time_ns` (later than the last), and later ones 250 ms apart again.
  void at(std::int64_t time_ns) { time_ns_ = time_ns - 250'000'000; }
  // The state so far, for scenarios that size something by it.
  const Engine& engine() const { return engine_; }
  // A stop or take-profit order.
  void stop(std::uint32_t account, std::uint32_t instrument, Direction d, Offset o, PriceType pt,
            std::int64_t price, std::int64_t lots, TimeCondition tc, StopTrigger t,
            std::uint64_t client = 0) {
    NewOrder e{AccountId(account),
               InstrumentId(instrument),
               ClientOrderId(client),
               d,
               o,
               pt,
               PriceTicks(price),
               Lots(lots),
               tc,
               VolumeCondition::kAny};
    e.trigger = t;
    add(e);
  }
  void order(std::uint32_t account, std::uint32_t instrument, Direction d, Offset o, PriceType pt,
             std::int64_t price, std::int64_t lots, TimeCondition tc = TimeCondition::kGfd,
             VolumeCondition vc = VolumeCondition::kAny, bool post_only = false,
             std::uint64_t client = 0) {
    add(NewOrder{AccountId(account), InstrumentId(instrument), ClientOrderId(client), d, o, pt,
                 PriceTicks(price), Lots(lots), tc, vc, post_only});
  }
  int write() const {
    std::filesystem::remove_all(dir_);
    auto w = qx::replay::JournalWriter::open(dir_, {});
    if (!w) return fail(w.error().message);
    for (const Event& e : events_) {
      if (auto s = w.value().append(e); !s) return fail(s.error().message);
    }
    if (auto c = w.value().commit(); !c) return fail(c.error().message);
    return 0;
  }

 private:
  static int fail(const std::string& why) {
    std::fprintf(stderr, "make_golden: %s\n", why.c_str());
    return 1;
  }
  std::filesystem::path dir_;
  std::vector<Event> events_;
  Engine engine_;
  EffectBuffer effects_;
  std::uint64_t seq_ = 0;
  std::int64_t time_ns_ = 1'735'781'400'000'000'000;  // 2025-01-02 01:30 UTC
};

InstrumentParams if_params() {
  InstrumentParams p;
  p.price_tick_e8 = 20'000'000;
  p.multiplier_e8 = 300 * kDecimalScale;
  p.margin_long_ppb = p.margin_short_ppb = 100'000'000;
  p.fees.open_ppb = 23'010;
  p.fees.close_ppb = 23'010;
  p.fees.close_today_ppb = 345'000;
  p.price_band_ppb = 100'000'000;
  p.max_order_volume = Lots(100);
  p.position_limit = Lots(50);
  return p;
}

InstrumentParams au_params() {  // per-lot fees, no band
  InstrumentParams p;
  p.price_tick_e8 = 2'000'000;
  p.multiplier_e8 = 1000 * kDecimalScale;
  p.margin_long_ppb = p.margin_short_ppb = 80'000'000;
  p.fees.open_per_lot = Money(100'000);
  p.fees.close_per_lot = Money(100'000);
  p.fees.close_today_per_lot = Money(0);
  p.max_order_volume = Lots(1'000'000);
  p.position_limit = Lots(100'000);  // price ceiling 1e15 / (100,000 x 200,000) = 50,000 ticks
  return p;
}

Money cny(std::int64_t v) {
  return Money(v * kMoneyScale);
}

// 2025-01-02 at h:m local time in UTC+8, as UTC nanoseconds; and h:m as seconds after midnight.
constexpr std::int64_t local(int h, int m) {
  return (1'735'747'200 + std::int64_t{h} * 3600 + m * 60) * 1'000'000'000;
}
constexpr std::uint32_t hm(int h, int m) {
  return static_cast<std::uint32_t>(h * 3600 + m * 60);
}

constexpr auto kBuy = Direction::kBuy;
constexpr auto kSell = Direction::kSell;
constexpr auto kOpen = Offset::kOpen;
constexpr auto kLimit = PriceType::kLimit;

// Every event type, all order types, settlement and expiry (liquidation: rules()).
void basic(Script& s) {
  s.add(LeaderTerm{3, 1});       // a cluster's leader journals its term first
  s.add(SetCurrency{"CNY", 4});  // the default, said out loud
  // Room for what this journal holds (none is reached here; `rejects` reaches each).
  s.add(SetLimits{EngineLimits{8, 8, 64, 0, 16}});
  s.add(CreateInstrument{"IF2501", "CFFEX", if_params(), PriceTicks(19'000)});
  s.add(CreateInstrument{"au2506", "SHFE", au_params(), PriceTicks(31'000)});
  s.add(UpdateInstrument{InstrumentId(1), au_params()});
  for (const char* name : {"alice", "bob", "carol", "thin"}) s.add(CreateUser{name});
  for (std::uint32_t u = 0; u < 4; ++u) {
    s.add(CreateAccount{UserId(u), std::string("acc_") + std::to_string(u)});
    s.add(Deposit{AccountId(u), cny(u == 3 ? 250'000 : 5'000'000)});
  }
  s.add(SetAccountRisk{AccountId(2), 50, true});
  s.add(SetRiskParams{kPpb});
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 3, TimeCondition::kGtc, VolumeCondition::kAny, false,
          1);
  s.order(1, 0, kSell, kOpen, kLimit, 19'010, 2, TimeCondition::kGfd, VolumeCondition::kAny, true);
  s.order(1, 0, kSell, kOpen, kLimit, 19'000, 2);  // trades with alice
  s.order(2, 0, kBuy, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kIoc);
  s.order(2, 0, kSell, kOpen, kLimit, 18'990, 1, TimeCondition::kIoc, VolumeCondition::kAll);
  s.order(2, 0, kBuy, kOpen, PriceType::kBest, 0, 2);
  s.add(AmendOrder{AccountId(0), OrderRef{std::nullopt, ClientOrderId(1)}, PriceTicks(19'002),
                   Lots(1)});
  s.add(CancelOrder{AccountId(0), OrderRef{std::nullopt, ClientOrderId(1)}});
  s.order(3, 0, kBuy, kOpen, kLimit, 19'000, 2);  // thin: 2 lots long
  s.order(1, 0, kSell, kOpen, kLimit, 19'000, 2);
  s.order(2, 0, kBuy, kOpen, kLimit, 17'500, 5, TimeCondition::kGtc);  // absorbs liquidation
  s.order(0, 1, kBuy, kOpen, kLimit, 31'000, 4);
  s.order(1, 1, kSell, kOpen, kLimit, 31'000, 4);
  s.order(0, 1, kSell, Offset::kCloseToday, kLimit, 31'050, 1);
  s.order(1, 1, kBuy, Offset::kCloseToday, kLimit, 31'050, 1);
  s.add(MarkToMarket{});  // checks the holders of IF and au (nobody is liquidated yet)
  s.add(Withdraw{AccountId(1), cny(1'000)});
  s.add(Settle{{SettlementPrice{
      InstrumentId(0), PriceTicks(18'200)}}});  // thin (1 lot) is not liquidated; see rules()
  s.order(0, 1, kSell, Offset::kCloseYesterday, kLimit, 31'100, 1);
  s.order(1, 1, kBuy, Offset::kClose, kLimit, 31'100, 1);
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kHalted});
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kTrading});
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kDelisted});
  // An instrument whose last trading day is today (2): the final Settle below cancels carol's
  // resting bid, delivers alice's long and bob's short lot and delists it.
  InstrumentParams expiring = if_params();
  expiring.last_trading_day = 2;
  s.add(CreateInstrument{"IF2412", "CFFEX", expiring, PriceTicks(18'200)});
  s.order(1, 2, kSell, kOpen, kLimit, 18'200, 1);
  s.order(0, 2, kBuy, kOpen, kLimit, 18'200, 1);
  s.order(2, 2, kBuy, kOpen, kLimit, 18'100, 1, TimeCondition::kGtc);
  // Self-trade prevention: bob's account cancels both sides; then one order of his chooses to
  // cancel only the resting one (and rests itself).
  s.add(SetAccountRisk{AccountId(1), 0, true,
                       SelfTradePrevention{StpMode::kCancelBoth, StpScope::kUser}});
  s.order(1, 0, kSell, kOpen, kLimit, 18'300, 1, TimeCondition::kGtc);
  s.order(1, 0, kBuy, kOpen, kLimit, 18'300, 1);  // both cancelled
  s.order(1, 0, kSell, kOpen, kLimit, 18'300, 1, TimeCondition::kGtc);
  s.add(NewOrder{AccountId(1), InstrumentId(0), ClientOrderId(0), kBuy, kOpen, kLimit,
                 PriceTicks(18'300), Lots(1), TimeCondition::kGfd, VolumeCondition::kAny, false,
                 SelfTradePrevention{StpMode::kCancelOldest, StpScope::kAccount}});
  // Stops: carol's buy stop (a limit at 3664.0 once the last price reaches 3662.0) and her day
  // sell stop on the mark; alice and bob trade at 3662.0, which fires the first (it rests: no
  // offer left); the second expires at the settlement below.
  s.stop(2, 0, kBuy, kOpen, kLimit, 18'320, 1, TimeCondition::kGtc,
         StopTrigger{TriggerKind::kStop, TriggerSource::kLast, PriceTicks(18'310)}, 7);
  s.stop(2, 0, kSell, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kGfd,
         StopTrigger{TriggerKind::kStop, TriggerSource::kMark, PriceTicks(18'000)});
  s.order(0, 0, kSell, kOpen, kLimit, 18'310, 1, TimeCondition::kGtc);
  s.order(1, 0, kBuy, kOpen, kLimit, 18'310, 1);
  // Sessions (UTC+8): IF2501's day has a call from 09:40 and continuous trading from 09:45. Set
  // at 09:41, in the call: alice's bid at 3666.0 and bob's offer at 3664.0 rest though they
  // cross (carol's bid at 3664.0 rests too); the next event at 09:45 ends the call first, and
  // the book uncrosses at one price.
  s.at(local(9, 41));
  s.add(SetSession{InstrumentId(0), SessionSchedule{8 * 3600,
                                                    {{hm(9, 40), TradingPhase::kAuction},
                                                     {hm(9, 45), TradingPhase::kContinuous},
                                                     {hm(15, 0), TradingPhase::kClosed}}}});
  s.order(0, 0, kBuy, kOpen, kLimit, 18'330, 1);
  s.order(1, 0, kSell, kOpen, kLimit, 18'320, 1);
  s.at(local(9, 45));
  s.add(MarkToMarket{});
  s.add(Settle{{}});
}

// Every reject reason the engine produces.
void rejects(Script& s) {
  InstrumentParams bad = if_params();
  bad.margin_long_ppb = -1;
  s.add(CreateInstrument{"IF2501", "CFFEX", if_params(), PriceTicks(19'000)});
  s.add(CreateInstrument{"au2506", "SHFE", au_params(), PriceTicks(31'000)});
  s.add(CreateInstrument{"BAD", "X", bad, PriceTicks(1)});  // INVALID_PARAMETER
  s.add(LeaderTerm{7, 2});
  s.add(LeaderTerm{7, 3});  // STALE_EPOCH
  s.add(LeaderTerm{8, 0});  // INVALID_PARAMETER: no leader
  s.add(CreateInstrument{"IF2501", "CFFEX", if_params(), PriceTicks(1)});          // DUPLICATE_NAME
  s.add(CreateInstrument{std::string(40, 'x'), "X", if_params(), PriceTicks(1)});  // INVALID_NAME
  s.add(CreateUser{"u0"});
  s.add(CreateUser{"u1"});
  s.add(CreateAccount{UserId(0), "a0"});
  s.add(CreateAccount{UserId(1), "a1"});
  s.add(CreateAccount{UserId(9), "a9"});  // UNKNOWN_USER
  s.add(SetCurrency{"USDT", 8});          // CURRENCY_FIXED: instruments and accounts exist
  s.add(Deposit{AccountId(0), cny(2'000'000)});
  s.add(Deposit{AccountId(1), cny(2'000'000)});
  s.add(Withdraw{AccountId(0), cny(3'000'000)});  // WITHDRAW_EXCEEDS
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 0);  // INVALID_VOLUME
  s.order(0, 0, kBuy, kOpen, kLimit, 0, 1);       // INVALID_PRICE
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 1, TimeCondition::kGfd, VolumeCondition::kAll);
  s.order(0, 1, kBuy, kOpen, kLimit, 50'001, 1);  // INVALID_PRICE: above the price ceiling
  InstrumentParams huge = if_params();
  huge.price_tick_e8 = kDecimalScale;
  huge.multiplier_e8 = 1'000'000'000 * kDecimalScale;  // tick value 1e13 minor units
  huge.margin_long_ppb = huge.margin_short_ppb = 1'000'000'000;
  huge.price_band_ppb.reset();
  s.add(CreateInstrument{"HUGE", "X", huge, PriceTicks(900'000)});            // NUMERIC_OVERFLOW
  s.order(0, 7, kBuy, kOpen, kLimit, 19'000, 1);                              // UNKNOWN_INSTRUMENT
  s.order(7, 0, kBuy, kOpen, kLimit, 19'000, 1);                              // UNKNOWN_ACCOUNT
  s.order(0, 0, kBuy, kOpen, kLimit, 25'000, 1);                              // PRICE_OUTSIDE_BAND
  s.order(0, 0, kBuy, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kIoc);  // NO_LIQUIDITY
  s.order(1, 0, kSell, kOpen, kLimit, 19'000, 5, TimeCondition::kGtc);
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 1, TimeCondition::kGfd, VolumeCondition::kAny,
          true);  // POST_ONLY_WOULD_CROSS
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 9, TimeCondition::kIoc, VolumeCondition::kAll);
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 20);           // INSUFFICIENT_FUNDS
  s.order(0, 0, kSell, Offset::kClose, kLimit, 19'000, 1);  // INSUFFICIENT_POSITION
  s.order(0, 0, kBuy, kOpen, kLimit, 18'000, 51);           // POSITION_LIMIT_EXCEEDED (limit 50)
  s.order(0, 0, kBuy, kOpen, kLimit, 18'000, 101);          // ORDER_VOLUME_LIMIT
  s.order(0, 0, kBuy, kOpen, kLimit, 18'000, 1, TimeCondition::kGtc, VolumeCondition::kAny, false,
          5);
  s.order(0, 0, kBuy, kOpen, kLimit, 18'000, 1, TimeCondition::kGtc, VolumeCondition::kAny, false,
          5);  // DUPLICATE_CLIENT_ID
  s.add(AmendOrder{AccountId(0), OrderRef{std::nullopt, ClientOrderId(5)}, PriceTicks(18'000),
                   Lots(1)});                                                  // AMEND_NO_CHANGE
  s.add(CancelOrder{AccountId(0), OrderRef{OrderId(999), ClientOrderId(0)}});  // UNKNOWN_ORDER
  s.add(CancelOrder{AccountId(1), OrderRef{OrderId(2), ClientOrderId(0)}});    // ORDER_NOT_OWNED
  s.add(SetAccountRisk{AccountId(1), 1, true});
  s.order(1, 0, kSell, kOpen, kLimit, 19'100, 1);  // TOO_MANY_OPEN_ORDERS
  s.add(SetAccountRisk{AccountId(1), 0, false});
  s.order(1, 0, kSell, kOpen, kLimit, 19'100, 1);  // ACCOUNT_DISABLED
  s.add(SetAccountRisk{AccountId(1), 0, true});
  s.order(1, 1, kBuy, kOpen, kLimit, 31'000, 600);  // au position 600
  s.order(0, 1, kSell, kOpen, kLimit, 31'000, 600);
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kHalted});
  s.order(0, 1, kBuy, kOpen, kLimit, 31'000, 1);  // INSTRUMENT_HALTED
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kDelisted});
  s.order(0, 1, kBuy, kOpen, kLimit, 31'000, 1);  // INSTRUMENT_DELISTED
  InstrumentParams tight = if_params();
  tight.position_limit = Lots(1);
  s.add(UpdateInstrument{InstrumentId(0), tight});
  s.order(0, 0, kBuy, kOpen, kLimit, 18'500, 2);  // POSITION_LIMIT
  s.add(SetRiskParams{-5});                       // INVALID_PARAMETER
  // An account may hold positions or OPEN orders in 128 instruments at most.
  s.add(CreateUser{"u2"});
  s.add(CreateAccount{UserId(2), "a2"});
  s.add(Deposit{AccountId(2), cny(100'000'000)});
  for (int i = 0; i <= 128; ++i) {
    s.add(CreateInstrument{"T" + std::to_string(i), "X", if_params(), PriceTicks(19'000)});
    s.order(2, static_cast<std::uint32_t>(2 + i), kBuy, kOpen, kLimit, 18'000, 1,
            TimeCondition::kGtc);  // the last: TOO_MANY_INSTRUMENTS
  }
  s.add(Deposit{AccountId(2), Money(kMoneyMax)});  // NUMERIC_OVERFLOW: the day's deposits
  // On T0 (no trade yet: its mark is its reference price, 19,000) a buy stop at 19,500 waits; a
  // sell stop at 19,000 has been reached already; the waiting stop cannot be amended.
  s.stop(2, 2, kBuy, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kGtc,
         StopTrigger{TriggerKind::kStop, TriggerSource::kMark, PriceTicks(19'500)}, 9);
  s.stop(
      2, 2, kSell, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kGtc,
      StopTrigger{TriggerKind::kStop, TriggerSource::kMark, PriceTicks(19'000)});  // WOULD_TRIGGER
  s.add(AmendOrder{AccountId(2), OrderRef{std::nullopt, ClientOrderId(9)}, PriceTicks(1),
                   Lots(1)});  // STOP_NOT_AMENDABLE
  // Engine limits, each reached once: as many instruments as exist, one account more, two
  // orders more than are live (orders and stops), one order per price level.
  const Engine& e = s.engine();
  const auto live = static_cast<std::uint32_t>(e.stats().orders_resting + e.all_stops().size());
  s.add(SetLimits{EngineLimits{static_cast<std::uint32_t>(e.instrument_count()),
                               static_cast<std::uint32_t>(e.account_count() + 1), live + 2, 0, 1}});
  s.add(CreateInstrument{"T_LIMIT", "X", if_params(), PriceTicks(19'000)});  // INSTRUMENT_LIMIT
  s.add(CreateUser{"u3"});
  s.add(CreateAccount{UserId(3), "a3"});
  s.add(Deposit{AccountId(3), cny(1'000'000)});
  s.add(CreateUser{"u4"});
  s.add(CreateAccount{UserId(4), "a4"});  // ACCOUNT_LIMIT
  // T0 (instrument 2) holds a2's bid at 18,000.
  s.order(3, 2, kBuy, kOpen, kLimit, 18'000, 1, TimeCondition::kGtc);  // PRICE_LEVEL_FULL
  s.order(3, 2, kBuy, kOpen, kLimit, 17'990, 1, TimeCondition::kGtc);
  s.order(3, 2, kBuy, kOpen, kLimit, 17'980, 1, TimeCondition::kGtc);
  s.order(3, 2, kBuy, kOpen, kLimit, 17'970, 1, TimeCondition::kGtc);  // ORDER_LIMIT
  // Sessions: T1 (instrument 3) in a call all day refuses a MARKET order; closed, a limit one.
  s.add(SetSession{InstrumentId(3), SessionSchedule{0, {{0, TradingPhase::kAuction}}}});
  s.order(2, 3, kBuy, kOpen, PriceType::kMarket, 0, 1, TimeCondition::kIoc);  // AUCTION_ORDER_TYPE
  s.add(SetSession{InstrumentId(3), SessionSchedule{0, {{0, TradingPhase::kClosed}}}});
  s.order(2, 3, kBuy, kOpen, kLimit, 18'000, 1);  // MARKET_CLOSED
}

// The risk and lifecycle rules, each provoked once (docs/semantics.md): an account liquidated at
// settlement whose forced sale finds no bid (its own resting order cancelled, the attempt stuck),
// retried by MarkToMarket and sold below zero, its deficit paid by the insurance fund; a resting
// order a moved band leaves outside; a resting order of a delisted instrument.
void rules(Script& s) {
  s.add(CreateInstrument{"IF2501", "CFFEX", if_params(), PriceTicks(19'000)});  // band 10%
  s.add(CreateInstrument{"au2506", "SHFE", au_params(), PriceTicks(31'000)});
  const char* names[] = {"long", "short", "fund", "mm"};
  for (std::uint32_t u = 0; u < 4; ++u) {
    s.add(CreateUser{names[u]});
    s.add(CreateAccount{UserId(u), names[u]});
    s.add(Deposit{AccountId(u), cny(u == 0 ? 250'000 : 5'000'000)});
  }
  s.add(SetRiskParams{kPpb, AccountId(2)});  // liquidate at margin >= balance; "fund" pays
  // Day 1: "long" buys 2 IF at 3800.0 (margin 228,000 of its 250,000) and offers 1 back at
  // 3760.0 (GTC); "short" also offers 1 at 4000.0 (GTC).
  s.order(1, 0, kSell, kOpen, kLimit, 19'000, 2);
  s.order(0, 0, kBuy, kOpen, kLimit, 19'000, 2);
  s.order(0, 0, kSell, Offset::kClose, kLimit, 18'800, 1, TimeCondition::kGtc);
  s.order(1, 0, kSell, kOpen, kLimit, 20'000, 1, TimeCondition::kGtc);
  // Settle at the band's floor, 3420.0: "long" loses 228,000 and is liquidated: its offer is
  // cancelled (FORCED_LIQUIDATION), but no bid exists, so its position stays. The new band is
  // [3078.0, 3762.0]: the offer at 4000.0 is cancelled (OUTSIDE_BAND).
  s.add(Settle{{SettlementPrice{InstrumentId(0), PriceTicks(17'100)}}});
  // Day 2: "mm" bids 2 at 3078.0; "short" and "mm" trade 1 lot at 3080.0.
  s.order(3, 0, kBuy, kOpen, kLimit, 15'390, 2, TimeCondition::kGtc);
  s.order(1, 0, kSell, kOpen, kLimit, 15'400, 1, TimeCondition::kGtc);
  s.order(3, 0, kBuy, kOpen, kLimit, 15'400, 1);
  // Marked at 3080.0, "long" is liquidated again: sold at 3078.0 into "mm"'s bid, its balance
  // is about -183,000 and the fund pays it (INSURANCE_COVERED).
  s.add(MarkToMarket{});
  // A resting bid on au, then au is delisted (INSTRUMENT_DELISTED).
  s.order(1, 1, kBuy, kOpen, kLimit, 30'000, 1, TimeCondition::kGtc);
  s.add(SetInstrumentStatus{InstrumentId(1), InstrumentStatus::kDelisted});
  s.add(Settle{{}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: qx_make_golden OUT_DIR\n");
    return 2;
  }
  std::filesystem::path out = argv[1];
  Script b(out / "basic");
  basic(b);
  Script r(out / "rejects");
  rejects(r);
  Script u(out / "rules");
  rules(u);
  for (Script* s : {&b, &r, &u}) {
    if (int rc = s->write(); rc != 0) return rc;
  }
  return 0;
}
