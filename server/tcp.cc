#include "server/tcp.h"

#include <utility>  // before Asio (GCC 12 + Boost 1.74)
//
#include <capnp/message.h>
#include <kj/exception.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "server/gateway.h"
#include "server/listen.h"
#include "server/log.h"
#include "server/login.h"
#include "server/service.h"
#include "server/tcp_requests.h"
#include "server/tls.h"
#include "server/wire_frame.h"

namespace qx::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// True on the listener's I/O thread: a gateway answer that arrives there came synchronously
// (refused before the sequencer) and is handled at once, not batched with the sequencer's.
thread_local bool t_io_thread = false;

// Every byte of a Text field, NUL bytes included (a C-string conversion would stop at the first
// NUL and turn "alice\0x" into "alice").
std::string whole_text(capnp::Text::Reader t) {
  return std::string(t.begin(), t.size());
}

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One server message as a frame, built by `fill` on a fresh ServerMessage.
template <class F>
void append_message(std::string& out, std::uint64_t request_id, F&& fill) {
  // The first segment lives in zeroed per-thread scratch space (the builder zeroes what it used
  // when it is destroyed), so small messages cost no allocation.
  thread_local std::array<capnp::word, 512> scratch{};
  capnp::MallocMessageBuilder m(kj::arrayPtr(scratch.data(), scratch.size()));
  auto root = m.initRoot<wire::ServerMessage>();
  root.setRequestId(request_id);
  fill(root);
  wire::append_frame(out, m);
}

template <class F>
std::string message_frame(std::uint64_t request_id, F&& fill) {
  std::string out;
  append_message(out, request_id, std::forward<F>(fill));
  return out;
}

std::string error_frame(std::uint64_t request_id, const char* code, const std::string& message) {
  return message_frame(request_id, [&](wire::ServerMessage::Builder m) {
    auto e = m.getBody().initError();
    e.setCode(code);
    e.setMessage(message);
  });
}

// A follower's refusal of a write, from the sequencer's not-leader JSON body
// ({"error": "not_leader", "message", "leader": {"node", "http", "tcp"} or null}).
std::string not_leader_frame(std::uint64_t request_id, const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  return message_frame(request_id, [&](wire::ServerMessage::Builder m) {
    auto n = m.getBody().initNotLeader();
    n.setMessage("this node does not lead");
    if (!j.is_object()) return;
    if (j.contains("message") && j["message"].is_string()) {
      n.setMessage(j["message"].get<std::string>());
    }
    const auto& l = j.contains("leader") ? j["leader"] : nlohmann::json();
    if (l.is_object() && l.contains("node") && l["node"].is_number_unsigned() &&
        l.contains("tcp") && l["tcp"].is_string() && l.contains("http") && l["http"].is_string()) {
      n.setNode(l["node"].get<std::uint32_t>());
      n.setTcp(l["tcp"].get<std::string>());
      n.setHttp(l["http"].get<std::string>());
    }
  });
}

Reply frame_reply(std::string frame) {
  Reply r;
  r.body = std::move(frame);
  return r;
}

// What an effect means to one account's owner.
struct ExecRecord {
  core::UserId user{};
  std::uint64_t seq = 0;
  std::int64_t ts = 0;
  wire::ExecKind kind{};
  std::uint32_t account = 0, instrument = 0;
  std::uint64_t order = 0, client_order_id = 0, trade = 0;
  core::Direction direction{};
  core::Offset offset{};
  std::int64_t price = 0, volume = 0, volume_left = 0, fee = 0;
  std::uint16_t reason = 0;
  bool maker = false;
  std::int64_t trigger_price = 0;
};

struct TradeRecord {
  std::uint32_t instrument = 0;
  std::uint64_t seq = 0, trade = 0;
  std::int64_t ts = 0, price = 0, volume = 0;
  core::Direction aggressor{};
};

struct BookRecord {
  std::uint32_t instrument = 0;
  std::uint64_t seq = 0;
  std::int64_t ts = 0, last_price = 0, volume = 0;
  core::BookView book;
};

struct Batch {
  std::vector<ExecRecord> execs;
  std::vector<TradeRecord> trades;
  std::vector<BookRecord> books;
  [[nodiscard]] bool empty() const { return execs.empty() && trades.empty() && books.empty(); }
};

constexpr std::size_t kBookDepthMax = 10;

void fill_book(wire::Book::Builder b, const BookRecord& r, std::size_t depth) {
  b.setInstrument(r.instrument);
  b.setSeq(r.seq);
  b.setTimestampNs(r.ts);
  b.setLastPrice(r.last_price);
  b.setVolume(r.volume);
  auto bids = b.initBids(static_cast<unsigned>(std::min(depth, r.book.bids.size())));
  for (unsigned i = 0; i < bids.size(); ++i) {
    bids[i].setPrice(r.book.bids[i].price.value);
    bids[i].setVolume(r.book.bids[i].volume.value);
    bids[i].setOrders(r.book.bids[i].orders);
  }
  auto asks = b.initAsks(static_cast<unsigned>(std::min(depth, r.book.asks.size())));
  for (unsigned i = 0; i < asks.size(); ++i) {
    asks[i].setPrice(r.book.asks[i].price.value);
    asks[i].setVolume(r.book.asks[i].volume.value);
    asks[i].setOrders(r.book.asks[i].orders);
  }
}

