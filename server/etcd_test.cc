// Tests of the etcd client (server/etcd.h). EtcdTest runs each test against its own one-node etcd
// child process on loopback (a missing etcd binary fails the test: the cluster depends on it);
// EtcdFailureTest needs no etcd and points the client at closed ports and at tiny in-test TCP
// servers that answer canned bytes or never answer.
#include "server/etcd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace qx::server {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A TCP socket bound to 127.0.0.1 on a port the kernel chose, and that port.
Fd bind_loopback(std::uint16_t& port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

std::string loopback(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A port where nothing listens: the socket stays bound (but not listening), so no other process
// takes the port while the test runs, and a connect to it is refused.
class ClosedPort {
 public:
  ClosedPort() : fd_(bind_loopback(port_)) {}
  std::string endpoint() const { return loopback(port_); }

 private:
  std::uint16_t port_ = 0;
  Fd fd_;
};

// Reads one HTTP request (headers, then Content-Length bytes of body) within two seconds.
bool read_request(int fd) {
  std::string in;
  std::size_t need = std::string::npos;
  const auto deadline = Clock::now() + 2s;
  while (need == std::string::npos || in.size() < need) {
    if (Clock::now() > deadline) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    const auto end = in.find("\r\n\r\n");
    if (need == std::string::npos && end != std::string::npos) {
      std::string head = in.substr(0, end);
      std::transform(head.begin(), head.end(), head.begin(),
                     [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
      const auto cl = head.find("content-length:");
      const std::size_t body = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
      need = end + 4 + body;
    }
  }
  return true;
}

// A loopback TCP server on its own thread. For each connection it reads one request, writes
// `reply` (raw bytes, so it can be anything) and closes; with an empty reply it accepts and never
// answers, holding every connection open until it is destroyed.
class CannedServer {
 public:
  explicit CannedServer(std::string reply) : reply_(std::move(reply)), fd_(bind_loopback(port_)) {
    if (::listen(fd_.get(), 16) != 0) throw std::runtime_error("listen failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    thread_.join();
  }
  std::string endpoint() const { return loopback(port_); }
  int requests() const { return requests_; }

 private:
  void serve() {
    std::vector<Fd> held;
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      Fd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn.get() < 0) continue;
      if (reply_.empty()) {
        held.push_back(std::move(conn));
        continue;
      }
      if (!read_request(conn.get())) continue;
      ++requests_;
      std::size_t sent = 0;
      while (sent < reply_.size()) {
        const ssize_t n =
            ::send(conn.get(), reply_.data() + sent, reply_.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
    }
  }

  std::string reply_;
  std::uint16_t port_ = 0;
  Fd fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string http_reply(const std::string& status, const std::string& body) {
  return "HTTP/1.1 " + status +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// The etcd binary on PATH, else /usr/bin/etcd, else empty.
std::string find_etcd() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::string bin = (dir.empty() ? "." : dir) + "/etcd";
      if (::access(bin.c_str(), X_OK) == 0) return bin;
    }
  }
  return ::access("/usr/bin/etcd", X_OK) == 0 ? "/usr/bin/etcd" : "";
}

// A one-node etcd child process on two free loopback ports, with its data and log in a new
// temporary directory. The destructor kills and reaps it and removes the directory; should this
// process die first, the child gets SIGKILL from the kernel (PR_SET_PDEATHSIG), so no etcd
// outlives a crashed test.
class EtcdProcess {
 public:
  explicit EtcdProcess(const std::string& bin) {
    std::string tmpl = (fs::temp_directory_path() / "qx-etcd-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    {
      // Both sockets stay bound until both ports are known, so the two differ.
      std::uint16_t peer_port = 0;
      Fd a = bind_loopback(client_port_);
      Fd b = bind_loopback(peer_port);
      peer_port_ = peer_port;
    }
    const std::string client = "http://" + loopback(client_port_);
    const std::string peer = "http://" + loopback(peer_port_);
    std::vector<std::string> args = {bin,
                                     "--name=qx-test",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=qx-test=" + peer,
                                     "--heartbeat-interval=10",
                                     "--election-timeout=50",
                                     "--logger=zap",
                                     "--log-level=warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir_ / "etcd.log").string();
    Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (log_fd.get() < 0) throw std::runtime_error("cannot open " + log);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(log_fd.get(), STDOUT_FILENO);
      ::dup2(log_fd.get(), STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;
  ~EtcdProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string endpoint() const { return loopback(client_port_); }

  // True (and reaped) when the child has already exited.
  bool exited() {
    int status = 0;
    if (!reaped_ && ::waitpid(pid_, &status, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }

  std::string log_tail() const {
    std::ifstream in(dir_ / "etcd.log");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

 private:
  fs::path dir_;
  std::uint16_t client_port_ = 0;
  std::uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = find_etcd();
    ASSERT_FALSE(bin.empty()) << "no etcd binary on PATH or at /usr/bin/etcd; install the "
                                 "etcd-server package (scripts/install-deps.sh)";
    etcd_ = std::make_unique<EtcdProcess>(bin);
    EtcdClient probe({etcd_->endpoint()}, 500ms);
    const auto deadline = Clock::now() + 10s;
    std::string last_error;
    for (;;) {
      auto r = probe.get("qx-test-ready");
      if (r.ok()) break;
      last_error = r.error().message;
      ASSERT_FALSE(etcd_->exited()) << "etcd exited at start; its log:\n" << etcd_->log_tail();
      ASSERT_LT(Clock::now(), deadline)
          << "etcd did not answer within 10 s: " << last_error << "\nits log:\n"
          << etcd_->log_tail();
      std::this_thread::sleep_for(20ms);
    }
  }

  EtcdClient client() { return EtcdClient({etcd_->endpoint()}, 2000ms); }

  std::unique_ptr<EtcdProcess> etcd_;
};

TEST_F(EtcdTest, PutAndGetRoundTripBinaryKeysAndValues) {
  EtcdClient etcd = client();
  std::string value;
  for (int i = 0; i < 512; ++i) value += static_cast<char>(i % 256);
  const std::string key("bin\0key\xff", 8);

  auto put = etcd.put(key, value);
  ASSERT_TRUE(put.ok()) << put.error().message;
  auto got = etcd.get(key);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got.value().kv.has_value());
  const KeyValue& kv = *got.value().kv;
  EXPECT_EQ(kv.key, key);
  EXPECT_EQ(kv.value, value);
  EXPECT_EQ(kv.create_revision, put.value());
  EXPECT_EQ(kv.mod_revision, put.value());
  EXPECT_EQ(kv.version, 1);
  EXPECT_EQ(kv.lease, LeaseId::kNone);
  EXPECT_EQ(got.value().revision, put.value());

  // An empty value is left out of etcd's answer and must still read back as empty; a second put
  // keeps the create revision and counts the version up.
  auto again = etcd.put(key, "");
  ASSERT_TRUE(again.ok()) << again.error().message;
  got = etcd.get(key);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got.value().kv.has_value());
  EXPECT_EQ(got.value().kv->value, "");
  EXPECT_EQ(got.value().kv->create_revision, put.value());
  EXPECT_EQ(got.value().kv->mod_revision, again.value());
  EXPECT_EQ(got.value().kv->version, 2);
}

TEST_F(EtcdTest, GetOfAMissingKeyIsNullopt) {
  EtcdClient etcd = client();
  auto got = etcd.get("no-such-key");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got.value().kv.has_value());
  EXPECT_GE(got.value().revision, 1);

  auto erased = etcd.erase("no-such-key");
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_EQ(erased.value().deleted, 0);
}

TEST_F(EtcdTest, GetPrefixReturnsOnlyThePrefixInKeyOrder) {
  EtcdClient etcd = client();
  // The prefix ends in 0xff, so its range end is "q": carried, not "p\x100".
  const std::string prefix = "p\xff";
  const std::vector<std::string> inside = {prefix + "b", prefix + std::string(1, '\0'),
                                           prefix + "\xff\xff", prefix + "a", prefix};
  for (const auto& k : inside) ASSERT_TRUE(etcd.put(k, "in:" + k).ok());
  for (const std::string k : {"p", "pz", "q", "o\xff"}) ASSERT_TRUE(etcd.put(k, "out").ok());

  auto range = etcd.get_prefix(prefix);
  ASSERT_TRUE(range.ok()) << range.error().message;
  std::vector<std::string> keys;
  for (const auto& kv : range.value().kvs) {
    keys.push_back(kv.key);
    EXPECT_EQ(kv.value, "in:" + kv.key);
  }
  std::vector<std::string> want = inside;
  std::sort(want.begin(), want.end());  // std::string compares bytes as unsigned, like etcd
  EXPECT_EQ(keys, want);
  EXPECT_EQ(keys.front(), prefix);

  auto all = etcd.get_prefix("");
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all.value().kvs.size(), inside.size() + 4);
  auto none = etcd.get_prefix("nothing/");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none.value().kvs.empty());
}

TEST_F(EtcdTest, CreateIfAbsentWinsOnceAndNamesTheHolder) {
  EtcdClient etcd = client();
  auto lease = etcd.grant_lease(30);
  ASSERT_TRUE(lease.ok()) << lease.error().message;

  auto first = etcd.create_if_absent("/qx/leader", "node-a", lease.value().id);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first.value().succeeded);
  EXPECT_FALSE(first.value().current.has_value());

  auto second = etcd.create_if_absent("/qx/leader", "node-b", LeaseId::kNone);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second.value().succeeded);
  ASSERT_TRUE(second.value().current.has_value());
  const KeyValue& holder = *second.value().current;
  EXPECT_EQ(holder.key, "/qx/leader");
  EXPECT_EQ(holder.value, "node-a");
  EXPECT_EQ(holder.create_revision, first.value().revision);
  EXPECT_EQ(holder.mod_revision, first.value().revision);
  EXPECT_EQ(holder.version, 1);
  EXPECT_EQ(holder.lease, lease.value().id);
  // A failed transaction writes nothing.
  EXPECT_EQ(second.value().revision, first.value().revision);
}

TEST_F(EtcdTest, ReplaceAndEraseIfModRevisionRefuseAStaleRevision) {
  EtcdClient etcd = client();
  auto v1 = etcd.put("fence", "v1");
  ASSERT_TRUE(v1.ok()) << v1.error().message;

  auto v2 = etcd.replace_if_mod_revision("fence", v1.value(), "v2", LeaseId::kNone);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_TRUE(v2.value().succeeded);
  EXPECT_GT(v2.value().revision, v1.value());

  auto stale = etcd.replace_if_mod_revision("fence", v1.value(), "v3", LeaseId::kNone);
  ASSERT_TRUE(stale.ok()) << stale.error().message;
  EXPECT_FALSE(stale.value().succeeded);
  ASSERT_TRUE(stale.value().current.has_value());
  EXPECT_EQ(stale.value().current->value, "v2");
  EXPECT_EQ(stale.value().current->mod_revision, v2.value().revision);

  auto stale_erase = etcd.erase_if_mod_revision("fence", v1.value());
  ASSERT_TRUE(stale_erase.ok()) << stale_erase.error().message;
  EXPECT_FALSE(stale_erase.value().succeeded);
  ASSERT_TRUE(stale_erase.value().current.has_value());
  EXPECT_EQ(stale_erase.value().current->value, "v2");

  auto erased = etcd.erase_if_mod_revision("fence", v2.value().revision);
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_TRUE(erased.value().succeeded);
  auto got = etcd.get("fence");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got.value().kv.has_value());

  // Once the key is gone a compare on its old revision fails, and `current` says it is absent.
  auto gone = etcd.replace_if_mod_revision("fence", v2.value().revision, "v4", LeaseId::kNone);
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_FALSE(gone.value().succeeded);
  EXPECT_FALSE(gone.value().current.has_value());
}

TEST_F(EtcdTest, RevisionsGrowWithEveryWrite) {
  EtcdClient etcd = client();
  std::vector<std::int64_t> revisions;
  auto put = etcd.put("a", "1");
  ASSERT_TRUE(put.ok()) << put.error().message;
  revisions.push_back(put.value());
  put = etcd.put("a", "2");
  ASSERT_TRUE(put.ok()) << put.error().message;
  revisions.push_back(put.value());
  auto erased = etcd.erase("a");
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_EQ(erased.value().deleted, 1);
  revisions.push_back(erased.value().revision);
  auto created = etcd.create_if_absent("a", "3", LeaseId::kNone);
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_TRUE(created.value().succeeded);
  revisions.push_back(created.value().revision);
  for (std::size_t i = 1; i < revisions.size(); ++i) {
    EXPECT_LT(revisions[i - 1], revisions[i]) << "write " << i;
  }
  auto got = etcd.get("a");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got.value().revision, revisions.back());
  EXPECT_EQ(got.value().kv->create_revision, revisions.back());
}

