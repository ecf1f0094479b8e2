// The journal: the only source of truth. Append-only segment files of sequenced events.
//
//   auto w = JournalWriter::open("data/journal", {});       // validates, cuts a torn tail
//   w.value().append(event);                                 // buffered in the current group
//   auto durable = w.value().commit();                       // write + fdatasync: durable now
//   ...
//   JournalReader r = ...;  while (r.next(rec)) apply(decode_event(rec.payload));
//
// On-disk format (all integers little-endian):
//
//   segment file  <first seq, 20 digits>.qxj
//     header (80 bytes)
//       0  magic "QXJOURNL"            8
//       8  format version   u32        (kFormatVersion)
//      12  schema version   u32        (replay::kSchemaVersion)
//      16  semantics version u32       (core::kSemanticsVersion)
//      20  reserved u32 = 0
//      24  first seq        u64
//      32  chain hash of the record before this segment's first (32 bytes; zero for seq 1)
//      64  reserved 12 bytes = 0
//      76  CRC32C of bytes 0..75
//     records, each 8-byte aligned
//       0  payload length   u32
//       4  CRC32C of (bytes 0..3, then bytes 8 .. end of payload)
//       8  seq              u64
//      16  timestamp ns     i64        (stamped by the sequencer)
//      24  chain hash       32 bytes   SHA-256(previous chain hash || bytes 8..23 || payload)
//      56  payload          Cap'n Proto flat message of the event (replay/codec.h)
//          zero padding to the next multiple of 8
//
//   base file  base.qxb (optional; see "Journal base" below)
//       0  magic "QXJBASE1"            8
//       8  format version   u32        (kBaseFormatVersion)
//      12  reserved u32 = 0
//      16  base seq         u64        (>= 1)
//      24  chain hash of record `base seq` (32 bytes)
//      56  CRC32C of bytes 0..55
//     60 bytes in all; any other size is damage
//
// Opening validates every record: length, CRC, consecutive sequence numbers across segments, the
// chain, versions. A torn tail (the last record of the last segment incomplete or failing its CRC
// with nothing but zeros after it) is cut back to the last whole record, and reported. Any other
// damage is a hard error naming the segment file, byte offset and sequence number, and nothing on
// disk is changed.
//
// Durability: `commit()` writes the pending group in one write() and, under
// FsyncPolicy::kEveryGroup (the default), fdatasync()s before returning; `durable_seq()` is then
// the last event a server may acknowledge. New segment files are fsynced together with their
// directory.
//
// Replication: a follower copies the leader's records byte for byte. `Record::raw` is a record
// exactly as on disk; `JournalWriter::append_record` checks one such record (its framing, CRC, that
// it is the next seq and that its chain hash links onto this journal) and buffers it verbatim, so
// that copying every record of journal A into an empty journal B with the same segment_bytes_max
// gives B the same segment files, byte for byte. (Segment headers carry this build's schema and
// semantics versions: the files are identical only when both sides run the same versions.) A
// follower whose journal has a suffix the new leader never had removes it with
// `cut_journal_after`, comparing chains first with `chain_hash_at`:
//
//   auto mine = chain_hash_at(dir, seq);       // equal to the leader's chain at seq?
//   auto cut = cut_journal_after(dir, seq);    // with no writer open on dir
//   auto w = JournalWriter::open(dir, {});     // w.value().last_seq() == seq
//   w.value().append_record(rec.raw);          // seq + 1, as the leader sent it
//
// Journal base: a follower far behind installs the leader's engine snapshot at seq S and then
// copies records S+1, S+2, ...; its journal starts after S. `reset_journal_to_base` empties the
// directory and writes base.qxb holding S and record S's chain hash. Every reader then starts
// from (S, chain) instead of (0, zero): the first segment must be named for S+1 and carry that
// chain in its header, an empty based journal has last seq S, and a writer appends S+1 onwards.
// Records up to S exist only in a snapshot, so replay_journal needs a stored snapshot at or after
// S (replay.h). A directory without base.qxb is a journal from seq 1, exactly as before.
//
//   auto chain = leader_chain_at_s;                             // shipped with the snapshot
//   auto reset = reset_journal_to_base(dir, {Seq(S), chain});   // no writer open on dir
//   store.put_snapshot(snapshot_at_s);                          // replay starts from it
//   auto w = JournalWriter::open(dir, {});                      // w.value().last_seq() == S
//   w.value().append_record(rec.raw);                           // seq S + 1, as the leader sent
//
// Caveats: one writer per directory (not enforced across processes); events must carry
// consecutive sequence numbers; a Result error from the writer leaves it unusable (reopen),
// except a record that append_record refuses: that leaves the writer unchanged and usable;
// cut_journal_after and reset_journal_to_base must never run while a writer (or a reader) has
// the directory open.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/events.h"
#include "replay/result.h"

