// Journal segments: writing with group commit, reading with full validation, torn-tail repair,
// and for replication appending raw records verbatim, cutting a suffix and resetting to a base.
// The format is documented in journal.h.
#include "replay/journal.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/snapshot.h"
#include "replay/codec.h"
#include "replay/crc32c.h"

namespace qx::replay {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'Q', 'X', 'J', 'O', 'U', 'R', 'N', 'L'};
constexpr char kBaseMagic[8] = {'Q', 'X', 'J', 'B', 'A', 'S', 'E', '1'};

void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::size_t padded(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

std::string errno_text() {
  return std::strerror(errno);
}

// SHA-256(previous chain || seq, timestamp || payload), through OpenSSL's EVP interface (which
// uses the CPU's SHA extensions where present). One digest context per thread is reused.
ChainHash chain_of(const ChainHash& prev, const std::uint8_t* seq_ts,
                   std::span<const std::uint8_t> payload) {
  // Fetching the algorithm once matters: an implicit fetch (EVP_sha256()) on every init costs
  // more than hashing a small record.
  struct Ctx {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Ctx c;
  ChainHash out;
  unsigned int n = 0;
  bool ok = c.md != nullptr && c.ctx != nullptr && EVP_DigestInit_ex2(c.ctx, c.md, nullptr) == 1 &&
            EVP_DigestUpdate(c.ctx, prev.data(), prev.size()) == 1 &&
            EVP_DigestUpdate(c.ctx, seq_ts, 16) == 1 &&
            EVP_DigestUpdate(c.ctx, payload.data(), payload.size()) == 1 &&
            EVP_DigestFinal_ex(c.ctx, out.data(), &n) == 1;
  QX_ASSERT(ok && n == out.size());
  return out;
}

std::uint32_t record_crc(const std::uint8_t* rec, std::size_t payload_len) {
  std::uint32_t c = crc32c(std::span(rec, 4));
  return crc32c(std::span(rec + 8, kRecordHeaderBytes - 8 + payload_len), c);
}

std::array<std::uint8_t, kSegmentHeaderBytes> make_header(core::Seq first, const ChainHash& prev) {
  std::array<std::uint8_t, kSegmentHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, 8);
  put32(h.data() + 8, kFormatVersion);
  put32(h.data() + 12, kSchemaVersion);
  put32(h.data() + 16, core::kSemanticsVersion);
  put64(h.data() + 24, static_cast<std::uint64_t>(first));
  std::memcpy(h.data() + 32, prev.data(), 32);
  put32(h.data() + 76, crc32c(std::span(h.data(), 76)));
  return h;
}

std::array<std::uint8_t, kBaseFileBytes> encode_base(const JournalBase& base) {
  QX_ASSERT(base.seq != core::Seq{});  // read_journal_base refuses seq 0 as damage
  std::array<std::uint8_t, kBaseFileBytes> b{};
  std::memcpy(b.data(), kBaseMagic, 8);
  put32(b.data() + 8, kBaseFormatVersion);
  put64(b.data() + 16, static_cast<std::uint64_t>(base.seq));
  std::memcpy(b.data() + 24, base.chain.data(), 32);
  put32(b.data() + 56, crc32c(std::span(b.data(), 56)));
  return b;
}

// "journal DIR starts after seq S (installed from a snapshot)": the one wording every refusal of
// a seq at or before the base uses.
std::string starts_after(const fs::path& dir, const JournalBase& base) {
  return "journal " + dir.string() + " starts after seq " +
         std::to_string(static_cast<std::uint64_t>(base.seq)) + " (installed from a snapshot)";
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

std::vector<fs::path> list_segments(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() == 24 && name.ends_with(".qxj")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Checks a whole record from another journal against the journal it is to extend (last seq and
// chain), in the order its fields can be trusted: framing, CRC, then meaning. Returns the
// record's chain hash, which equals the one it carries.
Result<ChainHash> check_record(std::span<const std::uint8_t> raw, core::Seq last_seq,
                               const ChainHash& chain) {
  const std::uint8_t* rec = raw.data();
  std::string seq_text = raw.size() >= 16 ? std::to_string(get64(rec + 8)) : "unknown";
  auto refuse = [&](const std::string& what) {
    return Error{"append_record seq " + seq_text + ": " + what + " (record refused)"};
  };
  if (raw.size() < kRecordHeaderBytes) {
    return refuse("truncated: " + std::to_string(raw.size()) + " bytes, shorter than a header");
  }
  std::uint32_t len = get32(rec);
  if (len > kRecordPayloadBytesMax) {
    return refuse("payload length " + std::to_string(len) + " exceeds the maximum");
  }
  std::size_t total = kRecordHeaderBytes + padded(len);
  if (raw.size() != total) {
    return refuse("length field " + std::to_string(len) + " needs a " + std::to_string(total) +
                  "-byte record but " + std::to_string(raw.size()) + " bytes were given");
  }
  std::size_t end = kRecordHeaderBytes + len;
  if (!all_zero(rec + end, total - end)) return refuse("nonzero padding");
  if (record_crc(rec, len) != get32(rec + 4)) return refuse("record CRC mismatch");
  std::uint64_t expected = static_cast<std::uint64_t>(last_seq) + 1;
  if (get64(rec + 8) != expected) {
    return refuse("out of sequence: the journal expects seq " + std::to_string(expected));
  }
  ChainHash next = chain_of(chain, rec + 8, raw.subspan(kRecordHeaderBytes, len));
  if (std::memcmp(next.data(), rec + 24, 32) != 0) {
    return refuse("chain hash mismatch: the record does not link onto this journal's seq " +
                  std::to_string(static_cast<std::uint64_t>(last_seq)));
  }
  return next;
}

Status sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Error{"open directory " + dir.string() + ": " + errno_text()};
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error{"fsync directory " + dir.string() + ": " + errno_text()};
  return {};
}

}  // namespace

std::uint32_t record_payload_bytes(const std::uint8_t* rec) {
  return get32(rec);
}

core::Seq record_seq(const std::uint8_t* rec) {
  return core::Seq(get64(rec + 8));
}

ChainHash record_chain(const std::uint8_t* rec) {
  ChainHash h;
  std::memcpy(h.data(), rec + 24, h.size());
  return h;
}

std::size_t record_size(const std::uint8_t* rec) {
  return kRecordHeaderBytes + padded(get32(rec));
}

std::string segment_name(core::Seq first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".qxj", static_cast<std::uint64_t>(first_seq));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The base file.

Result<std::optional<JournalBase>> read_journal_base(const fs::path& dir) {
  fs::path path = dir / kBaseFileName;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<JournalBase>{};
    return Error{"journal base " + path.string() + ": cannot open: " + errno_text()};
  }
  // One byte more than a base file holds, so that a longer file is seen as damage.
  std::array<std::uint8_t, kBaseFileBytes + 1> b{};
  std::size_t n = 0;
  std::optional<std::string> read_error;
  while (n < b.size() && !read_error) {
    ssize_t got = ::read(fd, b.data() + n, b.size() - n);
    if (got < 0 && errno != EINTR) read_error = errno_text();
    if (got == 0) break;
    if (got > 0) n += static_cast<std::size_t>(got);
  }
  ::close(fd);
  if (read_error) return Error{"journal base " + path.string() + ": read failed: " + *read_error};
  auto damaged = [&](const std::string& what) {
    return Error{"journal base " + path.string() + ": " + what + " (damaged base file)"};
  };
  if (n > kBaseFileBytes) {
    return damaged("longer than " + std::to_string(kBaseFileBytes) + " bytes");
  }
  if (n < kBaseFileBytes) {
    return damaged("truncated: " + std::to_string(n) + " bytes, not " +
                   std::to_string(kBaseFileBytes));
  }
  if (std::memcmp(b.data(), kBaseMagic, 8) != 0) return damaged("bad magic");
  if (get32(b.data() + 56) != crc32c(std::span(b.data(), 56))) return damaged("CRC mismatch");
  if (std::uint32_t format = get32(b.data() + 8); format != kBaseFormatVersion) {
    return damaged("unsupported base format version " + std::to_string(format) +
                   " (this build reads " + std::to_string(kBaseFormatVersion) + ")");
  }
  JournalBase base;
  base.seq = core::Seq(get64(b.data() + 16));
  std::memcpy(base.chain.data(), b.data() + 24, 32);
  if (base.seq == core::Seq{}) return damaged("base seq 0 (a base is seq 1 or later)");
  return std::optional<JournalBase>(base);
}

// ---------------------------------------------------------------------------------------------
// Reading.

Result<JournalReader> JournalReader::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error{"journal directory not found: " + dir.string()};
  auto base = read_journal_base(dir);
  if (!base) return base.error();
  JournalReader r;
  r.base_ = base.value();
  if (r.base_) {
    QX_ASSERT(r.base_->seq != core::Seq{});
    r.last_seq_ = r.base_->seq;
    r.chain_ = r.base_->chain;
  }
  r.segments_ = list_segments(dir);
  if (!r.segments_.empty()) r.last_segment_ = r.segments_.back();
  return r;
}

