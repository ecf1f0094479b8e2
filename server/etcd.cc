#include "server/etcd.h"

#include <openssl/evp.h>

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <climits>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/assert.h"

namespace qx::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using replay::Error;
using replay::Result;
using replay::Status;
using tcp = asio::ip::tcp;

namespace {

// EVP_EncodeBlock takes an int length, so long inputs go in chunks. A chunk that is a multiple of
// 3 bytes encodes without padding, so the chunks' outputs simply join.
constexpr std::size_t kEncodeChunkBytes = std::size_t{3} << 20;

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');  // + the NUL that EVP writes
  std::size_t written = 0;
  for (std::size_t at = 0; at < in.size(); at += kEncodeChunkBytes) {
    const std::size_t n = std::min(kEncodeChunkBytes, in.size() - at);
    const int w = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                                  reinterpret_cast<const unsigned char*>(in.data() + at),
                                  static_cast<int>(n));
    QX_ASSERT_EQ(static_cast<std::size_t>(w), 4 * ((n + 2) / 3));
    written += static_cast<std::size_t>(w);
  }
  QX_ASSERT_EQ(written, out.size() - 1);
  out.resize(written);
  return out;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Standard padded base64 (what Go's encoding/json writes for bytes), or nullopt. EVP_DecodeBlock
// alone is too lenient (it skips surrounding whitespace) and counts padding as zero bytes, so the
// alphabet and the padding are checked here and the padding is taken off its result.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0 || in.size() > static_cast<std::size_t>(INT_MAX)) return std::nullopt;
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  if (!std::all_of(in.begin(), in.end() - static_cast<std::ptrdiff_t>(pad), is_base64_char)) {
    return std::nullopt;
  }
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  return out;
}

// At most `max` bytes of text from the server for an error message: printable ASCII stays, other
// bytes become '?', so a hostile answer cannot split the one-line message or drive a terminal.
std::string printable(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const char c = s[i];
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string lease_text(LeaseId id) {
  return std::to_string(static_cast<std::int64_t>(id));
}

// Reads the server's JSON field by field, checking each type. The first problem is kept and later
// reads return zero values, so a decoder reads every field it needs and checks ok() once. Proto3
// JSON leaves out zero values, so an absent (or null) field reads as 0, false, empty or nullptr.
class Reader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(const std::string& where, const std::string& what) {
    if (error_.empty()) error_ = where + ": " + what;
  }

  std::int64_t integer(const json& o, const std::string& where) {
    const json* f = field(o, where);
    if (f == nullptr) return 0;
    std::int64_t v = 0;
    if (f->is_string()) {
      const auto& s = f->get_ref<const std::string&>();
      const char* end = s.data() + s.size();
      const auto [p, ec] = std::from_chars(s.data(), end, v);
      if (s.empty() || ec != std::errc() || p != end) {
        fail(where, "not an int64: \"" + printable(s, 24) + "\"");
        return 0;
      }
    } else if (f->is_number_unsigned()) {
      const auto u = f->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(where, "out of the int64 range");
        return 0;
      }
      v = static_cast<std::int64_t>(u);
    } else if (f->is_number_integer()) {
      v = f->get<std::int64_t>();
    } else {
      fail(where, std::string("not an int64 but ") + f->type_name());
      return 0;
    }
    // Every int64 this client reads (revisions, versions, lease ids, TTLs, counts) is >= 0.
    if (v < 0) fail(where, "negative: " + std::to_string(v));
    return v < 0 ? 0 : v;
  }

  bool boolean(const json& o, const std::string& where) {
    const json* f = field(o, where);
    if (f == nullptr) return false;
    if (!f->is_boolean()) fail(where, std::string("not a boolean but ") + f->type_name());
    return f->is_boolean() && f->get<bool>();
  }

  std::string bytes(const json& o, const std::string& where) {
    const json* f = field(o, where);
    if (f == nullptr) return {};
    if (!f->is_string()) {
      fail(where, std::string("not a base64 string but ") + f->type_name());
      return {};
    }
    auto decoded = base64_decode(f->get_ref<const std::string&>());
    if (!decoded) fail(where, "not base64");
    return decoded ? std::move(*decoded) : std::string();
  }

  const json* object(const json& o, const std::string& where) { return typed(o, where, true); }
  const json* array(const json& o, const std::string& where) { return typed(o, where, false); }

 private:
  // `where` is a dotted path whose last part is the field's name.
  const json* field(const json& o, const std::string& where) {
    if (!ok() || !o.is_object()) return nullptr;
    const auto dot = where.rfind('.');
    const auto it = o.find(dot == std::string::npos ? where : where.substr(dot + 1));
    return it == o.end() || it->is_null() ? nullptr : &*it;
  }
  const json* typed(const json& o, const std::string& where, bool want_object) {
    const json* f = field(o, where);
    if (f == nullptr) return nullptr;
    if (want_object ? f->is_object() : f->is_array()) return f;
    fail(where,
         std::string(want_object ? "not an object but " : "not an array but ") + f->type_name());
    return nullptr;
  }

  std::string error_;
};

