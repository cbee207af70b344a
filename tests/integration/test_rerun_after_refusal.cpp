// A run that stops at a record it cannot deliver acknowledges what it delivered before it, so
// cron reruns never send those again: ids are counted in Kafka after three failing runs, then
// after a run with a dead letter that gets past the record.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "connectors/kafka/embedded.h"
#include "connectors/redis/list_source.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

class RerunAfterRefusal : public ::testing::Test {
  protected:
    TempDir dir;
    EmbeddedKafka kafka{1};

    // Runs one pipeline `p` (source and sink YAML blocks), with a dead-letter topic or not.
    RunResult run(const std::string& source, const std::string& sink, bool dead_letter,
                  const std::map<std::string, std::string>& extra_env = {}) {
        const std::string path = dir.file("p.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
                   "  - name: p\n    source: " +
                       source + "\n    sink: " + sink + "\n" +
                       (dead_letter ? "    dead_letter: {type: kafka, topic: dlq}\n" : ""));
        auto env = extra_env;
        env["KAFKA_BROKERS"] = kafka.bootstraps();
        return run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")},
                           dir.path().string(), env);
    }
    // id -> times it arrived in `topic`, read by kcat.
    std::map<long long, int> ids(const std::string& topic) {
        std::map<long long, int> seen;
        for (const auto& m : kcat_consume(kafka.bootstraps(), topic)) ++seen[event_id(m.value)];
        return seen;
    }
    // Three runs that stop at the bad record, then one with a dead letter that passes it.
    void expect_reruns_deliver_each_once(const std::string& source, const std::string& sink,
                                         const std::map<long long, int>& before_bad,
                                         const std::map<long long, int>& all,
                                         const std::map<std::string, std::string>& env = {}) {
        for (int i = 0; i < 3; ++i) {
            const RunResult r = run(source, sink, false, env);
            EXPECT_EQ(r.code, 1) << r.err;
            EXPECT_NE(r.err.find("no dead_letter is configured"), std::string::npos) << r.err;
            EXPECT_EQ(ids("out"), before_bad) << "after run " << i + 1;
        }
        const RunResult r = run(source, sink, true, env);
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(ids("out"), all);
        EXPECT_EQ(kcat_consume(kafka.bootstraps(), "dlq").size(), 1u);
    }
};

const std::map<long long, int> kFirstTwo = {{0, 1}, {1, 1}};
const std::map<long long, int> kAllFour = {{0, 1}, {1, 1}, {2, 1}, {3, 1}};

TEST_F(RerunAfterRefusal, RedisListKeepsOnlyTheUndeliveredItems) {
    RedisServer redis{dir};
    kafka.create_topic("out", 1);
    redis.push("ndl", {R"({"id":0})", R"({"id":1})", "BAD", R"({"id":2})", R"({"id":3})"});
    const std::string source = "{type: redis_list, key: ndl, url: '" + redis.url() + "'}";
    for (int i = 0; i < 3; ++i) {
        const RunResult r = run(source, "{type: kafka, topic: out}", false);
        EXPECT_EQ(r.code, 1) << r.err;
        EXPECT_EQ(ids("out"), kFirstTwo) << "after run " << i + 1;
    }
    // The bad item and those behind it wait in the worker's in-flight batch, in order.
    std::vector<std::string> waiting;
    for (const auto& batch : redis.lrange(redis_in_flight_key("ndl", "p")))
        for (auto& item : redis.lrange(batch)) waiting.push_back(item);
    EXPECT_EQ(waiting, (std::vector<std::string>{"BAD", R"({"id":2})", R"({"id":3})"}));
    const RunResult r = run(source, "{type: kafka, topic: out}", true);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(ids("out"), kAllFour);
    EXPECT_EQ(kcat_consume(kafka.bootstraps(), "dlq").size(), 1u);
    EXPECT_EQ(redis.llen("ndl"), 0);
    EXPECT_EQ(redis.llen(redis_in_flight_key("ndl", "p")), 0);
}

