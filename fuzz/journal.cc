// Fuzz target: the journal's readers on a damaged directory (replay/journal.h).
//
// Bytes become a journal directory: byte 0 holds flags; with bit 0 the next 60 bytes are
// base.qxb; with bit 1 the next two bytes give where the rest splits into two segment files.
// Each segment file is named for the first seq its header claims (so a mutation of the header
// moves the file too), or seq 1 when it is shorter than a header. Then:
//   - JournalReader reads every record and decodes every payload (replay/codec.h);
//   - verify_journal must agree with the reader: both fail, or both end at the same seq and chain;
//   - chain_hash_at(last) must answer the reader's chain;
//   - JournalWriter::open (which cuts a torn tail) must end at the same seq, take one more event,
//     and leave a journal that verifies one seq further.
// Nothing may crash, hang or read past a buffer, whatever the bytes.
//
//   scripts/fuzz.sh journal             # or: build/fuzz/fuzz/qx_fuzz_journal -runs=100000 DIR
#include "replay/journal.h"

#include <cstdint>
#include <cstring>
#include <fstream>

#include "fuzz/fuzz_input.h"
#include "replay/codec.h"

namespace {

using qx::replay::JournalReader;

void write_file(const std::filesystem::path& p, std::span<const std::uint8_t> bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void write_segment(const std::filesystem::path& dir, std::span<const std::uint8_t> bytes) {
  std::uint64_t first = 1;
  if (bytes.size() >= qx::replay::kSegmentHeaderBytes) std::memcpy(&first, bytes.data() + 24, 8);
  write_file(dir / qx::replay::segment_name(static_cast<qx::core::Seq>(first)), bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  qx::fuzz::Input in(data, size);
  const std::uint8_t flags = in.byte();
  const auto dir = qx::fuzz::scratch_dir("journal");
  if ((flags & 1) != 0)
    write_file(dir / qx::replay::kBaseFileName, in.take(qx::replay::kBaseFileBytes));
  if ((flags & 2) != 0) {
    const std::size_t cut = in.u64(2);
    write_segment(dir, in.take(cut));
  }
  write_segment(dir, in.rest());

  // Every record the reader hands out, decoded.
  bool read_ok = false;
  qx::core::Seq last{};
  qx::replay::ChainHash chain{};
  if (auto r = JournalReader::open(dir); r.ok()) {
    JournalReader& reader = r.value();
    qx::replay::Record rec;
    for (;;) {
      auto more = reader.next(rec);
      if (!more.ok()) break;
      if (!more.value()) {
        read_ok = true;
        last = reader.last_seq();
        chain = reader.chain();
        break;
      }
      QX_FUZZ_CHECK(rec.seq == reader.last_seq(), "a record's seq is the reader's last seq");
      (void)qx::replay::decode_event(rec.payload);
    }
  }

  auto verified = qx::replay::verify_journal(dir);
  QX_FUZZ_CHECK(verified.ok() == read_ok, "verify_journal and JournalReader agree on damage");
  if (!read_ok) return 0;
  QX_FUZZ_CHECK(verified.value().last_seq == last, "verify_journal ends where the reader does");
  QX_FUZZ_CHECK(verified.value().last_chain == chain, "verify_journal's chain is the reader's");
  if (last != qx::core::Seq{}) {
    auto at = qx::replay::chain_hash_at(dir, last);
    QX_FUZZ_CHECK(at.ok() && at.value() == chain, "chain_hash_at(last) is the reader's chain");
  }

  auto w = qx::replay::JournalWriter::open(dir, {.fsync = qx::replay::FsyncPolicy::kNone});
  QX_FUZZ_CHECK(w.ok(), "a journal that verifies opens for writing");
  QX_FUZZ_CHECK(w.value().last_seq() == last, "the writer continues after the last record");
  const auto next = static_cast<qx::core::Seq>(qx::core::raw(last) + 1);
  qx::core::Event ev{{next, 0, 0}, qx::core::MarkToMarket{}};
  if (!w.value().append(ev).ok()) return 0;  // e.g. a timestamp before the last one: refused
  auto committed = w.value().commit();
  QX_FUZZ_CHECK(committed.ok(), "a commit to a scratch folder succeeds");
  auto again = qx::replay::verify_journal(dir);
  QX_FUZZ_CHECK(again.ok() && again.value().last_seq == next,
                "the journal verifies one record further after an append");
  return 0;
}