KeyValue read_kv(Reader& r, const json& o, const std::string& where) {
  if (!o.is_object()) r.fail(where, std::string("not an object but ") + o.type_name());
  KeyValue kv;
  kv.key = r.bytes(o, where + ".key");
  kv.value = r.bytes(o, where + ".value");
  kv.create_revision = r.integer(o, where + ".create_revision");
  kv.mod_revision = r.integer(o, where + ".mod_revision");
  kv.version = r.integer(o, where + ".version");
  kv.lease = LeaseId{r.integer(o, where + ".lease")};
  return kv;
}

// The revision in the answer's header, which every answer used here carries.
std::int64_t header_revision(Reader& r, const json& doc) {
  const json* header = r.object(doc, "header");
  if (header == nullptr) {
    r.fail("header", "missing");
    return 0;
  }
  const std::int64_t revision = r.integer(*header, "header.revision");
  if (revision == 0) r.fail("header.revision", "missing");
  return revision;
}

// The single key a range of `key` found, or nullopt; any other key is a bad answer.
std::optional<KeyValue> read_one(Reader& r, const json& range, const std::string& where,
                                 std::string_view key) {
  const std::string at = where.empty() ? "kvs" : where + ".kvs";
  const json* kvs = r.array(range, at);
  if (kvs == nullptr || kvs->empty()) return std::nullopt;
  if (kvs->size() > 1) r.fail(at, "more than one key for one key");
  KeyValue kv = read_kv(r, kvs->front(), at + "[0]");
  if (r.ok() && kv.key != key) r.fail(at + "[0].key", "not the key asked for");
  return kv;
}

// The first byte string after every string that starts with `prefix`: etcd's range end for a
// prefix. "\0" (with an empty or all-0xff prefix) means "to the end of the key space".
std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

struct Endpoint {
  std::string text;     // as configured, for messages
  std::string host;     // without brackets
  std::string port;     // digits
  std::string invalid;  // why `text` is not HOST:PORT; empty when it is
};

Endpoint parse_endpoint(std::string text) {
  Endpoint ep{std::move(text), {}, {}, {}};
  const std::string& t = ep.text;
  std::size_t colon = std::string::npos;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close != std::string::npos && close + 1 < t.size() && t[close + 1] == ':') {
      ep.host = t.substr(1, close - 1);
      colon = close + 1;
    }
  } else {
    colon = t.rfind(':');
    if (colon != std::string::npos) ep.host = t.substr(0, colon);
  }
  if (colon != std::string::npos) ep.port = t.substr(colon + 1);
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(ep.port.data(), ep.port.data() + ep.port.size(), port);
  const bool port_ok = !ep.port.empty() && ec == std::errc() &&
                       p == ep.port.data() + ep.port.size() && port >= 1 && port <= 65535;
  const bool bare_ipv6 = t.front() != '[' && ep.host.find(':') != std::string::npos;
  if (ep.host.empty() || bare_ipv6 || !port_ok) {
    ep.invalid = "not HOST:PORT or [IPV6]:PORT";
  }
  return ep;
}

// The text of an etcd error body ({"error": "...", "message": "...", "code": N}, or the streaming
// form {"error": {"message": "...", "grpc_code": N}}), or empty when `doc` is not one.
std::string etcd_error(const json& doc) {
  if (!doc.is_object()) return {};
  const auto e = doc.find("error");
  if (e == doc.end()) return {};
  const json* m = nullptr;
  const json* code = nullptr;
  if (e->is_string()) {
    m = &*e;
    if (auto c = doc.find("code"); c != doc.end()) code = &*c;
  } else if (e->is_object()) {
    if (auto i = e->find("message"); i != e->end()) m = &*i;
    if (auto c = e->find("grpc_code"); c != e->end()) code = &*c;
  }
  if (m == nullptr || !m->is_string() || m->get_ref<const std::string&>().empty()) return {};
  std::string text = printable(m->get_ref<const std::string&>(), 200);
  if (code != nullptr && code->is_number_integer()) {
    text += " (gRPC code " + std::to_string(code->get<std::int64_t>()) + ")";
  }
  return text;
}

