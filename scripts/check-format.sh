#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format (the .clang-format beside this
# repository's root) would write.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.h' '*.cc' 2>/dev/null || true)
[ -n "$files" ] || { echo "check-format: no C++ files"; exit 0; }
bad=$(echo "$files" | xargs clang-format --dry-run 2>&1 | grep -oE '^[^:]+:[0-9]+' | cut -d: -f1 | sort -u || true)
if [ -n "$bad" ]; then
  echo "check-format: these files need clang-format (run 'make format'):"
  echo "$bad"
  exit 1
fi
echo "check-format: $(echo "$files" | wc -l) files formatted"
