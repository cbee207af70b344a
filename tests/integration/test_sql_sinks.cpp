// The SQL sinks' shared semantics, run for every dialect against a real database (PostgreSQL
// started by the harness, SQLite on a temp file) and the embedded Kafka cluster: what the table
// holds is checked by counting ids with the test's own session, never from kbridge's logs.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/process.h"
#include "support/sql_target.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

class SqlSinks : public ::testing::TestWithParam<std::string> {
  protected:
    TempDir dir;
    std::unique_ptr<SqlTarget> db = make_sql_target(GetParam(), dir);
    EmbeddedKafka kafka{1};

    void SetUp() override {
        // synchronous: normal differs from sqlite only in what a crash can show; the other
        // tests would run the same statements twice.
        const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        if (GetParam() == "sqlite_normal" && test.find("KillNine") == std::string::npos &&
            test.find("Interruption") == std::string::npos)
            GTEST_SKIP() << "covered by the sqlite instance";
    }

    // A kafka -> SQL pipeline; `sink` holds the sink's own options, `extra` the pipeline's.
    std::string config(const std::string& sink, const std::string& extra = "",
                       const std::string& topic = "ev", const std::string& source_extra = "") {
        const std::string path = dir.file("sql.yaml");
        write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\n" +
                             db->globals() + "pipelines:\n  - name: k2s\n    source:\n" +
                             "      type: kafka\n      topics: [" + topic +
                             "]\n      properties: {session.timeout.ms: '6000'}\n" + source_extra +
                             "    sink:\n      type: " + db->type() + "\n" + db->sink_lines() +
                             sink + extra);
        return path;
    }
    std::vector<std::string> run_args(const std::string& path) {
        return {KBRIDGE_BINARY, "run", path, "--once", "--state-dir", dir.file("state")};
    }
    RunResult run(const std::string& path) {
        auto args = run_args(path);
        args.erase(args.begin());
        return run_kbridge(args, dir.path().string());
    }
    void produce(const std::vector<std::string>& lines, const std::string& topic = "ev") {
        kcat_produce(kafka.bootstraps(), topic, lines, dir.path().string());
    }
    void produce_keyed(int from, int to) {
        std::vector<std::string> lines;
        for (const auto& event : make_events(from, to))
            lines.push_back(std::to_string(event_id(event)) + "\t" + event);
        produce(lines);
    }
    long long rows() { return db->count("SELECT count(*) FROM events"); }
    // Waits (up to 15 s) while `p` runs until events holds at least `at_least` rows.
    long long wait_for_rows(Process& p, long long at_least) {
        long long now = rows();
        for (int i = 0; i < 3000 && p.running() && now < at_least; ++i) {
            std::this_thread::sleep_for(5ms);
            now = rows();
        }
        return now;
    }
};

TEST_P(SqlSinks, InsertsEveryRecordOnceAndARerunAddsNothing) {
    kafka.create_topic("ev", 4);
    db->exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    produce_keyed(0, 5000);
    const std::string path = config("      table: events\n");
    RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(rows(), 5000);
    EXPECT_EQ(db->count("SELECT count(DISTINCT id) FROM events WHERE id BETWEEN 0 AND 4999"), 5000);
    EXPECT_EQ(db->scalar("SELECT item FROM events WHERE id = 7"), "item-00007");
    produce_keyed(5000, 5100);
    r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("read 100, delivered 100"), std::string::npos) << r.err;
    EXPECT_EQ(rows(), 5100);
}

