// postgres_cdc -> Kafka against a real PostgreSQL (wal_level=logical) and the embedded Kafka
// cluster. What arrived is read back with a client of its own (python3-confluent-kafka) and
// checked by counting ids.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "postgres_cdc_fixture.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

TEST_F(PostgresCdc, InsertUpdateDeleteTruncateArriveAsRowToJsonGivesThem) {
    pg.exec(R"SQL(
        CREATE TABLE types (
            id int PRIMARY KEY, i2 int2, i8 int8, num numeric(20,6), f8 float8, r real, ok bool,
            t text, vc varchar(20), u uuid, d date, ts timestamp, tz timestamptz, iv interval,
            j json, jb jsonb, b bytea, ia int[], ta text[], "Mixed Case" text, c char(4), ctl text);
    )SQL");
    const std::string path = config("      tables: [types]\n      snapshot: never\n");
    const RunResult first = run(path);  // creates the slot; nothing to deliver yet
    ASSERT_EQ(first.code, 0) << first.err;
    pg.exec(R"SQL(
        INSERT INTO types VALUES
          (1, 32767, 9223372036854775807, 12345678901234.123456, 'NaN', 1.5, true,
           E'quote " backslash \\ newline \n tab \t ü 漢字 🎉', 'v', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2024-02-29', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59+05:30', '1 year 2 mons 3 days 04:05:06',
           '{"a": [1, "x", null], "b": {"c": true}}', '{"z": 1, "a": [2]}', E'\\x00ff10', '{1,2,NULL}', '{"a b","c\"d"}', 'MiXeD', 'ab', E'bell \x07 esc \x1b'),
          (2, -1, -1, -0.000001, 'Infinity', -0.0, false, '', '', NULL, NULL, NULL, NULL, NULL,
           'null', '[]', ''::bytea, '{}', '{}', NULL, '', E'\r\b\f'),
          (3, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL, NULL, '{{1,2},{3,4}}', NULL, NULL, NULL, NULL);
    )SQL");
    std::map<std::string, std::string> inserted;
    for (const auto& row : pg.query("SELECT id::text, row_to_json(x.*)::text FROM types x"))
        inserted[*row[0]] = *row[1];
    pg.exec("UPDATE types SET t = 'changed', tz = '2001-02-03 04:05:06.7-08' WHERE id = 2");
    const std::string updated =
        pg.scalar("SELECT row_to_json(x.*)::text FROM types x WHERE id = 2");
    pg.exec("DELETE FROM types WHERE id = 3; TRUNCATE types");
    const RunResult second = run(path);
    ASSERT_EQ(second.code, 0) << second.err;

    const auto changes = consume();
    std::map<std::string, std::string> got_inserts;
    std::string ops;
    for (const auto& c : changes) {
        const std::string op = c.headers.at("kbridge.op");
        ops += op;
        EXPECT_EQ(c.headers.at("kbridge.table"), "types");
        EXPECT_EQ(c.headers.at("kbridge.schema"), "public");
        EXPECT_FALSE(c.headers.at("kbridge.lsn").empty());
        if (op == "c") got_inserts[*c.key] = *c.value;
        if (op == "u") {
            EXPECT_EQ(*c.key, "2");
            EXPECT_EQ(*c.value, updated);
        }
        if (op == "d") {
            EXPECT_EQ(*c.key, "3");
            EXPECT_FALSE(c.value) << "a delete is a tombstone";
        }
        if (op == "t") {
            EXPECT_FALSE(c.key);
        }
    }
    // Partitions keep the order of each key, not across keys.
    std::sort(ops.begin(), ops.end());
    EXPECT_EQ(ops, "cccdtu");
    EXPECT_EQ(got_inserts, inserted);
}

