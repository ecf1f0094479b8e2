// LOBSTER order-by-order data (lobsterdata.com): parsing, and rebuilding its book through the
// engine.
//
//   qx::replay::Result<qx::sim::LobsterReader> r = LobsterReader::open(messages, orderbook, 0);
//   qx::sim::LobsterReader& reader = r.value();
//   qx::sim::LobsterBook book(LobsterConfig{.day_start_ns = ..., .levels = reader.levels()});
//   LobsterMessage m;  LobsterRow row;  std::vector<core::Event> events;
//   for (;;) {
//     Result<bool> more = reader.next(m, row);     // message i and the book after it
//     if (!more.ok() || !more.value()) break;
//     events.clear();
//     Status s = book.step(m, row, events);        // the engine events message i stands for
//     for (const core::Event& e : events) engine.apply(e, effects);
//   }
//
// Format (see the vendor readme): a message file (time in seconds after midnight with up to nine
// or more decimals, type 1..7, order id, size, price in 1e-4 USD, direction 1 buy / -1 sell) and
// an orderbook file whose row i is the top N levels after message i (ask price, ask size, bid
// price, bid size per level; 9999999999 / -9999999999 with size 0 pad an empty level). Every
// number is parsed straight from its decimal text to an integer; nothing passes through double.
// A malformed row is an error naming the file, the line and what is wrong with it.
//
// Design: `LobsterBook` turns messages into engine events for one instrument and two synthetic
// accounts (all bids in one, all asks in the other; the file's book is never crossed, so no
// incoming order trades and self-trade prevention never fires). It keeps a shadow of what it has
// told the engine (orders per price level, in queue order), so it can choose which resting order
// a reduction hits without reading engine state, and it reconciles the shadow with the reference
// rows only where messages cannot tell it anything:
//   - type 1 (submit): NewOrder LIMIT GTC, client order id = the LOBSTER order id;
//   - types 2 (partial cancel) and 4 (visible execution): AmendOrder to the smaller volume at the
//     same price (time priority kept), or CancelOrder when nothing is left. Executions are replayed
//     as reductions of the resting order, never as crossing orders (ITCH shows only the maker);
//   - type 3 (delete): CancelOrder;
//   - types 5 (hidden execution), 6 (cross trade) and 7 (halt indicator): no visible change, no
//     event (halts are counted, not enforced: quoting continues through a halt in the files);
//   - an order id never seen (it rested before the file starts, or was submitted while outside
//     the N visible levels) reduces "anonymous" liquidity at its price: the seeded orders;
//   - a known order whose remaining volume disagrees with the message (it lost volume unseen)
//     gives the level exactly the message's change: what the order lacks comes from other orders
//     at the level, and a delete leaves what it has in excess resting as anonymous liquidity;
//   - the initial book: orderbook row 1 with message 1 undone, one anonymous order per level;
//   - window: the previous row shows everything down to its N-th level, so levels beyond it are
//     unknown. Where such levels enter row i's window without a message (a better level emptied),
//     they are set from row i (an anonymous order added, or orders reduced) and shadow levels
//     that row i shows absent are removed. These are counted (`levels_entered`, `levels_seeded`,
//     `levels_dropped`); levels inside the previous window are never touched this way, so a
//     comparison of the engine's top N with row i tests the message replay itself.
//
// Caveats:
//   - the events assume a fresh engine (seq from 1; user 0, accounts 0 and 1, instrument 0);
//   - prices of types 1..4 and of the orderbook must be multiples of `tick_units` (hidden
//     executions may be at half ticks: they are not converted);
//   - time: message time is local (exchange) time after midnight; `day_start_ns` is that
//     midnight in ns since the Unix epoch. Digits past nanoseconds are dropped (one row of the
//     AMZN sample has 12 decimals). Times must not decrease; equal times keep file order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/events.h"
#include "core/types.h"
#include "replay/result.h"  // header only: Result/Status for sim/ as for replay/

