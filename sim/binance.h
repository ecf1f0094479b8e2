// Binance USD-M futures trades and best bid/offer (bookTicker) CSV files: parsing decimal text
// straight to integers, and reading the two files merged in arrival order.
//
//   Result<BinanceReader> r = BinanceReader::open("trades.csv", "bbo.csv.gz", BinanceScale{});
//   BinanceTick tick;
//   while (r.value().next(tick).value()) { ... tick.kind, tick.trade / tick.bbo ... }
//
// Files (see the data folder's README): `trades.csv` has the header
//   local_ts_ns,event_time_ms,trade_time_ms,trade_id,price,qty,is_buyer_maker,aggressor_side
// and `bbo.csv[.gz]` the header
//   local_ts_ns,event_time_ms,transaction_time_ms,update_id,bid_price,bid_qty,ask_price,ask_qty
// Either file may be gzip-compressed (read through zlib; plain files pass through unchanged).
//
// Units: prices and quantities become integers scaled by 10^decimals (BTCUSDT: price_decimals 1,
// tick 0.1 USDT; qty_decimals 3, lot 0.001 BTC). A value with non-zero digits beyond those
// decimals is an error, never rounded.
//
// Order: `local_ts_ns` is the capture machine's arrival time (about 1.25 s behind the exchange's
// clock in the sample, so it is only an order, not a time); `next()` merges the files by it, a
// BBO update before a trade with the same arrival time, and each file in its own order. Each
// file's arrival time must not decrease. Exchange times (`event_time_ms` ...) are kept as given.
//
// Checked while reading, each an error naming file and line: the header, column counts, numbers,
// aggressor side agreeing with is_buyer_maker, positive prices and quantities, a BBO whose bid is
// below its ask. Counted, not refused: gaps in trade ids (`trade_id_gaps`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/types.h"
#include "replay/result.h"

namespace qx::sim {

struct BinanceScale {
  int price_decimals = 1;  // 61800.30 -> 618003
  int qty_decimals = 3;    // 0.006 -> 6
};

struct BinanceTrade {
  std::int64_t local_ts_ns{};
  std::int64_t event_time_ms{};
  std::int64_t trade_time_ms{};
  std::uint64_t trade_id{};
  std::int64_t price{};  // 10^-price_decimals units
  std::int64_t qty{};    // 10^-qty_decimals units
  core::Direction aggressor{};
};

struct BinanceBbo {
  std::int64_t local_ts_ns{};
  std::int64_t event_time_ms{};
  std::int64_t transaction_time_ms{};
  std::uint64_t update_id{};
  std::int64_t bid_price{}, bid_qty{}, ask_price{}, ask_qty{};
};

enum class BinanceTickKind : std::uint8_t { kTrade, kBbo };

struct BinanceTick {
  BinanceTickKind kind{};
  BinanceTrade trade;  // when kind == kTrade
  BinanceBbo bbo;      // when kind == kBbo
};

inline constexpr std::string_view kBinanceTradesHeader =
    "local_ts_ns,event_time_ms,trade_time_ms,trade_id,price,qty,is_buyer_maker,aggressor_side";
inline constexpr std::string_view kBinanceBboHeader =
    "local_ts_ns,event_time_ms,transaction_time_ms,update_id,bid_price,bid_qty,ask_price,ask_qty";

[[nodiscard]] replay::Result<BinanceTrade> parse_binance_trade(std::string_view line,
                                                               const BinanceScale& scale);
[[nodiscard]] replay::Result<BinanceBbo> parse_binance_bbo(std::string_view line,
                                                           const BinanceScale& scale);

struct BinanceStats {
  std::uint64_t trades = 0;
  std::uint64_t bbos = 0;
  std::uint64_t buy_aggressor = 0;
  std::uint64_t sell_aggressor = 0;
  std::uint64_t trade_id_gaps = 0;            // trades whose id is not the previous id + 1
  std::int64_t min_price = 0, max_price = 0;  // over trades, scaled
};

// Reads a trades file and a BBO file merged in arrival order. Either path may be empty (then
// only the other file is read). Errors name the file and line.
class BinanceReader {
 public:
  [[nodiscard]] static replay::Result<BinanceReader> open(const std::string& trades_path,
                                                          const std::string& bbo_path,
                                                          const BinanceScale& scale);
  BinanceReader(BinanceReader&&) noexcept;
  BinanceReader& operator=(BinanceReader&&) noexcept;
  ~BinanceReader();

  // The next tick; false after the last of both files.
  [[nodiscard]] replay::Result<bool> next(BinanceTick& tick);

  [[nodiscard]] const BinanceStats& stats() const { return stats_; }

 private:
  struct Source;  // one file: a line reader (plain or gzip) and its pending record
  BinanceReader();
  [[nodiscard]] replay::Status advance(Source& s);

  BinanceScale scale_;
  std::unique_ptr<Source> trades_, bbo_;
  BinanceStats stats_;
  std::uint64_t last_trade_id_ = 0;
};

}  // namespace qx::sim
