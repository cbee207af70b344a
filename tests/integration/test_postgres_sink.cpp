// Kafka -> PostgreSQL against a real PostgreSQL and the embedded Kafka cluster: what the table
// holds is checked by counting ids, with the records produced by kcat.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <sstream>
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

// The events a stdout sink printed, one per line.
struct PrintedEvents {
    size_t lines = 0;
    std::set<long long> ids;
};
PrintedEvents printed_events(const std::string& out) {
    PrintedEvents printed;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line); ++printed.lines)
        printed.ids.insert(event_id(line));
    return printed;
}

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
    // Keyed by id, so that they spread evenly: the mock cluster keeps only the newest ~5 MB of a
    // partition, and keyless records can pile into one partition in large sticky batches.
    void produce_keyed(int from, int to) {
        std::vector<std::string> lines;
        for (const auto& event : make_events(from, to))
            lines.push_back(std::to_string(event_id(event)) + "\t" + event);
        produce(lines);
    }
    long long count(const std::string& sql) { return std::stoll(pg.scalar(sql)); }
    void cut_connections_mid_stream(const std::string& sink_extra);
    void expect_dead_letter_before_commit(const std::string& refused, const std::string& reason);
    // Waits (up to 15 s) while `p` runs until the events table holds at least `rows` rows;
    // returns how many it holds.
    long long wait_for_rows(Process& p, long long rows) {
        long long now = count("SELECT count(*) FROM events");
        for (int i = 0; i < 3000 && p.running() && now < rows; ++i) {
            std::this_thread::sleep_for(5ms);
            now = count("SELECT count(*) FROM events");
        }
        return now;
    }
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
    std::vector<std::string> lines;
    for (int id = 1; id <= 100; ++id)
        lines.push_back(
            std::to_string(id) + "\t{\"id\":" + std::to_string(id) + ",\"name\":\"n" +
            std::to_string(id) +
            "\",\"Score\":1.5,\"tags\":[\"a\",\"b c\"],\"doc\":{\"v\":1},\"unknown\":true}");
    for (int id = 1; id <= 50; ++id)
        lines.push_back(std::to_string(id) + "\t{\"id\":" + std::to_string(id) +
                        ",\"name\":\"tab\\there \\\"quoted\\\" a\\\\b\\nc\\rd\",\"Score\":2}");
    for (int id = 1; id <= 10; ++id) lines.push_back(std::to_string(id) + "\t");  // tombstones
    lines.push_back("5\t{\"id\":5,\"name\":\"back\",\"Score\":3}");
    lines.push_back("{\"id\":901}\t");  // a tombstone keyed by a JSON object
    produce(lines, "users");
    // In one transaction (last wins within a batch), then in transactions of 7 records each
    // (the stage table must start empty in every one).
    for (const std::string batch : {"", "      batch_size: 7\n"}) {
        SCOPED_TRACE(batch);
        pg.exec(
            "TRUNCATE users; INSERT INTO users VALUES (900, 'kept', 1, NULL, NULL), (901, "
            "'deleted', 1, NULL, NULL)");
        const RunResult r = run(config(
            "      table: users\n      mode: upsert\n      delete_on_tombstone: true\n" + batch, "",
            "users", "      group: upsert" + std::to_string(batch.size()) + "\n"));
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(count("SELECT count(*) FROM users"), 100 - 10 + 1 + 1);
        EXPECT_EQ(count("SELECT count(*) FROM users WHERE id BETWEEN 1 AND 10"), 1);
        EXPECT_EQ(pg.scalar("SELECT name || ' ' || \"Score\" FROM users WHERE id = 5"), "back 3");
        EXPECT_EQ(pg.scalar("SELECT name FROM users WHERE id = 20"),
                  "tab\there \"quoted\" a\\b\nc\rd");
        EXPECT_EQ(pg.scalar("SELECT \"Score\" FROM users WHERE id = 20"), "2");
        EXPECT_EQ(pg.scalar("SELECT \"Score\"::text || ' ' || tags::text || ' ' || doc::text "
                            "FROM users WHERE id = 60"),
                  "1.5 {a,\"b c\"} {\"v\": 1}");
        EXPECT_EQ(count("SELECT count(*) FROM users WHERE id = 900"), 1);
        EXPECT_EQ(count("SELECT count(*) FROM users WHERE id = 901"), 0);
    }
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

