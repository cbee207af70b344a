// Kafka -> PostgreSQL against a real PostgreSQL and the embedded Kafka cluster: what the table
// holds is checked by counting ids, with the records produced by kcat.
#include <gtest/gtest.h>
#include <signal.h>

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

// The mock cluster forgets a member that left only after its session timeout: keep it short so
// that consecutive runs of one group join at once.
const char* kConsumer = "      properties: {session.timeout.ms: '6000'}\n";

class KafkaToPostgres : public ::testing::Test {
  protected:
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{3};

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"PG_URL", pg.url()}};
    }

    std::string config(const std::string& sink, const std::string& extra = "",
                       const std::string& topic = "ev", const std::string& source_extra = "") {
        const std::string path = dir.file("k2p.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: "
                   "'${PG_URL}'}\npipelines:\n"
                   "  - name: k2p\n    source:\n      type: kafka\n      topics: [" +
                       topic + "]\n" + kConsumer + source_extra +
                       "    sink:\n      type: postgres_table\n" + sink + extra);
        return path;
    }
    std::vector<std::string> run_args(const std::string& path, bool once = true) {
        std::vector<std::string> args{KBRIDGE_BINARY, "run", path, "--state-dir",
                                      dir.file("state")};
        if (once) args.push_back("--once");
        return args;
    }
    RunResult run(const std::string& path) {
        auto args = run_args(path);
        args.erase(args.begin());
        return run_kbridge(args, dir.path().string(), env());
    }
    void produce(const std::vector<std::string>& lines, const std::string& topic = "ev") {
        kcat_produce(kafka.bootstraps(), topic, lines, dir.path().string());
    }
    long long count(const std::string& sql) { return std::stoll(pg.scalar(sql)); }
};

TEST_F(KafkaToPostgres, InsertsEveryRecordOnceAndARerunAddsNothing) {
    kafka.create_topic("ev", 4);
    pg.exec(
        "CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint, created "
        "timestamptz DEFAULT now())");
    produce(make_events(0, 20000));
    const std::string path = config("      table: events\n");
    RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("k2p: read 20000, delivered 20000"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 20000);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events WHERE created IS NOT NULL AND id "
                    "BETWEEN 0 AND 19999"),
              20000);
    EXPECT_EQ(pg.scalar("SELECT item FROM events WHERE id = 7"), "item-00007");

    produce(make_events(20000, 20100));
    r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("k2p: read 100, delivered 100"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 20100);
}

