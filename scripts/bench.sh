#!/usr/bin/env bash
# kbridge benchmarks: measure kbridge against the tools a user would otherwise
# reach for, on this machine, and PRINT the ratios (nothing is asserted: the
# numbers depend on the machine; the targets are shown next to them).
#
#   scripts/bench.sh [MODE]      MODE: redis (default: every implemented mode)
#
#   redis   N JSON events in a Redis list -> Kafka, three ways:
#             kbridge run --once   (redis_list source -> kafka sink, keyed)
#             kcat -P -l           (the same events from a file, keyed; the
#                                   "how fast can librdkafka go" reference)
#             the seed's Python loop (redis-py LRANGE + kafka-python send + LTRIM,
#                                   scripts/bench/seed_redis_to_kafka.py)
#           Kafka is `kbridge dev-kafka` (librdkafka's mock cluster, 3 brokers)
#           in its own process; Redis is a throwaway redis-server.
#
# Environment:
#   BENCH_N=1000000      events per kbridge / kcat measurement
#   BENCH_REPEAT=3       repetitions of the kbridge and kcat measurements (medians reported)
#   BENCH_PY_N=min(N,100000)  events for the (slow) Python loop, run once; rates are compared
#   BENCH_TIMEOUT=1800   seconds before one measurement is killed
#   KBRIDGE=build/kbridge   binary under test
#
# Exit status: 0 when every measurement ran (even if a target is missed),
# 1 when a measured command failed or the setup broke, 2 for usage errors.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$KBRIDGE_ROOT
KBRIDGE=${KBRIDGE:-$ROOT/build/kbridge}
# Debian's interpreter on purpose: python3-redis, python3-kafka and
# python3-confluent-kafka are installed for it, and a pyenv/venv `python3`
# earlier on PATH would not see them.
PY=/usr/bin/python3

BENCH_N=${BENCH_N:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_PY_N=${BENCH_PY_N:-$((BENCH_N < 100000 ? BENCH_N : 100000))}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}

IMPLEMENTED_MODES=(redis)

TMP=""          # scratch dir (mktemp -d), removed at exit
BG_PIDS=()      # every background server this script started
MEASURE_PID=""  # the /usr/bin/time of the measurement running now
FAILED=0        # set when a measured command fails; turns into exit 1

# ---------------------------------------------------------------- helpers --

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    cat <<EOF
usage: scripts/bench.sh [MODE]
  modes: ${IMPLEMENTED_MODES[*]} (implemented); postgres, sinks (not yet)
  without MODE: run every implemented mode
  env: BENCH_N BENCH_REPEAT BENCH_PY_N BENCH_TIMEOUT KBRIDGE (see the header of this script)
EOF
}

