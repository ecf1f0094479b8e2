// The `qx` executable: parses the command line (CLI11) and dispatches to one function per
// subcommand. It only wires modules together; each subcommand's logic lives in its own file.
//
// Exit codes: 0 success; 2 bad command line (one line on stderr saying why); otherwise what the
// subcommand returns.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "app/client_cmd.h"
#include "app/cluster_cmd.h"
#include "app/demo.h"
#include "app/journal_cmds.h"
#include "app/sim_cmd.h"
#include "core/snapshot.h"
#include "server/serve.h"

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
  demo_cmd->add_flag("--print-durable", demo.print_durable,
                     "With --journal: print durable=SEQ after every group commit");
  demo_cmd->add_option("--events", demo.events, "Number of events to generate and apply")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
  demo_cmd->add_option("--journal", demo.journal_dir,
                       "Journal every event into this new directory (with indexes and snapshots)");
  demo_cmd
      ->add_option("--snapshot-every", demo.snapshot_every,
                   "With --journal: take a snapshot every N events (0: only at the end)")
      ->capture_default_str()
      ->check(kNotNegative);

  namespace qa = qx::app;
  qa::VerifyOptions verify;
  CLI::App* verify_cmd = app.add_subcommand(
      "verify",
      "Check every record of a journal: length, CRC32C, sequence, chain hash, versions, "
      "payload; exit 0 only when all is sound");
  verify_cmd->add_option("DIR", verify.dir, "Journal directory")->required();
  verify_cmd->add_flag("--json", verify.json, "Print one JSON object");

  qa::ReplayCmdOptions replay;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "Replay a journal through the engine; print last_seq, state_hash, effects_hash");
  replay_cmd->add_option("DIR", replay.dir, "Journal directory")->required();
  replay_cmd->add_option("--until-seq", replay.until_seq, "Stop after this sequence number")
      ->check(kNotNegative);
  replay_cmd->add_option("--until-time", replay.until_time,
                         "Stop before the first event after this time (ns or ISO 8601 UTC)");
  replay_cmd->add_flag("--from-snapshot", replay.from_snapshot,
                       "Start from the newest valid snapshot, then replay the tail");
  replay_cmd->add_flag("--json", replay.json, "Print one JSON object");

  CLI::App* audit_cmd = app.add_subcommand("audit", "Account statements, event lists and books");
  std::string audit_dir;
  audit_cmd->add_option("DIR", audit_dir, "Journal directory")->required();
  audit_cmd->require_subcommand(1);
  qa::StatementOptions statement;
  CLI::App* statement_cmd = audit_cmd->add_subcommand(
      "statement", "QIFI account, positions, orders and trades of an account");
  statement_cmd->add_option("ACCOUNT", statement.account, "Account name or #id")->required();
  statement_cmd->add_option("--at-seq", statement.at_seq, "State after this sequence number")
      ->check(kNotNegative);
  statement_cmd->add_flag("--json", statement.json, "Compact JSON on one line");
  qa::EventsOptions events;
  CLI::App* events_cmd = audit_cmd->add_subcommand(
      "events", "Every journaled event touching an account / instrument / time range (indexes)");
  events_cmd->add_option("--account", events.account, "Account name or #id");
  events_cmd->add_option("--instrument", events.instrument, "Instrument code or #id");
  events_cmd->add_option("--from", events.from, "From this time (ns or ISO 8601 UTC)");
  events_cmd->add_option("--to", events.to, "Up to this time (ns or ISO 8601 UTC)");
  events_cmd->add_option("--format", events.format, "json or csv")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "csv"}));
  qa::BookOptions book;
  CLI::App* book_cmd = audit_cmd->add_subcommand("book", "The order book of an instrument");
  book_cmd->add_option("INSTRUMENT", book.instrument, "Instrument code or #id")->required();
  book_cmd->add_option("--at-seq", book.at_seq, "Book after this sequence number")
      ->check(kNotNegative);
  book_cmd->add_option("--depth", book.depth, "Price levels per side")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}));
  book_cmd->add_flag("--json", book.json, "Print one JSON object");

  qa::StoreCmdOptions snapshot;
  CLI::App* snapshot_cmd = app.add_subcommand(
      "snapshot", "Replay to the end and store a snapshot in the journal's LMDB");
  snapshot_cmd->add_option("DIR", snapshot.dir, "Journal directory")->required();
  snapshot_cmd->add_flag("--json", snapshot.json, "Print one JSON object");
  snapshot_cmd->add_flag("--list", snapshot.list,
                         "List the stored snapshots' sequence numbers instead of storing one");
  qa::StoreCmdOptions index;
  CLI::App* index_cmd =
      app.add_subcommand("index", "Rebuild the account/instrument/order/time indexes from scratch");
  index_cmd->add_option("DIR", index.dir, "Journal directory")->required();
  index_cmd->add_flag("--json", index.json, "Print one JSON object");

  qa::StoreCmdOptions recover;
  CLI::App* recover_cmd = app.add_subcommand(
      "recover",
      "Open a journal as a restarting server does: cut a torn tail, restore from the "
      "newest valid snapshot, replay the tail, print the hashes");
  recover_cmd->add_option("DIR", recover.dir, "Journal directory")->required();
  recover_cmd->add_flag("--json", recover.json, "Print one JSON object");

  CLI::App* sim_cmd =
      app.add_subcommand("sim", "Market-data simulation: historical data through the engine");
  sim_cmd->require_subcommand(1);
  qa::SimLobsterOptions lobster;
  CLI::App* lobster_cmd = sim_cmd->add_subcommand(
      "lobster",
      "Rebuild a LOBSTER order book through the engine and compare its top N levels with the "
      "orderbook file after every message; exit non-zero on any difference");
  lobster_cmd
      ->add_option("--messages", lobster.messages, "LOBSTER message file (..._message_N.csv)")
      ->required()
      ->check(CLI::ExistingFile);
  lobster_cmd
      ->add_option("--orderbook", lobster.orderbook,
                   "LOBSTER orderbook file (..._orderbook_N.csv), the reference book")
      ->required()
      ->check(CLI::ExistingFile);
  lobster_cmd
      ->add_option("--levels", lobster.levels,
                   "Levels N of the orderbook file (default: from its column count)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000}));
  lobster_cmd->add_option("--date", lobster.date,
                          "Trading date YYYY-MM-DD, New York time (default: from the file name)");
  lobster_cmd->add_option("--ticker", lobster.ticker,
                          "Instrument code (default: from the file name)");
  lobster_cmd->add_option("--tick", lobster.tick_units, "Price tick in LOBSTER units of 1e-4 USD")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
  lobster_cmd
      ->add_option("--timing-runs", lobster.timing_runs,
                   "Timed rebuilds after the check (engine apply only; the median is printed)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint32_t{0}, std::uint32_t{100}));
  lobster_cmd->add_flag("--json", lobster.json, "Print one JSON object");

  qa::SimBinanceOptions binance;
  CLI::App* binance_cmd = sim_cmd->add_subcommand(
      "binance",
      "Read Binance trades and best bid/offer files merged in arrival order, checking every row; "
      "exit non-zero on a bad row or a gap in trade ids");
  binance_cmd->add_option("--trades", binance.trades, "trades.csv (plain or gzip)")
      ->check(CLI::ExistingFile);
  binance_cmd->add_option("--bbo", binance.bbo, "bbo.csv or bbo.csv.gz (bookTicker)")
      ->check(CLI::ExistingFile);
  binance_cmd
      ->add_option("--price-decimals", binance.price_decimals,
                   "Decimals of the price tick (BTCUSDT: 1, tick 0.1)")
      ->capture_default_str()
      ->check(CLI::Range(0, 18));
  binance_cmd
      ->add_option("--qty-decimals", binance.qty_decimals,
                   "Decimals of the quantity step (BTCUSDT: 3, step 0.001)")
      ->capture_default_str()
      ->check(CLI::Range(0, 18));
  binance_cmd->add_flag("--json", binance.json, "Print one JSON object");
  qx::server::ServeOptions serve;
  CLI::App* serve_cmd =
      app.add_subcommand("serve",
                         "Run the exchange: REST and WebSocket on HTTP, binary TCP, one sequencer "
                         "thread, journal with group commit; "
                         "recovers from snapshot + journal on start, snapshots on SIGTERM/SIGINT");
  serve_cmd->add_option("--config", serve.config_file, "JSON config file (see README)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--data-dir", serve.data_dir,
                        "Data directory: journal/, users.json (default ./qx-data)");
  serve_cmd->add_option("--http", serve.http,
                        "Listen on ADDR:PORT (default 127.0.0.1:8080; port 0 picks a free one)");
  serve_cmd->add_option("--tcp", serve.tcp,
                        "Binary TCP (Cap'n Proto) on ADDR:PORT (default 127.0.0.1:9090; port 0 "
                        "picks a free one; 'off' disables it)");
  serve_cmd
      ->add_option("--tls-cert", serve.tls_cert,
                   "PEM certificate chain; with --tls-key the listener speaks only TLS")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--tls-key", serve.tls_key, "PEM private key")->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--tls-client-ca", serve.tls_client_ca,
                   "PEM CA bundle; with --tls-cert/--tls-key, clients must present a certificate "
                   "signed by one of these CAs (mutual TLS)")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--tls-crl", serve.tls_crl,
                   "PEM CRL(s) of the client CAs; a revoked client certificate fails the "
                   "handshake (needs --tls-client-ca; re-read on SIGHUP)")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--tls-min-version", serve.tls_min_version,
                   "Oldest TLS version accepted: 1.2 (default) or 1.3")
      ->check(CLI::IsMember({"1.2", "1.3"}));
  serve_cmd
      ->add_option("--cluster", serve.cluster_file,
                   "Run as one node of a replicated exchange: the cluster file (JSON: this node's "
                   "id, every node's addresses, etcd endpoints, ack policy; docs/cluster.md)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_flag("--demo", serve.demo,
                      "On an empty journal, create demo instruments, users and funded accounts; "
                      "a random JWT secret is allowed");

  qx::app::ClientOptions client;
  CLI::App* client_cmd = app.add_subcommand(
      "client",
      "Talk to a server's binary TCP protocol: one ClientMessage per stdin line in Cap'n Proto "
      "JSON, every ServerMessage printed as a JSON line");
  client_cmd->add_option("--tcp", client.tcp, "Server address HOST:PORT (default 127.0.0.1:9090)");
  client_cmd
      ->add_option("--linger-ms", client.linger_ms,
                   "After stdin ends, keep printing server messages this long (default 1000)")
      ->check(CLI::Range(0, 3'600'000));
  client_cmd->add_flag("--tls", client.tls, "Speak TLS (server certificate checked)");
  client_cmd->add_flag(
      "!--no-follow", client.follow_leader,
      "Do not follow a cluster follower's notLeader answer to the leader (default: follow)");
  client_cmd->add_option("--tls-ca", client.tls_ca, "PEM CA bundle for the server's certificate")
      ->check(CLI::ExistingFile);
  client_cmd->add_option("--tls-cert", client.tls_cert, "PEM client certificate (mutual TLS)")
      ->check(CLI::ExistingFile);
  client_cmd->add_option("--tls-key", client.tls_key, "PEM client key (mutual TLS)")
      ->check(CLI::ExistingFile);

  qx::app::ClusterStatusOptions cluster_status;
  CLI::App* cluster_cmd =
      app.add_subcommand("cluster", "A replicated exchange's nodes (docs/cluster.md)");
  cluster_cmd->require_subcommand(1);
  CLI::App* cluster_status_cmd = cluster_cmd->add_subcommand(
      "status",
      "Every node's role, epoch, durable seq and replication lag, from each node's "
      "GET /api/cluster/status; exits 0 only when one node leads and all follow it");
  cluster_status_cmd
      ->add_option("--cluster", cluster_status.cluster_file,
                   "A cluster file (any node's): the nodes' http addresses")
      ->required()
      ->check(CLI::ExistingFile);
  cluster_status_cmd
      ->add_option("--timeout-ms", cluster_status.timeout_ms, "How long each node may take")
      ->capture_default_str()
      ->check(CLI::Range(1, 60'000));
  cluster_status_cmd->add_flag("--json", cluster_status.json, "Print one JSON object");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "qx: " << e.what() << " (see qx --help)\n";
    return 2;
  }

  try {
    if (serve_cmd->parsed()) return qx::server::run_serve(serve, std::cout);
    if (client_cmd->parsed()) return qx::app::run_client(client, std::cout);
    if (cluster_status_cmd->parsed()) {
      return qx::app::run_cluster_status(cluster_status, std::cout);
    }
    if (demo_cmd->parsed()) return qa::run_demo(demo, std::cout);
    if (verify_cmd->parsed()) return qa::run_verify(verify, std::cout);
    if (replay_cmd->parsed()) return qa::run_replay(replay, std::cout);
    if (snapshot_cmd->parsed()) return qa::run_snapshot(snapshot, std::cout);
    if (index_cmd->parsed()) return qa::run_index(index, std::cout);
    if (recover_cmd->parsed()) return qa::run_recover(recover, std::cout);
    if (lobster_cmd->parsed()) return qa::run_sim_lobster(lobster, std::cout, std::cerr);
    if (binance_cmd->parsed()) {
      if (binance.trades.empty() && binance.bbo.empty()) {
        std::cerr << "qx: sim binance needs --trades, --bbo or both (see qx sim binance --help)\n";
        return 2;
      }
      return qa::run_sim_binance(binance, std::cout, std::cerr);
    }
    statement.dir = events.dir = book.dir = audit_dir;
    if (statement_cmd->parsed()) return qa::run_statement(statement, std::cout);
    if (events_cmd->parsed()) return qa::run_events(events, std::cout);
    if (book_cmd->parsed()) return qa::run_book(book, std::cout);
  } catch (const std::exception& e) {
    std::cerr << "qx: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
