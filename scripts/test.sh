#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: once normally, once under
# AddressSanitizer + UndefinedBehaviorSanitizer; then fuzzes every parser for 10 s each (CI time;
# scripts/fuzz.sh runs longer).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$KBRIDGE_ROOT"

ensure_packages "${KBRIDGE_PACKAGES[@]}"

say "build (warnings are errors)"
build_kbridge build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKBRIDGE_WERROR=ON
say "tests"
ctest --test-dir build --output-on-failure -j2

if [[ ${KBRIDGE_SKIP_SANITIZERS:-0} != 1 ]]; then
    say "build with -fsanitize=address,undefined"
    build_kbridge build-sanitize -DCMAKE_BUILD_TYPE=Debug -DKBRIDGE_WERROR=ON -DKBRIDGE_SANITIZE=ON
    say "tests under the sanitizers"
    # A sanitizer finding exits 86, which no kbridge exit code means; leaks are findings too.
    ASAN_OPTIONS=exitcode=86:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-sanitize --output-on-failure -j2
fi

if [[ ${KBRIDGE_SKIP_FUZZ:-0} != 1 ]]; then
    say "fuzz every parser, 10 s each (scripts/fuzz.sh)"
    scripts/fuzz.sh all 10
fi