# Stop the background servers we started: SIGTERM (dev-kafka and redis-server
# both shut down cleanly on it), then SIGKILL whatever is still alive after 10 s.
stop_background() {
    local pid i
    ((${#BG_PIDS[@]})) || return 0
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BG_PIDS=()
}

# Interrupted while measuring: SIGTERM the `timeout` under /usr/bin/time (it
# passes the signal on to the measured command), then reap time.
stop_measurement() {
    [[ -n $MEASURE_PID ]] || return 0
    local child
    for child in $(pgrep -P "$MEASURE_PID" || true); do kill -TERM "$child" 2>/dev/null || true; done
    wait "$MEASURE_PID" 2>/dev/null || true
    MEASURE_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_measurement
    stop_background
    [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
    exit "$rc"
}

# Start "$@" in the background, output to $TMP/<name>.log; remember its pid.
start_background() {
    local name=$1; shift
    "$@" >"$TMP/$name.log" 2>&1 &
    BG_PIDS+=($!)
    LAST_PID=$!
}


# Run "$@" under /usr/bin/time -v (and a timeout, so a hung tool cannot hang
# the benchmark). Sets M_RC, M_SECS (wall seconds), M_RSS_KB (peak RSS; time's
# rusage covers the timeout wrapper's child, i.e. the measured program).
# Output of the command goes to $1.
measure() {
    local out=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    # In the background + wait: a signal to this script then runs its trap at
    # once (bash defers traps until a foreground child exits), and cleanup
    # stops the measured command through MEASURE_PID.
    /usr/bin/time -v -o "$TMP/time.txt" timeout -k 10 "$BENCH_TIMEOUT" "$@" >"$out" 2>&1 &
    MEASURE_PID=$!
    set +e
    wait "$MEASURE_PID"
    M_RC=$?
    set -e
    MEASURE_PID=""
    t1=$(date +%s.%N)
    M_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    M_RSS_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TMP/time.txt")
    M_RSS_KB=${M_RSS_KB:-0}
}

# One line per measurement, read by print_report.
#   tool rep records seconds rss_kb delivered rc left_in_redis
record_result() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TMP/results.tsv"
}

# A measured command failed: show why, keep going with the other tools.
report_failure() {
    local what=$1 out=$2
    FAILED=1
    log "FAILED: $what exited with status $M_RC; last lines of its output ($out):"
    tail -n 20 "$out" | sed 's/^/    /' >&2
}

# ------------------------------------------------------------------ setup --


ensure_kbridge() {
    if [[ ! -x $KBRIDGE ]]; then
        log "building kbridge (Release) into $ROOT/build"
        (cd "$ROOT" && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build)
    fi
    [[ -x $KBRIDGE ]] || die "no kbridge binary at $KBRIDGE"
    # A debug build would make every kbridge number meaningless: say which one
    # we measure. CMakeLists.txt may pick a default build type without caching
    # it, so fall back to the -O flag the sources were really compiled with.
    local dir opt
    dir=$(dirname "$KBRIDGE")
    KBRIDGE_BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$dir/CMakeCache.txt" 2>/dev/null || true)
    opt=$(grep -o -m1 -- ' -O[0-3sgz]* ' "$dir/compile_commands.json" 2>/dev/null | tr -d ' ' || true)
    KBRIDGE_BUILD_TYPE="${KBRIDGE_BUILD_TYPE:-default} ${opt:--O?}"
    case $opt in
        -O2 | -O3 | -Os) ;;
        *) log "WARNING: $KBRIDGE is built with '${opt:-unknown}' ($KBRIDGE_BUILD_TYPE); numbers are only meaningful for an optimised build" ;;
    esac
}

setup_common() {
    [[ $BENCH_N =~ ^[0-9]+$ && $BENCH_N -gt 0 ]] || die "BENCH_N must be a positive integer"
    [[ $BENCH_REPEAT =~ ^[0-9]+$ && $BENCH_REPEAT -gt 0 ]] || die "BENCH_REPEAT must be a positive integer"
    [[ $BENCH_PY_N =~ ^[0-9]+$ && $BENCH_PY_N -gt 0 ]] || die "BENCH_PY_N must be a positive integer"
    ensure_packages time python3-confluent-kafka
    ensure_kbridge
    TMP=$(mktemp -d -t kbridge-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ---------------------------------------------------------- servers (redis) --

start_redis() {
    REDIS_PORT=$(free_port)
    start_background redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --dir "$TMP" --daemonize no
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && return 0
        kill -0 "$LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$TMP/redis.log" >&2 || true
    die "redis-server did not come up on port $REDIS_PORT"
}

# `kbridge dev-kafka` in its own process, so its CPU and memory are not
# counted in any measured tool's RSS; topics pre-created with 4 partitions.
start_dev_kafka() {
    local args=(--brokers 3) t
    for t in "$@"; do args+=(--topic "$t:4"); done
    start_background dev-kafka "$KBRIDGE" dev-kafka "${args[@]}" --bootstrap-file "$TMP/bootstrap"
    local i
    for ((i = 0; i < 300; i++)); do
        if [[ -s $TMP/bootstrap ]]; then
            sleep 0.2   # the file may still be being written
            BOOT=$(tr -d '[:space:]' <"$TMP/bootstrap")
            [[ $BOOT =~ ^[^,:]+:[0-9]+(,[^,:]+:[0-9]+)*$ ]] || die "unexpected bootstrap file content: '$BOOT'"
            return 0
        fi
        kill -0 "$LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$TMP/dev-kafka.log" >&2 || true
    die "kbridge dev-kafka did not write $TMP/bootstrap"
}

# Sum of the high watermarks of every partition of topic $1. The mock cluster
# keeps only the newest ~5 MB per partition, so counting by consuming would
# under-count; the high watermark is the number of records ever appended.
watermark_sum() {
    "$PY" - "$BOOT" "$1" <<'EOF'
import sys
from confluent_kafka import Consumer, TopicPartition
boot, topic = sys.argv[1], sys.argv[2]
c = Consumer({"bootstrap.servers": boot, "group.id": "kbridge-bench-watermarks",
              "enable.auto.commit": False})
try:
    t = c.list_topics(topic, timeout=15).topics.get(topic)
    if t is None or t.error is not None:
        print(-1)
    else:
        print(sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
                  for p in t.partitions))
finally:
    c.close()
EOF
}

# ------------------------------------------------------------ data (redis) --

# Deterministic events of ~85 bytes, e.g.
#   {"id":123,"user_id":4567,"action":"click","item":"item-00123","ts":1700000000123}
# Written once, outside every timing, in three shapes:
#   events.jsonl   one event per line
#   events.keyed   user_id<TAB>event (kcat -K '\t', so kcat sends keys like kbridge)
#   load_N.resp / load_py.resp   RPUSH user_behavior v1..v1000 per command, RESP-encoded
#                  for redis-cli --pipe (loads 1M events in a few seconds)
generate_events() {
    log "generating $BENCH_N events"
    "$PY" - "$TMP" "$BENCH_N" "$BENCH_PY_N" <<'EOF'
import os, random, sys
out, n, py_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
actions = ["click", "view", "search", "add_to_cart", "purchase"]
key = b"user_behavior"

def resp_rpush(path, events):
    with open(path, "wb") as f:
        for s in range(0, len(events), 1000):
            chunk = events[s:s + 1000]
            parts = [b"*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (len(chunk) + 2, len(key), key)]
            for e in chunk:
                parts.append(b"$%d\r\n%s\r\n" % (len(e), e))
            f.write(b"".join(parts))

events, users = [], []
for i in range(1, n + 1):
    uid = rng.randint(1000, 99999)
    users.append(uid)
    events.append(b'{"id":%d,"user_id":%d,"action":"%s","item":"item-%05d","ts":%d}'
                  % (i, uid, actions[rng.randrange(5)].encode(), rng.randrange(100000),
                     1700000000000 + i * 13))
with open(os.path.join(out, "events.jsonl"), "wb") as f:
    f.write(b"\n".join(events) + b"\n")
with open(os.path.join(out, "events.keyed"), "wb") as f:
    f.write(b"".join(b"%d\t%s\n" % (u, e) for u, e in zip(users, events)))
resp_rpush(os.path.join(out, "load_N.resp"), events)
resp_rpush(os.path.join(out, "load_py.resp"), events[:py_n])
print("average event size: %.1f bytes" % (sum(map(len, events)) / n), file=sys.stderr)
EOF
}

# Empty Redis (also any in-flight lists kbridge left) and RPUSH the events of
# RESP file $1; check LLEN == $2.
load_redis() {
    local resp=$1 want=$2 out llen
    redis-cli -p "$REDIS_PORT" FLUSHDB >/dev/null
    out=$(redis-cli -p "$REDIS_PORT" --pipe <"$resp" 2>&1) || die "redis-cli --pipe failed: $out"
    [[ $out == *"errors: 0,"* ]] || die "redis-cli --pipe reported errors: $out"
    llen=$(redis-cli -p "$REDIS_PORT" LLEN user_behavior)
    [[ $llen == "$want" ]] || die "LLEN user_behavior is $llen after loading, expected $want"
}

# ------------------------------------------------------ measurements (redis) --

bench_kbridge_redis() {
    local rep=$1 topic=bench_kb_$1
    local cfg=$TMP/bench_kb_$rep.yaml
    cat >"$cfg" <<EOF
version: 1
kafka:
  brokers: \${KAFKA_BROKERS}
redis:
  url: redis://127.0.0.1:\${REDIS_PORT}/0
pipelines:
  - name: bench
    source:
      type: redis_list
      key: user_behavior
      batch_size: 1000
    sink:
      type: kafka
      topic: $topic
      key: "{user_id}"
EOF
    load_redis "$TMP/load_N.resp" "$BENCH_N"
    log "kbridge run #$rep: $BENCH_N events -> $topic"
    measure "$TMP/kbridge_$rep.log" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_kb_$rep"
    ((M_RC == 0)) || report_failure "kbridge run --once (KAFKA_BROKERS=$KAFKA_BROKERS REDIS_PORT=$REDIS_PORT $KBRIDGE run $cfg --once --state-dir $TMP/state_kb_$rep)" "$TMP/kbridge_$rep.log"
    local delivered left
    delivered=$(watermark_sum "$topic")
    left=$(redis-cli -p "$REDIS_PORT" LLEN user_behavior)
    record_result kbridge "$rep" "$BENCH_N" "$M_SECS" "$M_RSS_KB" "$delivered" "$M_RC" "$left"
    log "  ${M_SECS}s, peak RSS ${M_RSS_KB} kB, delivered $delivered/$BENCH_N, left in Redis $left"
    # kbridge's in-flight lists must be gone too once everything is acknowledged.
    local keys
    keys=$(redis-cli -p "$REDIS_PORT" --scan | head -n 5 | tr '\n' ' ')
    [[ -z $keys ]] || log "  note: keys still in Redis after the run: $keys"
}

# kcat -P reads the same events (keyed, from a file: no Redis at all) with
# the producer settings kbridge uses by default: idempotent, acks=all.
bench_kcat() {
    local rep=$1 topic=bench_kcat_$1
    log "kcat -P run #$rep: $BENCH_N events -> $topic"
    measure "$TMP/kcat_$rep.log" \
        kcat -P -b "$BOOT" -t "$topic" -K '\t' \
        -X enable.idempotence=true -X acks=all \
        -l "$TMP/events.keyed"
    ((M_RC == 0)) || report_failure "kcat -P" "$TMP/kcat_$rep.log"
    local delivered
    delivered=$(watermark_sum "$topic")
    record_result kcat "$rep" "$BENCH_N" "$M_SECS" "$M_RSS_KB" "$delivered" "$M_RC" -
    log "  ${M_SECS}s, peak RSS ${M_RSS_KB} kB, delivered $delivered/$BENCH_N"
}

bench_python_seed() {
    local topic=bench_py_1
    load_redis "$TMP/load_py.resp" "$BENCH_PY_N"
    log "seed Python loop: $BENCH_PY_N events -> $topic"
    measure "$TMP/python.log" \
        "$PY" "$ROOT/scripts/bench/seed_redis_to_kafka.py" \
        --bootstrap "$BOOT" --redis-port "$REDIS_PORT" --topic "$topic"
    ((M_RC == 0)) || report_failure "seed_redis_to_kafka.py" "$TMP/python.log"
    local delivered left
    delivered=$(watermark_sum "$topic")
    left=$(redis-cli -p "$REDIS_PORT" LLEN user_behavior)
    record_result python-seed 1 "$BENCH_PY_N" "$M_SECS" "$M_RSS_KB" "$delivered" "$M_RC" "$left"
    log "  ${M_SECS}s, peak RSS ${M_RSS_KB} kB, delivered $delivered/$BENCH_PY_N, left in Redis $left"
}

# Medians over the repetitions, then the ratios against the targets.
print_report() {
    "$PY" - "$TMP/results.tsv" "$BENCH_N" "$BENCH_PY_N" "$BENCH_REPEAT" "$KBRIDGE_BUILD_TYPE" <<'EOF'
import statistics, sys
path, n, py_n, repeat, build = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = []
with open(path) as f:
    for line in f:
        tool, rep, recs, secs, rss, delivered, rc, left = line.rstrip("\n").split("\t")
        rows.append(dict(tool=tool, rep=int(rep), recs=int(recs), secs=float(secs),
                         rss_mb=int(rss) / 1024.0, delivered=int(delivered), rc=int(rc), left=left))

def ok(r):
    return r["rc"] == 0 and r["delivered"] == r["recs"] and r["left"] in ("0", "-")

print()
print("== kbridge bench: redis list -> kafka (N=%d, python N=%d, repeats=%s, kbridge build=%s)"
      % (n, py_n, repeat, build))
print()
print("runs:")
for r in rows:
    flags = []
    if r["rc"] != 0: flags.append("EXIT %d" % r["rc"])
    if r["delivered"] != r["recs"]: flags.append("DELIVERED %d != %d" % (r["delivered"], r["recs"]))
    if r["left"] not in ("0", "-"): flags.append("LEFT IN REDIS %s" % r["left"])
    print("  %-12s #%d  %8d rec  %8.3f s  %10.0f rec/s  %7.1f MB  %s"
          % (r["tool"], r["rep"], r["recs"], r["secs"], r["recs"] / r["secs"], r["rss_mb"],
             ", ".join(flags) or "ok"))

summary = {}
for tool in ("kbridge", "kcat", "python-seed"):
    good = [r for r in rows if r["tool"] == tool and ok(r)]
    if good:
        summary[tool] = dict(runs=len(good), recs=good[0]["recs"],
                             secs=statistics.median(r["secs"] for r in good),
                             rate=statistics.median(r["recs"] / r["secs"] for r in good),
                             rss=statistics.median(r["rss_mb"] for r in good),
                             rss_max=max(r["rss_mb"] for r in good))

print()
print("%-12s %5s %9s %9s %12s %13s" % ("tool", "runs", "records", "seconds", "records/s", "peak RSS MB"))
for tool in ("kbridge", "kcat", "python-seed"):
    s = summary.get(tool)
    if s:
        print("%-12s %5d %9d %9.3f %12.0f %13.1f" % (tool, s["runs"], s["recs"], s["secs"], s["rate"], s["rss"]))
    else:
        print("%-12s %5s %9s %9s %12s %13s" % (tool, 0, "-", "-", "FAILED", "-"))
print("(medians over successful runs; a run counts when it exited 0, the topic's high watermarks")
print(" sum to the records sent and the Redis list is empty)")
print()
kb, kc, pyr = summary.get("kbridge"), summary.get("kcat"), summary.get("python-seed")
if kb and kc:
    print("kbridge vs kcat -P:     %.2f× (target ≥ 0.7×)" % (kb["rate"] / kc["rate"]))
else:
    print("kbridge vs kcat -P:     n/a (a tool failed)")
if kb and pyr:
    note = "" if pyr["recs"] == kb["recs"] else "  [rates; python ran on %d records]" % pyr["recs"]
    print("kbridge vs seed python: %.0f× (target ≥ 40×)%s" % (kb["rate"] / pyr["rate"], note))
else:
    print("kbridge vs seed python: n/a (a tool failed)")
if kb:
    print("kbridge peak RSS:       %.0f MB (target ≤ 64 MB; max over runs %.0f MB)" % (kb["rss"], kb["rss_max"]))
print()
print("notes: kbridge reads from Redis (LLEN checked 0 afterwards); kcat -P reads the same events,")
print("keyed by user_id, from a local file with enable.idempotence=true acks=all. The seed loop is")
print("the article's code as written: no keys, kafka-python defaults (acks=1), plus a flush per LRANGE.")
EOF
}

bench_redis() {
    ensure_packages redis-server redis-tools kcat python3-redis python3-kafka
    : >"$TMP/results.tsv"

    local topics=() i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do topics+=("bench_kb_$i" "bench_kcat_$i"); done
    topics+=(bench bench_py_1)

    start_redis
    start_dev_kafka "${topics[@]}"
    export KAFKA_BROKERS=$BOOT REDIS_PORT
    log "redis on 127.0.0.1:$REDIS_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"

    generate_events

    # Interleave the tools so that a slow moment of a noisy machine does not
    # land on one tool's runs only.
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_kbridge_redis "$i"
        bench_kcat "$i"
    done
    bench_python_seed

    print_report
    stop_background
}

# ------------------------------------------------------------------- main --

run_mode() {
    case $1 in
        redis) bench_redis ;;
        *) die "mode $1 listed as implemented but has no function" ;;
    esac
}

main() {
    local mode=${1:-all}
    case $mode in
        -h | --help) usage; exit 0 ;;
        redis) setup_common; run_mode "$mode" ;;
        postgres | sinks) echo "bench: mode '$mode' is not implemented yet" >&2; exit 2 ;;
        all)
            setup_common
            local m
            for m in "${IMPLEMENTED_MODES[@]}"; do run_mode "$m"; done
            ;;
        *) usage >&2; exit 2 ;;
    esac
    if ((FAILED)); then
        log "some measured commands failed (see above)"
        exit 1
    fi
}

main "$@"