namespace qx::replay {

inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderBytes = 80;
inline constexpr std::size_t kRecordHeaderBytes = 56;
inline constexpr std::uint32_t kRecordPayloadBytesMax = 16u << 20;
inline constexpr std::uint32_t kBaseFormatVersion = 1;
inline constexpr std::size_t kBaseFileBytes = 60;
inline constexpr const char* kBaseFileName = "base.qxb";

using ChainHash = std::array<std::uint8_t, 32>;

// The journal holds no record at or before `seq`; record seq's chain hash was `chain`.
struct JournalBase {
  core::Seq seq{};
  ChainHash chain{};
  bool operator==(const JournalBase&) const = default;
};

enum class FsyncPolicy : std::uint8_t {
  kEveryGroup = 1,  // fdatasync after every commit(): durable when commit() returns
  kNone = 2,        // leave it to the OS (backtests, benchmarks): survives a process crash only
};

struct JournalOptions {
  std::uint64_t segment_bytes_max = 256ull << 20;
  FsyncPolicy fsync = FsyncPolicy::kEveryGroup;
};

// One record as read from disk; `payload` and `raw` point into the reader's buffer until the next
// call to next().
struct Record {
  core::Seq seq{};
  std::int64_t timestamp_ns{};
  ChainHash chain{};
  std::span<const std::uint8_t> payload;
  // The whole record as on disk: header, payload and zero padding to a multiple of 8 bytes.
  std::span<const std::uint8_t> raw;
  std::string segment;     // file name
  std::uint64_t offset{};  // byte offset of the record in its segment
};

// What opening a journal found.
struct OpenReport {
  std::uint64_t segments = 0;
  core::Seq last_seq{};
  ChainHash last_chain{};
  std::optional<std::string> torn_tail;  // set when a torn tail was (or would be) cut
  std::optional<JournalBase> base;       // set when the journal starts after a snapshot
};

// Sequential reader over every record of a journal directory, validating as it goes.
class JournalReader {
 public:
  // Starts after the base when the directory has one (an Error when base.qxb is damaged).
  static Result<JournalReader> open(const std::filesystem::path& dir);
  // Opens positioned at the segment holding `seq` (records before it in that segment are still
  // read and validated; earlier segments are skipped, trusting that segment's header chain).
  // With a base, `seq` must be after it (an Error otherwise: the journal has no such record).
  static Result<JournalReader> open_at(const std::filesystem::path& dir, core::Seq seq);

  // Reads the next record into `out`. Returns false at the end; an Error on damage. A torn tail
  // in the last segment ends the journal (see torn_tail()).
  Result<bool> next(Record& out);
  [[nodiscard]] const std::optional<std::string>& torn_tail() const { return torn_tail_; }
  // Where the torn tail starts (valid only when torn_tail() is set).
  [[nodiscard]] std::uint64_t torn_offset() const { return torn_offset_; }
  [[nodiscard]] const std::filesystem::path& last_segment() const { return last_segment_; }
  [[nodiscard]] std::uint64_t segment_count() const { return segments_.size(); }
  [[nodiscard]] core::Seq last_seq() const { return last_seq_; }
  [[nodiscard]] const ChainHash& chain() const { return chain_; }
  [[nodiscard]] std::uint64_t bytes_read() const { return bytes_read_; }
  [[nodiscard]] std::optional<JournalBase> base() const { return base_; }

