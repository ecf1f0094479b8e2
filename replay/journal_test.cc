// Journal segments on real files: round trip, rotation, torn tails, and every kind of damage
// reported with its location while leaving the files untouched; for replication, raw records
// copied into identical segment files, bad records refused, suffixes cut, chain hashes at a seq;
// journals that start after a snapshot (base.qxb): reset, damage, chains and cuts at the base.
#include "replay/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include "replay/codec.h"
#include "replay/crc32c.h"

namespace qx::replay {
namespace {

namespace fs = std::filesystem;
using core::Seq;

core::Event deposit_event(std::uint64_t seq) {
  return core::Event{core::EventHeader{Seq(seq), static_cast<std::int64_t>(1'000 + seq), 7},
                     core::Deposit{core::AccountId(static_cast<std::uint32_t>(seq % 5)),
                                   core::Money(static_cast<std::int64_t>(seq * 100))}};
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qx_journal_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(std::uint64_t from, std::uint64_t to, JournalOptions opt = {}) {
    auto w = JournalWriter::open(dir_, opt);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (std::uint64_t s = from; s <= to; ++s) {
      ASSERT_TRUE(w.value().append(deposit_event(s)).ok());
      if (s % 10 == 0) {
        ASSERT_TRUE(w.value().commit().ok());
      }
    }
    auto d = w.value().commit();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d.value(), Seq(to));
  }

  std::vector<fs::path> segments() const { return segments(dir_); }
  static std::vector<fs::path> segments(const fs::path& dir) {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
  }

  std::map<std::string, std::string> contents() const { return contents(dir_); }
  static std::map<std::string, std::string> contents(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (const fs::path& p : segments(dir)) {
      std::ifstream in(p, std::ios::binary);
      m[p.filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
    return m;
  }

  static void patch(const fs::path& p, std::uint64_t offset, std::string_view bytes) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  // Verifies, expects an error containing each of `needles`, and checks nothing changed on disk
  // (neither verify nor an attempt to open a writer may touch damaged files).
  void expect_damage(std::initializer_list<std::string> needles) {
    auto before = contents();
    auto v = verify_journal(dir_);
    ASSERT_FALSE(v.ok());
    for (const std::string& n : needles) {
      EXPECT_NE(v.error().message.find(n), std::string::npos) << v.error().message;
    }
    auto w = JournalWriter::open(dir_, {});
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(contents(), before);
  }

  fs::path dir_;
};

TEST_F(JournalTest, RoundTripAcrossReopenAndRotation) {
  JournalOptions small;
  small.segment_bytes_max = 2'000;  // forces many segments
  write(1, 40, small);
  write(41, 100, small);
  EXPECT_GT(segments().size(), 5u);
  auto r = JournalReader::open(dir_);
  ASSERT_TRUE(r.ok());
  Record rec;
  std::uint64_t n = 0;
  while (true) {
    auto more = r.value().next(rec);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!more.value()) break;
    n += 1;
    EXPECT_EQ(rec.seq, Seq(n));
    auto ev = decode_event(rec.payload);
    ASSERT_TRUE(ev.ok());
    EXPECT_EQ(ev.value().header.timestamp_ns, static_cast<std::int64_t>(1'000 + n));
    EXPECT_EQ(std::get<core::Deposit>(ev.value().body).amount,
              core::Money(static_cast<std::int64_t>(n * 100)));
  }
  EXPECT_EQ(n, 100u);
  EXPECT_FALSE(r.value().torn_tail());
}

TEST_F(JournalTest, RejectsOutOfSequenceAppend) {
  auto w = JournalWriter::open(dir_, {});
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w.value().append(deposit_event(2)).ok());
  EXPECT_TRUE(w.value().append(deposit_event(1)).ok());
  EXPECT_FALSE(w.value().append(deposit_event(1)).ok());
}

TEST_F(JournalTest, TornTailIsCutAndReported) {
  write(1, 20);
  fs::path seg = segments().back();
  auto size = fs::file_size(seg);
  fs::resize_file(seg, size - 5);  // a partial last record
  auto v = verify_journal(dir_);
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_TRUE(v.value().torn_tail.has_value());
  EXPECT_EQ(v.value().last_seq, Seq(19));
  EXPECT_EQ(fs::file_size(seg), size - 5);  // verify changes nothing
  auto w = JournalWriter::open(dir_, {});
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w.value().open_report().torn_tail.has_value());
  EXPECT_EQ(w.value().last_seq(), Seq(19));
  ASSERT_TRUE(w.value().append(deposit_event(20)).ok());
  ASSERT_TRUE(w.value().commit().ok());
  auto again = verify_journal(dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.value().torn_tail.has_value());
  EXPECT_EQ(again.value().last_seq, Seq(20));
}

TEST_F(JournalTest, ZeroFilledTailIsTorn) {
  write(1, 5);
  fs::path seg = segments().back();
  fs::resize_file(seg, fs::file_size(seg) + 4096);  // as after a crash with preallocation
  auto v = verify_journal(dir_);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.value().torn_tail.has_value());
  EXPECT_EQ(v.value().last_seq, Seq(5));
}

TEST_F(JournalTest, FlippedByteIsAHardErrorWithLocation) {
  write(1, 20);
  fs::path seg = segments().front();
  patch(seg, kSegmentHeaderBytes + kRecordHeaderBytes + 3, "\x7f");  // inside record 1's payload
  expect_damage({seg.filename().string(), "offset 80", "seq 1", "CRC"});
}

TEST_F(JournalTest, TruncatedMiddleSegmentIsAHardError) {
  JournalOptions small;
  small.segment_bytes_max = 1'000;
  write(1, 60, small);
  auto segs = segments();
  ASSERT_GE(segs.size(), 3u);
  fs::resize_file(segs[1], fs::file_size(segs[1]) - 9);
  expect_damage({segs[1].filename().string(), "offset"});
}

TEST_F(JournalTest, SwappedRecordsAreAHardError) {
  write(1, 3);
  fs::path seg = segments().front();
  std::string bytes = contents().begin()->second;
  // Records 1 and 2 have the same size: swap them.
  std::size_t rec = (bytes.size() - kSegmentHeaderBytes) / 3;
  std::string a = bytes.substr(kSegmentHeaderBytes, rec);
  std::string b = bytes.substr(kSegmentHeaderBytes + rec, rec);
  patch(seg, kSegmentHeaderBytes, b + a);
  expect_damage({"offset 80", "seq 1", "out of order"});
}

TEST_F(JournalTest, WrongVersionIsRefusedWithAClearMessage) {
  write(1, 3);
  fs::path seg = segments().front();
  // Semantics version 99, header CRC recomputed so that only the version is wrong.
  std::string bytes = contents().begin()->second;
  std::string header = bytes.substr(0, kSegmentHeaderBytes);
  header[16] = 99;
  std::uint32_t crc =
      crc32c(std::span(reinterpret_cast<const std::uint8_t*>(header.data()), std::size_t{76}));
  for (int i = 0; i < 4; ++i)
    header[76 + static_cast<std::size_t>(i)] = static_cast<char>(crc >> (8 * i));
  patch(seg, 0, header);
  expect_damage({"semantics version 99", "cannot be honoured"});
}

TEST_F(JournalTest, MissingSegmentIsAGap) {
  JournalOptions small;
  small.segment_bytes_max = 1'000;
  write(1, 60, small);
  auto segs = segments();
  ASSERT_GE(segs.size(), 3u);
  fs::remove(segs[1]);
  expect_damage({segs[2].filename().string(), "expected"});
}

// ---------------------------------------------------------------------------------------------
// Replication: copying raw records, cutting a suffix, chain hashes at a seq.

// One record of a journal, copied out of the reader's buffer.
struct Copied {
  Seq seq{};
  ChainHash chain{};
  std::vector<std::uint8_t> raw;
  std::size_t payload_bytes = 0;
  std::string segment;
  std::uint64_t offset = 0;
};

class JournalReplicationTest : public JournalTest {
 protected:
  static JournalOptions small() {
    JournalOptions o;
    o.segment_bytes_max = 1'000;  // a few records a segment
    return o;
  }

  // Deposit events (Cap'n Proto payloads: whole words) mixed with opaque payloads of odd sizes,
  // so that some records carry padding. At `diverge_at` a different payload is written instead,
  // which gives a journal whose later records have the same payloads but other chain hashes.
  static void write_mixed(const fs::path& dir, std::uint64_t from, std::uint64_t to,
                          JournalOptions opt, std::uint64_t diverge_at = 0) {
    auto w = JournalWriter::open(dir, opt);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (std::uint64_t s = from; s <= to; ++s) {
      auto ts = static_cast<std::int64_t>(1'000 + s);
      if (s == diverge_at) {
        std::vector<std::uint8_t> other(5, 0xee);
        ASSERT_TRUE(w.value().append_encoded(Seq(s), ts, other).ok());
      } else if (s % 3 == 0) {
        std::vector<std::uint8_t> opaque(s % 13 + 1);
        for (std::size_t i = 0; i < opaque.size(); ++i) {
          opaque[i] = static_cast<std::uint8_t>(s * 31 + i);
        }
        ASSERT_TRUE(w.value().append_encoded(Seq(s), ts, opaque).ok());
      } else {
        ASSERT_TRUE(w.value().append(deposit_event(s)).ok());
      }
      if (s % 7 == 0) {
        ASSERT_TRUE(w.value().commit().ok());
      }
    }
    ASSERT_TRUE(w.value().commit().ok());
  }

  static void read_all(const fs::path& dir, std::vector<Copied>& out) {
    out.clear();
    auto r = JournalReader::open(dir);
    ASSERT_TRUE(r.ok()) << r.error().message;
    Record rec;
    while (true) {
      auto more = r.value().next(rec);
      ASSERT_TRUE(more.ok()) << more.error().message;
      if (!more.value()) break;
      out.push_back(Copied{rec.seq,
                           rec.chain,
                           {rec.raw.begin(), rec.raw.end()},
                           rec.payload.size(),
                           rec.segment,
                           rec.offset});
    }
  }

  // Offers `raw` and expects a refusal naming `seq_text` and every needle, with the writer as it
  // was before.
  static void expect_refused(JournalWriter& w, std::span<const std::uint8_t> raw,
                             const std::string& seq_text,
                             std::initializer_list<std::string> needles) {
    Seq last = w.last_seq();
    std::size_t pending = w.pending_bytes();
    Status s = w.append_record(raw);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find(seq_text), std::string::npos) << s.error().message;
    for (const std::string& n : needles) {
      EXPECT_NE(s.error().message.find(n), std::string::npos) << s.error().message;
    }
    EXPECT_EQ(w.last_seq(), last);
    EXPECT_EQ(w.pending_bytes(), pending);
  }

  static std::uint64_t total_bytes(const std::map<std::string, std::string>& files) {
    std::uint64_t n = 0;
    for (const auto& [name, bytes] : files) n += bytes.size();
    return n;
  }

  // Cuts dir_ (written by write_mixed(1, 60, small())) after `keep` and checks the report, the
  // files left, and that a writer then continues the journal at keep + 1.
  void cut_and_continue(std::uint64_t keep) {
    std::vector<Copied> recs;
    ASSERT_NO_FATAL_FAILURE(read_all(dir_, recs));
    ASSERT_EQ(recs.size(), 60u);
    ASSERT_LT(keep, recs.size());
    auto before = contents();
    const Copied& first_cut = recs[keep];  // seq keep + 1
    ChainHash chain_after = keep == 0 ? ChainHash{} : recs[keep - 1].chain;

    auto cut = cut_journal_after(dir_, Seq(keep));
    ASSERT_TRUE(cut.ok()) << cut.error().message;
    EXPECT_EQ(cut.value().first_cut, Seq(keep + 1));
    EXPECT_EQ(cut.value().last_cut, Seq(60));
    EXPECT_EQ(cut.value().records, 60 - keep);
    EXPECT_EQ(cut.value().chain_after, chain_after);
    auto after = contents();
    EXPECT_EQ(cut.value().bytes, total_bytes(before) - total_bytes(after));

    // Segments before the cut are untouched, the one holding keep + 1 ends just before it (or is
    // gone when keep + 1 opened it), and every later one is gone.
    for (const auto& [name, bytes] : before) {
      if (name < first_cut.segment) {
        EXPECT_EQ(after.count(name), 1u) << name;
        EXPECT_TRUE(after[name] == bytes) << name;
      } else if (name == first_cut.segment && first_cut.offset > kSegmentHeaderBytes) {
        EXPECT_EQ(after.count(name), 1u) << name;
        EXPECT_TRUE(after[name] == bytes.substr(0, first_cut.offset)) << name;
      } else {
        EXPECT_EQ(after.count(name), 0u) << name;
      }
    }

    auto v = verify_journal(dir_);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v.value().last_seq, Seq(keep));
    EXPECT_EQ(v.value().last_chain, chain_after);
    EXPECT_FALSE(v.value().torn_tail.has_value());

    // The record cut is appended again, so it must link exactly as it did before the cut.
    {
      auto w = JournalWriter::open(dir_, small());
      ASSERT_TRUE(w.ok()) << w.error().message;
      EXPECT_EQ(w.value().last_seq(), Seq(keep));
      EXPECT_FALSE(w.value().open_report().torn_tail.has_value());
      ASSERT_TRUE(w.value().append_record(first_cut.raw).ok());
      ASSERT_TRUE(w.value().commit().ok());
    }
    auto again = verify_journal(dir_);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again.value().last_seq, Seq(keep + 1));
    EXPECT_EQ(again.value().last_chain, first_cut.chain);
  }
};

TEST_F(JournalReplicationTest, CopyingRawRecordsGivesIdenticalSegmentFiles) {
  fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 30, small()));
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 31, 60, small()));  // reopened part way
  auto files_a = contents(a);
  ASSERT_GT(files_a.size(), 5u);

  auto r = JournalReader::open(a);
  ASSERT_TRUE(r.ok());
  std::optional<JournalWriter> w;
  Record rec;
  std::uint64_t n = 0, padded_records = 0;
  while (true) {
    auto more = r.value().next(rec);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!more.value()) break;
    n += 1;
    // raw is the record as on disk, padding included.
    EXPECT_TRUE(rec.raw.size() == kRecordHeaderBytes + (rec.payload.size() + 7) / 8 * 8);
    const std::string& file = files_a[rec.segment];
    ASSERT_LE(rec.offset + rec.raw.size(), file.size());
    EXPECT_TRUE(std::equal(rec.raw.begin(), rec.raw.end(),
                           reinterpret_cast<const std::uint8_t*>(file.data() + rec.offset)));
    if (rec.payload.size() % 8 != 0) padded_records += 1;
    // Groups and reopenings other than A's: segment boundaries must not depend on them.
    if (!w || n == 23) {
      if (w) {
        ASSERT_TRUE(w->commit().ok());
      }
      w.reset();
      auto opened = JournalWriter::open(b, small());
      ASSERT_TRUE(opened.ok()) << opened.error().message;
      w.emplace(std::move(opened).value());
    }
    Status s = w->append_record(rec.raw);
    ASSERT_TRUE(s.ok()) << s.error().message;
    if (n % 5 == 0) {
      ASSERT_TRUE(w->commit().ok());
    }
  }
  ASSERT_TRUE(w->commit().ok());
  EXPECT_EQ(n, 60u);
  EXPECT_GT(padded_records, 0u);

  auto files_b = contents(b);
  ASSERT_EQ(files_b.size(), files_a.size());
  for (const auto& [name, bytes] : files_a) {
    ASSERT_EQ(files_b.count(name), 1u) << name;
    EXPECT_TRUE(files_b[name] == bytes) << name << " differs";
  }
}

