#!/usr/bin/env bash
# I/O benchmarks against Tokio and Go: a TCP echo server driven by one load
# generator (bench/echo_load.c, the same plain-C client for every server),
# and random 4 KiB reads of a file. Each figure is the median of ROUNDS
# rounds; a round runs every server in turn, so a noisy spell of the machine
# does not fall on one server only.
#
#   bash bench/io_compare.sh            echo and file workloads
#   bash bench/io_compare.sh echo       echo only
#   bash bench/io_compare.sh file       file reads only
#
# Environment (defaults in brackets): ROUNDS [5], ECHO_SECONDS measured per
# echo run [5], ECHO_THREADS load generator threads [1], FILE_MIB size of
# the data file [256], FILE_READS reads per run [500000], FILE_CONC reads in
# flight [64], FILE_PATH [build-bench/io_blocks.dat].
#
# Servers: zk-uring and zk-epoll (build-bench/bench/bench_echo_server PORT
# with ZOKIO_IO_BACKEND=io_uring|epoll), tokio (bench/peers/tokio, 2
# workers), go (bench/peers/go/echo, GOMAXPROCS=2). A server whose binary
# is missing is skipped and shows "-". The load generator and the server
# share this machine's cores: every echo figure is the throughput of the
# pair, and the server's CPU time per round trip is printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-}
case "$only" in "" | echo | file) ;; *)
  echo "usage: bash bench/io_compare.sh [echo|file]" >&2
  exit 2
  ;;
esac
# Zokio's echo server runs 2 workers, as the peers do, whatever the caller's
# environment says (ECHO_WORKERS is for diagnosis, see bench/README).
unset ECHO_WORKERS
ROUNDS=${ROUNDS:-5}
ECHO_SECONDS=${ECHO_SECONDS:-5}
ECHO_THREADS=${ECHO_THREADS:-1}
FILE_MIB=${FILE_MIB:-256}
FILE_READS=${FILE_READS:-500000}
FILE_CONC=${FILE_CONC:-64}
out=build-bench
FILE_PATH=${FILE_PATH:-$out/io_blocks.dat}

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

mkdir -p "$out"
echo "== building the load generator and zokio (Release)"
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DZOKIO_BUILD_BENCH=ON >/dev/null
cmake --build "$out" -j"$(nproc)" --target echo_load file_blocks >/dev/null
# Zokio's servers are being written: if the tree does not build, they are
# skipped rather than run from a stale binary.
zokio_built=1
if ! cmake --build "$out" -j"$(nproc)" >"$out/io_build.log" 2>&1; then
  zokio_built=0
  echo "   zokio did not build (see $out/io_build.log): its columns stay empty"
fi
echo "== building the Tokio peers (Debian's cargo, offline)"
(cd bench/peers/tokio && /usr/bin/cargo build --release --quiet --bin echo_server --bin file_read)
echo "== building the Go peers"
(cd bench/peers/go/echo && GO111MODULE=off /usr/bin/go build -o "../../../../$out/peer-go-echo" main.go)
(cd bench/peers/go/fileread && GO111MODULE=off /usr/bin/go build -o "../../../../$out/peer-go-fileread" main.go)

# Servers and file readers: label, binary, and how to start it.
zk_echo=$out/bench/bench_echo_server
zk_file=$out/bench/bench_file_read
tokio_dir=bench/peers/tokio/target/release
labels=(zk-uring zk-epoll tokio go)
echo_bin() {
  case $1 in
    zk-*) [ $zokio_built = 1 ] && echo "$zk_echo" ;;
    tokio) echo "$tokio_dir/echo_server" ;;
    go) echo "$out/peer-go-echo" ;;
  esac
}
file_bin() {
  case $1 in
    zk-*) [ $zokio_built = 1 ] && echo "$zk_file" ;;
    tokio) echo "$tokio_dir/file_read" ;;
    go) echo "$out/peer-go-fileread" ;;
  esac
}
# Becomes label's program (call it in a subshell): its environment
# (backend, GOMAXPROCS), then exec, so that $! is the program's own pid.
run_as() {
  local label=$1; shift
  case $label in
    zk-uring) export ZOKIO_IO_BACKEND=io_uring ;;
    zk-epoll) export ZOKIO_IO_BACKEND=epoll ;;
    go) export GOMAXPROCS=2 ;;
  esac
  exec "$@"
}

