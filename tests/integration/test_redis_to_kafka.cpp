// Redis list -> Kafka against a real redis-server and the embedded Kafka cluster, read back with
// kcat. "Nothing lost" is checked by counting ids.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "connectors/redis/list_source.h"
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

class RedisToKafka : public ::testing::Test {
  protected:
    TempDir dir;
    RedisServer redis{dir};
    EmbeddedKafka kafka{3};
    std::string list = random_name("events_");
    std::string topic = random_name("topic_");
    std::string dlq = random_name("dlq_");

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}};
    }

    // A pipeline file; `dead_letter` adds a dead-letter topic, `source_extra` lines go under
    // source.
    std::string config(bool dead_letter = false, const std::string& source_extra = "") {
        std::string text =
            "version: 1\nkafka:\n  brokers: ${KAFKA_BROKERS}\nredis:\n  url: " + redis.url() +
            "\npipelines:\n  - name: events\n    source:\n      type: redis_list\n      key: " +
            list + "\n" + source_extra + "    sink:\n      type: kafka\n      topic: " + topic +
            "\n      key: \"{user_id}\"\n";
        if (dead_letter) text += "    dead_letter:\n      type: kafka\n      topic: " + dlq + "\n";
        const std::string path = dir.file(random_name("pipeline_") + ".yaml");
        write_file(path, text);
        return path;
    }

    std::string in_flight(const std::string& consumer = "events") {
        return redis_in_flight_key(list, consumer);
    }

    // The records of every batch the worker's in-flight list names.
    std::vector<std::string> in_flight_records(const std::string& consumer = "events") {
        std::vector<std::string> records;
        for (const auto& batch : redis.lrange(in_flight(consumer)))
            for (auto& r : redis.lrange(batch)) records.push_back(std::move(r));
        return records;
    }

    // Keys the source made and should have removed by now.
    size_t leftover_keys() {
        return redis.client().command({"KEYS", "*" + list + "*:inflight:*"})->elements;
    }

    std::unique_ptr<Process> start(const std::vector<std::string>& args) {
        std::vector<std::string> argv{KBRIDGE_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        return std::make_unique<Process>(argv, dir.path().string(), env());
    }

    // Ids as read back by kcat: id -> times seen.
    std::map<long long, int> ids_in_kafka(const std::string& t) {
        std::map<long long, int> ids;
        for (const auto& m : kcat_consume(kafka.bootstraps(), t)) ++ids[event_id(m.value)];
        return ids;
    }

    void wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting";
            std::this_thread::sleep_for(1ms);
        }
    }
};

