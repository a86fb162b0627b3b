#!/usr/bin/env bash
# Quick start, command 2: builds everything and runs the whole test suite:
#   1. gcc, warnings as errors: the suite (Criterion), the examples, and
#      the benchmarks built (bench/compare.sh and bench/run.sh run them)
#   2. clang + AddressSanitizer + UndefinedBehaviorSanitizer: the suite,
#      each test ending with a LeakSanitizer check
#   3. clang + ThreadSanitizer: the suite
#   4. the portable ucontext context switch: the suite
#   5. aarch64 cross build: the suite under qemu-user
#   6. install, then build a program against it with pkg-config and with
#      CMake's find_package
#   7. valgrind (memcheck, leaks) on the examples
#   8. formatting (clang-format), README example == examples/hello.c
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test

jobs=$(nproc)
out=${ZOKIO_TEST_OUT:-build-test}
mkdir -p "$out"

step() { echo; echo "== $*"; }

suite() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DZOKIO_BUILD_TESTS=ON -DZOKIO_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  (cd "$dir" && ctest -j2 --output-on-failure)
}

step "1/8 gcc -Werror: test suite, examples, benchmarks built"
CC=gcc suite "$out/gcc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZOKIO_BUILD_BENCH=ON
"$out/gcc/examples/hello"
"$out/gcc/examples/demo"

step "2/8 clang -Werror + ASan + UBSan (+ LeakSanitizer per test)"
CC=clang suite "$out/asan" -DCMAKE_BUILD_TYPE=Debug -DZOKIO_SANITIZE=address
ASAN_OPTIONS=detect_leaks=1 "$out/asan/examples/demo"

step "3/8 clang -Werror + ThreadSanitizer"
CC=clang suite "$out/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZOKIO_SANITIZE=thread

step "4/8 portable ucontext context switch"
CC=gcc suite "$out/ucontext" -DZOKIO_CONTEXT=ucontext

step "5/8 aarch64 cross build, suite under qemu-user"
CC= suite "$out/aarch64" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DZOKIO_TEST_RUNNER=shim

step "6/8 install, then build against it with pkg-config and find_package"
prefix=$(realpath "$out")/prefix
rm -rf "$prefix"
cmake --install "$out/gcc" --prefix "$prefix" >/dev/null
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
  gcc -Wall -Wextra -Werror examples/hello.c -o "$out/hello-pkgconfig" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs zokio) \
  -Wl,-rpath,"$prefix/lib"
"$out/hello-pkgconfig"
cmake -S tests/consumer -B "$out/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$out/consumer" >/dev/null
"$out/consumer/hello"

step "7/8 valgrind: no error, nothing lost or left reachable"
for ex in hello demo; do
  valgrind -q --error-exitcode=9 --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all "$out/gcc/examples/$ex"
done

step "8/8 formatting, and the README's example is examples/hello.c"
files=$(git ls-files '*.c' '*.h')
clang-format --dry-run -Werror $files
awk '/^## Example/ {ex=1} ex && /^```c$/ {inblock=1; next}
     /^```$/ {if (inblock) exit} inblock' README.md | diff - examples/hello.c

echo
echo "All checks passed."
