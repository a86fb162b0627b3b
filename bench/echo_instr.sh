#!/bin/bash
# echo_instr.sh - user-space instructions an echo server executes per round
# trip, counted by valgrind's callgrind: a count, not a time, so it does not
# move with the machine's noise and shows small changes to a hot path that
# timings on a shared 2-core machine cannot.
#
#   bash bench/echo_instr.sh [SERVER [CONNS [SECS]]]
#
# SERVER: an echo server binary taking the port as its only argument
# [build-bench/bench/bench_echo_server, run with ZOKIO_IO_BACKEND=epoll:
# valgrind does not run io_uring], or `tokio` for Tokio's. CONNS connections
# [10] of 64-byte messages for SECS seconds [4], from build-bench/bench/
# echo_load (bash bench/io_compare.sh builds it and the Tokio peer).
#
# Prints the instructions per round trip over the server's whole run (start,
# ramp-up and shutdown included: a few per cent at these rates), then the
# 25 functions with the most. With CACHE=1, callgrind also models the
# caches (this machine's sizes) and the level-1 data read and write misses
# per round trip are printed beside the instructions, the functions sorted
# by read misses (SORT=D1mw: by write misses): with 1,000 connections they
# show how many cache lines a round trip touches that were not touched
# since that connection's last.
#
# A round trip is one call of libc's send(), which every server here makes
# once per echo. Valgrind runs one thread at a time: a worker spinning for
# work spins longer than it would natively, so compare spinning functions
# with care.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/echo_lib.sh
server=$(echo_server_path "${1:-build-bench/bench/bench_echo_server}")
conns=${2:-10}
secs=${3:-4}
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out" "$out.log"' EXIT
port=$((20000 + RANDOM % 10000))
sim=(); show=(--show=Ir); cols=1
if [ "${CACHE:-0}" = 1 ]; then
  sim=(--cache-sim=yes); show=(--show=Ir,D1mr,D1mw --sort=${SORT:-D1mr}); cols=3
fi
ZOKIO_IO_BACKEND=epoll valgrind --tool=callgrind "${sim[@]}" \
  --callgrind-out-file="$out" "$server" $port 2>"$out.log" &
pid=$!
echo_wait_port $port 200
build-bench/bench/echo_load 127.0.0.1:$port "$conns" 64 "$secs" 1 x >/dev/null 2>&1
kill -TERM $pid
wait $pid || true
# Calls of send(): the callers' lines of the call tree, summed.
trips=$(callgrind_annotate --tree=caller "$out" 2>/dev/null |
  awk '/^ *[0-9,]+ .*< .*\(([0-9,]+)x\)/ { pending = pending " " $0; next }
       /\* .*[:\/]send\.c:send / { n = split(pending, a, "(");
         for (i = 1; i <= n; i++) if (a[i] ~ /^[0-9,]+x\)/) { c = a[i]; sub(/x\).*/, "", c); gsub(",", "", c); s += c } }
       !/< / { pending = "" }
       END { print s + 0 }')
if [ "$trips" -eq 0 ]; then
  echo "no send() calls seen: did the server run? ($out.log)" >&2
  exit 1
fi
echo "$server, $conns connections, 64 B: $trips round trips; per round trip:"
[ "$cols" = 3 ] && printf "%9s %7s %7s  %s\n" instr D1-rd-miss D1-wr-miss function ||
  printf "%9s  %s\n" instr function
callgrind_annotate "${show[@]}" "$out" 2>/dev/null | sed -n '/PROGRAM TOTALS/,$p' |
  awk -v t="$trips" -v cols="$cols" '/^ *[0-9,]+ / {
         k = 0; for (i = 1; i <= NF && k < cols; i++) if ($i ~ /^[0-9,]+$/) { x = $i; gsub(",", "", x); v[++k] = x }
         f = $NF; if (f ~ /^\[/) f = $(NF - 1)
         sub(/^.*:/, "", f); if (f == "TOTALS") f = "total"
         if (cols == 3) printf "%9.1f %10.2f %10.2f  %s\n", v[1] / t, v[2] / t, v[3] / t, f
         else printf "%9.1f  %s\n", v[1] / t, f }' | head -26
