// LOBSTER parsing and book rebuilding (lobster.h has the design notes and the mapping).
//
// The parsers work on string_views of one line and never allocate on success; the reader adds
// the file name and line number to their errors. The shadow book is ordered maps (deterministic,
// O(log n) per message); it is not on the timed path (only engine.apply is timed).
#include "sim/lobster.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <variant>

#include "core/assert.h"
#include "core/engine.h"
#include "sim/text.h"

namespace qx::sim {

using text::chomp;
using text::csv_columns;
using text::digits_value;
using text::is_digit;
using text::quoted;
using text::split;

namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kNsPerDay = 86'400 * kNsPerSecond;
constexpr std::size_t kTimeSecondDigitsMax = 7;  // up to 9,999,999 s after midnight
constexpr std::size_t kNsDigits = 9;
constexpr std::size_t kMessageColumns = 6;

// Huge limits: the replay must never be refused for size, position or funds.
constexpr std::int64_t kMaxOrderLots = 1'000'000'000;
constexpr std::int64_t kDepositMinor = 10'000'000'000'000;  // 1e9 USD in 1e-4 USD units

Error field_error(const char* name, std::string_view text, const char* why) {
  return Error{std::string(name) + " " + quoted(text) + " " + why};
}

}  // namespace

Result<std::int64_t> parse_lobster_int(std::string_view text) {
  bool negative = !text.empty() && text.front() == '-';
  std::int64_t v = 0;
  if (!digits_value(negative ? text.substr(1) : text, v)) {
    return Error{quoted(text) + " is not an integer"};
  }
  return negative ? -v : v;
}

Result<std::int64_t> parse_lobster_time_ns(std::string_view text) {
  std::size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  std::int64_t seconds = 0;
  std::int64_t frac_ns = 0;
  bool ok = whole.size() <= kTimeSecondDigitsMax && digits_value(whole, seconds) &&
            (dot == std::string_view::npos || !frac.empty()) &&
            std::all_of(frac.begin(), frac.end(), is_digit);
  if (!ok) return Error{"time " + quoted(text) + " is not seconds after midnight (like 34200.5)"};
  // The first nine decimals are nanoseconds; further digits (a float artefact) are dropped.
  for (std::size_t i = 0; i < kNsDigits; ++i) {
    frac_ns = frac_ns * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  }
  return seconds * kNsPerSecond + frac_ns;
}

Result<LobsterMessage> parse_lobster_message(std::string_view line) {
  line = chomp(line);
  std::string_view f[kMessageColumns];
  if (!split(line, kMessageColumns, f)) {
    return Error{std::to_string(csv_columns(line)) +
                 " columns, expected 6 (time, type, order id, " + "size, price, direction)"};
  }
  Result<std::int64_t> time = parse_lobster_time_ns(f[0]);
  if (!time.ok()) return time.error();
  std::int64_t v[kMessageColumns] = {};
  static constexpr const char* kNames[kMessageColumns] = {"time", "type",  "order id",
                                                          "size", "price", "direction"};
  for (std::size_t i = 1; i < kMessageColumns; ++i) {
    Result<std::int64_t> r = parse_lobster_int(f[i]);
    if (!r.ok()) return field_error(kNames[i], f[i], "is not an integer");
    v[i] = r.value();
  }
  LobsterMessage m;
  m.time_ns = time.value();
  if (v[1] < 1 || v[1] > 7) return field_error("type", f[1], "is not 1..7");
  m.type = static_cast<LobsterType>(v[1]);
  if (v[5] != 1 && v[5] != -1) return field_error("direction", f[5], "is not 1 or -1");
  m.direction = v[5] == 1 ? core::Direction::kBuy : core::Direction::kSell;
  if (v[2] < 0) return field_error("order id", f[2], "is negative");
  m.order_id = static_cast<std::uint64_t>(v[2]);
  m.size = v[3];
  m.price = v[4];
  bool book_change = v[1] <= 4;
  if (m.size < 0 || (v[1] <= 5 && m.size == 0)) {
    return field_error("size", f[3], "must be positive");
  }
  if (book_change && m.order_id == 0) return field_error("order id", f[2], "must not be 0");
  if (v[1] <= 6 && m.price <= 0) return field_error("price", f[4], "must be positive");
  return m;
}

