// PostgreSQL table -> Kafka against a real PostgreSQL and the embedded Kafka cluster, read back
// with kcat. "Nothing skipped" is checked by counting ids.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <map>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

class PostgresToKafka : public ::testing::Test {
  protected:
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{1};

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"PG_URL", pg.url()}};
    }

    // A pipeline `p` exporting `source` (YAML lines under source:) into `topic`.
    std::string config(const std::string& source, const std::string& topic = "rows",
                       const std::string& sink_extra = "") {
        const std::string path = dir.file("p.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: "
                   "'${PG_URL}'}\npipelines:\n"
                   "  - name: p\n    source:\n      type: postgres_table\n" +
                       source + "    sink:\n      type: kafka\n      topic: " + topic + "\n" +
                       sink_extra);
        return path;
    }
    RunResult run(const std::string& path, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"run", path, "--once", "--state-dir", dir.file("state")};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_kbridge(args, dir.path().string(), env());
    }
    // id -> times seen, from the JSON values read back by kcat.
    std::map<long long, int> ids(const std::string& topic = "rows") {
        std::map<long long, int> seen;
        for (const auto& m : kcat_consume(kafka.bootstraps(), topic)) ++seen[event_id(m.value)];
        return seen;
    }
    // Waits until "rows" holds `count` messages; after 20 s fails, showing what `run` logged.
    void wait_for_messages(const Process& run, int64_t count) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (message_count(kafka.bootstraps(), "rows") < count) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << run.err();
            std::this_thread::sleep_for(20ms);
        }
    }
    void expect_each_once(const std::map<long long, int>& seen, long long from, long long to) {
        EXPECT_EQ(seen.size(), static_cast<size_t>(to - from + 1));
        for (long long id = from; id <= to; ++id) {
            auto it = seen.find(id);
            if (it == seen.end())
                ADD_FAILURE() << "id " << id << " was skipped";
            else
                EXPECT_EQ(it->second, 1) << "id " << id << " exported " << it->second << " times";
        }
    }
};

