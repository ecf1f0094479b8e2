#include "server/sequencer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
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

bool Sequencer::released(core::Seq last, bool gated) {
  if (!gated) return true;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !holding_ || acknowledged_ >= last || stopping_; });
  return acknowledged_ >= last;
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
  std::vector<Reply> replies;
  while (true) {
    batch.clear();
    bool gated = false;  // the acknowledgement gate was closed when the batch was taken
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      gated = holding_;
      while (!queue_.empty() && batch.size() < options_.batch_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      metrics_.queue_depth(queue_.size());
    }
    replies.clear();
    Ctx ctx(*this);
    const std::uint64_t appended_before = appended_;
    for (Item& item : batch) {
      // A job that fails (e.g. the users file cannot be written) answers 500; whatever it
      // journaled stands and is committed with the batch.
      try {
        replies.push_back(item.job(ctx));
        replies.back().seq = core::raw(engine_.last_seq());
      } catch (const NotLeader&) {
        std::lock_guard lock(mu_);
        replies.push_back(Reply{421, not_leader_body_});
      } catch (const std::exception& e) {
        replies.push_back(Reply{500, std::string(R"({"error":"internal","message":")") +
                                         "the request failed on the sequencer\"}"});
        log_event(LogLevel::kError, "job_failed", {{"error", e.what()}});
      }
    }
    commit();  // durable before anyone hears of it
    // With ack = quorum, and a majority too: a batch that was not acknowledged before the gate
    // opened (leadership lost, or shutdown) tells its clients the outcome is unknown here.
    // A batch that journaled nothing waits for nothing (the group before it was released first).
    const bool acknowledged = released(engine_.last_seq(), gated && appended_ != appended_before);
    if (!acknowledged) {
      for (Reply& r : replies) {
        r = Reply{503, R"({"error":"outcome_unknown","message":"leadership was lost before the )"
                       R"(request was replicated; its outcome is unknown: ask the leader"})"};
      }
    }
    // Callbacks only hand work to other threads; one that throws is logged and the exchange
    // goes on (nothing of it reached the journal or the engine).
    for (std::size_t i = 0; i < batch.size(); ++i) {
      contained("reply", [&] { batch[i].done(std::move(replies[i])); });
    }
    for (const auto& f : after_batch_) contained("after_batch", f);
    if (acknowledged && appended_ != appended_before) {
      for (const auto& f : on_commit_) contained("on_commit", [&] { f(engine_); });
    }
  }
  commit();
}

void Sequencer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

}  // namespace qx::server
