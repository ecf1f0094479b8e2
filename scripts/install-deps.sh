#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need. Safe to run again: when every
# package is already installed it does nothing (no network).
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config make
  capnproto libcapnp-dev liblmdb-dev lmdb-utils libboost-dev libboost-system-dev libssl-dev
  libroaring-dev librapidcheck-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  zlib1g-dev
  nlohmann-json3-dev libsodium-dev libjwt-dev prometheus-cpp-dev prometheus python3-requests
  python3-websockets etcd-server
  pybind11-dev python3-dev python3-numpy python3-pytest python3-pandas python3-matplotlib
  python3-setuptools python3-wheel python3-pip python3-venv clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install packages (run as root or install them yourself)" >&2
  exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
