// Operations: systemd's notify protocol (with a socket of our own standing in for systemd), the
// metrics file and the JSON summary.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/notify_socket.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;

// Pipeline `name` from the Redis list "jobs" to the Kafka topic "jobs"; `source` and `sink` add
// options to their blocks. Returns the config's path.
std::string jobs_pipeline(const TempDir& dir, const std::string& name,
                          const std::string& source = "", const std::string& sink = "") {
    const std::string path = dir.file("p.yaml");
    write_file(path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
               "'${REDIS_URL}'}\npipelines:\n"
               "  - name: " +
                   name + "\n    source: {type: redis_list, key: jobs" + source +
                   "}\n    sink: {type: kafka, topic: jobs" + sink + "}\n");
    return path;
}

std::map<std::string, std::string> jobs_env(const EmbeddedKafka& kafka, const RedisServer& redis) {
    return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"REDIS_URL", redis.url()}};
}

// Asks `done` every 40 ms for up to 20 s.
bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 500; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(40ms);
    }
    return false;
}

TEST(Operations, TellsSystemdReadyStatusStoppingAndWritesMetricsAndStatsAtExit) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = jobs_pipeline(dir, "follow");
    NotifySocket systemd(dir.file("notify.sock"));
    const std::string metrics = dir.file("kbridge.prom"), stats = dir.file("stats.json");
    auto env = jobs_env(kafka, redis);
    env["NOTIFY_SOCKET"] = dir.file("notify.sock");
    Process run({KBRIDGE_BINARY, "run", path, "--metrics-file", metrics, "--stats-json", stats},
                dir.path().string(), env);
    ASSERT_TRUE(systemd.wait_for("READY=1", 10s)) << run.err();
    redis.push("jobs", make_events(0, 500));
    ASSERT_TRUE(systemd.wait_for("follow: 500 written", 10s)) << systemd.received() << run.err();
    const auto stopped_at = std::chrono::steady_clock::now();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 5s);
    EXPECT_TRUE(systemd.wait_for("STOPPING=1", 1s)) << systemd.received();
    EXPECT_EQ(message_count(kafka.bootstraps(), "jobs"), 500);

    const std::string text = read_file(metrics);
    EXPECT_NE(text.find("# TYPE kbridge_records_written_total counter"), std::string::npos) << text;
    EXPECT_NE(text.find("kbridge_records_written_total{pipeline=\"follow\",source=\"redis_list\","
                        "sink=\"kafka\"} 500\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("kbridge_records_read_total{pipeline=\"follow\",source=\"redis_list\",sink="
                        "\"kafka\"} 500\n"),
              std::string::npos)
        << text;
    // Read back by Prometheus's own parser: every batch acknowledged is in the latency histogram,
    // and the drained list leaves no lag.
    const std::string families = shell(
        "/usr/bin/python3 -c 'import sys\n"
        "from prometheus_client.parser import text_string_to_metric_families as parse\n"
        "for f in parse(open(sys.argv[1]).read()):\n"
        "  for s in f.samples:\n"
        "    if s.name in (\"kbridge_batch_latency_seconds_count\", "
        "\"kbridge_source_lag_records\",\n"
        "                  \"kbridge_records_retried_total\") or s.labels.get(\"le\") == "
        "\"+Inf\":\n"
        "      print(s.name, int(s.value))' " +
        metrics);
    EXPECT_NE(families.find("kbridge_records_retried_total 0\n"), std::string::npos) << families;
    EXPECT_NE(families.find("kbridge_source_lag_records 0\n"), std::string::npos) << families;
    const auto count_at = families.find("kbridge_batch_latency_seconds_count ");
    ASSERT_NE(count_at, std::string::npos) << families;
    const std::string count =
        families.substr(count_at + 36, families.find('\n', count_at) - count_at - 36);
    EXPECT_GT(std::stoi(count), 0) << families;
    EXPECT_NE(families.find("kbridge_batch_latency_seconds_bucket " + count + "\n"),
              std::string::npos)
        << families;
    const std::string parsed = shell(
        "/usr/bin/python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))[\"pipelines\"][0];"
        " print(p[\"name\"], p[\"written\"], p[\"exit_code\"])' " +
        stats);
    EXPECT_EQ(parsed, "follow 500 0\n");
}

