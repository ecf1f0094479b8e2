#!/usr/bin/env bash
# Replays every golden journal with the given qx executable and compares with expected.txt.
# CI runs it with a second build (clang) so two compilers must agree on every hash.
set -euo pipefail
cd "$(dirname "$0")/.."
qx=${1:?usage: check-golden.sh PATH_TO_QX}
fail=0
while read -r name seq state effects; do
  case "$name" in "#"*|"") continue ;; esac
  tmp=$(mktemp -d)
  cp -r "journals/golden/$name/." "$tmp/"   # replay may create lmdb/ beside the segments
  got=$("$qx" replay "$tmp" --json)
  rm -rf "$tmp"
  want="\"effects_hash\":\"$effects\""
  if [[ "$got" == *"$want"* && "$got" == *"\"state_hash\":\"$state\""* && "$got" == *"\"last_seq\":$seq,"* ]]; then
    echo "golden $name: ok ($state $effects)"
  else
    echo "golden $name: MISMATCH: want $seq $state $effects, got $got"
    fail=1
  fi
done < journals/golden/expected.txt
exit $fail
