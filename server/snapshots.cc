#include "server/snapshots.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "replay/store.h"
#include "server/log.h"

namespace qx::server {

Snapshotter::Snapshotter(std::filesystem::path journal_dir, std::uint64_t every_events,
                         std::optional<core::Seq> last_snapshot, Metrics& metrics)
    : journal_dir_(std::move(journal_dir)),
      every_events_(every_events),
      metrics_(metrics),
      next_seq_((last_snapshot ? core::raw(*last_snapshot) : 0) + every_events),
      stored_(last_snapshot ? core::raw(*last_snapshot) : 0) {
  if (every_events_ > 0) writer_ = std::thread([this] { write_loop(); });
}

Snapshotter::~Snapshotter() {
  stop();
}

void Snapshotter::after_commit(const core::Engine& engine) {
  const std::uint64_t seq = core::raw(engine.last_seq());
  if (every_events_ == 0 || seq < next_seq_) return;
  {
    std::lock_guard lock(mu_);
    if (writing_ || stopping_) return;  // at most one in flight; a later commit takes it
    writing_ = true;
  }
  core::Snapshot snapshot = engine.snapshot();  // outside the lock: the writer never waits on it
  QX_ASSERT(core::raw(snapshot.last_seq) == seq);
  next_seq_ = seq + every_events_;
  {
    std::lock_guard lock(mu_);
    pending_ = std::move(snapshot);
  }
  cv_.notify_one();
}

void Snapshotter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

std::optional<core::Seq> Snapshotter::stored() const {
  const std::uint64_t s = stored_.load();
  if (s == 0) return std::nullopt;
  return core::Seq(s);
}

replay::Result<replay::SnapshotSearch> Snapshotter::read(core::Seq until) {
  std::lock_guard lock(store_mu_);
  auto store = replay::Store::open(journal_dir_);
  if (!store) return store.error();
  return store.value().latest_snapshot(until);
}

void Snapshotter::write_loop() {
  while (true) {
    std::optional<core::Snapshot> snapshot;
    {
      std::unique_lock lock(mu_);
      // On stop, a snapshot already handed over is still written: it is consistent and durable
      // state, and writing it costs less than the replay it saves.
      cv_.wait(lock, [&] { return pending_.has_value() || (stopping_ && !writing_); });
      if (!pending_) return;
      snapshot = std::move(pending_);
      pending_.reset();
    }
    const std::uint64_t seq = core::raw(snapshot->last_seq);
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    try {
      std::lock_guard store_lock(store_mu_);
      auto store = replay::Store::open(journal_dir_);
      if (!store) {
        error = "open store: " + store.error().message;
      } else if (auto st = store.value().put_snapshot(*snapshot); !st) {
        error = st.error().message;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics_.snapshot_written(error.empty());
    if (error.empty()) {
      stored_ = std::max(stored_.load(), seq);
      log_event(LogLevel::kInfo, "snapshot_written", {{"seq", seq}, {"seconds", took.count()}});
    } else {
      log_event(LogLevel::kError, "snapshot_failed", {{"seq", seq}, {"error", error}});
    }
    std::lock_guard lock(mu_);
    writing_ = false;
    if (stopping_) return;
  }
}

}  // namespace qx::server