// What a leader ships: every record appended (by append, append_encoded or append_record) comes
// out of the tap exactly as it reads back from disk, across segment boundaries; a record
// append_record refuses does not.
TEST_F(JournalReplicationTest, TheTapCopiesEveryAppendedRecordAsOnDisk) {
  fs::path a = dir_ / "a", b = dir_ / "b";
  std::vector<std::uint8_t> tap_a, tap_b;
  {
    auto w = JournalWriter::open(a, small());
    ASSERT_TRUE(w.ok()) << w.error().message;
    w.value().copy_records_to(&tap_a);
    for (std::uint64_t s = 1; s <= 40; ++s) {
      if (s % 3 == 0) {
        std::vector<std::uint8_t> opaque(s % 13 + 1, static_cast<std::uint8_t>(s));
        ASSERT_TRUE(w.value().append_encoded(Seq(s), 1'000, opaque).ok());
      } else {
        ASSERT_TRUE(w.value().append(deposit_event(s)).ok());
      }
      if (s % 6 == 0) {
        ASSERT_TRUE(w.value().commit().ok());
      }
    }
    ASSERT_TRUE(w.value().commit().ok());
  }
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(a, recs));
  ASSERT_EQ(recs.size(), 40u);
  ASSERT_GT(contents(a).size(), 3u);  // several segments
  std::vector<std::uint8_t> on_disk;
  for (const Copied& c : recs) on_disk.insert(on_disk.end(), c.raw.begin(), c.raw.end());
  EXPECT_TRUE(tap_a == on_disk);

  auto w = JournalWriter::open(b, small());
  ASSERT_TRUE(w.ok()) << w.error().message;
  w.value().copy_records_to(&tap_b);
  std::vector<std::uint8_t> bad = recs[1].raw;  // seq 2 before seq 1: refused
  EXPECT_FALSE(w.value().append_record(bad).ok());
  EXPECT_TRUE(tap_b.empty());
  for (const Copied& c : recs) ASSERT_TRUE(w.value().append_record(c.raw).ok());
  EXPECT_TRUE(tap_b == on_disk);
  w.value().copy_records_to(nullptr);
  ASSERT_TRUE(w.value().commit().ok());
  EXPECT_TRUE(tap_b == on_disk);
}

TEST_F(JournalReplicationTest, RefusedRecordsLeaveTheWriterUsable) {
  fs::path a = dir_ / "a", c = dir_ / "c", b = dir_ / "b";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 6, {}));
  ASSERT_NO_FATAL_FAILURE(write_mixed(c, 1, 6, {}, /*diverge_at=*/2));
  std::vector<Copied> ra, rc;
  ASSERT_NO_FATAL_FAILURE(read_all(a, ra));
  ASSERT_NO_FATAL_FAILURE(read_all(c, rc));
  // Record 3 has padding, and C's record 3 differs from A's only in its chain hash.
  ASSERT_NE(ra[2].payload_bytes % 8, 0u);
  ASSERT_TRUE(std::equal(ra[2].raw.begin() + kRecordHeaderBytes, ra[2].raw.end(),
                         rc[2].raw.begin() + kRecordHeaderBytes));
  ASSERT_NE(ra[2].chain, rc[2].chain);

  auto w = JournalWriter::open(b, {});
  ASSERT_TRUE(w.ok());
  JournalWriter& wb = w.value();
  // Refused before anything exists: no segment file may appear.
  expect_refused(wb, ra[1].raw, "seq 2", {"expects seq 1"});
  EXPECT_TRUE(segments(b).empty());
  ASSERT_TRUE(wb.append_record(ra[0].raw).ok());
  ASSERT_TRUE(wb.append_record(ra[1].raw).ok());

  std::vector<std::uint8_t> bad = ra[2].raw;
  bad[kRecordHeaderBytes + 1] ^= 0x40;
  expect_refused(wb, bad, "seq 3", {"CRC"});
  expect_refused(wb, ra[3].raw, "seq 4", {"out of sequence", "expects seq 3"});
  expect_refused(wb, rc[2].raw, "seq 3", {"chain hash", "does not link"});
  expect_refused(wb, std::span(ra[2].raw).first(ra[2].raw.size() - 8), "seq 3", {"length field"});
  expect_refused(wb, std::span(ra[2].raw).first(40), "seq 3", {"truncated"});
  expect_refused(wb, std::span(ra[2].raw).first(10), "seq unknown", {"truncated"});
  bad = ra[2].raw;
  bad[0] = static_cast<std::uint8_t>(bad[0] + 8);  // one word longer than the bytes given
  expect_refused(wb, bad, "seq 3", {"length field"});
  bad = ra[2].raw;
  bad[3] = 0x7f;  // far beyond kRecordPayloadBytesMax
  expect_refused(wb, bad, "seq 3", {"exceeds the maximum"});
  bad = ra[2].raw;
  bad.back() = 1;  // padding is outside the CRC: only the padding check sees this
  expect_refused(wb, bad, "seq 3", {"padding"});

  for (std::size_t i = 2; i < ra.size(); ++i) {
    Status s = wb.append_record(ra[i].raw);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  ASSERT_TRUE(wb.commit().ok());
  EXPECT_TRUE(contents(b) == contents(a));
  auto v = verify_journal(b);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().last_seq, Seq(6));
  EXPECT_EQ(v.value().last_chain, ra[5].chain);
}