TEST_F(KafkaToPostgres, UpsertsAndTombstonesEndAsTheLastRecordOfEachKey) {
    kafka.create_topic("users", 1);
    pg.exec(
        "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, \"Score\" numeric, tags "
        "text[], doc jsonb)");
    pg.exec(
        "INSERT INTO users VALUES (900, 'kept', 1, NULL, NULL), (901, 'deleted', 1, NULL, NULL)");
    std::vector<std::string> lines;
    for (int id = 1; id <= 100; ++id)
        lines.push_back(
            std::to_string(id) + "\t{\"id\":" + std::to_string(id) + ",\"name\":\"n" +
            std::to_string(id) +
            "\",\"Score\":1.5,\"tags\":[\"a\",\"b c\"],\"doc\":{\"v\":1},\"unknown\":true}");
    for (int id = 1; id <= 50; ++id)
        lines.push_back(std::to_string(id) + "\t{\"id\":" + std::to_string(id) +
                        ",\"name\":\"tab\\there \\\"quoted\\\"\",\"Score\":2}");
    for (int id = 1; id <= 10; ++id) lines.push_back(std::to_string(id) + "\t");  // tombstones
    lines.push_back("5\t{\"id\":5,\"name\":\"back\",\"Score\":3}");
    lines.push_back("{\"id\":901}\t");  // a tombstone keyed by a JSON object
    produce(lines, "users");
    const RunResult r = run(config(
        "      table: users\n      mode: upsert\n      delete_on_tombstone: true\n", "", "users"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM users"), 100 - 10 + 1 + 1);
    EXPECT_EQ(count("SELECT count(*) FROM users WHERE id BETWEEN 1 AND 10"), 1);
    EXPECT_EQ(pg.scalar("SELECT name || ' ' || \"Score\" FROM users WHERE id = 5"), "back 3");
    EXPECT_EQ(pg.scalar("SELECT name FROM users WHERE id = 20"), "tab\there \"quoted\"");
    EXPECT_EQ(pg.scalar("SELECT \"Score\" FROM users WHERE id = 20"), "2");
    EXPECT_EQ(pg.scalar("SELECT \"Score\"::text || ' ' || tags::text || ' ' || doc::text FROM "
                        "users WHERE id = 60"),
              "1.5 {a,\"b c\"} {\"v\": 1}");
    EXPECT_EQ(count("SELECT count(*) FROM users WHERE id = 900"), 1);
    EXPECT_EQ(count("SELECT count(*) FROM users WHERE id = 901"), 0);
}

TEST_F(KafkaToPostgres, AnUpsertOfOnlyKeyColumnsDoesNothingOnConflict) {
    kafka.create_topic("pairs", 1);
    pg.exec("CREATE TABLE follows (a int, b int, PRIMARY KEY (a, b))");
    produce({"{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2}", "{\"a\":2,\"b\":1}"}, "pairs");
    const RunResult r = run(config("      table: follows\n      mode: upsert\n", "", "pairs"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM follows"), 2);
}

TEST_F(KafkaToPostgres, PoisonRecordsGoToTheDeadLetterTopicWithTheDatabaseErrorAndTheRestCommit) {
    kafka.create_topic("ev", 2);
    pg.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, user_id int CHECK (user_id >= 0), action "
        "text, item text, ts bigint)");
    pg.exec("INSERT INTO events (id, action) VALUES (99999, 'there before')");
    std::vector<std::string> lines = make_events(0, 1000);
    lines.insert(lines.begin() + 300, R"({"id":5000,"user_id":-1,"action":"x"})");      // CHECK
    lines.insert(lines.begin() + 600, R"({"id":5001,"user_id":"many","action":"x"})");  // no int
    lines.insert(lines.begin() + 900,
                 R"({"id":99999,"user_id":1,"action":"duplicate key"})");  // PK
    produce(lines);
    const RunResult r =
        run(config("      table: events\n", "    dead_letter: {type: kafka, topic: ev_dlq}\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 1001);
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE action = 'x' OR action = 'duplicate key'"),
              0)
        << r.err;
    const auto dead = kcat_consume(kafka.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 3u);
    std::string all;
    for (const auto& m : dead) all += m.headers + "\n";
    EXPECT_NE(all.find("violates check constraint"), std::string::npos) << all;
    EXPECT_NE(all.find("invalid input syntax for type integer"), std::string::npos) << all;
    EXPECT_NE(all.find("duplicate key value violates unique constraint"), std::string::npos) << all;
    EXPECT_NE(all.find("kbridge.error.reason=database"), std::string::npos) << all;
}

TEST_F(KafkaToPostgres, WithoutADeadLetterAPoisonRecordStopsTheRunAndCommitsNothingOfItsBatch) {
    kafka.create_topic("ev", 1);
    pg.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, user_id int, action text, item text, ts "
        "bigint)");
    std::vector<std::string> lines = make_events(0, 100);
    lines.push_back(R"({"id":1,"user_id":1})");
    produce(lines);
    const std::string path = config("      table: events\n");
    RunResult r = run(path);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("duplicate key value violates unique constraint"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("Key (id)=(1) already exists"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 0);
    // Nothing was committed to Kafka either: after the fix the same records all arrive.
    pg.exec("ALTER TABLE events DROP CONSTRAINT events_pkey");
    r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 101);
}

TEST_F(KafkaToPostgres, ExactlyOnceSurvivesRepeatedKillNine) {
    kafka.create_topic("ev", 4);
    // No key: a record applied twice would show as a second row.
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const int total = 60000;
    produce(make_events(0, total));
    const std::string path =
        config("      table: events\n      exactly_once: true\n      batch_size: 500\n", "", "ev",
               "      batch_size: 500\n");
    int kills = 0;
    for (int round = 0; round < 4; ++round) {
        const long long before = count("SELECT count(*) FROM events");
        Process p(run_args(path), dir.path().string(), env());
        // Kill once the rows grew by some, mid-stream.
        for (int i = 0; i < 600 && p.running(); ++i) {
            if (count("SELECT count(*) FROM events") > before + 2000) break;
            std::this_thread::sleep_for(20ms);
        }
        if (!p.running()) break;
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait(), 128 + SIGKILL);
        ++kills;
    }
    EXPECT_GE(kills, 2);
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), total);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), total);
    EXPECT_EQ(
        count("SELECT sum(next_offset) FROM kbridge_offsets WHERE consumer_group = 'kbridge.k2p'"),
        total);
}

TEST_F(KafkaToPostgres, TwoProcessesInOneGroupSplitThePartitionsAndTheTotalIsExact) {
    kafka.create_topic("ev", 4);
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const std::string path = config("      table: events\n      exactly_once: true\n");
    Process first(run_args(path, false), dir.path().string(), env());
    std::this_thread::sleep_for(1s);
    auto second_args = run_args(path, false);
    second_args[4] = dir.file("state-2");  // another host, as it were: its own state dir and lock
    Process second(second_args, dir.path().string(), env());
    const int total = 30000;
    for (int part = 0; part < 3; ++part) {
        produce(make_events(part * total / 3, (part + 1) * total / 3));
        std::this_thread::sleep_for(1s);
    }
    for (int i = 0; i < 1500 && count("SELECT count(*) FROM events") < total; ++i)
        std::this_thread::sleep_for(20ms);
    first.signal(SIGTERM);
    second.signal(SIGTERM);
    EXPECT_EQ(first.wait(), 0) << first.err();
    EXPECT_EQ(second.wait(), 0) << second.err();
    EXPECT_EQ(count("SELECT count(*) FROM events"), total);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), total);
    // Each process had a share of the partitions at the end.
    const std::string first_log = first.err(), second_log = second.err();
    const auto last_assignment = [](const std::string& log) {
        const auto at = log.rfind("assigned ");
        return at == std::string::npos ? std::string() : log.substr(at, log.find('\n', at) - at);
    };
    EXPECT_NE(last_assignment(first_log), last_assignment(second_log)) << first_log << second_log;
    EXPECT_EQ(last_assignment(first_log).find("ev[0] ev[1] ev[2] ev[3]"), std::string::npos)
        << first_log;
}

TEST_F(KafkaToPostgres, MissingTableOrColumnIsNamedAtStart) {
    kafka.create_topic("ev", 1);
    RunResult r = run(config("      table: nowhere\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("\"nowhere\" does not exist"), std::string::npos) << r.err;
    pg.exec("CREATE TABLE events (id bigint)");
    r = run(config("      table: events\n      mode: upsert\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("events has no primary key"), std::string::npos) << r.err;
    r = run(config("      table: events\n      columns: {idd: '{id}'}\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("no column 'idd'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kbridge::test
