#!/usr/bin/env bash
# (Re)writes journals/golden/: the hand-made journals (tests/golden/make_golden.cc), a small demo
# session, and expected.txt with the hashes `qx replay` computes for each. Run it only when a
# change is meant to alter golden hashes, i.e. together with a bump of kSemanticsVersion.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
cmake --build "$build" --target qx qx_make_golden
out=journals/golden
rm -rf "$out/basic" "$out/rejects" "$out/rules" "$out/demo"
"$build/tests/golden/qx_make_golden" "$out"
"$build/app/qx" demo --seed 42 --events 5000 --journal "$out/demo" >/dev/null
rm -rf "$out/demo/lmdb"
{
  echo "# name last_seq state_hash effects_hash (written by scripts/make-golden.sh)"
  for name in basic rejects rules demo; do
    json=$("$build/app/qx" replay "$out/$name" --json)
    python3 -c 'import json,sys; j=json.loads(sys.argv[2]); print(sys.argv[1], j["last_seq"], j["state_hash"], j["effects_hash"])' "$name" "$json"
  done
} > "$out/expected.txt"
rm -rf "$out"/*/lmdb
cat "$out/expected.txt"
