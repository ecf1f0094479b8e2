// The auditor's subcommands of `qx`: verify, replay, audit (statement, events, book), snapshot
// and index. Each takes parsed options and output streams and returns an exit code; failures
// throw std::runtime_error with a one-line reason, which main prints.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace qx::app {

struct VerifyOptions {
  std::string dir;
  bool json = false;
};

struct ReplayCmdOptions {
  std::string dir;
  std::optional<std::uint64_t> until_seq;
  std::optional<std::string> until_time;  // ns since the epoch, or ISO 8601 UTC
  bool from_snapshot = false;
  bool json = false;
};

struct StatementOptions {
  std::string dir;
  std::string account;  // name, or #id
  std::optional<std::uint64_t> at_seq;
  bool json = false;
};

struct EventsOptions {
  std::string dir;
  std::optional<std::string> account;
  std::optional<std::string> instrument;
  std::optional<std::string> from;
  std::optional<std::string> to;
  std::string format = "json";  // json | csv
};

struct BookOptions {
  std::string dir;
  std::string instrument;
  std::optional<std::uint64_t> at_seq;
  std::size_t depth = 5;
  bool json = false;
};

struct StoreCmdOptions {
  std::string dir;
  bool json = false;
  bool list = false;  // snapshot: list the stored snapshots instead of storing one
};

int run_verify(const VerifyOptions& o, std::ostream& out);
int run_replay(const ReplayCmdOptions& o, std::ostream& out);
int run_statement(const StatementOptions& o, std::ostream& out);
int run_events(const EventsOptions& o, std::ostream& out);
int run_book(const BookOptions& o, std::ostream& out);
int run_snapshot(const StoreCmdOptions& o, std::ostream& out);
int run_index(const StoreCmdOptions& o, std::ostream& out);
// Opens the journal as a writer would (cutting a torn tail), then restores the engine from the
// newest valid snapshot plus the tail, as a restarting server does; prints what it found.
int run_recover(const StoreCmdOptions& o, std::ostream& out);

// Parses a time given as integer nanoseconds since the epoch or as ISO 8601 UTC
// ("2025-01-02T01:30:00Z", fractional seconds allowed). Throws on anything else.
std::int64_t parse_time_ns(const std::string& text);

}  // namespace qx::app
