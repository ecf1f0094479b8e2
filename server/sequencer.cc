#include "server/sequencer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <utility>
#include <variant>
#include <vector>

#include "replay/codec.h"
#include "server/log.h"

namespace qx::server {

namespace {

[[noreturn]] void fatal(const std::string& what) {
  log_event(LogLevel::kFatal, "sequencer_fatal", {{"error", what}});
  std::_Exit(1);
}

// Runs a callback of the sequencer thread; what it throws is logged, never propagated.
template <class F>
void contained(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    log_event(LogLevel::kError, "callback_failed", {{"callback", what}, {"error", e.what()}});
  }
}

// Thrown by Ctx::submit on a node that may not journal; the job answers 421.
struct NotLeader {};

}  // namespace

Sequencer::Sequencer(replay::JournalWriter writer, core::Engine engine, Metrics& metrics,
                     Options options)
    : writer_(std::move(writer)), engine_(std::move(engine)), metrics_(metrics), options_(options) {
  QX_ASSERT(writer_.last_seq() == engine_.last_seq());
  effects_.reserve(1024);
  metrics_.queue_capacity(options_.queue_capacity);
}

std::int64_t Sequencer::stamp_ns() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  return ns > engine_.last_timestamp_ns() ? ns : engine_.last_timestamp_ns();
}

const core::EffectBuffer& Sequencer::Ctx::submit(core::EventBody body) {
  Sequencer& s = s_;
  if (!s.writable_.load()) throw NotLeader{};
  // Trading-phase changes due now (and a call's uncross) are applied before the next event. They
  // get an event of their own, so that a request's effects are only its own (the gateway reads
  // its outcome from them).
  if (!std::holds_alternative<core::MarkToMarket>(body)) {
    for (auto due = s.engine_.next_phase_change_ns(); due && *due <= s.stamp_ns();
         due = s.engine_.next_phase_change_ns()) {
      submit(core::MarkToMarket{});
    }
  }
  const auto seq = static_cast<core::Seq>(core::raw(s.engine_.last_seq()) + 1);
  // A client that names no order id gets the sequence number, unique and never reused.
  if (auto* order = std::get_if<core::NewOrder>(&body);
      order != nullptr && order->client_order_id == core::ClientOrderId{}) {
    order->client_order_id = core::ClientOrderId(core::raw(seq));
  }
  const core::Event event{{seq, s.stamp_ns(), 0}, std::move(body)};
  if (auto st = s.writer_.append(event); !st) fatal("journal append: " + st.error().message);
  s.applied(event);
  return s.effects_;
}

replay::Status Sequencer::Ctx::append_replicated(std::span<const std::uint8_t> raw) {
  Sequencer& s = s_;
  if (auto st = s.writer_.append_record(raw); !st) return st;
  // The record is in the journal's pending group now: it must apply, or the process stops.
  auto event = replay::decode_event(
      raw.subspan(replay::kRecordHeaderBytes, replay::record_payload_bytes(raw.data())));
  if (!event) {
    fatal("replicated seq " + std::to_string(core::raw(s.writer_.last_seq())) +
          " does not decode: " + event.error().message);
  }
  if (event.value().header.seq != s.writer_.last_seq()) {
    fatal("replicated seq " + std::to_string(core::raw(s.writer_.last_seq())) +
          ": the payload's header names seq " +
          std::to_string(core::raw(event.value().header.seq)));
  }
  s.applied(event.value());
  return {};
}

std::optional<std::uint64_t> Sequencer::Ctx::state_hash_at(core::Seq seq) const {
  auto it = s_.own_hashes_.find(seq);
  if (it == s_.own_hashes_.end()) return std::nullopt;
  return it->second;
}

