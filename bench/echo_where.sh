#!/bin/bash
# echo_where.sh - where an echo server's CPU goes per round trip, kernel
# included: samples the server with perf (call graphs, all CPU time, user
# and kernel) under the load generator and sorts every sample into one
# bucket by what it was doing, in microseconds of CPU per round trip.
#
#   bash bench/echo_where.sh [SERVER|tokio] [BACKEND] [CONNS] [SIZE]
#
# SERVER: an echo server binary taking the port as its only argument
# [build-bench/bench/bench_echo_server], or `tokio` for Tokio's. BACKEND goes
# to ZOKIO_IO_BACKEND [io_uring]. CONNS [1000] connections of SIZE-byte
# [64] messages from build-bench/bench/echo_load (bash bench/io_compare.sh
# builds it and the Tokio peer). Env SECS: sampled seconds [4]. Needs perf
# and permission to sample the server (root, or perf_event_paranoid <= 1).
#
# Buckets, the first that matches a sample's call chain from its leaf up:
#   recv        receiving: recvfrom(2), or io_uring's receive run as task
#               work (at a system call's exit or inside the wait)
#   wait        the rest of io_uring_enter's wait (io_cqring_wait) or of
#               epoll_wait, with the sleeps they contain
#   send-tcp    the TCP send path (tcp_sendmsg): on loopback it includes
#               the peer's receive processing and its wake-up
#   send-other  the rest of sendto(2): descriptor lookup, checks
#   futex, other-syscall   futex(2); other system calls
#   kernel-other  interrupts, page faults, other kernel entries
#   user        the server's own code and libc, user space
# The per-bucket figures add up to the server's CPU per round trip as
# perf's samples see it (cpu-clock, 2,000 Hz).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/echo_lib.sh
echo_args "$@"
secs=${SECS:-4}
command -v perf >/dev/null || { echo "needs perf" >&2; exit 2; }
data=$(mktemp)
load=$(mktemp)
trap 'rm -f "$data" "$load"' EXIT
port=$((20000 + RANDOM % 10000))
ZOKIO_IO_BACKEND=$be "$server" $port >/dev/null 2>&1 &
pid=$!
echo_wait_port $port
# The load runs a second longer than the samples on both sides.
build-bench/bench/echo_load 127.0.0.1:$port "$conns" "$size" $((secs + 3)) 1 x \
  >"$load" 2>&1 &
lpid=$!
sleep 1.5
perf record -q -g -e cpu-clock -F 2000 -o "$data" -p $pid -- sleep "$secs" \
  2>/dev/null
wait $lpid
kill $pid
wait $pid 2>/dev/null || true
rate=$(awk '$1 == "RESULT" && $2 ~ /^echo_[0-9]+_[0-9]+$/ {print $4}' "$load")
if [ -z "$rate" ]; then
  echo "the load generator reported no result:" >&2
  cat "$load" >&2
  exit 1
fi
echo "$server ($be), $conns connections, $size B: $rate msgs/s; CPU per round trip (us):"
perf script -i "$data" -F ip,sym,dso 2>/dev/null |
  awk -v rate="$rate" -v secs="$secs" '
    BEGIN { RS = "" }
    {
      b = "user"
      if ($0 ~ /task_work_run|__x64_sys_recvfrom/) b = "recv"
      else if ($0 ~ /io_cqring_wait|do_epoll_wait/) b = "wait"
      else if ($0 ~ /tcp_sendmsg/) b = "send-tcp"
      else if ($0 ~ /__x64_sys_sendto/) b = "send-other"
      else if ($0 ~ /__x64_sys_futex/) b = "futex"
      else if ($0 ~ /do_syscall_64/) b = "other-syscall"
      else if ($0 ~ /\[kernel\.kallsyms\]|asm_|entry_SYSCALL/) b = "kernel-other"
      n[b]++; total++
    }
    END {
      per = 1e6 / 2000 / (rate * secs)   # us of CPU per sample per round trip
      split("user recv send-tcp send-other wait futex other-syscall kernel-other", order, " ")
      for (i = 1; i <= 8; i++) printf "  %-14s %6.2f\n", order[i], n[order[i]] * per
      printf "  %-14s %6.2f\n", "total", total * per
    }'
