#include "cluster/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace qx::cluster {
namespace {

// A JSON object as (key, JSON text of the value) pairs, in order, so that a test can replace,
// drop or add one key of an otherwise valid file and write the value exactly as a user would.
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string render(const Fields& fields) {
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    out += (out.size() > 1 ? ", \"" : "\"") + key + "\": " + value;
  }
  return out + "}";
}

// `fields` with `key` set to `value` (appended when absent), or removed when `value` is empty.
Fields with(Fields fields, const std::string& key, const std::optional<std::string>& value) {
  auto it =
      std::find_if(fields.begin(), fields.end(), [&key](const auto& f) { return f.first == key; });
  if (!value) {
    if (it != fields.end()) fields.erase(it);
  } else if (it != fields.end()) {
    it->second = *value;
  } else {
    fields.emplace_back(key, *value);
  }
  return fields;
}

Fields node_fields(int id, const std::string& role = "") {
  const std::string n = std::to_string(id);
  Fields f = {{"id", n},
              {"replication", "\"10.0.0." + n + ":7101\""},
              {"http", "\"10.0.0." + n + ":8101\""},
              {"tcp", "\"10.0.0." + n + ":9101\""}};
  if (!role.empty()) f.emplace(f.begin() + 1, "role", "\"" + role + "\"");
  return f;
}

std::string node_array(const std::vector<Fields>& nodes) {
  std::string out = "[";
  for (const Fields& n : nodes) out += (out.size() > 1 ? ", " : "") + render(n);
  return out + "]";
}

const std::vector<Fields> kThreeNodes = {node_fields(1), node_fields(2), node_fields(3)};

const Fields kMinimal = {{"name", "\"demo\""},
                         {"node", "1"},
                         {"nodes", node_array(kThreeNodes)},
                         {"etcd", R"(["127.0.0.1:2379"])"}};

// The minimal file with node `index` of kThreeNodes changed by `key` = `value`.
std::string with_node(std::size_t index, const std::string& key,
                      const std::optional<std::string>& value) {
  std::vector<Fields> nodes = kThreeNodes;
  nodes[index] = with(nodes[index], key, value);
  return render(with(kMinimal, "nodes", node_array(nodes)));
}

std::string with_top(const std::string& key, const std::optional<std::string>& value) {
  return render(with(kMinimal, key, value));
}

// The message parse_cluster_config throws for `text`, or "(accepted)".
std::string refusal(const std::string& text) {
  try {
    static_cast<void>(parse_cluster_config(text, "c.json"));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ClusterConfig, FullFileRoundTripsEveryField) {
  // Nodes out of id order, a learner, IPv6, host names, "tcp": "off", every optional key set to
  // something other than its default.
  const std::string text = R"({
    "name": "prod-A_1", "node": 7,
    "nodes": [
      {"id": 7, "role": "learner", "replication": "[fd00::7]:7101", "http": "[fd00::7]:8101",
       "tcp": "off"},
      {"id": 2, "role": "voter", "replication": "10.0.0.2:7102", "http": "qx-2.example:443",
       "tcp": "qx-2.example:9102", "tls_name": "node-2.qx.example"},
      {"id": 1024, "replication": "10.0.0.9:1", "http": "10.0.0.9:65535", "tcp": "10.0.0.9:9000"}
    ],
    "etcd": ["10.1.0.1:2379", "[::1]:2379"],
    "ack": "local", "heartbeat_ms": 25, "election_after_heartbeats": 7, "lease_s": 60,
    "state_hash_every": 1000000000, "catch_up_events_max": 1000000000000})";
  const ClusterConfig c = parse_cluster_config(text, "c.json");
  EXPECT_EQ(c.name, "prod-A_1");
  EXPECT_EQ(c.node, 7u);
  ASSERT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.nodes[0].id, 2u);  // sorted by id
  EXPECT_EQ(c.nodes[0].role, Role::kVoter);
  EXPECT_EQ(c.nodes[0].replication, "10.0.0.2:7102");
  EXPECT_EQ(c.nodes[0].http, "qx-2.example:443");
  EXPECT_EQ(c.nodes[0].tcp, "qx-2.example:9102");
  EXPECT_EQ(c.nodes[0].tls_name, "node-2.qx.example");
  EXPECT_EQ(c.nodes[1].tls_name, "");  // absent: the replication IP
  EXPECT_EQ(c.nodes[1].id, 7u);
  EXPECT_EQ(c.nodes[1].role, Role::kLearner);
  EXPECT_EQ(c.nodes[1].replication, "[fd00::7]:7101");
  EXPECT_EQ(c.nodes[1].http, "[fd00::7]:8101");
  EXPECT_EQ(c.nodes[1].tcp, "off");
  EXPECT_EQ(c.nodes[2].id, 1024u);
  EXPECT_EQ(c.nodes[2].role, Role::kVoter);  // the default
  EXPECT_EQ(c.nodes[2].replication, "10.0.0.9:1");
  EXPECT_EQ(c.nodes[2].http, "10.0.0.9:65535");
  EXPECT_EQ(c.nodes[2].tcp, "10.0.0.9:9000");
  EXPECT_EQ(c.etcd, (std::vector<std::string>{"10.1.0.1:2379", "[::1]:2379"}));
  EXPECT_EQ(c.ack, Ack::kLocal);
  EXPECT_EQ(c.heartbeat_ms, 25u);
  EXPECT_EQ(c.election_after_heartbeats, 7u);
  EXPECT_EQ(c.lease_s, 60u);
  EXPECT_EQ(c.state_hash_every, 1'000'000'000u);
  EXPECT_EQ(c.catch_up_events_max, 1'000'000'000'000u);
  // A learner may be this node.
  EXPECT_EQ(&c.self(), &c.nodes[1]);
  EXPECT_EQ(c.voters(), 2u);
  EXPECT_EQ(c.quorum(), 2u);
}

