// Fuzz target: the Binance trades and BBO readers (sim/binance.h), as `qx sim binance` and the
// Python backtests read a day of futures data.
//
// Bytes 0 and 1 pick the price and quantity decimals (0..8); byte 2's bit 0 names the trades
// file .csv.gz, so that the gzip path reads whatever bytes follow. The rest is text whose lines
// alternate trades line, BBO line, and become the two files (with their header lines only when
// the input has them). Every tick is read until the end or the first error; nothing may crash
// or overflow.
//
//   scripts/fuzz.sh binance
#include "sim/binance.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  qx::sim::BinanceScale scale;
  scale.price_decimals = in.byte() % 9;
  scale.qty_decimals = in.byte() % 9;
  const bool gzip = (in.byte() & 1) != 0;
  const auto [trades, bbo] = qx::fuzz::deal_lines(in.rest_text());
  const auto dir = qx::fuzz::scratch_dir("binance");
  const std::string trades_path = dir / (gzip ? "trades.csv.gz" : "trades.csv");
  const std::string bbo_path = dir / "bbo.csv";
  std::ofstream(trades_path, std::ios::binary) << trades;
  std::ofstream(bbo_path, std::ios::binary) << bbo;
  auto reader = qx::sim::BinanceReader::open(trades_path, bbo_path, scale);
  if (!reader.ok()) return 0;
  qx::sim::BinanceTick tick;
  for (;;) {
    auto more = reader.value().next(tick);
    if (!more.ok() || !more.value()) break;
  }
  return 0;
}
