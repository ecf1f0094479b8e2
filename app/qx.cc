// The `qx` executable: parses the command line (CLI11) and dispatches to one function per
// subcommand. It only wires modules together; each subcommand's logic lives in its own file.
//
// Exit codes: 0 success; 2 bad command line (one line on stderr saying why); otherwise what the
// subcommand returns.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "app/demo.h"
#include "core/snapshot.h"

#ifndef QX_VERSION
#define QX_VERSION "0.0.0"
#endif

namespace {

// CLI11 would read "-1" into an unsigned option as 2^64 - 1; refuse a sign instead.
const CLI::Validator kNotNegative(
    [](std::string& text) {
      return !text.empty() && text.front() == '-' ? std::string("must not be negative")
                                                  : std::string();
    },
    "", "NOT_NEGATIVE");

}  // namespace

int main(int argc, char** argv) {
  const std::string version = std::string("qx ") + QX_VERSION + " (semantics " +
                              std::to_string(qx::core::kSemanticsVersion) + ")";
  CLI::App app{"QAExchange: a deterministic, event-sourced futures exchange.", "qx"};
  app.set_version_flag("--version", version, "Print the version and semantics version, then exit");
  app.require_subcommand(1);

  qx::app::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo",
      "Generate a realistic trading session, apply it through the engine, print counts "
      "and hashes");
  demo_cmd->add_option("--seed", demo.seed, "Seed of the session generator")
      ->capture_default_str()
      ->check(kNotNegative);
  demo_cmd->add_option("--events", demo.events, "Number of events to generate and apply")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "qx: " << e.what() << " (see qx --help)\n";
    return 2;
  }

  try {
    if (demo_cmd->parsed()) return qx::app::run_demo(demo, std::cout);
  } catch (const std::exception& e) {
    std::cerr << "qx: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
