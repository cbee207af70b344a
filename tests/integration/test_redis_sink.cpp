// Kafka -> Redis against a real redis-server and the embedded Kafka cluster.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

class KafkaToRedis : public ::testing::Test {
  protected:
    TempDir dir;
    RedisServer redis{dir};
    EmbeddedKafka kafka{3};

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"REDIS_URL", redis.url()}};
    }

    std::string config(const std::string& topic, const std::string& sink,
                       const std::string& source_extra = "") {
        const std::string path = dir.file("k2r.yaml");
        // A short session timeout: the mock cluster forgets a member that left only after it.
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
                   "'${REDIS_URL}'}\npipelines:\n"
                   "  - name: k2r\n    source:\n      type: kafka\n      topics: [" +
                       topic +
                       "]\n"
                       "      properties: {session.timeout.ms: '6000'}\n" +
                       source_extra + "    sink:\n      type: redis\n" + sink);
        return path;
    }
    std::vector<std::string> run_args(const std::string& path) {
        return {KBRIDGE_BINARY, "run", path, "--once", "--state-dir", dir.file("state")};
    }
    RunResult run(const std::string& path) {
        auto args = run_args(path);
        args.erase(args.begin());
        return run_kbridge(args, dir.path().string(), env());
    }
    std::string get(const std::vector<std::string>& command) {
        RedisReply r = redis.client().command(command);
        return r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len)
                                             : std::to_string(r->integer);
    }
};

TEST_F(KafkaToRedis, HsetWithTtlCachesEachUserAndATombstoneDeletesIt) {
    kafka.create_topic("users", 2);
    kcat_produce(kafka.bootstraps(), "users",
                 {"1\t{\"name\":\"Ann\",\"score\":2.5,\"tags\":[\"a\"]}",
                  "2\t{\"name\":\"Bob\",\"score\":1}", "3\t{\"name\":\"Cy\"}", "2\t",
                  "1\t{\"name\":\"Ann B\",\"score\":3}"},
                 dir.path().string());
    const RunResult r = run(config("users",
                                   "      command: hset\n      key: 'user:{_key}'\n      ttl: 1h\n"
                                   "      delete_on_tombstone: true\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(get({"HGET", "user:1", "name"}), "Ann B");
    EXPECT_EQ(get({"HGET", "user:1", "score"}), "3");
    EXPECT_EQ(get({"HGET", "user:1", "tags"}), "[\"a\"]");  // from the first record: HSET merges
    EXPECT_EQ(get({"EXISTS", "user:2"}), "0");
    EXPECT_EQ(get({"HGET", "user:3", "name"}), "Cy");
    const long long ttl = std::stoll(get({"PTTL", "user:3"}));
    EXPECT_GT(ttl, 3500 * 1000);
    EXPECT_LE(ttl, 3600 * 1000);
}

TEST_F(KafkaToRedis, SetZaddAndARefusedCommandGoesToTheDeadLetter) {
    kafka.create_topic("ev", 1);
    redis.client().command({"SET", "board:x", "a string, not a sorted set"});
    kcat_produce(kafka.bootstraps(), "ev",
                 {"{\"id\":1,\"board\":\"a\",\"ts\":10}", "{\"id\":2,\"board\":\"x\",\"ts\":20}",
                  "{\"id\":3,\"board\":\"a\",\"ts\":30}"},
                 dir.path().string());
    const RunResult r = run(config("ev",
                                   "      command: zadd\n      key: 'board:{board}'\n      score: "
                                   "'{ts}'\n      value: '{id}'\n",
                                   "") +
                            "");
    // Without a dead letter the refused ZADD stops the run.
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("WRONGTYPE"), std::string::npos) << r.err;
    const std::string path = dir.file("k2r.yaml");
    write_file(path, read_file(path) + "    dead_letter: {type: kafka, topic: ev_dlq}\n");
    const RunResult again = run(path);
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(get({"ZSCORE", "board:a", "3"}), "30");
    EXPECT_EQ(get({"ZCARD", "board:a"}), "2");
    const auto dead = kcat_consume(kafka.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].headers.find("WRONGTYPE"), std::string::npos) << dead[0].headers;
}

TEST_F(KafkaToRedis, ExactlyOnceRpushSurvivesKillNine) {
    kafka.create_topic("ev", 4);
    const int total = 40000;
    kcat_produce(kafka.bootstraps(), "ev", make_events(0, total), dir.path().string());
    const std::string path =
        config("ev", "      command: rpush\n      key: events\n      exactly_once: true\n",
               "      batch_size: 300\n");
    int kills = 0;
    for (int round = 0; round < 3; ++round) {
        const long long before = redis.llen("events");
        Process p(run_args(path), dir.path().string(), env());
        for (int i = 0; i < 600 && p.running(); ++i) {
            if (redis.llen("events") > before + 2000) break;
            std::this_thread::sleep_for(10ms);
        }
        if (!p.running()) break;
        p.signal(SIGKILL);
        p.wait();
        ++kills;
    }
    EXPECT_GE(kills, 2);
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto items = redis.lrange("events");
    std::set<long long> ids;
    for (const auto& item : items) ids.insert(event_id(item));
    EXPECT_EQ(items.size(), static_cast<size_t>(total));
    EXPECT_EQ(ids.size(), static_cast<size_t>(total));
}

// A command Redis refuses inside the step that stores the offsets is kept with them: killed while
// the dead letter's broker is down (so before the refused record reached it), the rerun still
// dead-letters it, and every other record is applied once.
TEST_F(KafkaToRedis, ExactlyOnceKeepsARefusedRecordUntilTheDeadLetterHoldsIt) {
    kafka.create_topic("ev", 1);
    EmbeddedKafka dead_letters{1};
    dead_letters.create_topic("ev_dlq", 1);
    redis.client().command({"SET", "list:x", "a string, not a list"});
    std::vector<std::string> lines;
    for (int id = 0; id < 100; ++id)
        lines.push_back("{\"id\":" + std::to_string(id) + ",\"list\":\"" + (id == 50 ? "x" : "a") +
                        "\"}");
    kcat_produce(kafka.bootstraps(), "ev", lines, dir.path().string());
    const std::string path =
        config("ev",
               "      command: rpush\n      key: 'list:{list}'\n      value: '{id}'\n"
               "      exactly_once: true\n");
    write_file(path, read_file(path) +
                         "    dead_letter: {type: kafka, topic: ev_dlq, connect_timeout: 0, "
                         "brokers: '" +
                         dead_letters.bootstraps() + "'}\n");
    rd_kafka_mock_broker_set_down(dead_letters.cluster(), 1);
    {
        Process p(run_args(path), dir.path().string(), env());
        wait_for_stderr(p, "waiting for");
        ASSERT_TRUE(p.running()) << p.err();
        EXPECT_EQ(redis.llen("list:a"), 99);  // applied, offsets stored: only the refusal waits
        p.signal(SIGKILL);
        p.wait();
    }
    rd_kafka_mock_broker_set_up(dead_letters.cluster(), 1);
    const RunResult r = run(path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(redis.llen("list:a"), 99);
    const auto dead = kcat_consume(dead_letters.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, lines[50]);
    EXPECT_NE(dead[0].headers.find("WRONGTYPE"), std::string::npos) << dead[0].headers;
    EXPECT_EQ(get({"EXISTS", "kbridge:offsets:kbridge.k2r:refused"}), "0");
}

}  // namespace
}  // namespace kbridge::test
