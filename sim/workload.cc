// Workload generators: the realistic session and exchange-core's benchmark mix (workload.h).
//
// Choices of numbers, all in one place below: event-type weights, order-type weights, price
// offsets in ticks from a random-walk mid, volumes in lots, money in yuan. They aim at what a
// day on a Chinese futures exchange looks like in aggregate (mostly passive limit orders near
// the touch, many cancels, some aggressive FAK/FOK/market orders, closes of held positions), not
// at any particular participant's behaviour.
#include "sim/workload.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <variant>

#include "core/assert.h"
#include "core/engine.h"

namespace qx::sim {

using core::raw;

namespace {

constexpr std::int64_t kE8 = core::kDecimalScale;  // 1.0 in the e8 decimal parameters
constexpr std::int64_t kPercentPpb = 10'000'000;   // 1% in parts per billion
constexpr std::int64_t kPpmPpb = 1'000;            // 1 ppm in parts per billion

core::InstrumentParams base_params() {
  core::InstrumentParams p;
  p.price_band_ppb = 10 * kPercentPpb;
  return p;
}

// Inclusive integer range.
struct Range {
  std::int64_t lo;
  std::int64_t hi;
};

std::int64_t draw(Prng& rng, Range r) {
  return rng.uniform(r.lo, r.hi);
}

core::Direction random_direction(Prng& rng) {
  return rng.bernoulli(1, 2) ? core::Direction::kBuy : core::Direction::kSell;
}

// Index in [0, n) for n > 0.
std::size_t pick(Prng& rng, std::size_t n) {
  return static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(n)));
}

}  // namespace

