#!/usr/bin/env bash
# The quickstart: install what is missing, build, start a throwaway redis-server and the embedded
# Kafka cluster, load sample user-behaviour events into a Redis list, move them into Kafka with
# configs/quickstart.yaml, show what arrived, clean up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$KBRIDGE_ROOT"

ensure_packages "${KBRIDGE_PACKAGES[@]}"
say "build"
build_kbridge build -DCMAKE_BUILD_TYPE=RelWithDebInfo
KBRIDGE=$KBRIDGE_ROOT/build/kbridge

WORK=$(mktemp -d -t kbridge-quickstart.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

REDIS_PORT=$(free_port)
say "redis-server on 127.0.0.1:$REDIS_PORT, embedded Kafka (kbridge dev-kafka) in $WORK"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$KBRIDGE" dev-kafka --brokers 3 --topic user_behavior_topic:4 --bootstrap-file "$WORK/bootstrap" >"$WORK/kafka.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    [[ -s $WORK/bootstrap ]] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
KAFKA_BROKERS=$(cat "$WORK/bootstrap")
export KAFKA_BROKERS REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

EVENTS=${QUICKSTART_EVENTS:-10000}
say "loading $EVENTS user-behaviour events into the Redis list user_behavior"
awk -v n="$EVENTS" 'BEGIN {
    split("view click cart buy", actions, " ")
    for (i = 1; i <= n; i++) {
        v = sprintf("{\"id\":%d,\"user_id\":%d,\"action\":\"%s\",\"item\":\"item-%05d\",\"ts\":%.0f}",
                    i, (i * 7919) % 1000, actions[i % 4 + 1], i % 500, 1700000000000 + i)
        printf "*3\r\n$5\r\nRPUSH\r\n$13\r\nuser_behavior\r\n$%d\r\n%s\r\n", length(v), v
    }
}' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
echo "user_behavior holds $(redis-cli -p "$REDIS_PORT" llen user_behavior) events"

say "kbridge run configs/quickstart.yaml --once"
"$KBRIDGE" run configs/quickstart.yaml --once

say "what arrived in user_behavior_topic (read back with kcat)"
ARRIVED=$(kcat -b "$KAFKA_BROKERS" -C -t user_behavior_topic -o beginning -e -q -f '%o\n' | wc -l)
echo "messages: $ARRIVED of $EVENTS; left in Redis: $(redis-cli -p "$REDIS_PORT" llen user_behavior)"
echo "a few of them (partition, key, headers, value):"
kcat -b "$KAFKA_BROKERS" -C -t user_behavior_topic -p 0 -o beginning -c 3 -q -f '  p%p key=%k %h %s\n'
[[ $ARRIVED -eq $EVENTS ]]
say "done: try 'build/kbridge validate configs/quickstart.yaml' and read README.md"