TEST(Operations, AOnceRunAgainstADownEndpointFailsFastNamingIt) {
    TempDir dir;
    RedisServer redis(dir);
    const std::string down = "127.0.0.1:" + std::to_string(free_port());
    const std::string path = dir.file("p.yaml");
    auto run = [&](const std::string& redis_url, const std::string& brokers) {
        write_file(path,
                   "version: 1\nkafka: {brokers: '" + brokers + "'}\nredis: {url: '" + redis_url +
                       "'}\npipelines:\n  - name: p\n    source: {type: redis_list, key: jobs}\n"
                       "    sink: {type: kafka, topic: jobs, connect_timeout: 2s}\n");
        const auto started = std::chrono::steady_clock::now();
        RunResult r = run_kbridge({"run", path, "--once"}, dir.path().string());
        EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
        return r;
    };
    RunResult r = run("redis://:secret@" + down + "/0", down);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("redis redis://***@" + down + "/0: cannot connect"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("secret"), std::string::npos) << r.err;
    redis.push("jobs", make_events(0, 10));
    r = run(redis.url(), down);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("kafka brokers " + down + " unreachable for 2000 ms"), std::string::npos)
        << r.err;
    EXPECT_EQ(redis.llen("jobs"), 10);
}

TEST(Operations, CheckConnectsToEveryEndpointAndNamesWhatIsMissing) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    kafka.create_topic("in", 2);
    const std::string down = "redis://127.0.0.1:" + std::to_string(free_port()) + "/0";
    const std::string path = dir.file("p.yaml");
    write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\nredis: {url: '" +
                         redis.url() +
                         "'}\npipelines:\n"
                         "  - name: up\n    source: {type: redis_list, key: jobs}\n    sink: "
                         "{type: kafka, topic: out}\n"
                         "  - name: cache\n    source: {type: kafka, topics: [in]}\n    sink: "
                         "{type: redis, url: '" +
                         down +
                         "'}\n"
                         "  - name: lost\n    source: {type: stdin}\n    sink: {type: kafka, "
                         "topic: out, brokers: '127.0.0.1:" +
                         std::to_string(free_port()) + "', connect_timeout: 1s}\n");
    const RunResult r = run_kbridge({"check", path}, dir.path().string());
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("ok    up: source redis_list:jobs\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ok    up: sink kafka:out\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ok    cache: source kafka:in\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL  cache: sink redis:{_key}: redis " + down + ": cannot connect"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("ok    lost: source stdin\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL  lost: sink kafka:out: kafka brokers 127.0.0.1:"), std::string::npos)
        << r.out;
    EXPECT_EQ(redis.llen("jobs"), 0);
}

std::string scrape(int port, const std::string& path) {
    return shell(
        "/usr/bin/python3 -c 'import sys, urllib.request, urllib.error\n"
        "try:\n  r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); "
        "print(r.read().decode(), end=\"\")\n"
        "except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode(), end=\"\")\n"
        "except Exception:\n  print(\"down\")' "
        "http://127.0.0.1:" +
        std::to_string(port) + path);
}

