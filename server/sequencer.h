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
// Replication (docs/cluster.md): replicate() makes the sequencer hand every durable group's
// records (exactly as written) to the cluster driver, with the state hash at every K-th event.
// On a leader with ack = quorum, hold_replies(true) makes each batch wait after its commit until
// acknowledge() reaches its last seq: only then do its replies and release actions (market data)
// run, so no client hears of an event a majority does not hold. The sequencer does not wait for
// that: it goes on journaling and shipping the next batches (up to held_batches_max waiting), and
// releases waiting batches in order as acknowledgements arrive. If the gate opens first
// (leadership lost), the waiting replies become 503 outcome_unknown: the outcome is unknown to
// this node, and the waiting market data is dropped. On a follower, jobs
// call Ctx::append_replicated with the leader's records instead of submit.
//
// Caveats: jobs run on the sequencer thread and must not block; engine references must not
// escape a job; the reply callback must only hand the reply to another thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "replay/journal.h"
#include "server/metrics.h"

namespace qx::server {

struct Reply {
  unsigned status = 200;
  std::string body;  // JSON text unless content_type says otherwise
  std::string content_type = "application/json";
  // The engine's last seq when the sequencer ran the job: the state a read reflects (a cluster's
  // follower serves reads as of its own durable journal). 0: not answered by the sequencer.
  std::uint64_t seq = 0;
};

class Sequencer {
 public:
  class Ctx {
   public:
    // Journals and applies one event; the effects are valid until the next submit.
    const core::EffectBuffer& submit(core::EventBody body);
    // A follower's path: appends one record the leader wrote (after JournalWriter::append_record's
    // checks: framing, CRC, seq, chain), decodes and applies it. A refused record changes
    // nothing; one that passes those checks and does not decode stops the process (exit 1),
    // since it is in the journal now and this engine cannot follow it.
    replay::Status append_replicated(std::span<const std::uint8_t> raw);
    // The state hash this node took after event seq (every state_hash_every-th event; the newest
    // 64 are kept), or nullopt.
    [[nodiscard]] std::optional<std::uint64_t> state_hash_at(core::Seq seq) const;
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
    // ack = quorum: durable batches waiting for a majority at most; then no new job is taken.
    std::size_t held_batches_max = 64;
  };

  Sequencer(replay::JournalWriter writer, core::Engine engine, Metrics& metrics, Options options);

  // From any thread: queues a job; false (and nothing queued) when the queue is full or stopping.
  bool post(Job job, Done done);
  // Runs a job now on the calling thread and commits; only before run() starts or after it ends.
  Reply execute(const Job& job);
  // The sequencer thread's body; returns after stop() once the queue is drained and committed.
  void run();
  // For a driver with no sequencer thread (a fuzz target, a single-threaded simulation): runs
  // the jobs queued so far on the calling thread, in batches as run() would (committing each and
  // handing its replies on, which their callbacks get on this thread), and returns when no job is
  // left or none can be taken (held_batches_max batches wait for their acknowledgement). Never
  // while run() runs.
  void run_pending();
  void stop();
  // Called on the sequencer thread after each batch that changed state became durable (and its
  // replies were handed back), with the engine (valid only during the call). Add before run(). A
  // callback only hands work to another thread: a wake-up, derived data, or a value copy such as
  // a snapshot; its time is added to the next batch's latency. Not called for execute().
  using CommitListener = std::function<void(const core::Engine&)>;
  void add_on_commit(CommitListener f) { on_commit_.push_back(std::move(f)); }
  // Called like an on_commit callback, at the commit, to take a value copy of what a batch
  // publishes (market data); the action it returns runs on the sequencer thread when the batch
  // is released to clients (with ack = quorum: once a majority holds it) and never if the
  // batch's outcome becomes unknown. Add before run().
  using ReleaseListener = std::function<std::function<void()>(const core::Engine&)>;
  void add_on_release(ReleaseListener f) { on_release_.push_back(std::move(f)); }
  // Called on the sequencer thread after replies were handed to their callbacks (once per batch,
  // or per set of batches a majority acknowledged together), before the release actions: lets a
  // transport that collects replies hand them to its I/O thread at once (one wake-up instead of
  // one per reply), ahead of the market data and executions that follow from them.
  void add_after_batch(std::function<void()> f) { after_batch_.push_back(std::move(f)); }
  // Called on the sequencer thread right after each event is applied, before it is durable: a
  // listener only buffers what it derives (market data, execution reports) and publishes it from
  // an on_release callback, so nothing leaves the process before the event is on disk (and, with
  // ack = quorum, held by a majority). Add before run(). The engine reference is valid only
  // during the call.
  using EventListener =
      std::function<void(const core::Event&, const core::EffectBuffer&, const core::Engine&)>;
  void add_event_listener(EventListener f) { listeners_.push_back(std::move(f)); }