TEST_F(PostgresToKafka, EveryCommonTypeArrivesAsRowToJsonGivesIt) {
    pg.exec(R"SQL(
        CREATE TABLE types (
            id int PRIMARY KEY, i2 int2, i8 int8, num numeric(20,6), f8 float8, r real, ok bool,
            t text, vc varchar(20), u uuid, d date, ts timestamp, tz timestamptz, iv interval,
            j json, jb jsonb, b bytea, ia int[], ta text[], "Mixed Case" text, c char(4), ctl text, f4 real);
        INSERT INTO types VALUES
          (1, 32767, 9223372036854775807, 12345678901234.123456, 'NaN', 1.5, true,
           E'quote " backslash \\ newline \n tab \t ü 漢字 🎉', 'v', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2024-02-29', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59+05:30', '1 year 2 mons 3 days 04:05:06',
           '{"a": [1, "x", null], "b": {"c": true}}', '{"z": 1, "a": [2]}', E'\\x00ff10', '{1,2,NULL}', '{"a b","c\"d"}', 'MiXeD', 'ab', E'bell \x07 esc \x1b del \x7f', 1e-30),
          (2, -1, -1, -0.000001, 'Infinity', -0.0, false, '', '', NULL, NULL, NULL, NULL, NULL,
           'null', '[]', ''::bytea, '{}', '{}', NULL, '', E'\r\b\f', 'NaN'),
          (3, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (4, 0, 0, 'NaN', 1e100, '-0', NULL, 'x', 'y', NULL, 'infinity', '-infinity', 'infinity', NULL, '"s"', '"s"', NULL, NULL, NULL, NULL, 'z', NULL, 3.4e38);
    )SQL");
    const RunResult r = run(config("      table: types\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    std::map<std::string, std::string> expected;
    for (const auto& row : pg.query("SELECT id::text, row_to_json(x.*)::text FROM types x"))
        expected[*row[0]] = *row[1];
    // kcat's output is split on tabs and newlines; read the values back with a client that keeps
    // bytes.
    const std::string dump = shell(
        "/usr/bin/python3 -c \""
        "import confluent_kafka as ck, json, sys\n"
        "c = ck.Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 't', 'auto.offset.reset': "
        "'earliest', 'enable.partition.eof': True})\n"
        "c.subscribe(['rows'])\n"
        "out = {}\n"
        "while len(out) < int(sys.argv[2]):\n"
        "    m = c.poll(10)\n"
        "    if m is None: break\n"
        "    if m.error(): continue\n"
        "    out[m.key().decode()] = m.value().decode()\n"
        "print(json.dumps(out))\n"
        "\" '" +
        kafka.bootstraps() + "' " + std::to_string(expected.size()));
    simdjson::dom::parser parser;
    simdjson::dom::object got;
    ASSERT_EQ(parser.parse(dump).get(got), simdjson::SUCCESS) << dump;
    EXPECT_EQ(got.size(), expected.size());
    for (const auto [key, value] : got) {
        const std::string id(key);
        ASSERT_TRUE(expected.count(id)) << id;
        EXPECT_EQ(std::string(value.get_string().value()), expected[id]) << "row " << id;
    }
}

TEST_F(PostgresToKafka, IncrementalWavesExportEveryRowExactlyOnce) {
    pg.exec("CREATE TABLE events (id bigserial PRIMARY KEY, user_id int, action text)");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "fetch_size: 300\n");
    for (int wave = 1; wave <= 3; ++wave) {
        pg.exec(
            "INSERT INTO events (user_id, action) SELECT g % 97, 'click' FROM generate_series(1, "
            "1000) g");
        const RunResult r = run(path);
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_NE(r.err.find("read 1000, delivered 1000"), std::string::npos)
            << "wave " << wave << ": " << r.err;
    }
    expect_each_once(ids(), 1, 3000);
    const RunResult nothing = run(path);
    EXPECT_NE(nothing.err.find("read 0, delivered 0"), std::string::npos) << nothing.err;
}

TEST_F(PostgresToKafka, ARowCommittedLateByALongTransactionIsStillExported) {
    pg.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, note text); CREATE SEQUENCE ids; CREATE TABLE "
        "other (x int)");
    const std::string path =
        config("      table: events\n      mode: incrementing\n      incrementing_column: id\n");
    PostgresSession older(pg.url()), late(pg.url());
    // `older` takes its transaction id first (a write elsewhere), `late` then takes id 1 for its
    // row, `older` takes id 2 for its row and commits: id 2 is committed, id 1 is not yet.
    older.exec("BEGIN; INSERT INTO other VALUES (1)");
    late.exec("BEGIN; INSERT INTO events VALUES (nextval('ids'), 'late')");
    older.exec("INSERT INTO events VALUES (nextval('ids'), 'older'); COMMIT");
    ASSERT_EQ(pg.scalar("SELECT string_agg(id::text, ',') FROM events"), "2");
    const RunResult first = run(path);
    ASSERT_EQ(first.code, 0) << first.err;
    late.exec("COMMIT");  // id 1 commits after id 2 was exported
    pg.exec("INSERT INTO events VALUES (nextval('ids'), 'after')");
    const RunResult second = run(path);
    ASSERT_EQ(second.code, 0) << second.err;
    expect_each_once(ids(), 1, 3);
}

TEST_F(PostgresToKafka, SigkillMidExportThenRerunSkipsNothing) {
    pg.exec(
        "CREATE TABLE events (id bigserial PRIMARY KEY, user_id int, action text, item text, ts "
        "bigint);"
        "INSERT INTO events (user_id, action, item, ts) SELECT g % 1000, 'view', 'item-' || g, g "
        "FROM generate_series(1, 150000) g");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "fetch_size: 500\n");
    Process run({KBRIDGE_BINARY, "run", path, "--once", "--state-dir", dir.file("state")},
                dir.path().string(), env());
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (message_count(kafka.bootstraps(), "rows") < 30000) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << run.err();
        std::this_thread::sleep_for(5ms);
    }
    run.signal(SIGKILL);
    ASSERT_EQ(run.wait(), 128 + SIGKILL);
    ASSERT_LT(message_count(kafka.bootstraps(), "rows"), 150000)
        << "the kill came too late to test anything";
    const RunResult again = this->run(path);
    ASSERT_EQ(again.code, 0) << again.err;
    const auto seen = ids();
    for (long long id = 1; id <= 150000; ++id)
        ASSERT_TRUE(seen.count(id)) << "id " << id << " was skipped";
}

