// `qx client`: a line-oriented client of the binary TCP protocol (journals/schema/wire.capnp),
// for scripts, tests and operators.
//
//   printf '%s\n' '{"requestId": 1, "body": {"login": {"password":
//     {"username": "alice", "password": "alice-demo-pw"}}}}' | qx client --tcp 127.0.0.1:9090
//
// Each line on stdin is one ClientMessage in Cap'n Proto's JSON mapping (64-bit integers may be
// numbers or strings; enums by name, e.g. "direction": "buy"); it is encoded and framed as the
// protocol says. Every server message is printed on stdout as one JSON line, as it arrives. A
// line that does not decode is reported on stderr as {"clientError": ...} and skipped. After
// stdin ends the client keeps printing for --linger-ms, then closes; it exits 0 then, or 0 when
// the server closes the connection, 1 when it cannot connect. With --tls (or --tls-ca) it speaks
// TLS and checks the server's certificate against the host it dialled; --tls-cert/--tls-key
// present a client certificate (mutual TLS).
//
// A cluster's follower answers writes with notLeader naming the leader (docs/cluster.md): the
// client prints that answer, then connects to the leader's tcp address, sends the last login
// line again and then each refused request (a follower never journals a write, so nothing runs
// twice), noting {"clientNotice": "following the leader at ..."} on stderr. Requests the old
// node had not answered yet are reported on stderr, not repeated. After 3 refusals in a row it
// stops following; --no-follow turns following off.
#pragma once

#include <iosfwd>
#include <string>

namespace qx::app {

struct ClientOptions {
  std::string tcp = "127.0.0.1:9090";
  int linger_ms = 1000;
  bool tls = false;    // TLS with the system's CAs (or tls_ca)
  std::string tls_ca;  // PEM CA bundle that must have signed the server's certificate; implies TLS
  std::string tls_cert;  // client certificate and key, for servers that require mutual TLS
  std::string tls_key;
  bool follow_leader = true;
};

// Reads stdin, writes `out`; throws std::runtime_error when it cannot connect or the TLS
// handshake fails.
int run_client(const ClientOptions& options, std::ostream& out);

}  // namespace qx::app
