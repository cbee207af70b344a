// Redis stream -> Kafka against a real redis-server and the embedded Kafka cluster. "Nothing
// lost" is checked by counting ids read back with kcat; "nothing left" by the group's pending list.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

std::string random_name(const std::string& prefix) {
    static std::mt19937 rng(std::random_device{}());
    return prefix + std::to_string(rng() % 1000000000);
}

class RedisStream : public ::testing::Test {
  protected:
    TempDir dir;
    RedisServer redis{dir};
    EmbeddedKafka kafka{1};
    std::string stream = random_name("orders_");
    std::string topic = random_name("topic_");
    std::string dlq = random_name("dlq_");

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}};
    }

    // A pipeline reading the events' `payload` field; `source_extra` lines go under source.
    std::string config(const std::string& source_extra = "", bool dead_letter = false) {
        std::string text =
            "version: 1\nkafka:\n  brokers: ${KAFKA_BROKERS}\nredis:\n  url: " + redis.url() +
            "\npipelines:\n  - name: events\n    source:\n      type: "
            "redis_stream\n      streams: [" +
            stream + "]\n      value: payload\n" + source_extra +
            "    sink:\n      type: kafka\n      topic: " + topic + "\n      key: \"{user_id}\"\n";
        if (dead_letter) text += "    dead_letter:\n      type: kafka\n      topic: " + dlq + "\n";
        const std::string path = dir.file(random_name("pipeline_") + ".yaml");
        write_file(path, text);
        return path;
    }

    // XADD of events [from, to) as {payload: <event JSON>}, pipelined.
    void add(int from, int to, RedisClient& client) {
        const auto events = make_events(from, to);
        for (const auto& e : events) client.send({"XADD", stream, "*", "payload", e});
        while (client.replies_pending()) client.reply();
    }
    void add(int from, int to) { add(from, to, redis.client()); }

    // The group's pending entries, of one consumer or of all.
    long long pending(const std::string& consumer = "") {
        std::vector<std::string> args{"XPENDING", stream, "kbridge", "-", "+", "1000000"};
        if (!consumer.empty()) args.push_back(consumer);
        return static_cast<long long>(redis.client().command(args)->elements);
    }

    // Entries the group has handed out so far (Redis 7's entries-read).
    long long entries_read() {
        const auto groups = redis.client().command({"XINFO", "GROUPS", stream});
        if (groups->elements == 0) return 0;
        const redisReply* g = groups->element[0];
        for (size_t i = 0; i + 1 < g->elements; i += 2)
            if (std::string(g->element[i]->str) == "entries-read")
                return g->element[i + 1]->type == REDIS_REPLY_INTEGER ? g->element[i + 1]->integer
                                                                      : 0;
        return 0;
    }

    std::unique_ptr<Process> start(const std::vector<std::string>& args) {
        std::vector<std::string> argv{KBRIDGE_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        return std::make_unique<Process>(argv, dir.path().string(), env());
    }

    std::map<long long, int> ids_in_kafka(const std::string& t) {
        std::map<long long, int> ids;
        for (const auto& m : kcat_consume(kafka.bootstraps(), t)) ++ids[event_id(m.value)];
        return ids;
    }

    void wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting";
            std::this_thread::sleep_for(2ms);
        }
    }
};

TEST_F(RedisStream, KillNineThreeTimesThenEveryEntryIsDeliveredAndNothingPending) {
    const int total = 60000;
    add(0, total);
    const std::string path = config("      batch_size: 200\n");
    long long pending_at_kills = 0;
    for (int kill = 1; kill <= 3; ++kill) {
        auto run = start({"run", path});
        wait_until([&] { return entries_read() >= total * kill / 4; });
        run->signal(SIGKILL);
        ASSERT_EQ(run->wait(), 128 + SIGKILL);
        pending_at_kills += pending();
    }
    ASSERT_GT(pending_at_kills, 0) << "no kill came while entries were in flight";
    const RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    for (int id = 0; id < total; ++id) ASSERT_TRUE(ids.count(id)) << "id " << id << " was lost";
    long long duplicates = 0;
    for (const auto& [id, seen] : ids) duplicates += seen - 1;
    EXPECT_LE(duplicates, pending_at_kills) << "only entries pending at a kill may come twice";
    EXPECT_EQ(pending(), 0) << "every entry delivered must be acknowledged";
}

TEST_F(RedisStream, AStopLeavesEntriesReadAheadPendingUncountedAndTheNextRunSendsThemOnce) {
    const int total = 60000;
    add(0, total);
    // Full batches: after each, the next is read ahead while the sink takes it.
    const std::string path = config("      batch_size: 100\n");
    auto run = start({"run", path});
    wait_until([&] { return entries_read() >= total / 3; });
    run->signal(SIGTERM);
    ASSERT_EQ(run->wait(15s), 0) << run->err();
    EXPECT_NE(run->err().find("read ahead and not sent stay pending"), std::string::npos)
        << run->err();
    // What was sent is acknowledged; what was read ahead is pending, as if never delivered.
    const auto rows =
        redis.client().command({"XPENDING", stream, "kbridge", "-", "+", "1000000", "events"});
    EXPECT_GT(rows->elements, 0u);
    EXPECT_LE(rows->elements, 100u);
    for (size_t i = 0; i < rows->elements; ++i)
        EXPECT_EQ(rows->element[i]->element[3]->integer, 0) << "a delivery was counted";
    const RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total));
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " sent twice";
    EXPECT_EQ(pending(), 0);
}

