// Transforms in pipeline files on a Redis, a Kafka and a PostgreSQL source: what reaches the sink,
// what is filtered (acknowledged, counted) and what goes to the dead letter, counted by id; and
// what --dry-run shows without taking anything.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

// The issue's chain; make_events() gives id, user_id, action (view/click/cart/buy by id % 4),
// item and ts.
const char* kChain =
    "    transforms:\n"
    "      - drop: [item]\n"
    "      - rename: {user_id: uid}\n"
    "      - set: {source: test, day: \"{ts:date}\", region: \"{region:-eu}\", act: "
    "\"{action:upper}\"}\n"
    "      - filter: {action: [buy, cart]}\n"
    "      - select: [id, uid, act, day, region, source]\n";

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    return out;
}

// What the chain makes of make_events()' event `id` (buy or cart only).
std::string transformed(int id) {
    const char* act = id % 4 == 2 ? "CART" : "BUY";
    return "{\"id\":" + std::to_string(id) + ",\"uid\":" + std::to_string((id * 7919) % 10007) +
           ",\"act\":\"" + act + "\",\"day\":\"2023-11-14\",\"region\":\"eu\",\"source\":\"test\"}";
}

class TransformsTest : public ::testing::Test {
  protected:
    TempDir dir;
    EmbeddedKafka kafka{1};

    std::string config(const std::string& source, const std::string& sink,
                       const std::string& extra = "") {
        const std::string path = dir.file("p.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
                   "  - name: t\n    source: " +
                       source + "\n    sink: " + sink + "\n" + kChain + extra);
        return path;
    }
    RunResult run(const std::vector<std::string>& args) {
        std::vector<std::string> all{"run"};
        all.insert(all.end(), args.begin(), args.end());
        all.push_back("--state-dir");
        all.push_back(dir.file("state"));
        return run_kbridge(all, dir.path().string(), {{"KAFKA_BROKERS", kafka.bootstraps()}});
    }
};

TEST_F(TransformsTest, RedisSourceFiltersAcknowledgesAndDeadLettersWhatCannotBeSet) {
    RedisServer redis{dir};
    kafka.create_topic("out", 1);
    kafka.create_topic("dlq", 1);
    std::vector<std::string> events = make_events(0, 200);
    events.push_back(R"({"id":900,"user_id":1,"action":"buy"})");  // no ts: `day` cannot be set
    redis.push("ev", events);
    const std::string path = config("{type: redis_list, key: ev, url: '" + redis.url() + "'}",
                                    "{type: kafka, topic: out, key: '{uid}'}",
                                    "    dead_letter: {type: kafka, topic: dlq}\n");

    // --dry-run: the first 10 records as they would be written, filtered ones said so; nothing
    // taken from the list.
    const RunResult dry = run({path, "--dry-run"});
    ASSERT_EQ(dry.code, 0) << dry.err;
    const auto shown = lines_of(dry.out);
    ASSERT_EQ(shown.size(), 10u) << dry.out;
    EXPECT_EQ(shown[0], "t\tFILTERED transforms[3] filter: action is 'view', not one of buy, cart");
    EXPECT_EQ(shown[2], "t\ttopic=out key=" + std::to_string((2 * 7919) % 10007) +
                            " value=" + transformed(2));
    EXPECT_EQ(shown[3], "t\ttopic=out key=" + std::to_string((3 * 7919) % 10007) +
                            " value=" + transformed(3));
    EXPECT_EQ(redis.llen("ev"), 201);

    const std::string metrics = dir.file("metrics.prom");
    const RunResult r = run({path, "--once", "--metrics-file", metrics});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("t: read 201, delivered 100, dead-lettered 1, filtered 100"),
              std::string::npos)
        << r.err;
    EXPECT_NE(read_file(metrics).find("kbridge_records_filtered_total{pipeline=\"t\",source="
                                      "\"redis_list\",sink=\"kafka\"} 100"),
              std::string::npos);
    const auto out = kcat_consume(kafka.bootstraps(), "out");
    std::set<long long> ids;
    for (const auto& m : out) {
        const long long id = event_id(m.value);
        ids.insert(id);
        EXPECT_EQ(m.value, transformed(static_cast<int>(id)));
        EXPECT_EQ(m.key, std::to_string((id * 7919) % 10007));
    }
    std::set<long long> expected;
    for (int id = 0; id < 200; ++id)
        if (id % 4 >= 2) expected.insert(id);
    EXPECT_EQ(ids, expected);
    const auto dead = kcat_consume(kafka.bootstraps(), "dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, events.back());  // the original value
    EXPECT_NE(dead[0].headers.find("kbridge.error.reason=transform"), std::string::npos);
    EXPECT_NE(dead[0].headers.find("transforms[2] set day: missing field 'ts'"), std::string::npos)
        << dead[0].headers;
    // Filtered records were acknowledged: the list and the worker's in-flight lists are empty.
    EXPECT_EQ(redis.llen("ev"), 0);
    EXPECT_EQ(redis.client().command({"KEYS", "ev:inflight:*"})->elements, 0u);
}