TEST_F(JournalReplicationTest, CutInTheMiddleOfASegment) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(dir_, recs));
  // A record in the second segment that is not its first; later segments exist too.
  std::string second = segments()[1].filename().string();
  auto it = std::find_if(recs.begin(), recs.end(), [&](const Copied& r) {
    return r.segment == second && r.offset > kSegmentHeaderBytes;
  });
  ASSERT_NE(it, recs.end());
  ASSERT_GT(segments().size(), 3u);
  ASSERT_NO_FATAL_FAILURE(cut_and_continue(static_cast<std::uint64_t>(it->seq) - 1));
}

TEST_F(JournalReplicationTest, CutAtASegmentBoundaryRemovesThatSegment) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(dir_, recs));
  std::string third = segments()[2].filename().string();
  auto it =
      std::find_if(recs.begin(), recs.end(), [&](const Copied& r) { return r.segment == third; });
  ASSERT_NE(it, recs.end());
  ASSERT_EQ(it->offset, kSegmentHeaderBytes);
  ASSERT_NO_FATAL_FAILURE(cut_and_continue(static_cast<std::uint64_t>(it->seq) - 1));
  EXPECT_EQ(segments().size(), 3u);  // the third segment is written again by the append
}

TEST_F(JournalReplicationTest, CutAfterZeroRemovesEverything) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  ASSERT_NO_FATAL_FAILURE(cut_and_continue(0));
  EXPECT_EQ(segments().size(), 1u);  // only the one the append made
}

