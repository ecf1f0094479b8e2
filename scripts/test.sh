#!/usr/bin/env bash
# The README's test command: installs what is needed, checks formatting, builds with ASan+UBSan
# and runs every test (unit, property, end-to-end) through ctest, checks the golden journals with
# a second compiler, and runs every fuzz target for a fixed budget.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/check-format.sh
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)"
(cd build/dev && ctest --output-on-failure -j "$(nproc)")
# The golden journals must replay to the same hashes with a second compiler and optimisation
# level (clang, -O3) as with the GCC debug build ctest used.
cmake --preset clang >/dev/null
cmake --build --preset clang -j "$(nproc)" --target qx
./scripts/check-golden.sh build/clang/app/qx
# Every decoder's fuzz target (fuzz/README.md): clang with libFuzzer, ASan and UBSan, a fixed
# number of executions each (scripts/soak.sh runs them for 10^7).
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
./scripts/fuzz.sh --seed 1 ${QX_FUZZ_RUNS:+--runs "$QX_FUZZ_RUNS"}