Status parse_lobster_row(std::string_view line, std::size_t levels, LobsterRow& out) {
  line = chomp(line);
  out.asks.clear();
  out.bids.clear();
  if (levels == 0 || csv_columns(line) != 4 * levels) {
    return Error{std::to_string(csv_columns(line)) + " columns, expected " +
                 std::to_string(4 * levels) + " (4 per level)"};
  }
  bool ended[2] = {false, false};  // asks, bids: padding seen
  std::size_t start = 0;
  for (std::size_t i = 0; i < 2 * levels; ++i) {
    std::size_t c1 = line.find(',', start);
    std::size_t c2 = line.find(',', c1 + 1);
    std::string_view price_text = line.substr(start, c1 - start);
    std::string_view size_text =
        line.substr(c1 + 1, c2 == std::string_view::npos ? c2 : c2 - c1 - 1);
    start = c2 + 1;
    bool ask = i % 2 == 0;
    auto fail = [&](const std::string& what) {  // builds text only for a bad row
      return Error{std::string(ask ? "ask" : "bid") + " level " + std::to_string(i / 2 + 1) + ": " +
                   what};
    };
    std::int64_t p = 0;
    std::int64_t s = 0;
    bool negative = !price_text.empty() && price_text.front() == '-';
    if (!digits_value(negative ? price_text.substr(1) : price_text, p)) {
      return fail("price " + quoted(price_text) + " is not an integer");
    }
    if (!digits_value(size_text, s)) return fail("size " + quoted(size_text) + " is not a count");
    p = negative ? -p : p;
    bool& done = ended[ask ? 0 : 1];
    if (p == (ask ? kLobsterEmptyPrice : -kLobsterEmptyPrice)) {
      if (s != 0) return fail("an empty level with size " + std::to_string(s));
      done = true;
      continue;
    }
    if (done) return fail("a level after an empty one");
    if (p <= 0 || s <= 0) return fail("price and size must be positive");
    std::vector<LobsterLevel>& v = ask ? out.asks : out.bids;
    if (!v.empty() && (ask ? p <= v.back().price : p >= v.back().price)) {
      return fail("price " + std::to_string(p) + " is not worse than the level above");
    }
    v.push_back(LobsterLevel{p, s});
  }
  return Status::success();
}

// ---- Reader ----

Result<LobsterReader> LobsterReader::open(const std::string& messages_path,
                                          const std::string& orderbook_path, std::size_t levels) {
  LobsterReader r;
  r.messages_path_ = messages_path;
  r.orderbook_path_ = orderbook_path;
  for (auto [path, stream] :
       {std::pair{&messages_path, &r.messages_}, std::pair{&orderbook_path, &r.orderbook_}}) {
    stream->open(*path, std::ios::binary);
    if (!stream->is_open()) {
      return Error{*path + ": cannot open: " + std::strerror(errno)};
    }
  }
  // N from the first row's columns, then back to the start.
  std::string first;
  if (!std::getline(r.orderbook_, first)) return Error{orderbook_path + ": empty file"};
  std::size_t columns = csv_columns(chomp(first));
  if (columns % 4 != 0) {
    return r.at(orderbook_path, std::to_string(columns) + " columns, not 4 per level");
  }
  if (levels != 0 && columns != 4 * levels) {
    r.line_ = 1;
    return r.at(orderbook_path, std::to_string(columns) + " columns, but " +
                                    std::to_string(levels) + " levels need " +
                                    std::to_string(4 * levels));
  }
  r.levels_ = columns / 4;
  r.orderbook_.clear();
  r.orderbook_.seekg(0);
  return r;
}

Error LobsterReader::at(const std::string& path, std::string_view what) const {
  return Error{path + ":" + std::to_string(line_ == 0 ? 1 : line_) + ": " + std::string(what)};
}