TEST_F(JournalReplicationTest, CutAtTheLastSeqChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  auto before = contents();
  auto v = verify_journal(dir_);
  ASSERT_TRUE(v.ok());
  auto cut = cut_journal_after(dir_, Seq(60));
  ASSERT_TRUE(cut.ok()) << cut.error().message;
  EXPECT_EQ(cut.value().records, 0u);
  EXPECT_EQ(cut.value().bytes, 0u);
  EXPECT_EQ(cut.value().first_cut, Seq{});
  EXPECT_EQ(cut.value().chain_after, v.value().last_chain);
  EXPECT_TRUE(contents() == before);
}

TEST_F(JournalReplicationTest, CutBeyondTheEndIsAnError) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  auto before = contents();
  auto cut = cut_journal_after(dir_, Seq(61));
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("beyond its last seq 60"), std::string::npos)
      << cut.error().message;
  EXPECT_TRUE(contents() == before);
}

TEST_F(JournalReplicationTest, CutRefusesADamagedJournal) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  auto segs = segments();
  ASSERT_GT(segs.size(), 3u);
  // Damage after the cut point as well as before it must stop the cut: both are checked here.
  patch(segs[2], kSegmentHeaderBytes + kRecordHeaderBytes + 1, "\x7f");
  auto before = contents();
  for (std::uint64_t keep : {1u, 59u}) {
    auto cut = cut_journal_after(dir_, Seq(keep));
    ASSERT_FALSE(cut.ok()) << keep;
    EXPECT_NE(cut.error().message.find(segs[2].filename().string()), std::string::npos)
        << cut.error().message;
    EXPECT_TRUE(contents() == before);
  }
}