TEST_F(PostgresCdc, DebeziumEnvelopeHasBeforeAfterSourceAndATombstoneAfterADelete) {
    pg.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, item text) ; ALTER TABLE orders REPLICA "
        "IDENTITY FULL");
    const std::string path =
        config("      tables: [public.orders]\n      snapshot: never\n      envelope: debezium\n");
    ASSERT_EQ(run(path).code, 0);
    pg.exec("INSERT INTO orders VALUES (1, 'a'); UPDATE orders SET item = 'b'; DELETE FROM orders");
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto changes = consume();
    ASSERT_EQ(changes.size(), 4u) << r.err;
    simdjson::dom::parser parser;
    auto field = [&](const Change& c, const char* a, const char* b = nullptr) {
        simdjson::dom::element e = parser.parse(*c.value).value()[a];
        if (b) e = e[b];
        return simdjson::minify(e);
    };
    EXPECT_EQ(field(changes[0], "op"), "\"c\"");
    EXPECT_EQ(field(changes[0], "before"), "null");
    EXPECT_EQ(field(changes[0], "after"), R"({"id":1,"item":"a"})");
    EXPECT_EQ(field(changes[0], "source", "table"), "\"orders\"");
    EXPECT_EQ(field(changes[0], "source", "db"), "\"postgres\"");
    EXPECT_EQ(field(changes[0], "source", "snapshot"), "\"false\"");
    EXPECT_EQ(field(changes[1], "op"), "\"u\"");
    EXPECT_EQ(field(changes[1], "before"), R"({"id":1,"item":"a"})");
    EXPECT_EQ(field(changes[1], "after"), R"({"id":1,"item":"b"})");
    EXPECT_EQ(field(changes[2], "op"), "\"d\"");
    EXPECT_EQ(field(changes[2], "before"), R"({"id":1,"item":"b"})");
    EXPECT_EQ(field(changes[2], "after"), "null");
    EXPECT_EQ(*changes[3].key, "1");
    EXPECT_FALSE(changes[3].value) << "a tombstone follows the delete";
}

TEST_F(PostgresCdc, UnchangedToastColumnIsOldValueUnderFullElseOmittedAndNamed) {
    pg.exec(
        "CREATE TABLE docs (id int PRIMARY KEY, title text, body text);"
        "CREATE TABLE docs_full (id int PRIMARY KEY, title text, body text);"
        "ALTER TABLE docs_full REPLICA IDENTITY FULL");
    const std::string path = config("      tables: [docs, docs_full]\n      snapshot: never\n");
    const RunResult first = run(path);
    ASSERT_EQ(first.code, 0) << first.err;
    EXPECT_NE(first.err.find("public.docs has TOASTable columns"), std::string::npos) << first.err;
    EXPECT_EQ(first.err.find("public.docs_full has TOASTable"), std::string::npos) << first.err;
    // Random text does not compress: the body is stored out of line (TOAST).
    const std::string body =
        "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 4000))";
    pg.exec("INSERT INTO docs VALUES (1, 'a', " + body +
            "); INSERT INTO docs_full VALUES (1, 'a', " + body + ")");
    pg.exec("UPDATE docs SET title = 'b'; UPDATE docs_full SET title = 'b'");
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    int updates = 0;
    for (const auto& c : consume()) {
        if (c.headers.at("kbridge.op") != "u") continue;
        ++updates;
        const std::string table = c.headers.at("kbridge.table");
        const std::string expected =
            pg.scalar("SELECT row_to_json(x.*)::text FROM " + table + " x");
        if (table == "docs_full") {
            EXPECT_EQ(*c.value, expected);
            EXPECT_EQ(c.headers.count("kbridge.unchanged"), 0u);
        } else {
            EXPECT_EQ(*c.value, R"({"id":1,"title":"b"})");
            EXPECT_EQ(c.headers.at("kbridge.unchanged"), "body");
        }
    }
    EXPECT_EQ(updates, 2) << r.err;
}

