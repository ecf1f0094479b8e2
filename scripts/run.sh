#!/usr/bin/env bash
# The README's run command: installs what is needed, builds the release build (assertions on)
# and runs the demo trading session. Extra arguments go to `qx demo` (e.g. --seed 7 --events 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
exec ./build/release/app/qx demo "$@"