TEST(ClusterConfig, DefaultsApplyToAbsentKeys) {
  const ClusterConfig c = parse_cluster_config(render(kMinimal), "c.json");
  EXPECT_EQ(c.ack, Ack::kQuorum);
  EXPECT_EQ(c.heartbeat_ms, 100u);
  EXPECT_EQ(c.election_after_heartbeats, 3u);
  EXPECT_EQ(c.lease_s, 2u);
  EXPECT_EQ(c.state_hash_every, 1000u);
  EXPECT_EQ(c.catch_up_events_max, 1'000'000u);
  ASSERT_EQ(c.nodes.size(), 3u);
  for (const NodeAddress& n : c.nodes) EXPECT_EQ(n.role, Role::kVoter);
  EXPECT_EQ(c.self().id, 1u);
  EXPECT_EQ(c.self().replication, "10.0.0.1:7101");
}

TEST(ClusterConfig, QuorumIsAMajorityOfVotersAndLearnersDoNotCount) {
  struct Case {
    int voters;
    int learners;
    std::size_t quorum;
  };
  const Case cases[] = {{1, 0, 1}, {1, 2, 1}, {3, 0, 2}, {3, 4, 2},
                        {4, 0, 3}, {4, 1, 3}, {5, 0, 3}, {5, 5, 3}};
  for (const Case& k : cases) {
    SCOPED_TRACE(std::to_string(k.voters) + " voters, " + std::to_string(k.learners) + " learners");
    // Learners first in id order, so that counting by position would go wrong; this node is
    // the last voter.
    std::vector<Fields> nodes;
    for (int i = 1; i <= k.learners; ++i) nodes.push_back(node_fields(i, "learner"));
    for (int i = 1; i <= k.voters; ++i) nodes.push_back(node_fields(k.learners + i, "voter"));
    Fields f = with(kMinimal, "nodes", node_array(nodes));
    f = with(f, "node", std::to_string(k.learners + k.voters));
    const ClusterConfig c = parse_cluster_config(render(f), "c.json");
    EXPECT_EQ(c.voters(), static_cast<std::size_t>(k.voters));
    EXPECT_EQ(c.quorum(), k.quorum);
    EXPECT_EQ(c.self().id, static_cast<NodeId>(k.learners + k.voters));
    EXPECT_EQ(c.self().role, Role::kVoter);
  }
}

