// Fuzz target: the engine (core/engine.h) against the naive reference model
// (tests/property/model.h), the model-agreement property of engine_properties_test.cc driven by
// the fuzzer's bytes instead of rapidcheck's generators.
//
// What it checks: every event goes to a fresh core::Engine and a fresh Model; after each one the
// effects must agree kind by kind (compare_effects) and so must every account, position side,
// resting order, pending stop and price level (compare_state), both from
// tests/property/model_compare.h, exactly as the property compares them. On the first
// disagreement it prints the events so far, then the event's number (seq), the event and what
// differed, and calls std::abort(). An invalid event is no failure: the engine rejects it and
// the model must reject it for the same reason.
//
// How bytes become events: a cursor (Bytes) reads one byte per choice (an order packs a few of
// its choices into one byte) and one to four bytes per number in a range; bytes past the end read
// as 0, which mostly picks the most common choice. A typical order takes eight bytes.
// The first bytes build the setup the property's generator (tests/property/engine_gen.h) builds:
// maybe a currency and engine limits, 1-3 instruments shaped like IF, cu, rebar or a "huge" one
// at its price ceiling, 2-5 users and accounts (some users hold two) with a thin or rich deposit,
// most often a liquidation ratio and an insurance fund, and trading sessions: one input in four
// alternates call auctions and continuous trading on every instrument (a third of those with a
// clock that jumps), the rest give some instruments a schedule of any phases. Then up to 200
// commands, one per step until the bytes run out, at about the generator's odds: orders (prices a
// few ticks around the reference, client ids from a pool of six, every price type, time and
// volume condition, offset, post-only, self-trade prevention and stop triggers), amends, cancels,
// deposits, withdrawals, settlements, halts, account risk, limits, sessions, leader terms and
// MarkToMarket. Closes, amends, cancels and withdrawals are steered as the generator steers them,
// with the model's state at that point: most closes pick a held position, most amends and
// cancels a live order or a pending stop, withdrawals the edge of the available funds.
// A value from a byte never exceeds what the generator can produce, so the model (which aborts
// on numbers its generator cannot make) only meets scenarios the property could meet.
//
// Running it (fuzz/README.md):
//
//   scripts/fuzz.sh engine_model                          # the test command's budget
//   scripts/fuzz.sh --runs 1000000 engine_model
//   build/fuzz/fuzz/qx_fuzz_engine_model -len_control=0 -max_len=3000 DIR   # long scenarios
//   build/fuzz/fuzz/qx_fuzz_engine_model INPUT            # replay one (QX_FUZZ_TRACE=1: events)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/effects.h"
#include "core/engine.h"
#include "core/events.h"
#include "core/limits.h"
#include "core/numeric.h"
#include "core/types.h"
#include "tests/property/model.h"
#include "tests/property/model_compare.h"
#include "tests/property/model_steer.h"

namespace qx::property {
namespace {

// The clock of engine_gen.h: event i (from 0) at kStartNs + (i + 1) s, so that session
// schedules built around kStartS change phase while a scenario runs.
constexpr std::int64_t kStartNs = 1'735'781'400'000'000'000;  // 2025-01-02 01:30:00 UTC
constexpr std::int64_t kStartS = 5'400;                       // its UTC time of day
constexpr std::int64_t kSecondNs = 1'000'000'000;
constexpr std::int64_t kCny = core::kMoneyScale;
constexpr std::size_t kCommandsMax = 200;

// A cursor over the fuzzer's bytes. Past the end every byte reads as 0.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return empty() ? 0 : data_[pos_++]; }

