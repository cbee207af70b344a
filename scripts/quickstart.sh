#!/usr/bin/env bash
# The quickstart: install what is missing, build, start a throwaway redis-server and the embedded
# Kafka cluster, load sample user-behaviour events into a Redis list, move them into Kafka with
# configs/quickstart.yaml, show what arrived; then start a throwaway PostgreSQL and take a table's
# changes through Kafka into an SQLite file with configs/quickstart-cdc.yaml; clean up.
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
    # PostgreSQL may run under runuser: its postmaster takes the fast-shutdown signal itself.
    [[ -s $WORK/pg/data/postmaster.pid ]] && kill -INT "$(head -n 1 "$WORK/pg/data/postmaster.pid")" 2>/dev/null
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

PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin | sort -V | tail -n 1)
PG_PORT=$(free_port)
say "PostgreSQL (wal_level=logical) on 127.0.0.1:$PG_PORT"
mkdir "$WORK/pg"
PG_AS=()
if ((EUID == 0)); then
    PG_AS=(runuser -u postgres --)
    chmod 755 "$WORK"
    chown postgres: "$WORK/pg"
fi
(cd "$WORK/pg" && "${PG_AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres -A trust --no-sync) \
    >"$WORK/initdb.log" 2>&1
"${PG_AS[@]}" "$PGBIN/postgres" -D "$WORK/pg/data" -p "$PG_PORT" -k "$WORK/pg" \
    -c listen_addresses=127.0.0.1 -c wal_level=logical -c fsync=off >"$WORK/postgres.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.1
done
export PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres SQLITE_PATH=$WORK/orders.db
psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE TABLE orders (id int PRIMARY KEY, customer text,
    amount numeric(12,2)); ALTER TABLE orders REPLICA IDENTITY FULL;
    INSERT INTO orders SELECT g, 'customer-' || g % 50, 19.99 + g FROM generate_series(1, 1000) AS g"
CDC=(run configs/quickstart-cdc.yaml --once --state-dir "$WORK/state" --pipeline)
say "orders -> Kafka, exactly once: the 1000 rows (snapshot), then an update and a delete"
"$KBRIDGE" "${CDC[@]}" orders-cdc
psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "UPDATE orders SET amount = amount * 2 WHERE id <= 10;
    DELETE FROM orders WHERE id > 990"
"$KBRIDGE" "${CDC[@]}" orders-cdc
say "pg.public.orders -> the SQLite file $SQLITE_PATH (upserts, a tombstone deletes)"
sqlite3 "$SQLITE_PATH" "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount TEXT)"
"$KBRIDGE" "${CDC[@]}" orders-sqlite
psql "$PG_URL" -At -c "SELECT id || '|' || customer || '|' || amount FROM orders ORDER BY id" \
    >"$WORK/orders.pg"
sqlite3 "$SQLITE_PATH" "SELECT id || '|' || customer || '|' || amount FROM orders ORDER BY id" \
    >"$WORK/orders.sqlite"
echo "PostgreSQL: $(wc -l <"$WORK/orders.pg") orders; SQLite: $(wc -l <"$WORK/orders.sqlite") orders"
diff "$WORK/orders.pg" "$WORK/orders.sqlite" && echo "the same rows, amounts as written: $(sed -n 1p "$WORK/orders.sqlite")"
say "done: try 'build/kbridge validate configs/quickstart.yaml' and read README.md"