TEST_F(EtcdTest, RevokedLeaseTakesItsKeys) {
  EtcdClient etcd = client();
  auto lease = etcd.grant_lease(30);
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  EXPECT_GE(lease.value().ttl_s, 30);
  ASSERT_TRUE(etcd.put("leased", "x", lease.value().id).ok());
  auto got = etcd.get("leased");
  ASSERT_TRUE(got.ok() && got.value().kv.has_value());
  EXPECT_EQ(got.value().kv->lease, lease.value().id);

  auto alive = etcd.keep_alive(lease.value().id);
  ASSERT_TRUE(alive.ok()) << alive.error().message;
  EXPECT_GT(alive.value(), 0);

  auto revoked = etcd.revoke(lease.value().id);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(revoked.value());
  got = etcd.get("leased");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got.value().kv.has_value());

  alive = etcd.keep_alive(lease.value().id);
  ASSERT_TRUE(alive.ok()) << alive.error().message;
  EXPECT_EQ(alive.value(), 0);
  revoked = etcd.revoke(lease.value().id);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_FALSE(revoked.value()) << "a second revoke finds no lease";
}

TEST_F(EtcdTest, ExpiredLeaseTakesItsKeys) {
  EtcdClient etcd = client();
  auto lease = etcd.grant_lease(1);  // etcd may raise it to its minimum
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  ASSERT_GE(lease.value().ttl_s, 1);
  ASSERT_TRUE(etcd.put("ephemeral", "x", lease.value().id).ok());

  const auto deadline = Clock::now() + std::chrono::seconds(lease.value().ttl_s) + 3s;
  bool gone = false;
  while (!gone && Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    auto got = etcd.get("ephemeral");
    ASSERT_TRUE(got.ok()) << got.error().message;
    gone = !got.value().kv.has_value();
  }
  EXPECT_TRUE(gone) << "the key outlived its " << lease.value().ttl_s << " s lease by 3 s";
  auto alive = etcd.keep_alive(lease.value().id);
  ASSERT_TRUE(alive.ok()) << alive.error().message;
  EXPECT_EQ(alive.value(), 0);
}

