#include "cluster/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "core/assert.h"

namespace qx::cluster {

namespace {

using nlohmann::json;

constexpr std::size_t kShownBytesMax = 64;
constexpr std::size_t kShownPathBytesMax = 4096;  // PATH_MAX: a file name is shown whole

// `v` as JSON text, ASCII only, cut to `max` bytes: safe to put in a one-line message whatever
// the file holds (newlines, control bytes, megabytes).
std::string shown_json(const json& v, std::size_t max = kShownBytesMax) {
  std::string t = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (t.size() > max) t = t.substr(0, max) + "...";
  return t;
}

std::string shown(std::string_view s) {
  return shown_json(json(std::string(s)));
}

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::runtime_error(path + ": " + why);
}

std::string child(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

std::string element(const std::string& where, std::size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

// A JSON number without sign, fraction or exponent in [min, max]. nlohmann reads a whole number
// too large for 64 bits as a float, so "huge" fails here as a fraction does.
std::uint64_t whole(const json& v, const std::string& path, std::uint64_t min, std::uint64_t max) {
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    fail(path, "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", not " + shown_json(v));
  }
  return v.get<std::uint64_t>();
}

std::uint32_t whole32(const json& v, const std::string& path, std::uint32_t min,
                      std::uint32_t max) {
  return static_cast<std::uint32_t>(whole(v, path, min, max));
}

std::string text(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, "must be a string, not " + shown_json(v));
  return v.get<std::string>();
}

bool host_byte_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Inside brackets: hex digits, ':' and '.' (an embedded IPv4 address), and a zone after '%'.
bool ipv6_byte_ok(char c) {
  return host_byte_ok(c) || c == ':' || c == '%';
}

// Checks HOST:PORT (see config.h) and returns the spelling that duplicates are found by: the host
// in lower case, ':', the port without leading zeros.
std::string host_port(const std::string& t, const std::string& path) {
  const std::string form = shown(t) + " is not HOST:PORT (an IPv6 host in brackets, [::1]:7101)";
  std::string_view host;
  std::string_view port;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close == std::string::npos || close + 1 >= t.size() || t[close + 1] != ':') {
      fail(path, form);
    }
    host = std::string_view(t).substr(1, close - 1);
    port = std::string_view(t).substr(close + 2);
    const bool ok = host.find(':') != std::string_view::npos &&
                    std::all_of(host.begin(), host.end(), ipv6_byte_ok);
    if (!ok) fail(path, shown(t) + ": the brackets must hold an IPv6 address");
  } else {
    const auto colon = t.rfind(':');
    if (colon == std::string::npos) fail(path, form);
    host = std::string_view(t).substr(0, colon);
    port = std::string_view(t).substr(colon + 1);
    if (host.find(':') != std::string_view::npos) fail(path, form);
    if (!std::all_of(host.begin(), host.end(), host_byte_ok)) {
      fail(path, shown(t) + ": a host has only letters, digits, '.', '-' and '_'");
    }
  }
  if (host.empty()) fail(path, shown(t) + " has no host");
  if (host.size() > kHostBytesMax) {
    fail(path, "the host is longer than " + std::to_string(kHostBytesMax) + " bytes");
  }
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  const unsigned long number = digits ? std::stoul(std::string(port)) : 0;
  if (number == 0 && digits) {
    fail(path, shown(t) + ": port 0 is not allowed here; peers and clients must know the port");
  }
  if (!digits || number > 65535) fail(path, shown(t) + ": the port must be from 1 to 65535");
  std::string key(host);
  std::transform(key.begin(), key.end(), key.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return key + ":" + std::to_string(number);
}

// Every key of an object and how it is read: a key not in its table is an error.
template <typename Target>
struct Key {
  const char* name;
  bool required;
  void (*read)(const json& value, const std::string& path, Target& target);
};

template <typename Target, std::size_t N>
void read_object(const json& object, const std::string& where, const Key<Target> (&keys)[N],
                 Target& target) {
  for (const auto& item : object.items()) {
    const std::string& name = item.key();
    const auto* k = std::find_if(std::begin(keys), std::end(keys),
                                 [&name](const Key<Target>& x) { return name == x.name; });
    if (k == std::end(keys)) {
      throw std::runtime_error((where.empty() ? "" : where + ": ") + "unknown key " + shown(name));
    }
    k->read(item.value(), child(where, name), target);
  }
  for (const Key<Target>& k : keys) {
    if (k.required && !object.contains(k.name)) {
      throw std::runtime_error((where.empty() ? "" : where + ": ") + "missing key \"" + k.name +
                               "\"");
    }
  }
}

Role role(const json& v, const std::string& path) {
  const std::string s = text(v, path);
  if (s == "voter") return Role::kVoter;
  if (s == "learner") return Role::kLearner;
  fail(path, "must be \"voter\" or \"learner\", not " + shown(s));
}

Ack ack(const json& v, const std::string& path) {
  const std::string s = text(v, path);
  if (s == "quorum") return Ack::kQuorum;
  if (s == "local") return Ack::kLocal;
  fail(path, "must be \"quorum\" or \"local\", not " + shown(s));
}

std::string address(const json& v, const std::string& path) {
  std::string s = text(v, path);
  static_cast<void>(host_port(s, path));
  return s;
}

// HOST:PORT whose host is an IP address: replication addresses are dialled and bound as written,
// never resolved.
std::string ip_address(const json& v, const std::string& path) {
  std::string s = address(v, path);
  std::string host = split_address(s).first;
  in6_addr buf{};
  bool ip = false;
  if (s.front() == '[') {
    host = host.substr(0, host.find('%'));  // a zone (fe80::1%eth0) is allowed
    ip = ::inet_pton(AF_INET6, host.c_str(), &buf) == 1;
  } else {
    ip = ::inet_pton(AF_INET, host.c_str(), &buf) == 1;
  }
  if (!ip) fail(path, shown(s) + ": the host must be an IP address (host names are not resolved)");
  return s;
}

std::string tcp_address(const json& v, const std::string& path) {
  std::string s = text(v, path);
  if (s == kTcpOff) return s;
  if (s.find(':') == std::string::npos) {
    fail(path, shown(s) + " is neither HOST:PORT nor \"" + std::string(kTcpOff) + "\"");
  }
  static_cast<void>(host_port(s, path));
  return s;
}

// A DNS name a certificate must carry: 1-253 bytes of letters, digits, '-', '_' and '.', with no
// empty label.
std::string dns_name(const json& v, const std::string& path) {
  std::string s = text(v, path);
  const bool ok = !s.empty() && s.size() <= kHostBytesMax && s.front() != '.' && s.back() != '.' &&
                  s.find("..") == std::string::npos &&
                  std::all_of(s.begin(), s.end(), host_byte_ok);
  if (!ok)
    fail(path, "must be a DNS name (letters, digits, '-', '_', dots between), not " + shown(s));
  return s;
}

constexpr Key<NodeAddress> kNodeKeys[] = {
    {"id", true,
     [](const json& v, const std::string& p, NodeAddress& n) {
       n.id = whole32(v, p, 1, kNodeIdMax);
     }},
    {"role", false,
     [](const json& v, const std::string& p, NodeAddress& n) { n.role = role(v, p); }},
    {"replication", true,
     [](const json& v, const std::string& p, NodeAddress& n) { n.replication = ip_address(v, p); }},
    {"http", true,
     [](const json& v, const std::string& p, NodeAddress& n) { n.http = address(v, p); }},
    {"tcp", true,
     [](const json& v, const std::string& p, NodeAddress& n) { n.tcp = tcp_address(v, p); }},
    {"tls_name", false,
     [](const json& v, const std::string& p, NodeAddress& n) { n.tls_name = dns_name(v, p); }},
};

// Distinct ids, and no listener address used twice (see config.h). `nodes` is in file order, so
// that messages name the entries as the file has them.
void check_distinct(const std::vector<NodeAddress>& nodes) {
  std::map<NodeId, std::size_t> ids;
  std::map<std::string, std::string> addresses;  // host_port() spelling -> path of its first use
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NodeAddress& n = nodes[i];
    const std::string where = element("nodes", i);
    if (const auto [it, added] = ids.emplace(n.id, i); !added) {
      fail(where + ".id",
           std::to_string(n.id) + " is also the id of " + element("nodes", it->second));
    }
    const std::pair<const char*, const std::string*> fields[] = {
        {"replication", &n.replication}, {"http", &n.http}, {"tcp", &n.tcp}};
    for (const auto& [field, value] : fields) {
      if (*value == kTcpOff) continue;
      const std::string path = child(where, field);
      if (const auto [it, added] = addresses.emplace(host_port(*value, path), path); !added) {
        fail(path,
             shown(*value) + " is also " + it->second + "; every address is its own listener");
      }
    }
  }
}

