// Journal segments on real files: round trip, rotation, torn tails, and every kind of damage
// reported with its location while leaving the files untouched.
#include "replay/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>

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

  std::vector<fs::path> segments() const {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(dir_)) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
  }

  std::map<std::string, std::string> contents() const {
    std::map<std::string, std::string> m;
    for (const fs::path& p : segments()) {
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

}  // namespace
}  // namespace qx::replay