TEST_P(SqlSinks, UpsertsUpdatesAndTombstonesEndAsTheLastRecordOfEachKey) {
    kafka.create_topic("users", 1);
    db->exec("CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, score numeric)");
    std::vector<std::string> lines;
    for (int id = 1; id <= 100; ++id)
        lines.push_back(std::to_string(id) + "\t{\"id\":" + std::to_string(id) + ",\"name\":\"n" +
                        std::to_string(id) + "\",\"score\":1.5,\"unknown\":true}");
    for (int id = 1; id <= 50; ++id)
        lines.push_back(std::to_string(id) + "\t{\"id\":" + std::to_string(id) +
                        ",\"name\":\"tab\\there \\\"quoted\\\" a\\\\b\\nc\",\"score\":2}");
    for (int id = 1; id <= 10; ++id) lines.push_back(std::to_string(id) + "\t");  // tombstones
    lines.push_back("5\t{\"id\":5,\"name\":\"back\",\"score\":3}");
    lines.push_back("{\"id\":901}\t");  // a tombstone keyed by a JSON object
    produce(lines, "users");
    for (const std::string batch : {"", "      batch_size: 7\n"}) {
        SCOPED_TRACE(batch);
        db->exec("DELETE FROM users");
        db->exec("INSERT INTO users VALUES (900, 'kept', 1), (901, 'deleted', 1)");
        const RunResult r = run(config(
            "      table: users\n      mode: upsert\n      delete_on_tombstone: true\n" + batch, "",
            "users", "      group: upsert" + std::to_string(batch.size()) + "\n"));
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(db->count("SELECT count(*) FROM users"), 100 - 10 + 1 + 1);
        EXPECT_EQ(db->count("SELECT count(*) FROM users WHERE id BETWEEN 1 AND 10"), 1);
        EXPECT_EQ(db->scalar("SELECT name FROM users WHERE id = 5"), "back");
        EXPECT_EQ(db->scalar("SELECT name FROM users WHERE id = 20"),
                  "tab\there \"quoted\" a\\b\nc");
        EXPECT_EQ(db->count("SELECT count(*) FROM users WHERE id = 900"), 1);
        EXPECT_EQ(db->count("SELECT count(*) FROM users WHERE id = 901"), 0);
    }
    // Update mode changes rows that are there and inserts nothing.
    kafka.create_topic("updates", 1);
    produce({"{\"id\":20,\"name\":\"updated\"}", "{\"id\":5000,\"name\":\"nowhere\"}"}, "updates");
    const RunResult r = run(config("      table: users\n      mode: update\n", "", "updates"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(db->scalar("SELECT name FROM users WHERE id = 20"), "updated");
    EXPECT_EQ(db->count("SELECT count(*) FROM users WHERE id = 5000"), 0);
}

TEST_P(SqlSinks, PoisonRecordsGoToTheDeadLetterWithTheDatabaseMessageAndTheRestCommit) {
    kafka.create_topic("ev", 2);
    db->exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, user_id int CHECK (user_id >= 0), action "
        "text, item text, ts bigint)");
    db->exec("INSERT INTO events (id, action) VALUES (99999, 'there before')");
    std::vector<std::string> lines = make_events(0, 1000);
    lines.insert(lines.begin() + 300, R"({"id":5000,"user_id":-1,"action":"x"})");    // CHECK
    lines.insert(lines.begin() + 900, R"({"id":99999,"user_id":1,"action":"dup"})");  // PK
    produce(lines);
    const RunResult r =
        run(config("      table: events\n", "    dead_letter: {type: kafka, topic: ev_dlq}\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(rows(), 1001);
    EXPECT_EQ(db->count("SELECT count(*) FROM events WHERE action = 'x' OR action = 'dup'"), 0);
    const auto dead = kcat_consume(kafka.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 2u);
    std::string all;
    for (const auto& m : dead) all += m.headers + "\n";
    EXPECT_NE(all.find(db->check_violation()), std::string::npos) << all;
    EXPECT_NE(all.find(db->duplicate_key()), std::string::npos) << all;
    EXPECT_NE(all.find("kbridge.error.reason=database"), std::string::npos) << all;
}

TEST_P(SqlSinks, ExactlyOnceSurvivesRepeatedKillNine) {
    kafka.create_topic("ev", 4);
    // No key: a record applied twice would show as a second row.
    db->exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const int total = 30000;
    produce_keyed(0, total);
    const std::string path =
        config("      table: events\n      exactly_once: true\n      batch_size: 500\n", "", "ev",
               // Offsets come from the sink's table, so no group rebalance is waited for after
               // each kill.
               "      batch_size: 500\n      join_group: false\n");
    int kills = 0;
    for (int round = 0; round < 4; ++round) {
        const long long before = rows();
        Process p(run_args(path), dir.path().string(), {});
        wait_for_rows(p, before + 2001);  // killed once the rows grew by some, mid-stream
        if (!p.running()) break;
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait(), 128 + SIGKILL);
        ++kills;
    }
    EXPECT_GE(kills, 2);
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(rows(), total);
    EXPECT_EQ(db->count("SELECT count(DISTINCT id) FROM events"), total);
    EXPECT_EQ(db->count("SELECT sum(CASE WHEN next_offset > 0 THEN next_offset ELSE 0 END) FROM "
                        "kbridge_offsets WHERE consumer_group = 'kbridge.k2s'"),
              total);
}

TEST_P(SqlSinks, AnInterruptionMidStreamIsRetriedAndExactlyOnceStaysExact) {
    kafka.create_topic("ev", 4);
    db->exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const int total = 60000;
    produce_keyed(0, total);
    const std::string path =
        config("      table: events\n      exactly_once: true\n      batch_size: 2000\n");
    Process p(run_args(path), dir.path().string(), {});
    int interruptions = 0;
    long long seen = 0;
    while (interruptions < 2 && p.running()) {
        seen = wait_for_rows(p, seen + 10000);
        if (!p.running() || seen >= total) break;
        db->interrupt();
        ++interruptions;
        std::this_thread::sleep_for(500ms);
    }
    EXPECT_EQ(p.wait(), 0) << p.err();
    EXPECT_GE(interruptions, 1) << p.err();
    EXPECT_EQ(rows(), total);
    EXPECT_EQ(db->count("SELECT count(DISTINCT id) FROM events"), total);
}

TEST_P(SqlSinks, DryRunAndCheckCreateNothing) {
    kafka.create_topic("ev", 1);
    db->exec("CREATE TABLE events (id bigint PRIMARY KEY, user_id int, action text)");
    produce(make_events(0, 10));
    const std::string path = config("      table: events\n      exactly_once: true\n");
    RunResult r = run_kbridge({"check", path}, dir.path().string());
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("would create table kbridge_offsets"), std::string::npos) << r.out;
    r = run_kbridge({"run", path, "--dry-run", "--state-dir", dir.file("state")},
                    dir.path().string());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(db->has_table("kbridge_offsets"));
    EXPECT_EQ(rows(), 0);
}

INSTANTIATE_TEST_SUITE_P(Dialects, SqlSinks,
                         ::testing::Values("postgres", "sqlite", "sqlite_normal", "mariadb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kbridge::test
