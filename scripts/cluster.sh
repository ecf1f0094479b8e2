#!/usr/bin/env bash
# A replicated exchange on this machine (docs/cluster.md): a local etcd and three `qx serve
# --cluster` nodes on loopback with the demo's instruments, users and funded accounts.
#
#   ./scripts/cluster.sh            # builds (release), starts etcd and nodes 1-3, waits; Ctrl-C stops all
#   QX_CLUSTER_DIR=/tmp/c ./scripts/cluster.sh    # where data, cluster files and logs go
#
# Node i serves REST on 127.0.0.1:810i, binary TCP on :910i and replication on :710i; etcd
# listens on 127.0.0.1:2379. Any node answers reads; writes go to the leader (a follower answers
# 421 naming it). Kill the leader (its pid is printed) and another node takes over within about
# half a second; start it again with the command printed and it catches up as a follower.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target qx
QX="$PWD/build/release/app/qx"
DIR="${QX_CLUSTER_DIR:-$PWD/qx-cluster}"
mkdir -p "$DIR"
export QX_JWT_SECRET="${QX_JWT_SECRET:-local-cluster-secret-of-at-least-32-bytes}"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

etcd --name qx-local --data-dir "$DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster qx-local=http://127.0.0.1:2380 \
  --heartbeat-interval 10 --election-timeout 50 >"$DIR/etcd.log" 2>&1 &
pids+=($!)

nodes='[{"id": 1, "replication": "127.0.0.1:7101", "http": "127.0.0.1:8101", "tcp": "127.0.0.1:9101"},
        {"id": 2, "replication": "127.0.0.1:7102", "http": "127.0.0.1:8102", "tcp": "127.0.0.1:9102"},
        {"id": 3, "replication": "127.0.0.1:7103", "http": "127.0.0.1:8103", "tcp": "127.0.0.1:9103"}]'
for i in 1 2 3; do
  printf '{"name": "local", "node": %d, "etcd": ["127.0.0.1:2379"], "nodes": %s}\n' \
    "$i" "$nodes" >"$DIR/node$i.json"
  cmd="$QX serve --demo --cluster $DIR/node$i.json --data-dir $DIR/data$i"
  $cmd >"$DIR/node$i.log" 2>&1 &
  pids+=($!)
  echo "node $i: pid $! (REST http://127.0.0.1:810$i, log $DIR/node$i.log)"
  echo "  restart: QX_JWT_SECRET=\$QX_JWT_SECRET $cmd"
done
sleep 2
grep -h '"role_changed"' "$DIR"/node*.log | grep '"role":"leader"' | tail -1 || true
echo "demo users as in qx serve --demo (alice / alice-demo-pw, ...); Ctrl-C stops the cluster"
wait
