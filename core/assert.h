// Assertions that stay on in every build (TigerBeetle style): a broken invariant is a bug, and
// continuing would corrupt state that is meant to be bit-identical everywhere. The message names
// the condition and its location; QX_ASSERT_EQ also prints both values.
#pragma once

#include <cstdint>

namespace qx::core {

[[noreturn]] void assert_fail(const char* cond, const char* file, int line);
[[noreturn]] void assert_fail_eq(const char* cond, std::int64_t a, std::int64_t b, const char* file,
                                 int line);

}  // namespace qx::core

#define QX_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::qx::core::assert_fail(#cond, __FILE__, __LINE__))

#define QX_ASSERT_EQ(a, b)                                                        \
  do {                                                                            \
    auto qx_a_ = static_cast<std::int64_t>(a);                                    \
    auto qx_b_ = static_cast<std::int64_t>(b);                                    \
    if (qx_a_ != qx_b_)                                                           \
      ::qx::core::assert_fail_eq(#a " == " #b, qx_a_, qx_b_, __FILE__, __LINE__); \
  } while (0)
