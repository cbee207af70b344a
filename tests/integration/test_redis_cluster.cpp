// Redis list and stream sources, the redis sink and the Redis lock against a real three-node
// Redis Cluster; and the upgrade of redis_list's in-flight names, against one redis-server.
// "Nothing lost" is checked by counting ids read back with kcat.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "connectors/redis/list_source.h"
#include "support/kafka_check.h"
#include "support/process.h"
#include "support/redis_cluster.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

std::string random_name(const std::string& prefix) {
    static std::mt19937 rng(std::random_device{}());
    return prefix + std::to_string(rng() % 1000000000) + "_";
}

std::map<long long, int> ids_in(const std::string& bootstraps, const std::string& topic) {
    std::map<long long, int> ids;
    for (const auto& m : kcat_consume(bootstraps, topic)) ++ids[event_id(m.value)];
    return ids;
}

void push(RedisClient& client, const std::string& list, int from, int to) {
    for (const auto& e : make_events(from, to)) client.send({"RPUSH", list, e});
    while (client.replies_pending()) client.reply();
}

void xadd(RedisClient& client, const std::string& stream, int from, int to) {
    for (const auto& e : make_events(from, to)) client.send({"XADD", stream, "*", "payload", e});
    while (client.replies_pending()) client.reply();
}

class RedisClusterTest : public ::testing::Test {
  protected:
    TempDir dir;
    RedisClusterServers cluster{dir};
    EmbeddedKafka kafka{1};
    std::string list_topic = random_name("lists");
    std::string stream_topic = random_name("streams");
    // A list and a stream served by different nodes.
    std::string list = cluster.name_on(random_name("jobs"), cluster.ports()[1]);
    std::string stream = cluster.name_on(random_name("orders"), cluster.ports()[2]);

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}};
    }

    std::string config(const std::string& extra_top = "") {
        const std::string text =
            "version: 1\nkafka:\n  brokers: ${KAFKA_BROKERS}\nredis:\n  url: " + cluster.url() +
            "\n" + extra_top +
            "pipelines:\n"
            "  - name: jobs\n    source: {type: redis_list, key: " +
            list + ", batch_size: 200}\n    sink: {type: kafka, topic: " + list_topic +
            "}\n"
            "  - name: orders\n    source: {type: redis_stream, streams: [" +
            stream +
            "], value: payload, batch_size: 200}\n    sink: {type: kafka, topic: " + stream_topic +
            "}\n";
        const std::string path = dir.file(random_name("pipeline") + ".yaml");
        write_file(path, text);
        return path;
    }

    // What a drained list and stream leave: nothing in the list, no in-flight keys, nothing
    // pending.
    void expect_drained() {
        RedisClient& l = cluster.client_for(list);
        EXPECT_EQ(l.command({"LLEN", list})->integer, 0);
        const std::string in_flight = redis_in_flight_key(list, "jobs");
        EXPECT_EQ(l.command({"LLEN", in_flight})->integer, 0) << in_flight;
        RedisClient& s = cluster.client_for(stream);
        EXPECT_EQ(s.command({"XPENDING", stream, "kbridge"})->element[0]->integer, 0);
    }

    void expect_every_id_once(const std::string& topic, int total) {
        const auto ids = ids_in(kafka.bootstraps(), topic);
        for (int id = 0; id < total; ++id) ASSERT_TRUE(ids.count(id)) << topic << " lost " << id;
        EXPECT_EQ(ids.size(), static_cast<size_t>(total));
    }
};