TEST(ClusterConfig, AcceptsTheEdgesOfEveryRange) {
  const std::pair<std::string, std::string> edges[] = {{"heartbeat_ms", "10"},
                                                       {"heartbeat_ms", "10000"},
                                                       {"election_after_heartbeats", "2"},
                                                       {"election_after_heartbeats", "100"},
                                                       {"lease_s", "1"},
                                                       {"lease_s", "60"},
                                                       {"state_hash_every", "1"},
                                                       {"catch_up_events_max", "1"},
                                                       {"name", "\"" + std::string(64, 'x') + "\""},
                                                       {"ack", "\"quorum\""}};
  for (const auto& [key, value] : edges) {
    SCOPED_TRACE(key + " = " + value);
    EXPECT_EQ(refusal(with_top(key, value)), "(accepted)");
  }
  EXPECT_EQ(refusal(with_node(1, "replication", "\"[::ffff:10.0.0.1%eth0]:7101\"")), "(accepted)");
  // 1024 nodes, the most allowed.
  std::vector<Fields> many;
  for (int i = 1; i <= 1024; ++i) {
    many.push_back({{"id", std::to_string(i)},
                    {"replication",
                     "\"10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":1\""},
                    {"http", "\"h" + std::to_string(i) + ":2\""},
                    {"tcp", "\"off\""}});
  }
  const ClusterConfig c =
      parse_cluster_config(render(with(kMinimal, "nodes", node_array(many))), "c.json");
  EXPECT_EQ(c.nodes.size(), 1024u);
  EXPECT_EQ(c.quorum(), 513u);
}

struct Refused {
  std::string text;
  std::string message;  // a substring of what parse_cluster_config throws
};

void expect_refused(const std::vector<Refused>& cases) {
  for (const Refused& r : cases) {
    SCOPED_TRACE(r.text);
    const std::string got = refusal(r.text);
    EXPECT_NE(got.find(r.message), std::string::npos) << "message: " << got;
    EXPECT_EQ(got.rfind("c.json: ", 0), 0u) << "message: " << got;
    EXPECT_EQ(got.find('\n'), std::string::npos) << "message: " << got;
  }
}

TEST(ClusterConfig, RefusesWhatIsNotAJsonObject) {
  const std::string minimal = render(kMinimal);
  expect_refused({
      {"[1, 2]", "a cluster file is a JSON object, not an array"},
      {"\"demo\"", "a cluster file is a JSON object, not a string"},
      {"", "not readable as JSON"},
      {minimal.substr(0, minimal.size() / 2), "not readable as JSON: parse error at line 1"},
      {minimal + " {}", "not readable as JSON"},
      {with_top("lease_s", "1e400"), "not readable as JSON: number overflow"},
      {R"({"name": "demo", "name": "demo2", "node": 1})", "key \"name\" is written twice"},
      {with_node(1, "id", "2, \"id\": 5"), "nodes[1]: key \"id\" is written twice"},
  });
}

TEST(ClusterConfig, RefusesUnknownAndMissingKeys) {
  expect_refused({
      {with_top("acks", "\"quorum\""), "unknown key \"acks\""},
      {with_top("nodes ", "[]"), "unknown key \"nodes \""},
      {with_node(2, "zone", "\"a\""), "nodes[2]: unknown key \"zone\""},
      {with_node(0, "extra", R"({"nested": {"deeper": 1}})"), "nodes[0]: unknown key \"extra\""},
      {with_top("name", std::nullopt), "missing key \"name\""},
      {with_top("node", std::nullopt), "missing key \"node\""},
      {with_top("nodes", std::nullopt), "missing key \"nodes\""},
      {with_top("etcd", std::nullopt), "missing key \"etcd\""},
      {with_node(1, "id", std::nullopt), "nodes[1]: missing key \"id\""},
      {with_node(1, "replication", std::nullopt), "nodes[1]: missing key \"replication\""},
      {with_node(1, "http", std::nullopt), "nodes[1]: missing key \"http\""},
      {with_node(2, "tcp", std::nullopt), "nodes[2]: missing key \"tcp\""},
  });
}