TEST_F(EtcdTest, FailsOverFromAClosedPort) {
  ClosedPort closed;
  EtcdClient etcd({closed.endpoint(), etcd_->endpoint()}, 2000ms);
  auto put = etcd.put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message;
  auto got = etcd.get("k");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got.value().kv.has_value());
  EXPECT_EQ(got.value().kv->value, "v");
}

// An error message is one line of printable text.
void expect_one_line(const std::string& message) {
  EXPECT_TRUE(std::all_of(message.begin(), message.end(), [](char c) { return c >= 0x20; }))
      << message;
}

TEST(EtcdFailureTest, AllEndpointsClosedNamesEach) {
  ClosedPort a;
  ClosedPort b;
  EtcdClient etcd({a.endpoint(), b.endpoint()}, 1000ms);
  auto put = etcd.put("k", "v");
  ASSERT_FALSE(put.ok());
  const std::string& m = put.error().message;
  EXPECT_NE(m.find("etcd put"), std::string::npos) << m;
  EXPECT_NE(m.find(a.endpoint() + ": connect: Connection refused"), std::string::npos) << m;
  EXPECT_NE(m.find(b.endpoint() + ": connect: Connection refused"), std::string::npos) << m;
  expect_one_line(m);
}

TEST(EtcdFailureTest, MalformedEndpointsAndNoEndpointsAreErrors) {
  EtcdClient none({}, 1000ms);
  auto got = none.get("k");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message, "etcd get: no endpoints configured");

  EtcdClient bad({"localhost", "::1:2379", "127.0.0.1:99999", "[::1]x"}, 1000ms);
  got = bad.get("k");
  ASSERT_FALSE(got.ok());
  for (const char* e : {"localhost", "::1:2379", "127.0.0.1:99999", "[::1]x"}) {
    EXPECT_NE(got.error().message.find(std::string(e) + ": not HOST:PORT"), std::string::npos)
        << got.error().message;
  }
}