namespace qx::core {
class Engine;
}

namespace qx::sim {

using replay::Error;
using replay::Result;
using replay::Status;

enum class LobsterType : std::uint8_t {
  kSubmit = 1,
  kPartialCancel = 2,
  kDelete = 3,
  kExecuteVisible = 4,
  kExecuteHidden = 5,
  kCross = 6,
  kHalt = 7,
};
inline constexpr std::size_t kLobsterTypes = 8;  // index 0 unused

struct LobsterMessage {
  std::int64_t time_ns{};  // after midnight, exchange time
  LobsterType type{};
  std::uint64_t order_id{};  // 0 for hidden executions and halts
  std::int64_t size{};       // shares; for types 2..4 the shares removed
  std::int64_t price{};      // 1e-4 USD; for halts -1 / 0 / 1
  core::Direction direction{};
};

// One price level of the reference book, in LOBSTER units.
struct LobsterLevel {
  std::int64_t price{};
  std::int64_t size{};
  bool operator==(const LobsterLevel&) const = default;
};

// One orderbook row: occupied levels only (padding dropped), best first.
struct LobsterRow {
  std::vector<LobsterLevel> asks;
  std::vector<LobsterLevel> bids;
  [[nodiscard]] const std::vector<LobsterLevel>& side(core::Direction d) const {
    return d == core::Direction::kBuy ? bids : asks;
  }
  [[nodiscard]] std::vector<LobsterLevel>& side(core::Direction d) {
    return d == core::Direction::kBuy ? bids : asks;
  }
  bool operator==(const LobsterRow&) const = default;
};

// Price of an empty level in the orderbook file (ask; the bid padding is its negative).
inline constexpr std::int64_t kLobsterEmptyPrice = 9'999'999'999;

// Decimal text to integers. Errors say what is wrong, without a file position (callers add it).
[[nodiscard]] Result<std::int64_t> parse_lobster_int(std::string_view text);
// "34200.18960767" -> 34'200'189'607'670 ns. Digits past the ninth decimal are dropped.
[[nodiscard]] Result<std::int64_t> parse_lobster_time_ns(std::string_view text);
[[nodiscard]] Result<LobsterMessage> parse_lobster_message(std::string_view line);
// Parses a row of 4 * levels columns into `out` (reusing its storage). Checks padding (only at
// the end of a side, size 0), sizes > 0 and prices strictly worse level by level.
[[nodiscard]] Status parse_lobster_row(std::string_view line, std::size_t levels, LobsterRow& out);

// Reads a message file and its orderbook file in step, one message and the row after it.
class LobsterReader {
 public:
  // `levels` 0: taken from the orderbook file's column count. Errors name the file.
  [[nodiscard]] static Result<LobsterReader> open(const std::string& messages_path,
                                                  const std::string& orderbook_path,
                                                  std::size_t levels);
  // Reads the next pair; false after the last. Errors name file and line; they also report a
  // file that ends before the other, and time that goes backwards.
  [[nodiscard]] Result<bool> next(LobsterMessage& m, LobsterRow& row);

  [[nodiscard]] std::size_t levels() const { return levels_; }
  [[nodiscard]] std::uint64_t line() const { return line_; }  // of the pair last read (1-based)
  [[nodiscard]] const std::string& messages_path() const { return messages_path_; }
  [[nodiscard]] const std::string& orderbook_path() const { return orderbook_path_; }

 private:
  LobsterReader() = default;
  Error at(const std::string& path, std::string_view what) const;