BookRecord book_record(const core::Engine& e, core::InstrumentId id) {
  const auto& s = e.instrument(id);
  return BookRecord{core::raw(id),         core::raw(e.last_seq()),
                    e.last_timestamp_ns(), s.last_price ? s.last_price->value : 0,
                    s.volume_today.value,  e.book(id, kBookDepthMax)};
}

template <class E, class W>
std::optional<E> core_enum(W w, std::uint32_t max, E fallback) {
  const auto v = static_cast<std::uint32_t>(w);
  if (v == 0) return fallback;
  if (v > max) return std::nullopt;
  return static_cast<E>(v);
}

// Derives execution reports and market data from the sequencer's effects. Sequencer thread only,
// except the two counters the I/O thread keeps.
class Feed {
 public:
  std::atomic<int> sessions_logged_in{0};  // those that want execution reports
  std::atomic<int> book_subscriptions{0};

  // The resting orders' client ids and open volumes, which a trade's maker side needs.
  void seed(const core::Engine& e) {
    for (std::uint32_t a = 0; a < e.account_count(); ++a) {
      for (const core::OrderState& o : e.orders(core::AccountId(a))) {
        open_[core::raw(o.id)] = Open{core::raw(o.client_order_id), o.volume_left.value};
      }
    }
  }

  void on_event(const core::Event& ev, const core::EffectBuffer& fx, const core::Engine& e) {
    const bool report = sessions_logged_in.load(std::memory_order_relaxed) > 0;
    const std::uint64_t seq = core::raw(ev.header.seq);
    const std::int64_t ts = ev.header.timestamp_ns;
    for (const core::Effect& x : fx) {
      ExecRecord r;
      r.seq = seq;
      r.ts = ts;
      r.account = core::raw(x.account);
      r.instrument = core::raw(x.instrument);
      r.order = core::raw(x.order);
      r.client_order_id = core::raw(x.client_order_id);
      r.direction = x.direction;
      r.offset = x.offset;
      r.price = x.price.value;
      r.volume = x.volume.value;
      r.volume_left = x.volume_left.value;
      r.reason = x.reason;
      switch (x.kind) {
        case core::EffectKind::kOrderAccepted:
          r.kind = wire::ExecKind::ACCEPTED;
          open_[r.order] = Open{r.client_order_id, r.volume_left};
          break;
        case core::EffectKind::kOrderRejected:
          // Nothing changed in the book; the request may name ids that do not exist.
          r.kind = wire::ExecKind::REJECTED;
          if (report && r.account < e.account_count()) {
            r.user = e.account_state(x.account).user;
            execs_.push_back(r);
          }
          continue;
        case core::EffectKind::kOrderAmended:
          r.kind = wire::ExecKind::AMENDED;
          if (auto it = open_.find(r.order); it != open_.end()) {
            it->second.volume_left = r.volume_left;
            r.client_order_id = it->second.client_order_id;
          }
          break;
        case core::EffectKind::kOrderCancelled:
          r.kind = wire::ExecKind::CANCELLED;
          open_.erase(r.order);
          break;
        case core::EffectKind::kStopAccepted:
        case core::EffectKind::kStopTriggered:
          r.kind = x.kind == core::EffectKind::kStopAccepted ? wire::ExecKind::STOP_ACCEPTED
                                                             : wire::ExecKind::STOP_TRIGGERED;
          r.trigger_price = x.amount.value;
          r.reason = 0;
          break;
        case core::EffectKind::kTrade: {
          r.kind = wire::ExecKind::TRADE;
          r.trade = core::raw(x.trade);
          r.fee = x.amount.value;
          settle_fill(r.order, x.volume.value);
          trades_.push_back(
              TradeRecord{r.instrument, seq, r.trade, ts, r.price, r.volume, x.direction});
          // The resting side.
          ExecRecord m = r;
          m.account = core::raw(x.counter_account);
          m.order = core::raw(x.counter_order);
          m.direction =
              x.direction == core::Direction::kBuy ? core::Direction::kSell : core::Direction::kBuy;
          m.offset = x.counter_offset;
          m.fee = x.amount2.value;
          m.maker = true;
          if (auto it = open_.find(m.order); it != open_.end()) {
            m.client_order_id = it->second.client_order_id;
            m.volume_left = it->second.volume_left - x.volume.value;
          } else {
            m.client_order_id = 0;
            m.volume_left = 0;
          }
          settle_fill(m.order, x.volume.value);
          if (report) {
            m.user = e.account_state(x.counter_account).user;
            execs_.push_back(m);
          }
          break;
        }
        default: continue;  // admin effects are not execution reports
      }
      touch(r.instrument);
      if (report) {
        r.user = e.account_state(x.account).user;
        execs_.push_back(r);
      }
    }
  }

  // At a commit: what the I/O thread should publish (books only when someone watches books).
  Batch take(const core::Engine& e) {
    Batch b;
    b.execs.swap(execs_);
    b.trades.swap(trades_);
    if (book_subscriptions.load(std::memory_order_relaxed) > 0) {
      for (std::uint32_t id : dirty_) b.books.push_back(book_record(e, core::InstrumentId(id)));
    }
    for (std::uint32_t id : dirty_) dirty_flag_[id] = false;
    dirty_.clear();
    return b;
  }