Result<JournalReader> JournalReader::open_at(const fs::path& dir, core::Seq seq) {
  auto r = open(dir);
  if (!r) return r;
  JournalReader& reader = r.value();
  if (reader.base_ && seq <= reader.base_->seq) {
    return Error{starts_after(dir, *reader.base_) + ": it holds no record at seq " +
                 std::to_string(static_cast<std::uint64_t>(seq))};
  }
  // Segment names are their zero-padded first seq, so name order is seq order.
  std::string want = segment_name(seq);
  std::size_t start = 0;
  for (std::size_t i = 0; i < reader.segments_.size(); ++i) {
    if (reader.segments_[i].filename().string() <= want) start = i;
  }
  if (start > 0) {
    reader.current_ = start;
    reader.adopt_header_ = true;
  }
  return r;
}

Status JournalReader::load_segment(std::size_t i) {
  const fs::path& path = segments_[i];
  std::string name = path.filename().string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"segment " + name + ": cannot open: " + errno_text()};
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::size_t>(in.tellg());
  in.seekg(0);
  buf_.resize(size);
  if (size > 0 &&
      !in.read(reinterpret_cast<char*>(buf_.data()), static_cast<std::streamsize>(size))) {
    return Error{"segment " + name + ": read failed"};
  }
  bytes_read_ += size;
  bool last = i + 1 == segments_.size();
  auto where = [&](const std::string& what) {
    return Error{"segment " + name + " offset 0: " + what};
  };
  if (size < kSegmentHeaderBytes) {
    if (last && all_zero(buf_.data(), size)) {
      torn_tail_ =
          "segment " + name + " has an incomplete header (" + std::to_string(size) + " bytes)";
      torn_offset_ = 0;
      return {};
    }
    return where("segment header truncated (" + std::to_string(size) + " bytes)");
  }
  const std::uint8_t* h = buf_.data();
  if (std::memcmp(h, kMagic, 8) != 0) return where("not a journal segment (bad magic)");
  if (get32(h + 76) != crc32c(std::span(h, 76))) return where("segment header CRC mismatch");
  std::uint32_t format = get32(h + 8), schema = get32(h + 12), semantics = get32(h + 16);
  if (format != kFormatVersion) {
    return where("unsupported journal format version " + std::to_string(format) +
                 " (this build reads " + std::to_string(kFormatVersion) + ")");
  }
  if (schema == 0 || schema > kSchemaVersion) {
    return where("unsupported schema version " + std::to_string(schema) +
                 " (this build reads up to " + std::to_string(kSchemaVersion) + ")");
  }
  if (semantics != core::kSemanticsVersion) {
    return where("engine semantics version " + std::to_string(semantics) +
                 " cannot be honoured by this engine (semantics " +
                 std::to_string(core::kSemanticsVersion) + ")");
  }
  std::uint64_t first = get64(h + 24);
  // The first segment of a based journal is checked against base.qxb: say so when it disagrees.
  std::string against_base;
  if (base_ && i == 0) {
    against_base = " (" + std::string(kBaseFileName) + ": the journal starts after seq " +
                   std::to_string(static_cast<std::uint64_t>(base_->seq)) + ")";
  }
  if (adopt_header_) {
    adopt_header_ = false;
    last_seq_ = core::Seq(first - 1);
    std::memcpy(chain_.data(), h + 32, 32);
  }
  std::uint64_t expected = static_cast<std::uint64_t>(last_seq_) + 1;
  if (first != expected) {
    return where("segment starts at seq " + std::to_string(first) + " but seq " +
                 std::to_string(expected) + " was expected (missing or extra segment)" +
                 against_base);
  }
  if (std::memcmp(h + 32, chain_.data(), 32) != 0) {
    if (!against_base.empty()) {
      return where("segment's previous-chain hash does not match the base chain" + against_base);
    }
    return where("segment's previous-chain hash does not match the preceding record");
  }
  if (name != segment_name(core::Seq(first))) {
    return where("file name does not match its first seq " + std::to_string(first));
  }
  pos_ = kSegmentHeaderBytes;
  return {};
}

