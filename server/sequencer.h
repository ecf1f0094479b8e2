// The sequencer: the one thread that owns the engine.
//
//   Sequencer seq(std::move(writer), std::move(engine), metrics, {});
//   std::thread t([&] { seq.run(); });
//   seq.post([](Sequencer::Ctx& c) { auto& fx = c.submit(core::Deposit{...}); return reply; },
//            [](Reply r) { /* runs on the sequencer thread after the group is durable */ });
//   seq.stop(); t.join();   // drains the queue, commits, returns
//
// Design: I/O threads post jobs into a bounded queue. The sequencer takes every waiting job (up to
// a batch limit) and runs each in order against the engine. A job that changes state calls
// Ctx::submit, which stamps the next sequence number and the wall-clock time (never earlier than
// the previous event's), appends the event to the journal's pending group and applies it. After
// the batch, one commit() writes and fdatasyncs the group; only then are the batch's replies
// handed to their callbacks. So no client hears of an event that a crash could lose, and one
// fsync covers many requests under load (group commit).
//
// Applying before the fsync is safe because nothing leaves the process before it; if the commit
// fails the engine is ahead of the disk, so the process stops (exit 1) rather than serve it.
//
// Caveats: jobs run on the sequencer thread and must not block; engine references must not
// escape a job; the reply callback must only hand the reply to another thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"
#include "server/metrics.h"

namespace qx::server {

struct Reply {
  unsigned status = 200;
  std::string body;  // JSON text unless content_type says otherwise
  std::string content_type = "application/json";
};

class Sequencer {
 public:
  class Ctx {
   public:
    // Journals and applies one event; the effects are valid until the next submit.
    const core::EffectBuffer& submit(core::EventBody body);
    [[nodiscard]] const core::Engine& engine() const { return s_.engine_; }

   private:
    friend class Sequencer;
    explicit Ctx(Sequencer& s) : s_(s) {}
    Sequencer& s_;
  };
  using Job = std::function<Reply(Ctx&)>;
  using Done = std::function<void(Reply)>;

  struct Options {
    std::size_t queue_capacity = 4096;
    std::size_t batch_max = 512;
  };

  Sequencer(replay::JournalWriter writer, core::Engine engine, Metrics& metrics, Options options);

  // From any thread: queues a job; false (and nothing queued) when the queue is full or stopping.
  bool post(Job job, Done done);
  // Runs a job now on the calling thread and commits; only before run() starts or after it ends.
  Reply execute(const Job& job);
  // The sequencer thread's body; returns after stop() once the queue is drained and committed.
  void run();
  void stop();
  // Called on the sequencer thread after each batch that changed state became durable (and its
  // replies were handed back), with the engine (valid only during the call). Add before run(). A
  // callback only hands work to another thread: a wake-up, derived data, or a value copy such as
  // a snapshot; its time is added to the next batch's latency. Not called for execute().
  using CommitListener = std::function<void(const core::Engine&)>;
  void add_on_commit(CommitListener f) { on_commit_.push_back(std::move(f)); }
  // Called on the sequencer thread after every batch, once its replies were handed to their
  // callbacks and before the on_commit callbacks: lets a transport that collects replies during
  // the batch hand them to its I/O thread at once (one wake-up instead of one per reply).
  void add_after_batch(std::function<void()> f) { after_batch_.push_back(std::move(f)); }
  // Called on the sequencer thread right after each event is applied, before it is durable: a
  // listener only buffers what it derives (market data, execution reports) and publishes it from
  // an on_commit callback, so nothing leaves the process before the event is on disk. Add before
  // run(). The engine reference is valid only during the call.
  using EventListener =
      std::function<void(const core::Event&, const core::EffectBuffer&, const core::Engine&)>;
  void add_event_listener(EventListener f) { listeners_.push_back(std::move(f)); }

  // Only when the sequencer thread is not running.
  [[nodiscard]] const core::Engine& engine() const { return engine_; }
  [[nodiscard]] std::uint64_t events_appended() const { return appended_; }

 private:
  struct Item {
    Job job;
    Done done;
  };
  void commit();
  std::int64_t stamp_ns();

  replay::JournalWriter writer_;
  core::Engine engine_;
  core::EffectBuffer effects_;
  Metrics& metrics_;
  Options options_;
  std::uint64_t appended_ = 0;
  bool dirty_ = false;
  std::vector<CommitListener> on_commit_;
  std::vector<std::function<void()>> after_batch_;
  std::vector<EventListener> listeners_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
};

}  // namespace qx::server
