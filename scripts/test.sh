#!/usr/bin/env bash
# Installs what is missing, checks the formatting, builds, and runs every test: once normally, once under
# AddressSanitizer + UndefinedBehaviorSanitizer; then fuzzes every parser for 10 s each (CI time;
# scripts/fuzz.sh runs longer).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$KBRIDGE_ROOT"

ensure_packages "${KBRIDGE_PACKAGES[@]}"

say "formatting (.clang-format)"
find src tests -name '*.cpp' -o -name '*.h' | sort | xargs clang-format --dry-run --Werror

say "build (warnings are errors)"
build_kbridge build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKBRIDGE_WERROR=ON
say "tests"
# Three at a time on two cores: the integration tests mostly wait on servers (a -j2 run kept the
# CPU 40% busy).
ctest --test-dir build --output-on-failure -j3

fuzz_tree=()
if [[ ${KBRIDGE_SKIP_SANITIZERS:-0} != 1 ]]; then
    # clang, optimized, with libFuzzer's coverage too: the fuzz targets come from this same tree
    # (one build instead of two), and optimized code runs the sanitizer pass faster.
    say "build with clang -fsanitize=address,undefined (and the fuzz targets)"
    build_kbridge build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DKBRIDGE_WERROR=ON -DKBRIDGE_FUZZ=ON
    say "tests under the sanitizers"
    # A sanitizer finding exits 86, which no kbridge exit code means; leaks are findings too.
    ASAN_OPTIONS=exitcode=86:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j3
    fuzz_tree=(env KBRIDGE_FUZZ_BUILD_DIR=build-asan)
fi

if [[ ${KBRIDGE_SKIP_FUZZ:-0} != 1 ]]; then
    say "fuzz every parser, 10 s each (scripts/fuzz.sh)"
    "${fuzz_tree[@]}" scripts/fuzz.sh all 10
fi
