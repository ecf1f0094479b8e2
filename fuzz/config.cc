// Fuzz target: the two configuration files an operator writes, `qx serve --config` and
// `qx serve --cluster` (server/serve.h, cluster/config.h).
//
// Byte 0 picks the parser; the rest is the file's text (for a serve file: its keys and values, as
// check_config_text reads them). Both promise to refuse a bad file with a std::runtime_error: any
// other exception (a JSON type error, an out_of_range) escapes this target and counts as a crash,
// as would an abort or a hang.
//
//   scripts/fuzz.sh config
#include "cluster/config.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "fuzz/fuzz_input.h"
#include "server/serve.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  const bool cluster = (in.byte() & 1) != 0;
  const auto text = in.rest_text();
  try {
    if (cluster) {
      (void)qx::cluster::parse_cluster_config(text, "fuzz.json", qx::cluster::TlsFiles::kNotOpened);
    } else {
      qx::server::check_config_text(text, "fuzz.json");
    }
  } catch (const std::runtime_error&) {
    // The operator's error message.
  }
  return 0;
}
