// A small synchronous client for etcd's v3 API through its JSON gateway, for the cluster's
// leadership and fencing: leases, reads, writes and compare-and-set transactions.
//
//   EtcdClient etcd({"10.0.0.1:2379", "10.0.0.2:2379"}, std::chrono::milliseconds(500));
//   auto lease = etcd.grant_lease(5);                        // {id, ttl_s}; check ok() first
//   auto won = etcd.create_if_absent("/qx/leader", "node-a", lease.value().id);
//   if (won.ok() && won.value().succeeded) { /* leader; fence with won.value().revision */ }
//   else if (won.ok()) { /* won.value().current->value names the holder */ }
//   auto ttl_s = etcd.keep_alive(lease.value().id);          // 0: the lease is gone, step down
//
// Protocol: every operation is one HTTP/1.1 POST of a JSON body to a gateway path (/v3/kv/range,
// /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive,
// /v3/lease/revoke) and one JSON answer. Keys and values travel as base64; int64 fields arrive as
// JSON strings (numbers are accepted too); a field with its zero value is left out, so an absent
// field reads as 0, false or empty. An error is HTTP 4xx/5xx with {"error", "message", "code"}
// (a gRPC status code); the streaming keepalive answers {"result": {...}} or {"error": {...}}.
//
// Design: calls block the calling thread. One keep-alive TCP connection is reused; each call
// drives Beast's asynchronous operations on a private io_context until they finish, because
// only those honour a deadline. Each endpoint gets at most `timeout` per call for connect, write
// and read together. Anything short of a complete HTTP answer (a refused or broken connection, a
// timeout, bytes that are not HTTP, an answer over kResponseBytesMax) and HTTP 503 (etcd's "no
// leader" is gRPC UNAVAILABLE, which the gateway maps to 503) moves on to the next endpoint, and
// the client stays there while it answers; when every endpoint has failed the call returns one
// error line that names the operation and each endpoint with its reason. A reused connection
// that fails before any byte of the answer (the server closed it while idle) is reopened once on
// the same endpoint, within the same deadline. Any other answer (an etcd error, an unreadable
// body) is returned at once: the request reached a server that answered it, so trying elsewhere
// would only hide the fault.
//
// Every byte from the server is treated as hostile: the HTTP status, each field's JSON type,
// integer syntax and range (all values must be non-negative), and base64 are checked; bodies over
// kResponseBytesMax are refused; bytes after an answer close the connection. Nothing here throws
// for anything the server sends; a malformed answer is an Error whose message quotes at most a
// short, printable prefix of the body.
//
// Caveats:
// - Not thread-safe: one client per thread (it owns a connection and an io_context).
//   A moved-from client may only be destroyed or assigned to.
// - A retry (on the next endpoint, or on a reopened connection) after the request reached etcd
//   but its answer was lost may apply a write twice: a put rewrites the same value, a grant
//   leaks a lease (which expires on its own), a revoke reports false, and create_if_absent may
//   report failure with our own value as `current`. Callers that must know compare
//   `current->value` and `current->lease` with what they wrote.
// - Comparing a mod revision of 0 matches an absent key (etcd compares against an empty record),
//   so replace_if_mod_revision(key, 0, ...) creates the key and erase_if_mod_revision(key, 0)
//   succeeds on an absent key.
// - Host names are resolved with a blocking getaddrinfo that the timeout does not bound; prefer
//   IP literals ("127.0.0.1:2379", "[::1]:2379").
// - Plain TCP only: no TLS and no etcd authentication.
// - etcd raises a lease TTL to its minimum (1.5 election timeouts, rounded up to whole seconds:
//   2 s with default settings); the granted ttl_s says what it chose.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replay/result.h"

namespace qx::server {

// An etcd lease id; kNone (0) is etcd's "no lease" on a key.
enum class LeaseId : std::int64_t { kNone = 0 };

struct KeyValue {
  std::string key;  // bytes, not text: may hold zero bytes
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;  // puts since the key was created, 1 after the first
  LeaseId lease = LeaseId::kNone;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

struct Lease {
  LeaseId id = LeaseId::kNone;
  std::int64_t ttl_s = 0;  // as granted: etcd may raise the one asked for
};

// A read's result and the store's revision when it was served.
struct GetResult {
  std::optional<KeyValue> kv;
  std::int64_t revision = 0;
};
struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key, bytewise
  std::int64_t revision = 0;
};

struct EraseResult {
  std::int64_t deleted = 0;  // 0 or 1
  std::int64_t revision = 0;
};

// A compare-and-set's outcome. On failure `current` is the key as it is now (nullopt: absent);
// on success it is empty and `revision` is the revision the write created.
struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;
  std::optional<KeyValue> current;
};

class EtcdClient {
 public:
  // Answers larger than this are refused (etcd's own request limit is 1.5 MiB by default).
  static constexpr std::uint64_t kResponseBytesMax = 64ull << 20;

  // Endpoints are "HOST:PORT" or "[IPV6]:PORT"; a malformed one fails as an endpoint does, with
  // its reason, on every call. Connects lazily, on the first call.
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);
  ~EtcdClient();
  EtcdClient(EtcdClient&&) noexcept;
  EtcdClient& operator=(EtcdClient&&) noexcept;
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // ttl_s must be positive.
  replay::Result<Lease> grant_lease(std::int64_t ttl_s);
  // The lease's remaining TTL after the refresh; 0 when it has expired or was revoked.
  replay::Result<std::int64_t> keep_alive(LeaseId id);
  // True when revoked (its keys are deleted), false when etcd no longer knows the lease.
  replay::Result<bool> revoke(LeaseId id);

  replay::Result<GetResult> get(std::string_view key);
  // Every key that starts with `prefix` (every key when it is empty).
  replay::Result<RangeResult> get_prefix(std::string_view prefix);
  // The revision the write created.
  replay::Result<std::int64_t> put(std::string_view key, std::string_view value,
                                   LeaseId lease = LeaseId::kNone);
  replay::Result<EraseResult> erase(std::string_view key);

  // Puts the key only if it does not exist (its create revision is 0).
  replay::Result<TxnResult> create_if_absent(std::string_view key, std::string_view value,
                                             LeaseId lease);
  // Puts the key only if its mod revision is still `expected_mod_revision`.
  replay::Result<TxnResult> replace_if_mod_revision(std::string_view key,
                                                    std::int64_t expected_mod_revision,
                                                    std::string_view value, LeaseId lease);
  // Deletes the key only if its mod revision is still `expected_mod_revision`.
  replay::Result<TxnResult> erase_if_mod_revision(std::string_view key,
                                                  std::int64_t expected_mod_revision);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qx::server