 private:
  Status load_segment(std::size_t i);

  std::optional<JournalBase> base_;
  std::vector<std::filesystem::path> segments_;
  std::size_t current_ = 0;
  bool loaded_ = false;
  bool adopt_header_ = false;  // take the first segment's header as the chain's start
  std::vector<std::uint8_t> buf_;
  std::size_t pos_ = 0;
  core::Seq last_seq_{};
  ChainHash chain_{};
  std::optional<std::string> torn_tail_;
  std::uint64_t torn_offset_ = 0;
  std::filesystem::path last_segment_;
  std::uint64_t bytes_read_ = 0;
};

// Validates a whole journal without changing anything.
Result<OpenReport> verify_journal(const std::filesystem::path& dir);

// The chain hash of record `seq` (the zero hash for seq 0 in a journal without a base). Reads
// from the segment holding `seq` only, trusting that segment's header for the chain before it.
// With a base, seq == base.seq answers the base's chain and seq < base.seq is an Error (the
// journal starts after base.seq). An Error when `seq` is past the last whole record or the
// records read are damaged.
Result<ChainHash> chain_hash_at(const std::filesystem::path& dir, core::Seq seq);

// The directory's base.qxb: nullopt when there is none (or no directory); an Error naming the file
// when it is damaged (wrong size, bad magic, unknown format, CRC mismatch, seq 0).
Result<std::optional<JournalBase>> read_journal_base(const std::filesystem::path& dir);

// What cut_journal_after removed.
struct CutReport {
  core::Seq first_cut{}, last_cut{};  // the records removed (both zero when none)
  std::uint64_t records = 0;
  // Bytes removed from disk: the records, headers of removed segments, and any torn tail.
  std::uint64_t bytes = 0;
  ChainHash chain_after{};  // chain hash of record keep_last (zero when keep_last is 0)
};

// Removes every record after `keep_last`: the segment holding keep_last + 1 is truncated at that
// record (or removed when that is its first record), every later segment is removed, and the
// truncated file and the directory are fsynced. keep_last == 0 (or, with a base, base.seq)
// removes every segment and keeps the base; keep_last before base.seq is an Error; keep_last ==
// the last seq changes nothing (a torn tail is left for JournalWriter::open to cut); keep_last
// past the last seq is an Error. The whole journal is read and validated first (as
// JournalWriter::open does): if JournalReader reports any damage this is an Error and nothing on
// disk is changed. A torn tail counts as absent (it
// is removed with the records before it when they are cut).
//
// Crash safety: later segments are removed last first, each removal made durable before the next,
// so a crash leaves a valid journal ending somewhere between keep_last and the old end; repeating
// the cut finishes it. No writer or reader may have `dir` open while this runs.
Result<CutReport> cut_journal_after(const std::filesystem::path& dir, core::Seq keep_last);

// What reset_journal_to_base removed.
struct ResetReport {
  std::uint64_t segments = 0;           // segment files removed
  std::uint64_t bytes = 0;              // their bytes
  std::optional<JournalBase> old_base;  // the base replaced, when base.qxb was readable
};

// Makes `dir` an empty journal based at `base` (creating the directory if needed): every segment
// is removed, then base.qxb is written. base.seq must be >= 1 (an Error otherwise, nothing
// changed). The old journal is not read, so a damaged one can be reset.
//
// Crash safety: segments are removed last first, each removal made durable before the next, so a
// crash leaves a valid prefix of the old journal (down to an empty journal at its old base, or
// none); the new base is written to base.qxb.tmp, fsynced, renamed over base.qxb and the directory
// fsynced, so a crash leaves the old base or the new one, never a torn file. Repeating the reset
// finishes it. No writer or reader may have `dir` open while this runs.
//
// The store is not touched: a caller installing a snapshot at base.seq puts it in the store, and
// forgets every snapshot and index past base.seq that described the history it replaced
// (Store::forget_after), or replay could start from one of those.
Result<ResetReport> reset_journal_to_base(const std::filesystem::path& dir, JournalBase base);

class JournalWriter {
 public:
  // Opens (creating the directory if needed) for appending after the last whole record (after
  // the base in an empty journal with one).
  static Result<JournalWriter> open(const std::filesystem::path& dir, JournalOptions options);