// With exactly_once the commit stores offsets past the refused record: it must wait until the
// dead letter holds it, or a crash just after the commit would lose it.
// With exactly_once the commit stores offsets past a refused record: kill -9 while the dead letter
// is down must find nothing committed, and the rerun puts the record in the dead letter once.
void KafkaToPostgres::expect_dead_letter_before_commit(const std::string& refused,
                                                       const std::string& reason) {
    kafka.create_topic("ev", 1);
    EmbeddedKafka dead_letters{1};
    dead_letters.create_topic("ev_dlq", 1);
    pg.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, user_id int, action text, item text, ts "
        "bigint)");
    std::vector<std::string> lines = make_events(0, 100);
    lines.insert(lines.begin() + 50, refused);
    produce(lines);
    const std::string path =
        config("      table: events\n      exactly_once: true\n",
               "    dead_letter: {type: kafka, topic: ev_dlq, connect_timeout: 0, brokers: '" +
                   dead_letters.bootstraps() + "'}\n");
    rd_kafka_mock_broker_set_down(dead_letters.cluster(), 1);
    {
        Process p(run_args(path), dir.path().string(), env());
        wait_for_stderr(p, "waiting for");
        ASSERT_TRUE(p.running()) << p.err();
        EXPECT_NE(p.err().find("to take 1 refused record(s) before committing"), std::string::npos)
            << p.err();
        EXPECT_EQ(count("SELECT count(*) FROM events"), 0);
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait(), 128 + SIGKILL);
    }
    rd_kafka_mock_broker_set_up(dead_letters.cluster(), 1);
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("read 101, delivered 100, dead-lettered 1"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 100);
    const auto dead = kcat_consume(dead_letters.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, refused);
    EXPECT_NE(dead[0].headers.find(reason), std::string::npos) << dead[0].headers;
}

TEST_F(KafkaToPostgres, ExactlyOnceCommitsPastARefusedRecordOnlyOnceTheDeadLetterHoldsIt) {
    expect_dead_letter_before_commit(R"({"id":7,"user_id":1,"action":"duplicate key"})",
                                     "duplicate key value violates unique constraint");
}

// The same for a record refused before it reaches the table (here: not JSON).
TEST_F(KafkaToPostgres, ExactlyOnceCommitsPastARecordRefusedBeforeTheTableOnlyOnceDeadLettered) {
    expect_dead_letter_before_commit("not json", "kbridge.error.reason=invalid_json");
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

// `sink_extra` goes into the sink's options.
void KafkaToPostgres::cut_connections_mid_stream(const std::string& sink_extra) {
    kafka.create_topic("ev", 8);
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const int total = 100000;
    produce_keyed(0, total);
    const std::string path = config(
        "      table: events\n      exactly_once: true\n      batch_size: 2000\n" + sink_extra, "",
        "ev", "      join_group: false\n");
    Process p(run_args(path), dir.path().string(), env());
    int cuts = 0;
    long long seen = 0;
    while (cuts < 3 && p.running()) {
        seen = wait_for_rows(p, seen + 15000);
        if (!p.running() || seen >= total) break;
        // Cuts whatever the sink's connection is doing: a COPY being sent, a COMMIT awaited.
        pg.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'");
        ++cuts;
    }
    EXPECT_EQ(p.wait(), 0) << p.err();
    EXPECT_GE(cuts, 2) << p.err();
    EXPECT_NE(p.err().find("reconnecting"), std::string::npos) << p.err();
    EXPECT_EQ(count("SELECT count(*) FROM events"), total);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), total);
}

TEST_F(KafkaToPostgres, ASinkConnectionCutMidStreamIsReconnectedAndExactlyOnceStaysExact) {
    cut_connections_mid_stream("");
}

TEST_F(KafkaToPostgres, CutsOfEveryConnectionOfATwoConnectionSinkLeaveExactlyOnceExact) {
    cut_connections_mid_stream("      connections: 2\n");
}

