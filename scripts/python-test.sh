#!/usr/bin/env bash
# Builds the qaexchange Python package without sanitizers (build/python, incremental), installs it
# into a virtual environment that sees Debian's numpy/pandas/pytest, and runs python/tests.
# ctest runs this (test python_qaexchange) with QX_BIN set to the dev build's `qx`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${QX_PY_BUILD_DIR:-$root/build/python}"
venv="$build/venv"
mkdir -p "$build"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
# Two jobs at most: ctest runs other tests beside this one.
QX_PY_BUILD_DIR="$build" QX_PY_JOBS="${QX_PY_JOBS:-2}" \
  "$venv/bin/pip" install -q --no-build-isolation --no-index "$root"
cd "$build"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests" "$@"