InstrumentSpec if2501_spec() {
  InstrumentSpec s;
  s.code = "IF2501";
  s.exchange = "CFFEX";
  s.params = base_params();
  s.params.price_tick_e8 = kE8 / 5;    // 0.2 index points
  s.params.multiplier_e8 = 300 * kE8;  // 300 yuan per point: 60 yuan per tick
  s.params.margin_long_ppb = 10 * kPercentPpb;
  s.params.margin_short_ppb = 10 * kPercentPpb;
  s.params.fees.open_ppb = 23 * kPpmPpb;  // 0.23 per 10,000 of notional
  s.params.fees.close_ppb = 23 * kPpmPpb;
  s.params.fees.close_today_ppb = 345 * kPpmPpb;  // CFFEX charges closing today 15x
  s.params.max_order_volume = core::Lots(20);     // CFFEX limit-order maximum
  s.params.position_limit = core::Lots(5'000);
  s.pre_settlement = core::PriceTicks(19'000);  // 3800.0
  return s;
}

InstrumentSpec cu2501_spec() {
  InstrumentSpec s;
  s.code = "cu2501";
  s.exchange = "SHFE";
  s.params = base_params();
  s.params.price_tick_e8 = 10 * kE8;  // 10 yuan per tonne
  s.params.multiplier_e8 = 5 * kE8;   // 5 tonnes per lot: 50 yuan per tick
  s.params.margin_long_ppb = 10 * kPercentPpb;
  s.params.margin_short_ppb = 10 * kPercentPpb;
  s.params.fees.open_ppb = 50 * kPpmPpb;  // 0.5 per 10,000 of notional
  s.params.fees.close_ppb = 50 * kPpmPpb;
  s.params.fees.close_today_ppb = 100 * kPpmPpb;
  s.params.max_order_volume = core::Lots(500);
  s.params.position_limit = core::Lots(10'000);
  s.pre_settlement = core::PriceTicks(7'400);  // 74000
  return s;
}

InstrumentSpec au2506_spec() {
  InstrumentSpec s;
  s.code = "au2506";
  s.exchange = "SHFE";
  s.params = base_params();
  s.params.price_tick_e8 = kE8 / 50;     // 0.02 yuan per gram
  s.params.multiplier_e8 = 1'000 * kE8;  // 1000 grams per lot: 20 yuan per tick
  s.params.margin_long_ppb = 8 * kPercentPpb;
  s.params.margin_short_ppb = 8 * kPercentPpb;
  s.params.fees.open_per_lot = yuan(10);
  s.params.fees.close_per_lot = yuan(10);
  s.params.fees.close_today_per_lot = yuan(10);
  s.params.max_order_volume = core::Lots(500);
  s.params.position_limit = core::Lots(10'000);
  s.pre_settlement = core::PriceTicks(31'000);  // 620.00
  return s;
}

// ---------------------------------------------------------------------------------------------
// SessionGenerator

namespace {

// Event mix of the trading phase, in parts of 1,000, for a book near, above and well below its
// target of resting orders: new order, amend, cancel by order id, cancel by client id,
// deposit, withdraw.
constexpr std::array<std::uint32_t, 6> kMixNormal{580, 150, 125, 125, 10, 10};
constexpr std::array<std::uint32_t, 6> kMixFull{400, 150, 215, 215, 10, 10};
constexpr std::array<std::uint32_t, 6> kMixThin{750, 120, 55, 55, 10, 10};

// Order types: LIMIT GFD, LIMIT GTC, FAK (LIMIT IOC), MARKET, FOK, post-only GFD, BEST GFD.
enum class OrderKind : std::uint8_t { kGfd, kGtc, kFak, kMarket, kFok, kPostOnly, kBest };
constexpr std::array<std::uint32_t, 7> kOrderKinds{51, 18, 10, 8, 5, 6, 2};

// Instrument activity: IF2501, cu2501, au2506.
constexpr std::array<std::uint32_t, 3> kMarketWeights{40, 35, 25};

// Passive price depth (ticks behind the mid) buckets: near, deeper, marketable, far.
constexpr std::array<std::uint32_t, 4> kDepthWeights{60, 25, 10, 5};
constexpr std::array<Range, 4> kDepths{{{0, 5}, {6, 30}, {-3, -1}, {31, 200}}};
constexpr Range kAggressiveDepth{-4, 1};

// Volumes in lots: small, medium, large (large may exceed IF's 20-lot order limit).
constexpr std::array<std::uint32_t, 3> kVolumeWeights{70, 25, 5};
constexpr std::array<Range, 3> kVolumes{{{1, 3}, {4, 10}, {11, 30}}};

constexpr Range kDepositYuan{5'000'000, 50'000'000};
constexpr Range kTopUpYuan{100'000, 5'000'000};
constexpr Range kWithdrawYuan{100'000, 10'000'000};
constexpr std::int64_t kSetupGapNsMax = 10'000;
constexpr std::int64_t kTradingGapNsMax = 200'000;
constexpr std::uint32_t kMaxOpenOrders = 200;

}  // namespace

SessionGenerator::SessionGenerator(const SessionConfig& config)
    : config_(config), rng_(config.seed) {
  QX_ASSERT(config_.users > 0 && config_.accounts_per_user > 0);
  for (InstrumentSpec spec : {if2501_spec(), cu2501_spec(), au2506_spec()}) {
    Market mk;
    mk.mid_ticks = spec.pre_settlement.value;
    mk.spec = std::move(spec);
    set_band(mk, mk.mid_ticks);
    markets_.push_back(std::move(mk));
  }
  using K = SetupStep::Kind;
  setup_.push_back({K::kRiskParams, 0});
  for (std::uint32_t i = 0; i < markets_.size(); ++i) setup_.push_back({K::kInstrument, i});
  std::uint32_t account = 0;
  for (std::uint32_t u = 0; u < config_.users; ++u) {
    setup_.push_back({K::kUser, u});
    for (std::uint32_t k = 0; k < config_.accounts_per_user; ++k, ++account) {
      setup_.push_back({K::kAccount, account});
      setup_.push_back({K::kDeposit, account});
      setup_.push_back({K::kAccountRisk, account});
      account_user_.push_back(u);
    }
  }
}

void SessionGenerator::set_band(Market& mk, std::int64_t settlement_ticks) {
  // The engine's own rounding: limit up rounds down, limit down rounds up.
  const std::int64_t band = *mk.spec.params.price_band_ppb;
  mk.band_high_ticks = settlement_ticks * (core::kPpb + band) / core::kPpb;
  mk.band_low_ticks = (settlement_ticks * (core::kPpb - band) + core::kPpb - 1) / core::kPpb;
}

std::uint32_t SessionGenerator::source_of(core::AccountId a) const {
  // Accounts are created in order, so the engine's dense id is the creation index.
  return raw(a) < account_user_.size() ? account_user_[raw(a)] + 1 : 0;
}

core::Event SessionGenerator::make(core::EventBody body, std::uint32_t source,
                                   std::int64_t gap_ns_max) {
  QX_ASSERT(!awaiting_observe_);
  seq_ += 1;
  if (seq_ == 1) {
    time_ns_ = config_.start_time_ns;
  } else {
    time_ns_ += rng_.uniform(1'000, gap_ns_max);
  }
  if (next_day_start_ns_ != 0 && !std::holds_alternative<core::Settle>(body)) {
    // The first event after a settlement belongs to the next day's session (09:30).
    time_ns_ = std::max(time_ns_, next_day_start_ns_);
    next_day_start_ns_ = 0;
  }
  awaiting_observe_ = true;
  return core::Event{core::EventHeader{core::Seq(seq_), time_ns_, source}, std::move(body)};
}

core::Event SessionGenerator::next() {
  if (in_setup()) {
    core::EventBody body = setup_body(setup_[setup_done_]);
    return make(std::move(body), 0, kSetupGapNsMax);
  }
  std::uint32_t source = 0;
  core::EventBody body = trading_body(source);
  return make(std::move(body), source, kTradingGapNsMax);
}

core::EventBody SessionGenerator::setup_body(const SetupStep& step) {
  using K = SetupStep::Kind;
  switch (step.kind) {
    case K::kRiskParams:
      // Forced liquidation once margin reaches the whole balance (risk ratio 100%).
      return core::SetRiskParams{core::kPpb};
    case K::kInstrument: {
      const InstrumentSpec& s = markets_[step.index].spec;
      return core::CreateInstrument{s.code, s.exchange, s.params, s.pre_settlement};
    }
    case K::kUser: return core::CreateUser{"trader" + std::to_string(1'000 + step.index)};
    case K::kAccount: {
      const std::uint32_t u = account_user_[step.index];
      QX_ASSERT(u < user_ids_.size());
      return core::CreateAccount{user_ids_[u], "acct" + std::to_string(100'000 + step.index)};
    }
    case K::kDeposit:
      QX_ASSERT(step.index < account_ids_.size());
      return core::Deposit{account_ids_[step.index], yuan(draw(rng_, kDepositYuan))};
    case K::kAccountRisk:
      QX_ASSERT(step.index < account_ids_.size());
      return core::SetAccountRisk{account_ids_[step.index], kMaxOpenOrders, true};
  }
  QX_ASSERT(false);
  return core::SetRiskParams{};
}

void SessionGenerator::observe(std::span<const core::Effect> effects) {
  QX_ASSERT(awaiting_observe_);
  awaiting_observe_ = false;
  if (in_setup()) {
    const SetupStep& step = setup_[setup_done_];
    for (const core::Effect& e : effects) {
      // Setup is a fixed script; a refusal means the script or the engine is wrong.
      QX_ASSERT(e.kind != core::EffectKind::kAdminRejected);
      if (e.kind == core::EffectKind::kInstrumentCreated) markets_[step.index].id = e.instrument;
      if (e.kind == core::EffectKind::kUserCreated) user_ids_.push_back(e.user);
      if (e.kind == core::EffectKind::kAccountCreated) {
        QX_ASSERT_EQ(raw(e.account), step.index);
        account_ids_.push_back(e.account);
      }
    }
    setup_done_ += 1;
  }
  model_.observe(effects);
}

core::EventBody SessionGenerator::trading_body(std::uint32_t& source) {
  trading_events_ += 1;
  if (config_.settle_every_events != 0 && trading_events_ % config_.settle_every_events == 0) {
    return settle();
  }
  const std::uint64_t target =
      std::uint64_t{config_.resting_target_per_instrument} * markets_.size();
  const std::uint64_t live = model_.live_count();
  std::array<std::uint32_t, 6> w = live > target           ? kMixFull
                                   : live < target * 3 / 4 ? kMixThin
                                                           : kMixNormal;
  if (live == 0) w[1] = w[2] = w[3] = 0;
  core::EventBody body;
  switch (rng_.weighted(w)) {
    case 0: body = new_order(); break;
    case 1: body = amend_order(); break;
    case 2: body = cancel_order(); break;
    case 3: body = cancel_order(); break;
    case 4: body = money_transfer(true); break;
    default: body = money_transfer(false); break;
  }
  if (const auto* o = std::get_if<core::NewOrder>(&body)) source = source_of(o->account);
  if (const auto* o = std::get_if<core::AmendOrder>(&body)) source = source_of(o->account);
  if (const auto* o = std::get_if<core::CancelOrder>(&body)) source = source_of(o->account);
  return body;
}

std::int64_t SessionGenerator::limit_price(const Market& mk, core::Direction d, bool aggressive) {
  std::int64_t depth =
      aggressive ? draw(rng_, kAggressiveDepth) : draw(rng_, kDepths[rng_.weighted(kDepthWeights)]);
  std::int64_t p = d == core::Direction::kBuy ? mk.mid_ticks - depth : mk.mid_ticks + depth;
  // A few orders ignore the band on purpose: clients do send them, and they are refused.
  if (rng_.bernoulli(3, 1'000)) {
    return d == core::Direction::kBuy ? mk.band_high_ticks + rng_.uniform(1, 10)
                                      : mk.band_low_ticks - rng_.uniform(1, 10);
  }
  return std::clamp(p, mk.band_low_ticks, mk.band_high_ticks);
}

bool SessionGenerator::choose_close(core::AccountId a, std::size_t m, core::NewOrder& o) {
  const ModelPosition pos = model_.position(a, markets_[m].id);
  const core::Lots can_long = pos.long_side.closable();
  const core::Lots can_short = pos.short_side.closable();
  if (can_long.value <= 0 && can_short.value <= 0) return false;
  const std::int64_t held = pos.long_side.held.value + pos.short_side.held.value;
  if (!rng_.bernoulli(held >= 20 ? 6 : 3, 10)) return false;
  bool close_long = can_long.value > 0 && (can_short.value <= 0 || rng_.bernoulli(1, 2));
  const core::Lots can = close_long ? can_long : can_short;
  o.direction = close_long ? core::Direction::kSell : core::Direction::kBuy;
  o.volume = core::Lots(rng_.uniform(1, std::min<std::int64_t>(can.value, 10)));
  o.offset = core::Offset::kClose;
  if (markets_[m].spec.exchange == "SHFE") {
    // SHFE distinguishes closing today's from yesterday's position.
    constexpr std::array<std::uint32_t, 3> kCloseKinds{80, 15, 5};
    constexpr std::array<core::Offset, 3> kOffsets{core::Offset::kClose, core::Offset::kCloseToday,
                                                   core::Offset::kCloseYesterday};
    o.offset = kOffsets[rng_.weighted(kCloseKinds)];
  }
  return true;
}

core::EventBody SessionGenerator::new_order() {
  const std::size_t k = pick(rng_, account_ids_.size());
  const std::size_t m = rng_.weighted(kMarketWeights);
  Market& mk = markets_[m];
  // The mid takes a random step on a third of the orders, and stays well inside the band.
  if (rng_.bernoulli(1, 3)) {
    mk.mid_ticks = std::clamp(mk.mid_ticks + rng_.uniform(-1, 1), mk.band_low_ticks + 50,
                              mk.band_high_ticks - 50);
  }
  core::NewOrder o;
  o.account = account_ids_[k];
  o.instrument = mk.id;
  o.client_order_id = core::ClientOrderId(next_client_order_id_++);
  if (!choose_close(o.account, m, o)) {
    o.offset = core::Offset::kOpen;
    o.direction = random_direction(rng_);
    o.volume = core::Lots(draw(rng_, kVolumes[rng_.weighted(kVolumeWeights)]));
  }
  o.price_type = core::PriceType::kLimit;
  o.time_condition = core::TimeCondition::kGfd;
  o.volume_condition = core::VolumeCondition::kAny;
  bool aggressive = false;
  switch (static_cast<OrderKind>(rng_.weighted(kOrderKinds))) {
    case OrderKind::kGfd: break;
    case OrderKind::kGtc: o.time_condition = core::TimeCondition::kGtc; break;
    case OrderKind::kFak:
      o.time_condition = core::TimeCondition::kIoc;
      aggressive = true;
      break;
    case OrderKind::kMarket:
      o.price_type = core::PriceType::kMarket;
      o.time_condition = core::TimeCondition::kIoc;
      break;
    case OrderKind::kFok:
      o.time_condition = core::TimeCondition::kIoc;
      o.volume_condition = core::VolumeCondition::kAll;
      aggressive = true;
      break;
    case OrderKind::kPostOnly: o.post_only = true; break;
    case OrderKind::kBest: o.price_type = core::PriceType::kBest; break;
  }
  if (o.time_condition == core::TimeCondition::kGtc &&
      (o.offset == core::Offset::kCloseToday || o.offset == core::Offset::kCloseYesterday)) {
    // Closing today's (or yesterday's) position is a same-day decision: such orders are sent
    // as day orders. (A GTC close-today that outlives a settlement would hold yesterday's
    // position, which amending it cannot re-freeze; see the report on core/orders.cc.)
    o.time_condition = core::TimeCondition::kGfd;
  }
  if (o.price_type == core::PriceType::kLimit) {
    o.price = core::PriceTicks(limit_price(mk, o.direction, aggressive));
  }
  return o;
}

core::EventBody SessionGenerator::amend_order() {
  const ModelOrder* target = nullptr;
  for (int attempt = 0; attempt < 4 && target == nullptr; ++attempt) {
    const ModelOrder& o = model_.live_at(pick(rng_, model_.live_count()));
    if (!o.cancel_sent) target = &o;
  }
  if (target == nullptr) return new_order();
  const Market* mk = nullptr;
  for (const Market& candidate : markets_) {
    if (candidate.id == target->instrument) mk = &candidate;
  }
  QX_ASSERT(mk != nullptr);
  // Mostly chase the mid by a few ticks; sometimes step back.
  const std::int64_t p = target->price.value;
  const bool up = rng_.bernoulli(2, 3) ? p < mk->mid_ticks : p >= mk->mid_ticks;
  const std::int64_t step = up ? rng_.uniform(1, 3) : -rng_.uniform(1, 2);
  const std::int64_t price = std::clamp(p + step, mk->band_low_ticks, mk->band_high_ticks);
  std::int64_t volume = target->volume_left.value;
  switch (rng_.weighted(std::array<std::uint32_t, 3>{70, 20, 10})) {
    case 0: break;
    case 1: volume = std::max<std::int64_t>(1, volume - 1); break;
    default: volume += rng_.uniform(1, 3); break;
  }
  core::OrderRef ref;
  if (rng_.bernoulli(7, 10) || raw(target->client_order_id) == 0) {
    ref.order_id = target->id;
  } else {
    ref.client_order_id = target->client_order_id;
  }
  return core::AmendOrder{target->account, ref, core::PriceTicks(price), core::Lots(volume)};
}

core::EventBody SessionGenerator::cancel_order() {
  // Half by the exchange's order id, half by the client's own id; a few stray requests name
  // an order that is gone or someone else's, as real clients' races do.
  const bool by_client = rng_.bernoulli(1, 2);
  if (rng_.bernoulli(1, 200)) {
    core::CancelOrder c;
    c.account = account_ids_[pick(rng_, account_ids_.size())];
    c.ref.client_order_id = core::ClientOrderId(rng_.uniform_u(1, next_client_order_id_));
    return c;
  }
  ModelOrder& o = model_.live_at(pick(rng_, model_.live_count()));
  core::CancelOrder c;
  c.account = o.account;
  if (by_client && raw(o.client_order_id) != 0) {
    c.ref.client_order_id = o.client_order_id;
  } else {
    c.ref.order_id = o.id;
    if (rng_.bernoulli(1, 200)) c.account = account_ids_[pick(rng_, account_ids_.size())];
  }
  if (c.account == o.account) o.cancel_sent = true;
  return c;
}

core::EventBody SessionGenerator::money_transfer(bool deposit) {
  const core::AccountId a = account_ids_[pick(rng_, account_ids_.size())];
  if (deposit) return core::Deposit{a, yuan(draw(rng_, kTopUpYuan))};
  return core::Withdraw{a, yuan(draw(rng_, kWithdrawYuan))};
}

core::EventBody SessionGenerator::settle() {
  core::Settle s;
  for (Market& mk : markets_) {
    s.prices.push_back(core::SettlementPrice{mk.id, core::PriceTicks(mk.mid_ticks)});
    set_band(mk, mk.mid_ticks);
  }
  trading_day_ += 1;
  next_day_start_ns_ = config_.start_time_ns + trading_day_ * kNsPerDay;
  return s;
}

std::vector<core::Event> generate_session(const SessionConfig& config, std::size_t count) {
  SessionGenerator gen(config);
  core::Engine engine;
  core::EffectBuffer effects;
  std::vector<core::Event> events;
  events.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    events.push_back(gen.next());
    effects.clear();
    engine.apply(events.back(), effects);
    gen.observe(effects);
  }
  return events;
}

// ---------------------------------------------------------------------------------------------
// MixGenerator

namespace {

constexpr std::int64_t kMixPreSettlementTicks = 10'000;
// Amends move toward the mid (between the best bid and ask) with these odds, else away from
// it, by 1 tick (3 in 4) or 2.
constexpr std::uint64_t kMixTowardNum = 10;
constexpr std::uint64_t kMixTowardDen = 16;
// Ticks through the opposite best price that an IOC order, and a new GTC order while its
// instrument is at its resting target, are priced at (so both take liquidity).
constexpr Range kMixThroughTicks{0, 2};
// Ticks behind its own side's best price that a passive order joining the touch is priced at
// (-1 improves the best price by a tick).
constexpr Range kMixJoinTicks{-1, 3};
constexpr Range kMixVolume{1, 10};
constexpr std::int64_t kMixGapNsMax = 2'000;
constexpr std::uint32_t kMixMaxOpenOrders = 10'000;
constexpr std::int64_t kMixDepositYuan = 1'000'000'000;
// Setup events per account: user, account, deposit, risk limits.
constexpr std::uint64_t kMixEventsPerAccount = 4;

}  // namespace

InstrumentSpec MixGenerator::instrument_spec(std::uint32_t index) {
  InstrumentSpec s;
  s.code = "MX" + std::to_string(100'000 + index);
  s.exchange = "SIM";
  s.params.price_tick_e8 = kE8;
  s.params.multiplier_e8 = kE8;
  s.params.margin_long_ppb = 10 * kPercentPpb;
  s.params.margin_short_ppb = 10 * kPercentPpb;
  s.params.fees.open_per_lot = yuan(1);
  s.params.fees.open_ppb = 10 * kPpmPpb;
  s.params.fees.close_per_lot = yuan(1);
  s.params.fees.close_ppb = 10 * kPpmPpb;
  s.params.fees.close_today_per_lot = yuan(1);
  s.params.fees.close_today_ppb = 10 * kPpmPpb;
  s.params.max_order_volume = core::Lots(1'000);
  // As large as the engine allows with a price ceiling of 10x the reference (core/limits.h).
  s.params.position_limit = core::position_limit_max(
      s.params, core::PriceTicks(10 * kMixPreSettlementTicks), core::kMoneyScale);
  s.pre_settlement = core::PriceTicks(kMixPreSettlementTicks);
  return s;
}

MixGenerator::MixGenerator(const MixConfig& config) : config_(config), rng_(config.seed) {
  QX_ASSERT(config_.instruments > 0 && config_.accounts > 0);
  QX_ASSERT(config_.price_levels >= 2);
  QX_ASSERT(config_.amend_weight + config_.new_gtc_weight + config_.cancel_weight +
                config_.ioc_weight >
            0);
}

std::size_t MixGenerator::setup_event_count() const {
  return config_.instruments + kMixEventsPerAccount * config_.accounts;
}

MixGenerator::Phase MixGenerator::phase() const {
  if (setup_done_ < setup_event_count()) return Phase::kSetup;
  if (prefill_done_ < config_.resting_orders) return Phase::kPrefill;
  return Phase::kCommands;
}

core::Event MixGenerator::make(core::EventBody body, std::uint32_t source) {
  seq_ += 1;
  time_ns_ = seq_ == 1 ? config_.start_time_ns : time_ns_ + rng_.uniform(1, kMixGapNsMax);
  return core::Event{core::EventHeader{core::Seq(seq_), time_ns_, source}, std::move(body)};
}

core::Event MixGenerator::next() {
  last_phase_ = phase();
  switch (last_phase_) {
    case Phase::kSetup: {
      core::EventBody body = setup_body();
      return make(std::move(body), 0);
    }
    case Phase::kPrefill: {
      core::EventBody body = prefill_body();
      return make(std::move(body), 1);
    }
    case Phase::kCommands: break;
  }
  QX_ASSERT(loaded_);
  core::EventBody body = command_body();
  return make(std::move(body), 1);
}

core::EventBody MixGenerator::setup_body() {
  const std::uint64_t k = setup_done_++;
  if (k < config_.instruments) {
    InstrumentSpec s = instrument_spec(static_cast<std::uint32_t>(k));
    return core::CreateInstrument{std::move(s.code), std::move(s.exchange), s.params,
                                  s.pre_settlement};
  }
  const std::uint64_t a = (k - config_.instruments) / kMixEventsPerAccount;
  const std::string name = std::to_string(10'000'000 + a);
  switch ((k - config_.instruments) % kMixEventsPerAccount) {
    case 0: return core::CreateUser{"u" + name};
    case 1: QX_ASSERT(a < user_ids_.size()); return core::CreateAccount{user_ids_[a], "a" + name};
    case 2:
      QX_ASSERT(a < account_ids_.size());
      return core::Deposit{account_ids_[a], yuan(kMixDepositYuan)};
    default:
      QX_ASSERT(a < account_ids_.size());
      return core::SetAccountRisk{account_ids_[a], kMixMaxOpenOrders, true};
  }
}

core::AccountId MixGenerator::random_account() {
  return account_ids_[pick(rng_, account_ids_.size())];
}

core::EventBody MixGenerator::prefill_body() {
  // Round-robin over instruments; on each, the first `price_levels` orders take distinct prices
  // (alternately bid and ask, moving outward from the mid), the rest land on random ones.
  const std::uint64_t k = prefill_done_++;
  const std::uint64_t j = k / config_.instruments;
  const std::uint64_t half = std::max<std::uint64_t>(1, config_.price_levels / 2);
  core::NewOrder o;
  o.instrument = instrument_ids_[k % config_.instruments];
  o.account = random_account();
  o.client_order_id = core::ClientOrderId(next_client_order_id_++);
  std::int64_t depth = 0;
  if (j < 2 * half) {
    o.direction = j % 2 == 0 ? core::Direction::kBuy : core::Direction::kSell;
    depth = static_cast<std::int64_t>(j / 2 + 1);
  } else {
    o.direction = random_direction(rng_);
    depth = static_cast<std::int64_t>(rng_.uniform_u(1, half));
  }
  o.offset = core::Offset::kOpen;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(o.direction == core::Direction::kBuy ? kMixPreSettlementTicks - depth
                                                                  : kMixPreSettlementTicks + depth);
  o.volume = core::Lots(draw(rng_, kMixVolume));
  o.time_condition = core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  return o;
}

std::int64_t MixGenerator::mid_of(core::InstrumentId i) const {
  const auto bid = model_.best_bid(i);
  const auto ask = model_.best_ask(i);
  if (bid && ask) return (bid->value + ask->value) / 2;
  if (bid) return bid->value + 1;
  if (ask) return ask->value - 1;
  return model_.last_price(i).value_or(core::PriceTicks(kMixPreSettlementTicks)).value;
}

core::EventBody MixGenerator::amend(std::size_t live_index) {
  const ModelOrder& o = model_.live_at(live_index);
  // One or two ticks, more often toward the mid than away from it; the volume is kept.
  const std::int64_t mid = mid_of(o.instrument);
  const std::int64_t p = o.price.value;
  const bool toward = rng_.bernoulli(kMixTowardNum, kMixTowardDen);
  const bool up = (p < mid) == toward;
  const std::int64_t step = rng_.bernoulli(3, 4) ? 1 : 2;
  const std::int64_t price = std::max<std::int64_t>(1, up ? p + step : p - step);
  core::OrderRef ref;
  ref.order_id = o.id;
  return core::AmendOrder{o.account, ref, core::PriceTicks(price), o.volume_left};
}

core::EventBody MixGenerator::new_limit(bool ioc) {
  core::NewOrder o;
  o.instrument = instrument_ids_[pick(rng_, instrument_ids_.size())];
  o.account = random_account();
  o.client_order_id = core::ClientOrderId(next_client_order_id_++);
  o.direction = random_direction(rng_);
  o.offset = core::Offset::kOpen;
  o.price_type = core::PriceType::kLimit;
  o.volume = core::Lots(draw(rng_, kMixVolume));
  o.time_condition = ioc ? core::TimeCondition::kIoc : core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  const bool buy = o.direction == core::Direction::kBuy;
  const std::uint64_t target =
      std::max<std::uint64_t>(1, config_.resting_orders / config_.instruments);
  const auto opposite_best = buy ? model_.best_ask(o.instrument) : model_.best_bid(o.instrument);
  const auto own_best = buy ? model_.best_bid(o.instrument) : model_.best_ask(o.instrument);
  std::int64_t price = 0;
  const bool take = ioc || model_.live_on(o.instrument) >= target || rng_.bernoulli(1, 8);
  if (take && opposite_best) {
    // Take liquidity: at or a little through the opposite best price.
    const std::int64_t through = draw(rng_, kMixThroughTicks);
    price = buy ? opposite_best->value + through : opposite_best->value - through;
  } else if (own_best && rng_.bernoulli(1, 3)) {
    // Add liquidity at the touch: improve it by a tick, join it, or queue just behind it,
    // never crossing the opposite side.
    const std::int64_t behind = draw(rng_, kMixJoinTicks);
    price = buy ? own_best->value - behind : own_best->value + behind;
    if (opposite_best) {
      price = buy ? std::min(price, opposite_best->value - 1)
                  : std::max(price, opposite_best->value + 1);
    }
  } else {
    // Add liquidity somewhere in the visible depth behind the mid.
    const std::int64_t mid = mid_of(o.instrument);
    const auto depth = static_cast<std::int64_t>(
        rng_.uniform_u(1, std::max<std::uint64_t>(1, config_.price_levels / 2)));
    price = buy ? mid - depth : mid + depth;
  }
  o.price = core::PriceTicks(std::max<std::int64_t>(1, price));
  return o;
}

core::EventBody MixGenerator::command_body() {
  const std::array<std::uint32_t, 4> w{config_.amend_weight, config_.new_gtc_weight,
                                       config_.cancel_weight, config_.ioc_weight};
  std::size_t kind = rng_.weighted(w);
  // Like exchange-core's generator, refill a thinning book: while fewer than 95% of the
  // target rest, a cancel becomes a new (passive) order.
  if (kind == 2 && model_.live_count() * 20 < config_.resting_orders * 19) kind = 1;
  if (kind == 0 || kind == 2) {
    // Orders with a cancel in flight (batched observation) are skipped; after a few tries the
    // command becomes a new order so the mix stays close to its weights.
    for (int attempt = 0; attempt < 4 && model_.live_count() > 0; ++attempt) {
      const std::size_t i = pick(rng_, model_.live_count());
      ModelOrder& o = model_.live_at(i);
      if (o.cancel_sent) continue;
      if (kind == 0) return amend(i);
      o.cancel_sent = true;
      core::OrderRef ref;
      ref.order_id = o.id;
      return core::CancelOrder{o.account, ref};
    }
    return new_limit(false);
  }
  return new_limit(kind == 3);
}

void MixGenerator::observe(std::span<const core::Effect> effects) {
  switch (last_phase_) {
    case Phase::kSetup:
      for (const core::Effect& e : effects) {
        QX_ASSERT(e.kind != core::EffectKind::kAdminRejected);
        if (e.kind == core::EffectKind::kInstrumentCreated) instrument_ids_.push_back(e.instrument);
        if (e.kind == core::EffectKind::kUserCreated) user_ids_.push_back(e.user);
        if (e.kind == core::EffectKind::kAccountCreated) account_ids_.push_back(e.account);
      }
      return;
    case Phase::kPrefill: return;
    case Phase::kCommands: model_.observe(effects); return;
  }
}

void MixGenerator::load(const core::Snapshot& s) {
  QX_ASSERT(phase() == Phase::kCommands);
  model_.load(s);
  loaded_ = true;
}

}  // namespace qx::sim