std::vector<NodeAddress> node_list(const json& v, const std::string& path) {
  if (!v.is_array() || v.empty() || v.size() > kNodesMax) {
    fail(path, "must be an array of 1 to " + std::to_string(kNodesMax) + " node objects");
  }
  std::vector<NodeAddress> nodes(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string where = element(path, i);
    if (!v[i].is_object()) fail(where, "must be a node object, not " + shown_json(v[i]));
    read_object(v[i], where, kNodeKeys, nodes[i]);
  }
  check_distinct(nodes);
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeAddress& a, const NodeAddress& b) { return a.id < b.id; });
  return nodes;
}

std::vector<std::string> etcd_list(const json& v, const std::string& path) {
  if (!v.is_array() || v.empty() || v.size() > kEtcdEndpointsMax) {
    fail(path,
         "must be an array of 1 to " + std::to_string(kEtcdEndpointsMax) + " HOST:PORT strings");
  }
  std::vector<std::string> endpoints;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string where = element(path, i);
    std::string e = text(v[i], where);
    if (!seen.insert(host_port(e, where)).second) fail(where, shown(e) + " is listed twice");
    endpoints.push_back(std::move(e));
  }
  return endpoints;
}

std::string cluster_name(const json& v, const std::string& path) {
  std::string s = text(v, path);
  const bool ok =
      !s.empty() && s.size() <= kNameBytesMax &&
      std::all_of(s.begin(), s.end(), [](char c) { return c != '.' && host_byte_ok(c); });
  if (!ok) {
    fail(path, "must be 1 to " + std::to_string(kNameBytesMax) +
                   " bytes of letters, digits, '-' and '_', not " + shown(s));
  }
  return s;
}