TEST(ClusterConfig, RefusesNumbersOfTheWrongTypeOrOutOfRange) {
  expect_refused({
      {with_top("heartbeat_ms", "\"100\""),
       "heartbeat_ms: must be a whole number from 10 to 10000"},
      {with_top("heartbeat_ms", "100.0"), "heartbeat_ms: must be a whole number"},
      {with_top("heartbeat_ms", "1e2"), "heartbeat_ms: must be a whole number"},
      {with_top("heartbeat_ms", "true"), "heartbeat_ms: must be a whole number"},
      {with_top("heartbeat_ms", "null"), "heartbeat_ms: must be a whole number"},
      {with_top("heartbeat_ms", "-100"), "heartbeat_ms: must be a whole number"},
      {with_top("heartbeat_ms", "9"),
       "heartbeat_ms: must be a whole number from 10 to 10000, not 9"},
      {with_top("heartbeat_ms", "10001"), "heartbeat_ms: must be a whole number"},
      {with_top("election_after_heartbeats", "1"), "election_after_heartbeats: must be"},
      {with_top("election_after_heartbeats", "101"), "election_after_heartbeats: must be"},
      {with_top("lease_s", "0"), "lease_s: must be a whole number from 1 to 60"},
      {with_top("lease_s", "61"), "lease_s: must be"},
      {with_top("state_hash_every", "0"), "state_hash_every: must be"},
      {with_top("state_hash_every", "1000000001"), "state_hash_every: must be"},
      {with_top("catch_up_events_max", "0"), "catch_up_events_max: must be"},
      {with_top("catch_up_events_max", "1000000000001"), "catch_up_events_max: must be"},
      // Beyond 64 bits: read as a float, refused as one.
      {with_top("state_hash_every", "123456789012345678901234567890"), "state_hash_every: must be"},
      {with_top("catch_up_events_max", "18446744073709551615"), "catch_up_events_max: must be"},
      {with_top("node", "0"), "node: must be a whole number from 1 to 1024"},
      {with_top("node", "\"1\""), "node: must be a whole number"},
      {with_node(1, "id", "0"), "nodes[1].id: must be a whole number from 1 to 1024, not 0"},
      {with_node(1, "id", "1025"), "nodes[1].id: must be a whole number"},
      {with_node(1, "id", "2.5"), "nodes[1].id: must be a whole number"},
  });
}

TEST(ClusterConfig, RefusesBadStringsAndEnums) {
  expect_refused({
      {with_top("ack", "\"all\""), "ack: must be \"quorum\" or \"local\", not \"all\""},
      {with_top("ack", "1"), "ack: must be a string"},
      {with_node(0, "role", "\"witness\""), "nodes[0].role: must be \"voter\" or \"learner\""},
      {with_node(0, "role", "null"), "nodes[0].role: must be a string"},
      {with_node(0, "tls_name", "\"\""), "nodes[0].tls_name: must be a DNS name"},
      {with_node(0, "tls_name", "\".qx\""), "nodes[0].tls_name: must be a DNS name"},
      {with_node(0, "tls_name", "\"a..b\""), "nodes[0].tls_name: must be a DNS name"},
      {with_node(0, "tls_name", "\"a b\""), "nodes[0].tls_name: must be a DNS name"},
      {with_node(0, "tls_name", "\"" + std::string(254, 'a') + "\""),
       "nodes[0].tls_name: must be a DNS name"},
      {with_node(0, "tls_name", "7"), "nodes[0].tls_name: must be a string"},
      {with_top("name", "\"\""), "name: must be 1 to 64 bytes"},
      {with_top("name", "\"" + std::string(65, 'x') + "\""), "name: must be 1 to 64 bytes"},
      {with_top("name", "\"a/b\""), "name: must be 1 to 64 bytes"},
      {with_top("name", "\"a.b\""), "name: must be 1 to 64 bytes"},
      {with_top("name", "\"a\\nb\""),
       "name: must be 1 to 64 bytes of letters, digits, '-' and '_', not \"a\\nb\""},
      {with_top("name", "7"), "name: must be a string"},
  });
}

