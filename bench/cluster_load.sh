#!/usr/bin/env bash
# Binary TCP load (qx_load, closed loop) against one `qx serve` node and against the leader of a
# local three-node cluster (etcd on loopback, docs/cluster.md), with ack = quorum and ack = local.
# Prints qx_load's figures (orders/s, ack latency percentiles) for each; all on this machine, so
# the three nodes, etcd and the load tool share its cores.
#
#   bench/cluster_load.sh [BUILD_DIR] [SECONDS] [RATE]   # default build/release, 10 s per run,
#                                                         # RATE 0: closed loop; else orders/s
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build/release}"
SECONDS_RUN="${2:-10}"
RATE="${3:-0}"
QX="$PWD/$BUILD/app/qx"
LOAD="$PWD/$BUILD/bench/qx_load"
DIR="$(mktemp -d /tmp/qx-cluster-load-XXXXXX)"
export QX_JWT_SECRET="cluster-load-secret-of-at-least-32-bytes"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$DIR"' EXIT

wait_for() {  # FILE PATTERN
  for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2
  return 1
}

load() {  # TCP ADDRESS
  "$LOAD" --tcp "$1" --rate "$RATE" --seconds "$SECONDS_RUN" --warmup 2 --connections 4 --window 64 ||
    echo "qx_load failed (exit $?)"
}

# Replication lag as the leader measured it (qx_cluster_replication_lag_seconds: a group durable
# on the leader -> the follower's acknowledgement of it arrives), p50/p99 per follower over the
# whole run, interpolated within the histogram's buckets as Prometheus' histogram_quantile does.
lag() {  # HTTP ADDRESS
  python3 - "$1" <<'PY'
import re, sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
buckets = {}  # node -> [(upper bound, cumulative count)]
for line in text.splitlines():
    if not line.startswith("qx_cluster_replication_lag_seconds_bucket{"):
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
    buckets.setdefault(labels["node"], []).append((le, float(line.rsplit(" ", 1)[1])))
def quantile(bs, x):
    bs.sort()
    rank, lo, below = x * bs[-1][1], 0.0, 0.0
    for le, n in bs:
        if n >= rank:
            return lo if le == float("inf") else lo + (le - lo) * (rank - below) / max(n - below, 1e-9)
        lo, below = le, n
    return lo
for node, bs in sorted(buckets.items()):
    print(f"replication lag to node {node}: {int(max(n for _, n in bs))} acks, "
          f"p50 {quantile(bs, 0.5) * 1e3:.3f} ms, p99 {quantile(bs, 0.99) * 1e3:.3f} ms")
PY
}

# No per-user rate limit: the load tool's two users send far more than the default 2,000/s.
printf '{"rate_limit_per_s": 100000000, "rate_limit_burst": 100000000}\n' >"$DIR/config.json"

echo "== single node"
"$QX" serve --demo --config "$DIR/config.json" --data-dir "$DIR/single" --http 127.0.0.1:0 --tcp 127.0.0.1:9290 \
  >"$DIR/single.log" 2>&1 &
pids+=($!)
wait_for "$DIR/single.log" "binary TCP on"
load 127.0.0.1:9290
stop_all

for ack in quorum local; do
  echo "== three nodes, ack = $ack"
  rm -rf "$DIR/etcd" "$DIR"/data*
  etcd --name b --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
    --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
    --initial-cluster b=http://127.0.0.1:23801 --heartbeat-interval 10 --election-timeout 50 \
    >"$DIR/etcd.log" 2>&1 &
  pids+=($!)
  nodes='[{"id": 1, "replication": "127.0.0.1:7201", "http": "127.0.0.1:8201", "tcp": "127.0.0.1:9201"},
          {"id": 2, "replication": "127.0.0.1:7202", "http": "127.0.0.1:8202", "tcp": "127.0.0.1:9202"},
          {"id": 3, "replication": "127.0.0.1:7203", "http": "127.0.0.1:8203", "tcp": "127.0.0.1:9203"}]'
  for i in 1 2 3; do
    printf '{"name": "load", "node": %d, "ack": "%s", "etcd": ["127.0.0.1:23791"], "nodes": %s}\n' \
      "$i" "$ack" "$nodes" >"$DIR/node$i.json"
    "$QX" serve --demo --config "$DIR/config.json" --cluster "$DIR/node$i.json" \
      --data-dir "$DIR/data$i" >"$DIR/node$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_for "$DIR/node$i.log" "binary TCP on"; done
  leader=""
  for _ in $(seq 1 200); do
    leader=$(grep -l '"role":"leader"' "$DIR"/node*.log | head -1 | sed 's/.*node\([0-9]\).log/\1/') || true
    [ -n "$leader" ] && break
    sleep 0.05
  done
  [ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
  sleep 1  # the first term journals the demo's data
  echo "leader: node $leader"
  load "127.0.0.1:920$leader"
  lag "127.0.0.1:820$leader"
  stop_all
done