 private:
  struct Open {
    std::uint64_t client_order_id;
    std::int64_t volume_left;
  };

  void touch(std::uint32_t instrument) {
    if (instrument >= dirty_flag_.size()) dirty_flag_.resize(instrument + 1, false);
    if (!dirty_flag_[instrument]) {
      dirty_flag_[instrument] = true;
      dirty_.push_back(instrument);
    }
  }

  void settle_fill(std::uint64_t order, std::int64_t volume) {
    auto it = open_.find(order);
    if (it == open_.end()) return;
    it->second.volume_left -= volume;
    if (it->second.volume_left <= 0) open_.erase(it);
  }

  // Lookups only; never iterated, so its order cannot reach any output.
  std::unordered_map<std::uint64_t, Open> open_;
  std::vector<ExecRecord> execs_;
  std::vector<TradeRecord> trades_;
  std::vector<std::uint32_t> dirty_;
  std::vector<bool> dirty_flag_;
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void publish(const Batch& batch) = 0;
  virtual void shutdown() = 0;
  [[nodiscard]] virtual bool idle() const = 0;
  // Every half second: deadlines (TLS handshake and login, idle) and token revocation.
  virtual void tick(Clock::time_point now, std::uint64_t auth_revision) = 0;
};

struct Shared {
  Sequencer& seq;
  Auth& auth;
  Metrics& metrics;
  TcpOptions options;
  Feed& feed;
  LoginGate& login;  // argon2id password checks, back-off, bounded queue
  Gateway gateway;   // orders, amends and cancels: the same checks as REST and DIFF
  // Answers of the current sequencer batch, handed to the I/O thread together after it
  // (Sequencer::add_after_batch). Sequencer thread only.
  std::vector<std::function<void()>> answers;
  LogThrottle log_throttle{5};  // client-caused warnings: at most 5 lines a second
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  Session(Stream stream, Shared& shared, std::optional<ConnectionSlot> slot)
      : stream_(std::move(stream)),
        s_(shared),
        in_(shared.options.frame_bytes_max),
        slot_(std::move(slot)),
        opened_(Clock::now()),
        last_read_(opened_) {
    s_.metrics.tcp_connection_opened();
  }
  ~Session() noexcept override {
    if (logged_in_ && executions_) s_.feed.sessions_logged_in.fetch_sub(1);
    s_.feed.book_subscriptions.fetch_sub(static_cast<int>(book_subs_));
    s_.metrics.tcp_connection_closed();
  }