  JournalWriter(JournalWriter&& o) noexcept;
  JournalWriter& operator=(JournalWriter&& o) noexcept;
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  ~JournalWriter();

  // Encodes and buffers one event; its seq must be last_seq() + 1.
  Status append(const core::Event& event);
  // Appends an already encoded payload (the sequencer may encode outside the engine thread).
  Status append_encoded(core::Seq seq, std::int64_t timestamp_ns,
                        std::span<const std::uint8_t> payload);
  // Appends one record another journal wrote (a `Record::raw`), verbatim, into the pending group
  // under the same segment rules as append(). Before buffering anything it checks: at least a
  // record header; a length field within kRecordPayloadBytesMax that matches raw.size(); zero
  // padding; the CRC; seq == last_seq() + 1; and that the record's chain hash is this journal's
  // chain followed by the record (it links onto this journal). A refused record gives an Error
  // naming its seq and the failed check, and leaves the writer unchanged and usable. The payload
  // is not decoded. An I/O error while starting a segment leaves the writer unusable, as usual.
  Status append_record(std::span<const std::uint8_t> raw);
  // Writes the pending group and syncs per policy. Returns the durable sequence number.
  Result<core::Seq> commit();
  // From now on, the bytes of every record appended (exactly as they go to disk, a Record::raw
  // each) are also appended to *sink, for a replicating leader to ship; nullptr stops. The
  // caller owns the sink and empties it as it likes.
  void copy_records_to(std::vector<std::uint8_t>* sink) { tap_ = sink; }

  [[nodiscard]] core::Seq last_seq() const { return last_seq_; }
  [[nodiscard]] core::Seq durable_seq() const { return durable_seq_; }
  [[nodiscard]] const OpenReport& open_report() const { return report_; }
  [[nodiscard]] std::size_t pending_bytes() const { return pending_.size(); }

 private:
  JournalWriter() = default;
  Status start_segment(core::Seq first_seq);
  Result<std::uint8_t*> reserve_record(core::Seq seq, std::size_t record_bytes);
  Status write_pending();

  std::filesystem::path dir_;
  JournalOptions options_;
  int fd_ = -1;
  std::uint64_t segment_bytes_ = 0;
  std::vector<std::uint8_t> pending_;
  core::Seq last_seq_{};
  core::Seq durable_seq_{};
  core::Seq pending_first_seq_{};
  ChainHash chain_{};
  OpenReport report_;
  std::vector<std::uint8_t>* tap_ = nullptr;
};

// The fields of a record's header as written (the format above), for code that handles records
// as bytes (replication); `rec` points at a record's first byte, with at least
// kRecordHeaderBytes bytes. Nothing is checked.
std::uint32_t record_payload_bytes(const std::uint8_t* rec);
core::Seq record_seq(const std::uint8_t* rec);
ChainHash record_chain(const std::uint8_t* rec);
// The whole record's size: header, payload and padding to 8 bytes.
std::size_t record_size(const std::uint8_t* rec);

// Segment file name for a first sequence number.
std::string segment_name(core::Seq first_seq);

}  // namespace qx::replay
