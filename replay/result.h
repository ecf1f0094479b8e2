// Result<T> and Status: the [[nodiscard]] outcome of work that can fail because of the environment
// (corrupt bytes, I/O, a database error), for replay/ and sim/.
//
//   Result<core::Event> r = decode_event(bytes);
//   if (!r.ok()) return Error{"segment 3 offset 4096: " + r.error().message};
//   apply(r.value());
//
// Design: C++20 has no std::expected, so this is a small variant of a value and an Error holding
// a human-readable message (it names what was being read and why it failed). Business outcomes
// are never Results (they are reject effects), and broken invariants are assertions. Reading the
// value of a failed Result (or the error of a successful one) is a bug and asserts.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/assert.h"

namespace qx::replay {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    QX_ASSERT(ok());
    return *std::get_if<0>(&v_);
  }
  const T& value() const& {
    QX_ASSERT(ok());
    return *std::get_if<0>(&v_);
  }
  T&& value() && {
    QX_ASSERT(ok());
    return std::move(*std::get_if<0>(&v_));
  }
  const Error& error() const {
    QX_ASSERT(!ok());
    return *std::get_if<1>(&v_);
  }

 private:
  std::variant<T, Error> v_;
};

// The outcome of work that produces no value.
class [[nodiscard]] Status {
 public:
  Status() = default;                                                       // success
  Status(Error error) : error_(std::move(error.message)), failed_(true) {}  // NOLINT: implicit

  static Status success() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  Error error() const {
    QX_ASSERT(failed_);
    return Error{error_};
  }

 private:
  std::string error_;
  bool failed_ = false;
};

}  // namespace qx::replay