# A port below the ephemeral range (so no client socket holds it) that
# nothing listens on.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % 20000))
    if [ -z "$(ss -Htln "sport = :$p")" ]; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# Waits until the server accepts a connection on port, polling connect;
# fails if the server exits or 10 s pass.
wait_accepting() {
  local pid=$1 port=$2 deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  return 1
}

# 1,000 connections is the main figure; 100 connections shows the same
# server without the 1,000-socket fan-out.
echo_rows=("1000 64" "1000 4096" "100 64" "100 4096")
# More connections than the default soft limit of many systems.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

results=$out/io_results.txt
: >"$results"
failures=0
note() { echo "   $*"; }

if [ "$only" != echo ]; then
  want_bytes=$((FILE_MIB * 1048576))
  if [ ! -f "$FILE_PATH" ] || [ "$(stat -c %s "$FILE_PATH")" -ne "$want_bytes" ]; then
    echo "== writing the $FILE_MIB MiB data file $FILE_PATH"
    "$out/bench/file_blocks" "$FILE_PATH" "$FILE_MIB"
  fi
  # Read it once so that every reader finds it in the page cache.
  cat "$FILE_PATH" >/dev/null
fi

echo "== running $ROUNDS rounds on $(nproc) cores (load generator and server share them)"
# Other work on the machine moves every figure: the load is printed so that
# a reader can tell a quiet run from a busy one.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  echo "-- round $round"
  # Each round starts one implementation later, so that no one always
  # runs first or last.
  order=()
  for i in "${!labels[@]}"; do
    order+=("${labels[$(((i + round - 1) % ${#labels[@]}))]}")
  done
  if [ "$only" != file ]; then
    for label in "${order[@]}"; do
      bin=$(echo_bin "$label" || true)
      if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        [ "$round" = 1 ] && note "$label echo: ${bin:-$zk_echo} not built, skipped"
        continue
      fi
      port=$(free_port)
      slog=$out/io_server_${label}_r$round.log
      (run_as "$label" "$bin" "$port") 2>"$slog" &
      pid=$!
      if ! wait_accepting "$pid" "$port"; then
        note "$label echo: the server did not accept on port $port (see $slog)"
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        failures=$((failures + 1))
        continue
      fi
      for row in "${echo_rows[@]}"; do
        set -- $row
        if ! ECHO_SERVER_PID=$pid "$out/bench/echo_load" "127.0.0.1:$port" "$1" "$2" \
          "$ECHO_SECONDS" "$ECHO_THREADS" "$label" 2>"$out/io_load.log" | tee -a "$results"; then
          note "$label echo_$2_$1 FAILED:"
          sed 's/^/     /' "$out/io_load.log"
          failures=$((failures + 1))
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
          st=0
          wait "$pid" 2>/dev/null || st=$?
          note "$label: the server died, exit status $st (above 128: signal" \
            "$((st > 128 ? st - 128 : 0))); its stderr is in $slog"
          failures=$((failures + 1))
          break
        fi
      done
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
  fi
  if [ "$only" != echo ]; then
    for label in "${order[@]}"; do
      bin=$(file_bin "$label" || true)
      if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        [ "$round" = 1 ] && note "$label file: ${bin:-$zk_file} not built, skipped"
        continue
      fi
      modes=("")
      [ "$label" = tokio ] && modes=(fs pread)
      for mode in "${modes[@]}"; do
        # The label is the script's, whatever name the program prints.
        if ! (run_as "$label" "$bin" "$FILE_PATH" "$FILE_READS" "$FILE_CONC" $mode) \
          >"$out/io_file.log" 2>&1 \
          || ! grep -q '^RESULT ' "$out/io_file.log"; then
          note "$label file ${mode} FAILED:"
          sed 's/^/     /' "$out/io_file.log"
          failures=$((failures + 1))
          continue
        fi
        awk -v l="$label" '$1 == "RESULT" { $3 = l; print }' "$out/io_file.log" | tee -a "$results"
      done
    done
  fi
