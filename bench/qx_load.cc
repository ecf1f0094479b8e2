// qx_load: an open-loop load generator for the binary TCP protocol of `qx serve`.
//
//   qx_load --tcp 127.0.0.1:9090 --rate 100000 --seconds 10 --connections 8
//   qx_load --rate 0 --window 256 ...      # closed loop: as fast as the server answers
//
// Open loop (--rate R > 0): order k is due at t0 + k/R, whatever the server does; its latency
// is measured from that scheduled time to the arrival of its answer (orderResult), so a server
// that falls behind is charged for the queueing it causes (no coordinated omission). Orders go
// round-robin over the connections. Closed loop (--rate 0): each connection keeps --window orders
// in flight; latency is from the actual send.
//
// Workload: immediate-or-cancel limit orders of 1 lot on one instrument, alternating buy and
// sell at prices that never cross (buys below, sells above the demo's pre-settlement price), so
// every order is a full pre-trade risk check, a journaled event, a margin freeze and release,
// and an execution-free answer; the book stays empty and the run can last as long as wanted.
// Connections alternate between the demo traders alice and bob (password login once per user,
// then the returned token for the other connections). Sessions ask for no execution reports
// unless --executions is given.
//
// Prints offered and achieved orders/s, answers by kind, and order->ack latency percentiles over
// the measured interval (after --warmup seconds).
//
// A cluster (docs/cluster.md): before the load, one probe order (of the workload's kind) goes to
// --tcp; a follower answers notLeader naming the leader, and the load goes to that node instead
// (at most 4 redirects; "no leader yet" waits 200 ms and asks again). A notLeader during the run
// (a failover) counts as an error answer; the tool does not move mid-run.
//
// Why hand-written: it needs the protocol's framing and an open-loop schedule measured from the
// intended send time; wrk and similar tools speak HTTP only.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/wire_frame.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kSentinel = 0x5a17'c0de'5a17'c0deULL;

struct Options {
  std::string tcp = "127.0.0.1:9090";
  double rate = 100'000;
  double seconds = 10;
  double warmup = 2;
  int connections = 8;
  int window = 256;
  std::uint32_t instrument = 1;                      // cu2501 in the demo
  std::int64_t buy_price = 7000, sell_price = 8000;  // ticks; the demo's cu2501 is at 7500
  bool executions = false;
  std::string password_alice = "alice-demo-pw", password_bob = "bob-demo-pw";
};

void send_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) throw std::runtime_error("the server closed the connection");
    done += static_cast<std::size_t>(n);
  }
}

// A frame with kSentinel in its requestId and clientOrderId, and where they sit.
struct Template {
  std::string frame;
  std::vector<std::size_t> patch;
};

Template order_template(std::uint32_t account, const Options& o, bool buy) {
  capnp::MallocMessageBuilder m;
  auto msg = m.initRoot<qx::wire::ClientMessage>();
  msg.setRequestId(kSentinel);
  auto no = msg.getBody().initNewOrder();
  no.setAccount(account);
  no.setInstrument(o.instrument);
  no.setClientOrderId(kSentinel);
  no.setDirection(buy ? qx::schema::Direction::BUY : qx::schema::Direction::SELL);
  no.setPriceType(qx::schema::PriceType::LIMIT);
  no.setTimeCondition(qx::schema::TimeCondition::IOC);
  no.setPrice(buy ? o.buy_price : o.sell_price);
  no.setVolume(1);
  Template t;
  qx::wire::append_frame(t.frame, m);
  for (std::size_t i = 0; i + 8 <= t.frame.size(); ++i) {
    std::uint64_t v = 0;
    std::memcpy(&v, t.frame.data() + i, 8);
    if (v == kSentinel) t.patch.push_back(i);
  }
  if (t.patch.size() != 2) throw std::runtime_error("order template: sentinel not found twice");
  return t;
}