TEST(EtcdFailureTest, GarbageAnswersAreErrors) {
  struct Case {
    std::string reply;
    std::string expect;  // in the error message
  };
  const std::string ok = R"({"header":{"revision":"3"})";
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "not a JSON object: hello"},
      {http_reply("200 OK", "[1,2]"), "not a JSON object: [1,2]"},
      {http_reply("200 OK", "\x1b[31mred\n"), "not a JSON object: ?[31mred?"},
      {http_reply("200 OK", R"({"kvs":[]})"), "header: missing"},
      {http_reply("200 OK", R"({"header":{"revision":"12x"}})"), "header.revision: not an int64"},
      {http_reply("200 OK", R"({"header":{"revision":1.5}})"), "not an int64 but number"},
      {http_reply("200 OK", R"({"header":{"revision":"-3"}})"), "header.revision: negative"},
      {http_reply("200 OK", R"({"header":{"revision":"99999999999999999999"}})"), "not an int64"},
      {http_reply("200 OK", R"({"header":{"revision":18446744073709551615}})"),
       "out of the int64 range"},
      {http_reply("200 OK", R"({"header":[]})"), "header: not an object"},
      {http_reply("200 OK", ok + R"(,"kvs":"no"})"), "kvs: not an array"},
      {http_reply("200 OK", ok + R"(,"kvs":[7]})"), "kvs[0]: not an object"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":"!!!!"}]})"), "kvs[0].key: not base64"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":"aw="}]})"), "kvs[0].key: not base64"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":" aw=="}]})"), "kvs[0].key: not base64"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":"aw==","value":5}]})"),
       "kvs[0].value: not a base64 string"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":"eA=="}]})"), "not the key asked for"},
      {http_reply("200 OK", ok + R"(,"kvs":[{"key":"aw=="},{"key":"aw=="}]})"),
       "more than one key"},
      {http_reply("404 Not Found", R"({"error":"etcdserver: boom","code":5})"),
       "HTTP 404: etcdserver: boom (gRPC code 5)"},
      {http_reply("500 Internal Server Error", "<html>"), "HTTP 500: <html>"},
      {http_reply("200 OK", R"({"error":{"grpc_code":14,"message":"stream broke"}})"),
       "stream broke (gRPC code 14)"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", "body limit exceeded"},
      {"NOT HTTP AT ALL\r\n\r\n", "every endpoint failed"},
  };
  for (const Case& c : cases) {
    CannedServer server(c.reply);
    EtcdClient etcd({server.endpoint()}, 2000ms);
    auto got = etcd.get("k");
    ASSERT_FALSE(got.ok()) << c.reply;
    const std::string& m = got.error().message;
    EXPECT_NE(m.find(c.expect), std::string::npos) << "reply:\n" << c.reply << "\nerror: " << m;
    EXPECT_NE(m.find("etcd get"), std::string::npos) << m;
    EXPECT_NE(m.find(server.endpoint()), std::string::npos) << m;
    expect_one_line(m);
  }
}