Result<bool> JournalReader::next(Record& out) {
  while (true) {
    if (torn_tail_) return false;
    if (!loaded_) {
      if (current_ >= segments_.size()) return false;
      if (Status s = load_segment(current_); !s) return s.error();
      loaded_ = true;
      if (torn_tail_) return false;
    }
    std::string name = segments_[current_].filename().string();
    bool last = current_ + 1 == segments_.size();
    std::size_t size = buf_.size();
    if (pos_ == size) {
      loaded_ = false;
      current_ += 1;
      continue;
    }
    std::uint64_t expected = static_cast<std::uint64_t>(last_seq_) + 1;
    auto fail = [&](const std::string& what) -> Result<bool> {
      return Error{"segment " + name + " offset " + std::to_string(pos_) + " seq " +
                   std::to_string(expected) + ": " + what};
    };
    auto torn = [&](const std::string& what) -> Result<bool> {
      torn_tail_ = "segment " + name + " offset " + std::to_string(pos_) + ": " + what +
                   " (torn tail: " + std::to_string(size - pos_) + " bytes after seq " +
                   std::to_string(static_cast<std::uint64_t>(last_seq_)) + ")";
      torn_offset_ = pos_;
      return false;
    };
    const std::uint8_t* rec = buf_.data() + pos_;
    std::size_t left = size - pos_;
    if (left < kRecordHeaderBytes) {
      return last ? torn("incomplete record header") : fail("incomplete record header");
    }
    std::uint32_t len = get32(rec);
    std::size_t total = kRecordHeaderBytes + padded(len);
    if (len > kRecordPayloadBytesMax || total > left) {
      bool tail_zero_or_short = total > left || all_zero(rec, left);
      if (last && tail_zero_or_short) return torn("incomplete record");
      return fail("record length " + std::to_string(len) + " exceeds the segment");
    }
    if (record_crc(rec, len) != get32(rec + 4)) {
      // A bad CRC is a torn write only when nothing but zeros follows the record.
      if (last && all_zero(rec + total, left - total)) return torn("record CRC mismatch");
      return fail("record CRC mismatch");
    }
    std::uint64_t seq = get64(rec + 8);
    if (seq != expected) {
      return fail("sequence number " + std::to_string(seq) + " out of order (gap, repeat or swap)");
    }
    std::span<const std::uint8_t> payload(rec + kRecordHeaderBytes, len);
    ChainHash chain = chain_of(chain_, rec + 8, payload);
    if (std::memcmp(chain.data(), rec + 24, 32) != 0) return fail("chain hash mismatch");
    out.seq = core::Seq(seq);
    out.timestamp_ns = static_cast<std::int64_t>(get64(rec + 16));
    out.chain = chain;
    out.payload = payload;
    out.raw = std::span<const std::uint8_t>(rec, total);
    out.segment = name;
    out.offset = pos_;
    chain_ = chain;
    last_seq_ = core::Seq(seq);
    pos_ += total;
    return true;
  }
}