  void start() {
    boost::system::error_code ec;
    const auto remote = stream_.lowest_layer().remote_endpoint(ec);
    peer_ip_ = ec ? std::string() : remote.address().to_string();
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](
                                                                  boost::system::error_code e) {
        if (e) {
          self->log_handshake_failure(e);
          return self->shutdown();
        }
        self->cert_user_ =
            certificate_user(self->s_.options.tls->settings(), self->stream_.native_handle());
        self->read();
      });
    } else {
      read();
    }
  }

  void tick(Clock::time_point now, std::uint64_t auth_revision) override {
    if (closed_) return;
    const auto& o = s_.options;
    if (!who_ && now - opened_ > o.login_timeout) {
      // No TLS handshake, or no login, in time; pings do not keep such a session alive.
      return cut("idle", "log in within " + std::to_string(o.login_timeout.count()) + " ms");
    }
    if (who_ && now - last_read_ > o.idle_timeout) {
      return cut("idle", "nothing received for " + std::to_string(o.idle_timeout.count()) +
                             " ms (send ping to keep a session open)");
    }
    if (who_ && (auth_revision != auth_revision_ || now >= expires_at_)) {
      auth_revision_ = auth_revision;
      if (!s_.auth.verify(token_)) cut("revoked", "the session's token was revoked or expired");
    }
  }

  void publish(const Batch& batch) override {
    if (closed_ || !who_) return;
    for (const ExecRecord& r : batch.execs) {
      if (!executions_ || r.user != user_) continue;
      append_message(out_, 0, [&](wire::ServerMessage::Builder m) {
        auto x = m.getBody().initExecution();
        x.setSeq(r.seq);
        x.setTimestampNs(r.ts);
        x.setKind(r.kind);
        x.setAccount(r.account);
        x.setInstrument(r.instrument);
        x.setOrderId(r.order);
        x.setClientOrderId(r.client_order_id);
        x.setDirection(static_cast<schema::Direction>(r.direction));
        x.setOffset(static_cast<schema::Offset>(r.offset));
        x.setPrice(r.price);
        x.setVolume(r.volume);
        x.setVolumeLeft(r.volume_left);
        x.setTradeId(r.trade);
        x.setFee(r.fee);
        x.setReason(r.reason);
        x.setMaker(r.maker);
        x.setTriggerPrice(r.trigger_price);
      });
    }
    for (const TradeRecord& t : batch.trades) {
      auto it = subs_.find(t.instrument);
      if (it == subs_.end() || !it->second.trades) continue;
      append_message(out_, 0, [&](wire::ServerMessage::Builder m) {
        auto p = m.getBody().initTrade();
        p.setInstrument(t.instrument);
        p.setSeq(t.seq);
        p.setTimestampNs(t.ts);
        p.setTradeId(t.trade);
        p.setPrice(t.price);
        p.setVolume(t.volume);
        p.setAggressor(static_cast<schema::Direction>(t.aggressor));
      });
    }
    for (const BookRecord& b : batch.books) {
      auto it = subs_.find(b.instrument);
      if (it == subs_.end() || it->second.depth == 0) continue;
      // Conflation: while a write is in flight only the newest book per instrument waits.
      std::string frame = message_frame(0, [&](wire::ServerMessage::Builder m) {
        fill_book(m.getBody().initBook(), b, it->second.depth);
      });
      if (writing_) {
        pending_books_[b.instrument] = std::move(frame);
      } else {
        out_ += frame;
      }
    }
    flush();
  }

  void shutdown() override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    auto& sock = stream_.lowest_layer();
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
  }

  [[nodiscard]] bool idle() const override { return closed_ || (!writing_ && out_.empty()); }

 private:
  static constexpr std::size_t kSubscriptionsMax = 1000;
  struct Sub {
    std::size_t depth = 0;
    bool trades = false;
  };

  void read() {
    if (closed_ || reading_) return;
    reading_ = true;
    stream_.async_read_some(asio::buffer(rbuf_), [self = this->shared_from_this()](
                                                     boost::system::error_code ec, std::size_t n) {
      self->reading_ = false;
      if (ec) return self->shutdown();
      self->last_read_ = Clock::now();
      self->in_.feed(self->rbuf_.data(), n);
      try {
        self->drain();
      } catch (const std::exception& e) {
        // Nothing a client sends may escape this handler: end the session, keep the server.
        self->protocol_error(0, std::string("the request failed: ") + e.what());
      }
    });
  }

  // Decodes and handles every complete frame, then reads on unless backpressure says wait.
  void drain() {
    while (!closed_ && !closing_) {
      // Requests behind a login wait for it; the rest wait while the sequencer is behind.
      if (login_pending_ || inflight_ >= s_.options.inflight_max ||
          out_.size() > s_.options.out_bytes_max / 2) {
        return;  // resumed by on_answer(), the login's end or the write completion
      }
      const auto st = in_.next();
      if (st == wire::FrameReader::Status::kNeedMore) break;
      if (st == wire::FrameReader::Status::kTooLarge) {
        return protocol_error(
            0, "frame longer than " + std::to_string(s_.options.frame_bytes_max) + " bytes");
      }
      if (st == wire::FrameReader::Status::kMalformed) {
        return protocol_error(0, "frame is not a Cap'n Proto message");
      }
      std::uint64_t request_id = 0;
      try {
        auto msg = in_.message().getRoot<wire::ClientMessage>();
        request_id = msg.getRequestId();
        handle(msg);
      } catch (const kj::Exception& e) {
        return protocol_error(request_id,
                              "undecodable message: " + std::string(e.getDescription().cStr()));
      } catch (const std::exception& e) {
        return protocol_error(request_id, std::string("the request failed: ") + e.what());
      }
    }
    if (!closed_ && !closing_) read();
  }

  void log_handshake_failure(const boost::system::error_code& ec) {
    std::uint64_t dropped = 0;
    if (!s_.log_throttle.allow(steady_now_ns(), dropped)) return;
    boost::system::error_code no_peer;
    const auto remote = stream_.lowest_layer().remote_endpoint(no_peer);
    log_event(LogLevel::kWarn, "tls_handshake_failed",
              {{"listener", "binary_tcp"},
               {"ip", no_peer ? std::string() : remote.address().to_string()},
               {"reason", ec.message()},
               {"suppressed", dropped}});
  }

  // Ends the session with an error message (sent first, if the client still reads).
  void cut(const char* cause, const std::string& why) {
    s_.metrics.tcp_disconnect(cause);
    out_ += error_frame(0, cause, why);
    closing_ = true;
    flush();
    if (!closed_ && writing_) return;  // closes once written
    shutdown();
  }

  void protocol_error(std::uint64_t request_id, const std::string& why) {
    s_.metrics.tcp_disconnect("protocol");
    if (std::uint64_t dropped = 0; s_.log_throttle.allow(steady_now_ns(), dropped)) {
      log_event(LogLevel::kWarn, "tcp_protocol_error",
                {{"error", why}, {"request_id", request_id}, {"suppressed", dropped}});
    }
    out_ += error_frame(request_id, "protocol", why);
    closing_ = true;  // stop reading; close once the error is written
    flush();
  }

  void send(std::string frame) {
    out_ += frame;
    flush();
  }

  void answer_error(std::uint64_t rid, const char* code, const std::string& message) {
    send(error_frame(rid, code, message));
  }

  // Posts a job whose Reply goes to on_answer() on this session's I/O thread; `then` runs there
  // first.
  using Then = std::function<void(Session&, const Reply&)>;
  void post(std::uint64_t rid, Sequencer::Job job, bool order, Then then = {}) {
    inflight_ += 1;
    auto self = this->shared_from_this();
    const auto received = received_;
    Shared* shared = &s_;
    const bool queued =
        s_.seq.post(std::move(job), [self, shared, rid, order, received, then](Reply rep) {
          shared->answers.emplace_back(
              [self, rid, order, received, then, rep = std::move(rep)]() mutable {
                if (then) then(*self, rep);
                self->on_answer(rid, order, received, std::move(rep));
              });
        });
    if (!queued) {
      inflight_ -= 1;
      if (then) then(*this, Reply{503, {}});
      answer_error(rid, "overloaded", "the sequencer queue is full; retry later");
    }
  }

  void on_answer(std::uint64_t rid, bool order, Clock::time_point received, Reply rep) {
    inflight_ -= 1;
    if (order) s_.metrics.order_ack_seconds(Clock::now() - received);
    if (!closed_) {
      if (rep.status == 200) {
        send(std::move(rep.body));
      } else if (rep.status == 421) {
        send(not_leader_frame(rid, rep.body));
      } else {
        // A JSON error_reply from the job (or the sequencer's 500): pass its code and message.
        const auto j = nlohmann::json::parse(rep.body, nullptr, false);
        const bool shaped = j.is_object() && j.contains("error") && j["error"].is_string() &&
                            j.contains("message") && j["message"].is_string();
        answer_error(rid, shaped ? j["error"].get<std::string>().c_str() : "internal",
                     shaped ? j["message"].get<std::string>() : "the request failed");
      }
    }
    if (!reading_) drain();
  }

  // Sends the gateway's answer to an order request (on the I/O thread).
  void on_order(std::uint64_t rid, Clock::time_point received, const OrderResult& r) {
    inflight_ -= 1;
    s_.metrics.order_ack_seconds(Clock::now() - received);
    if (!closed_) {
      if (r.error && r.error->code == GateCode::kNotLeader) {
        send(not_leader_frame(rid, s_.seq.not_leader_body()));
      } else if (r.error) {
        answer_error(rid, gate_code_name(r.error->code), r.error->message);
      } else {
        append_message(out_, rid, [&](wire::ServerMessage::Builder m) {
          auto x = m.getBody().initOrderResult();
          x.setSeq(r.seq);
          const bool accepted = r.status != OrderStatus::kRejected;
          x.setAccepted(accepted);
          x.setRejectCode(r.reject_code);
          if (!accepted) {
            x.setReason(core::to_string(static_cast<core::RejectReason>(r.reject_code)));
          }
          x.setOrderId(r.order_id);
          x.setClientOrderId(r.client_order_id);
        });
        flush();
      }
    }
    if (!reading_) drain();
  }

  // The gateway's answer comes back here: at once when refused on this thread, otherwise with
  // the sequencer batch's other answers.
  Gateway::Done order_done(std::uint64_t rid) {
    inflight_ += 1;
    auto self = this->shared_from_this();
    Shared* shared = &s_;
    return [self, shared, rid, received = received_](OrderResult r) {
      if (t_io_thread) return self->on_order(rid, received, r);
      shared->answers.emplace_back(
          [self, rid, received, r = std::move(r)] { self->on_order(rid, received, r); });
    };
  }

  void handle(wire::ClientMessage::Reader msg) {
    received_ = Clock::now();
    const std::uint64_t rid = msg.getRequestId();
    auto body = msg.getBody();
    using W = wire::ClientMessage::Body;
    if (body.which() == W::PING) {
      return send(
          message_frame(rid, [](wire::ServerMessage::Builder m) { m.getBody().setPong(); }));
    }
    if (body.which() == W::LOGIN) return login(rid, body.getLogin());
    if (body.which() == W::NONE) return protocol_error(rid, "a request needs a body");
    if (!who_) return answer_error(rid, "unauthorized", "log in first");
    if (s_.options.rate != nullptr) {
      const auto now =
          std::chrono::duration_cast<std::chrono::nanoseconds>(received_.time_since_epoch());
      if (!s_.options.rate->try_take(who_->user, now.count())) {
        s_.metrics.rate_limited();
        return answer_error(rid, "rate_limited",
                            "over " + std::to_string(s_.options.rate->limit().per_s) +
                                " requests/s for this user; nothing was done");
      }
    }
    switch (body.which()) {
      case W::NEW_ORDER: return new_order(rid, body.getNewOrder());
      case W::AMEND: return amend(rid, body.getAmend());
      case W::CANCEL: return cancel(rid, body.getCancel());
      case W::SUBSCRIBE: return subscribe(rid, body.getSubscribe());
      case W::UNSUBSCRIBE: return unsubscribe(rid, body.getUnsubscribe());
      case W::INSTRUMENTS: return instruments(rid);
      case W::ACCOUNT: return query_account(rid, body.getAccount(), false);
      case W::ORDERS: return query_account(rid, body.getOrders(), true);
      default: return protocol_error(rid, "unknown request");
    }
  }

  void login(std::uint64_t rid, wire::Login::Reader l) {
    if (who_ || login_pending_) return answer_error(rid, "bad_request", "already logged in");
    executions_ = !l.getNoExecutions();
    if (l.isToken()) {
      const std::string token = whole_text(l.getToken());
      auto p = s_.auth.verify(token);
      if (!p) return answer_error(rid, "unauthorized", "bad or expired token");
      return resolve_login(rid, *p, token, false);
    }
    const std::string user = whole_text(l.getPassword().getUsername());
    const std::string password = whole_text(l.getPassword().getPassword());
    login_pending_ = true;
    auto self = this->shared_from_this();
    auto executor = stream_.get_executor();
    s_.login.login(user, password, peer_ip_, [self, executor, rid](LoginOutcome o) {
      asio::post(executor, [self, rid, o = std::move(o)] {
        self->login_pending_ = false;
        if (o.error == LoginError::kNone)
          return self->resolve_login(rid, o.principal, o.token, true);
        self->answer_error(
            rid, o.error == LoginError::kBadCredentials ? "unauthorized" : error_name(o.error),
            o.message);
        if (!self->reading_) self->drain();
      });
    });
  }

  // The user's id and accounts come from the engine, on the sequencer thread.
  void resolve_login(std::uint64_t rid, const Principal& p, const std::string& token,
                     bool send_token) {
    if (cert_user_ && *cert_user_ != p.user) {
      return answer_error(rid, "forbidden", "the user is not the client certificate's user");
    }
    login_pending_ = true;
    auto user = std::make_shared<std::optional<core::UserId>>();
    post(
        rid,
        [p, user, rid, token, send_token](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          *user = e.find_user(p.user);
          if (!*user) return error_reply(403, "forbidden", "the user is not in the engine");
          return frame_reply(message_frame(rid, [&](wire::ServerMessage::Builder m) {
            auto ok = m.getBody().initLoginOk();
            ok.setUser(p.user);
            ok.setRole(to_string(p.role));
            ok.setVersion(wire::WIRE_VERSION);
            ok.setCurrency(e.currency());
            ok.setMoneyDecimals(e.money_decimals());
            if (send_token) ok.setToken(token);
            std::vector<std::pair<std::uint32_t, std::string>> mine;
            for (std::uint32_t i = 0; i < e.account_count(); ++i) {
              const auto& a = e.account_state(core::AccountId(i));
              if (a.user == **user) mine.emplace_back(i, a.name);
            }
            auto list = ok.initAccounts(static_cast<unsigned>(mine.size()));
            for (unsigned i = 0; i < mine.size(); ++i) {
              list[i].setId(mine[i].first);
              list[i].setName(mine[i].second);
            }
          }));
        },
        false,
        [p, user, token](Session& self, const Reply& rep) {
          self.login_pending_ = false;
          if (rep.status != 200 || !*user) return;
          self.who_ = p;
          self.token_ = token;
          self.auth_revision_ = self.s_.auth.revision();
          self.expires_at_ = Clock::now() + std::chrono::seconds(std::max<std::int64_t>(
                                                0, p.expires_s - unix_now_s()));
          self.user_ = **user;
          self.logged_in_ = true;
          if (self.executions_) self.s_.feed.sessions_logged_in.fetch_add(1);
        });
  }

  // Orders: decoded here, checked, authorised and submitted by the gateway.

  void new_order(std::uint64_t rid, wire::NewOrder::Reader r) {
    s_.gateway.submit(order_request(*who_, r), order_done(rid));
  }

  void amend(std::uint64_t rid, wire::Amend::Reader r) {
    s_.gateway.amend(amend_request(*who_, r), order_done(rid));
  }

  void cancel(std::uint64_t rid, wire::Cancel::Reader r) {
    s_.gateway.cancel(cancel_request(*who_, r), order_done(rid));
  }

  // Market data and queries.

  void subscribe(std::uint64_t rid, wire::Subscribe::Reader r) {
    const std::size_t depth = r.getDepth();
    if (depth != 0 && depth != 1 && depth != 5 && depth != 10) {
      return answer_error(rid, "bad_request", "depth must be 0, 1, 5 or 10");
    }
    const std::uint32_t id = r.getInstrument();
    const bool trades = r.getTrades();
    if (subs_.count(id) == 0 && subs_.size() >= kSubscriptionsMax) {
      return answer_error(rid, "bad_request", "at most 1000 subscriptions per session");
    }
    post(
        rid,
        [id, depth, rid](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          if (id >= e.instrument_count()) {
            return error_reply(404, "unknown_instrument", "no such instrument id");
          }
          std::string out = message_frame(
              rid, [&](wire::ServerMessage::Builder m) { m.getBody().setSubscribed(id); });
          if (depth > 0) {
            const BookRecord b = book_record(e, core::InstrumentId(id));
            append_message(out, 0, [&](wire::ServerMessage::Builder m) {
              fill_book(m.getBody().initBook(), b, depth);
            });
          }
          return frame_reply(std::move(out));
        },
        false);
    // Watch from now on; a book that changes before the snapshot above is answered arrives
    // after it, in journal order, because both come from the sequencer thread in order.
    Sub& sub = subs_[id];
    if (sub.depth == 0 && depth > 0) {
      book_subs_ += 1;
      s_.feed.book_subscriptions.fetch_add(1);
    } else if (sub.depth > 0 && depth == 0) {
      book_subs_ -= 1;
      s_.feed.book_subscriptions.fetch_sub(1);
    }
    sub = Sub{depth, trades};
  }

  void unsubscribe(std::uint64_t rid, std::uint32_t id) {
    if (auto it = subs_.find(id); it != subs_.end()) {
      if (it->second.depth > 0) {
        book_subs_ -= 1;
        s_.feed.book_subscriptions.fetch_sub(1);
      }
      subs_.erase(it);
    }
    send(message_frame(rid, [](wire::ServerMessage::Builder m) { m.getBody().setPong(); }));
  }

  void instruments(std::uint64_t rid) {
    post(
        rid,
        [rid](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          return frame_reply(message_frame(rid, [&](wire::ServerMessage::Builder m) {
            auto list = m.getBody().initInstruments(static_cast<unsigned>(e.instrument_count()));
            for (unsigned i = 0; i < list.size(); ++i) {
              const auto& s = e.instrument(core::InstrumentId(i));
              auto x = list[i];
              x.setId(i);
              x.setCode(s.code);
              x.setExchange(s.exchange);
              x.setStatus(static_cast<schema::InstrumentStatus>(s.status));
              x.setPriceTickE8(s.params.price_tick_e8);
              x.setMultiplierE8(s.params.multiplier_e8);
              x.setMaxOrderVolume(s.params.max_order_volume.value);
              x.setPreSettlement(s.pre_settlement.value);
            }
          }));
        },
        false);
  }

  void query_account(std::uint64_t rid, std::uint32_t account, bool orders) {
    const Principal p = *who_;
    const core::UserId user = user_;
    post(
        rid,
        [rid, account, orders, p, user](Sequencer::Ctx& c) {
          const auto& e = c.engine();
          const auto a = core::AccountId(account);
          const bool reader = p.role == Role::kAdmin || p.role == Role::kAuditor;
          if (account >= e.account_count()) {
            return error_reply(404, "unknown_account", "no such account id");
          }
          if (!reader && e.account_state(a).user != user) {
            return error_reply(403, "forbidden", "the account is not yours");
          }
          return frame_reply(message_frame(rid, [&](wire::ServerMessage::Builder m) {
            if (orders) {
              const auto list = e.orders(a);
              auto out = m.getBody().initOrders(static_cast<unsigned>(list.size()));
              for (unsigned i = 0; i < list.size(); ++i) {
                const auto& o = list[i];
                auto x = out[i];
                x.setOrderId(core::raw(o.id));
                x.setClientOrderId(core::raw(o.client_order_id));
                x.setInstrument(core::raw(o.instrument));
                x.setDirection(static_cast<schema::Direction>(o.direction));
                x.setOffset(static_cast<schema::Offset>(o.offset));
                x.setPriceType(static_cast<schema::PriceType>(o.price_type));
                x.setTimeCondition(static_cast<schema::TimeCondition>(o.time_condition));
                x.setPrice(o.price.value);
                x.setVolume(o.volume_orig.value);
                x.setVolumeLeft(o.volume_left.value);
                x.setInsertTimeNs(o.insert_time_ns);
              }
              return;
            }
            const core::AccountView v = e.account(a);
            auto x = m.getBody().initAccount();
            x.setId(account);
            x.setName(std::string(v.name));
            x.setPreBalance(v.pre_balance.value);
            x.setDeposit(v.deposit.value);
            x.setWithdraw(v.withdraw.value);
            x.setCloseProfit(v.close_profit.value);
            x.setCommission(v.commission.value);
            x.setPositionProfit(v.position_profit.value);
            x.setBalance(v.balance.value);
            x.setMargin(v.margin.value);
            x.setFrozenMargin(v.frozen_margin.value);
            x.setFrozenCommission(v.frozen_commission.value);
            x.setAvailable(v.available.value);
            x.setRiskRatioPpb(v.risk_ratio_ppb);
          }));
        },
        false);
  }

  void flush() {
    // The cap counts what waits and what is being written, on every append (each append ends
    // here), so a reader that stops reading is cut while a write is still in flight.
    if (!closed_ && out_.size() + wbuf_.size() > s_.options.out_bytes_max) {
      s_.metrics.tcp_disconnect("slow_consumer");
      if (std::uint64_t dropped = 0; s_.log_throttle.allow(steady_now_ns(), dropped)) {
        log_event(LogLevel::kWarn, "tcp_slow_consumer",
                  {{"user", who_ ? who_->user : ""},
                   {"unsent_bytes", out_.size()},
                   {"suppressed", dropped}});
      }
      return shutdown();
    }
    if (closed_ || writing_ || out_.empty()) {
      if (closing_ && !writing_ && out_.empty()) shutdown();
      return;
    }
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    asio::async_write(stream_, asio::buffer(wbuf_),
                      [self = this->shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        self->wbuf_.clear();
                        if (ec) return self->shutdown();
                        for (auto& [id, frame] : self->pending_books_) self->out_ += frame;
                        self->pending_books_.clear();
                        self->flush();
                        if (!self->reading_ && !self->closing_) self->drain();
                      });
  }

  Stream stream_;
  Shared& s_;
  wire::FrameReader in_;
  std::array<char, 16 << 10> rbuf_{};
  std::string out_, wbuf_;
  std::optional<ConnectionSlot> slot_;  // the connection's place under max_connections_per_ip
  std::map<std::uint32_t, std::string> pending_books_;
  std::map<std::uint32_t, Sub> subs_;
  std::size_t book_subs_ = 0;
  std::optional<Principal> who_;
  std::string token_;  // re-verified when the users file changes, and at expiry
  std::uint64_t auth_revision_ = 0;
  Clock::time_point expires_at_{};
  std::string peer_ip_;
  std::optional<std::string> cert_user_;  // the client certificate's user (tls_client_users)
  Clock::time_point opened_, last_read_;
  core::UserId user_{};
  Clock::time_point received_{};
  std::size_t inflight_ = 0;
  bool logged_in_ = false;
  bool executions_ = true;
  bool login_pending_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace

struct TcpServer::Impl {
  Impl(Sequencer& s, Auth& a, Metrics& m, LoginGate& l, const TcpOptions& o)
      : shared{s, a, m, o, feed, l, Gateway(s), {}},
        acceptor(io),
        loop(acceptor, o.connections, m, "binary_tcp",
             [this](tcp::socket socket, std::optional<ConnectionSlot> slot) {
               if (shared.options.tls) {
                 serve(asio::ssl::stream<tcp::socket>(std::move(socket),
                                                      *shared.options.tls->current()),
                       std::move(slot));
               } else {
                 serve(std::move(socket), std::move(slot));
               }
             }) {}

  template <class Stream>
  void serve(Stream stream, std::optional<ConnectionSlot> slot) {
    auto session = std::make_shared<Session<Stream>>(std::move(stream), shared, std::move(slot));
    std::erase_if(sessions, [](const std::weak_ptr<SessionBase>& w) { return w.expired(); });
    sessions.push_back(session);
    session->start();
  }

  // The shared accept loop (server/listen.h): limits, backoff when out of descriptors.
  void accept() { loop.start(); }

  void publish(const Batch& b) {
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->publish(b);
    }
  }

  // Deadlines and revocation, every half second (so a revoked token's sessions close within 1 s).
  void tick() {
    ticker.expires_after(std::chrono::milliseconds(500));
    ticker.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      const auto now = Clock::now();
      const std::uint64_t revision = shared.auth.revision();
      std::erase_if(sessions, [](const std::weak_ptr<SessionBase>& w) { return w.expired(); });
      for (auto& w : sessions) {
        if (auto s = w.lock()) s->tick(now, revision);
      }
      tick();
    });
  }

  // Declared before the io_context, so that sessions still owned by its handlers when it is
  // destroyed can reach what they refer to.
  Feed feed;
  Shared shared;
  asio::io_context io{1};
  asio::steady_timer ticker{io};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor;
  AcceptLoop loop;  // after the io_context and the acceptor it uses
  std::thread thread;
  std::vector<std::weak_ptr<SessionBase>> sessions;  // I/O thread only
};