done

echo
echo "Load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Medians of $ROUNDS rounds. Ratios are peer / Zokio's better backend; 'better' says"
echo "which way is good: for msgs/s and reads/s a ratio above 1.00 means the peer is"
echo "ahead, for us and us/msg a ratio above 1.00 means Zokio is ahead."
awk -v labels="${labels[*]}" '
  function median(key,   n, i, j, t, a) {
    n = cnt[key]
    for (i = 1; i <= n; i++) a[i] = val[key, i] + 0
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return a[int((n + 1) / 2)]
  }
  function fmt(x) { return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.4g", x) }
  $1 == "RESULT" {
    key = $2 "," $3
    val[key, ++cnt[key]] = $4
    unit[$2] = $5
    if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 }
  }
  END {
    nl = split(labels, L, " ")
    printf "%-24s %-8s %-6s", "workload", "unit", "better"
    for (i = 1; i <= nl; i++) printf " %10s", L[i]
    printf " %9s %9s\n", "tokio/zk", "go/zk"
    for (r = 0; r < n; r++) {
      w = order[r]
      higher = (unit[w] ~ /\/s$/)
      printf "%-24s %-8s %-6s", w, unit[w], higher ? "higher" : "lower"
      for (i = 1; i <= nl; i++) {
        k = w "," L[i]
        m[L[i]] = (k in cnt) ? median(k) : ""
        printf " %10s", m[L[i]] == "" ? "-" : fmt(m[L[i]])
      }
      # Zokio reads through its own I/O path only: the _pread row of
      # Tokio is compared with Zokio file_rand_read_4k.
      ref = w; sub(/_pread$/, "", ref)
      best = ""
      for (b = 1; b <= 2; b++) {
        k = ref "," (b == 1 ? "zk-uring" : "zk-epoll")
        if (!(k in cnt)) continue
        v = median(k)
        if (best == "" || (higher ? v > best : v < best)) best = v
      }
      for (p = 1; p <= 2; p++) {
        peer = (p == 1 ? "tokio" : "go")
        printf " %9s", (m[peer] != "" && best != "" && best > 0) ? sprintf("%.2f", m[peer] / best) : "-"
      }
      printf "\n"
    }
  }' "$results"
echo
echo "echo_<size>_<conns>: msgs/s = verified round trips per second over all connections"
echo "(one message in flight per connection); _p50/_p99 = round-trip latency; _cpu ="
echo "the server's CPU time (user+system) per round trip, _user its user-space part;"
echo "_sleeps = how often a server thread went to sleep (voluntary context switches)"
echo "per round trip; _client = the load generator's own CPU time per round trip (its"
echo "sends pay, in the kernel, for waking sleeping server threads). The load generator"
echo "($ECHO_THREADS thread(s)) runs on the same $(nproc) cores as the server."
echo "file_rand_read_4k: $FILE_READS random 4 KiB reads, $FILE_CONC in flight, of a"
echo "$FILE_MIB MiB file in the page cache;"
echo "tokio = tokio::fs (seek + read_exact), _pread = spawn_blocking(read_at), go = ReadAt."
echo "Raw lines of every round: $results"
if [ $failures -gt 0 ]; then
  echo "$failures run(s) FAILED: their figures are missing above." >&2
  exit 1
fi