Result<OpenReport> verify_journal(const fs::path& dir) {
  auto r = JournalReader::open(dir);
  if (!r) return r.error();
  JournalReader& reader = r.value();
  Record rec;
  while (true) {
    auto more = reader.next(rec);
    if (!more) return more.error();
    if (!more.value()) break;
  }
  OpenReport rep;
  rep.segments = reader.segment_count();
  rep.last_seq = reader.last_seq();
  rep.last_chain = reader.chain();
  rep.torn_tail = reader.torn_tail();
  rep.base = reader.base();
  return rep;
}

Result<ChainHash> chain_hash_at(const fs::path& dir, core::Seq seq) {
  std::string what = "chain hash at seq " + std::to_string(static_cast<std::uint64_t>(seq)) + ": ";
  auto base = read_journal_base(dir);
  if (!base) return Error{what + base.error().message};
  if (const auto& b = base.value()) {
    if (seq == b->seq) return b->chain;
    if (seq < b->seq) return Error{what + starts_after(dir, *b) + ": it has no chain before that"};
  } else if (seq == core::Seq{}) {
    return ChainHash{};
  }
  auto r = JournalReader::open_at(dir, seq);
  if (!r) return r.error();
  JournalReader& reader = r.value();
  Record rec;
  while (true) {
    auto more = reader.next(rec);
    if (!more) {
      return Error{"chain hash at seq " + std::to_string(static_cast<std::uint64_t>(seq)) + ": " +
                   more.error().message};
    }
    if (!more.value()) break;
    if (rec.seq == seq) return rec.chain;
  }
  return Error{"chain hash at seq " + std::to_string(static_cast<std::uint64_t>(seq)) +
               ": beyond the end of the journal in " + dir.string() + " (last seq " +
               std::to_string(static_cast<std::uint64_t>(reader.last_seq())) + ")"};
}

