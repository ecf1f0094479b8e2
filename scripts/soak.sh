#!/usr/bin/env bash
# The long runs the test command only samples, with their figures:
#   - every fuzz target (fuzz/README.md) for QX_FUZZ_RUNS executions (default 10,000,000), each
#     continuing from the inputs earlier runs found (build/fuzz/found/);
#   - the cluster's fault simulation (cluster/node_test.cc: crashes, partitions, etcd isolation,
#     snapshot installs, checked for lost acknowledged events) over QX_CLUSTER_SEEDS seeds
#     (default 10,000).
# The failover soak with real processes is scripts/cluster-soak.sh.
#
#   ./scripts/soak.sh                                     # hours: every target, 10^7 each
#   QX_FUZZ_RUNS=1000000 ./scripts/soak.sh jwt config     # some targets, shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target qx_cluster_test

seeds="${QX_CLUSTER_SEEDS:-10000}"
echo "soak: cluster fault simulation, $seeds seeds"
start=$(date +%s)
log=build/release/soak-cluster.log
if ! QX_CLUSTER_SEEDS="$seeds" build/release/cluster/qx_cluster_test \
    --gtest_filter='Cluster.NoAcknowledgedEventIsLostWhenLeadersCrashAndLinksFail' > "$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "soak: the cluster simulation failed (whole output: $log; QX_CLUSTER_SEED=N replays seed N)" >&2
  exit 1
fi
grep -E "seeds:" "$log" || true
echo "soak: simulation took $(( $(date +%s) - start )) s"

echo "soak: fuzz targets, ${QX_FUZZ_RUNS:-10000000} executions each"
./scripts/fuzz.sh --runs "${QX_FUZZ_RUNS:-10000000}" "$@"
