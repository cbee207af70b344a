#!/usr/bin/env bash
# kbridge benchmarks: measure kbridge against the tools a user would otherwise
# reach for, on this machine, and PRINT the ratios (nothing is asserted: the
# numbers depend on the machine; the targets are shown next to them).
#
#   scripts/bench.sh [MODE]      MODE: redis | postgres | sinks | poison | cdc | shell
#                                (default: every mode)
#
#   redis   N JSON events in a Redis list -> Kafka, three ways:
#             kbridge run --once   (redis_list source -> kafka sink, keyed)
#             (and the same events as stream entries, redis_stream source; and the list on
#              the node of a three-node Redis Cluster that serves its slot)
#             kcat -P -l           (the same events from a file, keyed; the
#                                   "how fast can librdkafka go" reference)
#             the seed's Python loop (redis-py LRANGE + kafka-python send + LTRIM,
#                                   scripts/bench/seed_redis_to_kafka.py)
#           Kafka is `kbridge dev-kafka` (librdkafka's mock cluster, 3 brokers)
#           in its own process; Redis is a throwaway redis-server.
#
#   postgres  a table of N rows (id bigint primary key, user_id, action, item, ts) -> Kafka:
#             kbridge run --once   (postgres_table source, mode bulk -> kafka sink,
#                                   keyed by the primary key)
#             psql -c "COPY (SELECT id, row_to_json(t) FROM t) TO STDOUT" | kcat -P -K '\t'
#                                  (the same keys and values; the pipeline timed as a whole)
#             kbridge once more on a table of 5x N rows: peak RSS must not grow with the table.
#           PostgreSQL 15 is a throwaway cluster (initdb in the scratch dir, fsync off; run
#           as the postgres user when this script runs as root); Kafka is `kbridge dev-kafka`.
#
#   sinks   N JSON records in a 32-partition topic -> a PostgreSQL table:
#             kbridge run --once   (kafka source with join_group: false, like kcat -C, which
#                                   joins no group either; postgres_table sink, mode insert)
#             kcat -C -e | psql -c "\\copy t FROM STDIN (FORMAT csv)"  (the same records as CSV)
#             kbridge run --once   (mode upsert, half of the ids already in the table)
#             kbridge run --once   (mode insert as a group member: + the group's 3 s rebalance)
#             the seed's consumer  (confluent-kafka + psycopg2, one INSERT + commit per record,
#                                   BENCH_PY_N records; rates compared)
#           then kbridge insert and the seed's consumer once more against a PostgreSQL with
#           its durable defaults (fsync, synchronous_commit), where a commit waits for the disk.
#
#   poison  records a PostgreSQL table refuses (action NOT NULL), with a dead letter topic; each
#           run counts rows + dead letters:
#             kbridge-insert      BENCH_N clean records, mode insert (the reference rate)
#             kbridge-ins-1%      BENCH_N records, every 100th with action null, mode insert
#             kbridge-ups-1%      the same, mode upsert (half of the ids already in the table)
#             kbridge-chk-1%      BENCH_N records, every 100th breaking a CHECK that only the
#                                 database sees (user_id < 0), mode insert
#             kbridge-ins-100%    BENCH_POISON_ALL records, every one with action null, insert
#             kbridge-ups-100%    the same, mode upsert
#           against a PostgreSQL with its durable defaults, then (BENCH_FAST=1) once more with
#           fsync off (tools named ...-fast).
#
#   cdc     postgres_cdc (PostgreSQL 15, wal_level logical) -> Kafka, each tool on a slot of its own:
#             BENCH_N inserts in one transaction: kbridge run --once vs
#             pg_recvlogical --plugin=test_decoding --endpos | kcat -P (rates, kbridge's peak RSS)
#             under pgbench (BENCH_PGBENCH_CLIENTS clients for BENCH_PGBENCH_SECONDS, an insert and
#             an update per transaction, BENCH_REPEAT runs each): kbridge run (follow mode) vs
#             pg_recvlogical --start | kcat -P, each change's lag taken by a live consumer
#             (scripts/bench/cdc_lag.py): capture rates, their ratio, p50/p99 lag, peak RSS
#
#   shell   the one-liners against kcat, and what a transform chain costs (N events each run):
#             kbridge-produce     kbridge produce TOPIC -l events.jsonl --format json -k '{user_id}'
#             kcat                kcat -P -l (the same lines and keys), a fresh topic per run;
#                                 both counted by the topics' high watermarks
#             kbridge-consume     kbridge consume -e -o beginning of one topic holding the N
#             kcat-C              events, vs kcat -C -e -o beginning; output into wc -l, counted
#                                 (the topic has >= 32 partitions, ~3 MB each: the mock keeps ~5 MB)
#             pipeline            the redis mode's redis_list -> kafka pipeline
#             pipeline+5tx        the same with drop, rename, set (a {ts:date} template), filter
#                                 (keeping every record) and select
#
# Environment:
#   BENCH_N=1000000      events (rows) per kbridge / kcat / psql measurement
#   BENCH_REPEAT=3       repetitions of the kbridge and kcat (psql|kcat) measurements (medians reported)
#   BENCH_PY_N=min(N,100000)  events for the (slow) Python loop, run once; rates are compared
#   BENCH_N5=5*N         rows of the postgres mode's big table (kbridge runs once on it)
#   BENCH_PG_BIG=1       0: skip the postgres mode's big-table run
#   BENCH_DURABLE=1      0: skip the sinks mode's second PostgreSQL, run with its durable
#                        defaults, for kbridge insert and the seed's consumer once more
#   BENCH_SQL_DIALECTS=1 0: skip the sinks mode's mysql_table and sqlite_table runs (against
#                        kcat | mariadb LOAD DATA LOCAL INFILE and kcat | sqlite3 .import)
#   BENCH_POISON_ALL=20000  records of the poison mode's wholly refused runs
#   BENCH_FAST=1         0: skip the poison mode's second PostgreSQL (fsync off)
#   BENCH_SHELL_KCAT=1   0: the shell mode times only pipeline and pipeline+5tx (skips produce
#                        and consume against kcat, e.g. while working on transforms)
#   BENCH_PGBENCH_SECONDS=30  length of each pgbench run of the cdc mode; 0 skips that part
#   BENCH_PGBENCH_CLIENTS=4   pgbench's clients there
#   BENCH_PGBENCH_RATE=       pgbench's transactions/s there (pgbench -R); empty: as fast as it can
#   BENCH_TIMEOUT=1800   seconds before one measurement is killed
#   BENCH_REDIS_TOOLS="list kcat stream cluster python"  the redis mode's rows to measure (a
#                        subset speeds up iterating on one of them)
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
BENCH_N5=${BENCH_N5:-$((5 * BENCH_N))}
BENCH_PG_BIG=${BENCH_PG_BIG:-1}
BENCH_DURABLE=${BENCH_DURABLE:-1}
BENCH_SQL_DIALECTS=${BENCH_SQL_DIALECTS:-1}
BENCH_POISON_ALL=${BENCH_POISON_ALL:-20000}
BENCH_FAST=${BENCH_FAST:-1}
BENCH_SHELL_KCAT=${BENCH_SHELL_KCAT:-1}
BENCH_PGBENCH_SECONDS=${BENCH_PGBENCH_SECONDS:-30}
BENCH_PGBENCH_CLIENTS=${BENCH_PGBENCH_CLIENTS:-4}
BENCH_PGBENCH_RATE=${BENCH_PGBENCH_RATE:-}
BENCH_REDIS_TOOLS=${BENCH_REDIS_TOOLS:-list kcat stream cluster python}
PGBIN=/usr/lib/postgresql/15/bin

IMPLEMENTED_MODES=(redis postgres sinks poison cdc shell)

TMP=""          # scratch dir (mktemp -d), removed at exit
BG_PIDS=()      # every background server this script started
MEASURE_PID=""  # the /usr/bin/time of the measurement running now
FAILED=0        # set when a measured command fails; turns into exit 1
RESULTS=""      # the current mode's results file, read by its report
PG_DATA=""      # data directory of the throwaway PostgreSQL, once initdb ran
PG_AS=()        # prefix that runs a command as the postgres user (when we are root)

# ---------------------------------------------------------------- helpers --

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    cat <<EOF
usage: scripts/bench.sh [MODE]
  modes: ${IMPLEMENTED_MODES[*]}
  without MODE: run every implemented mode
  env: BENCH_N BENCH_REPEAT BENCH_PY_N BENCH_N5 BENCH_PG_BIG BENCH_PGBENCH_SECONDS
       BENCH_PGBENCH_CLIENTS BENCH_PGBENCH_RATE BENCH_TIMEOUT KBRIDGE
       (see the header of this script)
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
    stop_postgres
    stop_mariadb
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

# One line per measurement, read by scripts/bench/report.py.
#   tool rep records seconds rss_kb delivered rc left_at_source ("-": not applicable)
record_result() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# A measured command failed: show why (with the environment the pipeline
# files expand), keep going with the other tools.
report_failure() {
    local what=$1 out=$2
    FAILED=1
    log "FAILED: $what exited with status $M_RC"
    log "  env: KAFKA_BROKERS=${KAFKA_BROKERS:-}${REDIS_PORT:+ REDIS_PORT=$REDIS_PORT}${PG_URL:+ PG_URL=$PG_URL}"
    log "  last lines of its output ($out):"
    tail -n 20 "$out" | sed 's/^/    /' >&2
}

