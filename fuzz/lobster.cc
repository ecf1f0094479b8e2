// Fuzz target: the LOBSTER reader, parsers and book rebuild (sim/lobster.h), the path of
// `qx sim lobster` and of the Python backtests on LOBSTER days.
//
// Byte 0 picks the orderbook file's level count (1..10); the rest is text whose lines alternate
// message line, orderbook row, and become the two files. check_lobster reads them in step, parses
// every line, rebuilds the book through LobsterBook and applies its events to a real engine,
// comparing rows: a file it cannot follow must be an error, never a crash, and the book must
// never hand the engine something that breaks it.
//
//   scripts/fuzz.sh lobster
#include "sim/lobster.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  qx::sim::LobsterConfig config;
  config.levels = std::size_t{in.byte()} % 10 + 1;
  config.day_start_ns = 1'700'000'000'000'000'000;
  const auto [messages, rows] = qx::fuzz::deal_lines(in.rest_text());
  const auto dir = qx::fuzz::scratch_dir("lobster");
  const std::string messages_path = dir / "X_message_1.csv";
  const std::string rows_path = dir / "X_orderbook_1.csv";
  std::ofstream(messages_path, std::ios::binary) << messages;
  std::ofstream(rows_path, std::ios::binary) << rows;
  (void)qx::sim::check_lobster(messages_path, rows_path, config);
  return 0;
}
