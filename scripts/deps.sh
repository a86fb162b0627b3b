#!/usr/bin/env bash
# Installs the Debian 12 packages a step needs, only when missing.
#   scripts/deps.sh demo   compiler, CMake, liburing
#   scripts/deps.sh test   + Criterion, clang and its sanitizer runtimes,
#                            the aarch64 cross compiler and qemu-user,
#                            clang-format, pkg-config, valgrind
set -euo pipefail

want=(build-essential cmake pkg-config liburing-dev)
if [ "${1:-demo}" = test ]; then
  want+=(libcriterion-dev clang libclang-rt-14-dev clang-format
         gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user valgrind)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "== installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
