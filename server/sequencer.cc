#include "server/sequencer.h"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <utility>
#include <variant>
#include <vector>

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
  s.effects_.clear();
  s.engine_.apply(event, s.effects_);
  s.appended_ += 1;
  s.dirty_ = true;
  s.metrics_.on_event(event, s.effects_);
  for (const auto& listen : s.listeners_) listen(event, s.effects_, s.engine_);
  return s.effects_;
}

void Sequencer::commit() {
  if (!dirty_) return;
  const auto start = std::chrono::steady_clock::now();
  auto durable = writer_.commit();
  if (!durable) fatal("journal commit: " + durable.error().message);
  metrics_.fsync_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start));
  QX_ASSERT(durable.value() == engine_.last_seq());
  dirty_ = false;
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
  commit();
  return r;
}

void Sequencer::run() {
  std::vector<Item> batch;
  std::vector<Reply> replies;
  while (true) {
    batch.clear();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
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
      } catch (const std::exception& e) {
        replies.push_back(Reply{500, std::string(R"({"error":"internal","message":")") +
                                         "the request failed on the sequencer\"}"});
        log_event(LogLevel::kError, "job_failed", {{"error", e.what()}});
      }
    }
    commit();  // durable before anyone hears of it
    // Callbacks only hand work to other threads; one that throws is logged and the exchange
    // goes on (nothing of it reached the journal or the engine).
    for (std::size_t i = 0; i < batch.size(); ++i) {
      contained("reply", [&] { batch[i].done(std::move(replies[i])); });
    }
    for (const auto& f : after_batch_) contained("after_batch", f);
    if (appended_ != appended_before) {
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