TEST_F(PostgresToKafka, SeedTableConnFdwKeyedById) {
    pg.exec(R"SQL(
        CREATE TABLE public.conn_fdw (id int4 NULL, "name" varchar(50) NULL, age int4 NULL, city varchar(50) NULL, salary int4 NULL);
        INSERT INTO public.conn_fdw (id, name, age, city, salary) VALUES
          (1, 'John', 30, 'New York', 50000), (2, 'Alice', 25, 'Los Angeles', 60000), (3, 'Bob', 35, 'Chicago', 70000),
          (4, 'Eva', 28, 'San Francisco', 55000), (5, 'Mike', 32, 'Seattle', 65000), (6, 'Sophia', 29, 'Boston', 75000),
          (7, 'David', 27, 'Denver', 52000), (8, 'Emily', 31, 'Austin', 68000), (9, 'Daniel', 26, 'Phoenix', 58000),
          (10, 'Olivia', 33, 'Houston', 72000), (11, 'Liam', 24, 'Portland', 49000), (12, 'Ava', 34, 'Atlanta', 71000),
          (13, 'Logan', 30, 'Miami', 62000), (14, 'Mia', 28, 'Dallas', 54000), (15, 'Jackson', 29, 'Minneapolis', 67000),
          (16, 'Sophie', 31, 'Detroit', 59000), (17, 'William', 27, 'Philadelphia', 70000), (18, 'Emma', 32, 'San Diego', 66000),
          (19, 'James', 26, 'Raleigh', 63000), (20, 'Avery', 35, 'Tampa', 71000);
    )SQL");
    const RunResult r =
        run(config("      table: public.conn_fdw\n      key_columns: [id]\n", "conn_fdw"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto messages = kcat_consume(kafka.bootstraps(), "conn_fdw");
    ASSERT_EQ(messages.size(), 20u);
    std::set<std::string> keys;
    for (const auto& m : messages) {
        keys.insert(m.key);
        EXPECT_EQ(m.value.rfind("{\"id\":" + m.key + ",\"name\":", 0), 0u) << m.value;
    }
    EXPECT_EQ(keys.size(), 20u);
    const auto avery = std::find_if(messages.begin(), messages.end(),
                                    [](const Consumed& m) { return m.key == "20"; });
    ASSERT_NE(avery, messages.end());
    EXPECT_EQ(avery->value, R"({"id":20,"name":"Avery","age":35,"city":"Tampa","salary":71000})");
}

TEST_F(PostgresToKafka, CompositePrimaryKeyBecomesAJsonKey) {
    pg.exec(
        "CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (b, a)); INSERT INTO pairs VALUES "
        "(1, 'x', 10)");
    ASSERT_EQ(run(config("      table: pairs\n")).code, 0);
    const auto messages = kcat_consume(kafka.bootstraps(), "rows");
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].key, R"({"b" : "x", "a" : 1})");
}

TEST_F(PostgresToKafka, AMissingTableOrColumnIsNamedAtStart) {
    pg.exec("CREATE TABLE present (id int PRIMARY KEY)");
    const RunResult table = run(config("      table: absent\n"));
    EXPECT_EQ(table.code, 1);
    EXPECT_NE(table.err.find("table 'absent' does not exist"), std::string::npos) << table.err;
    const RunResult column = run(
        config("      table: present\n      mode: incrementing\n      incrementing_column: seq\n"));
    EXPECT_EQ(column.code, 1);
    EXPECT_NE(column.err.find("table 'present' has no column 'seq'"), std::string::npos)
        << column.err;
}