  std::string messages_path_, orderbook_path_;
  std::ifstream messages_, orderbook_;
  std::string message_line_, row_line_;
  std::size_t levels_ = 0;
  std::uint64_t line_ = 0;
  std::int64_t last_time_ns_ = 0;
};

struct LobsterConfig {
  std::string instrument_code = "AMZN";
  std::string exchange = "NASDAQ";
  std::int64_t tick_units = 100;  // LOBSTER price units (1e-4 USD) per engine tick: 0.01 USD
  std::int64_t day_start_ns = 0;  // midnight of the trading day (exchange time), Unix ns
  std::size_t levels = 1;         // N of the orderbook file
};

struct LobsterStats {
  std::uint64_t messages = 0;
  std::uint64_t by_type[kLobsterTypes] = {};
  std::uint64_t events = 0;                  // engine events produced, setup included
  std::uint64_t levels_seeded_at_start = 0;  // initial book levels (one anonymous order each)
  std::uint64_t levels_entered = 0;          // levels that entered the window without a message
  std::uint64_t levels_seeded = 0;           // ... whose volume the shadow had wrong (set)
  std::uint64_t levels_dropped = 0;          // stale levels the reference shows gone (removed)
  std::uint64_t unknown_order_messages = 0;  // types 2..4 on ids never seen: anonymous liquidity
  std::uint64_t size_disagreements = 0;      // known order holding other than the message says
  std::uint64_t shortfall_lots = 0;          // volume to remove that the level did not hold
};

// Turns LOBSTER messages into engine events (see the design notes at the top of the file).
class LobsterBook {
 public:
  explicit LobsterBook(const LobsterConfig& config);

  // The events of message `m`, whose book afterwards is `row`, appended to `out`. The first
  // call also emits the setup (instrument, user, accounts, deposits) and the initial book.
  // Errors: data the book cannot follow (a price off the tick, an order id submitted twice, a
  // known order at another price or side, a first row that message 1 cannot be undone from).
  [[nodiscard]] Status step(const LobsterMessage& m, const LobsterRow& row,
                            std::vector<core::Event>& out);

  [[nodiscard]] const LobsterStats& stats() const { return stats_; }
  [[nodiscard]] const LobsterConfig& config() const { return config_; }
  [[nodiscard]] core::InstrumentId instrument() const { return core::InstrumentId{0}; }
  [[nodiscard]] static core::AccountId account_of(core::Direction d) {
    return d == core::Direction::kBuy ? core::AccountId{0} : core::AccountId{1};
  }
  // Client order ids from here up are the book's own (anonymous liquidity); LOBSTER ids must be
  // below.
  static constexpr std::uint64_t kAnonymousIdBase = std::uint64_t{1} << 62;

 private:
  struct Order {
    core::Direction direction{};
    std::int64_t price_ticks{};
    std::int64_t volume{};
    bool anonymous{};
  };
  struct Level {
    std::int64_t volume{};
    std::vector<std::uint64_t> orders;  // client order ids, queue order
  };
  // Bids are kept under negated prices, so both sides iterate best first.
  using Side = std::map<std::int64_t, Level>;

  Status begin(const LobsterMessage& first, const LobsterRow& row, std::vector<core::Event>& out);
  Status submit(const LobsterMessage& m, std::vector<core::Event>& out);
  Status remove(const LobsterMessage& m, std::vector<core::Event>& out);
  Status reconcile(const LobsterRow& row, std::vector<core::Event>& out);
  void reconcile_side(core::Direction d, const std::vector<LobsterLevel>& prev,
                      const std::vector<LobsterLevel>& cur, std::vector<core::Event>& out);

  // Adds an anonymous order of `volume` at the back of the level.
  void add_anonymous(core::Direction d, std::int64_t price_ticks, std::int64_t volume,
                     std::vector<core::Event>& out);
  // Takes `volume` from the level: from `preferred` first (if set), then anonymous orders, then
  // known ones, front of the queue first. Returns what the level could not give.
  std::int64_t reduce(core::Direction d, std::int64_t price_ticks, std::int64_t volume,
                      std::optional<std::uint64_t> preferred, std::vector<core::Event>& out);
  // Takes up to `volume` from one order (amend, or cancel when it empties); returns what it took.
  std::int64_t take(std::uint64_t client_id, std::int64_t volume, Level& level,
                    std::vector<core::Event>& out);
  // Sets a level's volume to `target` (0 removes it). Returns whether it changed.
  bool set_level(core::Direction d, std::int64_t price_ticks, std::int64_t target,
                 std::vector<core::Event>& out);