TEST_F(RedisClusterTest, AListAndAStreamOnDifferentNodesAreDrainedAsOnOneServer) {
    ASSERT_NE(cluster.owner_port(list), cluster.owner_port(stream));
    push(cluster.client_for(list), list, 0, 20000);
    xadd(cluster.client_for(stream), stream, 0, 20000);
    // The lock's key lands on whichever node serves its slot.
    const RunResult r =
        run_kbridge({"run", config("lock:\n  redis: " + cluster.url() + "\n"), "--once"},
                    dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    for (const auto& [id, seen] : ids_in(kafka.bootstraps(), list_topic))
        ASSERT_EQ(seen, 1) << "list id " << id << " twice";
    expect_every_id_once(list_topic, 20000);
    expect_every_id_once(stream_topic, 20000);
    expect_drained();
}

TEST_F(RedisClusterTest, SlotsMigratedMidRunLoseNothing) {
    const int total = 60000, later = 1000;
    push(cluster.client_for(list), list, 0, total);
    xadd(cluster.client_for(stream), stream, 0, total);
    // Follow mode: the run outlives the move and must read what arrives after it from the new
    // owner.
    auto run = std::make_unique<Process>(std::vector<std::string>{KBRIDGE_BINARY, "run", config()},
                                         dir.path().string(), env());
    RedisClient& l = cluster.client_for(list);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (l.command({"LLEN", list})->integer > total * 8 / 10) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << run->err();
        std::this_thread::sleep_for(2ms);
    }
    // Both slots go to the node that served neither, key by key, while the run reads them. The
    // list's slot is held half-migrated first: each move (its keys split between existing and
    // new ones) is answered TRYAGAIN until the keys are over, and runs after the reads sent
    // with it.
    cluster.migrate_slot_of(list, cluster.ports()[0], 20, 1000);
    cluster.migrate_slot_of(stream, cluster.ports()[0], 20);
    ASSERT_EQ(cluster.owner_port(list), cluster.ports()[0]);
    ASSERT_EQ(cluster.owner_port(stream), cluster.ports()[0]);
    push(cluster.client_for(list), list, total, total + later);
    xadd(cluster.client_for(stream), stream, total, total + later);
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (message_count(kafka.bootstraps(), list_topic) < total + later ||
           message_count(kafka.bootstraps(), stream_topic) < total + later) {
        ASSERT_LT(std::chrono::steady_clock::now(), until) << run->err();
        ASSERT_TRUE(run->running()) << run->err();
        std::this_thread::sleep_for(100ms);
    }
    run->signal(SIGTERM);
    ASSERT_EQ(run->wait(15s), 0) << run->err();
    // Both sources went over to the new owner (not merely redirected command by command).
    for (const std::string& key : {list, stream})
        EXPECT_NE(run->err().find("slot " + std::to_string(cluster_slot(key)) + " moved to"),
                  std::string::npos)
            << run->err();
    const auto ids = ids_in(kafka.bootstraps(), list_topic);
    for (int id = 0; id < total + later; ++id)
        ASSERT_TRUE(ids.count(id)) << "list id " << id << " lost";
    const auto stream_ids = ids_in(kafka.bootstraps(), stream_topic);
    for (int id = 0; id < total + later; ++id)
        ASSERT_TRUE(stream_ids.count(id)) << "stream id " << id << " lost";
    expect_drained();
}

TEST_F(RedisClusterTest, TheRedisSinkWritesKeysOfEveryNode) {
    std::string lines;
    for (int i = 0; i < 500; ++i)
        lines += "{\"id\":" + std::to_string(i) + ",\"name\":\"n" + std::to_string(i) + "\"}\n";
    const std::string input = dir.file("input.jsonl");
    write_file(input, lines);
    const std::string path = dir.file("sink.yaml");
    const std::string prefix = random_name("user");
    write_file(path,
               "version: 1\npipelines:\n  - name: users\n    source: {type: stdin}\n"
               "    sink: {type: redis, url: \"" +
                   cluster.url() + "\", command: set, key: \"" + prefix +
                   "{id}\", value: \"{name}\"}\n");
    Process run({KBRIDGE_BINARY, "run", path, "--once"}, dir.path().string(), {}, input);
    ASSERT_EQ(run.wait(), 0) << run.err();
    std::set<int> nodes;
    for (int i = 0; i < 500; ++i) {
        const std::string key = prefix + std::to_string(i);
        nodes.insert(cluster.owner_port(key));
        const RedisReply value = cluster.client_for(key).command({"GET", key});
        ASSERT_EQ(value->type, REDIS_REPLY_STRING) << key;
        EXPECT_EQ(std::string(value->str, value->len), "n" + std::to_string(i));
    }
    EXPECT_EQ(nodes.size(), 3u) << "the keys should have spanned every node";
}

// An earlier kbridge named the in-flight list jobs:inflight:<consumer>, without a hash tag. What
// it left there is sent again by the new one, and the old names are gone after.
TEST(RedisListUpgrade, InFlightListsUnderTheOldNamesAreSentAgain) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string list = random_name("jobs"), topic = random_name("topic");
    const std::string old_in_flight = redis_old_in_flight_key(list, "jobs");
    ASSERT_NE(old_in_flight, redis_in_flight_key(list, "jobs"));
    redis.push(old_in_flight + ":7", make_events(0, 3));
    redis.push(old_in_flight + ":8", make_events(3, 5));
    redis.push(old_in_flight, {old_in_flight + ":7", old_in_flight + ":8"});
    redis.push(list, make_events(5, 10));
    const std::string path = dir.file("p.yaml");
    write_file(path, "version: 1\nkafka: {brokers: \"" + kafka.bootstraps() +
                         "\"}\npipelines:\n  - name: jobs\n    source: {type: redis_list, url: \"" +
                         redis.url() + "\", key: " + list +
                         "}\n    sink: {type: kafka, topic: " + topic + "}\n");
    const RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in(kafka.bootstraps(), topic);
    ASSERT_EQ(ids.size(), 10u);
    for (const auto& [id, seen] : ids) EXPECT_EQ(seen, 1) << id;
    EXPECT_EQ(redis.client().command({"KEYS", "*inflight*"})->elements, 0u);
}

}  // namespace
}  // namespace kbridge::test