TEST_F(PostgresToKafka, ThePositionNeverMovesPastARowThatCannotBeWritten) {
    pg.exec(
        "CREATE TABLE events (id int PRIMARY KEY, region text);"
        "INSERT INTO events SELECT g, CASE WHEN g = 50 THEN NULL ELSE 'eu' END FROM "
        "generate_series(1, 100) g");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "fetch_size: 10\n",
        "\"rows.{region}\"");
    const RunResult r = run(path);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("field 'region' is null"), std::string::npos) << r.err;
    const RunResult state = run_kbridge(
        {"state", "show", path, "p", "--state-dir", dir.file("state")}, dir.path().string(), env());
    ASSERT_EQ(state.code, 0) << state.err;
    const auto at = state.out.find("incrementing = ");
    if (at != std::string::npos) {
        EXPECT_LT(std::atoi(state.out.c_str() + at + 15), 50) << state.out;
    }
    // Fixed in the table, the row goes out with the next run.
    pg.exec("UPDATE events SET region = 'us' WHERE id = 50");
    ASSERT_EQ(run(path).code, 0);
    std::set<long long> seen;
    for (const auto& m : kcat_consume(kafka.bootstraps(), "rows.eu"))
        seen.insert(event_id(m.value));
    for (const auto& m : kcat_consume(kafka.bootstraps(), "rows.us"))
        seen.insert(event_id(m.value));
    for (long long id = 1; id <= 100; ++id) EXPECT_TRUE(seen.count(id)) << id;
}

TEST_F(PostgresToKafka, TimestampModeFollowsUpdates) {
    pg.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL "
        "DEFAULT now());"
        "INSERT INTO items (id, name) SELECT g, 'v1' FROM generate_series(1, 10) g");
    const std::string path = config(
        "      table: items\n      mode: timestamp+incrementing\n      incrementing_column: id\n   "
        "   timestamp_column: updated_at\n");
    ASSERT_EQ(run(path).code, 0);
    pg.exec("UPDATE items SET name = 'v2', updated_at = now() WHERE id IN (3, 7)");
    const RunResult second = run(path);
    ASSERT_EQ(second.code, 0) << second.err;
    EXPECT_NE(second.err.find("read 2, delivered 2"), std::string::npos) << second.err;
    std::multiset<std::string> names;
    for (const auto& m : kcat_consume(kafka.bootstraps(), "rows"))
        names.insert(m.key + ":" + m.value.substr(m.value.find("\"name\"")));
    EXPECT_EQ(names.size(), 12u);
}

TEST_F(PostgresToKafka, StateShowSetAndReset) {
    pg.exec(
        "CREATE TABLE events (id int PRIMARY KEY); INSERT INTO events SELECT generate_series(1, "
        "10)");
    const std::string path =
        config("      table: events\n      mode: incrementing\n      incrementing_column: id\n");
    ASSERT_EQ(run(path).code, 0);
    auto state = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--state-dir", dir.file("state")});
        return run_kbridge(args, dir.path().string(), env());
    };
    EXPECT_NE(state({"state", "show", path, "p"}).out.find("incrementing = 10"), std::string::npos);
    ASSERT_EQ(state({"state", "set", path, "p", "incrementing=7"}).code, 0);
    const RunResult after_set = run(path);
    EXPECT_NE(after_set.err.find("read 3, delivered 3"), std::string::npos) << after_set.err;
    ASSERT_EQ(state({"state", "reset", path, "p"}).code, 0);
    EXPECT_NE(state({"state", "show", path, "p"}).out.find("no position stored"),
              std::string::npos);
    const RunResult after_reset = run(path);
    EXPECT_NE(after_reset.err.find("read 10, delivered 10"), std::string::npos) << after_reset.err;
}