// Each partition is one connection's: a lock holding up partition 0's writes (its offsets row,
// as another consumer of it would hold it) leaves partition 1's records free to commit.
TEST_F(KafkaToPostgres, WithTwoConnectionsAPartitionHeldUpDoesNotHoldUpTheOther) {
    kafka.create_topic("ev", 2);
    pg.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, user_id int, action text, item text, ts "
        "bigint)");
    for (int partition = 0; partition < 2; ++partition) {
        const std::string file = dir.file("partition" + std::to_string(partition));
        std::string lines;
        for (const auto& event : make_events(partition * 5000, (partition + 1) * 5000))
            lines += event + "\n";
        write_file(file, lines);
        shell("kcat -P -b '" + kafka.bootstraps() + "' -t ev -p " + std::to_string(partition) +
              " -l '" + file + "'");
    }
    pg.exec(
        "CREATE TABLE kbridge_offsets (consumer_group text NOT NULL, topic text NOT NULL, "
        "partition int NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL "
        "DEFAULT now(), PRIMARY KEY (consumer_group, topic, partition))");
    pg.exec(
        "INSERT INTO kbridge_offsets (consumer_group, topic, partition, next_offset) VALUES "
        "('lanes', 'ev', 0, -1), ('lanes', 'ev', 1, -1)");
    PostgresSession holder(pg.url());
    holder.exec("BEGIN");
    holder.exec("SELECT * FROM kbridge_offsets WHERE partition = 0 FOR UPDATE");
    const std::string path = config(
        "      table: events\n      exactly_once: true\n      connections: 2\n      batch_size: "
        "1000\n",
        "", "ev", "      group: lanes\n      join_group: false\n");
    Process p(run_args(path), dir.path().string(), env());
    EXPECT_EQ(wait_for_rows(p, 5000), 5000) << p.err();
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(p.running()) << p.err();
    EXPECT_EQ(count("SELECT count(*) FROM events"), 5000);
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE id >= 5000"), 5000);  // partition 1's
    holder.exec("COMMIT");
    EXPECT_EQ(p.wait(), 0) << p.err();
    EXPECT_EQ(count("SELECT count(*) FROM events"), 10000);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), 10000);
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

// The group's committed offsets of topic ev, summed, as python3-confluent-kafka reads them.
long long committed_sum(const std::string& bootstraps, const std::string& group, int partitions) {
    return std::stoll(
        shell("/usr/bin/python3 -c 'import sys, confluent_kafka as ck\n"
              "c = ck.Consumer({\"bootstrap.servers\": sys.argv[1], \"group.id\": sys.argv[2]})\n"
              "tps = [ck.TopicPartition(\"ev\", p) for p in range(int(sys.argv[3]))]\n"
              "print(sum(max(t.offset, 0) for t in c.committed(tps, timeout=10)))' '" +
              bootstraps + "' '" + group + "' " + std::to_string(partitions)));
}

TEST_F(KafkaToPostgres, WithoutJoiningTheGroupOneRunReadsEveryPartitionAndTheNextResumes) {
    kafka.create_topic("ev", 4);
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    produce(make_events(0, 20000));
    const std::string path = config("      table: events\n", "", "ev", "      join_group: false\n");
    RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("(group kbridge.k2p, not joined): assigned ev[0] ev[1] ev[2] ev[3]"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("k2p: read 20000, delivered 20000"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), 20000);
    EXPECT_EQ(committed_sum(kafka.bootstraps(), "kbridge.k2p", 4), 20000);

    produce(make_events(20000, 20100));
    r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("k2p: read 100, delivered 100"), std::string::npos) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 20100);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), 20100);
}

TEST_F(KafkaToPostgres, WithoutJoiningARunFailsWhileItsGroupHasMembers) {
    kafka.create_topic("ev", 2);
    kafka.create_topic("other", 1);
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    // A member of the group "shared", on another topic: the group is not free to commit into.
    const std::string member_path = dir.file("member.yaml");
    write_file(member_path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
               "  - name: member\n    source: {type: kafka, topics: [other], group: shared}\n"
               "    sink: {type: stdout}\n");
    Process member({KBRIDGE_BINARY, "run", member_path, "--state-dir", dir.file("state-member")},
                   dir.path().string(), env());
    for (int i = 0; i < 500 && member.err().find("assigned other[0]") == std::string::npos; ++i)
        std::this_thread::sleep_for(20ms);
    ASSERT_NE(member.err().find("assigned other[0]"), std::string::npos) << member.err();

    produce(make_events(0, 1000));
    const RunResult r = run(config("      table: events\n", "", "ev",
                                   "      join_group: false\n      group: shared\n"));
    member.signal(SIGTERM);
    EXPECT_EQ(member.wait(), 0) << member.err();
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("kafka commit of group shared"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("give this pipeline a group of its own"), std::string::npos) << r.err;
    // At-least-once: what was written stays; the group's offsets did not move.
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), 1000);
    EXPECT_EQ(committed_sum(kafka.bootstraps(), "shared", 2), 0);
}