// ---------------------------------------------------------------------------------------------
// Writing.

JournalWriter::JournalWriter(JournalWriter&& o) noexcept {
  *this = std::move(o);
}

JournalWriter& JournalWriter::operator=(JournalWriter&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    dir_ = std::move(o.dir_);
    options_ = o.options_;
    fd_ = std::exchange(o.fd_, -1);
    segment_bytes_ = o.segment_bytes_;
    pending_ = std::move(o.pending_);
    last_seq_ = o.last_seq_;
    durable_seq_ = o.durable_seq_;
    pending_first_seq_ = o.pending_first_seq_;
    chain_ = o.chain_;
    report_ = std::move(o.report_);
    tap_ = std::exchange(o.tap_, nullptr);
  }
  return *this;
}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Result<JournalWriter> JournalWriter::open(const fs::path& dir, JournalOptions options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"create journal directory " + dir.string() + ": " + ec.message()};
  auto r = JournalReader::open(dir);
  if (!r) return r.error();
  JournalReader& reader = r.value();
  Record rec;
  while (true) {
    auto more = reader.next(rec);
    if (!more) return more.error();
    if (!more.value()) break;
  }
  JournalWriter w;
  w.dir_ = dir;
  w.options_ = options;
  w.last_seq_ = w.durable_seq_ = reader.last_seq();
  w.chain_ = reader.chain();
  w.report_.segments = reader.segment_count();
  w.report_.last_seq = reader.last_seq();
  w.report_.last_chain = reader.chain();
  w.report_.torn_tail = reader.torn_tail();
  w.report_.base = reader.base();
  if (reader.segment_count() == 0) return w;
  fs::path last = reader.last_segment();
  if (reader.torn_tail()) {
    // Cut the torn tail back to the last whole record; a segment left without a whole header is
    // removed (its predecessor, or a fresh segment, takes the next record).
    std::uint64_t keep = reader.torn_offset();
    if (keep == 0) {
      fs::remove(last, ec);
      if (ec) return Error{"remove torn segment " + last.string() + ": " + ec.message()};
      if (Status s = sync_dir(dir); !s) return s.error();
      return w;
    }
    fs::resize_file(last, keep, ec);
    if (ec) return Error{"truncate torn tail of " + last.string() + ": " + ec.message()};
  }
  w.fd_ = ::open(last.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (w.fd_ < 0) return Error{"open " + last.string() + " for append: " + errno_text()};
  if (reader.torn_tail() && ::fdatasync(w.fd_) != 0) {
    return Error{"fdatasync " + last.string() + ": " + errno_text()};
  }
  w.segment_bytes_ = fs::file_size(last, ec);
  return w;
}