TEST_F(PostgresToKafka, StateSetAndResetWaitForNoRun) {
    pg.exec(
        "CREATE TABLE events (id int PRIMARY KEY); INSERT INTO events SELECT generate_series(1, "
        "10)");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "poll_interval: 200ms\n");
    auto state = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--state-dir", dir.file("state")});
        return run_kbridge(args, dir.path().string(), env());
    };
    Process follow({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state")},
                   dir.path().string(), env());
    wait_for_messages(follow, 10);
    // The follow run would save its position over the change.
    for (const auto& action :
         {std::vector<std::string>{"state", "set", path, "p", "incrementing=3"},
          std::vector<std::string>{"state", "reset", path, "p"}}) {
        const RunResult refused = state(action);
        EXPECT_EQ(refused.code, 75) << refused.err;
        EXPECT_NE(refused.err.find("is already running"), std::string::npos) << refused.err;
        EXPECT_NE(refused.err.find("nothing was written"), std::string::npos) << refused.err;
    }
    const RunResult shown = state({"state", "show", path, "p"});
    EXPECT_EQ(shown.code, 0) << shown.err;
    EXPECT_NE(shown.out.find("incrementing = 10"), std::string::npos) << shown.out;
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(10s), 0) << follow.err();
    ASSERT_EQ(state({"state", "set", path, "p", "incrementing=3"}).code, 0);
    const RunResult after_set = run(path);
    EXPECT_NE(after_set.err.find("read 7, delivered 7"), std::string::npos) << after_set.err;
}

}  // namespace
}  // namespace kbridge::test