struct Conn {
  int fd = -1;
  std::uint32_t account = 0;
  qx::wire::FrameReader in{qx::wire::kServerFrameMax};
  std::string out;
  std::size_t out_pos = 0;
  std::array<Template, 2> orders;  // buy, sell
  int inflight = 0;
  std::uint64_t flip = 0;
};

// Reads one answer synchronously (login); throws on an error answer.
void read_answer(Conn& c, std::string* token, std::uint32_t* account) {
  std::array<char, 65536> buf{};
  while (true) {
    const auto st = c.in.next();
    if (st == qx::wire::FrameReader::Status::kFrame) {
      auto msg = c.in.message().getRoot<qx::wire::ServerMessage>();
      auto body = msg.getBody();
      if (body.isError()) {
        throw std::runtime_error(std::string("login: ") + body.getError().getMessage().cStr());
      }
      if (!body.isLoginOk()) continue;
      auto ok = body.getLoginOk();
      if (ok.getAccounts().size() == 0) throw std::runtime_error("login: user has no account");
      *account = ok.getAccounts()[0].getId();
      if (token != nullptr && ok.hasToken()) *token = ok.getToken();
      return;
    }
    if (st != qx::wire::FrameReader::Status::kNeedMore) throw std::runtime_error("bad frame");
    const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
    if (n <= 0) throw std::runtime_error("connection closed during login");
    c.in.feed(buf.data(), static_cast<std::size_t>(n));
  }
}

void login(Conn& c, const std::string& user, const std::string& password, std::string& token,
           bool executions) {
  capnp::MallocMessageBuilder m;
  auto msg = m.initRoot<qx::wire::ClientMessage>();
  msg.setRequestId(1);
  auto l = msg.getBody().initLogin();
  l.setNoExecutions(!executions);
  if (token.empty()) {
    l.initPassword().setUsername(user);
    l.getPassword().setPassword(password);
  } else {
    l.setToken(token);
  }
  std::string frame;
  qx::wire::append_frame(frame, m);
  send_all(c.fd, frame);
  read_answer(c, token.empty() ? &token : nullptr, &c.account);
}

