#!/usr/bin/env bash
# The README's run command: installs what is needed, builds the release build (assertions on)
# and starts the exchange: `qx serve --demo` (REST and WebSocket on 127.0.0.1:8080, the binary
# TCP protocol on 127.0.0.1:9090, data in
# ./qx-data, demo instruments, users and funded accounts on first start; it prints the URLs and
# the demo credentials). Extra arguments go to `qx serve` (e.g. --http 127.0.0.1:8081).
# The offline trading session through the engine is `make demo` (qx demo).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
exec ./build/release/app/qx serve --demo "$@"