TEST_F(TransformsTest, KafkaSourceTransformsAndCommitsPastFilteredRecords) {
    kafka.create_topic("in", 2);
    kcat_produce(kafka.bootstraps(), "in", make_events(0, 40), dir.path().string());
    const std::string path =
        config("{type: kafka, topics: [in], group: g, join_group: false}", "{type: stdout}");
    const RunResult dry = run({path, "--dry-run"});
    ASSERT_EQ(dry.code, 0) << dry.err;
    EXPECT_EQ(lines_of(dry.out).size(), 10u) << dry.out;
    EXPECT_NE(dry.out.find("t\tstdout <- {\"id\":"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("t\tFILTERED transforms[3] filter: action is "), std::string::npos);

    const RunResult r = run({path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::set<std::string> printed;
    for (const auto& line : lines_of(r.out)) printed.insert(line);
    std::set<std::string> expected;
    for (int id = 0; id < 40; ++id)
        if (id % 4 >= 2) expected.insert(transformed(id));
    EXPECT_EQ(printed, expected);
    EXPECT_NE(r.err.find("read 40, delivered 20, dead-lettered 0, filtered 20"), std::string::npos)
        << r.err;
    // Everything, filtered records included, was committed: a rerun has nothing to read.
    const RunResult again = run({path, "--once"});
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(again.out, "");
    EXPECT_NE(again.err.find("t: read 0,"), std::string::npos) << again.err;
}

TEST_F(TransformsTest, PostgresSourceKeepsNumbersAsWrittenThroughTransforms) {
    PostgresServer pg{dir};
    pg.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, amount numeric, status text, note text);"
        "INSERT INTO orders VALUES (1, 12345678901234567890.10, 'paid', 'x'),"
        "(2, 1.50, 'open', 'y'), (3, -0.0, 'paid', NULL)");
    const std::string path = dir.file("pg.yaml");
    write_file(path,
               "version: 1\npipelines:\n  - name: t\n"
               "    source: {type: postgres_table, table: orders, url: '" +
                   pg.url() +
                   "'}\n    sink: {type: stdout}\n    transforms:\n"
                   "      - filter: {status: paid}\n"
                   "      - rename: {amount: total}\n"
                   "      - set: {copy: \"{total}\", note: \"{note:-none}\"}\n"
                   "      - select: [id, total, copy, note]\n");
    const RunResult dry = run({path, "--dry-run"});
    ASSERT_EQ(dry.code, 0) << dry.err;
    EXPECT_EQ(dry.out,
              "t\tstdout <- "
              "{\"id\":1,\"total\":12345678901234567890.10,\"copy\":12345678901234567890.10,"
              "\"note\":\"x\"}\n"
              "t\tFILTERED transforms[0] filter: status is 'open', not one of paid\n"
              "t\tstdout <- {\"id\":3,\"total\":0.0,\"copy\":0.0,\"note\":\"none\"}\n");
    const RunResult r = run({path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "{\"id\":1,\"total\":12345678901234567890.10,\"copy\":12345678901234567890.10,"
              "\"note\":\"x\"}\n{\"id\":3,\"total\":0.0,\"copy\":0.0,\"note\":\"none\"}\n");
}

TEST_F(TransformsTest, ARawSourceWithTransformsIsAConfigError) {
    const std::string path = config("{type: stdin, format: raw}", "{type: stdout}");
    const RunResult r = run_kbridge({"validate", path}, dir.path().string(),
                                    {{"KAFKA_BROKERS", kafka.bootstraps()}});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("p.yaml:8:7: pipelines[0].transforms: transforms work on fields"),
              std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace kbridge::test