TEST_F(JournalReplicationTest, CutTreatsATornTailAsAbsent) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 20, small()));
  fs::path last = segments().back();
  fs::resize_file(last, fs::file_size(last) - 5);  // record 20 is torn
  auto before = contents();
  auto none = cut_journal_after(dir_, Seq(19));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none.value().records, 0u);
  EXPECT_TRUE(contents() == before);
  EXPECT_FALSE(cut_journal_after(dir_, Seq(20)).ok());

  auto cut = cut_journal_after(dir_, Seq(15));
  ASSERT_TRUE(cut.ok()) << cut.error().message;
  EXPECT_EQ(cut.value().last_cut, Seq(19));
  EXPECT_EQ(cut.value().records, 4u);
  EXPECT_EQ(cut.value().bytes, total_bytes(before) - total_bytes(contents()));
  auto v = verify_journal(dir_);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().last_seq, Seq(15));
  EXPECT_FALSE(v.value().torn_tail.has_value());
}

TEST_F(JournalReplicationTest, ChainHashAtAgreesWithAFullRead) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  ASSERT_GT(segments().size(), 3u);
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(dir_, recs));
  auto zero = chain_hash_at(dir_, Seq(0));
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero.value(), ChainHash{});
  for (const Copied& r : recs) {
    auto h = chain_hash_at(dir_, r.seq);
    ASSERT_TRUE(h.ok()) << h.error().message;
    EXPECT_EQ(h.value(), r.chain) << "seq " << static_cast<std::uint64_t>(r.seq);
  }
  auto beyond = chain_hash_at(dir_, Seq(61));
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.error().message.find("beyond the end"), std::string::npos)
      << beyond.error().message;
}

TEST_F(JournalReplicationTest, ChainHashAtReadsOnlyTheSegmentHoldingTheSeq) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(dir_, recs));
  // With the first segment damaged, a seq in the last segment is still answered from that
  // segment (finding damage is verify_journal's work); a seq in the first one is an Error.
  fs::path first = segments().front();
  patch(first, kSegmentHeaderBytes + kRecordHeaderBytes + 1, "\x7f");
  auto h = chain_hash_at(dir_, recs.back().seq);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h.value(), recs.back().chain);
  EXPECT_FALSE(chain_hash_at(dir_, Seq(1)).ok());
}