void Sequencer::applied(const core::Event& event) {
  effects_.clear();
  engine_.apply(event, effects_);
  appended_ += 1;
  dirty_ = true;
  metrics_.on_event(event, effects_);
  for (const auto& listen : listeners_) listen(event, effects_, engine_);
  const std::uint64_t every = replication_.state_hash_every;
  if (every != 0 && core::raw(event.header.seq) % every == 0) {
    const std::uint64_t h = engine_.state_hash();
    group_hashes_.emplace_back(event.header.seq, h);
    own_hashes_.emplace(event.header.seq, h);
    if (own_hashes_.size() > 64) own_hashes_.erase(own_hashes_.begin());
  }
}

void Sequencer::replicate(Replication r) {
  replication_ = std::move(r);
  writer_.copy_records_to(&tap_);
}

void Sequencer::hold_replies(bool on) {
  {
    std::lock_guard lock(mu_);
    holding_ = on;
  }
  cv_.notify_all();
}

std::string Sequencer::not_leader_body() const {
  std::lock_guard lock(mu_);
  return not_leader_body_;
}

void Sequencer::set_writable(bool on, std::string not_leader_body) {
  std::lock_guard lock(mu_);
  writable_ = on;
  if (!on) not_leader_body_ = std::move(not_leader_body);
}

void Sequencer::acknowledge(core::Seq through) {
  {
    std::lock_guard lock(mu_);
    acknowledged_ = std::max(acknowledged_, through);
  }
  cv_.notify_all();
}

void Sequencer::commit() {
  if (!dirty_) return;
  const auto start = std::chrono::steady_clock::now();
  auto durable = writer_.commit();
  if (!durable) fatal("journal commit: " + durable.error().message);
  metrics_.fsync_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start));
  QX_ASSERT(durable.value() == engine_.last_seq());
  dirty_ = false;
  if (replication_.on_durable && !tap_.empty()) {
    Shipment s;
    s.last = durable.value();
    s.records = std::move(tap_);
    tap_.clear();
    s.state_hashes = std::move(group_hashes_);
    group_hashes_.clear();
    s.first = replay::record_seq(s.records.data());
    contained("on_durable", [&] { replication_.on_durable(std::move(s)); });
  }
}

bool Sequencer::post(Job job, Done done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= options_.queue_capacity) return false;
    queue_.push_back(Item{std::move(job), std::move(done)});
    metrics_.queue_depth(queue_.size());
  }
  cv_.notify_one();
  return true;
}

Reply Sequencer::execute(const Job& job) {
  Ctx ctx(*this);
  Reply r = job(ctx);
  r.seq = core::raw(engine_.last_seq());
  commit();
  return r;
}

void Sequencer::run() {
  std::vector<Item> batch;
  while (round(batch, true) != Round::kStopped) {
  }
  commit();
}

void Sequencer::run_pending() {
  std::vector<Item> batch;
  while (round(batch, false) == Round::kRan) {
  }
  commit();
}