  // What a durable group hands to the cluster driver: its records as written (consecutive
  // Record::raw), their range, and (seq, state hash) at each multiple of state_hash_every in it.
  struct Shipment {
    core::Seq first{};
    core::Seq last{};
    std::vector<std::uint8_t> records;
    std::vector<std::pair<core::Seq, std::uint64_t>> state_hashes;
  };
  struct Replication {
    std::uint64_t state_hash_every = 0;  // 0: no state hashes
    // On the sequencer thread after each commit that wrote records; only hands them on.
    std::function<void(Shipment)> on_durable;
  };
  // Before run().
  void replicate(Replication r);
  // From any thread: close (true) or open the acknowledgement gate; raise the acknowledged seq.
  void hold_replies(bool on);
  void acknowledge(core::Seq through);
  // From any thread: whether Ctx::submit may journal (a cluster's follower may not). A job whose
  // submit is refused answers 421 with `not_leader_body` (JSON naming the leader); nothing of it
  // is journaled. A job run with writable on may still submit after it is turned off mid-batch.
  void set_writable(bool on, std::string not_leader_body = {});
  // The body refused writes answer with (set_writable), for transports that shape it their way.
  [[nodiscard]] std::string not_leader_body() const;
  [[nodiscard]] bool writable() const { return writable_.load(); }

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
  void applied(const core::Event& event);
  // A durable batch whose replies and release actions wait their turn (and, if it was taken
  // with the gate closed, a majority's acknowledgement of `last`). Sequencer thread only.
  struct Held {
    core::Seq last{};
    bool gated = false;
    struct Answer {
      Done done;
      Reply reply;
      bool journaled = false;  // its job journaled something
    };
    std::vector<Answer> replies;
    std::vector<std::function<void()>> actions;
  };
  // Under mu_: the oldest held batch may go (acknowledged, ungated, or the gate opened).
  [[nodiscard]] bool releasable() const;
  // One batch of run(): takes up to batch_max queued jobs (waiting for some when `wait`), runs
  // them, commits and releases what may go. kIdle: no job was taken (nothing queued, or room for
  // no more held batches; with `wait`, woken only to release held batches).
  enum class Round : std::uint8_t { kRan, kIdle, kStopped };
  Round round(std::vector<Item>& batch, bool wait);
  // Hands out the held batches that may go, oldest first: their replies, then the after_batch
  // callbacks, then their release actions.
  void release();

  replay::JournalWriter writer_;
  core::Engine engine_;
  core::EffectBuffer effects_;
  Metrics& metrics_;
  Options options_;
  std::uint64_t appended_ = 0;
  bool dirty_ = false;
  std::vector<CommitListener> on_commit_;
  std::vector<ReleaseListener> on_release_;
  std::deque<Held> held_;
  std::vector<std::function<void()>> orphaned_;  // release actions of batches of unknown outcome
  std::vector<std::function<void()>> after_batch_;
  std::vector<EventListener> listeners_;
  Replication replication_;
  std::vector<std::uint8_t> tap_;  // the current group's records (replication only)
  std::vector<std::pair<core::Seq, std::uint64_t>> group_hashes_;
  std::map<core::Seq, std::uint64_t> own_hashes_;  // the newest state hashes taken

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  bool holding_ = false;  // the acknowledgement gate
  std::string not_leader_body_;
  std::atomic<bool> writable_{true};
  core::Seq acknowledged_{};  // acknowledge()'s highest
};

}  // namespace qx::server
