// `qx sim ...`: market-data tools. `qx sim lobster` rebuilds a LOBSTER order book through the
// engine and checks it against LOBSTER's own reference book; `qx sim binance` reads and checks
// Binance trade and best-bid/offer files.
//
// Kept apart from main() like the other subcommands: parsed options in, an output stream and an
// exit code out; bad input throws std::runtime_error with a one-line reason (main prints it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace qx::app {

struct SimLobsterOptions {
  std::string messages;    // ..._message_N.csv
  std::string orderbook;   // ..._orderbook_N.csv
  std::size_t levels = 0;  // 0: from the orderbook file's columns
  // Trading date (YYYY-MM-DD, New York) and ticker; taken from the LOBSTER file name if unset.
  std::optional<std::string> date;
  std::optional<std::string> ticker;
  std::int64_t tick_units = 100;  // LOBSTER price units (1e-4 USD) per tick
  std::uint32_t timing_runs = 1;  // timed rebuilds after the check; the median is printed
  bool json = false;
};

// Checks every row (engine top N vs the orderbook file), then times book rebuilds (engine apply
// only). Prints the report; returns 0 when every row matched and the engine neither rejected
// nor traded, 1 otherwise (with a one-line reason on `err`).
int run_sim_lobster(const SimLobsterOptions& options, std::ostream& out, std::ostream& err);

struct SimBinanceOptions {
  std::string trades;  // trades.csv (may be gzip)
  std::string bbo;     // bbo.csv or bbo.csv.gz
  int price_decimals = 1;
  int qty_decimals = 3;
  bool json = false;
};

// Reads a Binance trades file and BBO file merged in arrival order, checking every row; prints
// what it read (counts, aggressors, trade-id gaps, price range, time span, rows/s). Returns 0
// when every row parsed and no trade id was skipped; a bad row throws (file:line: reason).
int run_sim_binance(const SimBinanceOptions& options, std::ostream& out, std::ostream& err);

}  // namespace qx::app
