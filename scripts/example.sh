#!/usr/bin/env bash
# Runs one of examples/ (e.g. `./scripts/example.sh market_maker_lobster`): builds the qaexchange
# package without sanitizers in build/python (incrementally) and installs it into
# build/python/venv, as scripts/python-test.sh does, then runs examples/NAME.py with the rest of
# the arguments. Output (journal, PNG) goes to build/examples/NAME unless --out says otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:?usage: scripts/example.sh NAME [ARGS...] (NAME: market_maker_lobster, momentum_btcusdt, bench_callbacks)}"
shift
[ -f "$root/examples/$name.py" ] || { echo "no example examples/$name.py" >&2; exit 1; }
build="${QX_PY_BUILD_DIR:-$root/build/python}"
venv="$build/venv"
mkdir -p "$build"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
if [ -z "${QX_EXAMPLE_NO_INSTALL:-}" ]; then
  QX_PY_BUILD_DIR="$build" QX_PY_JOBS="${QX_PY_JOBS:-2}" \
    "$venv/bin/pip" install -q --no-build-isolation --no-index "$root" >&2
fi
exec "$venv/bin/python" "$root/examples/$name.py" "$@"
