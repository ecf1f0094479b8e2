#include "server/wire_frame.h"

#include <kj/exception.h>
#include <kj/io.h>

#include <cstring>

namespace qx::wire {

void append_frame(std::string& out, capnp::MessageBuilder& m) {
  // Serialized straight into `out`: no intermediate array.
  const std::size_t n = capnp::computeSerializedSizeInWords(m) * sizeof(capnp::word);
  const std::size_t at = out.size();
  out.resize(at + kHeaderBytes + n);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + at);
  p[0] = static_cast<unsigned char>(n & 0xff);
  p[1] = static_cast<unsigned char>(n >> 8 & 0xff);
  p[2] = static_cast<unsigned char>(n >> 16 & 0xff);
  p[3] = static_cast<unsigned char>(n >> 24 & 0xff);
  kj::ArrayOutputStream stream(kj::arrayPtr(p + kHeaderBytes, n));
  capnp::writeMessage(stream, m);
}

FrameReader::FrameReader(std::size_t frame_bytes_max) : max_(frame_bytes_max) {}

void FrameReader::feed(const char* data, std::size_t n) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (64 << 10) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

FrameReader::Status FrameReader::next() {
  reader_.reset();
  if (buffered() < kHeaderBytes) return Status::kNeedMore;
  const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const std::size_t n = std::size_t{h[0]} | std::size_t{h[1]} << 8 | std::size_t{h[2]} << 16 |
                        std::size_t{h[3]} << 24;
  if (n > max_) return Status::kTooLarge;
  if (n == 0 || n % sizeof(capnp::word) != 0) return Status::kMalformed;
  if (buffered() < kHeaderBytes + n) return Status::kNeedMore;
  // Cap'n Proto reads words in place: copy the frame to aligned storage.
  static_assert(sizeof(std::uint64_t) == sizeof(capnp::word));
  words_.resize(n / sizeof(capnp::word));
  std::memcpy(words_.data(), buf_.data() + pos_ + kHeaderBytes, n);
  const auto* words = reinterpret_cast<const capnp::word*>(words_.data());
  pos_ += kHeaderBytes + n;
  capnp::ReaderOptions options;
  options.traversalLimitInWords = n / sizeof(capnp::word) * 4 + 64;
  options.nestingLimit = 16;
  try {
    reader_.emplace(kj::arrayPtr(words, words_.size()), options);
  } catch (const kj::Exception&) {
    reader_.reset();
    return Status::kMalformed;
  }
  // The segment table must account for the whole frame: no trailing bytes.
  if (reader_->getEnd() != words + words_.size()) {
    reader_.reset();
    return Status::kMalformed;
  }
  return Status::kFrame;
}

}  // namespace qx::wire