std::string file_name(const json& v, const std::string& path) {
  std::string s = text(v, path);
  if (s.empty()) fail(path, "must name a file, not \"\"");
  return s;
}

constexpr Key<ClusterTls> kTlsKeys[] = {
    {"cert", true,
     [](const json& v, const std::string& p, ClusterTls& t) { t.cert = file_name(v, p); }},
    {"key", true,
     [](const json& v, const std::string& p, ClusterTls& t) { t.key = file_name(v, p); }},
    {"ca", true,
     [](const json& v, const std::string& p, ClusterTls& t) { t.ca = file_name(v, p); }},
};

ClusterTls tls_object(const json& v, const std::string& path) {
  if (!v.is_object()) {
    fail(path, "must be an object with \"cert\", \"key\" and \"ca\", not " + shown_json(v));
  }
  ClusterTls t;
  read_object(v, path, kTlsKeys, t);
  return t;
}

// A file that can be opened and holds at least one byte; what it holds is checked where it is
// used (the server's TLS context).
void check_readable(const std::string& file, const std::string& path) {
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  char first = 0;
  if (in && in.get(first)) return;
  const int error = errno;
  const std::string name = shown_json(json(file), kShownPathBytesMax);
  if (in.is_open() && in.eof() && !in.bad()) fail(path, name + " is empty");
  fail(path, "cannot read " + name + ": " + std::strerror(error));
}

constexpr std::uint64_t kStateHashEveryMax = 1'000'000'000;
constexpr std::uint64_t kCatchUpEventsMax = 1'000'000'000'000;

using ConfigKey = Key<ClusterConfig>;
constexpr ConfigKey kConfigKeys[] = {
    {"name", true,
     [](const json& v, const std::string& p, ClusterConfig& c) { c.name = cluster_name(v, p); }},
    {"node", true,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.node = whole32(v, p, 1, kNodeIdMax);
     }},
    {"nodes", true,
     [](const json& v, const std::string& p, ClusterConfig& c) { c.nodes = node_list(v, p); }},
    {"etcd", true,
     [](const json& v, const std::string& p, ClusterConfig& c) { c.etcd = etcd_list(v, p); }},
    {"ack", false,
     [](const json& v, const std::string& p, ClusterConfig& c) { c.ack = ack(v, p); }},
    {"heartbeat_ms", false,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.heartbeat_ms = whole32(v, p, 10, 10'000);
     }},
    {"election_after_heartbeats", false,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.election_after_heartbeats = whole32(v, p, 2, 100);
     }},
    {"lease_s", false,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.lease_s = whole32(v, p, 1, 60);
     }},
    {"state_hash_every", false,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.state_hash_every = whole(v, p, 1, kStateHashEveryMax);
     }},
    {"catch_up_events_max", false,
     [](const json& v, const std::string& p, ClusterConfig& c) {
       c.catch_up_events_max = whole(v, p, 1, kCatchUpEventsMax);
     }},
    {"tls", false,
     [](const json& v, const std::string& p, ClusterConfig& c) { c.tls = tls_object(v, p); }},
};

// Where the parser is, for the duplicate-key check: nlohmann keeps the last of two equal keys
// without a word, which would let a pasted "node" override the one above it.
struct Frame {
  bool array = false;
  std::size_t elements = 0;  // in an array: elements started so far
  std::string key;           // in an object: the key last read
  std::set<std::string> keys;
};

