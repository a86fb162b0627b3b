#!/usr/bin/env bash
# Builds Zokio's scheduler, channel and lock benchmarks (bench/sched.c,
# bench/sync.c) and the Tokio and Go peers, runs the
# same workloads in each (multi-thread runtimes, 2 workers; each figure is
# the median of 5 runs), and prints one table with the ratios.
#
#   bash bench/compare.sh              all workloads
#   bash bench/compare.sh ping_pong    one workload
#
# Peers: Tokio from Debian's librust-tokio-dev, built offline with Debian's
# cargo (bench/peers/tokio/.cargo/config.toml points it at
# /usr/share/cargo/registry); Go from golang-go, GOMAXPROCS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-}

bash scripts/deps.sh demo
need=()
for p in cargo rustc librust-tokio-dev golang-go; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

out=build-bench
mkdir -p "$out"
echo "== building zokio (Release)"
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DZOKIO_BUILD_BENCH=ON >/dev/null
cmake --build "$out" -j"$(nproc)" >/dev/null
echo "== building the Tokio peer (Debian's cargo, offline)"
(cd bench/peers/tokio && /usr/bin/cargo build --release --quiet)
echo "== building the Go peer"
(cd bench/peers/go && GO111MODULE=off /usr/bin/go build -o "../../../$out/peer-go" main.go sync.go)

results="$out/results.txt"
: > "$results"
echo "== running (this takes a few minutes)"
"./$out/bench/bench_sched" $only | tee -a "$results"
"./$out/bench/bench_sync" $only | tee -a "$results"
bench/peers/tokio/target/release/zokio-peer-tokio $only | tee -a "$results"
GOMAXPROCS=2 "./$out/peer-go" $only | tee -a "$results"

echo
echo "Lower is better. Ratios are peer / Zokio's best variant: above 1.00 Zokio is ahead."
awk '
  $1 == "RESULT" { v[$2 "," $3] = $4; unit[$2] = $5; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
  function cell(k) { return (k in v) ? sprintf("%10s", v[k]) : sprintf("%10s", "-") }
  END {
    printf "%-18s %-11s %10s %10s %10s %10s %9s %9s\n", "workload", "unit", "zk-coro", "zk-future", "tokio", "go", "tokio/zk", "go/zk"
    for (i = 0; i < n; i++) {
      w = order[i]
      best = ""
      if ((w ",coro") in v) best = v[w ",coro"]
      if ((w ",future") in v && (best == "" || v[w ",future"] + 0 < best + 0)) best = v[w ",future"]
      rt = ((w ",tokio") in v && best > 0) ? sprintf("%9.2f", v[w ",tokio"] / best) : sprintf("%9s", "-")
      rg = ((w ",go") in v && best > 0) ? sprintf("%9.2f", v[w ",go"] / best) : sprintf("%9s", "-")
      printf "%-18s %-11s %s %s %s %s %s %s\n", w, unit[w], cell(w ",coro"), cell(w ",future"), cell(w ",tokio"), cell(w ",go"), rt, rg
    }
  }' "$results"
echo
echo "Notes: spawn_join_remote spawns from a plain thread outside the runtime and joins it;"
echo "Go has no outside (main is a goroutine), so its row measures an in-runtime spawn + channel."
echo "idle_memory_100k for zk-coro counts the coroutine's stack page."
