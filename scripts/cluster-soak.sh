#!/usr/bin/env bash
# The long run of the cluster's failover test (tests/e2e/test_cluster.py): etcd and three
# `qx serve --cluster` nodes, the leader stopped QX_CLUSTER_KILLS times (default 200; one stop in
# four a SIGTERM, the rest SIGKILL) under an order load. Prints the orders acknowledged and the
# failover times (kill to the first order acknowledged by the new leader); fails if any
# acknowledged order is missing from the journals or the journals replay to different states.
#
#   ./scripts/cluster-soak.sh              # release build, 200 stops
#   QX_CLUSTER_KILLS=50 ./scripts/cluster-soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target qx
QX_BIN="$PWD/build/release/app/qx" QX_CLUSTER_KILLS="${QX_CLUSTER_KILLS:-200}" \
  /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/e2e/test_cluster.py \
  -k no_acknowledged_order_is_lost