// The node that takes orders: --tcp, or the leader a cluster's follower names (see above).
std::string find_leader(const Options& o) {
  std::string at = o.tcp;
  for (int redirects = 0, waits = 0; redirects <= 4 && waits <= 25;) {
    Conn c;
    c.fd = qx::wire::connect_tcp(at);
    std::string token;
    login(c, "alice", o.password_alice, token, false);
    Template t = order_template(c.account, o, true);
    const std::uint64_t rid = 2;
    for (std::size_t p : t.patch) std::memcpy(t.frame.data() + p, &rid, 8);
    send_all(c.fd, t.frame);
    std::array<char, 65536> buf{};
    while (true) {
      const auto st = c.in.next();
      if (st == qx::wire::FrameReader::Status::kNeedMore) {
        const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (n <= 0) throw std::runtime_error("connection closed during the probe order");
        c.in.feed(buf.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (st != qx::wire::FrameReader::Status::kFrame) throw std::runtime_error("bad frame");
      if (c.in.message().getRoot<qx::wire::ServerMessage>().getRequestId() == rid) break;
    }
    auto body = c.in.message().getRoot<qx::wire::ServerMessage>().getBody();
    ::close(c.fd);
    if (body.isOrderResult()) return at;
    if (!body.isNotLeader()) {
      const std::string why = body.isError() ? std::string(body.getError().getCode().cStr()) +
                                                   ": " + body.getError().getMessage().cStr()
                                             : std::string("an unexpected answer");
      throw std::runtime_error("the probe order was not taken: " + why);
    }
    const auto nl = body.getNotLeader();
    if (nl.getNode() == 0 || !nl.hasTcp()) {
      ++waits;
      ::usleep(200'000);
      continue;
    }
    at = nl.getTcp().cStr();
    ++redirects;
    std::fprintf(stderr, "qx_load: following the leader, node %u at %s\n", nl.getNode(),
                 at.c_str());
  }
  throw std::runtime_error("no node takes orders (too many notLeader answers)");
}

double percentile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return static_cast<double>(sorted[i]) / 1000.0;
}

int run(const Options& o) {
  const std::string server = find_leader(o);
  std::array<std::string, 2> tokens;
  std::vector<Conn> conns(static_cast<std::size_t>(o.connections));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    Conn& c = conns[i];
    c.fd = qx::wire::connect_tcp(server);
    const bool alice = i % 2 == 0;
    login(c, alice ? "alice" : "bob", alice ? o.password_alice : o.password_bob,
          tokens[alice ? 0 : 1], o.executions);
    c.orders = {order_template(c.account, o, true), order_template(c.account, o, false)};
    ::fcntl(c.fd, F_SETFL, O_NONBLOCK);
  }
  const bool open_loop = o.rate > 0;
  const auto total_ns = static_cast<std::int64_t>(o.seconds * 1e9);
  const auto warmup_ns = static_cast<std::int64_t>(o.warmup * 1e9);
  const double interval_ns = open_loop ? 1e9 / o.rate : 0;
  // Scheduled (or actual) send time of request k, indexed by k = requestId - 2.
  std::vector<std::int64_t> sent_at;
  sent_at.reserve(open_loop ? static_cast<std::size_t>(o.rate * (o.seconds + 1)) : 1 << 20);
  std::vector<std::int64_t> latencies;
  latencies.reserve(sent_at.capacity());
  std::uint64_t accepted = 0, rejected = 0, errors = 0, other = 0, answered_in_window = 0;
  std::uint64_t next = 0;
  std::vector<pollfd> pfds(conns.size());
  std::array<char, 1 << 16> buf{};

  const auto t0 = Clock::now();
  auto now_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  };
  auto queue_order = [&](Conn& c, std::int64_t at) {
    const std::uint64_t rid = next + 2;
    const Template& t = c.orders[c.flip++ % 2];
    const std::size_t start = c.out.size();
    c.out += t.frame;
    for (std::size_t p : t.patch) std::memcpy(c.out.data() + start + p, &rid, 8);
    sent_at.push_back(at);
    next += 1;
    c.inflight += 1;
  };

  std::int64_t now = 0;
  std::int64_t last_answer = 0;
  while (true) {
    now = now_ns();
    const bool sending = now < total_ns;
    if (sending && open_loop) {
      while (static_cast<double>(next) * interval_ns <= static_cast<double>(now)) {
        queue_order(conns[next % conns.size()],
                    static_cast<std::int64_t>(static_cast<double>(next) * interval_ns));
      }
    } else if (sending) {
      for (Conn& c : conns) {
        while (c.inflight < o.window) queue_order(c, now);
      }
    }
    if (!sending && next == accepted + rejected + errors) break;
    if (!sending && now > total_ns + 10'000'000'000) {
      std::fprintf(stderr, "qx_load: %llu answers missing after 10 s\n",
                   static_cast<unsigned long long>(next - accepted - rejected - errors));
      break;
    }
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if (c.out_pos < c.out.size()) {
        const ssize_t n =
            ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
        if (n > 0) c.out_pos += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) throw std::runtime_error("send failed");
        if (c.out_pos == c.out.size()) {
          c.out.clear();
          c.out_pos = 0;
        }
      }
      pfds[i] = pollfd{c.fd, POLLIN, 0};
    }
    // Wait for answers, but not past the next scheduled send (lateness of this tool counts
    // against the server: latency is measured from the schedule).
    std::int64_t wait_ns = 1'000'000;
    if (open_loop && sending) {
      const auto due =
          static_cast<std::int64_t>(static_cast<double>(next) * interval_ns) - now_ns();
      wait_ns = std::clamp<std::int64_t>(due, 0, 1'000'000);
    }
    const timespec ts{0, static_cast<long>(wait_ns)};
    if (::ppoll(pfds.data(), pfds.size(), &ts, nullptr) <= 0) continue;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Conn& c = conns[i];
      const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
      if (n <= 0) throw std::runtime_error("the server closed a connection");
      c.in.feed(buf.data(), static_cast<std::size_t>(n));
      const std::int64_t arrived = now_ns();
      while (c.in.next() == qx::wire::FrameReader::Status::kFrame) {
        auto msg = c.in.message().getRoot<qx::wire::ServerMessage>();
        const std::uint64_t rid = msg.getRequestId();
        auto body = msg.getBody();
        if (rid < 2) {
          other += 1;  // execution reports
          continue;
        }
        c.inflight -= 1;
        if (body.isOrderResult()) {
          (body.getOrderResult().getAccepted() ? accepted : rejected) += 1;
        } else {
          if (errors == 0 && body.isError()) {
            std::fprintf(stderr, "qx_load: first error answer: %s: %s\n",
                         body.getError().getCode().cStr(), body.getError().getMessage().cStr());
          } else if (errors == 0 && body.isNotLeader()) {
            std::fprintf(stderr, "qx_load: first error answer: notLeader: %s\n",
                         body.getNotLeader().getMessage().cStr());
          }
          errors += 1;
        }
        // Only order outcomes count as answered orders; refusals (overloaded, rate_limited) are
        // reported as errors and kept out of the throughput and the latencies.
        const std::int64_t at = sent_at[rid - 2];
        if (body.isOrderResult() && at >= warmup_ns && at < total_ns) {
          latencies.push_back(arrived - at);
          answered_in_window += 1;
        }
        last_answer = arrived;
      }
    }
  }
  (void)last_answer;
  std::sort(latencies.begin(), latencies.end());
  const double window_s = o.seconds - o.warmup;
  std::printf("workload: IOC 1-lot orders, instrument %u, %d connections, %s\n", o.instrument,
              o.connections,
              open_loop ? ("open loop at " + std::to_string(static_cast<long long>(o.rate)) +
                           " orders/s offered")
                              .c_str()
                        : ("closed loop, window " + std::to_string(o.window)).c_str());
  std::printf(
      "sent %llu, answers: accepted %llu, rejected %llu, errors %llu; other messages %llu\n",
      static_cast<unsigned long long>(next), static_cast<unsigned long long>(accepted),
      static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(errors),
      static_cast<unsigned long long>(other));
  std::printf("measured %.1f s (after %.1f s warm-up): %.0f orders/s answered\n", window_s,
              o.warmup, static_cast<double>(answered_in_window) / window_s);
  std::printf("order->ack latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              percentile(latencies, 0.50), percentile(latencies, 0.90), percentile(latencies, 0.99),
              percentile(latencies, 0.999), percentile(latencies, 1.0));
  for (Conn& c : conns) ::close(c.fd);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("qx_load: open-loop order load over the binary TCP protocol of qx serve --demo");
  app.add_option("--tcp", o.tcp, "Server HOST:PORT (default 127.0.0.1:9090)");
  app.add_option("--rate", o.rate, "Offered orders/s (open loop); 0 = closed loop")
      ->check(CLI::Range(0.0, 1e8));
  app.add_option("--seconds", o.seconds, "Sending time, warm-up included")
      ->check(CLI::Range(0.5, 3600.0));
  app.add_option("--warmup", o.warmup, "Seconds not measured at the start")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--connections", o.connections, "TCP connections (alternating alice, bob)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--window", o.window, "Closed loop: orders in flight per connection")
      ->check(CLI::Range(1, 100000));
  app.add_option("--instrument", o.instrument, "Instrument id (default 1, cu2501)");
  app.add_option("--buy-price", o.buy_price, "Buy price in ticks (default 7000)");
  app.add_option("--sell-price", o.sell_price, "Sell price in ticks (default 8000)");
  app.add_flag("--executions", o.executions, "Also receive execution reports");
  CLI11_PARSE(app, argc, argv);
  if (o.warmup >= o.seconds) {
    std::fprintf(stderr, "qx_load: --warmup must be shorter than --seconds\n");
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qx_load: %s\n", e.what());
    return 1;
  }
}