Sequencer::Round Sequencer::round(std::vector<Item>& batch, bool wait) {
  batch.clear();
  bool gated = false;  // the acknowledgement gate was closed when the batch was taken
  bool done = false;
  {
    std::unique_lock lock(mu_);
    // New jobs while there is room for another held batch; or held batches to release.
    auto ready = [&] {
      return stopping_ || (!queue_.empty() && held_.size() < options_.held_batches_max) ||
             releasable();
    };
    if (wait) cv_.wait(lock, ready);
    done = queue_.empty() && stopping_;
    gated = holding_;
    while (!queue_.empty() && batch.size() < options_.batch_max &&
           held_.size() < options_.held_batches_max) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    metrics_.queue_depth(queue_.size());
  }
  release();
  if (done) return Round::kStopped;  // stop() opened the gate: nothing waits any more
  if (batch.empty()) return Round::kIdle;
  Held h;
  h.replies.reserve(batch.size());
  Ctx ctx(*this);
  const std::uint64_t appended_before = appended_;
  for (Item& item : batch) {
    // A job that fails (e.g. the users file cannot be written) answers 500; whatever it
    // journaled stands and is committed with the batch.
    const std::uint64_t before = appended_;
    try {
      Reply r = item.job(ctx);
      r.seq = core::raw(engine_.last_seq());
      h.replies.push_back({std::move(item.done), std::move(r), appended_ != before});
    } catch (const NotLeader&) {
      std::lock_guard lock(mu_);
      h.replies.push_back({std::move(item.done), Reply{421, not_leader_body_}, false});
    } catch (const std::exception& e) {
      h.replies.push_back({std::move(item.done),
                           Reply{500, std::string(R"({"error":"internal","message":")") +
                                          "the request failed on the sequencer\"}"},
                           appended_ != before});
      log_event(LogLevel::kError, "job_failed", {{"error", e.what()}});
    }
  }
  commit();  // durable before anyone hears of it
  h.last = engine_.last_seq();
  if (appended_ != appended_before) {
    for (const auto& f : on_commit_) contained("on_commit", [&] { f(engine_); });
    for (const auto& f : on_release_) {
      contained("on_release", [&] {
        if (auto action = f(engine_)) h.actions.push_back(std::move(action));
      });
    }
  }
  // With ack = quorum the batch waits, behind the ones before it, until a majority holds its
  // last event (the state its replies reflect); the sequencer goes on with the next batches
  // meanwhile. Without the gate it goes as soon as the batches before it have gone.
  h.gated = gated;
  held_.push_back(std::move(h));
  release();
  return Round::kRan;
}

bool Sequencer::releasable() const {
  if (held_.empty()) return false;
  const Held& h = held_.front();
  return !h.gated || !holding_ || acknowledged_ >= h.last;
}

void Sequencer::release() {
  core::Seq acknowledged{};
  bool holding = false;
  {
    std::lock_guard lock(mu_);
    acknowledged = acknowledged_;
    holding = holding_;
  }
  std::vector<std::function<void()>> actions;
  bool handed = false;
  while (!held_.empty()) {
    Held& h = held_.front();
    const bool majority = !h.gated || acknowledged >= h.last;
    if (!majority && holding) break;  // still waiting for its majority
    // A batch not acknowledged before the gate opened (leadership lost, or shutdown): a request
    // that journaled something has an unknown outcome here; one that journaled nothing keeps its
    // refusal (421), and a read answers a retryable 503 (the state it saw may not survive).
    for (Held::Answer& a : h.replies) {
      if (!majority && a.journaled) {
        a.reply =
            Reply{503, R"({"error":"outcome_unknown","message":"leadership was lost before )"
                       R"(the request was replicated; its outcome is unknown: ask the leader"})"};
      } else if (!majority && a.reply.status < 300) {
        a.reply = Reply{503, R"({"error":"not_leader","message":"leadership was lost before the )"
                             R"(state this answer saw was replicated; ask the leader"})"};
      }
      // Callbacks only hand work to other threads; one that throws is logged and the exchange
      // goes on (nothing of it reached the journal or the engine).
      contained("reply", [&] { a.done(std::move(a.reply)); });
      handed = true;
    }
    // Market data of a batch whose outcome is unknown waits: its events may survive in the next
    // leader's journal (then it goes with the next batch a majority holds) or be cut (then this
    // node restarts itself and it never goes).
    if (majority) {
      actions.insert(actions.end(), std::make_move_iterator(orphaned_.begin()),
                     std::make_move_iterator(orphaned_.end()));
      orphaned_.clear();
    }
    auto& into = majority ? actions : orphaned_;
    into.insert(into.end(), std::make_move_iterator(h.actions.begin()),
                std::make_move_iterator(h.actions.end()));
    held_.pop_front();
  }
  // Answers first, then what follows from them (the wire protocol's order: an order's result,
  // then its executions).
  if (handed) {
    for (const auto& f : after_batch_) contained("after_batch", f);
  }
  for (const auto& action : actions) contained("on_release", action);
}

void Sequencer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    holding_ = false;  // nothing more will be acknowledged: what waits is released as unknown
  }
  cv_.notify_all();
}

}  // namespace qx::server