Result<bool> LobsterReader::next(LobsterMessage& m, LobsterRow& row) {
  bool have_message = static_cast<bool>(std::getline(messages_, message_line_));
  bool have_row = static_cast<bool>(std::getline(orderbook_, row_line_));
  if (messages_.bad()) return at(messages_path_, "read error");
  if (orderbook_.bad()) return at(orderbook_path_, "read error");
  if (!have_message && !have_row) return false;
  line_ += 1;
  if (!have_message) {
    return at(messages_path_, "ends here, but the orderbook file has more rows");
  }
  if (!have_row) return at(orderbook_path_, "ends here, but the message file has more rows");
  Result<LobsterMessage> parsed = parse_lobster_message(message_line_);
  if (!parsed.ok()) return at(messages_path_, parsed.error().message);
  Status s = parse_lobster_row(row_line_, levels_, row);
  if (!s.ok()) return at(orderbook_path_, s.error().message);
  m = parsed.value();
  if (m.time_ns < last_time_ns_) {
    return at(messages_path_, "time goes backwards (" + std::to_string(m.time_ns) + " ns after " +
                                  std::to_string(last_time_ns_) + " ns)");
  }
  last_time_ns_ = m.time_ns;
  return true;
}

// ---- Book ----

LobsterBook::LobsterBook(const LobsterConfig& config) : config_(config) {
  QX_ASSERT(config_.tick_units > 0);
  QX_ASSERT(config_.levels > 0);
}

Result<std::int64_t> LobsterBook::ticks(std::int64_t price) const {
  if (price <= 0 || price % config_.tick_units != 0) {
    return Error{"price " + std::to_string(price) + " is not a positive multiple of the tick (" +
                 std::to_string(config_.tick_units) + ")"};
  }
  return price / config_.tick_units;
}

void LobsterBook::emit(core::EventBody body, std::vector<core::Event>& out) {
  seq_ += 1;
  stats_.events += 1;
  out.push_back(core::Event{core::EventHeader{core::Seq{seq_}, time_ns_, 0}, std::move(body)});
}

Status LobsterBook::step(const LobsterMessage& m, const LobsterRow& row,
                         std::vector<core::Event>& out) {
  time_ns_ = config_.day_start_ns + m.time_ns;
  if (!started_) {
    Status s = begin(m, row, out);
    if (!s.ok()) return s;
  }
  stats_.messages += 1;
  stats_.by_type[static_cast<std::size_t>(m.type)] += 1;
  Status s;
  switch (m.type) {
    case LobsterType::kSubmit: s = submit(m, out); break;
    case LobsterType::kPartialCancel:
    case LobsterType::kDelete:
    case LobsterType::kExecuteVisible: s = remove(m, out); break;
    case LobsterType::kExecuteHidden:
    case LobsterType::kCross:
    case LobsterType::kHalt: break;
  }
  if (!s.ok()) return s;
  s = reconcile(row, out);
  prev_row_.asks.assign(row.asks.begin(), row.asks.end());
  prev_row_.bids.assign(row.bids.begin(), row.bids.end());
  return s;
}