  Side& side(core::Direction d) { return d == core::Direction::kBuy ? bids_ : asks_; }
  std::int64_t key(core::Direction d, std::int64_t price_ticks) const {
    return d == core::Direction::kBuy ? -price_ticks : price_ticks;
  }
  Result<std::int64_t> ticks(std::int64_t price) const;
  void emit(core::EventBody body, std::vector<core::Event>& out);

  LobsterConfig config_;
  LobsterStats stats_;
  Side bids_, asks_;
  std::map<std::uint64_t, Order> orders_;  // by client order id
  LobsterRow prev_row_;                    // the reference row before the current message
  std::uint64_t next_anonymous_id_ = kAnonymousIdBase;
  std::uint64_t seq_ = 0;
  std::int64_t time_ns_ = 0;  // of the message being translated, Unix ns
  bool started_ = false;
};

// The engine's top `levels` levels of an instrument as a row in LOBSTER units (price x tick).
void engine_row(const core::Engine& engine, core::InstrumentId instrument, std::size_t levels,
                std::int64_t tick_units, LobsterRow& out);

// The first difference between two rows (asks first, then bids; best level first).
struct LobsterMismatch {
  core::Direction direction{};
  std::size_t level{};                   // 0 = best
  std::optional<LobsterLevel> expected;  // nullopt: the reference has no level there
  std::optional<LobsterLevel> actual;    // nullopt: the engine has no level there
};
[[nodiscard]] std::optional<LobsterMismatch> compare_rows(const LobsterRow& expected,
                                                          const LobsterRow& actual);

// What `check_lobster` found.
struct LobsterCheckReport {
  std::size_t levels = 0;
  std::uint64_t rows_compared = 0;
  std::uint64_t rows_mismatched = 0;
  // The first row that differed: its line, message, the reference row and the engine's.
  std::optional<LobsterMismatch> first_mismatch;
  std::uint64_t first_mismatch_line = 0;
  LobsterMessage first_mismatch_message;
  LobsterRow first_mismatch_expected, first_mismatch_actual;
  // Effects that must not happen when replaying a book: rejects and trades (with the first).
  std::uint64_t engine_rejects = 0;
  std::uint64_t engine_trades = 0;
  std::string first_engine_problem;
  LobsterStats stats;
  std::uint64_t state_hash = 0;
  std::uint64_t effects_hash = 0;
};

// Rebuilds the book of a message file through a fresh engine and compares the engine's top N
// levels (price and volume, both sides) with the orderbook file's row after every message.
// `config.levels` 0 takes N from the orderbook file. Bad input is an Error naming file and line;
// mismatches are data in the report.
[[nodiscard]] Result<LobsterCheckReport> check_lobster(const std::string& messages_path,
                                                       const std::string& orderbook_path,
                                                       LobsterConfig config);

// Days since 1970-01-01 of a proleptic Gregorian date; nullopt if the date does not exist.
[[nodiscard]] std::optional<std::int64_t> days_from_civil(std::int64_t year, std::int64_t month,
                                                          std::int64_t day);
// Midnight of a US equity trading date in New York (EST, or EDT from the second Sunday of March
// to the first Sunday of November, the rules since 2007), in ns since the Unix epoch.
[[nodiscard]] std::optional<std::int64_t> new_york_midnight_ns(std::int64_t year,
                                                               std::int64_t month,
                                                               std::int64_t day);
// "YYYY-MM-DD" -> new_york_midnight_ns.
[[nodiscard]] Result<std::int64_t> parse_trading_date(std::string_view text);

}  // namespace qx::sim