TEST(Operations, MetricsScrapedMidRunShowGrowingCounters) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = jobs_pipeline(dir, "live");
    const int port = free_port();
    Process run({KBRIDGE_BINARY, "run", path, "--metrics-port", std::to_string(port)},
                dir.path().string(), jobs_env(kafka, redis));
    auto written = [&](const std::string& count) {
        const std::string wanted =
            "kbridge_records_written_total{pipeline=\"live\",source=\"redis_list\",sink=\"kafka\"}"
            " " +
            count + "\n";
        return eventually(
            [&] { return scrape(port, "/metrics").find(wanted) != std::string::npos; });
    };
    std::string health;
    eventually([&] {
        health = scrape(port, "/health");
        return health.rfind("200\n", 0) == 0;
    });
    EXPECT_EQ(health, "200\nlive connected\n") << run.err();
    ASSERT_TRUE(written("0")) << run.err();
    redis.push("jobs", make_events(0, 300));
    EXPECT_TRUE(written("300")) << scrape(port, "/metrics");
    redis.push("jobs", make_events(300, 1000));
    EXPECT_TRUE(written("1000")) << scrape(port, "/metrics");
    EXPECT_NE(scrape(port, "/metrics")
                  .find("kbridge_records_read_total{pipeline=\"live\",source=\"redis_list\",sink="
                        "\"kafka\"} 1000\n"),
              std::string::npos);
    EXPECT_EQ(scrape(port, "/nothing").substr(0, 4), "404\n");
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// With every broker down, the run stops taking from the list once its in-flight limit (50,000
// records) is reached: the list length it last saw is the lag, until the brokers come back.
TEST(Operations, SourceLagShowsWhatWaitsWhileTheBrokersAreDown) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = jobs_pipeline(dir, "stuck", "", ", connect_timeout: 0");
    redis.push("jobs", make_events(0, 80000));
    rd_kafka_mock_broker_set_down(kafka.cluster(), 1);
    const int port = free_port();
    Process run({KBRIDGE_BINARY, "run", path, "--metrics-port", std::to_string(port)},
                dir.path().string(), jobs_env(kafka, redis));
    auto lag = [&]() -> long {
        const std::string text = scrape(port, "/metrics");
        const std::string name =
            "kbridge_source_lag_records{pipeline=\"stuck\",source=\"redis_list\",sink=\"kafka\"} ";
        const auto at = text.find(name);
        return at == std::string::npos ? -1 : std::stol(text.substr(at + name.size()));
    };
    // Settled: the in-flight limit is reached and the list has not shrunk for a second (a slow
    // build, under the sanitizers, may pause longer than one scrape between moves). The lag is
    // the length the last move saw; a move sent ahead may have taken one more batch since.
    long length = -1;
    for (int i = 0, unchanged = 0; i < 150 && unchanged < 5; ++i) {
        std::this_thread::sleep_for(200ms);
        const long now = redis.llen("jobs");
        unchanged = now == length && lag() > 0 ? unchanged + 1 : 0;
        length = now;
    }
    const long seen = lag();
    EXPECT_GT(seen, 0) << run.err();
    EXPECT_LE(seen, 30000) << run.err();
    EXPECT_LE(redis.llen("jobs"), seen);
    EXPECT_GE(redis.llen("jobs"), seen - 1000);
    rd_kafka_mock_broker_set_up(kafka.cluster(), 1);
    eventually([&] { return lag() == 0; });
    EXPECT_EQ(lag(), 0) << scrape(port, "/metrics");
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(message_count(kafka.bootstraps(), "jobs"), 80000);
}