TEST(ClusterConfig, RefusesMalformedAddresses) {
  expect_refused({
      {with_node(1, "replication", "\"10.0.0.2\""),
       "nodes[1].replication: \"10.0.0.2\" is not HOST:PORT"},
      {with_node(1, "replication", "\"10.0.0.2:0\""),
       "nodes[1].replication: \"10.0.0.2:0\": port 0 is not allowed"},
      {with_node(1, "replication", "\"10.0.0.2:65536\""),
       "nodes[1].replication: \"10.0.0.2:65536\": the port must be from 1 to 65535"},
      {with_node(1, "replication", "\"10.0.0.2:\""),
       "nodes[1].replication: \"10.0.0.2:\": the port must be"},
      {with_node(1, "replication", "\"10.0.0.2:+80\""),
       "nodes[1].replication: \"10.0.0.2:+80\": the port must be"},
      {with_node(1, "replication", "\"10.0.0.2:http\""),
       "nodes[1].replication: \"10.0.0.2:http\": the port must be"},
      {with_node(1, "replication", "7101"), "nodes[1].replication: must be a string"},
      {with_node(1, "replication", "\"qx-2.example:7102\""),
       "nodes[1].replication: \"qx-2.example:7102\": the host must be an IP address"},
      {with_node(1, "replication", "\"[fe80::zz]:7102\""),
       "nodes[1].replication: \"[fe80::zz]:7102\": the host must be an IP address"},
      {with_node(1, "replication", "\"off\""), "nodes[1].replication: \"off\" is not HOST:PORT"},
      {with_node(1, "http", "\":8101\""), "nodes[1].http: \":8101\" has no host"},
      {with_node(1, "http", "\"::1:8101\""), "nodes[1].http: \"::1:8101\" is not HOST:PORT"},
      {with_node(1, "http", "\"[]:8101\""),
       "nodes[1].http: \"[]:8101\": the brackets must hold an IPv6"},
      {with_node(1, "http", "\"[10.0.0.2]:8101\""),
       "nodes[1].http: \"[10.0.0.2]:8101\": the brackets"},
      {with_node(1, "http", "\"[::1]8101\""), "nodes[1].http: \"[::1]8101\" is not HOST:PORT"},
      {with_node(1, "http", "\"http://h:8101\""),
       "nodes[1].http: \"http://h:8101\" is not HOST:PORT"},
      {with_node(1, "http", "\"h h:8101\""), "nodes[1].http: \"h h:8101\": a host has only"},
      {with_node(1, "http", "\"" + std::string(254, 'h') + ":1\""),
       "nodes[1].http: the host is longer than 253"},
      {with_node(2, "tcp", "\"OFF\""), "nodes[2].tcp: \"OFF\" is neither HOST:PORT nor \"off\""},
      {with_node(2, "tcp", "false"), "nodes[2].tcp: must be a string"},
      {with_node(2, "tcp", "\"10.0.0.3:99999\""),
       "nodes[2].tcp: \"10.0.0.3:99999\": the port must be"},
      {with_top("etcd", R"(["127.0.0.1:0"])"), "etcd[0]: \"127.0.0.1:0\": port 0"},
      {with_top("etcd", R"(["127.0.0.1:2379", "h"])"), "etcd[1]: \"h\" is not HOST:PORT"},
      {with_top("etcd", R"(["127.0.0.1:2379", 2379])"), "etcd[1]: must be a string"},
  });
}