# measure_delivery TOOL REP RECORDS TOPIC COMMAND...
# Measure COMMAND (its output in $TMP/TOOL_REP.log), report a failure, then
# count what reached TOPIC (M_DELIVERED). record_measurement files the result.
measure_delivery() {
    local tool=$1 rep=$2 records=$3 topic=$4; shift 4
    local out=$TMP/${tool//[^A-Za-z0-9]/_}_$rep.log
    log "$tool run #$rep: $records records -> $topic"
    measure "$out" "$@"
    ((M_RC == 0)) || report_failure "$(printf '%q ' "$@")" "$out"
    M_DELIVERED=$(watermark_sum "$topic")
}

# record_measurement TOOL REP RECORDS [LEFT]: file and log the last measure_delivery.
record_measurement() {
    local tool=$1 rep=$2 records=$3 left=${4:--}
    record_result "$tool" "$rep" "$records" "$M_SECS" "$M_RSS_KB" "$M_DELIVERED" "$M_RC" "$left"
    log "  ${M_SECS}s, peak RSS ${M_RSS_KB} kB, delivered $M_DELIVERED/$records${4:+, left at the source $left}"
}

# Start this mode's results file.
begin_results() {
    RESULTS=$TMP/results_$1.tsv
    : >"$RESULTS"
}

# ------------------------------------------------------------------ setup --


ensure_kbridge() {
    if [[ ! -x $KBRIDGE ]]; then
        log "building kbridge (Release) into $ROOT/build"
        ensure_packages "${KBRIDGE_PACKAGES[@]}"
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
    [[ $BENCH_N5 =~ ^[0-9]+$ && $BENCH_N5 -gt 0 ]] || die "BENCH_N5 must be a positive integer"
    [[ $BENCH_PG_BIG == [01] ]] || die "BENCH_PG_BIG must be 0 or 1"
    [[ $BENCH_PGBENCH_SECONDS =~ ^[0-9]+$ ]] || die "BENCH_PGBENCH_SECONDS must be a number of seconds"
    [[ $BENCH_PGBENCH_CLIENTS =~ ^[0-9]+$ && $BENCH_PGBENCH_CLIENTS -gt 0 ]] ||
        die "BENCH_PGBENCH_CLIENTS must be a positive integer"
    [[ -z $BENCH_PGBENCH_RATE || $BENCH_PGBENCH_RATE =~ ^[0-9]+$ && $BENCH_PGBENCH_RATE -gt 0 ]] ||
        die "BENCH_PGBENCH_RATE must be empty or a positive integer"
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
    for t in "$@"; do [[ $t == *:* ]] && args+=(--topic "$t") || args+=(--topic "$t:4"); done
    rm -f "$TMP/bootstrap"   # the previous mode's cluster wrote one too
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
# The same events as stream entries: XADD user_behavior_stream * payload <event>, one per command.
with open(os.path.join(out, "load_stream.resp"), "wb") as f:
    stream = b"user_behavior_stream"
    for s in range(0, n, 10000):
        f.write(b"".join(b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$7\r\npayload\r\n$%d\r\n%s\r\n"
                         % (len(stream), stream, len(e), e) for e in events[s:s + 10000]))
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

# bench_kbridge_redis REP [TOOL TRANSFORMS]: the redis_list -> kafka pipeline as TOOL (default
# kbridge, into topic bench_kb_REP; another TOOL into TOOL_REP), with the `transforms:` list
# TRANSFORMS (YAML lines indented for a pipeline) when given.
bench_kbridge_redis() {
    local rep=$1 tool=${2:-kbridge} transforms=${3:-}
    local topic=bench_kb_$rep
    [[ $tool == kbridge ]] || topic=${tool//[^A-Za-z0-9]/_}_$rep
    local cfg=$TMP/$topic.yaml
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
${transforms:+    transforms:
$transforms
}    sink:
      type: kafka
      topic: $topic
      key: "{user_id}"
EOF
    load_redis "$TMP/load_N.resp" "$BENCH_N"
    measure_delivery "$tool" "$rep" "$BENCH_N" "$topic" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_$topic"
    record_measurement "$tool" "$rep" "$BENCH_N" "$(redis-cli -p "$REDIS_PORT" LLEN user_behavior)"
    # kbridge's in-flight lists must be gone too once everything is acknowledged.
    local keys
    keys=$(redis-cli -p "$REDIS_PORT" --scan | head -n 5 | tr '\n' ' ')
    [[ -z $keys ]] || log "  note: keys still in Redis after the run: $keys"
}

# The same events as entries of a stream (field payload), read by the redis_stream source.
bench_kbridge_stream() {
    local rep=$1 topic=bench_kbs_$1 out
    local cfg=$TMP/bench_kbs_$rep.yaml
    cat >"$cfg" <<EOF
version: 1
kafka:
  brokers: \${KAFKA_BROKERS}
redis:
  url: redis://127.0.0.1:\${REDIS_PORT}/0
pipelines:
  - name: bench
    source:
      type: redis_stream
      streams: [user_behavior_stream]
      value: payload
      batch_size: 1000
    sink:
      type: kafka
      topic: $topic
      key: "{user_id}"
EOF
    redis-cli -p "$REDIS_PORT" FLUSHDB >/dev/null
    out=$(redis-cli -p "$REDIS_PORT" --pipe <"$TMP/load_stream.resp" 2>&1) || die "redis-cli --pipe failed: $out"
    [[ $(redis-cli -p "$REDIS_PORT" XLEN user_behavior_stream) == "$BENCH_N" ]] ||
        die "XLEN user_behavior_stream is not $BENCH_N after loading"
    measure_delivery kbridge-stream "$rep" "$BENCH_N" "$topic" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_kbs_$rep"
    record_measurement kbridge-stream "$rep" "$BENCH_N" \
        "$(redis-cli -p "$REDIS_PORT" XPENDING user_behavior_stream kbridge | head -n 1)"
}

# A three-node Redis Cluster: CLUSTER_PORTS, CLUSTER_URL.
start_redis_cluster() {
    CLUSTER_PORTS=()
    local p i addresses=""
    while ((${#CLUSTER_PORTS[@]} < 3)); do
        p=$(free_port)
        ((p < 55000)) || continue   # the cluster bus listens 10000 above
        CLUSTER_PORTS+=("$p")
        mkdir -p "$TMP/cluster-$p"
        start_background "redis-cluster-$p" redis-server --port "$p" --bind 127.0.0.1 \
            --cluster-enabled yes --cluster-config-file nodes.conf --save '' --appendonly no \
            --dir "$TMP/cluster-$p" --daemonize no
        addresses+=" 127.0.0.1:$p"
    done
    for p in "${CLUSTER_PORTS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            [[ $(redis-cli -p "$p" ping 2>/dev/null) == PONG ]] && break
            sleep 0.1
        done
    done
    # shellcheck disable=SC2086
    redis-cli --cluster create $addresses --cluster-replicas 0 --cluster-yes \
        >"$TMP/cluster-create.log" 2>&1 || die "redis-cli --cluster create failed (see $TMP/cluster-create.log)"
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -p "${CLUSTER_PORTS[0]}" cluster info) == *cluster_state:ok* ]] && break
        sleep 0.1
    done
    CLUSTER_URL="redis://127.0.0.1:${CLUSTER_PORTS[0]},127.0.0.1:${CLUSTER_PORTS[1]}/0"
}

# The redis mode's list, on the Cluster node that serves its slot.
bench_kbridge_cluster() {
    local rep=$1 topic=bench_kbc_$1 p owner="" out
    local cfg=$TMP/bench_kbc_$rep.yaml
    cat >"$cfg" <<EOF
version: 1
kafka:
  brokers: \${KAFKA_BROKERS}
pipelines:
  - name: bench
    source:
      type: redis_list
      url: "$CLUSTER_URL"
      key: user_behavior
      batch_size: 1000
    sink:
      type: kafka
      topic: $topic
      key: "{user_id}"
EOF
    for p in "${CLUSTER_PORTS[@]}"; do
        [[ $(redis-cli -p "$p" LLEN user_behavior 2>&1) == MOVED* ]] || owner=$p
    done
    [[ -n $owner ]] || die "no cluster node serves user_behavior"
    redis-cli -p "$owner" DEL user_behavior >/dev/null
    out=$(redis-cli -p "$owner" --pipe <"$TMP/load_N.resp" 2>&1) || die "redis-cli --pipe failed: $out"
    [[ $(redis-cli -p "$owner" LLEN user_behavior) == "$BENCH_N" ]] || die "LLEN is not $BENCH_N on the cluster"
    measure_delivery kbridge-cluster "$rep" "$BENCH_N" "$topic" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_kbc_$rep"
    record_measurement kbridge-cluster "$rep" "$BENCH_N" "$(redis-cli -p "$owner" LLEN user_behavior)"
}

# kcat -P reads the same events (keyed, from a file: no Redis at all) with
# the producer settings kbridge uses by default: idempotent, acks=all.
bench_kcat() {
    local rep=$1 topic=bench_kcat_$1
    measure_delivery kcat "$rep" "$BENCH_N" "$topic" \
        kcat -P -b "$BOOT" -t "$topic" -K '\t' \
        -X enable.idempotence=true -X acks=all \
        -l "$TMP/events.keyed"
    record_measurement kcat "$rep" "$BENCH_N"
}

bench_python_seed() {
    local topic=bench_py_1
    load_redis "$TMP/load_py.resp" "$BENCH_PY_N"
    measure_delivery python-seed 1 "$BENCH_PY_N" "$topic" \
        "$PY" "$ROOT/scripts/bench/seed_redis_to_kafka.py" \
        --bootstrap "$BOOT" --redis-port "$REDIS_PORT" --topic "$topic"
    record_measurement python-seed 1 "$BENCH_PY_N" "$(redis-cli -p "$REDIS_PORT" LLEN user_behavior)"
}

# Medians over the repetitions, then the ratios against the targets.
print_report() {
    "$PY" "$ROOT/scripts/bench/report.py" "$@"
}

# Whether BENCH_REDIS_TOOLS names row $1.
redis_tool() {
    [[ " $BENCH_REDIS_TOOLS " == *" $1 "* ]]
}

bench_redis() {
    ensure_packages redis-server redis-tools kcat python3-redis python3-kafka
    begin_results redis

    local topics=() i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        topics+=("bench_kb_$i" "bench_kcat_$i" "bench_kbs_$i" "bench_kbc_$i")
    done
    topics+=(bench bench_py_1)

    start_redis
    redis_tool cluster && start_redis_cluster
    start_dev_kafka "${topics[@]}"
    export KAFKA_BROKERS=$BOOT REDIS_PORT
    log "redis on 127.0.0.1:$REDIS_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"

    generate_events

    # Interleave the tools so that a slow moment of a noisy machine does not
    # land on one tool's runs only.
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        redis_tool list && bench_kbridge_redis "$i"
        redis_tool kcat && bench_kcat "$i"
        redis_tool stream && bench_kbridge_stream "$i"
        redis_tool cluster && bench_kbridge_cluster "$i"
    done
    redis_tool python && bench_python_seed

    print_report redis "$RESULTS" "$BENCH_N" "$BENCH_PY_N" "$BENCH_REPEAT" "$KBRIDGE_BUILD_TYPE"
    stop_background
}

# ------------------------------------------------------ postgres (server) --

# PostgreSQL refuses to run as root: then initdb and postgres run as the
# postgres user, in a directory of the (now world-readable) scratch dir that
# user owns; the socket goes there too.
# start_postgres [durable]: without "durable", fsync and synchronous commits are
# off (nothing here needs to survive a crash, and it steadies the timings).
start_postgres() {
    [[ -x $PGBIN/postgres ]] || die "no PostgreSQL 15 server in $PGBIN"
    local dir=$TMP/pg${1:+_$1} settings=()
    [[ ${1:-} == durable ]] ||
        settings=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    [[ ${1:-} == logical ]] && settings+=(-c wal_level=logical)
    chmod 755 "$TMP"
    mkdir -p "$dir"
    if ((EUID == 0)); then
        PG_AS=(runuser -u postgres --)
        chown postgres: "$dir"
    fi
    PG_DATA=$dir/data
    log "initdb $PG_DATA"
    if ! (cd "$dir" && "${PG_AS[@]}" "$PGBIN/initdb" -D "$PG_DATA" -U postgres -A trust --no-sync) \
        >"$TMP/initdb.log" 2>&1; then
        tail -n 20 "$TMP/initdb.log" >&2 || true
        die "initdb failed"
    fi
    PG_PORT=$(free_port)
    start_background postgres "${PG_AS[@]}" "$PGBIN/postgres" -D "$PG_DATA" -p "$PG_PORT" -k "$dir" \
        -c listen_addresses=127.0.0.1 "${settings[@]}"
    local i
    for ((i = 0; i < 300; i++)); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        kill -0 "$LAST_PID" 2>/dev/null || i=300
        sleep 0.1
    done
    if ((i >= 300)); then
        tail -n 20 "$TMP/postgres.log" >&2 || true
        die "postgres did not come up on port $PG_PORT"
    fi
    PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
}

# Fast shutdown (SIGINT to the postmaster); the runuser above it then exits
# on its own, and stop_background reaps it.
stop_postgres() {
    [[ -n $PG_DATA && -s $PG_DATA/postmaster.pid ]] || return 0
    local pid i
    pid=$(head -n 1 "$PG_DATA/postmaster.pid")
    PG_DATA=""
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "postgres (pid $pid) still running 30 s after a fast shutdown: killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

psql_bench() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

# create_table NAME ROWS: rows like the redis mode's events, e.g. row_to_json gives
#   {"id":123,"user_id":63137,"action":"add_to_cart","item":"item-88727","ts":1700000001599}
create_table() {
    local name=$1 rows=$2
    log "creating table $name with $rows rows"
    psql_bench <<EOF
CREATE TABLE $name (id bigint PRIMARY KEY, user_id int, action text, item text, ts bigint);
INSERT INTO $name
SELECT g, 1000 + (g * 7919) % 99000,
       (ARRAY['click', 'view', 'search', 'add_to_cart', 'purchase'])[1 + (g * 31) % 5],
       'item-' || lpad(((g * 104729) % 100000)::text, 5, '0'),
       1700000000000 + g * 13
FROM generate_series(1::bigint, $rows) AS g;
VACUUM ANALYZE $name;
EOF
    log "  $(psql_bench -At -c "SELECT pg_size_pretty(pg_total_relation_size('$name')) || ' on disk, '
        || round(avg(length(row_to_json($name)::text)), 1) || ' bytes of JSON per row (sampled)'
        FROM (SELECT * FROM $name LIMIT 10000) AS $name")"
}

# ------------------------------------------------ measurements (postgres) --

# bench_kbridge_pg TOOL REP TABLE ROWS: kbridge exports TABLE (mode bulk) into
# a fresh topic of its own.
bench_kbridge_pg() {
    local tool=$1 rep=$2 table=$3 rows=$4
    local topic=pg_${tool//[^A-Za-z0-9]/_}_$rep
    local cfg=$TMP/$topic.yaml
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
postgres: {url: '\${PG_URL}'}
pipelines:
  - name: bench
    source: {type: postgres_table, table: $table, mode: bulk}
    sink: {type: kafka, topic: $topic}
EOF
    measure_delivery "$tool" "$rep" "$rows" "$topic" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_$topic"
    record_measurement "$tool" "$rep" "$rows"
}

# The baseline: psql's COPY of the same rows, keyed by id (COPY's own tab
# between the two columns; row_to_json of these rows has no backslash or tab
# that COPY's text format would escape), into kcat -P with the producer
# settings kbridge uses by default. The whole pipeline is timed.
bench_copy_kcat() {
    local rep=$1 topic=pg_copy_$1
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure_delivery "psql|kcat" "$rep" "$BENCH_N" "$topic" \
        bash -c 'set -euo pipefail
            "$1" -X -q -h 127.0.0.1 -p "$2" -U postgres -d postgres \
                -c "COPY (SELECT id, row_to_json(t) FROM t) TO STDOUT" |
            kcat -P -b "$3" -t "$4" -K "\t" -X enable.idempotence=true -X acks=all' \
        copy-kcat "$PGBIN/psql" "$PG_PORT" "$BOOT" "$topic"
    record_measurement "psql|kcat" "$rep" "$BENCH_N"
}

bench_postgres() {
    ensure_packages postgresql kcat
    begin_results postgres

    local topics=() i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do topics+=("pg_kbridge_$i" "pg_copy_$i"); done
    if ((BENCH_PG_BIG)); then topics+=(pg_kbridge_5x_1); fi

    start_postgres
    start_dev_kafka "${topics[@]}"
    export KAFKA_BROKERS=$BOOT PG_URL
    log "postgres on 127.0.0.1:$PG_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"

    create_table t "$BENCH_N"
    if ((BENCH_PG_BIG)); then create_table t5 "$BENCH_N5"; fi
    psql_bench -c CHECKPOINT   # no checkpoint of the loads during a measurement

    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_kbridge_pg kbridge "$i" t "$BENCH_N"
        bench_copy_kcat "$i"
    done
    if ((BENCH_PG_BIG)); then bench_kbridge_pg kbridge-5x 1 t5 "$BENCH_N5"; fi

    print_report postgres "$RESULTS" "$BENCH_N" "$((BENCH_PG_BIG ? BENCH_N5 : 0))" \
        "$BENCH_REPEAT" "$KBRIDGE_BUILD_TYPE"
    stop_postgres
    stop_background
    unset PG_URL
}

# -------------------------------------------------------------- cdc mode --

# BENCH_N row inserts in one transaction, captured from the WAL: kbridge's postgres_cdc source
# (--once) vs pg_recvlogical --plugin=test_decoding --endpos | kcat -P, each on a slot of its own
# created before the insert. Both include PostgreSQL's decoding of the transaction.
bench_cdc() {
    ensure_packages postgresql kcat
    begin_results cdc
    start_postgres logical
    local topics=(cdc_kbridge:32 cdc_recvlogical:32) i
    if ((BENCH_PGBENCH_SECONDS)); then
        for ((i = 1; i <= BENCH_REPEAT; i++)); do
            topics+=("cdc_pgb_kbridge_$i:$PGB_PARTITIONS" "cdc_pgb_recvlogical_$i:$PGB_PARTITIONS")
        done
    fi
    start_dev_kafka "${topics[@]}"
    export KAFKA_BROKERS=$BOOT PG_URL
    local cfg=$TMP/cdc.yaml
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
postgres: {url: '\${PG_URL}'}
pipelines:
  - name: bench
    source: {type: postgres_cdc, tables: [c], snapshot: never}
    sink: {type: kafka, topic: cdc_kbridge}
EOF
    psql_bench -c "CREATE TABLE c (id bigint PRIMARY KEY, user_id int, action text, item text, ts bigint)"
    "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_cdc" >"$TMP/cdc_slot.log" 2>&1 ||
        die "kbridge could not create its slot: $(tail -n 5 "$TMP/cdc_slot.log")"
    "$PGBIN/pg_recvlogical" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres --slot bench_td \
        --create-slot --plugin=test_decoding
    log "inserting $BENCH_N rows in one transaction"
    psql_bench -c "INSERT INTO c SELECT g, 1000 + (g * 7919) % 99000, 'view', 'item-' || g,
        1700000000000 + g * 13 FROM generate_series(1::bigint, $BENCH_N) AS g"
    local end
    end=$(psql_bench -At -c "SELECT pg_current_wal_insert_lsn()")
    psql_bench -c CHECKPOINT
    measure_delivery kbridge 1 "$BENCH_N" cdc_kbridge \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_cdc"
    record_measurement kbridge 1 "$BENCH_N"
    local kb_secs=$M_SECS kb_rss=$M_RSS_KB
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure_delivery "recvlogical|kcat" 1 "$BENCH_N" cdc_recvlogical \
        bash -c 'set -euo pipefail
            "$1" -h 127.0.0.1 -p "$2" -U postgres -d postgres --slot bench_td --start \
                --endpos "$3" -f - | grep "^table " |
            kcat -P -b "$4" -t "$5" -X enable.idempotence=true -X acks=all' \
        cdc "$PGBIN/pg_recvlogical" "$PG_PORT" "$end" "$BOOT" cdc_recvlogical
    record_measurement "recvlogical|kcat" 1 "$BENCH_N"
    echo
    echo "== kbridge bench: postgres_cdc, $BENCH_N inserts in one transaction -> kafka"
    awk -F'\t' '{ printf "%-18s %8.2f s  %9.0f changes/s  peak RSS %6.1f MB  delivered %s  rc %s\n",
        $1, $4, $3 / $4, $5 / 1024, $6, $7 }' "$RESULTS"
    awk -v a="$kb_secs" -v b="$M_SECS" \
        'BEGIN { printf "kbridge vs pg_recvlogical | kcat -P: %.2fx (target >= 1.0x)\n", b / a }'
    echo "kbridge peak RSS: $((kb_rss / 1024)) MB (target <= 64 MB)"
    if ((BENCH_PGBENCH_SECONDS)); then bench_cdc_pgbench; fi
    stop_postgres
    stop_background
    unset PG_URL
}

# ------------------------------------------------------ cdc mode: pgbench --

# The cdc mode's second part (BENCH_PGBENCH_SECONDS=0 skips it): pgbench writes with
# BENCH_PGBENCH_CLIENTS clients for BENCH_PGBENCH_SECONDS while the capture follows the slot, and
# a live consumer (scripts/bench/cdc_lag.py) takes each change's end-to-end lag: received from
# Kafka minus written (the writer's clock_timestamp(), which every change carries). kbridge runs
# in follow mode (no --once) and is stopped with SIGTERM once the consumer has every change
# pgbench wrote; pg_recvlogical --start (no --endpos) | kcat -P the same way, with SIGINT.
# BENCH_REPEAT runs of each, interleaved, each on a fresh slot and topic. pgbench's sessions
# commit with synchronous_commit=on (PostgreSQL's default): with the cluster's off, a commit
# would reach the WAL senders only at the WAL writer's next flush (wal_writer_delay, 200 ms),
# which would be counted as lag of both tools.
PGB_PARTITIONS=16
PGB_MARKER_ROWS=200
PGB_RESULTS=""

# Changes the pgbench script wrote so far: one insert per row of pgb_ins, n updates per row of
# pgb_acct.
pgb_changes() {
    psql_bench -At -c "SELECT (SELECT count(*) FROM pgb_ins) + (SELECT coalesce(sum(n), 0) FROM pgb_acct)"
}

# Each transaction inserts a row and updates its client's row, both stamped with written_us.
# No TOASTable column: kbridge would warn about each at start. pgb_end: the end marker's rows.
pgb_setup() {
    psql_bench <<EOF
CREATE TABLE pgb_ins (id bigserial PRIMARY KEY, client int NOT NULL, written_us bigint NOT NULL);
CREATE TABLE pgb_acct (client int PRIMARY KEY, n bigint NOT NULL DEFAULT 0, written_us bigint);
CREATE TABLE pgb_end (id bigserial PRIMARY KEY);
INSERT INTO pgb_acct (client) SELECT generate_series(1, $BENCH_PGBENCH_CLIENTS);
EOF
    cat >"$TMP/pgbench_lag.sql" <<'EOF'
\set client :client_id + 1
BEGIN;
INSERT INTO pgb_ins (client, written_us)
    VALUES (:client, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint);
UPDATE pgb_acct SET n = n + 1, written_us = (extract(epoch FROM clock_timestamp()) * 1e6)::bigint
    WHERE client = :client;
END;
EOF
}

# Slots left by the earlier runs (and by the one-transaction part) hold WAL: drop them.
pgb_drop_idle_slots() {
    psql_bench -At -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
        WHERE NOT active" >/dev/null
}

# pgb_wait_slot SLOT PID: wait until PID streams from SLOT (false if PID exits or 30 s pass).
pgb_wait_slot() {
    local slot=$1 pid=$2 i
    for ((i = 0; i < 300; i++)); do
        [[ $(psql_bench -At -c "SELECT count(*) FROM pg_replication_slots
            WHERE slot_name = '$slot' AND active") == 1 ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The pid is no longer ours to stop (it was reaped).
forget_background() {
    local keep=() p
    for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    BG_PIDS=("${keep[@]}")
}

# stop_pid PID [SIGNAL]: signal a background process of ours (none: it is ending on its own),
# wait up to 30 s, then SIGKILL it. STOP_RC is its exit status.
stop_pid() {
    local pid=$1 i
    [[ -z ${2:-} ]] || kill "-$2" "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ((i >= 300)); then
        log "pid $pid still running 30 s after ${2:+SIG$2}${2:-its input ended}: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    set +e
    wait "$pid"
    STOP_RC=$?
    set -e
    forget_background "$pid"
}

# Peak RSS (VmHWM) of a running process, in kB; 0 once it is gone.
peak_rss_kb() {
    awk '/^VmHWM:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null ||
        echo 0
}

# pgb_start_consumer NAME TOPIC: the lag consumer, from TOPIC's beginning; returns once it polls.
pgb_start_consumer() {
    local name=$1 topic=$2 i
    rm -f "$TMP/$name".{ready,expect,lag,timeline}
    start_background "$name.consumer" "$PY" "$ROOT/scripts/bench/cdc_lag.py" \
        "$BOOT" "$topic" "$TMP/$name.ready" "$TMP/$name.expect" "$TMP/$name.lag" "$TMP/$name.timeline"
    PGB_CONSUMER=$LAST_PID
    for ((i = 0; i < 300; i++)); do
        [[ -e $TMP/$name.ready ]] && return 0
        kill -0 "$PGB_CONSUMER" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$TMP/$name.consumer.log" >&2 || true
    die "the lag consumer of $topic did not start"
}

# pgb_workload NAME: pgbench, then the number of changes it wrote to the consumer, which
# stops once it received them all (or nothing came for 60 s). Sets PGB_WRITTEN, PGB_TPS.
pgb_workload() {
    local name=$1 before after threads=$((BENCH_PGBENCH_CLIENTS < 2 ? 1 : 2))
    before=$(pgb_changes)
    local what="$BENCH_PGBENCH_CLIENTS clients, $BENCH_PGBENCH_SECONDS s"
    log "  pgbench: $what${BENCH_PGBENCH_RATE:+, $BENCH_PGBENCH_RATE transactions/s}"
    if ! PGOPTIONS='-c synchronous_commit=on' "$PGBIN/pgbench" -n -M prepared -P 5 \
        ${BENCH_PGBENCH_RATE:+-R "$BENCH_PGBENCH_RATE"} \
        -c "$BENCH_PGBENCH_CLIENTS" -j "$threads" -T "$BENCH_PGBENCH_SECONDS" -f "$TMP/pgbench_lag.sql" \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$TMP/$name.pgbench" 2>&1; then
        FAILED=1
        log "FAILED: pgbench; last lines of its output:"
        tail -n 20 "$TMP/$name.pgbench" | sed 's/^/    /' >&2
    fi
    after=$(pgb_changes)
    PGB_WRITTEN=$((after - before))
    # The end marker: kcat -P reads its input in blocks and holds the last lines of a pipe (up to
    # ~1 KB in our tries) until more comes or the input ends. While pgbench writes that costs
    # nothing, but the last changes would wait for pg_recvlogical's exit: these rows (~9 KB of
    # test_decoding lines, not stamped, not counted as changes) push them through.
    psql_bench -c "INSERT INTO pgb_end SELECT FROM generate_series(1, $PGB_MARKER_ROWS)"
    PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$TMP/$name.pgbench" | head -n 1)
    PGB_TPS=${PGB_TPS:-0}
    echo "$PGB_WRITTEN" >"$TMP/$name.expect"
    log "  pgbench wrote $PGB_WRITTEN changes ($PGB_TPS transactions/s); waiting for the consumer"
    # No time limit here: the consumer gives up by itself after 60 s without a record.
    local rc=0
    wait "$PGB_CONSUMER" || rc=$?
    forget_background "$PGB_CONSUMER"
    if ((rc)); then
        FAILED=1
        log "FAILED: the lag consumer (status $rc): $(tail -n 5 "$TMP/$name.consumer.log")"
    fi
    [[ -s $TMP/$name.lag ]] || printf '0\t0\t0\t0\t0\t0\t0\n' >"$TMP/$name.lag"
}

# pgb_wait_topic TOPIC COUNT: wait (30 s at most) until TOPIC's high watermarks add up to COUNT.
pgb_wait_topic() {
    local i
    for ((i = 0; i < 60; i++)); do
        (($(watermark_sum "$1") >= $2)) && return 0
        sleep 0.5
    done
    log "  $1 holds $(watermark_sum "$1") records 30 s after pgbench ended, not $2"
}

# pgb_record TOOL REP NAME TOPIC RSS_KB RC: one line of $PGB_RESULTS, and the log.
#   tool rep tps written received watermarks rate p50 p99 max rss_kb rc
pgb_record() {
    local tool=$1 rep=$2 name=$3 topic=$4 rss=$5 rc=$6 marks worst
    marks=$(($(watermark_sum "$topic") - PGB_MARKER_ROWS))   # the end marker's rows are not changes
    awk -F'\t' -v OFS='\t' -v tool="$tool" -v rep="$rep" -v tps="$PGB_TPS" -v written="$PGB_WRITTEN" \
        -v marks="$marks" -v rss="$rss" -v rc="$rc" \
        '{ secs = ($7 - $6) / 1e6; print tool, rep, tps, written, $1, marks, (secs > 0 ? $1 / secs : 0),
           $3, $4, $5, rss, rc }' "$TMP/$name.lag" >>"$PGB_RESULTS"
    worst=$(sort -t $'\t' -k4,4gr "$TMP/$name.timeline" 2>/dev/null | head -n 1 || true)
    log "  $(tail -n 1 "$PGB_RESULTS" | awk -F'\t' '{
        printf "received %s/%s (topic %s), %.0f changes/s, ", $5, $4, $6, $7
        printf "lag p50 %.3f s p99 %.3f s max %.3f s, peak RSS %d kB, rc %s", $8, $9, $10, $11, $12 }')"
    [[ -z $worst ]] || log "  worst second: $(awk -F'\t' '{
        printf "+%d s, %d changes, p99 %.3f s, max %.3f s", $1, $2, $3, $4 }' <<<"$worst")"
    log "  max lag by second written:" \
        "$(awk -F'\t' '{ printf "%.2f ", $4 }' "$TMP/$name.timeline" 2>/dev/null || true)"
}

bench_cdc_pgbench_kbridge() {
    local rep=$1 name=pgb_kbridge_$1 topic=cdc_pgb_kbridge_$1 pid rss problems
    local cfg=$TMP/$name.yaml
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
postgres: {url: '\${PG_URL}'}
pipelines:
  - name: pgb_$rep
    source: {type: postgres_cdc, tables: [pgb_ins, pgb_acct, pgb_end], snapshot: never}
    sink: {type: kafka, topic: $topic}
EOF
    log "kbridge (follow mode) run #$rep under pgbench -> $topic"
    pgb_drop_idle_slots
    pgb_start_consumer "$name" "$topic"
    start_background "$name" "$KBRIDGE" run "$cfg" --state-dir "$TMP/state_$name"
    pid=$LAST_PID
    pgb_wait_slot "kbridge_pgb_$rep" "$pid" ||
        die "kbridge did not start streaming: $(tail -n 5 "$TMP/$name.log")"
    pgb_workload "$name"
    pgb_wait_topic "$topic" $((PGB_WRITTEN + PGB_MARKER_ROWS))   # the end marker too, then stop
    rss=$(peak_rss_kb "$pid")
    stop_pid "$pid" TERM
    ((STOP_RC == 0)) || report_failure_pgb "kbridge run (SIGTERM)" "$TMP/$name.log"
    local bad='^[0-9-]+ [0-9:.]+ (warning|error|critical) '
    problems=$(grep -cE "$bad" "$TMP/$name.log" || true)
    if ((problems)); then
        log "  kbridge logged $problems warnings/errors, e.g.:"
        grep -E "$bad" "$TMP/$name.log" | head -n 5 | sed 's/^/    /' >&2
    fi
    pgb_record kbridge "$rep" "$name" "$topic" "$rss" "$STOP_RC"
}

# The peer: test_decoding's lines of the changes (BEGIN/COMMIT filtered out, line-buffered so
# grep holds nothing back), produced with kcat -P with kbridge's producer settings. Peak RSS:
# pg_recvlogical's and kcat's added.
bench_cdc_pgbench_recvlogical() {
    local rep=$1 name=pgb_recvlogical_$1 topic=cdc_pgb_recvlogical_$1 slot=bench_pgb_td_$1 pid p rss=0
    log "pg_recvlogical | kcat -P run #$rep under pgbench -> $topic"
    pgb_drop_idle_slots
    "$PGBIN/pg_recvlogical" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres --slot "$slot" \
        --create-slot --plugin=test_decoding
    pgb_start_consumer "$name" "$topic"
    # shellcheck disable=SC2016 # expanded by the inner bash
    start_background "$name" bash -c 'set -euo pipefail
        "$1" -h 127.0.0.1 -p "$2" -U postgres -d postgres --slot "$3" --start -f - |
        grep --line-buffered "^table " |
        kcat -P -b "$4" -t "$5" -X enable.idempotence=true -X acks=all' \
        cdc "$PGBIN/pg_recvlogical" "$PG_PORT" "$slot" "$BOOT" "$topic"
    pid=$LAST_PID
    pgb_wait_slot "$slot" "$pid" ||
        die "pg_recvlogical did not start streaming: $(tail -n 5 "$TMP/$name.log")"
    pgb_workload "$name"
    for p in $(pgrep -P "$pid" -x pg_recvlogical || true) $(pgrep -P "$pid" -x kcat || true); do
        rss=$((rss + $(peak_rss_kb "$p")))
    done
    # pg_recvlogical ends on SIGINT; grep and kcat (which delivers what it holds) on its EOF.
    for p in $(pgrep -P "$pid" -x pg_recvlogical || true); do kill -INT "$p" 2>/dev/null || true; done
    stop_pid "$pid"
    ((STOP_RC == 0)) || report_failure_pgb "pg_recvlogical | kcat -P (SIGINT)" "$TMP/$name.log"
    pgb_record "recvlogical|kcat" "$rep" "$name" "$topic" "$rss" "$STOP_RC"
}

report_failure_pgb() {
    FAILED=1
    log "FAILED: $1 exited with status $STOP_RC; last lines of its output ($2):"
    tail -n 20 "$2" | sed 's/^/    /' >&2
}

print_pgbench_report() {
    "$PY" - "$PGB_RESULTS" "$BENCH_PGBENCH_CLIENTS" "$BENCH_PGBENCH_SECONDS" "$BENCH_REPEAT" \
        "$BENCH_PGBENCH_RATE" <<'EOF'
import statistics, sys
path, clients, secs, repeat, rate = sys.argv[1:6]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
print()
print("== kbridge bench: postgres_cdc under pgbench (%s clients, %s s, %s, an insert and an update"
      " per transaction; %s runs each) -> kafka"
      % (clients, secs, "%s transactions/s" % rate if rate else "unthrottled", repeat))
print("%-17s %3s %7s %8s %8s %8s %10s %8s %8s %8s %8s %3s" % (
    "tool", "run", "pgb tps", "written", "received", "in topic", "changes/s", "lag p50", "p99",
    "max", "peak RSS", "rc"))
for r in rows:
    print("%-17s %3s %7.0f %8s %8s %8s %10.0f %7.3fs %7.3fs %7.3fs %5.1f MB %3s" % (
        r[0], r[1], float(r[2]), r[3], r[4], r[5], float(r[6]), float(r[7]), float(r[8]),
        float(r[9]), int(r[10]) / 1024, r[11]))

def ok(r):  # exited cleanly and every change written arrived, once
    return r[11] == "0" and r[3] == r[4] == r[5] and int(r[3]) > 0

def median(tool, column):
    values = [float(r[column]) for r in rows if r[0] == tool and ok(r)]
    return statistics.median(values) if values else None

def kept_up(tool):
    runs = [r for r in rows if r[0] == tool]
    return "%d of %d runs delivered every change" % (sum(map(ok, runs)), len(runs))

kb, rl = median("kbridge", 6), median("recvlogical|kcat", 6)
print()
print("kbridge vs pg_recvlogical | kcat -P: " +
      ("%.2fx (target >= 1.0x; medians %.0f vs %.0f changes/s)" % (kb / rl, kb, rl)
       if kb and rl else "n/a (no complete run of a tool)"))
def lag(tool, column):
    v = median(tool, column)
    return "n/a" if v is None else "%.3f s" % v
print("p99 lag: kbridge %s, pg_recvlogical | kcat -P %s (target < 1 s)"
      % (lag("kbridge", 8), lag("recvlogical|kcat", 8)))
print("p50 lag: kbridge %s, pg_recvlogical | kcat -P %s" % (lag("kbridge", 7), lag("recvlogical|kcat", 7)))
print("kept up: kbridge %s; pg_recvlogical | kcat -P %s" % (kept_up("kbridge"), kept_up("recvlogical|kcat")))
rss = [int(r[10]) for r in rows if r[0] == "kbridge"]
if rss:
    print("kbridge peak RSS under pgbench: %.1f MB at most (target <= 64 MB)" % (max(rss) / 1024))
print()
print("notes: medians over the complete runs. Lag: received by a live consumer minus the change's")
print("written_us (clock_timestamp() in the writing statement, so it includes the commit). changes/s:")
print("received / (last received - first written): a tool that keeps up captures at pgbench's rate,")
print("and as both share the CPU with pgbench, the ratio also reflects how much each slows pgbench.")
print("Counts after the capture caught up: written (pgbench, by the tables), received (the consumer),")
print("in topic (high watermarks, less the end marker's rows: written after pgbench, as kcat -P holds")
print("the last lines of its input until more come). peak RSS of pg_recvlogical | kcat -P: the two added.")
EOF
}

# The slots of the one-transaction part are dropped first; the tables are new.
bench_cdc_pgbench() {
    [[ -x $PGBIN/pgbench ]] || die "no pgbench in $PGBIN"
    PGB_RESULTS=$TMP/results_cdc_pgbench.tsv
    : >"$PGB_RESULTS"
    pgb_setup
    local i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_cdc_pgbench_kbridge "$i"
        bench_cdc_pgbench_recvlogical "$i"
    done
    print_pgbench_report
}

# ------------------------------------------------------------ sinks mode --

# The mock cluster keeps ~5 MB per partition: spread N records over enough
# partitions that none is trimmed before it is read.
SINK_PARTITIONS=32

# The same N records (as generate_events makes them) as JSON and as CSV, in
# the topics sink_json and sink_csv.
load_sink_topics() {
    "$PY" - "$TMP" <<'EOF'
import json, os, sys
out = sys.argv[1]
# Keyed by id: keyless records would go out in sticky batches, piling some partitions
# past what the mock cluster keeps.
with open(os.path.join(out, "events.jsonl")) as src, \
        open(os.path.join(out, "sink_events.json"), "w") as js, open(os.path.join(out, "sink_events.csv"), "w") as csv:
    for line in src:
        e = json.loads(line)
        js.write("%d\t%s" % (e["id"], line))
        csv.write("%d\t%d,%d,%s,%s,%d\n" % (e["id"], e["id"], e["user_id"], e["action"], e["item"], e["ts"]))
EOF
    log "producing $BENCH_N records to sink_json and sink_csv ($SINK_PARTITIONS partitions each)"
    kcat -P -b "$BOOT" -t sink_json -K '\t' -X linger.ms=20 -l "$TMP/sink_events.json"
    kcat -P -b "$BOOT" -t sink_csv -K '\t' -X linger.ms=20 -l "$TMP/sink_events.csv"
    local json csv
    json=$(watermark_sum sink_json)
    csv=$(watermark_sum sink_csv)
    ((json == BENCH_N && csv == BENCH_N)) || die "topics hold $json JSON and $csv CSV records, not $BENCH_N"
}

# fresh_table NAME [half]: an empty events table; with "half", every other id
# of the records is already there (with other values), for the upsert run.
fresh_table() {
    psql_bench -c "DROP TABLE IF EXISTS $1" \
        -c "CREATE TABLE $1 (id bigint PRIMARY KEY, user_id int, action text, item text, ts bigint)"
    if [[ ${2:-} == half ]]; then
        psql_bench -c "INSERT INTO $1 SELECT g, 0, 'old', 'old', 0 FROM generate_series(2, $BENCH_N, 2) g" \
            -c "VACUUM ANALYZE $1"
    fi
    psql_bench -c CHECKPOINT
}

# measure_rows TOOL REP RECORDS TABLE COMMAND...: time COMMAND, then count the
# table's rows (the "delivered" column) and drop it. Kept, every loaded table
# would be vacuumed and analyzed by autovacuum within the minute (1-2 s of a
# worker each), in the middle of whichever tool's run comes next.
measure_rows() {
    local tool=$1 rep=$2 records=$3 table=$4; shift 4
    local out=$TMP/${tool//[^A-Za-z0-9]/_}_$rep.log
    log "$tool run #$rep: $records records -> $table"
    measure "$out" "$@"
    ((M_RC == 0)) || report_failure "$(printf '%q ' "$@")" "$out"
    M_DELIVERED=$(psql_bench -At -c "SELECT count(*) FROM $table")
    psql_bench -c "DROP TABLE $table"
    record_measurement "$tool" "$rep" "$records"
}

# bench_kbridge_sink TOOL REP MODE [JOIN]: kbridge consumes sink_json (a new
# group each run) into a fresh table with the postgres_table sink in MODE;
# JOIN=true makes it a group member (join_group).
bench_kbridge_sink() {
    local tool=$1 rep=$2 mode=$3 join=${4:-false} table=sink_${1//[^A-Za-z0-9]/_}_$2
    local cfg=$TMP/$table.yaml
    if [[ $mode == upsert ]]; then fresh_table "$table" half; else fresh_table "$table"; fi
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
postgres: {url: '\${PG_URL}'}
pipelines:
  - name: bench
    source: {type: kafka, topics: [sink_json], group: $table, join_group: $join}
    sink: {type: postgres_table, table: $table, mode: $mode}
EOF
    measure_rows "$tool" "$rep" "$BENCH_N" "$table" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_$table"
}

# The baseline: kcat reads the CSV copy of the records to its end, psql \copy
# loads them; the pipeline is timed as a whole.
bench_kcat_psql() {
    local rep=$1 table=sink_kcat_$1
    fresh_table "$table"
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure_rows "kcat|psql" "$rep" "$BENCH_N" "$table" \
        bash -c 'set -euo pipefail
            kcat -C -b "$1" -t sink_csv -o beginning -e -q -f "%s\n" |
            "$2" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$3" -U postgres -d postgres \
                -c "\\copy $4 FROM STDIN (FORMAT csv)"' \
        kcat-psql "$BOOT" "$PGBIN/psql" "$PG_PORT" "$table"
}

# The seed's consumer (python3-confluent-kafka + psycopg2): one INSERT and one
# commit per record, on the first BENCH_PY_N records.
bench_python_sink() {
    local tool=${1:-python-seed} table=sink_${1:-python}_1
    table=${table//[^A-Za-z0-9_]/_}
    fresh_table "$table"
    measure_rows "$tool" 1 "$BENCH_PY_N" "$table" \
        "$PY" "$ROOT/scripts/bench/seed_kafka_to_postgres.py" --bootstrap "$BOOT" --topic sink_json \
        --dsn "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" --table "$table" --count "$BENCH_PY_N"
}

# ------------------------------------------- sinks mode: MariaDB, SQLite --

MARIA_DIR=""
maria() { mariadb --no-defaults -uroot -h127.0.0.1 -P"$MARIA_PORT" "$@"; }

# A throwaway MariaDB (mariadb-install-db in a scratch dir, as the mysql user
# when root) with LOCAL INFILE allowed, for mysql_table and its baseline.
start_mariadb() {
    MARIA_DIR=$TMP/mariadb
    mkdir -p "$MARIA_DIR"
    chmod 755 "$TMP"
    local as=()
    if ((EUID == 0)); then
        as=(runuser -u mysql --)
        chown mysql: "$MARIA_DIR"
    fi
    "${as[@]}" mariadb-install-db --no-defaults --datadir="$MARIA_DIR/data" \
        --auth-root-authentication-method=normal --skip-test-db >"$TMP/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed (see $TMP/mariadb-install.log)"
    MARIA_PORT=$(free_port)
    start_background mariadb "${as[@]}" mariadbd --no-defaults --datadir="$MARIA_DIR/data" \
        --socket="$MARIA_DIR/sock" --pid-file="$MARIA_DIR/pid" --port="$MARIA_PORT" \
        --bind-address=127.0.0.1 --skip-log-bin --local-infile=1 --innodb-buffer-pool-size=256M \
        --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2
    local i
    for ((i = 0; i < 300; i++)); do
        maria -e "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < 300)) || die "mariadb did not come up on port $MARIA_PORT"
    maria -e "CREATE DATABASE bench CHARACTER SET utf8mb4"
}

stop_mariadb() {
    [[ -n $MARIA_DIR ]] || return 0
    maria -e SHUTDOWN 2>/dev/null || true
    MARIA_DIR=""
}

# fresh_maria_table NAME [half]: like fresh_table, in MariaDB.
fresh_maria_table() {
    maria bench -e "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id BIGINT PRIMARY KEY,
        user_id INT, action VARCHAR(64), item VARCHAR(64), ts BIGINT) ENGINE=InnoDB"
    if [[ ${2:-} == half ]]; then
        maria bench -e "INSERT INTO $1 SELECT seq, 0, 'old', 'old', 0 FROM seq_2_to_${BENCH_N}_step_2"
    fi
}

# measure_sql_rows TOOL REP TYPE TABLE DB COMMAND...: time COMMAND, count the
# rows (the "delivered" column), drop the table.
measure_sql_rows() {
    local tool=$1 rep=$2 type=$3 table=$4 db=$5
    shift 5
    local out=$TMP/${tool//[^A-Za-z0-9]/_}_$rep.log
    log "$tool run #$rep: $BENCH_N records -> $table"
    measure "$out" "$@"
    ((M_RC == 0)) || report_failure "$(printf '%q ' "$@")" "$out"
    if [[ $type == mysql_table ]]; then
        M_DELIVERED=$(maria -N bench -e "SELECT count(*) FROM $table")
        maria bench -e "DROP TABLE $table"
    else
        M_DELIVERED=$(sqlite3 "$db" "SELECT count(*) FROM $table")
        rm -f "$db" "$db-wal" "$db-shm"
    fi
    record_measurement "$tool" "$rep" "$BENCH_N"
}

# bench_sql_sink TOOL REP TYPE MODE: kbridge consumes sink_json into a fresh
# table of TYPE (mysql_table or sqlite_table) in MODE.
bench_sql_sink() {
    local tool=$1 rep=$2 type=$3 mode=$4 table=sink_${1//[^A-Za-z0-9]/_}_$2
    local cfg=$TMP/$table.yaml db=$TMP/$table.db target
    if [[ $type == mysql_table ]]; then
        if [[ $mode == upsert ]]; then fresh_maria_table "$table" half; else fresh_maria_table "$table"; fi
        target="url: 'mysql://root@127.0.0.1:$MARIA_PORT/bench'"
    else
        rm -f "$db" "$db-wal" "$db-shm"
        sqlite3 "$db" "CREATE TABLE $table (id INTEGER PRIMARY KEY, user_id INT, action TEXT, item TEXT, ts INT)"
        target="path: '$db'"
    fi
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
pipelines:
  - name: bench
    source: {type: kafka, topics: [sink_json], group: $table, join_group: false}
    sink: {type: $type, table: $table, mode: $mode, $target}
EOF
    measure_sql_rows "$tool" "$rep" "$type" "$table" "$db" \
        "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_$table"
}

# The baselines: kcat reads the CSV copy of the records to its end into
# mariadb's LOAD DATA LOCAL INFILE, or sqlite3's .import; timed as a whole.
bench_kcat_mariadb() {
    local rep=$1 table=sink_kcat_maria_$1
    fresh_maria_table "$table"
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure_sql_rows "kcat|mariadb" "$rep" mysql_table "$table" "" \
        bash -c 'set -euo pipefail
            kcat -C -b "$1" -t sink_csv -o beginning -e -q -f "%s\n" |
            mariadb --no-defaults --local-infile=1 -uroot -h127.0.0.1 -P"$2" bench \
                -e "LOAD DATA LOCAL INFILE '\''/dev/stdin'\'' INTO TABLE $3 FIELDS TERMINATED BY '\'','\''"' \
        kcat-mariadb "$BOOT" "$MARIA_PORT" "$table"
}

bench_kcat_sqlite() {
    local rep=$1 table=sink_kcat_sqlite_$1
    local db=$TMP/$table.db
    rm -f "$db"
    sqlite3 "$db" "CREATE TABLE $table (id INTEGER PRIMARY KEY, user_id INT, action TEXT, item TEXT, ts INT)"
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure_sql_rows "kcat|sqlite3" "$rep" sqlite_table "$table" "$db" \
        bash -c 'set -euo pipefail
            kcat -C -b "$1" -t sink_csv -o beginning -e -q -f "%s\n" |
            sqlite3 "$2" ".import --csv /dev/stdin $3"' \
        kcat-sqlite "$BOOT" "$db" "$table"
}

# mysql_table and sqlite_table next to their databases' own bulk loaders.
bench_sql_dialects() {
    ensure_packages mariadb-server mariadb-client sqlite3
    start_mariadb
    log "mariadb on 127.0.0.1:$MARIA_PORT"
    local i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_sql_sink mysql-insert "$i" mysql_table insert
        bench_kcat_mariadb "$i"
        bench_sql_sink mysql-upsert "$i" mysql_table upsert
        bench_sql_sink sqlite-insert "$i" sqlite_table insert
        bench_kcat_sqlite "$i"
    done
    stop_mariadb
}

bench_sinks() {
    ensure_packages postgresql kcat python3-psycopg2
    begin_results sinks
    generate_events
    start_postgres
    start_dev_kafka "sink_json:$SINK_PARTITIONS" "sink_csv:$SINK_PARTITIONS"
    export KAFKA_BROKERS=$BOOT PG_URL
    log "postgres on 127.0.0.1:$PG_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"
    load_sink_topics

    local i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_kbridge_sink kbridge-insert "$i" insert
        bench_kcat_psql "$i"
        bench_kbridge_sink kbridge-upsert "$i" upsert
        bench_kbridge_sink kbridge-joined "$i" insert true
    done
    bench_python_sink
    if ((BENCH_DURABLE)); then
        # The per-row loop pays a WAL flush per record where PostgreSQL runs with its defaults.
        stop_postgres
        start_postgres durable
        PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
        export PG_URL
        log "postgres restarted with its durable defaults (fsync, synchronous_commit on)"
        bench_kbridge_sink kbridge-durable 1 insert
        bench_python_sink python-durable
    fi
    if ((BENCH_SQL_DIALECTS)); then bench_sql_dialects; fi

    print_report sinks "$RESULTS" "$BENCH_N" "$BENCH_PY_N" "$BENCH_REPEAT" "$KBRIDGE_BUILD_TYPE"
    stop_postgres
    stop_background
    unset PG_URL
}

# ----------------------------------------------------------- poison mode --

# The poison mode's topics, keyed by id: poison_clean (N good records), poison_null (every 100th
# with action null), poison_check (every 100th with user_id -1), poison_all (BENCH_POISON_ALL
# records, every one with action null).
load_poison_topics() {
    "$PY" - "$TMP" "$BENCH_N" "$BENCH_POISON_ALL" <<'EOF'
import json, os, sys
out, n, n_all = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def event(i, **change):
    e = {"id": i, "user_id": i % 10007, "action": "view", "item": "item-%05d" % (i % 50000),
         "ts": 1700000000000 + i}
    e.update(change)
    return "%d\t%s\n" % (i, json.dumps(e, separators=(",", ":")))
with open(os.path.join(out, "poison_clean.json"), "w") as clean, \
        open(os.path.join(out, "poison_null.json"), "w") as null, \
        open(os.path.join(out, "poison_check.json"), "w") as check:
    for i in range(n):
        bad = i % 100 == 50
        clean.write(event(i))
        null.write(event(i, action=None) if bad else event(i))
        check.write(event(i, user_id=-1) if bad else event(i))
with open(os.path.join(out, "poison_all.json"), "w") as every:
    for i in range(n_all):
        every.write(event(i, action=None))
EOF
    local t
    for t in poison_clean poison_null poison_check poison_all; do
        kcat -P -b "$BOOT" -t "$t" -K '\t' -X linger.ms=20 -l "$TMP/$t.json"
    done
    log "produced $BENCH_N records to poison_clean, poison_null and poison_check, $BENCH_POISON_ALL to poison_all"
}

# bench_poison_run TOOL REP TOPIC RECORDS MODE: kbridge consumes TOPIC into a fresh table (half
# of the ids there for upserts), the refused records to the dead letter topic poison_dlq.
# "delivered" is the rows written (a refused upsert leaves its row's action 'old') plus the
# dead letters the run added: every record in one place or the other.
bench_poison_run() {
    local tool=$1 rep=$2 topic=$3 records=$4 mode=$5
    local table cfg out dlq_before dlq_after rows
    table=poison_${tool//[^A-Za-z0-9]/_}_$rep
    cfg=$TMP/$table.yaml
    out=$TMP/$table.log
    psql_bench -c "DROP TABLE IF EXISTS $table" -c "CREATE TABLE $table (id bigint PRIMARY KEY,
        user_id int CHECK (user_id >= 0), action text NOT NULL, item text, ts bigint)"
    if [[ $mode == upsert ]]; then
        psql_bench -c "INSERT INTO $table SELECT g, 0, 'old', 'old', 0
            FROM generate_series(2, $records, 2) g" -c "VACUUM ANALYZE $table"
    fi
    psql_bench -c CHECKPOINT
    cat >"$cfg" <<EOF
version: 1
kafka: {brokers: '\${KAFKA_BROKERS}'}
postgres: {url: '\${PG_URL}'}
pipelines:
  - name: bench
    source: {type: kafka, topics: [$topic], group: $table, join_group: false}
    sink: {type: postgres_table, table: $table, mode: $mode}
    dead_letter: {type: kafka, topic: poison_dlq}
EOF
    dlq_before=$(watermark_sum poison_dlq)
    log "$tool run #$rep: $records records of $topic -> $table ($mode)"
    # Its output (a warning per dead-lettered record) goes to $out.
    measure "$out" "$KBRIDGE" run "$cfg" --once --state-dir "$TMP/state_$table"
    ((M_RC == 0)) || report_failure "kbridge run $cfg" "$out"
    dlq_after=$(watermark_sum poison_dlq)
    rows=$(psql_bench -At -c "SELECT count(*) FROM $table WHERE action <> 'old'")
    M_DELIVERED=$((rows + dlq_after - dlq_before))
    psql_bench -c "DROP TABLE $table"
    record_measurement "$tool" "$rep" "$records"
}

# The poison runs on the PostgreSQL running now; each tool's name ends in SUFFIX.
bench_poison_round() {
    local suffix=$1 i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        bench_poison_run "kbridge-insert$suffix" "$i" poison_clean "$BENCH_N" insert
        bench_poison_run "kbridge-ins-1%$suffix" "$i" poison_null "$BENCH_N" insert
        bench_poison_run "kbridge-ups-1%$suffix" "$i" poison_null "$BENCH_N" upsert
        bench_poison_run "kbridge-chk-1%$suffix" "$i" poison_check "$BENCH_N" insert
        bench_poison_run "kbridge-ins-100%$suffix" "$i" poison_all "$BENCH_POISON_ALL" insert
        bench_poison_run "kbridge-ups-100%$suffix" "$i" poison_all "$BENCH_POISON_ALL" upsert
    done
}

bench_poison() {
    ensure_packages postgresql kcat python3-confluent-kafka
    begin_results poison
    start_postgres durable
    start_dev_kafka "poison_clean:$SINK_PARTITIONS" "poison_null:$SINK_PARTITIONS" \
        "poison_check:$SINK_PARTITIONS" "poison_all:$SINK_PARTITIONS" "poison_dlq:$SINK_PARTITIONS"
    export KAFKA_BROKERS=$BOOT PG_URL
    log "postgres (durable defaults) on 127.0.0.1:$PG_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"
    load_poison_topics
    bench_poison_round ""
    if ((BENCH_FAST)); then
        stop_postgres
        start_postgres
        export PG_URL
        log "postgres restarted with fsync, synchronous_commit and full_page_writes off"
        bench_poison_round "-fast"
    fi
    print_report poison "$RESULTS" "$BENCH_N" "$BENCH_POISON_ALL" "$BENCH_REPEAT" "$KBRIDGE_BUILD_TYPE"
    stop_postgres
    stop_background
    unset PG_URL
}

# ------------------------------------------------------------ shell mode --

# The consume topic holds all N records: the mock cluster keeps the newest ~5 MB per partition,
# so at most 31,250 events (~3 MB) go to each of at least 32 partitions.
SHELL_PARTITIONS=$(((BENCH_N + 31249) / 31250 > 32 ? (BENCH_N + 31249) / 31250 : 32))

# Five steps over the events' fields, each doing work on every record; the filter keeps every
# action, so the pipeline sends the same N records with and without the chain.
SHELL_TRANSFORMS='      - drop: [item]
      - rename: {action: event}
      - set: {source: redis, day: "{ts:date}"}
      - filter: {event: [click, view, search, add_to_cart, purchase]}
      - select: [id, user_id, event, day, source]'

# kbridge produce reads the events' JSON lines and keys each by its user_id; kcat -P (bench_kcat)
# sends the same lines with the same keys, split from events.keyed at a tab.
bench_kbridge_produce() {
    local rep=$1 topic=shell_produce_$1
    measure_delivery kbridge-produce "$rep" "$BENCH_N" "$topic" \
        "$KBRIDGE" produce "$topic" -b "$BOOT" -l "$TMP/events.jsonl" --format json -k '{user_id}'
    record_measurement kbridge-produce "$rep" "$BENCH_N"
}

# measure_lines TOOL REP COMMAND...: time COMMAND piped into wc -l (its output is counted, not
# kept); the count of lines is the "delivered" column.
measure_lines() {
    local tool=$1 rep=$2; shift 2
    local out=$TMP/${tool//[^A-Za-z0-9]/_}_$rep.log
    log "$tool run #$rep: $BENCH_N records of shell_consume"
    rm -f "$TMP/lines"
    # shellcheck disable=SC2016 # expanded by the inner bash
    measure "$out" bash -c 'set -o pipefail; "${@:2}" | wc -l >"$1"' count-lines "$TMP/lines" "$@"
    ((M_RC == 0)) || report_failure "$(printf '%q ' "$@")" "$out"
    M_DELIVERED=$(tr -d '[:space:]' <"$TMP/lines" 2>/dev/null || true)
    M_DELIVERED=${M_DELIVERED:-0}
    record_measurement "$tool" "$rep" "$BENCH_N"
}

bench_consume_pair() {
    local rep=$1
    measure_lines kbridge-consume "$rep" "$KBRIDGE" consume shell_consume -b "$BOOT" -e -o beginning
    measure_lines kcat-C "$rep" kcat -C -b "$BOOT" -t shell_consume -e -o beginning -q
}

load_shell_topic() {
    log "producing $BENCH_N records to shell_consume ($SHELL_PARTITIONS partitions)"
    kcat -P -b "$BOOT" -t shell_consume -K '\t' -X linger.ms=20 -l "$TMP/events.keyed"
    local n
    n=$(watermark_sum shell_consume)
    ((n == BENCH_N)) || die "shell_consume holds $n records, not $BENCH_N"
}

print_shell_report() {
    "$PY" - "$ROOT/scripts/bench" "$RESULTS" "$BENCH_N" "$SHELL_PARTITIONS" "$BENCH_REPEAT" \
        "$KBRIDGE_BUILD_TYPE" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from report import load, print_runs, print_summary, summarize
path, n, parts, repeat, build = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
rows = load(path)
tools = ("kbridge-produce", "kcat", "kbridge-consume", "kcat-C", "pipeline", "pipeline+5tx")
print()
print("== kbridge bench: produce, consume, transforms (N=%d, repeats=%s, kbridge build=%s)"
      % (n, repeat, build))
print("   consume topic: the N records on %s partitions (the mock cluster keeps ~5 MB per partition)"
      % parts)
print()
print_runs(rows, "LEFT IN REDIS")
summary = summarize(rows, tools)
print()
print_summary(summary, tools, width=16)
print("(medians over successful runs; a run counts when it exited 0 and delivered every record: the")
print(" topic's high watermarks for produce and the pipeline (Redis list empty too), the lines")
print(" printed for consume)")
print()
def rate(tool):
    s = summary.get(tool)
    return s["rate"] if s else None
kp, cp, kc, cc = rate("kbridge-produce"), rate("kcat"), rate("kbridge-consume"), rate("kcat-C")
plain, chain = rate("pipeline"), rate("pipeline+5tx")
print("kbridge produce vs kcat -P:  " + ("%.2f× (target ≥ 0.9×)" % (kp / cp) if kp and cp else "n/a (a tool failed)"))
print("kbridge consume vs kcat -C:  " + ("%.2f× (target ≥ 0.9×)" % (kc / cc) if kc and cc else "n/a (a tool failed)"))
if plain and chain:
    print("five-step transform chain:   costs %.1f%% of redis_list -> kafka throughput (target ≤ 20%%;"
          " %.0f vs %.0f rec/s)" % (100 * (1 - chain / plain), chain, plain))
else:
    print("five-step transform chain:   n/a (a run failed)")
print()
print("notes: kbridge produce -l events.jsonl --format json -k '{user_id}' (idempotent, acks=all) vs")
print("kcat -P -K '\\t' -X enable.idempotence=true -X acks=all -l events.keyed: the same values and keys.")
print("kbridge consume -e -o beginning and kcat -C -e -o beginning -q print each value and a newline")
print("into wc -l. The chain (drop, rename, set with {ts:date}, filter keeping every action, select)")
print("runs on the redis mode's redis_list -> kafka pipeline; both runs send all N records.")
EOF
}

bench_shell() {
    ensure_packages redis-server redis-tools kcat
    begin_results shell

    local topics=("shell_consume:$SHELL_PARTITIONS") i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        topics+=("shell_produce_$i" "bench_kcat_$i" "pipeline_$i" "pipeline_5tx_$i")
    done

    start_redis
    start_dev_kafka "${topics[@]}"
    export KAFKA_BROKERS=$BOOT REDIS_PORT
    log "redis on 127.0.0.1:$REDIS_PORT, kafka (dev-kafka, 3 brokers) on $BOOT"

    generate_events
    ((BENCH_SHELL_KCAT == 0)) || load_shell_topic

    # Interleaved, as in the redis mode.
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        if ((BENCH_SHELL_KCAT != 0)); then
            bench_kbridge_produce "$i"
            bench_kcat "$i"
            bench_consume_pair "$i"
        fi
        bench_kbridge_redis "$i" pipeline
        bench_kbridge_redis "$i" pipeline+5tx "$SHELL_TRANSFORMS"
    done

    print_shell_report
    stop_background
}

# ------------------------------------------------------------------- main --

run_mode() {
    case $1 in
        redis) bench_redis ;;
        postgres) bench_postgres ;;
        sinks) bench_sinks ;;
        poison) bench_poison ;;
        cdc) bench_cdc ;;
        shell) bench_shell ;;
        *) die "mode $1 listed as implemented but has no function" ;;
    esac
}

main() {
    local mode=${1:-all}
    case $mode in
        -h | --help) usage; exit 0 ;;
        redis | postgres | sinks | poison | cdc | shell) setup_common; run_mode "$mode" ;;
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