Status JournalWriter::start_segment(core::Seq first_seq) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  fs::path path = dir_ / segment_name(first_seq);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return Error{"create segment " + path.string() + ": " + errno_text()};
  auto header = make_header(first_seq, chain_);
  if (::write(fd_, header.data(), header.size()) != static_cast<ssize_t>(header.size())) {
    return Error{"write segment header " + path.string() + ": " + errno_text()};
  }
  if (options_.fsync == FsyncPolicy::kEveryGroup) {
    if (::fdatasync(fd_) != 0) return Error{"fdatasync " + path.string() + ": " + errno_text()};
    if (Status s = sync_dir(dir_); !s) return s;
  }
  segment_bytes_ = header.size();
  return {};
}

Status JournalWriter::append(const core::Event& event) {
  auto bytes = encode_event(event);
  if (!bytes) return bytes.error();
  return append_encoded(event.header.seq, event.header.timestamp_ns, bytes.value());
}

Status JournalWriter::append_encoded(core::Seq seq, std::int64_t timestamp_ns,
                                     std::span<const std::uint8_t> payload) {
  std::uint64_t expected = static_cast<std::uint64_t>(last_seq_) + 1;
  if (static_cast<std::uint64_t>(seq) != expected) {
    return Error{"append seq " + std::to_string(static_cast<std::uint64_t>(seq)) +
                 " but the journal expects " + std::to_string(expected)};
  }
  if (payload.size() > kRecordPayloadBytesMax) return Error{"event payload too large"};
  auto at = reserve_record(seq, kRecordHeaderBytes + padded(payload.size()));
  if (!at) return at.error();
  std::uint8_t* rec = at.value();
  put32(rec, static_cast<std::uint32_t>(payload.size()));
  put64(rec + 8, static_cast<std::uint64_t>(seq));
  put64(rec + 16, static_cast<std::uint64_t>(timestamp_ns));
  std::memcpy(rec + kRecordHeaderBytes, payload.data(), payload.size());
  chain_ = chain_of(chain_, rec + 8, payload);
  std::memcpy(rec + 24, chain_.data(), 32);
  put32(rec + 4, record_crc(rec, payload.size()));
  last_seq_ = seq;
  if (tap_ != nullptr)
    tap_->insert(tap_->end(), rec, rec + kRecordHeaderBytes + padded(payload.size()));
  return {};
}

Status JournalWriter::append_record(std::span<const std::uint8_t> raw) {
  // Everything is checked before anything changes, so a refused record leaves the writer as it was.
  auto chain = check_record(raw, last_seq_, chain_);
  if (!chain) return chain.error();
  core::Seq seq = core::Seq(static_cast<std::uint64_t>(last_seq_) + 1);
  auto at = reserve_record(seq, raw.size());
  if (!at) return at.error();
  std::memcpy(at.value(), raw.data(), raw.size());
  QX_ASSERT(get64(at.value() + 8) == static_cast<std::uint64_t>(seq));
  chain_ = chain.value();
  last_seq_ = seq;
  if (tap_ != nullptr) tap_->insert(tap_->end(), raw.begin(), raw.end());
  return {};
}