// Setup, then the book before message 1: row 1 with message 1 undone, per level.
Status LobsterBook::begin(const LobsterMessage& first, const LobsterRow& row,
                          std::vector<core::Event>& out) {
  QX_ASSERT(!started_);
  started_ = true;
  LobsterRow before = row;
  bool adds = first.type == LobsterType::kSubmit;
  if (static_cast<int>(first.type) <= 4) {
    std::vector<LobsterLevel>& v = before.side(first.direction);
    bool buy = first.direction == core::Direction::kBuy;
    auto pos = std::find_if(v.begin(), v.end(), [&](const LobsterLevel& l) {
      return buy ? l.price <= first.price : l.price >= first.price;
    });
    bool found = pos != v.end() && pos->price == first.price;
    if (adds) {
      if (!found || pos->size < first.size) {
        return Error{"orderbook row 1 lacks the volume that message 1 submitted"};
      }
      pos->size -= first.size;
      if (pos->size == 0) v.erase(pos);
    } else if (found) {
      pos->size += first.size;
    } else {
      v.insert(pos, LobsterLevel{first.price, first.size});
    }
  }
  std::int64_t reference = 1;
  for (const auto* side : {&row.bids, &row.asks}) {
    if (!side->empty() && reference == 1) {
      Result<std::int64_t> t = ticks(side->front().price);
      if (!t.ok()) return t.error();
      reference = t.value();
    }
  }

  core::InstrumentParams p;
  p.price_tick_e8 = config_.tick_units * (core::kDecimalScale / 10'000);  // unit = 1e-4 USD
  p.multiplier_e8 = core::kDecimalScale;                                  // one share per lot
  p.max_order_volume = core::Lots(kMaxOrderLots);
  // As large as the engine allows with a price ceiling of 10x the first price (core/limits.h).
  p.position_limit =
      core::position_limit_max(p, core::PriceTicks(10 * reference), core::kMoneyScale);
  // Margin, fees and price band: none. The replay is the exchange's book, not anyone's risk.
  // LOBSTER is NASDAQ: money in US dollars, 4 decimals (LOBSTER's own price unit, 1e-4 USD).
  emit(core::SetCurrency{"USD", core::kMoneyDecimalsDefault}, out);
  emit(core::CreateInstrument{config_.instrument_code, config_.exchange, p,
                              core::PriceTicks(reference)},
       out);
  emit(core::CreateUser{"lobster"}, out);
  emit(core::CreateAccount{core::UserId{0}, "lobster_bids"}, out);
  emit(core::CreateAccount{core::UserId{0}, "lobster_asks"}, out);
  for (core::Direction d : {core::Direction::kBuy, core::Direction::kSell}) {
    emit(core::Deposit{account_of(d), core::Money(kDepositMinor)}, out);
  }
  for (core::Direction d : {core::Direction::kBuy, core::Direction::kSell}) {
    for (const LobsterLevel& l : before.side(d)) {
      Result<std::int64_t> t = ticks(l.price);
      if (!t.ok()) return t.error();
      add_anonymous(d, t.value(), l.size, out);
      stats_.levels_seeded_at_start += 1;
    }
  }
  prev_row_ = std::move(before);
  return Status::success();
}

Status LobsterBook::submit(const LobsterMessage& m, std::vector<core::Event>& out) {
  if (m.order_id >= kAnonymousIdBase) {
    return Error{"order id " + std::to_string(m.order_id) + " is too large (at most 2^62 - 1)"};
  }
  if (orders_.contains(m.order_id)) {
    return Error{"order id " + std::to_string(m.order_id) + " submitted again while resting"};
  }
  Result<std::int64_t> t = ticks(m.price);
  if (!t.ok()) return t.error();
  core::NewOrder o;
  o.account = account_of(m.direction);
  o.instrument = instrument();
  o.client_order_id = core::ClientOrderId{m.order_id};
  o.direction = m.direction;
  o.offset = core::Offset::kOpen;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(t.value());
  o.volume = core::Lots(m.size);
  o.time_condition = core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  emit(o, out);
  Level& level = side(m.direction)[key(m.direction, t.value())];
  level.volume += m.size;
  level.orders.push_back(m.order_id);
  orders_.emplace(m.order_id, Order{m.direction, t.value(), m.size, false});
  return Status::success();
}

// Types 2, 3 and 4: the level loses exactly `m.size`, from the named order as far as it can.
Status LobsterBook::remove(const LobsterMessage& m, std::vector<core::Event>& out) {
  Result<std::int64_t> t = ticks(m.price);
  if (!t.ok()) return t.error();
  std::int64_t price = t.value();
  auto it = orders_.find(m.order_id);
  if (it == orders_.end() || it->second.anonymous) {
    stats_.unknown_order_messages += 1;
    stats_.shortfall_lots +=
        static_cast<std::uint64_t>(reduce(m.direction, price, m.size, std::nullopt, out));
    return Status::success();
  }
  Order& o = it->second;
  if (o.direction != m.direction || o.price_ticks != price) {
    return Error{"order " + std::to_string(m.order_id) + " rests as " +
                 core::to_string(o.direction) + " at " +
                 std::to_string(o.price_ticks * config_.tick_units) + ", the message says " +
                 core::to_string(m.direction) + " at " + std::to_string(m.price)};
  }
  bool deletes = m.type == LobsterType::kDelete;
  if (o.volume < m.size || (deletes && o.volume != m.size)) stats_.size_disagreements += 1;
  if (deletes && o.volume > m.size) {
    // The order held more than the delete removes: the excess is someone else's volume that the
    // book lost sight of. It stays resting, at the order's place in the queue, as anonymous.
    Level& level = side(m.direction).at(key(m.direction, price));
    QX_ASSERT_EQ(take(m.order_id, m.size, level, out), m.size);
    o.anonymous = true;
    return Status::success();
  }
  stats_.shortfall_lots +=
      static_cast<std::uint64_t>(reduce(m.direction, price, m.size, m.order_id, out));
  return Status::success();
}

void LobsterBook::add_anonymous(core::Direction d, std::int64_t price_ticks, std::int64_t volume,
                                std::vector<core::Event>& out) {
  QX_ASSERT(volume > 0);
  std::uint64_t id = next_anonymous_id_++;
  core::NewOrder o;
  o.account = account_of(d);
  o.instrument = instrument();
  o.client_order_id = core::ClientOrderId{id};
  o.direction = d;
  o.offset = core::Offset::kOpen;
  o.price_type = core::PriceType::kLimit;
  o.price = core::PriceTicks(price_ticks);
  o.volume = core::Lots(volume);
  o.time_condition = core::TimeCondition::kGtc;
  o.volume_condition = core::VolumeCondition::kAny;
  emit(o, out);
  Level& level = side(d)[key(d, price_ticks)];
  level.volume += volume;
  level.orders.push_back(id);
  orders_.emplace(id, Order{d, price_ticks, volume, true});
}

std::int64_t LobsterBook::take(std::uint64_t client_id, std::int64_t volume, Level& level,
                               std::vector<core::Event>& out) {
  auto it = orders_.find(client_id);
  QX_ASSERT(it != orders_.end());
  Order& o = it->second;
  std::int64_t taken = std::min(volume, o.volume);
  QX_ASSERT(taken > 0);
  core::OrderRef ref{std::nullopt, core::ClientOrderId{client_id}};
  core::AccountId account = account_of(o.direction);
  level.volume -= taken;
  if (taken == o.volume) {
    emit(core::CancelOrder{account, ref}, out);
    auto pos = std::find(level.orders.begin(), level.orders.end(), client_id);
    QX_ASSERT(pos != level.orders.end());
    level.orders.erase(pos);
    orders_.erase(it);
  } else {
    o.volume -= taken;
    emit(core::AmendOrder{account, ref, core::PriceTicks(o.price_ticks), core::Lots(o.volume)},
         out);
  }
  return taken;
}

std::int64_t LobsterBook::reduce(core::Direction d, std::int64_t price_ticks, std::int64_t volume,
                                 std::optional<std::uint64_t> preferred,
                                 std::vector<core::Event>& out) {
  Side& s = side(d);
  auto level_it = s.find(key(d, price_ticks));
  if (level_it == s.end()) return volume;
  Level& level = level_it->second;
  std::int64_t left = volume;
  if (preferred) left -= take(*preferred, left, level, out);
  // Anonymous liquidity first (it is the oldest, and what unseen orders were), then known orders.
  for (bool anonymous : {true, false}) {
    for (std::size_t i = 0; i < level.orders.size() && left > 0;) {
      std::uint64_t id = level.orders[i];
      if (orders_.at(id).anonymous != anonymous) {
        ++i;
        continue;
      }
      left -= take(id, left, level, out);
      if (i < level.orders.size() && level.orders[i] == id) ++i;  // still resting: move on
    }
  }
  QX_ASSERT(level.volume >= 0);
  if (level.volume == 0) {
    QX_ASSERT(level.orders.empty());
    s.erase(level_it);
  }
  return left;
}

bool LobsterBook::set_level(core::Direction d, std::int64_t price_ticks, std::int64_t target,
                            std::vector<core::Event>& out) {
  const Side& s = side(d);
  auto it = s.find(key(d, price_ticks));
  std::int64_t current = it == s.end() ? 0 : it->second.volume;
  if (target > current) add_anonymous(d, price_ticks, target - current, out);
  if (target < current) {
    QX_ASSERT_EQ(reduce(d, price_ticks, current - target, std::nullopt, out), 0);
  }
  return target != current;
}

Status LobsterBook::reconcile(const LobsterRow& row, std::vector<core::Event>& out) {
  for (core::Direction d : {core::Direction::kBuy, core::Direction::kSell}) {
    const std::vector<LobsterLevel>& prev = prev_row_.side(d);
    const std::vector<LobsterLevel>& cur = row.side(d);
    // Every price of the row on the tick (the previous row's were checked as this one is).
    for (const LobsterLevel& l : cur) {
      if (l.price % config_.tick_units != 0) return ticks(l.price).error();
    }
    if (prev.size() < config_.levels) continue;  // the whole side was visible: nothing unknown
    reconcile_side(d, prev, cur, out);
  }
  return Status::success();
}

// Levels beyond the previous row's N-th level were out of sight; those that row i shows (up to
// its N-th level, or all of them when row i shows fewer than N) are set from it.
void LobsterBook::reconcile_side(core::Direction d, const std::vector<LobsterLevel>& prev,
                                 const std::vector<LobsterLevel>& cur,
                                 std::vector<core::Event>& out) {
  const std::int64_t n = static_cast<std::int64_t>(config_.levels);
  std::int64_t tick = config_.tick_units;
  std::int64_t boundary = key(d, prev[static_cast<std::size_t>(n - 1)].price / tick);
  std::int64_t limit = cur.size() >= config_.levels
                           ? key(d, cur[static_cast<std::size_t>(n - 1)].price / tick)
                           : kInt64Max;
  auto shown = [&](std::int64_t k) {
    return std::any_of(cur.begin(), cur.end(),
                       [&](const LobsterLevel& l) { return key(d, l.price / tick) == k; });
  };
  Side& s = side(d);
  for (auto it = s.upper_bound(boundary); it != s.end() && it->first <= limit;) {
    std::int64_t k = it->first;
    ++it;  // set_level may erase k's node
    if (!shown(k)) {
      set_level(d, key(d, k), 0, out);  // key() is its own inverse
      stats_.levels_dropped += 1;
    }
  }
  for (const LobsterLevel& l : cur) {
    std::int64_t price = l.price / tick;
    if (key(d, price) <= boundary) continue;
    stats_.levels_entered += 1;
    if (set_level(d, price, l.size, out)) stats_.levels_seeded += 1;
  }
}

// ---- Comparison ----

void engine_row(const core::Engine& engine, core::InstrumentId instrument, std::size_t levels,
                std::int64_t tick_units, LobsterRow& out) {
  core::BookView view = engine.book(instrument, levels);
  out.asks.clear();
  out.bids.clear();
  for (const core::LevelView& l : view.asks) {
    out.asks.push_back(LobsterLevel{l.price.value * tick_units, l.volume.value});
  }
  for (const core::LevelView& l : view.bids) {
    out.bids.push_back(LobsterLevel{l.price.value * tick_units, l.volume.value});
  }
}

std::optional<LobsterMismatch> compare_rows(const LobsterRow& expected, const LobsterRow& actual) {
  for (core::Direction d : {core::Direction::kSell, core::Direction::kBuy}) {
    const std::vector<LobsterLevel>& e = expected.side(d);
    const std::vector<LobsterLevel>& a = actual.side(d);
    for (std::size_t i = 0; i < std::max(e.size(), a.size()); ++i) {
      std::optional<LobsterLevel> want = i < e.size() ? std::optional(e[i]) : std::nullopt;
      std::optional<LobsterLevel> got = i < a.size() ? std::optional(a[i]) : std::nullopt;
      if (want != got) return LobsterMismatch{d, i, want, got};
    }
  }
  return std::nullopt;
}

namespace {

void note_effects(const core::EffectBuffer& effects, const core::Event& e, LobsterCheckReport& r) {
  for (const core::Effect& f : effects) {
    bool reject =
        f.kind == core::EffectKind::kOrderRejected || f.kind == core::EffectKind::kAdminRejected;
    bool trade = f.kind == core::EffectKind::kTrade;
    r.engine_rejects += reject ? 1 : 0;
    r.engine_trades += trade ? 1 : 0;
    if ((reject || trade) && r.first_engine_problem.empty()) {
      r.first_engine_problem =
          "seq " + std::to_string(core::raw(e.header.seq)) + ": " + core::to_string(f.kind) +
          (reject ? std::string(" ") + core::to_string(static_cast<core::RejectReason>(f.reason))
                  : std::string());
    }
  }
}

}  // namespace

Result<LobsterCheckReport> check_lobster(const std::string& messages_path,
                                         const std::string& orderbook_path, LobsterConfig config) {
  Result<LobsterReader> opened = LobsterReader::open(messages_path, orderbook_path, config.levels);
  if (!opened.ok()) return opened.error();
  LobsterReader& reader = opened.value();
  config.levels = reader.levels();
  LobsterBook book(config);
  core::Engine engine;
  core::EffectBuffer effects;
  std::vector<core::Event> events;
  LobsterMessage m;
  LobsterRow row, actual;
  LobsterCheckReport r;
  r.levels = config.levels;
  for (;;) {
    Result<bool> more = reader.next(m, row);
    if (!more.ok()) return more.error();
    if (!more.value()) break;
    events.clear();
    Status s = book.step(m, row, events);
    if (!s.ok()) {
      return Error{messages_path + ":" + std::to_string(reader.line()) + ": " + s.error().message};
    }
    for (const core::Event& e : events) {
      effects.clear();
      engine.apply(e, effects);
      note_effects(effects, e, r);
    }
    engine_row(engine, book.instrument(), config.levels, config.tick_units, actual);
    r.rows_compared += 1;
    std::optional<LobsterMismatch> diff = compare_rows(row, actual);
    if (!diff) continue;
    r.rows_mismatched += 1;
    if (!r.first_mismatch) {
      r.first_mismatch = diff;
      r.first_mismatch_line = reader.line();
      r.first_mismatch_message = m;
      r.first_mismatch_expected = row;
      r.first_mismatch_actual = actual;
    }
  }
  if (r.rows_compared == 0) return Error{messages_path + ": no messages"};
  r.stats = book.stats();
  r.state_hash = engine.state_hash();
  r.effects_hash = engine.effects_hash();
  return r;
}

// ---- Dates ----

std::optional<std::int64_t> days_from_civil(std::int64_t year, std::int64_t month,
                                            std::int64_t day) {
  constexpr std::int64_t kYearMin = 1970;
  constexpr std::int64_t kYearMax = 2200;
  auto leap = [](std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; };
  static constexpr std::int64_t kMonthDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < kYearMin || year > kYearMax || month < 1 || month > 12 || day < 1) return {};
  std::int64_t in_month = kMonthDays[month - 1] + (month == 2 && leap(year) ? 1 : 0);
  if (day > in_month) return {};
  std::int64_t days = 0;
  for (std::int64_t y = kYearMin; y < year; ++y) days += leap(y) ? 366 : 365;
  for (std::int64_t mo = 1; mo < month; ++mo) {
    days += kMonthDays[mo - 1] + (mo == 2 && leap(year) ? 1 : 0);
  }
  return days + day - 1;
}

