// SIGHUP reloads the pipeline file: a valid edit stops the running pipelines as SIGTERM would
// (everything in flight delivered and acknowledged) and starts the new definitions; an invalid
// one is logged and changes nothing. Neither ends the process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/notify_socket.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

void write_pipeline(const std::string& path, const std::string& topic, int batch_size) {
    write_file(path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: '${REDIS_URL}'}\n"
               "pipelines:\n  - name: jobs\n    source: {type: redis_list, key: jobs, "
               "batch_size: " +
                   std::to_string(batch_size) + "}\n    sink: {type: kafka, topic: " + topic +
                   "}\n");
}

// How often each event id arrived in `topics`.
std::map<long long, int> ids_in(const std::string& bootstraps,
                                const std::vector<std::string>& topics) {
    std::map<long long, int> seen;
    for (const auto& topic : topics)
        for (const auto& m : kcat_consume(bootstraps, topic)) ++seen[event_id(m.value)];
    return seen;
}

// Waits up to 20 s for `done`.
template <typename F>
bool eventually(F done) {
    for (int i = 0; i < 500; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(40ms);
    }
    return false;
}

size_t occurrences(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

TEST(Reload, AValidEditTakesOverWithNothingLostAndAnInvalidOneChangesNothing) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = dir.file("p.yaml");
    write_pipeline(path, "first", 500);
    NotifySocket systemd(dir.file("notify.sock"));
    Process run({KBRIDGE_BINARY, "run", path}, dir.path().string(),
                {{"KAFKA_BROKERS", kafka.bootstraps()},
                 {"REDIS_URL", redis.url()},
                 {"NOTIFY_SOCKET", dir.file("notify.sock")}});
    redis.push("jobs", make_events(0, 2000));
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "first") == 2000; }))
        << run.err();

    // A backlog in flight while the reload stops the pipeline: all of it arrives, in one topic
    // or the other, exactly once.
    redis.push("jobs", make_events(2000, 40000));
    write_pipeline(path, "second", 50);
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_for_stderr(run, "reload: 1 pipeline started", 20s)) << run.err();
    EXPECT_TRUE(run.running());
    // systemd's reload protocol: RELOADING=1 (with the monotonic clock), then READY=1 again.
    ASSERT_TRUE(systemd.wait_for("RELOADING=1\nMONOTONIC_USEC=", 5s)) << systemd.received();
    const std::string told = systemd.received();
    EXPECT_NE(told.find("READY=1", told.find("RELOADING=1")), std::string::npos) << told;
    redis.push("jobs", make_events(40000, 41000));
    ASSERT_TRUE(eventually([&] {
        return message_count(kafka.bootstraps(), "first") +
                   message_count(kafka.bootstraps(), "second") ==
               41000;
    })) << run.err();
    EXPECT_GT(message_count(kafka.bootstraps(), "second"), 0);

    // Invalid: an option the source does not have. Logged; the running pipeline goes on.
    write_file(path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
               "'${REDIS_URL}'}\npipelines:\n  - name: jobs\n    source: {type: "
               "redis_list, key: jobs, bogus: 1}\n    sink: {type: kafka, topic: third}\n");
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_for_stderr(run, "the running pipelines go on unchanged", 20s)) << run.err();
    EXPECT_NE(run.err().find("bogus"), std::string::npos) << run.err();
    redis.push("jobs", make_events(41000, 42000));
    ASSERT_TRUE(eventually([&] {
        return message_count(kafka.bootstraps(), "second") ==
               42000 - message_count(kafka.bootstraps(), "first");
    })) << run.err();
    EXPECT_TRUE(run.running());
    EXPECT_EQ(occurrences(run.err(), "reload: 1 pipeline started"), 1u) << run.err();

    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << run.err();
    const auto seen = ids_in(kafka.bootstraps(), {"first", "second"});
    ASSERT_EQ(seen.size(), 42000u);
    EXPECT_EQ(seen.begin()->first, 0);
    EXPECT_EQ(seen.rbegin()->first, 41999);
    for (const auto& [id, times] : seen) ASSERT_EQ(times, 1) << "id " << id;
    EXPECT_EQ(message_count(kafka.bootstraps(), "third"), 0);
    EXPECT_EQ(redis.llen("jobs"), 0);
    EXPECT_EQ(redis.lrange("jobs:inflight:jobs"), std::vector<std::string>{});
    // One summary at the end, counting across the reload.
    EXPECT_NE(run.err().find("jobs: read 42000, delivered 42000, dead-lettered 0"),
              std::string::npos)
        << run.err();
}

// A consumer group member leaves on the reload's stop (committing what was delivered) and the
// new one starts from the group's offsets: no record skipped, none twice.
TEST(Reload, AKafkaSourceHandsOverThroughItsGroupsCommittedOffsets) {
    TempDir dir;
    EmbeddedKafka kafka(1);
    kafka.create_topic("in", 2);
    const std::string path = dir.file("p.yaml");
    auto pipeline = [&](const std::string& out) {
        write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
                             "'}\npipelines:\n  - name: relay\n    source: {type: kafka, topics: "
                             "[in], properties: {session.timeout.ms: '6000'}}\n    sink: {type: "
                             "kafka, topic: " +
                             out + "}\n");
    };
    pipeline("out1");
    Process run({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state")},
                dir.path().string());
    kcat_produce(kafka.bootstraps(), "in", make_events(0, 3000), dir.path().string());
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "out1") > 0; }))
        << run.err();
    pipeline("out2");
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_for_stderr(run, "reload: 1 pipeline started", 20s)) << run.err();
    kcat_produce(kafka.bootstraps(), "in", make_events(3000, 4000), dir.path().string());
    ASSERT_TRUE(eventually([&] {
        return message_count(kafka.bootstraps(), "out1") +
                   message_count(kafka.bootstraps(), "out2") ==
               4000;
    })) << run.err();
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << run.err();
    const auto seen = ids_in(kafka.bootstraps(), {"out1", "out2"});
    ASSERT_EQ(seen.size(), 4000u);
    for (const auto& [id, times] : seen) ASSERT_EQ(times, 1) << "id " << id;
    EXPECT_GT(message_count(kafka.bootstraps(), "out2"), 0);
    EXPECT_NE(run.err().find("relay: read 4000, delivered 4000"), std::string::npos) << run.err();
}

TEST(Reload, ASighupWithThePipelineFileGoneChangesNothing) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = dir.file("p.yaml");
    write_pipeline(path, "out", 100);
    const std::map<std::string, std::string> env{{"KAFKA_BROKERS", kafka.bootstraps()},
                                                 {"REDIS_URL", redis.url()}};
    Process run({KBRIDGE_BINARY, "run", path}, dir.path().string(), env);
    redis.push("jobs", make_events(0, 100));
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "out") == 100; }))
        << run.err();
    std::remove(path.c_str());
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_for_stderr(run, "the running pipelines go on unchanged", 20s)) << run.err();
    EXPECT_NE(run.err().find(path), std::string::npos) << run.err();
    redis.push("jobs", make_events(100, 200));
    EXPECT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "out") == 200; }))
        << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_NE(run.err().find("jobs: read 200, delivered 200"), std::string::npos) << run.err();
}

}  // namespace
}  // namespace kbridge::test