TEST(ClusterConfig, RefusesBadMembership) {
  std::vector<Fields> too_many;
  for (int i = 1; i <= 1025; ++i) {
    too_many.push_back({{"id", std::to_string(i % 1024 + 1)},
                        {"replication", "\"10.0." + std::to_string(i / 256) + "." +
                                            std::to_string(i % 256) + ":1\""},
                        {"http", "\"h" + std::to_string(i) + ":2\""},
                        {"tcp", "\"off\""}});
  }
  std::vector<Fields> no_voter = {node_fields(1, "learner"), node_fields(2, "learner")};
  std::vector<Fields> shared_replication = kThreeNodes;
  shared_replication[2] = with(shared_replication[2], "replication", "\"10.0.0.1:7101\"");
  std::vector<Fields> shared_http = kThreeNodes;
  shared_http[2] = with(shared_http[2], "http", "\"10.0.0.2:8101\"");
  std::vector<Fields> same_spelled_otherwise = kThreeNodes;
  same_spelled_otherwise[0] = with(same_spelled_otherwise[0], "http", "\"H:7101\"");
  same_spelled_otherwise[1] = with(same_spelled_otherwise[1], "tcp", "\"h:07101\"");
  std::vector<Fields> own_twice = kThreeNodes;
  own_twice[1] = with(own_twice[1], "tcp", "\"10.0.0.2:8101\"");
  expect_refused({
      {with_top("nodes", "[]"), "nodes: must be an array of 1 to 1024 node objects"},
      {with_top("nodes", "{}"), "nodes: must be an array"},
      {with_top("nodes", "[1]"), "nodes[0]: must be a node object, not 1"},
      {with_top("nodes", node_array(too_many)), "nodes: must be an array of 1 to 1024"},
      {with_node(2, "id", "1"), "nodes[2].id: 1 is also the id of nodes[0]"},
      {with_top("nodes", node_array(shared_replication)),
       "nodes[2].replication: \"10.0.0.1:7101\" is also nodes[0].replication"},
      {with_top("nodes", node_array(shared_http)),
       "nodes[2].http: \"10.0.0.2:8101\" is also nodes[1].http"},
      {with_top("nodes", node_array(same_spelled_otherwise)),
       "nodes[1].tcp: \"h:07101\" is also nodes[0].http"},
      {with_top("nodes", node_array(own_twice)),
       "nodes[1].tcp: \"10.0.0.2:8101\" is also nodes[1].http"},
      {with_top("node", "4"), "node: 4 is not the id of any node in nodes"},
      {render(with(with(kMinimal, "nodes", node_array(no_voter)), "node", "2")),
       "nodes: at least one node must have the role \"voter\""},
      {with_top("etcd", "[]"), "etcd: must be an array of 1 to 16 HOST:PORT strings"},
      {with_top("etcd", R"("127.0.0.1:2379")"), "etcd: must be an array"},
      {with_top("etcd", R"(["10.0.0.1:2379", "10.0.0.1:2379"])"),
       "etcd[1]: \"10.0.0.1:2379\" is listed twice"},
  });
}

TEST(ClusterConfig, RefusesAnOversizedText) {
  const std::string big =
      render(with(kMinimal, "name", "\"demo\"" + std::string(kFileBytesMax, ' ')));
  EXPECT_NE(refusal(big).find("c.json: longer than 4194304 bytes"), std::string::npos);
}

TEST(ClusterConfig, QuotesValuesShortAndOnOneLine) {
  const std::string got = refusal(with_top("ack", "\"" + std::string(1000, 'q') + "\\n\""));
  EXPECT_NE(got.find("ack: must be \"quorum\" or \"local\", not \"qqq"), std::string::npos) << got;
  EXPECT_LT(got.size(), 200u) << got;
}

class ClusterConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("qx_cluster_config_test." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ClusterConfigFile, LoadsAFileAndNamesItInErrors) {
  const std::string good = (dir_ / "good.json").string();
  std::ofstream(good) << render(kMinimal);
  EXPECT_EQ(load_cluster_config(good).nodes.size(), 3u);

  const std::string bad = (dir_ / "bad.json").string();
  std::ofstream(bad) << with_top("lease_s", "0");
  try {
    static_cast<void>(load_cluster_config(bad));
    ADD_FAILURE() << "accepted lease_s 0";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ": lease_s: must be"), std::string::npos)
        << e.what();
  }
}

// A file with a "tls" object naming files under dir_ (written here; their content is not
// checked by the parser).
class ClusterConfigTls : public ClusterConfigFile {
 protected:
  void SetUp() override {
    ClusterConfigFile::SetUp();
    for (const char* name : {"node.pem", "node.key", "ca.pem"}) {
      std::ofstream(dir_ / name) << "-----BEGIN X-----\n";
    }
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  static std::string quoted(const std::string& path) { return "\"" + path + "\""; }
  // The tls object with `key` set to the JSON text `value` (dropped when nullopt).
  std::string with_tls(const std::string& key, const std::optional<std::string>& value) const {
    const Fields tls = with({{"cert", quoted(file("node.pem"))},
                             {"key", quoted(file("node.key"))},
                             {"ca", quoted(file("ca.pem"))}},
                            key, value);
    return with_top("tls", render(tls));
  }
};

TEST_F(ClusterConfigTls, AbsentMeansPlainTcpAndPresentNamesAllThreeFiles) {
  EXPECT_FALSE(parse_cluster_config(render(kMinimal), "c.json").tls.has_value());
  const ClusterConfig c =
      parse_cluster_config(with_tls("cert", quoted(file("node.pem"))), "c.json");
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->cert, file("node.pem"));
  EXPECT_EQ(c.tls->key, file("node.key"));
  EXPECT_EQ(c.tls->ca, file("ca.pem"));
  // Paths are kept as written: a relative one is opened from the working directory.
  const ClusterConfig r =
      parse_cluster_config(with_tls("ca", "\"no/such/ca.pem\""), "c.json", TlsFiles::kNotOpened);
  EXPECT_EQ(r.tls->ca, "no/such/ca.pem");
}

