#!/bin/bash
# echo_ab.sh - alternating runs of echo servers under the same load, to
# compare two builds (or a build and a peer) on a noisy machine: each round
# runs every server once, in turn, so a slow minute hurts them alike.
#
#   bash bench/echo_ab.sh BACKEND CONNS SIZE ROUNDS SERVER...
#
# SERVER is an echo server binary taking the port as its only argument
# (build-bench/bench/bench_echo_server, or a copy of an older build), or
# `tokio` for bench/peers/tokio/target/release/echo_server. BACKEND goes to
# ZOKIO_IO_BACKEND (io_uring or epoll). Env SECS: measured seconds per run
# [3]. Env KEEP_RAW: a file to keep every run's line in (round, server,
# msgs/s, CPU, steal, load generator CPU, sleeps, user, p99 in us). Needs
# build-bench/bench/echo_load (bash bench/io_compare.sh builds it, and the
# Tokio peer).
#
# Prints per server the median msgs/s, the median server CPU per round trip
# (us) and its user-space part, the median CPU per round trip of the load
# generator itself (us), the median number of times a server thread went to
# sleep per round trip, the median 99th percentile of the round-trip time
# (ms), the median of the per-round ratio of its msgs/s to the first
# server's, in how many rounds its msgs/s was above the first server's
# (a sign test: 13 or more of 16 is unlikely, p < 0.05 two-sided, if the
# two were alike), and the steal time (USER_HZ ticks) the machine reported
# during its runs.
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
be=$1; conns=$2; size=$3; rounds=$4; shift 4
cd "$(dirname "$0")/.."
. bench/echo_lib.sh
raw=$(mktemp)
trap '[ -n "${KEEP_RAW:-}" ] && cp "$raw" "$KEEP_RAW"; rm -f "$raw"' EXIT
for r in $(seq "$rounds"); do
  for bin in "$@"; do
    exe=$(echo_server_path "$bin")
    port=$((20000 + RANDOM % 10000))
    ZOKIO_IO_BACKEND=$be "$exe" $port 2>/dev/null &
    pid=$!
    echo_wait_port $port
    st0=$(awk '/^cpu /{print $9}' /proc/stat)
    out=$(ECHO_SERVER_PID=$pid build-bench/bench/echo_load 127.0.0.1:$port \
          "$conns" "$size" "${SECS:-3}" 1 x 2>/dev/null || true)
    st1=$(awk '/^cpu /{print $9}' /proc/stat)
    kill $pid
    wait $pid 2>/dev/null || true
    echo "$out" | awk -v b="$bin" -v r="$r" -v st=$((st1 - st0)) '
      $2 ~ /^echo_[0-9]+_[0-9]+$/ {m = $4}
      $2 ~ /_cpu$/ {c = $4}
      $2 ~ /_client$/ {l = $4}
      $2 ~ /_sleeps$/ {z = $4}
      $2 ~ /_user$/ {u = $4}
      $2 ~ /_p99$/ {p = $4}
      END {print r, b, m, c, st, l, z, u, p}' >> "$raw"
  done
done
awk 'function med(a, n,   i, j, t) {
       for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
       return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     { if (!($2 in seen)) { seen[$2] = 1; ord[++k] = $2 }
       n[$2]++; M[$2, n[$2]] = $3; C[$2, n[$2]] = $4; S[$2] += $5; L[$2, n[$2]] = $6; Z[$2, n[$2]] = $7; U[$2, n[$2]] = $8; P[$2, n[$2]] = $9; R[$1, $2] = $3
       if ($2 == ord[1]) first[$1] = $3 }
     END { for (i = 1; i <= k; i++) { b = ord[i]; delete x; delete y; delete z; delete w; delete v; delete u; delete q
             above = 0
             for (j = 1; j <= n[b]; j++) { x[j] = M[b, j]; y[j] = C[b, j]; z[j] = R[j, b] / first[j]; w[j] = L[b, j]; v[j] = Z[b, j]; u[j] = U[b, j]; q[j] = P[b, j]; above += z[j] > 1 }
             printf "%-28s msgs/s %7.0f  cpu/msg %6.2f  (user %5.2f)  load-cpu/msg %6.2f  sleeps/msg %6.4f  p99 %6.1f ms  ratio-to-first %5.3f  above-first %d/%d  steal %d\n",
                    b, med(x, n[b]), med(y, n[b]), med(u, n[b]), med(w, n[b]), med(v, n[b]), med(q, n[b]) / 1000, med(z, n[b]), above, n[b], S[b] } }' "$raw"