// ---------------------------------------------------------------------------------------------
// A journal that starts after a snapshot: base.qxb.

class JournalBaseTest : public JournalReplicationTest {
 protected:
  // Writes a base file as the format says, CRC included, with any seq and format version, so
  // that a test can give a reader a base that disagrees with the segments.
  static void write_base_file(const fs::path& dir, std::uint64_t seq, const ChainHash& chain,
                              std::uint32_t format = kBaseFormatVersion) {
    std::string b(kBaseFileBytes, '\0');
    auto put = [&](std::size_t at, std::uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) {
        b[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
      }
    };
    b.replace(0, 8, "QXJBASE1");
    put(8, format, 4);
    put(16, seq, 8);
    std::memcpy(b.data() + 24, chain.data(), 32);
    put(56, crc32c(std::span(reinterpret_cast<const std::uint8_t*>(b.data()), std::size_t{56})), 4);
    std::ofstream(dir / kBaseFileName, std::ios::binary | std::ios::trunc) << b;
  }

  // Makes `b` journal A's records after `base` on a base taken from A, with A's segment size.
  static void copy_after_base(const std::vector<Copied>& a, const fs::path& b, std::uint64_t base) {
    ChainHash at = base == 0 ? ChainHash{} : a[base - 1].chain;
    auto reset = reset_journal_to_base(b, {Seq(base), at});
    ASSERT_TRUE(reset.ok()) << reset.error().message;
    auto w = JournalWriter::open(b, small());
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(w.value().last_seq(), Seq(base));
    ASSERT_TRUE(w.value().open_report().base.has_value());
    EXPECT_EQ(*w.value().open_report().base, (JournalBase{Seq(base), at}));
    for (std::size_t i = base; i < a.size(); ++i) {
      Status s = w.value().append_record(a[i].raw);
      ASSERT_TRUE(s.ok()) << s.error().message;
      if (i % 4 == 0) {
        ASSERT_TRUE(w.value().commit().ok());
      }
    }
    ASSERT_TRUE(w.value().commit().ok());
  }
};

TEST_F(JournalBaseTest, ResetThenCopyingTheTailGivesTheSameChain) {
  fs::path a = dir_ / "a";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 60, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(a, recs));
  auto files_a = contents(a);
  // A base inside a segment, one just before a segment starts, the first and the last record.
  std::uint64_t boundary = 0;
  for (const Copied& r : recs) {
    if (r.offset == kSegmentHeaderBytes && r.seq > Seq(10)) {
      boundary = static_cast<std::uint64_t>(r.seq) - 1;
      break;
    }
  }
  ASSERT_GT(boundary, 0u);
  for (std::uint64_t base : {std::uint64_t{1}, std::uint64_t{25}, boundary, std::uint64_t{60}}) {
    SCOPED_TRACE("base " + std::to_string(base));
    fs::path b = dir_ / ("b" + std::to_string(base));
    auto at = chain_hash_at(a, Seq(base));
    ASSERT_TRUE(at.ok()) << at.error().message;
    ASSERT_EQ(at.value(), recs[base - 1].chain);
    ASSERT_NO_FATAL_FAILURE(copy_after_base(recs, b, base));
    auto v = verify_journal(b);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v.value().last_seq, Seq(60));
    EXPECT_EQ(v.value().last_chain, recs.back().chain);
    ASSERT_TRUE(v.value().base.has_value());
    EXPECT_EQ(*v.value().base, (JournalBase{Seq(base), at.value()}));
    EXPECT_FALSE(v.value().torn_tail.has_value());
    auto files_b = contents(b);
    ASSERT_EQ(files_b.count(std::string(kBaseFileName)), 1u);
    if (base < 60) {
      EXPECT_EQ(files_b.count(segment_name(Seq(base + 1))), 1u);
    }
    // The records read back are A's, byte for byte, and chains agree at every seq.
    std::vector<Copied> got;
    ASSERT_NO_FATAL_FAILURE(read_all(b, got));
    ASSERT_EQ(got.size(), 60 - base);
    for (const Copied& r : got) {
      EXPECT_TRUE(r.raw == recs[static_cast<std::uint64_t>(r.seq) - 1].raw);
      auto h = chain_hash_at(b, r.seq);
      ASSERT_TRUE(h.ok()) << h.error().message;
      EXPECT_EQ(h.value(), r.chain);
    }
    // A base just before one of A's segments gives B that segment and every later one, identical.
    if (base == boundary) {
      for (const auto& [name, bytes] : files_a) {
        if (name <= segment_name(Seq(base))) continue;
        ASSERT_EQ(files_b.count(name), 1u) << name;
        EXPECT_TRUE(files_b[name] == bytes) << name;
      }
    }
  }
}