TEST_F(ClusterConfigTls, RefusesBadShapesNamingTheKey) {
  const std::string ok_cert = quoted(file("node.pem"));
  expect_refused({
      {with_top("tls", "true"), "tls: must be an object with \"cert\", \"key\" and \"ca\""},
      {with_top("tls", "null"), "tls: must be an object"},
      {with_top("tls", "[]"), "tls: must be an object"},
      {with_top("tls", "\"on\""), "tls: must be an object"},
      {with_top("tls", "{}"), "tls: missing key \"cert\""},
      {with_tls("cert", std::nullopt), "tls: missing key \"cert\""},
      {with_tls("key", std::nullopt), "tls: missing key \"key\""},
      {with_tls("ca", std::nullopt), "tls: missing key \"ca\""},
      {with_tls("crl", ok_cert), "tls: unknown key \"crl\""},
      {with_tls("min_version", "\"1.3\""), "tls: unknown key \"min_version\""},
      {with_tls("cert", "7"), "tls.cert: must be a string, not 7"},
      {with_tls("key", "null"), "tls.key: must be a string"},
      {with_tls("ca", R"(["ca.pem"])"), "tls.ca: must be a string"},
      {with_tls("ca", "\"\""), "tls.ca: must name a file"},
      {with_tls("cert", ok_cert + ", \"cert\": " + ok_cert), "tls: key \"cert\" is written twice"},
  });
}

TEST_F(ClusterConfigTls, AMissingEmptyOrUnreadableFileIsAnErrorNamingTheKey) {
  std::ofstream(dir_ / "empty.pem").close();
  const std::string absent = file("absent.pem");
  const std::string long_name = file(std::string(100, 'n') + ".pem");  // shown whole
  expect_refused({
      {with_tls("cert", quoted(absent)),
       "tls.cert: cannot read " + quoted(absent) + ": No such file or directory"},
      {with_tls("cert", quoted(long_name)),
       "tls.cert: cannot read " + quoted(long_name) + ": No such file or directory"},
      {with_tls("key", quoted(file("empty.pem"))),
       "tls.key: " + quoted(file("empty.pem")) + " is empty"},
      {with_tls("ca", quoted(dir_.string())),
       "tls.ca: cannot read " + quoted(dir_.string()) + ": Is a directory"},
  });
  // A file that exists but cannot be opened (root opens everything: no check there).
  const std::string locked = file("locked.key");
  std::ofstream(locked) << "secret";
  std::filesystem::permissions(locked, std::filesystem::perms::none);
  if (::geteuid() != 0) {
    expect_refused({{with_tls("key", quoted(locked)),
                     "tls.key: cannot read " + quoted(locked) + ": Permission denied"}});
  }
  // Without the check (qx cluster status), none of the files is opened.
  EXPECT_EQ(parse_cluster_config(with_tls("cert", quoted(absent)), "c.json", TlsFiles::kNotOpened)
                .tls->cert,
            absent);
  // load_cluster_config passes the choice on.
  const std::string cluster_file = file("cluster.json");
  std::ofstream(cluster_file) << with_tls("cert", quoted(absent));
  try {
    static_cast<void>(load_cluster_config(cluster_file));
    ADD_FAILURE() << "accepted an absent certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(cluster_file + ": tls.cert: cannot read"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(load_cluster_config(cluster_file, TlsFiles::kNotOpened).tls->cert, absent);
}

TEST_F(ClusterConfigFile, AMissingOrUnreadableFileIsAnErrorNamingIt) {
  for (const std::string& file : {(dir_ / "absent.json").string(), dir_.string()}) {
    SCOPED_TRACE(file);
    try {
      static_cast<void>(load_cluster_config(file));
      ADD_FAILURE() << "accepted " << file;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot read cluster file " + file), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace qx::cluster