  // An index into `weights`, each as likely as its weight (one byte; weights sum to <= 256).
  std::size_t weighted(std::initializer_list<unsigned> weights) {
    unsigned total = 0;
    for (unsigned w : weights) total += w;
    unsigned r = byte() % total;
    std::size_t i = 0;
    for (unsigned w : weights) {
      if (r < w) return i;
      r -= w;
      ++i;
    }
    return 0;  // not reached
  }
  // True with probability num / den (den <= 256); false past the end.
  bool chance(unsigned num, unsigned den) { return !empty() && byte() % den < num; }
  // A number in [lo, hi), from as few bytes as the span needs.
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    const auto span = static_cast<std::uint64_t>(hi - lo);
    std::size_t n = span <= 0x100 ? 1 : span <= 0x1'0000 ? 2 : span <= 0x1'0000'0000 ? 4 : 8;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | byte();
    return lo + static_cast<std::int64_t>(v % span);
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(range(0, n)); }
  template <class T, std::size_t N>
  T element(const T (&xs)[N]) {
    return xs[byte() % N];
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// What the commands need to know of the setup (engine_gen.h's World).
struct Shape {
  std::int64_t ref_ticks = 0;
  std::int64_t max_order_volume = 0;
  std::int64_t price_max = 0;  // the price ceiling; 0 when the instrument cannot be listed
};
struct Setup {
  std::vector<Shape> instruments;
  std::uint32_t accounts = 0;
  bool time_jumps = false;
};

// ---- values, with the generator's weights ---------------------------------------------------

// Mostly a valid index, now and then one past the end (unknown).
std::uint32_t pick_index(Bytes& in, std::uint32_t count) {
  const unsigned r = in.byte() % 81u;
  return r == 80 ? count : r % count;
}

std::int64_t price(Bytes& in, const Shape& s) {
  switch (in.weighted({88, 2, 8, 3, 1})) {
    case 1: return s.price_max + in.range(-2, 2);
    case 2: {
      const std::int64_t d = in.range(5, s.ref_ticks / 40);
      return s.ref_ticks + (d % 2 == 0 ? d : -d);
    }
    case 3: return in.chance(1, 2) ? -5 : 0;
    case 4: return std::int64_t{1} << 61;  // the notional overflows
    default: return s.ref_ticks + in.range(-4, 5);
  }
}

std::int64_t volume(Bytes& in, const Shape& s) {
  switch (in.weighted({80, 15, 2})) {
    case 1: return in.range(1, s.max_order_volume + 3);
    case 2: return in.chance(1, 2) ? -1 : 0;
    default: return in.range(1, 5);
  }
}

core::Money money(Bytes& in) {
  switch (in.weighted({3, 1, 1})) {
    case 1: return core::Money(in.range(1, 5'000'000) * kCny + 1);
    case 2: return core::Money(in.range(1, 1'001) * 1'000'000'000'000'000);  // near 1e18
    default: return core::Money(in.range(1'000, 300'000) * kCny);
  }
}

core::SelfTradePrevention stp(Bytes& in) {
  static constexpr core::StpMode kModes[] = {core::StpMode::kCancelNewest,
                                             core::StpMode::kCancelOldest,
                                             core::StpMode::kCancelBoth, core::StpMode{0}};
  static constexpr core::StpScope kScopes[] = {core::StpScope::kAccount, core::StpScope::kUser,
                                               core::StpScope{3}};
  core::SelfTradePrevention s;
  s.mode = kModes[in.weighted({3, 3, 3, 1})];
  s.scope = kScopes[in.weighted({4, 4, 1})];
  return s;
}

core::OrderRef order_ref(Bytes& in) {
  if (in.weighted({7, 3}) == 0) {
    return core::OrderRef{std::nullopt,
                          core::ClientOrderId(static_cast<std::uint64_t>(in.range(0, 7)))};
  }
  return core::OrderRef{core::OrderId(static_cast<std::uint64_t>(in.range(1, 16))),
                        core::ClientOrderId(0)};
}

core::EngineLimits limits(Bytes& in) {
  static constexpr std::uint32_t kInstruments[] = {0, 0, 2, 3};
  static constexpr std::uint32_t kAccounts[] = {0, 0, 3, 4};
  static constexpr std::uint32_t kOrders[] = {0, 0, 4, 12, 40};
  static constexpr std::uint32_t kPerAccount[] = {0, 0, 1, 3};
  static constexpr std::uint32_t kPerLevel[] = {0, 0, 1, 2};
  core::EngineLimits l;
  l.instruments = in.element(kInstruments);
  l.accounts = in.element(kAccounts);
  l.orders = in.element(kOrders);
  l.orders_per_account = in.element(kPerAccount);
  l.orders_per_level = in.element(kPerLevel);
  switch (in.weighted({30, 1, 1})) {
    case 1: l.orders = 100'000'001; break;              // above the maximum
    case 2: l.accounts = l.orders = 80'000'000; break;  // over the memory budget
    default: break;
  }
  return l;
}

core::SetRiskParams risk_params(Bytes& in, const Setup& w) {
  std::int64_t ratio = 0;
  switch (in.weighted({3, 3, 3, 1, 1, 1})) {
    case 0: ratio = in.range(1'000'000, 10'000'000); break;
    case 1: ratio = in.range(10'000'000, 100'000'000); break;
    case 2: ratio = in.range(100'000'000, 1'200'000'001); break;
    case 3: ratio = in.range(1, 1'000'000); break;
    case 4: ratio = in.range(1'200'000'001, 100'000'000'001); break;
    default: {
      static constexpr std::int64_t kOdd[] = {100'000'000'000, 100'000'000'001, 0, -1};
      ratio = in.element(kOdd);
    }
  }
  std::optional<core::AccountId> fund;
  if (in.weighted({3, 1}) == 0) fund = core::AccountId(pick_index(in, w.accounts));
  return core::SetRiskParams{ratio, fund};
}

// A schedule whose boundaries fall within the scenario, from about `from_s` seconds after its
// start (engine_gen.h's gen_session, which documents the choices).
core::SessionSchedule session(Bytes& in, std::int64_t from_s, bool calls_only) {
  static constexpr std::int32_t kOffsets[] = {0, 8 * 3600, -5 * 3600};
  core::SessionSchedule s;
  s.utc_offset_s = in.element(kOffsets);
  const std::int64_t start = (kStartS + 86'400 + s.utc_offset_s) % 86'400;
  const bool calls = calls_only || in.weighted({3, 2}) == 0;
  const std::int64_t n = in.range(calls ? 2 : 0, calls_only ? 17 : 7);
  std::int64_t at = start + from_s + 86'400 - 5 + in.range(calls ? 0 : 5, 10);
  static constexpr core::TradingPhase kPhases[] = {
      core::TradingPhase::kAuction, core::TradingPhase::kContinuous, core::TradingPhase::kPreOpen,
      core::TradingPhase::kBreak, core::TradingPhase::kClosed};
  for (std::int64_t i = 0; i < n; ++i) {
    const core::TradingPhase phase =
        calls ? (i % 2 == 0 ? core::TradingPhase::kAuction : core::TradingPhase::kContinuous)
              : kPhases[in.weighted({5, 5, 1, 1, 1})];
    s.entries.push_back({static_cast<std::uint32_t>(at % 86'400), phase});
    at += in.range(calls ? 3 : 5, calls ? 15 : 40);
  }
  std::sort(s.entries.begin(), s.entries.end(),
            [](const auto& x, const auto& y) { return x.start_s < y.start_s; });
  if (calls_only) return s;
  spoil_schedule(s, static_cast<int>(in.weighted({12, 1, 1, 1, 1})));
  return s;
}

core::FeeSchedule fees(Bytes& in) {
  constexpr auto schedule = fee_schedule;
  switch (in.weighted({3, 1, 1, 1, 1, 1, 1, 1})) {
    case 1: return schedule(0, 23'010, 0, 23'010, 0, 345'000);
    case 2: return schedule(0, 50'000, 0, 50'000, 0, 50'000);
    case 3: return schedule(3 * kCny, 0, 3 * kCny, 0, 6 * kCny, 0);
    case 4: return schedule(kCny, 10'000, kCny, 10'000, 0, 0);
    case 5: return schedule(0, 0, 0, 0, 0, 0);
    case 6: return schedule(12'345, 33'333, 5'432, 77'777, 1, 999'999);
    case 7: return schedule(0, 50'000'000, 0, 50'000'000, 0, 50'000'000);
    default: return schedule(0, 10'000, 0, 10'000, 0, 1'000'000'000);  // 100% to close today
  }
}

std::pair<core::CreateInstrument, Shape> instrument(Bytes& in, std::size_t i,
                                                    std::int64_t money_scale) {
  struct Kind {
    std::int64_t tick_e8, multiplier_e8, ref_ticks;
  };
  static constexpr Kind kKinds[] = {{20'000'000, 30'000'000'000, 19'000},        // IF
                                    {1'000'000'000, 500'000'000, 7'000},         // cu
                                    {100'000'000, 1'000'000'000, 3'500},         // rebar
                                    {100'000'000, 1'000'000'000'000'000, 900}};  // huge
  static constexpr std::int64_t kLong[] = {50'000'000, 100'000'000, 150'000'000, 1'000'000'000};
  static constexpr std::int64_t kShort[] = {50'000'000, 100'000'000, 120'000'000, 1'000'000'000};
  static constexpr std::optional<std::int64_t> kBands[] = {std::nullopt, 1'000'000, 2'000'000,
                                                           50'000'000};
  static constexpr std::int64_t kMaxVolume[] = {5, 10, 50};
  static constexpr std::int64_t kLimit[] = {8, 20, 1'000};
  static constexpr std::int64_t kHugeLimit[] = {8, 10, 11};
  static constexpr std::uint32_t kLastDay[] = {0, 1, 2};
  const Kind kind = kKinds[in.weighted({4, 4, 4, 1})];
  const bool huge = kind.ref_ticks == 900;
  core::InstrumentParams p;
  p.price_tick_e8 = kind.tick_e8;
  p.multiplier_e8 = kind.multiplier_e8;
  p.margin_long_ppb = in.element(kLong);
  p.margin_short_ppb = in.element(kShort);
  p.fees = fees(in);
  p.price_band_ppb = in.element(kBands);
  p.max_order_volume = core::Lots(in.element(kMaxVolume));
  p.position_limit = core::Lots(huge ? in.element(kHugeLimit) : in.element(kLimit));
  p.last_trading_day = kLastDay[in.weighted({6, 2, 1})];
  core::CreateInstrument c{"I" + std::to_string(i), "TEST", p, core::PriceTicks(kind.ref_ticks)};
  const auto tick_value =
      static_cast<std::int64_t>(core::i128{kind.tick_e8} * kind.multiplier_e8 * money_scale /
                                (core::i128{100'000'000} * 100'000'000));
  const std::int64_t price_max =
      tick_value == 0 ? 0 : 1'000'000'000'000'000 / (p.position_limit.value * tick_value);
  return {c, Shape{kind.ref_ticks, p.max_order_volume.value, price_max}};
}

// ---- the two sides ---------------------------------------------------------------------------

// Applies each event to the engine and to the model and stops the process at the first
// disagreement, printing the journal so far and what differs.
class Runner {
 public:
  explicit Runner(bool trace) : trace_(trace) {}

  const Model& model() const { return model_; }
  std::int64_t last_ns() const {
    return events_.empty() ? kStartNs : events_.back().header.timestamp_ns;
  }
  std::size_t size() const { return events_.size(); }

  void apply(std::int64_t time_ns, core::EventBody body) {
    events_.push_back(
        core::Event{core::EventHeader{core::Seq(events_.size() + 1), time_ns, 0}, std::move(body)});
    const core::Event& e = events_.back();
    effects_.clear();
    expected_.clear();
    engine_.apply(e, effects_);
    model_.apply(time_ns, e.body, expected_);
    if (trace_) {
      std::string kinds;
      for (const core::Effect& f : effects_) {
        kinds += std::string(" ") + core::to_string(f.kind);
        if (f.reason != 0) kinds += "/" + std::to_string(f.reason);
      }
      std::fprintf(stderr, "  #%zu %s ->%s\n", events_.size(), describe(e.body).c_str(),
                   kinds.c_str());
    }
    std::string diff = compare_effects(effects_, expected_);
    if (diff.empty()) diff = compare_state(engine_, model_);
    if (diff.empty()) return;
    std::fprintf(stderr, "engine_model: the engine and the model disagree. Events:\n");
    for (const core::Event& x : events_) {
      std::fprintf(stderr, "  #%llu @%llds %s\n",
                   static_cast<unsigned long long>(core::raw(x.header.seq)),
                   static_cast<long long>((x.header.timestamp_ns - kStartNs) / kSecondNs),
                   describe(x.body).c_str());
    }
    std::fprintf(stderr, "%s%s\n", where(e).c_str(), diff.c_str());
    std::abort();
  }

 private:
  bool trace_;
  core::Engine engine_;
  Model model_;
  std::vector<core::Event> events_;
  core::EffectBuffer effects_;
  std::vector<core::Effect> expected_;
};

// ---- setup -----------------------------------------------------------------------------------

Setup set_up(Bytes& in, Runner& run) {
  Setup w;
  // Event i of the setup is stamped (i + 1) s after the start.
  auto add = [&run](core::EventBody b) {
    run.apply(kStartNs + static_cast<std::int64_t>(run.size() + 1) * kSecondNs, std::move(b));
  };
  // The currency: mostly the default, else one with more or fewer decimals or an invalid one.
  std::int64_t money_scale = core::kMoneyScale;
  const std::size_t currency = in.weighted({12, 2, 2, 1, 1, 1, 1, 1});
  if (currency != 0) {
    static const core::SetCurrency kCurrencies[] = {
        {"USDT", 8}, {"USD", 6}, {"CNY", 4}, {"JPY", 0}, {"usdt", 8}, {"EUR", 9}, {"TOOLONGX", 2}};
    const core::SetCurrency& c = kCurrencies[currency - 1];
    add(c);
    if (c.decimals <= core::kMoneyDecimalsMax && c.code.size() <= 7 && c.code != "usdt") {
      money_scale = core::pow10(c.decimals);
    }
  }
  if (in.weighted({3, 1}) == 1) add(core::SetLimits{limits(in)});
  const std::size_t instruments = 1 + in.byte() % 3u;
  for (std::size_t i = 0; i < instruments; ++i) {
    auto [create, shape] = instrument(in, i, money_scale);
    add(std::move(create));
    w.instruments.push_back(shape);
  }
  w.accounts = 2 + in.byte() % 4u;
  for (std::uint32_t a = 0; a < w.accounts; ++a) {
    const std::string name = "acct" + std::to_string(a);
    add(core::CreateUser{name});
    // Some users hold two accounts (self-trade prevention with scope USER spans them).
    const std::uint32_t user = a > 0 && in.weighted({2, 1}) == 1 ? a - 1 : a;
    add(core::CreateAccount{core::UserId(user), name});
    // Thin accounts can hold a lot or two; rich ones can trade freely.
    const std::int64_t cny =
        in.weighted({3, 2}) == 0 ? in.range(1'000'000, 20'000'000) : in.range(20'000, 400'000);
    add(core::Deposit{core::AccountId(a), core::Money(cny * kCny)});
  }
  if (in.weighted({2, 1}) == 0) add(risk_params(in, w));
  // One input in four: every instrument alternates call auctions and continuous trading (the
  // property AgreesWithModelInSessions), a third of those with a clock that jumps.
  const bool sessions = in.weighted({3, 1}) == 1;
  w.time_jumps = sessions && in.weighted({2, 1}) == 1;
  for (std::size_t i = 0; i < instruments; ++i) {
    if (sessions || in.chance(1, 2)) {
      const auto from_s = static_cast<std::int64_t>(run.size());
      add(core::SetSession{core::InstrumentId(static_cast<std::uint32_t>(i)),
                           session(in, from_s, sessions)});
    }
  }
  return w;
}

// ---- commands --------------------------------------------------------------------------------

// How a close, amend, cancel or withdrawal is aimed with the model's state (engine_gen.h's
// Command and steer_*).
struct Aim {
  bool steered = false;
  std::uint32_t pick = 0;
  bool by_order_id = false;
  bool foreign = false;
  std::int64_t price_delta = 0;
  bool relative_volume = false;
  std::int64_t volume_delta = 0;
  bool cross = false;
};

// Two bytes (three for an amend): flags, then the pick, then the amend's deltas.
Aim aim(Bytes& in, bool amend) {
  Aim a;
  const std::uint8_t flags = in.byte();
  a.steered = flags % 5 != 4;            // 4 in 5
  a.by_order_id = (flags / 5) % 4 == 3;  // 1 in 4
  a.foreign = (flags / 20) % 13 == 12;   // 1 in 13
  a.pick = in.byte();
  if (!amend) return a;
  const std::uint8_t deltas = in.byte();
  a.price_delta = deltas % 3 == 0 ? 0 : (deltas / 3) % 7 - 3;  // 0 one in 3, else -3..3
  a.relative_volume = (deltas / 21) % 2 == 1;
  a.volume_delta = (deltas / 42) % 4 - 2;  // -2..1
  a.cross = deltas / 168 == 1;             // about 1 in 3
  return a;
}

// A new order from eight bytes, a few more for a trigger, an own STP or a close's aim: account,
// instrument, then bytes that each carry several of the generator's choices at about its odds.
core::EventBody new_order(Bytes& in, const Setup& w, const Model& m) {
  static constexpr core::Offset kOffsets[] = {core::Offset::kOpen, core::Offset::kClose,
                                              core::Offset::kCloseToday,
                                              core::Offset::kCloseYesterday};
  static constexpr core::PriceType kTypes[] = {core::PriceType::kLimit, core::PriceType::kMarket,
                                               core::PriceType::kBest};
  core::NewOrder o;
  o.account = core::AccountId(pick_index(in, w.accounts));
  const std::uint32_t ins = pick_index(in, static_cast<std::uint32_t>(w.instruments.size()));
  o.instrument = core::InstrumentId(ins);
  const Shape& shape = w.instruments[std::min<std::size_t>(ins, w.instruments.size() - 1)];
  // Direction, and a client id from a pool of six (0, none, three times as likely as each).
  const unsigned who = in.byte() % 18u;
  o.direction = who % 2 == 0 ? core::Direction::kBuy : core::Direction::kSell;
  o.client_order_id = core::ClientOrderId(who / 2 < 3 ? 0 : who / 2 - 2);
  // Offset (OPEN 14 in 20) and price type (MARKET and BEST each about 1 in 13).
  const unsigned form = in.byte();
  static constexpr unsigned kOffsetOf[20] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 1, 1, 1, 1, 2, 3};
  o.offset = kOffsets[kOffsetOf[form % 20]];
  o.price_type = kTypes[form / 20 < 11 ? 0 : form / 20 - 10];
  o.price = core::PriceTicks(price(in, shape));
  o.volume = core::Lots(volume(in, shape));
  // Time and volume condition together: FOK mostly comes with IOC, as clients send it; the odd
  // GFD one is an invalid combination.
  static constexpr core::TimeCondition kTimes[] = {
      core::TimeCondition::kGfd, core::TimeCondition::kGtc, core::TimeCondition::kIoc,
      core::TimeCondition::kGfd, core::TimeCondition::kIoc};
  const std::size_t condition = in.weighted({81, 63, 36, 2, 16});
  o.time_condition = kTimes[condition];
  o.volume_condition = condition >= 3 ? core::VolumeCondition::kAll : core::VolumeCondition::kAny;
  // Rarer attributes from one byte's bit groups: an own STP (1 in 4), a stop trigger (1 in 4),
  // post-only (1 in 8), an undefined enum (1 in 16 x 3 / 4).
  const unsigned extras = in.byte();
  o.post_only = (extras >> 4 & 7u) == 7;
  if ((extras & 3u) == 3) o.stp = stp(in);
  if ((extras >> 2 & 3u) == 3) {
    static constexpr core::TriggerKind kKinds[] = {
        core::TriggerKind::kStop, core::TriggerKind::kTakeProfit, core::TriggerKind{3}};
    static constexpr core::TriggerSource kSources[] = {
        core::TriggerSource::kLast, core::TriggerSource::kMark, core::TriggerSource{0}};
    core::StopTrigger t;
    const unsigned what = in.byte();
    t.kind = kKinds[what % 13 < 6 ? 0 : what % 13 < 12 ? 1 : 2];
    t.source = kSources[(what / 13) % 13 < 6 ? 0 : (what / 13) % 13 < 12 ? 1 : 2];
    t.price = core::PriceTicks(price(in, shape));
    o.trigger = t;
    o.price_type = kTypes[in.weighted({6, 6, 1})];
  }
  if ((extras >> 4) == 8) {
    switch (in.byte() % 4u) {
      case 1: o.direction = core::Direction{0}; break;
      case 2: o.offset = core::Offset{5}; break;
      case 3: o.time_condition = core::TimeCondition{4}; break;
      default: break;
    }
  }
  if (o.offset != core::Offset::kOpen) {
    const Aim c = aim(in, false);
    if (c.steered) steer_close(w, m, c, o);
  }
  return o;
}

core::EventBody amend(Bytes& in, const Setup& w, const Model& m) {
  core::AmendOrder a;
  a.account = core::AccountId(in.below(w.accounts));
  a.ref = order_ref(in);
  const Shape& shape = w.instruments[in.byte() % w.instruments.size()];
  a.new_price = core::PriceTicks(price(in, shape));
  a.new_volume_left = core::Lots(volume(in, shape));
  const Aim c = aim(in, true);
  if (c.steered) steer_reference(w, m, c, a);
  return a;
}

core::EventBody cancel(Bytes& in, const Setup& w, const Model& m) {
  core::CancelOrder x;
  x.account = core::AccountId(in.below(w.accounts));
  x.ref = order_ref(in);
  const Aim c = aim(in, false);
  if (c.steered) steer_reference(w, m, c, x);
  return x;
}

core::EventBody settle(Bytes& in, const Setup& w) {
  core::Settle s;
  if (!in.chance(1, 2)) return s;
  for (std::uint32_t i = 0; i < w.instruments.size(); ++i) {
    if (!in.chance(1, 2)) continue;
    const Shape& shape = w.instruments[i];
    const std::int64_t p = in.weighted({8, 1}) == 0 ? shape.ref_ticks + in.range(-8, 9)
                                                    : shape.price_max + in.range(-1, 2);
    s.prices.push_back(core::SettlementPrice{core::InstrumentId(i), core::PriceTicks(p)});
  }
  return s;
}

core::EventBody admin(Bytes& in, const Setup& w, const Model& m) {
  const auto instruments = static_cast<std::uint32_t>(w.instruments.size());
  switch (in.weighted({3, 2, 3, 3, 2, 1, 1, 1, 2, 1, 2})) {
    case 1: return core::MarkToMarket{};
    case 2: {
      core::Withdraw x{core::AccountId(in.below(w.accounts)), money(in)};
      const Aim c = aim(in, false);
      if (c.steered) steer_withdraw(m, c, x);
      return x;
    }
    case 3: return settle(in, w);
    case 4: {
      static constexpr core::InstrumentStatus kStatus[] = {core::InstrumentStatus::kTrading,
                                                           core::InstrumentStatus::kHalted,
                                                           core::InstrumentStatus::kDelisted};
      const auto ins = core::InstrumentId(in.below(instruments));
      return core::SetInstrumentStatus{ins, kStatus[in.weighted({30, 6, 1})]};
    }
    case 5: {
      static constexpr std::uint32_t kMaxOpen[] = {0, 0, 0, 2, 4};
      core::SetAccountRisk r;
      r.account = core::AccountId(in.below(w.accounts));
      r.max_open_orders = in.element(kMaxOpen);
      r.enabled = in.weighted({10, 1}) == 0;
      r.stp = stp(in);
      return r;
    }
    case 6: return core::SetCurrency{"USDT", 8};  // too late once accounts exist
    case 7: return core::SetLimits{limits(in)};
    case 8: {
      const auto ins = core::InstrumentId(in.below(instruments));
      return core::SetSession{ins, session(in, in.range(0, 150), false)};
    }
    case 9: {
      // Small epochs, so that some terms are stale; now and then no leader.
      static constexpr std::uint32_t kNodes[] = {1, 2, 0, 0xFFFF'FFFFu};
      const auto epoch = static_cast<std::uint64_t>(in.range(0, 6));
      return core::LeaderTerm{epoch, kNodes[in.weighted({6, 3, 1, 1})]};
    }
    case 10: return risk_params(in, w);
    default: return core::Deposit{core::AccountId(in.below(w.accounts)), money(in)};
  }
}

// Time since the previous event: one second, or with a jumping clock past whole days, a few
// hours, or back a few seconds.
std::int64_t gap_ns(Bytes& in, const Setup& w) {
  if (!w.time_jumps) return kSecondNs;
  switch (in.weighted({40, 1, 1, 1})) {
    case 1: return in.range(86'400, 3 * 86'400) * kSecondNs;
    case 2: return in.range(600, 6 * 3'600) * kSecondNs;
    case 3: return -in.range(1, 30) * kSecondNs;
    default: return kSecondNs;
  }
}

void run_input(const std::uint8_t* data, std::size_t size) {
  const bool trace = std::getenv("QX_FUZZ_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "engine_model: input of %zu bytes\n", size);
  Bytes in(data, size);
  Runner run(trace);
  const Setup w = set_up(in, run);
  for (std::size_t n = 0; n < kCommandsMax && !in.empty(); ++n) {
    const std::int64_t now = run.last_ns() + gap_ns(in, w);
    core::EventBody body;
    switch (in.weighted({70, 8, 6, 10})) {
      case 1: body = amend(in, w, run.model()); break;
      case 2: body = cancel(in, w, run.model()); break;
      case 3: body = admin(in, w, run.model()); break;
      default: body = new_order(in, w, run.model()); break;
    }
    run.apply(now, std::move(body));
  }
}

}  // namespace
}  // namespace qx::property

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::property::run_input(data, size);
  return 0;
}