json put_request(std::string_view key, std::string_view value, LeaseId lease) {
  json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != LeaseId::kNone) put["lease"] = lease_text(lease);
  return put;
}

json mod_revision_is(std::string_view key, std::int64_t mod_revision) {
  return {{"target", "MOD"},
          {"result", "EQUAL"},
          {"key", base64_encode(key)},
          {"mod_revision", std::to_string(mod_revision)}};
}

bool is_not_found(const json& doc) {
  if (!doc.is_object()) return false;
  const auto c = doc.find("code");
  return c != doc.end() && c->is_number_integer() && c->get<std::int64_t>() == 5;
}

}  // namespace

class EtcdClient::Impl {
 public:
  // A complete answer: an HTTP 200 JSON object, or (when asked for) etcd's "not found".
  struct Reply {
    json doc;
    bool not_found = false;
    std::string where;  // "etcd OP at ENDPOINT", the start of any error message about it

    Error bad(const Reader& r) const { return Error{where + ": bad answer: " + r.error()}; }
  };

  Impl(std::vector<std::string> endpoints, std::chrono::milliseconds timeout) : timeout_(timeout) {
    for (auto& e : endpoints) endpoints_.push_back(parse_endpoint(std::move(e)));
  }

  // Sends `request` to `path`, failing over between endpoints (see the header).
  Result<Reply> call(std::string_view op, const char* path, const json& request,
                     bool not_found_ok = false) {
    if (endpoints_.empty()) return Error{"etcd " + std::string(op) + ": no endpoints configured"};
    const std::string body = request.dump();
    std::string failures;
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      const std::size_t at = (current_ + i) % endpoints_.size();
      Result<Answer> answer = exchange(at, path, body);
      if (answer.ok() && answer.value().status == 503) {
        const std::string e = etcd_error(parse(answer.value().body));
        answer = Error{"HTTP 503: " + (e.empty() ? printable(answer.value().body) : e)};
      }
      if (!answer.ok()) {
        close();
        failures +=
            (failures.empty() ? "" : "; ") + endpoints_[at].text + ": " + answer.error().message;
        continue;
      }
      current_ = at;
      return interpret("etcd " + std::string(op) + " at " + endpoints_[at].text,
                       std::move(answer.value()), not_found_ok);
    }
    return Error{"etcd " + std::string(op) + ": every endpoint failed: " + failures};
  }

  // A transaction on one key: if `compare` holds, `success` runs; otherwise the key is read, so a
  // failed compare-and-set tells the caller what holds the key now.
  Result<TxnResult> key_txn(std::string_view op, std::string_view key, json compare, json success) {
    json request = {
        {"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
    request["compare"].push_back(std::move(compare));
    request["success"].push_back(std::move(success));
    request["failure"].push_back({{"request_range", {{"key", base64_encode(key)}}}});
    auto reply = call(op, "/v3/kv/txn", request);
    if (!reply.ok()) return reply.error();
    const json& doc = reply.value().doc;
    Reader r;
    TxnResult out;
    out.revision = header_revision(r, doc);
    out.succeeded = r.boolean(doc, "succeeded");
    if (!out.succeeded) {
      const json* responses = r.array(doc, "responses");
      if (r.ok() && (responses == nullptr || responses->size() != 1)) {
        r.fail("responses", "not the one range asked for");
      }
      const json* range =
          r.ok() ? r.object(responses->front(), "responses[0].response_range") : nullptr;
      if (r.ok() && range == nullptr) r.fail("responses[0].response_range", "missing");
      if (range != nullptr) out.current = read_one(r, *range, "responses[0].response_range", key);
    }
    if (!r.ok()) return reply.value().bad(r);
    return out;
  }

 private:
  struct Answer {
    unsigned status = 0;
    std::string body;
  };

  static json parse(const std::string& body) {
    return json::parse(body, nullptr, /*allow_exceptions=*/false);
  }

  static Result<Reply> interpret(std::string where, Answer answer, bool not_found_ok) {
    json doc = parse(answer.body);
    if (answer.status == 404 && not_found_ok && is_not_found(doc)) {
      return Reply{json(), true, std::move(where)};
    }
    if (answer.status != 200) {
      const std::string e = etcd_error(doc);
      return Error{where + ": HTTP " + std::to_string(answer.status) + ": " +
                   (e.empty() ? printable(answer.body) : e)};
    }
    if (doc.is_discarded() || !doc.is_object()) {
      return Error{where + ": answer is not a JSON object: " + printable(answer.body)};
    }
    if (const std::string e = etcd_error(doc); !e.empty()) return Error{where + ": " + e};
    return Reply{std::move(doc), false, std::move(where)};
  }

  // One request and its answer on endpoint `at`, or why the endpoint failed. A connection kept
  // from an earlier call that fails before any byte of the answer is reopened once.
  Result<Answer> exchange(std::size_t at, const char* path, const std::string& body) {
    const Endpoint& ep = endpoints_[at];
    if (!ep.invalid.empty()) return Error{ep.invalid};
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (int round = 0;; ++round) {
      const bool reused = connected_ && connected_to_ == at;
      if (!reused) {
        close();
        if (auto c = connect(ep, deadline); !c.ok()) return c.error();
        connected_ = true;
        connected_to_ = at;
      }
      bool got_some = false;
      beast::error_code ec;
      Result<Answer> a = round_trip(ep, path, body, deadline, ec, got_some);
      if (a.ok()) return a;
      close();
      const bool stale = reused && round == 0 && ec != beast::error::timeout && !got_some;
      if (!stale) return a;
    }
  }

  Status connect(const Endpoint& ep, std::chrono::steady_clock::time_point deadline) {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    const auto addresses = resolver.resolve(ep.host, ep.port, ec);
    if (ec) return Error{"resolve: " + ec.message()};
    stream_.expires_at(deadline);
    ec = run([&](auto done) { stream_.async_connect(addresses, std::move(done)); });
    if (ec) return Error{failure("connect", ec)};
    return {};
  }

  Result<Answer> round_trip(const Endpoint& ep, const char* path, const std::string& body,
                            std::chrono::steady_clock::time_point deadline, beast::error_code& ec,
                            bool& got_some) {
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, ep.text);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    stream_.expires_at(deadline);
    ec = run([&](auto done) { http::async_write(stream_, req, std::move(done)); });
    if (ec) return Error{failure("write", ec)};

    http::response_parser<http::string_body> parser;
    parser.body_limit(EtcdClient::kResponseBytesMax);
    ec = run([&](auto done) { http::async_read(stream_, buffer_, parser, std::move(done)); });
    got_some = parser.got_some();
    if (ec) return Error{failure("read", ec)};
    auto res = parser.release();
    // Bytes the server sent beyond its answer were not asked for; start afresh next time.
    if (!res.keep_alive() || buffer_.size() != 0) close();
    return Answer{res.result_int(), std::move(res.body())};
  }

  std::string failure(const char* step, const beast::error_code& ec) const {
    if (ec == beast::error::timeout) {
      return std::string(step) + ": timed out after " + std::to_string(timeout_.count()) + " ms";
    }
    return std::string(step) + ": " + ec.message();
  }

  // Starts one asynchronous operation and runs the io_context until it (and its timer) are done.
  template <class Start>
  beast::error_code run(Start start) {
    beast::error_code result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    buffer_.consume(buffer_.size());
    connected_ = false;
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  std::size_t current_ = 0;  // the endpoint to try first: the last one that answered
  bool connected_ = false;
  std::size_t connected_to_ = 0;
};

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(endpoints), timeout)) {}
EtcdClient::~EtcdClient() = default;
EtcdClient::EtcdClient(EtcdClient&&) noexcept = default;
EtcdClient& EtcdClient::operator=(EtcdClient&&) noexcept = default;

