#!/bin/bash
# recv_modes.sh - ways of receiving on io_uring, on plain liburing with no
# runtime (bench/uring_recv_modes.c): a shared ring of provided buffers and
# a copy (what Zokio's read-ahead does), a ring of each connection's own
# holding just its buffer (no copy), single-shot receives, and readiness
# from a multishot poll with recv(2); and, as the baseline, epoll_wait(2)
# with recv(2) and no ring. Alternating runs under the same load
# (bench/echo_ab.sh), so that a slow minute hurts them alike.
#
#   bash bench/recv_modes.sh [CONNS] [SIZE] [ROUNDS]     (1000 4096 5)
#
# Env SECS: measured seconds per run [3]. The server is one thread: compare
# the modes with each other, not with the runtimes' two-worker servers.
# Needs build-bench (bash bench/io_compare.sh makes it, or cmake with
# -DZOKIO_BUILD_BENCH=ON into build-bench).
set -euo pipefail
conns=${1:-1000}; size=${2:-4096}; rounds=${3:-5}
cd "$(dirname "$0")/.."
bin=$PWD/build-bench/bench/bench_uring_recv_modes
[ -x "$bin" ] || { echo "build $bin first (see the header)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for m in shared own single poll epoll; do
  printf '#!/bin/sh\nRECV_MODE=%s exec %s "$@"\n' "$m" "$bin" >"$dir/$m"
  chmod +x "$dir/$m"
done
bash bench/echo_ab.sh io_uring "$conns" "$size" "$rounds" \
  "$dir/shared" "$dir/own" "$dir/single" "$dir/poll" "$dir/epoll"