std::string path_of(const std::vector<Frame>& frames) {
  std::string path;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    const Frame& f = frames[i];
    path = f.array ? element(path, f.elements - 1) : child(path, f.key);
  }
  return path;
}

json parse_json(std::string_view text) {
  std::vector<Frame> frames;
  const auto note = [&frames](int /*depth*/, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    const bool starts = event == E::object_start || event == E::array_start;
    if ((starts || event == E::value) && !frames.empty() && frames.back().array) {
      ++frames.back().elements;
    }
    if (starts) frames.push_back(Frame{event == E::array_start, 0, {}, {}});
    if (event == E::object_end || event == E::array_end) frames.pop_back();
    if (event == E::key) {
      QX_ASSERT(!frames.empty() && !frames.back().array);
      Frame& f = frames.back();
      f.key = parsed.get<std::string>();
      if (!f.keys.insert(f.key).second) {
        const std::string where = path_of(frames);
        throw std::runtime_error((where.empty() ? "" : where + ": ") + "key " + shown(f.key) +
                                 " is written twice");
      }
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), note);
  } catch (const json::exception& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ...", or
    // "[json.exception.out_of_range.406] number overflow parsing '1e400'".
    const std::string_view what = e.what();
    const auto tag_end = what.find("] ");
    throw std::runtime_error(
        "not readable as JSON: " +
        std::string(tag_end == std::string_view::npos ? what : what.substr(tag_end + 2)));
  }
}

const char* type_name(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a bool";
  if (v.is_null()) return "null";
  return "a number";
}

ClusterConfig parse(std::string_view json_text, TlsFiles tls_files) {
  if (json_text.size() > kFileBytesMax) {
    throw std::runtime_error("longer than " + std::to_string(kFileBytesMax) + " bytes");
  }
  const json doc = parse_json(json_text);
  if (!doc.is_object()) {
    throw std::runtime_error(std::string("a cluster file is a JSON object, not ") + type_name(doc));
  }
  ClusterConfig c;
  read_object(doc, "", kConfigKeys, c);
  const auto self = std::find_if(c.nodes.begin(), c.nodes.end(),
                                 [&c](const NodeAddress& n) { return n.id == c.node; });
  if (self == c.nodes.end()) {
    fail("node", std::to_string(c.node) + " is not the id of any node in nodes");
  }
  if (c.voters() == 0) fail("nodes", "at least one node must have the role \"voter\"");
  if (c.tls && tls_files == TlsFiles::kCheckReadable) {
    check_readable(c.tls->cert, "tls.cert");
    check_readable(c.tls->key, "tls.key");
    check_readable(c.tls->ca, "tls.ca");
  }
  QX_ASSERT(!c.etcd.empty() && c.nodes.size() <= kNodesMax);
  for (std::size_t i = 1; i < c.nodes.size(); ++i) QX_ASSERT(c.nodes[i - 1].id < c.nodes[i].id);
  return c;
}

}  // namespace

const NodeAddress& ClusterConfig::self() const {
  const auto it = std::find_if(nodes.begin(), nodes.end(),
                               [this](const NodeAddress& n) { return n.id == node; });
  QX_ASSERT(it != nodes.end());
  return *it;
}

std::size_t ClusterConfig::voters() const {
  return static_cast<std::size_t>(std::count_if(
      nodes.begin(), nodes.end(), [](const NodeAddress& n) { return n.role == Role::kVoter; }));
}

std::size_t ClusterConfig::quorum() const {
  const std::size_t v = voters();
  QX_ASSERT(v >= 1);
  const std::size_t q = v / 2 + 1;
  QX_ASSERT(q <= v && 2 * q > v);  // a majority, and one the voters can reach
  return q;
}

ClusterConfig parse_cluster_config(std::string_view json_text, const std::string& origin,
                                   TlsFiles tls_files) {
  try {
    return parse(json_text, tls_files);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(origin + ": " + e.what());
  }
}

ClusterConfig load_cluster_config(const std::string& file, TlsFiles tls_files) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read cluster file " + file + ": " + std::strerror(errno));
  }
  std::string text(kFileBytesMax + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    throw std::runtime_error("cannot read cluster file " + file + ": " + std::strerror(errno));
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kFileBytesMax) {
    throw std::runtime_error("cluster file " + file + " is longer than " +
                             std::to_string(kFileBytesMax) + " bytes");
  }
  return parse_cluster_config(text, file, tls_files);
}

std::pair<std::string, std::string> split_address(const std::string& address) {
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {host, address.substr(colon + 1)};
}

}  // namespace qx::cluster