TEST_F(PostgresCdc, ChecksAtStartRefuseWithClearErrors) {
    pg.exec("CREATE TABLE nokey (a int, b text); CREATE TABLE ok (id int PRIMARY KEY)");
    RunResult r = run(config("      tables: [nokey]\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("'public.nokey' has no primary key and no REPLICA IDENTITY"),
              std::string::npos)
        << r.err;
    r = run(config("      tables: [missing]\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("table 'public.missing' does not exist"), std::string::npos) << r.err;
    pg.exec("SELECT pg_create_logical_replication_slot('other', 'test_decoding')");
    r = run(config("      tables: [ok]\n      slot: other\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("slot 'other' belongs to another plugin ('test_decoding')"),
              std::string::npos)
        << r.err;
    pg.exec("CREATE ROLE plain LOGIN; GRANT SELECT ON ok TO plain");
    const std::string path = dir.file("plain.yaml");
    write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
                         "'}\npipelines:\n  - name: p\n    source: {type: postgres_cdc, url: '" +
                         pg.url().replace(pg.url().find("postgres@"), 9, "plain@") +
                         "', tables: [ok]}\n    sink: {type: kafka, topic: x}\n");
    r = run(path);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("lacks the REPLICATION attribute"), std::string::npos) << r.err;
}

// Inserts transactions of `per_transaction` rows into events until stopped; how many it
// committed.
TEST_F(PostgresCdc, StopInsideATransactionThenRestartDeliversEachChangeOnce) {
    // The slot cannot confirm a transaction half delivered: a restart gets all of it again, and
    // only the checkpoint's index (changes share the commit LSN) tells what was delivered.
    int64_t first = 0;
    ASSERT_NO_FATAL_FAILURE(stop_inside_a_transaction_then_finish("", first));
    expect_each_once(ids(consume()), 40000);
}

TEST_F(PostgresCdc, KilledThreeTimesWhileStreamingThenEveryChangeArrives) {
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    const std::string path =
        config("      tables: [events]\n      snapshot: never\n      batch_size: 50\n");
    ASSERT_EQ(run(path).code, 0);
    Writer writer(pg.url(), 50);
    for (int kill = 0; kill < 3; ++kill) {
        Process follow(args(path, false), dir.path().string(), env());
        const int64_t before = message_count(kafka.bootstraps(), "changes");
        wait_for_messages(follow, before + 1500);
        follow.signal(SIGKILL);
        ASSERT_EQ(follow.wait(20s), 128 + SIGKILL);
    }
    const int committed = writer.stop();
    const RunResult rest = run(path);
    ASSERT_EQ(rest.code, 0) << rest.err;
    const auto seen = ids(consume());
    for (long long id = 1; id <= committed; ++id)
        ASSERT_TRUE(seen.count(id)) << "id " << id << " of " << committed << " was lost";
    EXPECT_EQ(seen.size(), static_cast<size_t>(committed));
}

TEST_F(PostgresCdc, SnapshotAndConcurrentWritesLeaveNoGapAndNoOverlap) {
    pg.exec(
        "CREATE TABLE events (id serial PRIMARY KEY, note text);"
        "INSERT INTO events (note) SELECT 'old' FROM generate_series(1, 20000)");
    const std::string path = config("      tables: [events]\n      batch_size: 500\n");
    Writer writer(pg.url(), 20);
    Process follow(args(path, false), dir.path().string(), env());
    wait_for_messages(follow, 20000);
    const int committed = 20000 + writer.stop();
    wait_for_messages(follow, committed);
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(20s), 0) << follow.err();
    const auto changes = consume();
    expect_each_once(ids(changes), committed);
    size_t snapshot_reads = 0;
    for (const auto& c : changes) snapshot_reads += c.headers.at("kbridge.op") == "r";
    EXPECT_GE(snapshot_reads, 20000u);
    EXPECT_LT(snapshot_reads, static_cast<size_t>(committed)) << "no change came by the stream";
}

TEST_F(PostgresCdc, OnceDrainsWhatWasCommittedBeforeItWhileWritesGoOn) {
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    const std::string path = config("      tables: [events]\n      snapshot: never\n");
    ASSERT_EQ(run(path).code, 0);
    Writer writer(pg.url(), 10);
    while (writer.committed() < 3000) std::this_thread::sleep_for(10ms);
    const long long before = std::stoll(pg.scalar("SELECT max(id) FROM events"));
    Process once(args(path), dir.path().string(), env());
    ASSERT_EQ(once.wait(30s), 0) << once.err();
    const int committed = writer.stop();
    const auto seen = ids(consume());
    for (long long id = 1; id <= before; ++id)
        ASSERT_EQ(seen.count(id), 1u) << "id " << id << " (committed before the run)";
    EXPECT_LT(seen.size(), static_cast<size_t>(committed)) << "the run did not stop at its start";
    const RunResult next = run(path);  // the next run takes the rest, each once
    ASSERT_EQ(next.code, 0) << next.err;
    expect_each_once(ids(consume()), committed);
}

TEST_F(PostgresCdc, AlterTableMidStreamIsFollowed) {
    pg.exec("CREATE TABLE t (id int PRIMARY KEY, note text)");
    const std::string path = config("      tables: [t]\n      snapshot: never\n");
    Process follow(args(path, false), dir.path().string(), env());
    ASSERT_TRUE(wait_for_stderr(follow, "created replication slot")) << follow.err();
    std::this_thread::sleep_for(500ms);
    pg.exec("INSERT INTO t VALUES (1, 'a')");
    pg.exec("ALTER TABLE t ADD COLUMN n int; INSERT INTO t VALUES (2, 'b', 5)");
    pg.exec("ALTER TABLE t DROP COLUMN note; INSERT INTO t VALUES (3, 6)");
    pg.exec("ALTER TABLE t ALTER COLUMN n TYPE text; INSERT INTO t VALUES (4, 'x')");
    wait_for_messages(follow, 4);
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(20s), 0) << follow.err();
    std::map<std::string, std::string> values;
    for (const auto& c : consume()) values[*c.key] = *c.value;
    EXPECT_EQ(values["1"], R"({"id":1,"note":"a"})");
    EXPECT_EQ(values["2"], R"({"id":2,"note":"b","n":5})");
    EXPECT_EQ(values["3"], R"({"id":3,"n":6})");
    EXPECT_EQ(values["4"], R"({"id":4,"n":"x"})");
}