TEST_F(RedisToKafka, DeliversEveryRecordByteIdenticalWithKeys) {
    const auto events = make_events(0, 100000);
    redis.push(list, events);
    const RunResult r = run_kbridge({"run", config(), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("read 100000, delivered 100000, dead-lettered 0"), std::string::npos)
        << r.err;

    const auto consumed = kcat_consume(kafka.bootstraps(), topic);
    ASSERT_EQ(consumed.size(), events.size());
    std::multiset<std::string> sent(events.begin(), events.end()), arrived;
    for (const auto& m : consumed) {
        arrived.insert(m.value);
        const auto at = m.value.find("\"user_id\":");
        ASSERT_NE(at, std::string::npos);
        EXPECT_EQ(m.key, std::to_string(std::atoll(m.value.c_str() + at + 10))) << m.value;
    }
    EXPECT_TRUE(sent == arrived) << "values differ from what was pushed";
    EXPECT_EQ(redis.llen(list), 0);
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, SigkillMidRunThenRerunLosesNothing) {
    const int total = 100000;
    redis.push(list, make_events(0, total));
    auto run = start({"run", config(false, "      batch_size: 500\n"), "--once"});
    wait_until([&] { return redis.llen(list) < total * 7 / 10; });
    run->signal(SIGKILL);
    ASSERT_EQ(run->wait(), 128 + SIGKILL);
    const long long in_flight_at_kill = in_flight_records().size();
    ASSERT_GT(redis.llen(list) + in_flight_at_kill, 0) << "the kill came too late to test anything";

    const RunResult r = run_kbridge({"run", config(false, "      batch_size: 500\n"), "--once"},
                                    dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    for (int id = 0; id < total; ++id) ASSERT_TRUE(ids.count(id)) << "id " << id << " was lost";
    long long duplicates = 0;
    for (const auto& [id, seen] : ids) duplicates += seen - 1;
    EXPECT_LE(duplicates, in_flight_at_kill)
        << "duplicates may only come from the batches in flight at the kill";
    EXPECT_EQ(redis.llen(list), 0);
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, ResendsWhatAnEarlierRunLeftInFlight) {
    // Two batches an earlier run took but never saw acknowledged, and the name of one whose
    // records it had deleted when it died.
    redis.push(redis_batch_key(list, "events", 3), make_events(0, 3));
    redis.push(redis_batch_key(list, "events", 4), make_events(3, 5));
    redis.push(in_flight(), {redis_batch_key(list, "events", 2), redis_batch_key(list, "events", 3),
                             redis_batch_key(list, "events", 4)});
    redis.push(list, make_events(5, 10));
    const RunResult r = run_kbridge({"run", config(), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), 10u);
    for (const auto& [id, seen] : ids) EXPECT_EQ(seen, 1) << id;
    EXPECT_EQ(leftover_keys(), 0u);
}

// The brokers take down with them the answers to the produce requests they had appended, so
// librdkafka sends those again. A real broker drops the repeats of an idempotent producer; the
// mock cluster checks sequences only of transactional ones (rdkafka_mock.c), so here a repeat can
// show up in the topic. What this test holds kbridge to: nothing lost, and nothing read from
// Redis or sent twice by kbridge itself.
TEST_F(RedisToKafka, AllBrokersDownForSecondsLosesNothingAndResendsNothing) {
    const int total = 100000;
    redis.push(list, make_events(0, total));
    auto run = start({"run", config(false, "      batch_size: 200\n"), "--once"});
    wait_until([&] { return redis.llen(list) < total * 9 / 10; });
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_down(kafka.cluster(), broker);
    std::this_thread::sleep_for(3s);
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_up(kafka.cluster(), broker);
    ASSERT_EQ(run->wait(), 0) << run->err();
    EXPECT_NE(run->err().find("read 100000, delivered 100000, dead-lettered 0"), std::string::npos)
        << run->err();
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total));
    EXPECT_EQ(redis.llen(list), 0);
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, RetriableProduceErrorsLoseAndDuplicateNothing) {
    const int total = 20000;
    redis.push(list, make_events(0, total));
    kafka.create_topic(topic, 4);
    rd_kafka_mock_push_request_errors(
        kafka.cluster(), 0 /* Produce */, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    const RunResult r = run_kbridge({"run", config(), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total));
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " duplicated";
    EXPECT_EQ(message_count(kafka.bootstraps(), topic), total);
}

// The mock cluster drops a retried batch only for transactional producers, so what idempotence
// buys (no duplicate from the producer's own retries) cannot be seen on it. Its first request can:
// an idempotent producer asks for a producer id before it sends anything. Refused once, librdkafka
// says so and asks again.
TEST_F(RedisToKafka, TheProducerIsIdempotent) {
    redis.push(list, make_events(0, 100));
    rd_kafka_mock_push_request_errors(kafka.cluster(), 22 /* InitProducerId */, 1,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    const RunResult r = run_kbridge({"run", config(), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("Failed to acquire idempotence PID"), std::string::npos) << r.err;
    EXPECT_EQ(ids_in_kafka(topic).size(), 100u);
}

TEST_F(RedisToKafka, AFailedDeliveryIsNeverSwallowed) {
    const int total = 3000;
    redis.push(list, make_events(0, total));
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_down(kafka.cluster(), broker);
    // No broker check at start (connect_timeout 0): the delivery reports must say it.
    const RunResult r =
        run_kbridge({"run", config(), "--once", "--set", "kafka.properties.message.timeout.ms=1500",
                     "--set", "pipelines.events.sink.connect_timeout=0"},
                    dir.path().string(), env());
    for (int broker = 1; broker <= kafka.broker_count(); ++broker)
        rd_kafka_mock_broker_set_up(kafka.cluster(), broker);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("Local: Message timed out"), std::string::npos) << r.err;
    std::set<long long> in_redis;
    for (const auto& v : in_flight_records()) in_redis.insert(event_id(v));
    for (const auto& v : redis.lrange(list)) in_redis.insert(event_id(v));
    EXPECT_EQ(in_redis.size(), static_cast<size_t>(total)) << "every record must still be in Redis";
}

TEST_F(RedisToKafka, ARecordWhoseTopicRendersInvalidGoesToTheDeadLetterAsInvalidTopic) {
    const std::string good = random_name("routed_");
    std::vector<std::string> events;
    for (int i = 0; i < 50; ++i)
        events.push_back("{\"id\":" + std::to_string(i) + ",\"user_id\":1,\"dest\":\"" + good +
                         "\"}");
    events.insert(events.begin() + 10, R"({"id":900,"user_id":1,"dest":"bad topic!"})");
    events.insert(events.begin() + 20, R"({"id":901,"user_id":1,"dest":".."})");
    events.insert(events.begin() + 30,
                  R"({"id":902,"user_id":1,"dest":")" + std::string(300, 'x') + "\"}");
    redis.push(list, events);
    const RunResult r = run_kbridge(
        {"run", config(true), "--once", "--set", "pipelines.events.sink.topic='{dest}'"},
        dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    std::map<long long, int> ids = ids_in_kafka(good);
    EXPECT_EQ(ids.size(), 50u);
    std::set<long long> dead_ids;
    for (const auto& m : kcat_consume(kafka.bootstraps(), dlq)) {
        dead_ids.insert(event_id(m.value));
        EXPECT_NE(m.headers.find("kbridge.error.reason=invalid_topic"), std::string::npos)
            << m.headers;
    }
    EXPECT_EQ(dead_ids, (std::set<long long>{900, 901, 902}));
    EXPECT_EQ(redis.llen(list), 0);
}

TEST_F(RedisToKafka, UndecodableAndUntemplatableRecordsGoToTheDeadLetterTopic) {
    auto events = make_events(0, 1000);
    events.insert(events.begin() + 300, "{not json");
    events.insert(events.begin() + 600, R"({"id":999999,"action":"view"})");  // no user_id
    redis.push(list, events);
    const RunResult r = run_kbridge({"run", config(true), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(message_count(kafka.bootstraps(), topic), 1000);
    const auto dead = kcat_consume(kafka.bootstraps(), dlq);
    ASSERT_EQ(dead.size(), 2u);
    std::map<std::string, std::string> by_value;
    for (const auto& m : dead) by_value[m.value] = m.headers;
    ASSERT_TRUE(by_value.count("{not json"));
    EXPECT_NE(by_value["{not json"].find("kbridge.error.reason=invalid_json"), std::string::npos)
        << by_value["{not json"];
    const std::string missing = by_value[R"({"id":999999,"action":"view"})"];
    EXPECT_NE(missing.find("kbridge.error.reason=template"), std::string::npos) << missing;
    EXPECT_NE(missing.find("missing field 'user_id'"), std::string::npos) << missing;
    EXPECT_NE(missing.find("kbridge.pipeline=events"), std::string::npos) << missing;
    EXPECT_NE(missing.find("kbridge.source=redis_list:" + list), std::string::npos) << missing;
    EXPECT_EQ(redis.llen(list), 0);
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, WithoutDeadLetterABadRecordStopsTheRunAndStaysInRedis) {
    auto events = make_events(0, 5000);
    events.insert(events.begin() + 2500, "{not json");
    redis.push(list, events);
    const RunResult r = run_kbridge({"run", config(), "--once"}, dir.path().string(), env());
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("invalid JSON"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("{not json"), std::string::npos)
        << "the error should show the record: " << r.err;

    std::vector<std::string> left = in_flight_records();
    for (auto& v : redis.lrange(list)) left.push_back(v);
    EXPECT_NE(std::find(left.begin(), left.end(), "{not json"), left.end())
        << "the bad record left Redis";
    std::set<long long> seen;
    for (const auto& v : left) seen.insert(event_id(v));
    for (const auto& [id, n] : ids_in_kafka(topic)) seen.insert(id);
    for (int id = 0; id < 5000; ++id)
        ASSERT_TRUE(seen.count(id)) << "id " << id << " is neither in Redis nor in Kafka";
}

TEST_F(RedisToKafka, TooLargeForTheBrokerGoesToTheDeadLetterTopic) {
    redis.push(list, make_events(0, 1));
    kafka.create_topic(topic, 1);
    rd_kafka_mock_push_request_errors(kafka.cluster(), 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    const RunResult r = run_kbridge({"run", config(true), "--once"}, dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto dead = kcat_consume(kafka.bootstraps(), dlq);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, make_events(0, 1)[0]);
    EXPECT_NE(dead[0].headers.find("kbridge.error.reason=rejected"), std::string::npos)
        << dead[0].headers;
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, SigtermInFollowModeDeliversWhatIsInFlightAndExitsZero) {
    const int total = 100000;
    redis.push(list, make_events(0, total));
    const std::string path = config(false, "      batch_size: 100\n");
    auto run = start({"run", path});
    wait_until([&] { return redis.llen(list) < total / 2; });
    run->signal(SIGTERM);
    ASSERT_EQ(run->wait(10s), 0) << run->err();
    EXPECT_EQ(leftover_keys(), 0u)
        << "a clean stop acknowledges what it delivered and gives back what it did not send";
    const long long left = redis.llen(list);
    EXPECT_GT(left, 0) << "the stop came too late to test anything";
    EXPECT_EQ(message_count(kafka.bootstraps(), topic) + left, total);

    ASSERT_EQ(run_kbridge({"run", path, "--once"}, dir.path().string(), env()).code, 0);
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total));
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " duplicated";
}

TEST_F(RedisToKafka, FollowModeWaitsForNewItems) {
    auto run = start({"run", config()});
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(run->running()) << run->err();
    redis.push(list, make_events(0, 10));
    wait_until([&] { return message_count(kafka.bootstraps(), topic) == 10; }, 10s);
    redis.push(list, make_events(10, 15));
    wait_until([&] { return message_count(kafka.bootstraps(), topic) == 15; }, 10s);
    run->signal(SIGINT);
    EXPECT_EQ(run->wait(10s), 0) << run->err();
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, PopRightIsFifoForLpushWriters) {
    kafka.create_topic(topic, 1);
    for (const auto& e : make_events(0, 50)) redis.client().command({"LPUSH", list, e});
    const RunResult r =
        run_kbridge({"run", config(false, "      pop: right\n      batch_size: 7\n"), "--once"},
                    dir.path().string(), env());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto consumed = kcat_consume(kafka.bootstraps(), topic);
    ASSERT_EQ(consumed.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(event_id(consumed[i].value), i);
}

TEST_F(RedisToKafka, TwoWorkersWithTheirOwnConsumerNamesShareOneList) {
    const int total = 100000;
    redis.push(list, make_events(0, total));
    const std::string path = config();
    auto a = start({"run", path, "--once", "--set", "pipelines.events.source.consumer=worker-a"});
    auto b = start({"run", path, "--once", "--set", "pipelines.events.source.consumer=worker-b"});
    ASSERT_EQ(a->wait(), 0) << a->err();
    ASSERT_EQ(b->wait(), 0) << b->err();
    const auto ids = ids_in_kafka(topic);
    ASSERT_EQ(ids.size(), static_cast<size_t>(total));
    for (const auto& [id, seen] : ids) ASSERT_EQ(seen, 1) << "id " << id << " duplicated";
    EXPECT_EQ(leftover_keys(), 0u);
}

TEST_F(RedisToKafka, ConfigErrorsExitTwoAndNameThePlace) {
    const std::string path = dir.file("bad.yaml");
    write_file(path,
               "version: 1\npipelines:\n  - name: x\n    source: {type: redis_list, kye: a}\n    "
               "sink: {type: kafka, topic: t}\n");
    const RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string(), env());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find(
                  "bad.yaml:4:32: pipelines[0].source: unknown option 'kye' (did you mean 'key'?)"),
              std::string::npos)
        << r.err;
}

TEST_F(RedisToKafka, UnreachableRedisFailsWithExitOneNamingIt) {
    const std::string path = dir.file("down.yaml");
    write_file(path,
               "version: 1\nkafka: {brokers: \"${KAFKA_BROKERS}\"}\nredis: {url: "
               "\"redis://:hunter2@127.0.0.1:" +
                   std::to_string(free_port()) +
                   "/0\"}\npipelines:\n  - name: x\n    source: {type: redis_list, key: a}\n    "
                   "sink: {type: kafka, topic: t}\n");
    const RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string(), env());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("redis://***@127.0.0.1"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << "a password was printed: " << r.err;
}

}  // namespace
}  // namespace kbridge::test
