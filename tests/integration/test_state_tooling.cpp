// `kbridge state`: show tells where a pipeline stands whatever its source (a Kafka group's
// committed offsets and lag, a Redis worker's in-flight batches, a PostgreSQL export's stored
// position), and set refuses names and values the source could not start from.
#include <gtest/gtest.h>

#include <map>

#include "connectors/kafka/embedded.h"
#include "connectors/redis/list_source.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

TEST(StateTooling, ShowPrintsAKafkaGroupsCommittedOffsetsAndLag) {
    TempDir dir;
    EmbeddedKafka kafka(1);
    kafka.create_topic("in", 2);
    const std::string path = dir.file("p.yaml");
    write_file(
        path,
        "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
            "'}\npipelines:\n  - name: copy\n    source: {type: kafka, topics: [in], format: raw, "
            "properties: {session.timeout.ms: '6000'}}\n    sink: {type: stdout}\n");
    std::vector<std::string> lines;
    for (int i = 0; i < 10; ++i)
        lines.push_back("k" + std::to_string(i) + "\tv" + std::to_string(i));
    kcat_produce(kafka.bootstraps(), "in", lines, dir.path().string());
    const std::vector<std::string> state_dir{"--state-dir", dir.file("state")};
    auto kbridge = [&](std::vector<std::string> args) {
        args.insert(args.end(), state_dir.begin(), state_dir.end());
        return run_kbridge(args, dir.path().string());
    };
    RunResult r = kbridge({"state", "show", path, "copy"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("copy: committed offsets of group kbridge.copy:"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("none"), std::string::npos) << r.out;

    r = kbridge({"run", path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    kcat_produce(kafka.bootstraps(), "in", {"a\tx", "b\ty", "c\tz", "d\tw", "e\tv"},
                 dir.path().string());
    r = kbridge({"state", "show", path, "copy"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find("none"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  lag 5 "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("in                               0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("in                               1"), std::string::npos) << r.out;
    r = kbridge({"state", "set", path, "copy", "offset=3"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("kafka-consumer-groups.sh --reset-offsets"), std::string::npos) << r.err;
}

TEST(StateTooling, ShowPrintsTheOffsetsAnExactlyOnceSinkStores) {
    TempDir dir;
    EmbeddedKafka kafka(1);
    RedisServer redis(dir);
    kafka.create_topic("in", 2);
    const std::string path = dir.file("p.yaml");
    write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\nredis: {url: '" +
                         redis.url() +
                         "'}\npipelines:\n  - name: cache\n    source: {type: kafka, topics: [in], "
                         "format: raw, properties: {session.timeout.ms: '6000'}}\n    sink: {type: "
                         "redis, exactly_once: true}\n");
    kcat_produce(kafka.bootstraps(), "in", {"a\t1", "b\t2", "c\t3", "d\t4"}, dir.path().string());
    auto kbridge = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--state-dir", dir.file("state")});
        return run_kbridge(args, dir.path().string());
    };
    RunResult r = kbridge({"run", path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    kcat_produce(kafka.bootstraps(), "in", {"e\t5", "f\t6"}, dir.path().string());
    r = kbridge({"state", "show", path, "cache"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("cache: offsets stored by redis:{_key} (exactly_once) for group "
                         "kbridge.cache:"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("  lag 2 "), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("none"), std::string::npos) << r.out;
}

TEST(StateTooling, ShowPrintsARedisWorkersInFlightBatches) {
    TempDir dir;
    RedisServer redis(dir);
    const std::string path = dir.file("p.yaml");
    write_file(path, "version: 1\nredis: {url: '" + redis.url() +
                         "'}\npipelines:\n  - name: jobs\n    source: {type: redis_list, key: "
                         "jobs}\n    sink: {type: stdout}\n");
    redis.push("jobs", {"1", "2", "3", "4", "5"});
    // What a worker killed mid-batch leaves: two batches named in its in-flight list.
    redis.push(redis_in_flight_key("jobs", "jobs"),
               {redis_batch_key("jobs", "jobs", 7), redis_batch_key("jobs", "jobs", 8)});
    redis.push(redis_batch_key("jobs", "jobs", 7), {"a", "b", "c"});
    redis.push(redis_batch_key("jobs", "jobs", 8), {"d"});
    RunResult r = run_kbridge({"state", "show", path, "jobs", "--state-dir", dir.file("state")},
                              dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("jobs: redis_list:jobs holds 5 records; 2 batches (4 records) in flight "
                         "in {jobs}:inflight:jobs"),
              std::string::npos)
        << r.out;
    EXPECT_NE(
        r.out.find("  {jobs}:inflight:jobs:7: 3 records\n  {jobs}:inflight:jobs:8: 1 records\n"),
        std::string::npos)
        << r.out;
    r = run_kbridge({"state", "set", path, "jobs", "x=1", "--state-dir", dir.file("state")},
                    dir.path().string());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("keeps no position"), std::string::npos) << r.err;
}

TEST(StateTooling, SetRefusesNamesAndValuesThePostgresExportCouldNotStartFrom) {
    TempDir dir;
    PostgresServer pg(dir);
    pg.exec("CREATE TABLE events (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
    pg.exec("INSERT INTO events (id) SELECT generate_series(1, 10)");
    const std::string path = dir.file("p.yaml");
    auto pipeline = [&](const std::string& source) {
        write_file(path, "version: 1\npostgres: {url: '" + pg.url() +
                             "'}\npipelines:\n  - name: p\n    source: {type: postgres_table, "
                             "table: events" +
                             source + "}\n    sink: {type: stdout}\n");
    };
    pipeline(", mode: incrementing, incrementing_column: id");
    auto state = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--state-dir", dir.file("state")});
        return run_kbridge(args, dir.path().string());
    };
    ASSERT_EQ(state({"state", "set", path, "p", "incrementing=4"}).code, 0);
    const std::string stored = read_file(dir.file("state") + "/p.position");

    RunResult r = state({"state", "set", path, "p", "incrementing=abc"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("incrementing=abc: not a value of column 'id'"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("invalid input syntax for type integer"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("nothing was written"), std::string::npos) << r.err;
    r = state({"state", "set", path, "p", "bogus=1"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("'bogus' is no part of a incrementing position (names: incrementing, "
                         "horizon)"),
              std::string::npos)
        << r.err;
    r = state({"state", "set", path, "p", "timestamp=2024-01-01"});
    EXPECT_EQ(r.code, 2) << r.out;
    r = state({"state", "set", path, "p", "horizon=-5"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("xid8"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir.file("state") + "/p.position"), stored);

    // The position set is the one the next run starts after.
    r = state({"run", path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("read 6, delivered 6"), std::string::npos) << r.err;

    pipeline(", mode: timestamp, timestamp_column: at");
    r = state({"state", "set", path, "p", "timestamp=yesterday-ish"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("not a value of column 'at'"), std::string::npos) << r.err;
    EXPECT_EQ(state({"state", "set", path, "p", "timestamp=2024-01-01 00:00:00+00"}).code, 0);

    pipeline("");
    r = state({"state", "set", path, "p", "incrementing=1"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("bulk mode, which keeps no position"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kbridge::test
