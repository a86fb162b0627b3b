# echo_lib.sh - sourced by the echo scripts (echo_ab.sh, echo_where.sh,
# echo_threads.sh, echo_instr.sh), from the repository's root: how they
# name a server, wait for it to listen and read their common arguments.

# Prints the binary for a server argument: `tokio` is Tokio's echo server
# (bench/peers/tokio, built by bench/io_compare.sh), anything else a path.
echo_server_path() {
  if [ "$1" = tokio ]; then
    echo bench/peers/tokio/target/release/echo_server
  else
    echo "$1"
  fi
}

# Waits until something accepts on 127.0.0.1:PORT, polling every 50 ms,
# at most TRIES times [100].
echo_wait_port() {
  local port=$1 tries=${2:-100}
  for _ in $(seq "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  return 0 # the load generator reports a server that never listened
}

# The arguments of echo_where.sh and echo_threads.sh, `[SERVER|tokio]
# [BACKEND] [CONNS] [SIZE]`, into server, be, conns and size.
echo_args() {
  server=$(echo_server_path "${1:-build-bench/bench/bench_echo_server}")
  be=${2:-io_uring}
  conns=${3:-1000}
  size=${4:-64}
}