TEST_F(KafkaToPostgres, WithoutJoiningTwoExactlyOnceRunsAtOnceApplyEachRecordOnce) {
    kafka.create_topic("ev", 4);
    pg.exec("CREATE TABLE events (id bigint, user_id int, action text, item text, ts bigint)");
    const int total = 40000;
    produce(make_events(0, total));
    // Both read every partition; the offsets row lock in the target database lets only one apply
    // each record.
    const std::string path =
        config("      table: events\n      exactly_once: true\n      batch_size: 500\n", "", "ev",
               "      join_group: false\n      batch_size: 500\n");
    Process first(run_args(path), dir.path().string(), env());
    auto second_args = run_args(path);
    second_args[4] = dir.file("state-2");
    Process second(second_args, dir.path().string(), env());
    EXPECT_EQ(first.wait(), 0) << first.err();
    EXPECT_EQ(second.wait(), 0) << second.err();
    // They did overlap: one found records the other had applied.
    const std::string logs = first.err() + second.err();
    EXPECT_NE(logs.find("records already applied"), std::string::npos) << logs;
    EXPECT_EQ(count("SELECT count(*) FROM events"), total);
    EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events"), total);
    // Keyless records fill some partitions only; the others keep -1 (nothing applied).
    EXPECT_EQ(count("SELECT sum(greatest(next_offset, 0)) FROM kbridge_offsets WHERE "
                    "consumer_group = 'kbridge.k2p'"),
              total);
}