TEST_F(PostgresCdc, StateShowsTheSlotAndResetDropSlotDropsIt) {
    pg.exec("CREATE TABLE t (id int PRIMARY KEY)");
    const std::string path = config("      tables: [t]\n      snapshot: never\n");
    ASSERT_EQ(run(path).code, 0);
    pg.exec("INSERT INTO t VALUES (1)");
    ASSERT_EQ(run(path).code, 0);
    const RunResult show = run_kbridge(
        {"state", "show", path, "p", "--state-dir", dir.file("state")}, dir.path().string(), env());
    ASSERT_EQ(show.code, 0) << show.err;
    EXPECT_NE(show.out.find("commit_lsn = "), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("slot kbridge_p: confirmed flush "), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("publication kbridge_p: exists"), std::string::npos) << show.out;
    const RunResult reset =
        run_kbridge({"state", "reset", path, "p", "--drop-slot", "--state-dir", dir.file("state")},
                    dir.path().string(), env());
    ASSERT_EQ(reset.code, 0) << reset.err;
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM pg_replication_slots"), "0");
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM pg_publication"), "0");
}

TEST_F(PostgresCdc, SnapshotKilledHalfwayStartsOverWithANewSlot) {
    pg.exec(
        "CREATE TABLE events (id serial PRIMARY KEY, note text);"
        "INSERT INTO events (note) SELECT 'old' FROM generate_series(1, 30000)");
    const std::string path = config("      tables: [events]\n      batch_size: 20\n");
    {
        Process follow(args(path, false), dir.path().string(), env());
        wait_for_messages(follow, 500);
        follow.signal(SIGKILL);
        ASSERT_EQ(follow.wait(20s), 128 + SIGKILL);
    }
    ASSERT_LT(message_count(kafka.bootstraps(), "changes"), 30000) << "nothing tested";
    pg.exec("INSERT INTO events (note) SELECT 'new' FROM generate_series(1, 100)");
    const RunResult again = run(path);
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_NE(again.err.find("the initial snapshot did not complete"), std::string::npos)
        << again.err;
    const auto seen = ids(consume());
    for (long long id = 1; id <= 30100; ++id)
        ASSERT_TRUE(seen.count(id)) << "id " << id << " was lost";
}

