#!/usr/bin/env bash
# Builds Zokio in Release and runs the core micro-benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh demo
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DZOKIO_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
./build-bench/bench/bench_core