// Kafka's default limit is 1 MB: a 5 MB item can go neither to the topic nor to the dead letter.
TEST_F(RerunAfterRefusal, ARecordThatCanNeverFitIsQuarantinedWholeAndThePipelineGoesOn) {
    RedisServer redis{dir};
    kafka.create_topic("out", 1);
    const std::string big = "{\"id\":2,\"blob\":\"" + std::string(5 << 20, 'x') + "\"}";
    std::vector<std::string> items = {R"({"id":0})", R"({"id":1})", big};
    std::map<long long, int> all = kFirstTwo;
    for (int id = 3; id < 31; ++id) {
        items.push_back("{\"id\":" + std::to_string(id) + "}");
        all[id] = 1;
    }
    redis.push("big", items);
    const std::string source = "{type: redis_list, key: big, url: '" + redis.url() + "'}";
    for (int i = 0; i < 3; ++i) {
        const RunResult r = run(source, "{type: kafka, topic: out}", false);
        EXPECT_EQ(r.code, 1) << r.err;
        EXPECT_EQ(ids("out"), kFirstTwo) << "after run " << i + 1;
    }
    for (int i = 0; i < 2; ++i) {  // the second run finds nothing left to do
        const RunResult r = run(source, "{type: kafka, topic: out}", true);
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(ids("out"), all);
    }
    const auto dead = kcat_consume(kafka.bootstraps(), "dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, big.substr(0, 64 * 1024));
    const std::string& headers = dead[0].headers;
    EXPECT_NE(headers.find("kbridge.error.reason=too_large"), std::string::npos) << headers;
    EXPECT_NE(headers.find("kbridge.original.size=" + std::to_string(big.size())),
              std::string::npos)
        << headers;
    write_file(dir.file("big.json"), big);
    const std::string sha256 = shell("sha256sum " + dir.file("big.json"));  // not our SHA-256
    EXPECT_NE(headers.find("kbridge.sha256=" + sha256.substr(0, 64)), std::string::npos) << headers;
    const size_t at = headers.find("kbridge.quarantine=");
    ASSERT_NE(at, std::string::npos) << headers;
    const std::string path = headers.substr(at + 19, headers.find(',', at) - at - 19);
    EXPECT_EQ(path.rfind(dir.file("state") + "/quarantine/p/", 0), 0u) << path;
    EXPECT_EQ(read_file(path), big);
    EXPECT_EQ(redis.llen("big"), 0);
}

TEST_F(RerunAfterRefusal, KafkaSourceCommitsUpToTheRecordItStoppedAt) {
    kafka.create_topic("in", 1);
    kafka.create_topic("out", 1);
    kcat_produce(kafka.bootstraps(), "in",
                 {R"({"id":0})", R"({"id":1})", "BAD", R"({"id":2})", R"({"id":3})"},
                 dir.path().string());
    expect_reruns_deliver_each_once("{type: kafka, topics: [in], join_group: false}",
                                    "{type: kafka, topic: out}", kFirstTwo, kAllFour);
}

TEST_F(RerunAfterRefusal, PostgresPositionMovesToTheLastDeliveredRow) {
    PostgresServer pg{dir};
    kafka.create_topic("out", 1);
    pg.exec(
        "CREATE TABLE t (id int PRIMARY KEY, user_id int); INSERT INTO t VALUES "
        "(0, 10), (1, 11), (2, NULL), (3, 13), (4, 14)");
    // The key template needs user_id, which row 2 lacks.
    const std::map<long long, int> all = {{0, 1}, {1, 1}, {3, 1}, {4, 1}};
    expect_reruns_deliver_each_once(
        "{type: postgres_table, table: t, mode: incrementing, incrementing_column: id, url: '" +
            pg.url() + "'}",
        "{type: kafka, topic: out, key: '{user_id}'}", kFirstTwo, all);
}

}  // namespace
}  // namespace kbridge::test