TEST_F(JournalBaseTest, AnEmptyBasedJournalEndsAtItsBase) {
  ChainHash chain{};
  chain[0] = 0xab;
  chain[31] = 0x01;
  fs::path b = dir_ / "new" / "journal";  // created by the reset
  auto reset = reset_journal_to_base(b, {Seq(1000), chain});
  ASSERT_TRUE(reset.ok()) << reset.error().message;
  EXPECT_EQ(reset.value().segments, 0u);
  EXPECT_FALSE(reset.value().old_base.has_value());
  auto base = read_journal_base(b);
  ASSERT_TRUE(base.ok()) << base.error().message;
  EXPECT_EQ(base.value(), std::optional(JournalBase{Seq(1000), chain}));
  auto v = verify_journal(b);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().segments, 0u);
  EXPECT_EQ(v.value().last_seq, Seq(1000));
  EXPECT_EQ(v.value().last_chain, chain);
  auto r = JournalReader::open(b);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().base(), std::optional(JournalBase{Seq(1000), chain}));
  // Without base.qxb a directory has no base.
  auto none = read_journal_base(dir_ / "nowhere");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().has_value());
}

TEST_F(JournalBaseTest, ResetOverAJournalRemovesItsSegmentsAndTheWriterStartsAfterTheBase) {
  ASSERT_NO_FATAL_FAILURE(write_mixed(dir_, 1, 60, small()));
  auto before = contents();
  ASSERT_GT(before.size(), 3u);
  // Seq 0 is no base: refused, nothing changed.
  auto zero = reset_journal_to_base(dir_, {Seq{}, ChainHash{}});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("1 or more"), std::string::npos) << zero.error().message;
  EXPECT_TRUE(contents() == before);

  ChainHash chain{};
  chain[5] = 0x55;
  auto reset = reset_journal_to_base(dir_, {Seq(100), chain});
  ASSERT_TRUE(reset.ok()) << reset.error().message;
  EXPECT_EQ(reset.value().segments, before.size());
  EXPECT_EQ(reset.value().bytes, total_bytes(before));
  EXPECT_EQ(segments(), std::vector<fs::path>{dir_ / kBaseFileName});
  {
    auto w = JournalWriter::open(dir_, small());
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(w.value().last_seq(), Seq(100));
    EXPECT_FALSE(w.value().append(deposit_event(1)).ok());
    ASSERT_TRUE(w.value().append(deposit_event(101)).ok());
    ASSERT_TRUE(w.value().append(deposit_event(102)).ok());
    ASSERT_TRUE(w.value().commit().ok());
  }
  auto segs = segments();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].filename().string(), segment_name(Seq(101)));
  // The new segment's header carries the base chain.
  std::string first = contents()[segment_name(Seq(101))];
  EXPECT_TRUE(std::equal(chain.begin(), chain.end(),
                         reinterpret_cast<const std::uint8_t*>(first.data() + 32)));
  auto v = verify_journal(dir_);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().last_seq, Seq(102));

  // A second reset replaces the base and reports the old one.
  ChainHash other{};
  other[0] = 1;
  auto again = reset_journal_to_base(dir_, {Seq(7), other});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value().segments, 1u);
  EXPECT_EQ(again.value().old_base, std::optional(JournalBase{Seq(100), chain}));
  auto w = JournalWriter::open(dir_, {});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w.value().last_seq(), Seq(7));
}

TEST_F(JournalBaseTest, ADamagedBaseFileIsAnErrorNamingIt) {
  fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 30, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(a, recs));
  ASSERT_NO_FATAL_FAILURE(copy_after_base(recs, b, 10));
  fs::path base_file = b / kBaseFileName;
  std::string good = contents(b)[std::string(kBaseFileName)];
  ASSERT_EQ(good.size(), kBaseFileBytes);
  struct Damage {
    std::string name, bytes, needle;
  };
  std::string bad_magic = good, bad_crc = good;
  bad_magic[3] = 'X';
  bad_crc[30] = static_cast<char>(bad_crc[30] ^ 1);  // inside the chain
  std::vector<Damage> damages = {
      {"short", good.substr(0, kBaseFileBytes - 1), "truncated: 59 bytes"},
      {"empty", "", "truncated: 0 bytes"},
      {"long", good + '\0', "longer than 60 bytes"},
      {"magic", bad_magic, "bad magic"},
      {"crc", bad_crc, "CRC mismatch"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.name);
    std::ofstream(base_file, std::ios::binary | std::ios::trunc) << d.bytes;
    auto before = contents(b);
    auto expect = [&](const std::string& what, const std::string& message) {
      EXPECT_NE(message.find(base_file.string()), std::string::npos) << what << ": " << message;
      EXPECT_NE(message.find(d.needle), std::string::npos) << what << ": " << message;
    };
    auto base = read_journal_base(b);
    ASSERT_FALSE(base.ok());
    expect("read_journal_base", base.error().message);
    auto v = verify_journal(b);
    ASSERT_FALSE(v.ok());
    expect("verify_journal", v.error().message);
    auto r = JournalReader::open(b);
    ASSERT_FALSE(r.ok());
    expect("JournalReader::open", r.error().message);
    auto w = JournalWriter::open(b, small());
    ASSERT_FALSE(w.ok());
    expect("JournalWriter::open", w.error().message);
    auto h = chain_hash_at(b, Seq(20));
    ASSERT_FALSE(h.ok());
    expect("chain_hash_at", h.error().message);
    auto cut = cut_journal_after(b, Seq(20));
    ASSERT_FALSE(cut.ok());
    expect("cut_journal_after", cut.error().message);
    EXPECT_TRUE(contents(b) == before);
  }
  // Well formed but meaningless: seq 0, an unknown format.
  write_base_file(b, 0, recs[9].chain);
  auto zero = verify_journal(b);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("base seq 0"), std::string::npos) << zero.error().message;
  EXPECT_NE(zero.error().message.find(kBaseFileName), std::string::npos);
  write_base_file(b, 10, recs[9].chain, 2);
  auto format = verify_journal(b);
  ASSERT_FALSE(format.ok());
  EXPECT_NE(format.error().message.find("format version 2"), std::string::npos)
      << format.error().message;
  // A reset replaces a damaged base.
  ASSERT_TRUE(reset_journal_to_base(b, {Seq(10), recs[9].chain}).ok());
  auto v = verify_journal(b);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().last_seq, Seq(10));
}

