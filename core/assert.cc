// Assertion failure reporting. Writing to stderr is the one I/O core performs, and only on the
// way to abort(); it uses the C library directly so that core needs no stream headers.
#include "core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace qx::core {

void assert_fail(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "qx: assertion failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}

void assert_fail_eq(const char* cond, std::int64_t a, std::int64_t b, const char* file, int line) {
  std::fprintf(stderr, "qx: assertion failed: %s (%lld vs %lld) at %s:%d\n", cond,
               static_cast<long long>(a), static_cast<long long>(b), file, line);
  std::abort();
}

}  // namespace qx::core