TcpServer::TcpServer(Sequencer& sequencer, Auth& auth, Metrics& metrics, LoginGate& login,
                     const TcpOptions& options)
    : impl_(std::make_unique<Impl>(sequencer, auth, metrics, login, options)) {
  listen_on(impl_->acceptor, options.address, options.port);
  impl_->feed.seed(sequencer.engine());
  Impl* impl = impl_.get();
  sequencer.add_event_listener([impl](const core::Event& ev, const core::EffectBuffer& fx,
                                      const core::Engine& e) { impl->feed.on_event(ev, fx, e); });
  sequencer.add_after_batch([impl] {
    if (impl->shared.answers.empty()) return;
    asio::post(impl->io, [answers = std::move(impl->shared.answers)]() mutable {
      for (auto& answer : answers) answer();
    });
    impl->shared.answers.clear();
  });
  sequencer.add_on_release([impl](const core::Engine& e) -> std::function<void()> {
    auto batch = std::make_shared<Batch>(impl->feed.take(e));
    if (batch->empty()) return {};
    return [impl, batch] { asio::post(impl->io, [impl, batch] { impl->publish(*batch); }); };
  });
}

TcpServer::~TcpServer() {
  if (impl_->thread.joinable()) stop();
}

std::uint16_t TcpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

