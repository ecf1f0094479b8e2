// Periodic engine snapshots while the server runs, written off the sequencer thread.
//
//   Snapshotter snapshots(journal_dir, 100'000, recovered.snapshot_seq, metrics);
//   sequencer.add_on_commit([&](const core::Engine& e) { snapshots.after_commit(e); });
//   ... run, stop the sequencer ...
//   snapshots.stop();   // waits for the write in flight, before anything else opens the store
//
// Design: after a commit that brought the engine's last seq to the next threshold (the last
// snapshot's seq plus `every_events`), the sequencer thread takes engine.snapshot(), a value copy
// and the only cost on that thread, and hands it to one writer thread, which opens the journal's
// LMDB store, stores it with replay::Store::put_snapshot (which computes and checks its hash) and
// closes the store again. At most one snapshot is in flight: while one is being written, commits
// take none, and the first commit after the write takes the next one if a threshold has passed.
// The next threshold counts from the seq of the snapshot taken, whether its write succeeds or not.
//
// A failed write is logged (snapshot_failed) and counted in qx_snapshots_total{result="failed"},
// never fatal: a snapshot only shortens recovery, the journal alone is the truth.
//
// Caveats: LMDB must not be opened twice in one process, so the store is open only while a
// snapshot is written and stop() must return before the caller opens it (the shutdown snapshot).
// after_commit() is for one thread (the sequencer's); stop() for the owner after that thread ends.
// stored() and read() are for any thread (a cluster leader sends followers its snapshots): read()
// opens the store under the same lock as the writer, so the two never have it open at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "core/engine.h"
#include "replay/store.h"
#include "server/metrics.h"

namespace qx::server {

class Snapshotter {
 public:
  // every_events 0: never snapshot (no thread is started).
  Snapshotter(std::filesystem::path journal_dir, std::uint64_t every_events,
              std::optional<core::Seq> last_snapshot, Metrics& metrics);
  ~Snapshotter();
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  // On the sequencer thread after a durable commit.
  void after_commit(const core::Engine& engine);
  // Waits for the write in flight and ends the writer thread; idempotent.
  void stop();
  // The seq at or after which after_commit takes the next snapshot.
  [[nodiscard]] std::uint64_t next_seq() const { return next_seq_; }
  // The newest snapshot in the store: the one recovery started from, then each written since.
  [[nodiscard]] std::optional<core::Seq> stored() const;
  // The newest valid stored snapshot at or before `until` (waits for a write in progress).
  replay::Result<replay::SnapshotSearch> read(core::Seq until);

 private:
  void write_loop();

  const std::filesystem::path journal_dir_;
  const std::uint64_t every_events_;
  Metrics& metrics_;
  std::uint64_t next_seq_;  // sequencer thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<core::Snapshot> pending_;  // handed over, not yet picked up
  bool writing_ = false;                   // pending_ or a write in progress
  bool stopping_ = false;
  std::mutex store_mu_;                   // held while the store is open
  std::atomic<std::uint64_t> stored_{0};  // 0: none
  std::thread writer_;                    // last: started after everything it uses
};

}  // namespace qx::server
