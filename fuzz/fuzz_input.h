// What the fuzz targets share: a cursor over the fuzzer's bytes, a scratch folder, and the one way
// a target reports a broken invariant.
//
//   qx::fuzz::Input in(data, size);
//   const std::uint8_t flags = in.byte();          // 0 once the bytes run out
//   std::span<const std::uint8_t> head = in.take(60);   // shorter when fewer are left
//   const auto dir = qx::fuzz::scratch_dir("journal");   // emptied for each input
//   auto [odd, even] = qx::fuzz::deal_lines(in.rest_text());   // lines 1, 3, ... and 2, 4, ...
//   QX_FUZZ_CHECK(a == b, "verify and the reader agree on the last seq");
//
// Targets never throw out of LLVMFuzzerTestOneInput and never abort on bad input: a bad input
// must get the decoder's error. QX_FUZZ_CHECK aborts (a crash libFuzzer keeps) only when the code
// under test broke one of its own promises.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#define QX_FUZZ_CHECK(cond, what)                                                             \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace qx::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  [[nodiscard]] bool empty() const { return pos_ >= size_; }
  [[nodiscard]] std::size_t left() const { return size_ - pos_; }

  std::uint8_t byte() { return empty() ? 0 : data_[pos_++]; }
  // Little-endian; missing bytes read as zero.
  std::uint64_t u64(std::size_t bytes = 8) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v |= std::uint64_t{byte()} << (8 * i);
    return v;
  }
  std::span<const std::uint8_t> take(std::size_t n) {
    if (n > left()) n = left();
    std::span<const std::uint8_t> out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  std::span<const std::uint8_t> rest() { return take(left()); }
  std::string_view text(std::size_t n) {
    auto s = take(n);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  std::string_view rest_text() { return text(left()); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The lines of `text` dealt alternately to two texts (first, second, first, ...), each line
// ending in '\n': the two files of a reader that reads them in step.
inline std::pair<std::string, std::string> deal_lines(std::string_view text) {
  std::pair<std::string, std::string> out;
  for (bool first = true; !text.empty(); first = !first) {
    const auto nl = text.find('\n');
    (first ? out.first : out.second).append(text.substr(0, nl)).push_back('\n');
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return out;
}

// The scratch folders of this process, removed when it exits normally (a crash leaves them, with
// the state that crashed).
struct ScratchDirs {
  std::vector<std::filesystem::path> made;
  ~ScratchDirs() {
    std::error_code ec;
    for (const auto& d : made) std::filesystem::remove_all(d, ec);
  }
};

// An empty folder of this process for `name`, emptied on every call: under TMPDIR when set, else
// /dev/shm when there is one (files there cost no disk, and an fsync nothing), else /tmp.
inline std::filesystem::path scratch_dir(const std::string& name) {
  static ScratchDirs dirs;
  std::filesystem::path root = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    root = tmp;
  } else if (std::filesystem::is_directory("/dev/shm")) {
    root = "/dev/shm";
  }
  const auto dir = root / ("qx-fuzz-" + name + "-" + std::to_string(::getpid()));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  if (std::find(dirs.made.begin(), dirs.made.end(), dir) == dirs.made.end())
    dirs.made.push_back(dir);
  return dir;
}

}  // namespace qx::fuzz