TEST_F(KafkaToPostgres, MissingTableOrColumnIsNamedAtStart) {
    kafka.create_topic("ev", 1);
    RunResult r = run(config("      table: nowhere\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("\"nowhere\" does not exist"), std::string::npos) << r.err;
    // Follow mode retries unreachable endpoints, not mistakes: it stops at once just the same.
    Process follow(run_args(config("      table: nowhere\n"), false), dir.path().string(), env());
    EXPECT_EQ(follow.wait(15s), 1) << follow.err();
    EXPECT_EQ(follow.err().find("retrying"), std::string::npos) << follow.err();
    pg.exec("CREATE TABLE events (id bigint)");
    r = run(config("      table: events\n      mode: upsert\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("events has no primary key"), std::string::npos) << r.err;
    r = run(config("      table: events\n      columns: {idd: '{id}'}\n"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("no column 'idd'"), std::string::npos) << r.err;
}

TEST_F(KafkaToPostgres, TheSeedFlowRowsInsertedWhileBothPipelinesFollowArriveInTheTarget) {
    kafka.create_topic("conn_fdw", 2);
    pg.exec(
        "CREATE TABLE conn_fdw (id int4 PRIMARY KEY, \"name\" varchar(50), age int4, city "
        "varchar(50), salary int4)");
    pg.exec("CREATE TABLE conn_fdw_copy (LIKE conn_fdw INCLUDING ALL)");
    const std::string path = dir.file("seed.yaml");
    write_file(
        path,
        std::string(
            "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: "
            "'${PG_URL}'}\npipelines:\n"
            "  - name: out\n    source: {type: postgres_table, table: conn_fdw, mode: incrementing,"
            " incrementing_column: id, poll_interval: 200ms}\n    sink: {type: kafka, topic: "
            "conn_fdw}\n"
            "  - name: in\n    source:\n      type: kafka\n      topics: [conn_fdw]\n") +
            kConsumer +
            "    sink: {type: postgres_table, table: conn_fdw_copy, mode: upsert, exactly_once: "
            "true}\n");
    Process both(run_args(path, false), dir.path().string(), env());
    const char* rows[] = {
        "(1, 'John', 30, 'New York', 50000), (2, 'Alice', 25, 'Los Angeles', 60000), (3, 'Bob', "
        "35, 'Chicago', 70000)",
        "(4, 'Eva', 28, 'San Francisco', 55000), (5, 'Mike', 32, 'Seattle', 65000), (6, 'Sophia', "
        "29, 'Boston', 75000),"
        " (7, 'David', 27, 'Denver', 52000), (8, 'Emily', 31, 'Austin', 68000), (9, 'Daniel', 26, "
        "'Phoenix', 58000)",
        "(10, 'Olivia', 33, 'Houston', 72000), (11, 'Liam', 24, 'Portland', 49000), (12, 'Ava', "
        "34, 'Atlanta', 71000),"
        " (13, 'Logan', 30, 'Miami', 62000), (14, 'Mia', 28, 'Dallas', 54000), (15, 'Jackson', 29, "
        "'Minneapolis', 67000)",
        "(16, 'Sophie', 31, 'Detroit', 59000), (17, 'William', 27, 'Philadelphia', 70000), (18, "
        "'Emma', 32, 'San Diego', 66000),"
        " (19, 'James', 26, 'Raleigh', 63000), (20, 'Avery', 35, 'Tampa', 71000)"};
    for (const char* wave : rows) {
        pg.exec(std::string("INSERT INTO conn_fdw VALUES ") + wave);
        std::this_thread::sleep_for(700ms);
    }
    for (int i = 0; i < 1000 && count("SELECT count(*) FROM conn_fdw_copy") < 20; ++i)
        std::this_thread::sleep_for(20ms);
    both.signal(SIGTERM);
    EXPECT_EQ(both.wait(), 0) << both.err();
    EXPECT_EQ(count("SELECT count(*) FROM conn_fdw_copy"), 20) << both.err();
    EXPECT_EQ(
        count("SELECT count(*) FROM (SELECT * FROM conn_fdw EXCEPT SELECT * FROM conn_fdw_copy) d"),
        0);
}

TEST_F(KafkaToPostgres, StdinToKafkaToStdoutPipesLines) {
    kafka.create_topic("lines", 2);
    const std::string in = dir.file("in.jsonl");
    std::string text;
    for (const auto& e : make_events(0, 3000)) text += e + "\n";
    write_file(
        in,
        text + "\n{\"id\":3000,\"user_id\":1}");  // an empty line, and a last line without newline
    const std::string to_kafka = dir.file("stdin.yaml");
    write_file(to_kafka,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
               "  - name: in\n    source: {type: stdin, batch_size: 700}\n    sink: {type: kafka, "
               "topic: lines, key: '{user_id}'}\n");
    Process producer({KBRIDGE_BINARY, "run", to_kafka, "--once", "--state-dir", dir.file("state")},
                     dir.path().string(), env(), in);
    ASSERT_EQ(producer.wait(), 0) << producer.err();
    EXPECT_EQ(message_count(kafka.bootstraps(), "lines"), 3001);

    const std::string to_stdout = dir.file("stdout.yaml");
    write_file(
        to_stdout,
        std::string("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
                    "  - name: out\n    source:\n      type: kafka\n      topics: [lines]\n") +
            kConsumer + "    sink: {type: stdout}\n");
    Process consumer({KBRIDGE_BINARY, "run", to_stdout, "--once", "--state-dir", dir.file("state"),
                      "--metrics-file", dir.file("out.prom")},
                     dir.path().string(), env());
    ASSERT_EQ(consumer.wait(), 0) << consumer.err();
    // Read up to the high watermarks: the consumer lag the fetches reported is gone.
    EXPECT_NE(read_file(dir.file("out.prom"))
                  .find("kbridge_source_lag_records{pipeline=\"out\",source=\"kafka\",sink="
                        "\"stdout\"} 0\n"),
              std::string::npos)
        << read_file(dir.file("out.prom"));
    const PrintedEvents printed = printed_events(consumer.out());
    EXPECT_EQ(printed.lines, 3001u);
    EXPECT_EQ(printed.ids.size(), 3001u);
    EXPECT_EQ(*printed.ids.rbegin(), 3000);
}

// A prefetch queue far smaller than the topic: the source wakes the fetchers (with offset
// requests whose answers it does not wait for) each time it has read a part of the queue, many
// times in this run. Every record still arrives once, and the late answers free cleanly (ASan).
TEST_F(KafkaToPostgres, ATinyPrefetchQueueIsRefilledOftenAndEveryRecordArrivesOnce) {
    kafka.create_topic("ev", 4);
    produce_keyed(0, 40000);  // ~3.5 MB: a dozen wake-ups at the smallest interval (256 KB)
    const std::string path = dir.file("tiny-queue.yaml");
    write_file(path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
               "  - name: out\n    source:\n      type: kafka\n      topics: [ev]\n"
               "      properties: {session.timeout.ms: '6000', queued.max.messages.kbytes: '64'}\n"
               "    sink: {type: stdout}\n");
    Process consumer({KBRIDGE_BINARY, "run", path, "--once", "--state-dir", dir.file("state")},
                     dir.path().string(), env());
    ASSERT_EQ(consumer.wait(), 0) << consumer.err();
    const PrintedEvents printed = printed_events(consumer.out());
    EXPECT_EQ(printed.lines, 40000u);
    EXPECT_EQ(printed.ids.size(), 40000u);
    EXPECT_EQ(*printed.ids.begin(), 0);
    EXPECT_EQ(*printed.ids.rbegin(), 39999);
}

TEST_F(KafkaToPostgres, CsvLinesOfTheSeedsArriveAsRowsAndLeaveAsCsv) {
    kafka.create_topic("people", 1);
    pg.exec(
        "CREATE TABLE conn_fdw (id serial PRIMARY KEY, \"name\" varchar(50), age int4, city "
        "varchar(50), salary int4)");
    const std::string in = dir.file("people.csv");
    write_file(in,
               "John,30,New York,50000\nAlice,25,Los Angeles,60000\n\"Doe, "
               "J\",41,\"Boston\",70000\nbroken,line\n");
    const std::string to_kafka = dir.file("csv-in.yaml");
    write_file(
        to_kafka,
        "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
        "  - name: in\n    source: {type: stdin, format: csv, columns: [name, age, city, salary]}\n"
        "    sink: {type: kafka, topic: people}\n    dead_letter: {type: kafka, topic: "
        "people_dlq}\n");
    Process producer({KBRIDGE_BINARY, "run", to_kafka, "--once"}, dir.path().string(), env(), in);
    ASSERT_EQ(producer.wait(), 0) << producer.err();
    const auto people = kcat_consume(kafka.bootstraps(), "people");
    ASSERT_EQ(people.size(), 3u);
    EXPECT_EQ(people[2].value, R"({"name":"Doe, J","age":"41","city":"Boston","salary":"70000"})");
    const auto dead = kcat_consume(kafka.bootstraps(), "people_dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, "broken,line");
    EXPECT_NE(dead[0].headers.find("kbridge.error.reason=invalid_csv"), std::string::npos)
        << dead[0].headers;

    // Kafka -> PostgreSQL: the strings coerce to the table's types; id takes its default.
    RunResult r = run(config("      table: conn_fdw\n", "", "people"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(pg.scalar("SELECT string_agg(id || ':' || name || ':' || (age + 1), ' ' ORDER BY id) "
                        "FROM conn_fdw"),
              "1:John:31 2:Alice:26 3:Doe, J:42");

    // Kafka -> stdout as the chat seed's "sender|receiver|content" lines.
    const std::string to_stdout = dir.file("csv-out.yaml");
    write_file(
        to_stdout,
        std::string("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
                    "  - name: out\n    source:\n      type: kafka\n      topics: [people]\n") +
            kConsumer +
            "    sink: {type: stdout, format: csv, delimiter: '|', columns: [name, city, "
            "salary]}\n");
    Process consumer({KBRIDGE_BINARY, "run", to_stdout, "--once"}, dir.path().string(), env());
    ASSERT_EQ(consumer.wait(), 0) << consumer.err();
    EXPECT_EQ(consumer.out(),
              "John|New York|50000\nAlice|Los Angeles|60000\nDoe, J|Boston|70000\n");
}

}  // namespace
}  // namespace kbridge::test