std::string metrics(int port) {
    return shell(
        "/usr/bin/python3 -c 'import sys, urllib.request\n"
        "try: print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end=\"\")\n"
        "except Exception: print(\"down\")' http://127.0.0.1:" +
        std::to_string(port) + "/metrics");
}

TEST_F(PostgresCdc, HeartbeatMovesTheSlotOnAQuietDatabaseWhileAnotherIsBusy) {
    pg.exec("CREATE TABLE t (id int PRIMARY KEY)");
    pg.exec("CREATE DATABASE busy");
    const std::string path = config(
        "      tables: [t]\n      snapshot: never\n      heartbeat_interval: 1s\n      "
        "status_interval: 1s\n");
    const int port = free_port();
    auto a = args(path, false);
    a.insert(a.end(), {"--metrics-port", std::to_string(port)});
    Process follow(a, dir.path().string(), env());
    ASSERT_TRUE(wait_for_stderr(follow, "created replication slot")) << follow.err();
    PostgresSession busy(pg.url("busy"));
    busy.exec("CREATE TABLE w AS SELECT g, md5(g::text) FROM generate_series(1, 200000) g");
    const std::string busy_end = pg.scalar("SELECT pg_current_wal_insert_lsn()::text");
    bool moved = false;
    for (int i = 0; i < 150 && !moved; ++i) {
        std::this_thread::sleep_for(100ms);
        moved = pg.scalar("SELECT confirmed_flush_lsn >= '" + busy_end +
                          "'::pg_lsn FROM pg_replication_slots") == "t";
    }
    EXPECT_TRUE(moved) << pg.scalar("SELECT confirmed_flush_lsn::text FROM pg_replication_slots")
                       << " < " << busy_end << "\n"
                       << follow.err();
    const std::string scraped = metrics(port);
    EXPECT_NE(scraped.find("kbridge_cdc_slot_lag_bytes{pipeline=\"p\"} "), std::string::npos)
        << scraped;
    EXPECT_NE(scraped.find("kbridge_cdc_seconds_since_last_change{pipeline=\"p\"} "),
              std::string::npos)
        << scraped;
    follow.signal(SIGTERM);
    EXPECT_EQ(follow.wait(20s), 0) << follow.err();
}

TEST_F(PostgresCdc, AfterACompletedSnapshotARestartStreamsOnlyNewChanges) {
    pg.exec(
        "CREATE TABLE events (id serial PRIMARY KEY, note text);"
        "INSERT INTO events (note) SELECT 'old' FROM generate_series(1, 100)");
    const std::string path = config("      tables: [events]\n");
    const RunResult first = run(path);
    ASSERT_EQ(first.code, 0) << first.err;
    pg.exec("INSERT INTO events (note) SELECT 'new' FROM generate_series(1, 10)");
    const RunResult second = run(path);
    ASSERT_EQ(second.code, 0) << second.err;
    EXPECT_EQ(second.err.find("did not complete"), std::string::npos) << second.err;
    const auto changes = consume();
    expect_each_once(ids(changes), 110);
    EXPECT_EQ(ids(changes, "r").size(), 100u);
}

TEST_F(PostgresCdc, OnlyTheSourcesTablesArriveFromAWiderPublication) {
    pg.exec(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);"
        "CREATE PUBLICATION kbridge_p FOR ALL TABLES");
    const std::string path = config("      tables: [a]\n      snapshot: never\n");
    ASSERT_EQ(run(path).code, 0);
    pg.exec(
        "INSERT INTO b VALUES (1); INSERT INTO a VALUES (2); TRUNCATE b; INSERT INTO b VALUES (3)");
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto changes = consume();
    ASSERT_EQ(changes.size(), 1u) << r.err;
    EXPECT_EQ(changes[0].headers.at("kbridge.table"), "a");
    EXPECT_EQ(*changes[0].key, "2");
}

}  // namespace
}  // namespace kbridge::test