// Follow mode outlives a Redis outage: it says so in the log and the metrics, connects again
// with backoff, and nothing pushed before, during or after the outage is lost.
TEST(Operations, FollowModeRetriesAnUnreachableRedisAndLosesNothing) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::string path = jobs_pipeline(dir, "outage", ", batch_size: 100");
    const int port = free_port();
    Process run({KBRIDGE_BINARY, "run", path, "--metrics-port", std::to_string(port)},
                dir.path().string(), jobs_env(kafka, redis));
    auto metric = [&](const std::string& sample) {
        return scrape(port, "/metrics").find(sample + "\n") != std::string::npos;
    };
    redis.push("jobs", make_events(0, 1000));
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "jobs") >= 1000; }))
        << run.err();

    redis.stop();
    EXPECT_TRUE(eventually([&] {
        return metric(
            "kbridge_reconnects_total{pipeline=\"outage\",source=\"redis_list\",sink=\"kafka\"} 2");
    })) << scrape(port, "/metrics")
        << run.err();
    EXPECT_TRUE(
        metric("kbridge_connected{pipeline=\"outage\",source=\"redis_list\",sink=\"kafka\"} 0"));
    EXPECT_EQ(scrape(port, "/health").substr(0, 4), "503\n");
    EXPECT_NE(run.err().find("redis_list:jobs is unreachable"), std::string::npos) << run.err();
    EXPECT_NE(run.err().find("retrying in 2 s"), std::string::npos) << run.err();
    EXPECT_TRUE(run.running());

    redis.start();
    redis.push("jobs", make_events(1000, 3000));
    EXPECT_TRUE(eventually([&] {
        return metric(
            "kbridge_connected{pipeline=\"outage\",source=\"redis_list\",sink=\"kafka\"} 1");
    })) << run.err();
    EXPECT_TRUE(eventually([&] { return redis.llen("jobs") == 0; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    std::map<long long, int> seen;
    for (const auto& m : kcat_consume(kafka.bootstraps(), "jobs")) ++seen[event_id(m.value)];
    EXPECT_EQ(seen.size(), 3000u);
    EXPECT_EQ(seen.begin()->first, 0);
    EXPECT_EQ(seen.rbegin()->first, 2999);
    EXPECT_EQ(redis.lrange("jobs:inflight:outage"), std::vector<std::string>{});
}

TEST(Operations, NoSecretInAnyOutputEvenAtTraceLevel) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    redis.push("jobs", make_events(0, 5));
    const std::string path = dir.file("p.yaml");
    write_file(path, "version: 1\nkafka:\n  brokers: '" + kafka.bootstraps() +
                         "'\n  properties: {sasl.username: bridge, sasl.password: hunter2-kafka}\n"
                         "redis: {url: '" +
                         redis.url() +
                         "'}\n"
                         "postgres: {url: 'postgresql://bridge:hunter2-pg@127.0.0.1:" +
                         std::to_string(free_port()) +
                         "/db'}\n"
                         "pipelines:\n"
                         "  - name: p\n    source: {type: redis_list, key: jobs}\n    sink: {type: "
                         "kafka, topic: jobs}\n"
                         "  - name: q\n    source: {type: postgres_table, table: t}\n    sink: "
                         "{type: kafka, topic: rows}\n"
                         "  - name: r\n    source: {type: redis_list, key: jobs, url: "
                         "'redis://bridge:hunter2-redis@127.0.0.1:" +
                         std::to_string(redis.port()) +
                         "/0'}\n    sink: {type: kafka, topic: jobs}\n");
    std::string all;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"validate", path},
             {"check", path},
             {"run", path, "--once", "--log-level", "trace", "--set", "kafka.properties.debug=all"},
             {"run", path, "--once", "--log-level", "trace", "--log-format", "json"},
             {"run", path, "--dry-run", "--log-level", "trace"},
             {"run", path, "--once", "--set", "kafka.properties.sasl.password=hunter2-set", "--set",
              "kafka.properties.nonsense=1"}}) {
        const RunResult r = run_kbridge(args, dir.path().string());
        // validate connects to nothing; the others fail at the Redis and PostgreSQL logins, or at
        // the config.
        if (args[0] != "validate") {
            EXPECT_NE(r.code, 0) << r.out << r.err;
        }
        all += r.out + r.err;
    }
    EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
    EXPECT_NE(all.find("sasl.password"), std::string::npos)
        << "librdkafka's debug output was not exercised";
    EXPECT_NE(all.find("redis://bridge:***@127.0.0.1"), std::string::npos) << all;
    EXPECT_NE(all.find("postgresql://bridge:***@127.0.0.1"), std::string::npos) << all;
}

TEST(Operations, TopicsListAndDescribeForRealAndCreateFailsClearlyOnTheEmbeddedCluster) {
    TempDir dir;
    EmbeddedKafka kafka(3);
    kafka.create_topic("orders", 3);
    kafka.create_topic("audit", 1);
    RunResult r =
        run_kbridge({"topics", "list", "--brokers", kafka.bootstraps()}, dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "audit\norders\n");
    r = run_kbridge({"topics", "describe", "orders", "--brokers", kafka.bootstraps()},
                    dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("Topic: orders\tPartitionCount: 3\t"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\tTopic: orders\tPartition: 2\tLeader: "), std::string::npos) << r.out;
    r = run_kbridge({"topics", "describe", "missing", "--brokers", kafka.bootstraps()},
                    dir.path().string());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("topic missing does not exist"), std::string::npos) << r.err;
    // The mock cluster does not answer CreateTopics: the error must say so, naming the topic.
    r = run_kbridge({"topics", "create", "fresh", "--partitions", "6", "--replication-factor", "1",
                     "--config", "retention.ms=60000", "--brokers", kafka.bootstraps()},
                    dir.path().string());
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.err.find("kbridge: topics create: create: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("never answers admin requests"), std::string::npos) << r.err;
    EXPECT_EQ(
        run_kbridge({"topics", "create", "--brokers", kafka.bootstraps()}, dir.path().string())
            .code,
        2);
}

}  // namespace
}  // namespace kbridge::test
