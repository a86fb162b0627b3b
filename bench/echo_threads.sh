#!/bin/bash
# echo_threads.sh - how an echo server's threads and the load generator's
# share the machine's cores: for each thread that ran during the sample,
# the time it ran, the time it was ready but waited for a core (from
# /proc/.../schedstat), how many times it went to sleep (voluntary
# context switches) and how many times it was preempted (involuntary),
# per round trip (the load generator's rate times the sampled seconds).
#
#   bash bench/echo_threads.sh [SERVER|tokio] [BACKEND] [CONNS] [SIZE]
#
# SERVER: an echo server binary taking the port as its only argument
# [build-bench/bench/bench_echo_server], or `tokio` for Tokio's. BACKEND goes
# to ZOKIO_IO_BACKEND [io_uring]. CONNS [1000] connections of SIZE-byte
# [64] messages from build-bench/bench/echo_load (bash bench/io_compare.sh
# builds it and the Tokio peer). Env SECS: sampled seconds [2], within a
# load of SECS + 2 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/echo_lib.sh
echo_args "$@"
secs=${SECS:-2}
load=$(mktemp)
before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$load" "$before" "$after"' EXIT

port=$((20000 + RANDOM % 10000))
ZOKIO_IO_BACKEND=$be "$server" $port 2>/dev/null &
pid=$!
echo_wait_port $port
ECHO_SERVER_PID=$pid build-bench/bench/echo_load 127.0.0.1:$port \
  "$conns" "$size" $((secs + 2)) 1 x >"$load" 2>/dev/null &
lp=$!

# One line per thread: tid, name, ns run, ns waited, voluntary and
# involuntary switches.
snapshot() {
  for t in /proc/$pid/task/* /proc/$lp/task/*; do
    read -r run wait _ <"$t/schedstat" || continue
    awk -v tid="$(basename "$t")" -v name="$(tr ' ' _ <"$t/comm")" \
        -v run="$run" -v wait="$wait" '
      /^voluntary_ctxt_switches/ {v = $2}
      /^nonvoluntary_ctxt_switches/ {n = $2}
      END {print tid, name, run, wait, v, n}' "$t/status"
  done | sort
}
sleep 1
snapshot >"$before"
sleep "$secs"
snapshot >"$after"
wait $lp || true
kill $pid
wait $pid 2>/dev/null || true

rate=$(awk -v n="echo_${size}_${conns}" '$2 == n {print $4}' "$load")
[ -n "$rate" ] || { echo "the load generator failed" >&2; exit 1; }
echo "$server ($be), $conns connections, $size B: $rate msgs/s"
printf '  %-16s %8s %8s %9s %9s\n' thread "ran ms" "waited" "sleeps/rt" "preempt/rt"
join "$before" "$after" | awk -v rt="$rate" -v s="$secs" '
  { ran = ($8 - $3) / 1e6; waited = ($9 - $4) / 1e6
    if (ran < 1) next
    printf "  %-16s %8.0f %8.0f %9.4f %9.4f\n", $2, ran, waited,
           ($10 - $5) / (rt * s), ($11 - $6) / (rt * s) }'