// The one place that decides segment boundaries, for append_encoded and append_record alike: a
// copied journal must roll over at the same records as the journal it copies.
Result<std::uint8_t*> JournalWriter::reserve_record(core::Seq seq, std::size_t record_bytes) {
  QX_ASSERT(record_bytes >= kRecordHeaderBytes && record_bytes % 8 == 0);
  // Rotate when this record would push a non-empty segment past its size limit.
  bool has_segment = fd_ >= 0;
  std::uint64_t before = segment_bytes_ + pending_.size();
  if (!has_segment ||
      (before + record_bytes > options_.segment_bytes_max && before > kSegmentHeaderBytes)) {
    if (Status s = write_pending(); !s) return s.error();
    if (Status s = start_segment(seq); !s) return s.error();
  }
  std::size_t at = pending_.size();
  pending_.resize(at + record_bytes);
  return pending_.data() + at;
}

Status JournalWriter::write_pending() {
  if (pending_.empty()) return {};
  const std::uint8_t* p = pending_.data();
  std::size_t n = pending_.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error{"journal write: " + errno_text()};
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  if (options_.fsync == FsyncPolicy::kEveryGroup && ::fdatasync(fd_) != 0) {
    return Error{"journal fdatasync: " + errno_text()};
  }
  segment_bytes_ += pending_.size();
  pending_.clear();
  return {};
}

Result<core::Seq> JournalWriter::commit() {
  if (Status s = write_pending(); !s) return s.error();
  durable_seq_ = last_seq_;
  return durable_seq_;
}

// ---------------------------------------------------------------------------------------------
// Cutting a suffix.

namespace {

// Where the first record after keep_last lives, found by reading (and so validating) the whole
// journal before anything is changed.
struct CutPlan {
  CutReport report;
  fs::path segment;             // holds keep_last + 1; empty when there is nothing to cut
  std::uint64_t offset = 0;     // of keep_last + 1 in `segment`
  std::vector<fs::path> later;  // every segment after `segment`
};

Result<CutPlan> plan_cut(const fs::path& dir, core::Seq keep_last) {
  auto r = JournalReader::open(dir);
  if (!r) return r.error();
  JournalReader& reader = r.value();
  CutPlan plan;
  std::uint64_t keep = static_cast<std::uint64_t>(keep_last);
  if (auto base = reader.base()) {
    if (keep_last < base->seq) {
      return Error{"cut journal " + dir.string() + " after seq " + std::to_string(keep) + ": " +
                   starts_after(dir, *base) + " and holds nothing before seq " +
                   std::to_string(static_cast<std::uint64_t>(base->seq) + 1)};
    }
    if (keep_last == base->seq) plan.report.chain_after = base->chain;
  }
  Record rec;
  while (true) {
    auto more = reader.next(rec);
    if (!more) return Error{"cut journal " + dir.string() + ": " + more.error().message};
    if (!more.value()) break;
    std::uint64_t seq = static_cast<std::uint64_t>(rec.seq);
    if (seq == keep) plan.report.chain_after = rec.chain;
    if (seq == keep + 1) {
      plan.segment = dir / rec.segment;
      plan.offset = rec.offset;
    }
  }
  std::uint64_t last = static_cast<std::uint64_t>(reader.last_seq());
  if (keep > last) {
    return Error{"cut journal " + dir.string() + " after seq " + std::to_string(keep) +
                 ": beyond its last seq " + std::to_string(last)};
  }
  if (keep == last) return plan;
  QX_ASSERT(!plan.segment.empty() && plan.offset >= kSegmentHeaderBytes);
  plan.report.first_cut = core::Seq(keep + 1);
  plan.report.last_cut = core::Seq(last);
  plan.report.records = last - keep;
  for (const fs::path& p : list_segments(dir)) {
    if (p.filename().string() > plan.segment.filename().string()) plan.later.push_back(p);
  }
  return plan;
}

// `op` names the work for the error ("cut journal").
Status remove_durably(const std::string& op, const fs::path& dir, const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Error{op + ": remove " + path.string() + ": " + ec.message()};
  return sync_dir(dir);
}

Status truncate_durably(const fs::path& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error{"cut journal: open " + path.string() + ": " + errno_text()};
  bool ok = ::ftruncate(fd, static_cast<off_t>(size)) == 0 && ::fsync(fd) == 0;
  std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok) return Error{"cut journal: truncate " + path.string() + ": " + why};
  return {};
}

}  // namespace