bool TcpServer::tls() const {
  return impl_->shared.options.tls != nullptr;
}

void TcpServer::start() {
  log_event(LogLevel::kInfo, "listening",
            {{"listener", "binary_tcp"},
             {"address", impl_->shared.options.address},
             {"port", port()},
             {"tls", tls()}});
  impl_->accept();
  impl_->tick();
  impl_->thread = std::thread([this] {
    t_io_thread = true;
    // Sessions catch what their handlers throw; this is the last line, so that nothing ever
    // reaches std::terminate from this thread: log and go on serving.
    for (;;) {
      try {
        impl_->io.run();
        return;
      } catch (const std::exception& e) {
        log_event(LogLevel::kError, "io_handler_failed",
                  {{"listener", "binary_tcp"}, {"error", e.what()}});
      }
    }
  });
}

void TcpServer::stop() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  // Let queued answers go out: up to ~1 s for every session to have nothing left to write.
  for (int i = 0; i < 100; ++i) {
    auto drained = std::make_shared<std::promise<bool>>();
    auto done = drained->get_future();
    asio::post(impl->io, [impl, drained] {
      bool idle = true;
      for (auto& w : impl->sessions) {
        if (auto s = w.lock(); s && !s->idle()) idle = false;
      }
      drained->set_value(idle);
    });
    if (done.get()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  asio::post(impl->io, [impl] {
    for (auto& w : impl->sessions) {
      if (auto s = w.lock()) s->shutdown();
    }
    impl->ticker.cancel();
    impl->work.reset();
  });
  impl->thread.join();
}

}  // namespace qx::server