TEST_F(RedisStream, EntriesOfAKilledConsumerAreClaimedAfterClaimIdle) {
    const int total = 1000;
    add(0, total);
    // Worker b reads everything but cannot deliver (no broker), then dies holding it all.
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_down(kafka.cluster(), broker);
    redis.client().command({"XGROUP", "CREATE", stream, "kbridge", "0"});
    const std::string path = config("      claim_idle: 1s\n");
    auto b = start({"run", path, "--set", "pipelines.events.source.consumer=worker-b", "--set",
                    "pipelines.events.sink.connect_timeout=0"});
    wait_until([&] { return pending("worker-b") == total; });
    b->signal(SIGKILL);
    ASSERT_EQ(b->wait(), 128 + SIGKILL);
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_up(kafka.cluster(), broker);
    add(total, total + 100);  // and some b never saw

    // Worker a, in follow mode, takes them over once they have been idle for claim_idle.
    auto a = start({"run", path, "--set", "pipelines.events.source.consumer=worker-a"});
    wait_until([&] { return pending("worker-b") == 0 && pending() == 0; }, 20s);
    wait_until([&] { return message_count(kafka.bootstraps(), topic) >= total + 100; }, 20s);
    a->signal(SIGTERM);
    ASSERT_EQ(a->wait(15s), 0) << a->err();
    EXPECT_NE(a->err().find("took over 1000 entries"), std::string::npos) << a->err();
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total + 100));
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " sent twice";
}

TEST_F(RedisStream, AnEntryDeliveredTooOftenGoesToTheDeadLetterAndIsAcknowledged) {
    add(0, 10);
    // An earlier consumer `events` read the first three entries three times and never acked.
    redis.client().command({"XGROUP", "CREATE", stream, "kbridge", "0"});
    redis.client().command(
        {"XREADGROUP", "GROUP", "kbridge", "events", "COUNT", "3", "STREAMS", stream, ">"});
    for (int again = 0; again < 2; ++again)
        redis.client().command(
            {"XREADGROUP", "GROUP", "kbridge", "events", "COUNT", "3", "STREAMS", stream, "0"});
    const RunResult r = run_kbridge({"run", config("      max_deliveries: 3\n", true), "--once"},
                                    dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    std::set<long long> dead;
    for (const auto& m : kcat_consume(kafka.bootstraps(), dlq)) {
        dead.insert(event_id(m.value));
        EXPECT_NE(m.headers.find("kbridge.error.reason=max_deliveries"), std::string::npos)
            << m.headers;
        EXPECT_NE(m.headers.find("kbridge.redis.id="), std::string::npos) << m.headers;
    }
    EXPECT_EQ(dead, (std::set<long long>{0, 1, 2}));
    const auto ids = ids_in_kafka(topic);
    EXPECT_EQ(ids.size(), 7u);
    for (int id = 3; id < 10; ++id) EXPECT_TRUE(ids.count(id)) << id;
    EXPECT_EQ(pending(), 0);
}

TEST_F(RedisStream, OnceEndsAtTheLastEntryOfTheStartWhileAWriterKeepsAdding) {
    add(0, 5000);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        RedisClient client(parse_redis_url(redis.url()));
        client.connect();
        for (int next = 1000000; !stop; next += 100) add(next, next + 100, client);
    });
    const RunResult r = run_kbridge({"run", config("      batch_size: 100\n"), "--once"},
                                    dir.path().string(), env());
    stop = true;
    writer.join();
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    for (int id = 0; id < 5000; ++id) ASSERT_TRUE(ids.count(id)) << "id " << id << " was lost";
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " sent twice";
    EXPECT_EQ(pending(), 0);
}

TEST_F(RedisStream, FieldsBecomeAJsonObjectWithTheIdAsHeaderAndTemplate) {
    redis.client().command({"XADD", stream, "1-1", "user_id", "42", "note", "a \"quote\"\n"});
    redis.client().command({"XADD", stream, "1-2", "user_id", "43"});
    const std::string path =
        config("      delete_after_ack: true\n");  // value: payload is overridden below
    const RunResult r =
        run_kbridge({"run", path, "--once", "--set", "pipelines.events.source.value=fields",
                     "--set", "pipelines.events.sink.key='{_id}'"},
                    dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    std::map<std::string, Consumed> by_key;
    for (auto& m : kcat_consume(kafka.bootstraps(), topic)) by_key[m.key] = m;
    ASSERT_EQ(by_key.size(), 2u);
    EXPECT_EQ(by_key["1-1"].value, R"({"user_id":"42","note":"a \"quote\"\n"})");
    EXPECT_EQ(by_key["1-2"].value, R"({"user_id":"43"})");
    EXPECT_NE(by_key["1-1"].headers.find("kbridge.redis.id=1-1"), std::string::npos);
    EXPECT_EQ(redis.client().command({"XLEN", stream})->integer, 0) << "delete_after_ack";
    EXPECT_EQ(pending(), 0);
}

TEST_F(RedisStream, DryRunShowsTheFirstEntriesAndTakesNothing) {
    add(0, 20);
    const RunResult r = run_kbridge({"run", config(), "--dry-run"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find(R"("id":0,)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(R"("id":9,)"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find(R"("id":10,)"), std::string::npos) << "ten records, no more: " << r.out;
    EXPECT_EQ(redis.client().command({"XINFO", "GROUPS", stream})->elements, 0u)
        << "a dry run creates no group";
    EXPECT_LE(message_count(kafka.bootstraps(), topic), 0);
}

TEST_F(RedisStream, FollowModeBlocksForNewEntriesAndStopsPromptlyOnSigterm) {
    auto run = start({"run", config()});
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(run->running()) << run->err();
    add(0, 10);
    wait_until([&] { return message_count(kafka.bootstraps(), topic) == 10; }, 10s);
    run->signal(SIGTERM);
    EXPECT_EQ(run->wait(10s), 0) << run->err();
    EXPECT_EQ(pending(), 0);
}

}  // namespace
}  // namespace kbridge::test
