// Conversion between core values and the Cap'n Proto schema; codec.h states the contract.
//
// Encoders destructure each core struct with a structured binding that names every member, so a
// member added to a core struct breaks this file's build until the schema and the codec learn
// it. Decoders fill the core value field by field. Both record the first problem in a Context and
// carry on with zero values (no early returns threaded through every helper); the public
// functions turn a recorded problem into an Error. Cap'n Proto reports malformed input by
// throwing kj::Exception; it is caught at each public function and never escapes.
#include "replay/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/sessions.h"
#include "replay/codec_capnp.h"
#include "replay/codec_enums.h"

namespace qx::replay {
namespace {

static_assert(schema::SCHEMA_VERSION == kSchemaVersion);

// The first problem met while converting one value, prefixed with what was being converted.
class Context {
 public:
  explicit Context(const char* what) : what_(what) {}
  void fail(const char* field, const std::string& problem) {
    if (failed_) return;
    failed_ = true;
    message_ = std::string(what_) + ": " + field + ": " + problem;
  }
  bool failed() const { return failed_; }
  Error error() const { return Error{message_}; }
  Error kj_error(const kj::Exception& e) const {
    return Error{std::string(what_) + ": malformed message: " + e.getDescription().cStr()};
  }

 private:
  const char* what_;
  std::string message_;
  bool failed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Enums (see codec_enums.h), with the field named in the error.

template <class C>
auto enum_to_schema(C value, const char* field, Context& ctx) {
  using Map = detail::EnumMap<C>;
  const auto schema_value = detail::to_schema_enum(value);
  if (!schema_value.has_value()) {
    ctx.fail(field, std::string(Map::kName) + " value " +
                        std::to_string(static_cast<std::uint32_t>(core::raw(value))) +
                        " is not defined by the schema");
    return typename Map::Schema{};
  }
  return *schema_value;
}

template <class C>
C enum_to_core(typename detail::EnumMap<C>::Schema value, const char* field, Context& ctx) {
  using Map = detail::EnumMap<C>;
  const auto core_value = detail::to_core_enum<C>(value);
  if (!core_value.has_value()) {
    ctx.fail(field, std::string("unknown ") + Map::kName + " value " +
                        std::to_string(static_cast<std::uint32_t>(value)) +
                        " (this reader knows 0.." + std::to_string(Map::kMax) + ")");
    return C{};
  }
  return *core_value;
}

// ---------------------------------------------------------------------------------------------
// Text and list sizes.

capnp::Text::Reader text_to_schema(const std::string& s, const char* field, Context& ctx) {
  if (s.size() > kTextBytesMax) {
    ctx.fail(field, "text of " + std::to_string(s.size()) + " bytes exceeds the limit of " +
                        std::to_string(kTextBytesMax));
    return {};
  }
  return capnp::Text::Reader(s.data(), s.size());
}

std::string text_to_core(capnp::Text::Reader t, const char* field, Context& ctx) {
  if (t.size() > kTextBytesMax) {
    ctx.fail(field, "text of " + std::to_string(t.size()) + " bytes exceeds the limit of " +
                        std::to_string(kTextBytesMax));
    return {};
  }
  return std::string(t.begin(), t.size());
}

// Cap'n Proto lists hold at most 2^29 - 1 elements.
unsigned list_size(std::size_t n, const char* field, Context& ctx) {
  constexpr std::size_t kListElementsMax = (std::size_t{1} << 29) - 1;
  if (n > kListElementsMax) {
    ctx.fail(field, "list of " + std::to_string(n) + " elements exceeds Cap'n Proto's limit");
    return 0;
  }
  return static_cast<unsigned>(n);
}

// ---------------------------------------------------------------------------------------------
// Shared structs.

void write_header(const core::EventHeader& h, schema::EventHeader::Builder b) {
  const auto& [seq, timestamp_ns, source] = h;
  b.setSeq(core::raw(seq));
  b.setTimestampNs(timestamp_ns);
  b.setSource(source);
}

core::EventHeader read_header(schema::EventHeader::Reader r) {
  core::EventHeader h;
  h.seq = core::Seq{r.getSeq()};
  h.timestamp_ns = r.getTimestampNs();
  h.source = r.getSource();
  return h;
}

void write_fees(const core::FeeSchedule& f, schema::FeeSchedule::Builder b) {
  const auto& [open_per_lot, open_ppb, close_per_lot, close_ppb, close_today_per_lot,
               close_today_ppb] = f;
  b.setOpenPerLot(open_per_lot.value);
  b.setOpenPpb(open_ppb);
  b.setClosePerLot(close_per_lot.value);
  b.setClosePpb(close_ppb);
  b.setCloseTodayPerLot(close_today_per_lot.value);
  b.setCloseTodayPpb(close_today_ppb);
}

core::FeeSchedule read_fees(schema::FeeSchedule::Reader r) {
  core::FeeSchedule f;
  f.open_per_lot = core::Money{r.getOpenPerLot()};
  f.open_ppb = r.getOpenPpb();
  f.close_per_lot = core::Money{r.getClosePerLot()};
  f.close_ppb = r.getClosePpb();
  f.close_today_per_lot = core::Money{r.getCloseTodayPerLot()};
  f.close_today_ppb = r.getCloseTodayPpb();
  return f;
}

void write_params(const core::InstrumentParams& p, schema::InstrumentParams::Builder b) {
  const auto& [price_tick_e8, multiplier_e8, margin_long_ppb, margin_short_ppb, fees,
               price_band_ppb, max_order_volume, position_limit, last_trading_day] = p;
  b.setPriceTickE8(price_tick_e8);
  b.setMultiplierE8(multiplier_e8);
  b.setMarginLongPpb(margin_long_ppb);
  b.setMarginShortPpb(margin_short_ppb);
  write_fees(fees, b.initFees());
  if (price_band_ppb.has_value()) {
    b.getPriceBand().setPpb(*price_band_ppb);
  } else {
    b.getPriceBand().setNone();
  }
  b.setMaxOrderVolume(max_order_volume.value);
  b.setPositionLimit(position_limit.value);
  b.setLastTradingDay(last_trading_day);
}

core::InstrumentParams read_params(schema::InstrumentParams::Reader r, Context& ctx) {
  core::InstrumentParams p;
  p.price_tick_e8 = r.getPriceTickE8();
  p.multiplier_e8 = r.getMultiplierE8();
  p.margin_long_ppb = r.getMarginLongPpb();
  p.margin_short_ppb = r.getMarginShortPpb();
  p.fees = read_fees(r.getFees());
  const auto band = r.getPriceBand();
  switch (band.which()) {
    case schema::InstrumentParams::PriceBand::NONE: break;
    case schema::InstrumentParams::PriceBand::PPB: p.price_band_ppb = band.getPpb(); break;
    default:
      ctx.fail("InstrumentParams.priceBand",
               "unknown union member " + std::to_string(static_cast<unsigned>(band.which())));
  }
  p.max_order_volume = core::Lots{r.getMaxOrderVolume()};
  p.position_limit = core::Lots{r.getPositionLimit()};
  p.last_trading_day = r.getLastTradingDay();
  return p;
}

void write_order_ref(const core::OrderRef& ref, schema::OrderRef::Builder b) {
  const auto& [order_id, client_order_id] = ref;
  if (order_id.has_value()) {
    b.getOrderId().setId(core::raw(*order_id));
  } else {
    b.getOrderId().setNone();
  }
  b.setClientOrderId(core::raw(client_order_id));
}

core::OrderRef read_order_ref(schema::OrderRef::Reader r, Context& ctx) {
  core::OrderRef ref;
  const auto id = r.getOrderId();
  switch (id.which()) {
    case schema::OrderRef::OrderId::NONE: break;
    case schema::OrderRef::OrderId::ID: ref.order_id = core::OrderId{id.getId()}; break;
    default:
      ctx.fail("OrderRef.orderId",
               "unknown union member " + std::to_string(static_cast<unsigned>(id.which())));
  }
  ref.client_order_id = core::ClientOrderId{r.getClientOrderId()};
  return ref;
}

// ---------------------------------------------------------------------------------------------
// Event bodies: one writer per core alternative, chosen by overload resolution in std::visit.

using BodyBuilder = schema::Event::Body::Builder;
using BodyReader = schema::Event::Body::Reader;

void write_body(const core::CreateInstrument& v, BodyBuilder body, Context& ctx) {
  const auto& [code, exchange, params, pre_settlement] = v;
  auto b = body.initCreateInstrument();
  b.setCode(text_to_schema(code, "CreateInstrument.code", ctx));
  b.setExchange(text_to_schema(exchange, "CreateInstrument.exchange", ctx));
  write_params(params, b.initParams());
  b.setPreSettlement(pre_settlement.value);
}

void write_body(const core::UpdateInstrument& v, BodyBuilder body, Context&) {
  const auto& [instrument, params] = v;
  auto b = body.initUpdateInstrument();
  b.setInstrument(core::raw(instrument));
  write_params(params, b.initParams());
}

void write_body(const core::SetInstrumentStatus& v, BodyBuilder body, Context& ctx) {
  const auto& [instrument, status] = v;
  auto b = body.initSetInstrumentStatus();
  b.setInstrument(core::raw(instrument));
  b.setStatus(enum_to_schema(status, "SetInstrumentStatus.status", ctx));
}

void write_body(const core::CreateUser& v, BodyBuilder body, Context& ctx) {
  const auto& [name] = v;
  body.initCreateUser().setName(text_to_schema(name, "CreateUser.name", ctx));
}

void write_body(const core::CreateAccount& v, BodyBuilder body, Context& ctx) {
  const auto& [user, name] = v;
  auto b = body.initCreateAccount();
  b.setUser(core::raw(user));
  b.setName(text_to_schema(name, "CreateAccount.name", ctx));
}

void write_body(const core::Deposit& v, BodyBuilder body, Context&) {
  const auto& [account, amount] = v;
  auto b = body.initDeposit();
  b.setAccount(core::raw(account));
  b.setAmount(amount.value);
}

void write_body(const core::Withdraw& v, BodyBuilder body, Context&) {
  const auto& [account, amount] = v;
  auto b = body.initWithdraw();
  b.setAccount(core::raw(account));
  b.setAmount(amount.value);
}

void write_body(const core::SetAccountRisk& v, BodyBuilder body, Context& ctx) {
  const auto& [account, max_open_orders, enabled, stp] = v;
  auto b = body.initSetAccountRisk();
  b.setAccount(core::raw(account));
  b.setMaxOpenOrders(max_open_orders);
  b.setEnabled(enabled);
  b.setStpMode(enum_to_schema(stp.mode, "SetAccountRisk.stpMode", ctx));
  b.setStpScope(enum_to_schema(stp.scope, "SetAccountRisk.stpScope", ctx));
}

void write_body(const core::SetRiskParams& v, BodyBuilder body, Context&) {
  const auto& [liquidation_ratio_ppb, insurance_account] = v;
  auto b = body.initSetRiskParams();
  b.setLiquidationRatioPpb(liquidation_ratio_ppb);
  if (insurance_account) {
    b.getInsuranceAccount().setId(core::raw(*insurance_account));
  } else {
    b.getInsuranceAccount().setNone();
  }
}

void write_body(const core::MarkToMarket&, BodyBuilder body, Context&) {
  body.initMarkToMarket();
}

void write_limits(const core::EngineLimits& v, schema::EngineLimits::Builder b) {
  const auto& [instruments, accounts, orders, orders_per_account, orders_per_level] = v;
  b.setInstruments(instruments);
  b.setAccounts(accounts);
  b.setOrders(orders);
  b.setOrdersPerAccount(orders_per_account);
  b.setOrdersPerLevel(orders_per_level);
}

core::EngineLimits read_limits(schema::EngineLimits::Reader r) {
  return core::EngineLimits{r.getInstruments(), r.getAccounts(), r.getOrders(),
                            r.getOrdersPerAccount(), r.getOrdersPerLevel()};
}

void write_body(const core::SetLimits& v, BodyBuilder body, Context&) {
  write_limits(v.limits, body.initSetLimits().initLimits());
}

void write_body(const core::LeaderTerm& v, BodyBuilder body, Context&) {
  auto b = body.initLeaderTerm();
  b.setEpoch(v.epoch);
  b.setNode(v.node);
}

void write_session(const core::SessionSchedule& v, schema::SessionSchedule::Builder b,
                   Context& ctx) {
  b.setUtcOffsetS(v.utc_offset_s);
  auto list = b.initEntries(list_size(v.entries.size(), "SessionSchedule.entries", ctx));
  for (unsigned i = 0; i < list.size(); ++i) {
    list[i].setStartS(v.entries[i].start_s);
    list[i].setPhase(enum_to_schema(v.entries[i].phase, "SessionEntry.phase", ctx));
  }
}

core::SessionSchedule read_session(schema::SessionSchedule::Reader r, Context& ctx) {
  core::SessionSchedule v;
  v.utc_offset_s = r.getUtcOffsetS();
  // Any schedule decodes (SetSession refuses a bad one as data); snapshots check theirs.
  for (const auto e : r.getEntries()) {
    v.entries.push_back(
        {e.getStartS(), enum_to_core<core::TradingPhase>(e.getPhase(), "SessionEntry.phase", ctx)});
  }
  return v;
}

void write_body(const core::SetSession& v, BodyBuilder body, Context& ctx) {
  auto b = body.initSetSession();
  b.setInstrument(core::raw(v.instrument));
  write_session(v.schedule, b.initSchedule(), ctx);
}

void write_body(const core::SetCurrency& v, BodyBuilder body, Context& ctx) {
  const auto& [code, decimals] = v;
  auto b = body.initSetCurrency();
  b.setCode(text_to_schema(code, "SetCurrency.code", ctx));
  b.setDecimals(decimals);
}

void write_body(const core::Settle& v, BodyBuilder body, Context& ctx) {
  const auto& [prices] = v;
  auto list = body.initSettle().initPrices(list_size(prices.size(), "Settle.prices", ctx));
  for (unsigned i = 0; i < list.size(); ++i) {
    const auto& [instrument, price] = prices[i];
    list[i].setInstrument(core::raw(instrument));
    list[i].setPrice(price.value);
  }
}

void write_new_order(const core::NewOrder& v, schema::NewOrder::Builder b, Context& ctx) {
  const auto& [account, instrument, client_order_id, direction, offset, price_type, price, volume,
               time_condition, volume_condition, post_only, stp, trigger] = v;
  b.setAccount(core::raw(account));
  b.setInstrument(core::raw(instrument));
  b.setClientOrderId(core::raw(client_order_id));
  b.setDirection(enum_to_schema(direction, "NewOrder.direction", ctx));
  b.setOffset(enum_to_schema(offset, "NewOrder.offset", ctx));
  b.setPriceType(enum_to_schema(price_type, "NewOrder.priceType", ctx));
  b.setPrice(price.value);
  b.setVolume(volume.value);
  b.setTimeCondition(enum_to_schema(time_condition, "NewOrder.timeCondition", ctx));
  b.setVolumeCondition(enum_to_schema(volume_condition, "NewOrder.volumeCondition", ctx));
  b.setPostOnly(post_only);
  if (stp) {
    auto own = b.getStp().initOwn();
    own.setMode(enum_to_schema(stp->mode, "NewOrder.stp.mode", ctx));
    own.setScope(enum_to_schema(stp->scope, "NewOrder.stp.scope", ctx));
  } else {
    b.getStp().setAccount();
  }
  if (trigger) {
    auto t = b.getTrigger().initStop();
    t.setKind(enum_to_schema(trigger->kind, "NewOrder.trigger.kind", ctx));
    t.setSource(enum_to_schema(trigger->source, "NewOrder.trigger.source", ctx));
    t.setPrice(trigger->price.value);
  } else {
    b.getTrigger().setNone();
  }
}

void write_body(const core::NewOrder& v, BodyBuilder body, Context& ctx) {
  write_new_order(v, body.initNewOrder(), ctx);
}

void write_body(const core::AmendOrder& v, BodyBuilder body, Context&) {
  const auto& [account, ref, new_price, new_volume_left] = v;
  auto b = body.initAmendOrder();
  b.setAccount(core::raw(account));
  write_order_ref(ref, b.initRef());
  b.setNewPrice(new_price.value);
  b.setNewVolumeLeft(new_volume_left.value);
}

void write_body(const core::CancelOrder& v, BodyBuilder body, Context&) {
  const auto& [account, ref] = v;
  auto b = body.initCancelOrder();
  b.setAccount(core::raw(account));
  write_order_ref(ref, b.initRef());
}

// A self-trade prevention setting from its two schema enums (the fields named in errors).
core::SelfTradePrevention stp_to_core(schema::StpMode mode, schema::StpScope scope,
                                      const char* mode_field, const char* scope_field,
                                      Context& ctx) {
  return core::SelfTradePrevention{enum_to_core<core::StpMode>(mode, mode_field, ctx),
                                   enum_to_core<core::StpScope>(scope, scope_field, ctx)};
}

core::NewOrder read_new_order(schema::NewOrder::Reader r, Context& ctx) {
  core::NewOrder o;
  o.account = core::AccountId{r.getAccount()};
  o.instrument = core::InstrumentId{r.getInstrument()};
  o.client_order_id = core::ClientOrderId{r.getClientOrderId()};
  o.direction = enum_to_core<core::Direction>(r.getDirection(), "NewOrder.direction", ctx);
  o.offset = enum_to_core<core::Offset>(r.getOffset(), "NewOrder.offset", ctx);
  o.price_type = enum_to_core<core::PriceType>(r.getPriceType(), "NewOrder.priceType", ctx);
  o.price = core::PriceTicks{r.getPrice()};
  o.volume = core::Lots{r.getVolume()};
  o.time_condition =
      enum_to_core<core::TimeCondition>(r.getTimeCondition(), "NewOrder.timeCondition", ctx);
  o.volume_condition =
      enum_to_core<core::VolumeCondition>(r.getVolumeCondition(), "NewOrder.volumeCondition", ctx);
  o.post_only = r.getPostOnly();
  const auto stp = r.getStp();
  switch (stp.which()) {
    case schema::NewOrder::Stp::ACCOUNT: break;
    case schema::NewOrder::Stp::OWN: {
      const auto own = stp.getOwn();
      o.stp = stp_to_core(own.getMode(), own.getScope(), "NewOrder.stp.mode", "NewOrder.stp.scope",
                          ctx);
      break;
    }
    default: ctx.fail("NewOrder.stp", "unknown union member");
  }
  const auto trigger = r.getTrigger();
  switch (trigger.which()) {
    case schema::NewOrder::Trigger::NONE: break;
    case schema::NewOrder::Trigger::STOP: {
      const auto t = trigger.getStop();
      o.trigger = core::StopTrigger{
          enum_to_core<core::TriggerKind>(t.getKind(), "NewOrder.trigger.kind", ctx),
          enum_to_core<core::TriggerSource>(t.getSource(), "NewOrder.trigger.source", ctx),
          core::PriceTicks{t.getPrice()}};
      break;
    }
    default: ctx.fail("NewOrder.trigger", "unknown union member");
  }
  return o;
}

core::Settle read_settle(schema::Settle::Reader r) {
  core::Settle s;
  const auto prices = r.getPrices();
  s.prices.reserve(prices.size());
  for (const auto p : prices) {
    s.prices.push_back({core::InstrumentId{p.getInstrument()}, core::PriceTicks{p.getPrice()}});
  }
  return s;
}

core::CreateInstrument read_create_instrument(schema::CreateInstrument::Reader r, Context& ctx) {
  core::CreateInstrument v;
  v.code = text_to_core(r.getCode(), "CreateInstrument.code", ctx);
  v.exchange = text_to_core(r.getExchange(), "CreateInstrument.exchange", ctx);
  v.params = read_params(r.getParams(), ctx);
  v.pre_settlement = core::PriceTicks{r.getPreSettlement()};
  return v;
}

core::AmendOrder read_amend_order(schema::AmendOrder::Reader r, Context& ctx) {
  core::AmendOrder v;
  v.account = core::AccountId{r.getAccount()};
  v.ref = read_order_ref(r.getRef(), ctx);
  v.new_price = core::PriceTicks{r.getNewPrice()};
  v.new_volume_left = core::Lots{r.getNewVolumeLeft()};
  return v;
}

// Every schema member is listed (no default), so -Wswitch flags a member added to the schema
// and not handled here; a discriminant this reader does not know falls out of the switch.
core::EventBody read_body(BodyReader body, Context& ctx) {
  using Body = schema::Event::Body;
  switch (body.which()) {
    case Body::NONE: ctx.fail("Event.body", "no event kind is set"); return {};
    case Body::CREATE_INSTRUMENT: return read_create_instrument(body.getCreateInstrument(), ctx);
    case Body::UPDATE_INSTRUMENT: {
      const auto r = body.getUpdateInstrument();
      return core::UpdateInstrument{core::InstrumentId{r.getInstrument()},
                                    read_params(r.getParams(), ctx)};
    }
    case Body::SET_INSTRUMENT_STATUS: {
      const auto r = body.getSetInstrumentStatus();
      return core::SetInstrumentStatus{
          core::InstrumentId{r.getInstrument()},
          enum_to_core<core::InstrumentStatus>(r.getStatus(), "SetInstrumentStatus.status", ctx)};
    }
    case Body::CREATE_USER:
      return core::CreateUser{text_to_core(body.getCreateUser().getName(), "CreateUser.name", ctx)};
    case Body::CREATE_ACCOUNT: {
      const auto r = body.getCreateAccount();
      return core::CreateAccount{core::UserId{r.getUser()},
                                 text_to_core(r.getName(), "CreateAccount.name", ctx)};
    }
    case Body::DEPOSIT: {
      const auto r = body.getDeposit();
      return core::Deposit{core::AccountId{r.getAccount()}, core::Money{r.getAmount()}};
    }
    case Body::WITHDRAW: {
      const auto r = body.getWithdraw();
      return core::Withdraw{core::AccountId{r.getAccount()}, core::Money{r.getAmount()}};
    }
    case Body::SET_ACCOUNT_RISK: {
      const auto r = body.getSetAccountRisk();
      return core::SetAccountRisk{
          core::AccountId{r.getAccount()}, r.getMaxOpenOrders(), r.getEnabled(),
          stp_to_core(r.getStpMode(), r.getStpScope(), "SetAccountRisk.stpMode",
                      "SetAccountRisk.stpScope", ctx)};
    }
    case Body::SET_RISK_PARAMS: {
      const auto r = body.getSetRiskParams();
      core::SetRiskParams p{r.getLiquidationRatioPpb(), std::nullopt};
      const auto fund = r.getInsuranceAccount();
      switch (fund.which()) {
        case schema::SetRiskParams::InsuranceAccount::NONE: break;
        case schema::SetRiskParams::InsuranceAccount::ID:
          p.insurance_account = core::AccountId{fund.getId()};
          break;
        default: ctx.fail("SetRiskParams.insuranceAccount", "unknown union member");
      }
      return p;
    }
    case Body::SETTLE: return read_settle(body.getSettle());
    case Body::NEW_ORDER: return read_new_order(body.getNewOrder(), ctx);
    case Body::AMEND_ORDER: return read_amend_order(body.getAmendOrder(), ctx);
    case Body::CANCEL_ORDER: {
      const auto r = body.getCancelOrder();
      return core::CancelOrder{core::AccountId{r.getAccount()}, read_order_ref(r.getRef(), ctx)};
    }
    case Body::MARK_TO_MARKET: return core::MarkToMarket{};
    case Body::SET_CURRENCY: {
      const auto r = body.getSetCurrency();
      return core::SetCurrency{text_to_core(r.getCode(), "SetCurrency.code", ctx), r.getDecimals()};
    }
    case Body::SET_LIMITS: return core::SetLimits{read_limits(body.getSetLimits().getLimits())};
    case Body::SET_SESSION: {
      const auto r = body.getSetSession();
      return core::SetSession{core::InstrumentId{r.getInstrument()},
                              read_session(r.getSchedule(), ctx)};
    }
    case Body::LEADER_TERM: {
      const auto r = body.getLeaderTerm();
      return core::LeaderTerm{r.getEpoch(), r.getNode()};
    }
  }
  // A discriminant from a newer schema (or garbage): not representable in core.
  ctx.fail("Event.body",
           "unknown event kind " + std::to_string(static_cast<unsigned>(body.which())));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Snapshot parts.

void write_instrument(const core::InstrumentState& v, schema::InstrumentState::Builder b,
                      Context& ctx) {
  const auto& [code, exchange, params, status, pre_settlement, last_price, volume_today,
               turnover_today, price_max, session, phase, next_phase_ns] = v;
  b.setCode(text_to_schema(code, "InstrumentState.code", ctx));
  b.setExchange(text_to_schema(exchange, "InstrumentState.exchange", ctx));
  write_params(params, b.initParams());
  b.setStatus(enum_to_schema(status, "InstrumentState.status", ctx));
  b.setPreSettlement(pre_settlement.value);
  if (last_price.has_value()) {
    b.getLastPrice().setTicks(last_price->value);
  } else {
    b.getLastPrice().setNone();
  }
  b.setVolumeToday(volume_today.value);
  b.setTurnoverToday(turnover_today.value);
  b.setPriceMax(price_max.value);
  write_session(session, b.initSession(), ctx);
  b.setPhase(enum_to_schema(phase, "InstrumentState.phase", ctx));
  b.setNextPhaseNs(next_phase_ns);
}

core::InstrumentState read_instrument(schema::InstrumentState::Reader r, Context& ctx) {
  core::InstrumentState v;
  v.code = text_to_core(r.getCode(), "InstrumentState.code", ctx);
  v.exchange = text_to_core(r.getExchange(), "InstrumentState.exchange", ctx);
  v.params = read_params(r.getParams(), ctx);
  v.status = enum_to_core<core::InstrumentStatus>(r.getStatus(), "InstrumentState.status", ctx);
  v.pre_settlement = core::PriceTicks{r.getPreSettlement()};
  const auto last = r.getLastPrice();
  switch (last.which()) {
    case schema::InstrumentState::LastPrice::NONE: break;
    case schema::InstrumentState::LastPrice::TICKS:
      v.last_price = core::PriceTicks{last.getTicks()};
      break;
    default:
      ctx.fail("InstrumentState.lastPrice",
               "unknown union member " + std::to_string(static_cast<unsigned>(last.which())));
  }
  v.volume_today = core::Lots{r.getVolumeToday()};
  v.turnover_today = core::Money{r.getTurnoverToday()};
  v.price_max = core::PriceTicks{r.getPriceMax()};
  v.session = read_session(r.getSession(), ctx);
  v.phase = enum_to_core<core::TradingPhase>(r.getPhase(), "InstrumentState.phase", ctx);
  v.next_phase_ns = r.getNextPhaseNs();
  // Restore refuses what SetSession would: check here so that a bad snapshot is an error.
  if (!core::session_ok(v.session)) {
    ctx.fail("InstrumentState.session", "a schedule SetSession refuses (docs/semantics.md)");
  } else if (!core::phase_ok(v.phase)) {
    ctx.fail("InstrumentState.phase", "not a trading phase");
  } else if (v.session.entries.empty() && (v.next_phase_ns != core::kNoPhaseChange ||
                                           v.phase != core::TradingPhase::kContinuous)) {
    ctx.fail("InstrumentState.session",
             "an instrument without a schedule is CONTINUOUS with no next phase change");
  }
  return v;
}

void write_side(const core::PositionSide& v, schema::PositionSide::Builder b) {
  const auto& [today, his, frozen_today, frozen_his, open_cost, position_cost_today,
               position_cost_his, margin] = v;
  b.setToday(today.value);
  b.setHis(his.value);
  b.setFrozenToday(frozen_today.value);
  b.setFrozenHis(frozen_his.value);
  b.setOpenCost(open_cost.value);
  b.setPositionCostToday(position_cost_today.value);
  b.setPositionCostHis(position_cost_his.value);
  b.setMargin(margin.value);
}

core::PositionSide read_side(schema::PositionSide::Reader r) {
  core::PositionSide v;
  v.today = core::Lots{r.getToday()};
  v.his = core::Lots{r.getHis()};
  v.frozen_today = core::Lots{r.getFrozenToday()};
  v.frozen_his = core::Lots{r.getFrozenHis()};
  v.open_cost = core::Money{r.getOpenCost()};
  v.position_cost_today = core::Money{r.getPositionCostToday()};
  v.position_cost_his = core::Money{r.getPositionCostHis()};
  v.margin = core::Money{r.getMargin()};
  return v;
}

void write_account(const core::AccountState& v, schema::AccountState::Builder b, Context& ctx) {
  const auto& [name, user, enabled, max_open_orders, stp, pre_balance, deposit, withdraw,
               close_profit, commission, positions] = v;
  b.setName(text_to_schema(name, "AccountState.name", ctx));
  b.setUser(core::raw(user));
  b.setEnabled(enabled);
  b.setMaxOpenOrders(max_open_orders);
  b.setStpMode(enum_to_schema(stp.mode, "AccountState.stpMode", ctx));
  b.setStpScope(enum_to_schema(stp.scope, "AccountState.stpScope", ctx));
  b.setPreBalance(pre_balance.value);
  b.setDeposit(deposit.value);
  b.setWithdraw(withdraw.value);
  b.setCloseProfit(close_profit.value);
  b.setCommission(commission.value);
  auto list = b.initPositions(list_size(positions.size(), "AccountState.positions", ctx));
  for (unsigned i = 0; i < list.size(); ++i) {
    const auto& [instrument, long_side, short_side] = positions[i];
    list[i].setInstrument(core::raw(instrument));
    write_side(long_side, list[i].initLongSide());
    write_side(short_side, list[i].initShortSide());
  }
}

core::AccountState read_account(schema::AccountState::Reader r, Context& ctx) {
  core::AccountState v;
  v.name = text_to_core(r.getName(), "AccountState.name", ctx);
  v.user = core::UserId{r.getUser()};
  v.enabled = r.getEnabled();
  v.max_open_orders = r.getMaxOpenOrders();
  v.stp = stp_to_core(r.getStpMode(), r.getStpScope(), "AccountState.stpMode",
                      "AccountState.stpScope", ctx);
  v.pre_balance = core::Money{r.getPreBalance()};
  v.deposit = core::Money{r.getDeposit()};
  v.withdraw = core::Money{r.getWithdraw()};
  v.close_profit = core::Money{r.getCloseProfit()};
  v.commission = core::Money{r.getCommission()};
  const auto positions = r.getPositions();
  v.positions.reserve(positions.size());
  for (const auto p : positions) {
    v.positions.push_back({core::InstrumentId{p.getInstrument()}, read_side(p.getLongSide()),
                           read_side(p.getShortSide())});
  }
  return v;
}

void write_order(const core::OrderState& v, schema::OrderState::Builder b, Context& ctx) {
  const auto& [id, client_order_id, account, instrument, direction, offset, price_type,
               time_condition, post_only, forced, stp, price, volume_orig, volume_left,
               frozen_margin, frozen_commission, frozen_today, frozen_his, insert_time_ns] = v;
  b.setId(core::raw(id));
  b.setClientOrderId(core::raw(client_order_id));
  b.setAccount(core::raw(account));
  b.setInstrument(core::raw(instrument));
  b.setDirection(enum_to_schema(direction, "OrderState.direction", ctx));
  b.setOffset(enum_to_schema(offset, "OrderState.offset", ctx));
  b.setPriceType(enum_to_schema(price_type, "OrderState.priceType", ctx));
  b.setTimeCondition(enum_to_schema(time_condition, "OrderState.timeCondition", ctx));
  b.setPostOnly(post_only);
  b.setForced(forced);
  b.setStpMode(enum_to_schema(stp.mode, "OrderState.stpMode", ctx));
  b.setStpScope(enum_to_schema(stp.scope, "OrderState.stpScope", ctx));
  b.setPrice(price.value);
  b.setVolumeOrig(volume_orig.value);
  b.setVolumeLeft(volume_left.value);
  b.setFrozenMargin(frozen_margin.value);
  b.setFrozenCommission(frozen_commission.value);
  b.setFrozenToday(frozen_today.value);
  b.setFrozenHis(frozen_his.value);
  b.setInsertTimeNs(insert_time_ns);
}

core::OrderState read_order(schema::OrderState::Reader r, Context& ctx) {
  core::OrderState v;
  v.id = core::OrderId{r.getId()};
  v.client_order_id = core::ClientOrderId{r.getClientOrderId()};
  v.account = core::AccountId{r.getAccount()};
  v.instrument = core::InstrumentId{r.getInstrument()};
  v.direction = enum_to_core<core::Direction>(r.getDirection(), "OrderState.direction", ctx);
  v.offset = enum_to_core<core::Offset>(r.getOffset(), "OrderState.offset", ctx);
  v.price_type = enum_to_core<core::PriceType>(r.getPriceType(), "OrderState.priceType", ctx);
  v.time_condition =
      enum_to_core<core::TimeCondition>(r.getTimeCondition(), "OrderState.timeCondition", ctx);
  v.post_only = r.getPostOnly();
  v.forced = r.getForced();
  v.stp = stp_to_core(r.getStpMode(), r.getStpScope(), "OrderState.stpMode", "OrderState.stpScope",
                      ctx);
  v.price = core::PriceTicks{r.getPrice()};
  v.volume_orig = core::Lots{r.getVolumeOrig()};
  v.volume_left = core::Lots{r.getVolumeLeft()};
  v.frozen_margin = core::Money{r.getFrozenMargin()};
  v.frozen_commission = core::Money{r.getFrozenCommission()};
  v.frozen_today = core::Lots{r.getFrozenToday()};
  v.frozen_his = core::Lots{r.getFrozenHis()};
  v.insert_time_ns = r.getInsertTimeNs();
  return v;
}

void write_stop(const core::StopState& v, schema::StopState::Builder b, Context& ctx) {
  const auto& [id, order, insert_time_ns] = v;
  b.setId(core::raw(id));
  write_new_order(order, b.initOrder(), ctx);
  b.setInsertTimeNs(insert_time_ns);
}

core::StopState read_stop(schema::StopState::Reader r, Context& ctx) {
  core::StopState v;
  v.id = core::OrderId{r.getId()};
  v.order = read_new_order(r.getOrder(), ctx);
  if (!v.order.trigger) ctx.fail("StopState.order.trigger", "a pending stop has no trigger");
  v.insert_time_ns = r.getInsertTimeNs();
  return v;
}

// What restoring pending stops relies on, checked so that a bad snapshot is an error, not an
// abort: ids and references in range, defined enums, ids unique across orders and stops, client
// order ids unique per account across both.
void check_stops(const core::Snapshot& s, Context& ctx) {
  std::set<std::uint64_t> ids;
  std::set<std::pair<std::uint32_t, std::uint64_t>> clients;
  for (const core::OrderState& o : s.orders) {
    ids.insert(core::raw(o.id));
    if (core::raw(o.client_order_id) != 0) {
      clients.emplace(core::raw(o.account), core::raw(o.client_order_id));
    }
  }
  for (const core::StopState& st : s.stops) {
    const core::NewOrder& o = st.order;
    const bool refs = core::raw(o.instrument) < s.instruments.size() &&
                      core::raw(o.account) < s.accounts.size() && core::raw(st.id) != 0 &&
                      core::raw(st.id) < s.next_order_id;
    const bool enums =
        o.trigger && core::trigger_ok(*o.trigger) && (!o.stp || core::stp_ok(*o.stp));
    const bool unique =
        ids.insert(core::raw(st.id)).second &&
        (core::raw(o.client_order_id) == 0 ||
         clients.emplace(core::raw(o.account), core::raw(o.client_order_id)).second);
    if (!refs || !enums || !unique) {
      ctx.fail("Snapshot.stops", "stop " + std::to_string(core::raw(st.id)) +
                                     ": an id, reference or setting restore cannot accept");
      return;
    }
  }
}

void write_trade(const core::TradeState& v, schema::TradeState::Builder b, Context& ctx) {
  const auto& [id, instrument, price, volume, taker_order, taker_account, taker_direction,
               taker_offset, taker_fee, maker_order, maker_account, maker_offset, maker_fee,
               time_ns] = v;
  b.setId(core::raw(id));
  b.setInstrument(core::raw(instrument));
  b.setPrice(price.value);
  b.setVolume(volume.value);
  b.setTakerOrder(core::raw(taker_order));
  b.setTakerAccount(core::raw(taker_account));
  b.setTakerDirection(enum_to_schema(taker_direction, "TradeState.takerDirection", ctx));
  b.setTakerOffset(enum_to_schema(taker_offset, "TradeState.takerOffset", ctx));
  b.setTakerFee(taker_fee.value);
  b.setMakerOrder(core::raw(maker_order));
  b.setMakerAccount(core::raw(maker_account));
  b.setMakerOffset(enum_to_schema(maker_offset, "TradeState.makerOffset", ctx));
  b.setMakerFee(maker_fee.value);
  b.setTimeNs(time_ns);
}

core::TradeState read_trade(schema::TradeState::Reader r, Context& ctx) {
  core::TradeState v;
  v.id = core::TradeId{r.getId()};
  v.instrument = core::InstrumentId{r.getInstrument()};
  v.price = core::PriceTicks{r.getPrice()};
  v.volume = core::Lots{r.getVolume()};
  v.taker_order = core::OrderId{r.getTakerOrder()};
  v.taker_account = core::AccountId{r.getTakerAccount()};
  v.taker_direction =
      enum_to_core<core::Direction>(r.getTakerDirection(), "TradeState.takerDirection", ctx);
  v.taker_offset = enum_to_core<core::Offset>(r.getTakerOffset(), "TradeState.takerOffset", ctx);
  v.taker_fee = core::Money{r.getTakerFee()};
  v.maker_order = core::OrderId{r.getMakerOrder()};
  v.maker_account = core::AccountId{r.getMakerAccount()};
  v.maker_offset = enum_to_core<core::Offset>(r.getMakerOffset(), "TradeState.makerOffset", ctx);
  v.maker_fee = core::Money{r.getMakerFee()};
  v.time_ns = r.getTimeNs();
  return v;
}

// Fills `list` (initialised with values.size() elements) with `write(value, element, ctx)`.
template <class T, class ListBuilder, class WriteFn>
void write_list(const std::vector<T>& values, ListBuilder list, Context& ctx, WriteFn write) {
  for (unsigned i = 0; i < list.size(); ++i) write(values[i], list[i], ctx);
}

template <class T, class ListReader, class ReadFn>
std::vector<T> read_list(ListReader list, Context& ctx, ReadFn read) {
  std::vector<T> out;
  // Safe: the reader charged the list's size against the traversal limit when it was opened.
  out.reserve(list.size());
  for (const auto element : list) out.push_back(read(element, ctx));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Flat message bytes.

Result<Bytes> to_bytes(capnp::MessageBuilder& message) {
  const std::size_t words = capnp::computeSerializedSizeInWords(message);
  Bytes out(words * sizeof(capnp::word));
  kj::ArrayOutputStream stream(kj::arrayPtr(out.data(), out.size()));
  capnp::writeMessage(stream, message);
  QX_ASSERT(stream.getArray().size() == out.size());
  return out;
}

// Reads one whole message from `bytes` and converts its root with `read`.
template <class Root, class ReadFn>
auto from_bytes(std::span<const std::uint8_t> bytes, const char* what, ReadFn read)
    -> decltype(read(std::declval<typename Root::Reader>())) {
  const auto fail = [what](const std::string& problem) {
    return Error{std::string(what) + ": " + problem};
  };
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return fail("message of " + std::to_string(bytes.size()) +
                " bytes is not a positive multiple of 8 bytes");
  }
  const std::size_t word_count = bytes.size() / sizeof(capnp::word);
  kj::Array<capnp::word> aligned;
  const capnp::word* words = reinterpret_cast<const capnp::word*>(bytes.data());
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    aligned = kj::heapArray<capnp::word>(word_count);
    std::memcpy(aligned.begin(), bytes.data(), bytes.size());
    words = aligned.begin();
  }
  try {
    capnp::ReaderOptions options;
    // Every word of a well-formed message is read about once; the slack covers headers.
    options.traversalLimitInWords = word_count * 4 + 1024;
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, word_count), options);
    if (reader.getEnd() != words + word_count) {
      return fail(std::to_string((words + word_count - reader.getEnd()) * 8) +
                  " bytes follow the message");
    }
    return read(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return fail(std::string("malformed message: ") + e.getDescription().cStr());
  }
}

// Events and effects are small: build them in a zeroed first segment on the stack.
constexpr unsigned kScratchWords = 128;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API.

Status write_event(const core::Event& event, schema::Event::Builder out) {
  Context ctx("encode event");
  try {
    write_header(event.header, out.initHeader());
    std::visit([&](const auto& body) { write_body(body, out.getBody(), ctx); }, event.body);
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return Status::success();
}

Result<core::Event> read_event(schema::Event::Reader in) {
  Context ctx("decode event");
  core::Event event;
  try {
    event.header = read_header(in.getHeader());
    event.body = read_body(in.getBody(), ctx);
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return event;
}

Status write_effect(const core::Effect& effect, schema::Effect::Builder out) {
  Context ctx("encode effect");
  const auto& [kind, direction, offset, counter_offset, reason, pad, account, counter_account,
               instrument, user, order, counter_order, client_order_id, trade, price, volume,
               volume_left, amount, amount2] = effect;
  try {
    out.setKind(enum_to_schema(kind, "Effect.kind", ctx));
    out.setDirection(enum_to_schema(direction, "Effect.direction", ctx));
    out.setOffset(enum_to_schema(offset, "Effect.offset", ctx));
    out.setCounterOffset(enum_to_schema(counter_offset, "Effect.counterOffset", ctx));
    out.setReason(reason);
    if (pad != 0) ctx.fail("Effect.pad_", "must be zero, is " + std::to_string(pad));
    out.setAccount(core::raw(account));
    out.setCounterAccount(core::raw(counter_account));
    out.setInstrument(core::raw(instrument));
    out.setUser(core::raw(user));
    out.setOrder(core::raw(order));
    out.setCounterOrder(core::raw(counter_order));
    out.setClientOrderId(core::raw(client_order_id));
    out.setTrade(core::raw(trade));
    out.setPrice(price.value);
    out.setVolume(volume.value);
    out.setVolumeLeft(volume_left.value);
    out.setAmount(amount.value);
    out.setAmount2(amount2.value);
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return Status::success();
}

Result<core::Effect> read_effect(schema::Effect::Reader in) {
  Context ctx("decode effect");
  core::Effect v;
  try {
    v.kind = enum_to_core<core::EffectKind>(in.getKind(), "Effect.kind", ctx);
    v.direction = enum_to_core<core::Direction>(in.getDirection(), "Effect.direction", ctx);
    v.offset = enum_to_core<core::Offset>(in.getOffset(), "Effect.offset", ctx);
    v.counter_offset =
        enum_to_core<core::Offset>(in.getCounterOffset(), "Effect.counterOffset", ctx);
    v.reason = in.getReason();
    v.account = core::AccountId{in.getAccount()};
    v.counter_account = core::AccountId{in.getCounterAccount()};
    v.instrument = core::InstrumentId{in.getInstrument()};
    v.user = core::UserId{in.getUser()};
    v.order = core::OrderId{in.getOrder()};
    v.counter_order = core::OrderId{in.getCounterOrder()};
    v.client_order_id = core::ClientOrderId{in.getClientOrderId()};
    v.trade = core::TradeId{in.getTrade()};
    v.price = core::PriceTicks{in.getPrice()};
    v.volume = core::Lots{in.getVolume()};
    v.volume_left = core::Lots{in.getVolumeLeft()};
    v.amount = core::Money{in.getAmount()};
    v.amount2 = core::Money{in.getAmount2()};
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return v;
}

Status write_snapshot(const core::Snapshot& s, schema::Snapshot::Builder out) {
  Context ctx("encode snapshot");
  const auto& [semantics_version, last_seq, last_timestamp_ns, trading_day, next_order_id,
               next_trade_id, effects_hash, liquidation_ratio_ppb, insurance_account, currency,
               money_decimals, limits, epoch, leader, instruments, users, accounts, orders, stops,
               trades] = s;
  try {
    out.setSchemaVersion(kSchemaVersion);
    out.setSemanticsVersion(semantics_version);
    out.setLastSeq(core::raw(last_seq));
    out.setLastTimestampNs(last_timestamp_ns);
    out.setTradingDay(trading_day);
    out.setNextOrderId(next_order_id);
    out.setNextTradeId(next_trade_id);
    out.setEffectsHash(effects_hash);
    if (liquidation_ratio_ppb.has_value()) {
      out.getLiquidationRatio().setPpb(*liquidation_ratio_ppb);
    } else {
      out.getLiquidationRatio().setNone();
    }
    if (insurance_account.has_value()) {
      out.getInsuranceAccount().setId(core::raw(*insurance_account));
    } else {
      out.getInsuranceAccount().setNone();
    }
    out.setCurrency(text_to_schema(currency, "Snapshot.currency", ctx));
    out.setMoneyDecimals(money_decimals);
    write_limits(limits, out.initLimits());
    out.setEpoch(epoch);
    out.setLeader(leader);
    write_list(instruments,
               out.initInstruments(list_size(instruments.size(), "Snapshot.instruments", ctx)), ctx,
               write_instrument);
    auto user_list = out.initUsers(list_size(users.size(), "Snapshot.users", ctx));
    for (unsigned i = 0; i < user_list.size(); ++i) {
      user_list.set(i, text_to_schema(users[i], "Snapshot.users", ctx));
    }
    write_list(accounts, out.initAccounts(list_size(accounts.size(), "Snapshot.accounts", ctx)),
               ctx, write_account);
    write_list(orders, out.initOrders(list_size(orders.size(), "Snapshot.orders", ctx)), ctx,
               write_order);
    write_list(stops, out.initStops(list_size(stops.size(), "Snapshot.stops", ctx)), ctx,
               write_stop);
    write_list(trades, out.initTrades(list_size(trades.size(), "Snapshot.trades", ctx)), ctx,
               write_trade);
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return Status::success();
}

Result<core::Snapshot> read_snapshot(schema::Snapshot::Reader in) {
  Context ctx("decode snapshot");
  core::Snapshot s;
  try {
    const std::uint32_t version = in.getSchemaVersion();
    if (version == 0 || version > kSchemaVersion) {
      return Error{"decode snapshot: schema version " + std::to_string(version) +
                   " is not supported (this reader knows 1.." + std::to_string(kSchemaVersion) +
                   ")"};
    }
    s.semantics_version = in.getSemanticsVersion();
    s.last_seq = core::Seq{in.getLastSeq()};
    s.last_timestamp_ns = in.getLastTimestampNs();
    s.trading_day = in.getTradingDay();
    s.next_order_id = in.getNextOrderId();
    s.next_trade_id = in.getNextTradeId();
    s.effects_hash = in.getEffectsHash();
    const auto ratio = in.getLiquidationRatio();
    switch (ratio.which()) {
      case schema::Snapshot::LiquidationRatio::NONE: break;
      case schema::Snapshot::LiquidationRatio::PPB: s.liquidation_ratio_ppb = ratio.getPpb(); break;
      default:
        ctx.fail("Snapshot.liquidationRatio",
                 "unknown union member " + std::to_string(static_cast<unsigned>(ratio.which())));
    }
    const auto fund = in.getInsuranceAccount();
    switch (fund.which()) {
      case schema::Snapshot::InsuranceAccount::NONE: break;
      case schema::Snapshot::InsuranceAccount::ID:
        s.insurance_account = core::AccountId{fund.getId()};
        break;
      default: ctx.fail("Snapshot.insuranceAccount", "unknown union member");
    }
    s.currency = text_to_core(in.getCurrency(), "Snapshot.currency", ctx);
    s.money_decimals = in.getMoneyDecimals();
    if (s.money_decimals > core::kMoneyDecimalsMax) {
      ctx.fail("Snapshot.moneyDecimals", std::to_string(s.money_decimals) + " is above " +
                                             std::to_string(core::kMoneyDecimalsMax));
    }
    s.limits = read_limits(in.getLimits());
    if (!core::limits_ok(s.limits)) {
      ctx.fail("Snapshot.limits",
               "limits SetLimits refuses (core/limits.h): restoring would "
               "reserve memory for them");
    }
    s.epoch = in.getEpoch();
    s.leader = in.getLeader();
    if ((s.epoch == 0) != (s.leader == 0)) {
      ctx.fail("Snapshot.leader", "a term needs both an epoch and a leader (epoch " +
                                      std::to_string(s.epoch) + ", leader " +
                                      std::to_string(s.leader) + ")");
    }
    s.instruments = read_list<core::InstrumentState>(in.getInstruments(), ctx, read_instrument);
    s.users = read_list<std::string>(in.getUsers(), ctx, [](capnp::Text::Reader t, Context& c) {
      return text_to_core(t, "Snapshot.users", c);
    });
    s.accounts = read_list<core::AccountState>(in.getAccounts(), ctx, read_account);
    s.orders = read_list<core::OrderState>(in.getOrders(), ctx, read_order);
    s.stops = read_list<core::StopState>(in.getStops(), ctx, read_stop);
    s.trades = read_list<core::TradeState>(in.getTrades(), ctx, read_trade);
    check_stops(s, ctx);
  } catch (const kj::Exception& e) {
    return ctx.kj_error(e);
  }
  if (ctx.failed()) return ctx.error();
  return s;
}

Result<Bytes> encode_event(const core::Event& event) {
  capnp::word scratch[kScratchWords]{};
  capnp::MallocMessageBuilder message(kj::arrayPtr(scratch, kScratchWords));
  if (Status s = write_event(event, message.initRoot<schema::Event>()); !s.ok()) return s.error();
  return to_bytes(message);
}

Result<core::Event> decode_event(std::span<const std::uint8_t> bytes) {
  return from_bytes<schema::Event>(bytes, "decode event", read_event);
}

Result<Bytes> encode_effect(const core::Effect& effect) {
  capnp::word scratch[kScratchWords]{};
  capnp::MallocMessageBuilder message(kj::arrayPtr(scratch, kScratchWords));
  if (Status s = write_effect(effect, message.initRoot<schema::Effect>()); !s.ok()) {
    return s.error();
  }
  return to_bytes(message);
}

Result<core::Effect> decode_effect(std::span<const std::uint8_t> bytes) {
  return from_bytes<schema::Effect>(bytes, "decode effect", read_effect);
}

Result<Bytes> encode_snapshot(const core::Snapshot& snapshot) {
  capnp::MallocMessageBuilder message;
  if (Status s = write_snapshot(snapshot, message.initRoot<schema::Snapshot>()); !s.ok()) {
    return s.error();
  }
  return to_bytes(message);
}

Result<core::Snapshot> decode_snapshot(std::span<const std::uint8_t> bytes) {
  return from_bytes<schema::Snapshot>(bytes, "decode snapshot", read_snapshot);
}

}  // namespace qx::replay
