#include "app/cluster_cmd.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <vector>

#include "cluster/config.h"

namespace qx::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using nlohmann::json;

// GET http://ADDRESS/api/cluster/status within `timeout`: the parsed JSON, or why not.
struct Answer {
  json body;
  std::string error;  // empty when body holds the node's status
};

Answer fetch_status(const std::string& address, std::chrono::milliseconds timeout) {
  const auto [host, port] = cluster::split_address(address);

  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, "/api/cluster/status", 11};
  req.set(http::field::host, address);
  req.set(http::field::connection, "close");
  http::response_parser<http::string_body> parser;
  parser.body_limit(1u << 20);
  Answer a;
  stream.expires_after(timeout);
  resolver.async_resolve(host, port, [&](beast::error_code ec, tcp::resolver::results_type r) {
    if (ec) {
      a.error = "cannot resolve: " + ec.message();
      return;
    }
    stream.async_connect(r, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) {
        a.error = ec2.message();
        return;
      }
      http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) {
          a.error = ec3.message();
          return;
        }
        http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) {
          if (ec4) a.error = ec4.message();
        });
      });
    });
  });
  io.run_for(timeout + std::chrono::milliseconds(100));
  if (!io.stopped()) a.error = "no answer within " + std::to_string(timeout.count()) + " ms";
  if (!a.error.empty()) return a;
  const auto& res = parser.get();
  a.body = json::parse(res.body(), nullptr, false);
  if (res.result_int() != 200) {
    a.error = "HTTP " + std::to_string(res.result_int());
    if (a.body.is_object() && a.body.contains("message") && a.body["message"].is_string()) {
      a.error += ": " + a.body["message"].get<std::string>();
    }
  } else if (!a.body.is_object() || !a.body.contains("role") || !a.body["role"].is_string()) {
    a.error = "not a cluster status";
  }
  return a;
}

std::string text(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << v.get<double>();
    return o.str();
  }
  return v.dump();
}

}  // namespace

int run_cluster_status(const ClusterStatusOptions& options, std::ostream& out) {
  // Only the addresses are needed: the TLS files (a node's key) need not be readable here.
  const cluster::ClusterConfig config =
      cluster::load_cluster_config(options.cluster_file, cluster::TlsFiles::kNotOpened);
  const std::chrono::milliseconds timeout(options.timeout_ms);

  std::vector<Answer> answers;
  for (const auto& n : config.nodes) answers.push_back(fetch_status(n.http, timeout));

  // The leader's view of its followers, by node id.
  std::set<std::uint64_t> leaders, epochs;
  json leader_peers = json::object();
  for (const Answer& a : answers) {
    if (!a.error.empty()) continue;
    epochs.insert(a.body.value("epoch", std::uint64_t{0}));
    if (a.body["role"] == "leader") {
      leaders.insert(a.body["node"].value("node", std::uint64_t{0}));
      if (a.body.contains("peers") && a.body["peers"].is_array()) {
        for (const json& p : a.body["peers"]) {
          if (p.is_object() && p.contains("node") && p["node"].is_object()) {
            leader_peers[std::to_string(p["node"].value("node", 0))] = p;
          }
        }
      }
    }
  }
  const bool reachable =
      std::all_of(answers.begin(), answers.end(), [](const Answer& a) { return a.error.empty(); });
  const bool healthy = leaders.size() == 1 && epochs.size() == 1 && reachable;

  if (options.json) {
    json nodes = json::array();
    for (std::size_t i = 0; i < answers.size(); ++i) {
      json n{{"node", config.nodes[i].id}, {"http", config.nodes[i].http}};
      if (answers[i].error.empty()) {
        n["status"] = answers[i].body;
      } else {
        n["error"] = answers[i].error;
      }
      nodes.push_back(std::move(n));
    }
    out << json{{"cluster", config.name}, {"healthy", healthy}, {"nodes", nodes}}.dump() << '\n';
    return healthy ? 0 : 1;
  }

  out << "cluster " << config.name << ": ";
  if (leaders.size() == 1) {
    out << "leader node " << *leaders.begin() << ", epoch " << *epochs.rbegin();
  } else if (leaders.empty()) {
    out << "no leader";
  } else {
    out << leaders.size() << " nodes say they lead";
  }
  out << (healthy ? "" : " (degraded)") << '\n';
  out << std::left << std::setw(6) << "node" << std::setw(9) << "voter" << std::setw(11) << "role"
      << std::setw(22) << "http" << std::setw(10) << "epoch" << std::setw(12) << "durable"
      << std::setw(11) << "lag_events" << std::setw(9) << "lag_ms"
      << "state\n";
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& n = config.nodes[i];
    const Answer& a = answers[i];
    const json peer = leader_peers.value(std::to_string(n.id), json());
    std::string state = a.error.empty() ? "ok" : "unreachable: " + a.error;
    if (a.error.empty() && a.body["role"] != "leader") {
      state =
          a.body.value("connected_to_leader", false) ? "following" : "not connected to a leader";
    }
    out << std::left << std::setw(6) << n.id << std::setw(9)
        << (n.role == cluster::Role::kLearner ? "learner" : "voter") << std::setw(11)
        << (a.error.empty() ? text(a.body, "role") : "-") << std::setw(22) << n.http
        << std::setw(10) << (a.error.empty() ? text(a.body, "epoch") : "-") << std::setw(12)
        << (a.error.empty() ? text(a.body, "durable") : "-") << std::setw(11)
        << text(peer, "lag_events") << std::setw(9) << text(peer, "lag_ms") << state << '\n';
  }
  return healthy ? 0 : 1;
}

}  // namespace qx::app