Result<Lease> EtcdClient::grant_lease(std::int64_t ttl_s) {
  if (ttl_s <= 0) {
    return Error{"etcd grant_lease: ttl_s must be positive, not " + std::to_string(ttl_s)};
  }
  auto reply = impl_->call("grant_lease", "/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}});
  if (!reply.ok()) return reply.error();
  const json& doc = reply.value().doc;
  Reader r;
  header_revision(r, doc);
  Lease lease{LeaseId{r.integer(doc, "ID")}, r.integer(doc, "TTL")};
  if (r.ok() && lease.id == LeaseId::kNone) r.fail("ID", "missing");
  if (r.ok() && lease.ttl_s == 0) r.fail("TTL", "missing");
  if (!r.ok()) return reply.value().bad(r);
  return lease;
}

Result<std::int64_t> EtcdClient::keep_alive(LeaseId id) {
  auto reply = impl_->call("keep_alive", "/v3/lease/keepalive", {{"ID", lease_text(id)}});
  if (!reply.ok()) return reply.error();
  // The gateway serves this gRPC stream as one {"result": {...}} per message; one was sent.
  Reader r;
  const json* result = r.object(reply.value().doc, "result");
  if (r.ok() && result == nullptr) r.fail("result", "missing");
  std::int64_t ttl_s = 0;
  if (result != nullptr) {
    const LeaseId echoed{r.integer(*result, "result.ID")};
    ttl_s = r.integer(*result, "result.TTL");
    if (r.ok() && echoed != id) r.fail("result.ID", "not the lease asked for");
  }
  if (!r.ok()) return reply.value().bad(r);
  return ttl_s;
}

Result<bool> EtcdClient::revoke(LeaseId id) {
  auto reply = impl_->call("revoke", "/v3/lease/revoke", {{"ID", lease_text(id)}},
                           /*not_found_ok=*/true);
  if (!reply.ok()) return reply.error();
  if (reply.value().not_found) return false;
  Reader r;
  header_revision(r, reply.value().doc);
  if (!r.ok()) return reply.value().bad(r);
  return true;
}

Result<GetResult> EtcdClient::get(std::string_view key) {
  auto reply = impl_->call("get", "/v3/kv/range", {{"key", base64_encode(key)}});
  if (!reply.ok()) return reply.error();
  const json& doc = reply.value().doc;
  Reader r;
  GetResult out;
  out.revision = header_revision(r, doc);
  out.kv = read_one(r, doc, "", key);
  if (!r.ok()) return reply.value().bad(r);
  return out;
}

Result<RangeResult> EtcdClient::get_prefix(std::string_view prefix) {
  const std::string start = prefix.empty() ? std::string(1, '\0') : std::string(prefix);
  auto reply = impl_->call(
      "get_prefix", "/v3/kv/range",
      {{"key", base64_encode(start)}, {"range_end", base64_encode(prefix_end(prefix))}});
  if (!reply.ok()) return reply.error();
  const json& doc = reply.value().doc;
  Reader r;
  RangeResult out;
  out.revision = header_revision(r, doc);
  if (r.boolean(doc, "more")) r.fail("more", "keys held back, though no limit was asked for");
  if (const json* kvs = r.array(doc, "kvs")) {
    for (std::size_t i = 0; i < kvs->size() && r.ok(); ++i) {
      const std::string where = "kvs[" + std::to_string(i) + "]";
      out.kvs.push_back(read_kv(r, (*kvs)[i], where));
      if (r.ok() && out.kvs.back().key.compare(0, prefix.size(), prefix) != 0) {
        r.fail(where + ".key", "outside the prefix");
      }
    }
  }
  if (!r.ok()) return reply.value().bad(r);
  // etcd answers in key order already; sorting here makes that a property of this client.
  std::sort(out.kvs.begin(), out.kvs.end(),
            [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; });
  return out;
}

Result<std::int64_t> EtcdClient::put(std::string_view key, std::string_view value, LeaseId lease) {
  auto reply = impl_->call("put", "/v3/kv/put", put_request(key, value, lease));
  if (!reply.ok()) return reply.error();
  Reader r;
  const std::int64_t revision = header_revision(r, reply.value().doc);
  if (!r.ok()) return reply.value().bad(r);
  return revision;
}

Result<EraseResult> EtcdClient::erase(std::string_view key) {
  auto reply = impl_->call("erase", "/v3/kv/deleterange", {{"key", base64_encode(key)}});
  if (!reply.ok()) return reply.error();
  const json& doc = reply.value().doc;
  Reader r;
  EraseResult out;
  out.revision = header_revision(r, doc);
  out.deleted = r.integer(doc, "deleted");
  if (out.deleted > 1) r.fail("deleted", "more than one key for one key");
  if (!r.ok()) return reply.value().bad(r);
  return out;
}

Result<TxnResult> EtcdClient::create_if_absent(std::string_view key, std::string_view value,
                                               LeaseId lease) {
  json absent = {{"target", "CREATE"},
                 {"result", "EQUAL"},
                 {"key", base64_encode(key)},
                 {"create_revision", "0"}};
  return impl_->key_txn("create_if_absent", key, std::move(absent),
                        {{"request_put", put_request(key, value, lease)}});
}

Result<TxnResult> EtcdClient::replace_if_mod_revision(std::string_view key,
                                                      std::int64_t expected_mod_revision,
                                                      std::string_view value, LeaseId lease) {
  return impl_->key_txn("replace_if_mod_revision", key, mod_revision_is(key, expected_mod_revision),
                        {{"request_put", put_request(key, value, lease)}});
}

Result<TxnResult> EtcdClient::erase_if_mod_revision(std::string_view key,
                                                    std::int64_t expected_mod_revision) {
  return impl_->key_txn("erase_if_mod_revision", key, mod_revision_is(key, expected_mod_revision),
                        {{"request_delete_range", {{"key", base64_encode(key)}}}});
}

}  // namespace qx::server