std::optional<std::int64_t> new_york_midnight_ns(std::int64_t year, std::int64_t month,
                                                 std::int64_t day) {
  std::optional<std::int64_t> days = days_from_civil(year, month, day);
  if (!days) return {};
  // The n-th Sunday of a month (1970-01-01 was a Thursday: weekday 4 with Sunday = 0).
  auto nth_sunday = [year](std::int64_t mo, std::int64_t n) {
    std::int64_t first = *days_from_civil(year, mo, 1);
    std::int64_t weekday = (first + 4) % 7;
    return first + (7 - weekday) % 7 + 7 * (n - 1);
  };
  // Daylight time starts at 2:00 on the second Sunday of March and ends at 2:00 on the first
  // Sunday of November, so midnight is in daylight time strictly after the first and up to and
  // including the second.
  bool daylight = *days > nth_sunday(3, 2) && *days <= nth_sunday(11, 1);
  constexpr std::int64_t kHourNs = 3'600 * kNsPerSecond;
  return *days * kNsPerDay + (daylight ? 4 : 5) * kHourNs;
}

Result<std::int64_t> parse_trading_date(std::string_view text) {
  std::int64_t y = 0, mo = 0, d = 0;
  bool ok = text.size() == 10 && text[4] == '-' && text[7] == '-' &&
            digits_value(text.substr(0, 4), y) && digits_value(text.substr(5, 2), mo) &&
            digits_value(text.substr(8, 2), d);
  std::optional<std::int64_t> ns = ok ? new_york_midnight_ns(y, mo, d) : std::nullopt;
  if (!ns) return Error{"date " + quoted(text) + " is not a date YYYY-MM-DD (1970..2200)"};
  return *ns;
}

}  // namespace qx::sim
