#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/README.md) for a fixed number of executions each and prints
# what each did. Needs the fuzz preset's build (scripts/test.sh makes it).
#
#   scripts/fuzz.sh                       # every target: the test command's budget (below)
#   scripts/fuzz.sh --runs 10000000 jwt   # one target, longer (scripts/soak.sh)
#   scripts/fuzz.sh --seed 1              # libFuzzer's random seed fixed (the test command's)
#
# The test command's budget is 20,000 executions per target, and 4,000 for the three that run a
# whole in-process exchange per input (rest, diff, client_frame: a few hundred inputs a second);
# --runs gives every target the same number.
#
# Each target starts from its seed corpus and its regressions, which it only reads; the inputs it
# finds go to build/fuzz/found/<target>/ (kept between runs, so a longer run continues). A crash,
# a leak, a hang over 10 s or an input over 2 GiB of memory stops the run: the input is written
# to build/fuzz/artifacts/, the line that replays it is printed, and the script exits 1. A target
# that ran fewer executions than asked fails too, so that a budget can never pass by running less.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=""
seed=""
slow_targets=" rest diff client_frame "
build=build/fuzz
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs|--seed|--build)
      [ $# -ge 2 ] || { echo "fuzz.sh: $1 needs a value" >&2; exit 2; }
      case "$1" in --runs) runs="$2" ;; --seed) seed="$2" ;; --build) build="$2" ;; esac
      shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
for n in "$runs" "$seed"; do
  if [ -n "$n" ] && ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: '$n' is not a positive whole number" >&2
    exit 2
  fi
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/corpus/*/; do targets+=("$(basename "$f")"); done
fi

mkdir -p "$build/artifacts"
printf '%-14s %12s %10s %8s %8s %8s\n' target executions exec/s cov ft corpus
for t in "${targets[@]}"; do
  exe="$build/fuzz/qx_fuzz_$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz.sh: $exe is missing (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
    exit 2
  fi
  found="$build/found/$t"
  mkdir -p "$found"
  dirs=("$found" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  budget="$runs"
  if [ -z "$budget" ]; then
    budget=20000
    [[ "$slow_targets" == *" $t "* ]] && budget=4000
  fi
  args=(-runs="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/artifacts/$t-")
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  [ -n "$seed" ] && args+=(-seed="$seed")
  log="$build/fuzz-$t.log"
  start=$(date +%s%N)
  if ! "$exe" "${args[@]}" "${dirs[@]}" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    crash=$({ grep -o "Test unit written to [^ ]*" "$log" || true; } | tail -n 1 | sed 's/Test unit written to //')
    echo "fuzz.sh: $t failed; replay with: $exe ${crash:-<input>}" >&2
    echo "fuzz.sh: keep the input as fuzz/regressions/$t/<what-it-shows> before fixing it" >&2
    exit 1
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
  done_runs=$({ grep -o "^Done [0-9]* runs" "$log" || true; } | awk '{print $2}')
  if [ "${done_runs:-0}" -lt "$budget" ]; then
    echo "fuzz.sh: $t ran ${done_runs:-0} of $budget executions (see $log)" >&2
    exit 1
  fi
  stats=$({ grep -E "^#[0-9]+[[:space:]]+DONE" "$log" || true; } | tail -n 1)
  cov=$({ echo "$stats" | grep -o "cov: [0-9]*" || true; } | awk '{print $2}')
  ft=$({ echo "$stats" | grep -o "ft: [0-9]*" || true; } | awk '{print $2}')
  corp=$({ echo "$stats" | grep -o "corp: [0-9]*" || true; } | awk '{print $2}')
  printf '%-14s %12s %10s %8s %8s %8s\n' "$t" "$done_runs" "$(( done_runs * 1000 / ms ))" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}"
done