namespace kbridge::test {
namespace {

TEST_F(PostgresToKafka, FollowModePollsForNewRowsAndStopsCleanly) {
    pg.exec(
        "CREATE TABLE events (id bigserial PRIMARY KEY, note text); INSERT INTO events (note) "
        "VALUES ('a'), ('b')");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "poll_interval: 200ms\n");
    Process follow({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state"), "--metrics-file",
                    dir.file("rows.prom")},
                   dir.path().string(), env());
    wait_for_messages(follow, 2);
    pg.exec("INSERT INTO events (note) SELECT 'more' FROM generate_series(1, 50)");
    wait_for_messages(follow, 52);
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(10s), 0) << follow.err();
    expect_each_once(ids(), 1, 52);
    EXPECT_NE(read_file(dir.file("rows.prom"))
                  .find("kbridge_source_lag_records{pipeline=\"p\",source=\"postgres_table\",sink="
                        "\"kafka\"} 0\n"),
              std::string::npos)
        << read_file(dir.file("rows.prom"));
    // The position was saved at the stop: a --once run finds nothing new.
    const RunResult again = run(path);
    EXPECT_NE(again.err.find("read 0, delivered 0"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace kbridge::test

namespace kbridge::test {
namespace {

std::string scrape(int port, const std::string& path) {
    return shell(
        "/usr/bin/python3 -c 'import sys, urllib.request, urllib.error\n"
        "try:\n  r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); "
        "print(r.read().decode(), end=\"\")\n"
        "except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode(), end=\"\")\n"
        "except Exception:\n  print(\"down\")' http://127.0.0.1:" +
        std::to_string(port) + path);
}

// Checks `done` every 100 ms for up to 20 s.
template <typename F>
bool eventually(F done) {
    for (int i = 0; i < 200; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(100ms);
    }
    return done();
}

double blocked_seconds(int port) {
    const std::string text = scrape(port, "/metrics");
    const std::string name =
        "kbridge_source_blocked_seconds{pipeline=\"p\",source=\"postgres_table\",sink=\"kafka\"} ";
    const auto at = text.find(name);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size()));
}

// The late-commit horizon is server-wide: a session idle in transaction in another database
// holds back every row committed after it began. The run says so (naming the session), counts
// the seconds, and /health fails past stall_unhealthy; once it ends, the export goes on.
TEST_F(PostgresToKafka, ATransactionLeftOpenInAnotherDatabaseIsNamedCountedAndFailsHealth) {
    pg.exec("CREATE DATABASE other");
    PostgresSession other(pg.url("other"));
    other.exec("CREATE TABLE scratch (x int)");
    const std::string other_pid = other.scalar("SELECT pg_backend_pid()");
    pg.exec(
        "CREATE TABLE events (id bigserial PRIMARY KEY, note text); INSERT INTO events (note) "
        "VALUES ('a')");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n"
        "      poll_interval: 200ms\n      stall_warning: 1s\n      stall_unhealthy: 3s\n");
    const int port = free_port();
    Process follow({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state"), "--metrics-port",
                    std::to_string(port)},
                   dir.path().string(), env());
    wait_for_messages(follow, 1);
    EXPECT_TRUE(eventually([&] { return blocked_seconds(port) == 0; })) << scrape(port, "/metrics");

    other.exec(
        "BEGIN; INSERT INTO scratch VALUES (1) /* left open */");  // takes an xid, then idles
    pg.exec("INSERT INTO events (note) VALUES ('b')");             // committed behind it
    EXPECT_TRUE(eventually([&] {
        return follow.err().find("held by pid " + other_pid) != std::string::npos;
    })) << follow.err();
    const std::string log = follow.err();
    EXPECT_NE(log.find("database other, user "), std::string::npos) << log;
    EXPECT_NE(log.find("state idle in transaction"), std::string::npos) << log;
    EXPECT_NE(log.find("INSERT INTO scratch VALUES (1) /* left open */'"), std::string::npos)
        << log;
    EXPECT_NE(log.find("pg_terminate_backend(" + other_pid + ")"), std::string::npos) << log;
    EXPECT_TRUE(eventually([&] { return scrape(port, "/health").rfind("503\n", 0) == 0; }))
        << scrape(port, "/health");
    EXPECT_GE(blocked_seconds(port), 3.0) << scrape(port, "/metrics");
    EXPECT_EQ(message_count(kafka.bootstraps(), "rows"), 1);

    other.exec("COMMIT");
    wait_for_messages(follow, 2);
    EXPECT_TRUE(eventually([&] { return scrape(port, "/health").rfind("200\n", 0) == 0; }))
        << scrape(port, "/health");
    EXPECT_EQ(blocked_seconds(port), 0) << scrape(port, "/metrics");
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(10s), 0) << follow.err();
    expect_each_once(ids(), 1, 2);
}

TEST_F(PostgresToKafka, FollowModeConnectsAgainWhenTheServerDropsItsConnection) {
    pg.exec(
        "CREATE TABLE events (id bigserial PRIMARY KEY, note text); INSERT INTO events (note) "
        "VALUES ('a'), ('b')");
    const std::string path = config(
        "      table: events\n      mode: incrementing\n      incrementing_column: id\n      "
        "poll_interval: 200ms\n");
    Process follow({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state")},
                   dir.path().string(), env());
    wait_for_messages(follow, 2);
    // As an administrator or a failover would: every other session's connection is cut.
    pg.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
        "backend_type = 'client backend'");
    pg.exec("INSERT INTO events (note) SELECT 'more' FROM generate_series(1, 50)");
    wait_for_messages(follow, 52);
    follow.signal(SIGTERM);
    ASSERT_EQ(follow.wait(10s), 0) << follow.err();
    EXPECT_NE(follow.err().find("postgres_table:events is unreachable"), std::string::npos)
        << follow.err();
    EXPECT_NE(follow.err().find("connected again"), std::string::npos) << follow.err();
    expect_each_once(ids(), 1, 52);
}

TEST_F(PostgresToKafka, AQueryWithRepeatedColumnNamesStillGivesRowToJson) {
    pg.exec("CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'x'), (2, 'y')");
    const RunResult r =
        run(config("      query: SELECT a.id, a.v, b.v FROM a JOIN a b ON b.id = a.id\n      "
                   "key_columns: [id]\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    std::map<std::string, std::string> got;
    for (const auto& m : kcat_consume(kafka.bootstraps(), "rows")) got[m.key] = m.value;
    EXPECT_EQ(got["1"], R"({"id":1,"v":"x","v":"x"})");
    EXPECT_EQ(got.size(), 2u);
}

}  // namespace
}  // namespace kbridge::test