TEST(EtcdFailureTest, SilentServerTimesOut) {
  CannedServer silent("");
  EtcdClient etcd({silent.endpoint()}, 300ms);
  const auto start = Clock::now();
  auto got = etcd.get("k");
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find(silent.endpoint() + ": read: timed out after 300 ms"),
            std::string::npos)
      << got.error().message;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(EtcdFailureTest, ReopensAConnectionTheServerClosed) {
  // The server closes every connection after one answer without saying so; the client's kept
  // connection is then dead, and its next call must reconnect rather than fail.
  CannedServer server(http_reply("200 OK", R"({"header":{"revision":"7"}})"));
  EtcdClient etcd({server.endpoint()}, 2000ms);
  for (int i = 0; i < 3; ++i) {
    auto got = etcd.get("k");
    ASSERT_TRUE(got.ok()) << "call " << i << ": " << got.error().message;
    EXPECT_FALSE(got.value().kv.has_value());
    EXPECT_EQ(got.value().revision, 7);
  }
  EXPECT_EQ(server.requests(), 3);
}

TEST(EtcdFailureTest, UnavailableAnswerFailsOver) {
  CannedServer no_leader(
      http_reply("503 Service Unavailable", R"({"error":"etcdserver: no leader","code":14})"));
  CannedServer healthy(http_reply("200 OK", R"({"header":{"revision":"9"}})"));
  EtcdClient etcd({no_leader.endpoint(), healthy.endpoint()}, 2000ms);
  auto put = etcd.put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put.value(), 9);

  EtcdClient alone({no_leader.endpoint()}, 2000ms);
  put = alone.put("k", "v");
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.error().message.find(no_leader.endpoint() +
                                     ": HTTP 503: etcdserver: no leader (gRPC code 14)"),
            std::string::npos)
      << put.error().message;
}

}  // namespace
}  // namespace qx::server
