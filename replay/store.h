// The journal's LMDB store: engine snapshots and CRoaring indexes, in `<journal dir>/lmdb/`.
//
//   auto st = Store::open(dir);                       // creates the environment if needed
//   st.value().put_snapshot(engine.snapshot());       // engine state at its last seq
//   auto snap = st.value().latest_snapshot(until);    // newest valid snapshot at or before `until`
//
// Databases (keys big-endian so LMDB's byte order is numeric order):
//   snapshots  seq u64 -> [CRC32C u32][state hash u64][Cap'n Proto snapshot]
//   index      kind u8 + id u64 -> Roaring64Map of sequence numbers (portable serialisation)
//   meta       "indexed_seq" -> u64, the last seq the indexes cover
//
// A snapshot is checked twice when loaded: its CRC, then the state hash of an engine restored
// from it against the stored hash. One that fails either is skipped in favour of an older one, and
// the reason is reported through `skipped`.
//
// Index kinds: an event's seq is added to the bitmap of every account, instrument and order it
// touches (from the event itself and from its effects, so a trade is found under both
// counterparties) and to the bitmap of its time bucket (kTimeBucketNs wide).
//
// Caveats: one process at a time writes the store; values read are copies (no pointers into
// LMDB's map escape this file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/effects.h"
#include "core/events.h"
#include "core/snapshot.h"
#include "replay/result.h"

class Roaring64Map;

namespace qx::replay {

inline constexpr std::int64_t kTimeBucketNs = 60'000'000'000;  // one minute

enum class IndexKind : std::uint8_t { kAccount = 1, kInstrument = 2, kOrder = 3, kTimeBucket = 4 };

struct IndexKey {
  IndexKind kind{};
  std::uint64_t id{};
  auto operator<=>(const IndexKey&) const = default;
};

// Collects index entries in memory while events are applied; flushed into the store in batches.
class IndexBuilder {
 public:
  IndexBuilder();
  ~IndexBuilder();
  IndexBuilder(IndexBuilder&&) noexcept;
  IndexBuilder& operator=(IndexBuilder&&) noexcept;

  // Records every key an event and its effects touch.
  void add(const core::Event& event, const core::EffectBuffer& effects);
  [[nodiscard]] std::size_t pending_keys() const;
  [[nodiscard]] core::Seq last_seq() const { return last_seq_; }

 private:
  friend class Store;
  void touch(IndexKind kind, std::uint64_t id, std::uint64_t seq);
  std::map<IndexKey, Roaring64Map>* entries_;
  core::Seq last_seq_{};
};

struct LoadedSnapshot {
  core::Snapshot snapshot;
  std::uint64_t state_hash{};
};

struct SnapshotSearch {
  std::optional<LoadedSnapshot> found;  // nullopt when no usable snapshot exists
  std::vector<std::string> skipped;     // why newer snapshots were not used
};

class Store {
 public:
  static Result<Store> open(const std::filesystem::path& journal_dir);
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // Stores a snapshot under its last_seq; the hash is computed here.
  Status put_snapshot(const core::Snapshot& snapshot);
  // Newest snapshot with seq <= until that passes its checks.
  Result<SnapshotSearch> latest_snapshot(std::optional<core::Seq> until);
  // Sequence numbers of every stored snapshot, ascending.
  Result<std::vector<core::Seq>> snapshot_seqs();
  // Removes every snapshot after `seq`, and the indexes when they reach past it: after the
  // journal was cut there (a cluster's follower dropping records its leader never had), they
  // describe a history that no longer exists. Returns how many snapshots were removed.
  Result<std::size_t> forget_after(core::Seq seq);

  // Merges the builder's entries into the stored bitmaps and records its last seq.
  Status flush(IndexBuilder& builder);
  Status clear_indexes();
  Result<core::Seq> indexed_seq();
  // The stored bitmap for a key (empty when absent), as sorted sequence numbers.
  Result<std::vector<std::uint64_t>> lookup(IndexKey key);
  // The union of the time buckets overlapping [from_ns, to_ns].
  Result<std::vector<std::uint64_t>> lookup_time(std::int64_t from_ns, std::int64_t to_ns);

 private:
  Store() = default;
  struct Env;
  Env* env_ = nullptr;
};

}  // namespace qx::replay