Result<CutReport> cut_journal_after(const fs::path& dir, core::Seq keep_last) {
  auto planned = plan_cut(dir, keep_last);
  if (!planned) return planned.error();
  CutPlan& plan = planned.value();
  if (plan.report.records == 0) return plan.report;
  std::error_code ec;
  for (const fs::path& p : plan.later) {
    plan.report.bytes += fs::file_size(p, ec);
    if (ec) return Error{"cut journal: size of " + p.string() + ": " + ec.message()};
  }
  std::uint64_t size = fs::file_size(plan.segment, ec);
  if (ec) return Error{"cut journal: size of " + plan.segment.string() + ": " + ec.message()};
  if (size <= plan.offset) return Error{"cut journal: " + plan.segment.string() + " shrank"};
  // Last segment first, each removal durable before the next: a crash part way leaves a shorter
  // journal without a gap, never a segment whose predecessor is gone.
  for (auto it = plan.later.rbegin(); it != plan.later.rend(); ++it) {
    if (Status s = remove_durably("cut journal", dir, *it); !s) return s.error();
  }
  if (plan.offset == kSegmentHeaderBytes) {
    // keep_last + 1 opens its segment: nothing of that segment is kept.
    plan.report.bytes += size;
    if (Status s = remove_durably("cut journal", dir, plan.segment); !s) return s.error();
    return plan.report;
  }
  plan.report.bytes += size - plan.offset;
  if (Status s = truncate_durably(plan.segment, plan.offset); !s) return s.error();
  if (Status s = sync_dir(dir); !s) return s.error();
  return plan.report;
}

// ---------------------------------------------------------------------------------------------
// Resetting to a base.

namespace {

// Writes base.qxb so that a crash leaves the old file or the new one: a temporary file, fsynced,
// renamed over it, then the directory fsynced.
Status write_base_durably(const fs::path& dir, const JournalBase& base) {
  auto bytes = encode_base(base);
  fs::path tmp = dir / (std::string(kBaseFileName) + ".tmp");
  fs::path path = dir / kBaseFileName;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"create " + tmp.string() + ": " + errno_text()};
  bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
            ::fsync(fd) == 0;
  std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok) return Error{"write " + tmp.string() + ": " + why};
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error{"rename " + tmp.string() + " to " + path.string() + ": " + errno_text()};
  }
  return sync_dir(dir);
}

}  // namespace

Result<ResetReport> reset_journal_to_base(const fs::path& dir, JournalBase base) {
  std::string op = "reset journal " + dir.string() + " to base seq " +
                   std::to_string(static_cast<std::uint64_t>(base.seq));
  if (base.seq == core::Seq{}) return Error{op + ": a base seq must be 1 or more"};
  std::error_code ec;
  bool existed = fs::is_directory(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Error{op + ": create directory: " + ec.message()};
  if (!existed) {
    fs::path parent = fs::absolute(dir, ec).parent_path();
    if (!ec && !parent.empty()) {
      if (Status s = sync_dir(parent); !s) return Error{op + ": " + s.error().message};
    }
  }
  ResetReport rep;
  // The old base is only reported: a damaged one is replaced like any other.
  if (auto old = read_journal_base(dir); old) rep.old_base = old.value();
  std::vector<fs::path> segments = list_segments(dir);
  // Last first, each removal durable before the next (as cut_journal_after does): a crash part
  // way leaves a prefix of the old journal, never a segment whose predecessor is gone.
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    rep.bytes += fs::file_size(*it, ec);
    if (ec) return Error{op + ": size of " + it->string() + ": " + ec.message()};
    if (Status s = remove_durably(op, dir, *it); !s) return s.error();
    rep.segments += 1;
  }
  if (Status s = write_base_durably(dir, base); !s) return Error{op + ": " + s.error().message};
  return rep;
}

}  // namespace qx::replay
