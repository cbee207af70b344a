#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs each over a copy of its seed corpus, so runs never grow the committed one.
#   scripts/fuzz.sh [TARGET|all] [SECONDS]      default: every target, 30 s each
# FUZZ_SEED=1 (the default) makes a run try the same inputs as every earlier run of its length,
# so CI repeats what was fuzzed clean before it landed; FUZZ_SEED=0 draws a new seed each run,
# for longer hunts.
# Exits non-zero on any finding (crash, sanitizer report, leak, timeout, out of memory), naming the
# input that caused it: rerun it with build-fuzz/tests/fuzz/fuzz_TARGET FILE.
# KBRIDGE_FUZZ_BUILD_DIR names another tree configured with -DKBRIDGE_FUZZ=ON to build in
# (scripts/test.sh's sanitizer tree); the default, build-fuzz, is configured here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$KBRIDGE_ROOT"

TARGETS=(config json_template csv copy_text url_mask pgoutput)
target=${1:-all}
seconds=${2:-30}
if [[ $target == all ]]; then
    selected=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $target "* ]]; then
    selected=("$target")
else
    echo "fuzz.sh: no target '$target' (targets: ${TARGETS[*]})" >&2
    exit 2
fi

ensure_packages clang libclang-rt-14-dev
say "build the fuzz targets (clang, -fsanitize=fuzzer,address,undefined)"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
tree=${KBRIDGE_FUZZ_BUILD_DIR:-build-fuzz}
if ! grep -q '^KBRIDGE_FUZZ:BOOL=ON' "$tree/CMakeCache.txt" 2>/dev/null; then
    cmake -S . -B "$tree" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DKBRIDGE_FUZZ=ON -DKBRIDGE_TESTS=OFF -DKBRIDGE_WERROR=ON "${launcher[@]}" >/dev/null
fi
ninja -C "$tree" "${selected[@]/#/fuzz_}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
findings=$tree/findings
failed=0
for t in "${selected[@]}"; do
    say "fuzz $t for ${seconds} s"
    cp -r "tests/fuzz/corpus/$t" "$work/$t"
    mkdir -p "$findings/$t"
    log=$work/$t.log
    status=0
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$tree/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" \
        -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$findings/$t/" "$work/$t" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if ((status == 0)); then
        echo "$t: ${runs:-?} executions, no finding"
        continue
    fi
    failed=1
    # The report: the sanitizer's or libFuzzer's error and its stack, then the input's file.
    first=$(grep -n -m1 -E "^($t: |==[0-9]+== ?ERROR|terminate called)|runtime error" "$log" |
        cut -d: -f1) || true
    { tail -n +"${first:-1}" "$log" | grep -v -E '^(#[0-9]|INFO:|MS:|base unit:)' | head -n 40 >&2; } ||
        true
    input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    echo "$t: FINDING after ${runs:-?} executions (exit $status); input: ${input:-none written}" >&2
    [[ -n $input ]] && echo "  reproduce: $tree/tests/fuzz/fuzz_$t $input" >&2
done
exit "$failed"