TEST_F(JournalBaseTest, SegmentsThatDoNotFollowTheBaseAreErrors) {
  fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 30, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(a, recs));
  ASSERT_NO_FATAL_FAILURE(copy_after_base(recs, b, 10));
  std::string first = segment_name(Seq(11));
  // The base one record later than the first segment's start.
  write_base_file(b, 11, recs[10].chain);
  auto before = contents(b);
  auto v = verify_journal(b);
  ASSERT_FALSE(v.ok());
  for (std::string n : {first, std::string("starts at seq 11 but seq 12 was expected"),
                        std::string(kBaseFileName)}) {
    EXPECT_NE(v.error().message.find(n), std::string::npos) << v.error().message;
  }
  EXPECT_FALSE(JournalWriter::open(b, small()).ok());
  // The right seq with another chain.
  ChainHash wrong = recs[9].chain;
  wrong[0] ^= 1;
  write_base_file(b, 10, wrong);
  v = verify_journal(b);
  ASSERT_FALSE(v.ok());
  for (std::string n : {first, std::string("does not match the base chain")}) {
    EXPECT_NE(v.error().message.find(n), std::string::npos) << v.error().message;
  }
  EXPECT_FALSE(JournalWriter::open(b, small()).ok());
  // A base where the journal has none: a journal from seq 1 does not start after seq 5.
  write_base_file(a, 5, recs[4].chain);
  v = verify_journal(a);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("starts at seq 1 but seq 6"), std::string::npos)
      << v.error().message;
}

TEST_F(JournalBaseTest, ChainHashesAndCutsAroundTheBase) {
  fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_NO_FATAL_FAILURE(write_mixed(a, 1, 60, small()));
  std::vector<Copied> recs;
  ASSERT_NO_FATAL_FAILURE(read_all(a, recs));
  ASSERT_NO_FATAL_FAILURE(copy_after_base(recs, b, 25));
  auto at = chain_hash_at(b, Seq(25));
  ASSERT_TRUE(at.ok()) << at.error().message;
  EXPECT_EQ(at.value(), recs[24].chain);
  for (std::uint64_t below : {0u, 1u, 24u}) {
    auto h = chain_hash_at(b, Seq(below));
    ASSERT_FALSE(h.ok()) << below;
    EXPECT_NE(h.error().message.find("starts after seq 25"), std::string::npos)
        << h.error().message;
  }
  auto r = JournalReader::open_at(b, Seq(25));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("starts after seq 25"), std::string::npos) << r.error().message;
  auto r26 = JournalReader::open_at(b, Seq(26));
  ASSERT_TRUE(r26.ok()) << r26.error().message;
  Record rec;
  auto more = r26.value().next(rec);
  ASSERT_TRUE(more.ok() && more.value());
  EXPECT_EQ(rec.seq, Seq(26));

  auto before = contents(b);
  auto below = cut_journal_after(b, Seq(24));
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.error().message.find("holds nothing before seq 26"), std::string::npos)
      << below.error().message;
  EXPECT_FALSE(cut_journal_after(b, Seq{}).ok());
  EXPECT_TRUE(contents(b) == before);

  auto cut = cut_journal_after(b, Seq(25));
  ASSERT_TRUE(cut.ok()) << cut.error().message;
  EXPECT_EQ(cut.value().first_cut, Seq(26));
  EXPECT_EQ(cut.value().last_cut, Seq(60));
  EXPECT_EQ(cut.value().records, 35u);
  EXPECT_EQ(cut.value().chain_after, recs[24].chain);
  EXPECT_EQ(segments(b), std::vector<fs::path>{b / kBaseFileName});
  auto v = verify_journal(b);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().last_seq, Seq(25));
  EXPECT_EQ(v.value().last_chain, recs[24].chain);
  // Cutting an empty based journal at its base changes nothing.
  auto none = cut_journal_after(b, Seq(25));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none.value().records, 0u);
  EXPECT_EQ(none.value().chain_after, recs[24].chain);
  auto w = JournalWriter::open(b, small());
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w.value().last_seq(), Seq(25));
  // Seq 26 of another history (same payload, other chain) does not link onto the base and is
  // refused; the leader's seq 26 is taken.
  fs::path c = dir_ / "c";
  ASSERT_NO_FATAL_FAILURE(write_mixed(c, 1, 30, small(), /*diverge_at=*/3));
  std::vector<Copied> other;
  ASSERT_NO_FATAL_FAILURE(read_all(c, other));
  ASSERT_NE(other[25].chain, recs[25].chain);
  expect_refused(w.value(), other[25].raw, "seq 26", {"does not link onto this journal's seq 25"});
  ASSERT_TRUE(w.value().append_record(recs[25].raw).ok());
  ASSERT_TRUE(w.value().commit().ok());
}

}  // namespace
}  // namespace qx::replay
