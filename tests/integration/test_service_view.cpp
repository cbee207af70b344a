// What an operator sees of a running service: readiness while an endpoint is down, the metrics
// file rewritten while running, the metrics endpoint (address, build and process metrics, labels,
// HEAD) and JSON log lines with fields of their own.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
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

std::string jobs_pipeline(const TempDir& dir, const std::string& extra = "") {
    const std::string path = dir.file("p.yaml");
    write_file(path,
               "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: '${REDIS_URL}'}\n"
               "pipelines:\n  - name: jobs\n    source: {type: redis_list, key: jobs}\n"
               "    sink: {type: kafka, topic: jobs, key: '{user_id}'}\n" +
                   extra);
    return path;
}

// Asks `done` every 40 ms for up to 20 s.
template <typename F>
bool eventually(F done) {
    for (int i = 0; i < 500; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(40ms);
    }
    return false;
}

// "STATUS\nBODY" of an HTTP request, "down" when nothing answers.
std::string http(const std::string& method, int port, const std::string& path) {
    return shell(
        "/usr/bin/python3 -c 'import sys, http.client\n"
        "try:\n"
        "  c = http.client.HTTPConnection(\"127.0.0.1\", int(sys.argv[2]), timeout=5)\n"
        "  c.request(sys.argv[1], sys.argv[3]); r = c.getresponse()\n"
        "  print(r.status); print(r.read().decode(), end=\"\")\n"
        "except Exception:\n  print(\"down\")' " +
        method + " " + std::to_string(port) + " " + path);
}

// Parses Prometheus text with its own client library; prints "NAME{k=v,...} VALUE" per sample.
std::string parsed_samples(const std::string& text_file) {
    return shell(
        "/usr/bin/python3 -c 'import sys\n"
        "from prometheus_client.parser import text_string_to_metric_families as parse\n"
        "for f in parse(open(sys.argv[1]).read()):\n"
        "  for s in f.samples:\n"
        "    print(s.name + \"{\" + \",\".join(k + \"=\" + v for k, v in sorted(s.labels.items()))"
        " + \"}\", repr(float(s.value)))' " +
        text_file);
}

double sample(const std::string& samples, const std::string& series) {
    const auto at = samples.find(series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(samples.substr(at + series.size() + 1));
}

TEST(ServiceView, ReadyAtOnceWhileRedisIsDownThenCatchesUpAndTheMetricsFileIsKeptCurrent) {
    TempDir dir;
    RedisServer redis(dir);
    redis.stop();
    EmbeddedKafka kafka(1);
    NotifySocket systemd(dir.file("notify.sock"));
    const int port = free_port();
    const std::string metrics = dir.file("kbridge.prom");
    Process run({KBRIDGE_BINARY, "run", jobs_pipeline(dir), "--metrics-port", std::to_string(port),
                 "--metrics-file", metrics},
                dir.path().string(),
                {{"KAFKA_BROKERS", kafka.bootstraps()},
                 {"REDIS_URL", redis.url()},
                 {"NOTIFY_SOCKET", dir.file("notify.sock")}});
    // Config read and lock taken: ready, though Redis does not answer.
    ASSERT_TRUE(systemd.wait_for("READY=1", 10s)) << run.err();
    EXPECT_TRUE(systemd.wait_for("redis_list:jobs unreachable, retrying", 10s))
        << systemd.received() << run.err();
    const std::string health = http("GET", port, "/health");
    EXPECT_EQ(health.substr(0, 4), "503\n") << health;
    EXPECT_NE(health.find("jobs retrying: redis_list:jobs unreachable"), std::string::npos)
        << health;
    // Written while running, not only at exit.
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(metrics); })) << run.err();
    EXPECT_NE(read_file(metrics).find(
                  "kbridge_connected{pipeline=\"jobs\",source=\"redis_list\",sink=\"kafka\"} 0\n"),
              std::string::npos)
        << read_file(metrics);

    redis.start();
    redis.push("jobs", make_events(0, 500));
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "jobs") == 500; }))
        << run.err();
    EXPECT_TRUE(
        eventually([&] { return http("GET", port, "/health") == "200\njobs connected\n"; }));
    EXPECT_TRUE(eventually([&] {
        return read_file(metrics).find(
                   "kbridge_records_written_total{pipeline=\"jobs\",source="
                   "\"redis_list\",sink=\"kafka\"} 500\n") != std::string::npos;
    })) << read_file(metrics);
    EXPECT_TRUE(run.running());
    // Replaced by rename: no temporary file is left beside it.
    for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
        EXPECT_EQ(entry.path().filename().string().find("kbridge.prom.tmp"), std::string::npos);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(ServiceView, MetricsEndpointServesBuildProcessAndPipelineMetricsAndAnswersHead) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const int port = free_port();
    const std::map<std::string, std::string> env{{"KAFKA_BROKERS", kafka.bootstraps()},
                                                 {"REDIS_URL", redis.url()}};
    const std::string path = jobs_pipeline(dir);
    EXPECT_EQ(run_kbridge({"run", path, "--metrics-port", "1", "--metrics-address", "x:2"},
                          dir.path().string(), env)
                  .code,
              2);
    const RunResult bad =
        run_kbridge({"run", path, "--metrics-address", "nowhere"}, dir.path().string(), env);
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("--metrics-address: 'nowhere' is not HOST:PORT"), std::string::npos)
        << bad.err;

    const double started = static_cast<double>(std::time(nullptr));
    Process run(
        {KBRIDGE_BINARY, "run", path, "--metrics-address", "127.0.0.1:" + std::to_string(port)},
        dir.path().string(), env);
    redis.push("jobs", make_events(0, 100));
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "jobs") == 100; }))
        << run.err();
    const std::string text_file = dir.file("scraped.prom");
    std::string page;
    ASSERT_TRUE(eventually([&] {
        page = http("GET", port, "/metrics");
        return page.find(
                   "kbridge_records_written_total{pipeline=\"jobs\",source=\"redis_list\","
                   "sink=\"kafka\"} 100\n") != std::string::npos;
    })) << page;
    write_file(text_file, page.substr(page.find('\n') + 1));
    const std::string samples = parsed_samples(text_file);
    EXPECT_NE(samples.find("kbridge_build_info{commit="), std::string::npos) << samples;
    EXPECT_NE(samples.find(",version=0.1.0} 1.0\n"), std::string::npos) << samples;
    // A quick run may not have used a full clock tick of CPU yet: present is what counts.
    EXPECT_GE(sample(samples, "process_cpu_seconds_total{}"), 0) << samples;
    EXPECT_GT(sample(samples, "process_resident_memory_bytes{}"), 1e6) << samples;
    EXPECT_GT(sample(samples, "process_open_fds{}"), 3) << samples;
    const double start_time = sample(samples, "process_start_time_seconds{}");
    EXPECT_GT(start_time, started - 5) << samples;
    EXPECT_LT(start_time, started + 60) << samples;
    const double success = sample(samples,
                                  "kbridge_last_success_timestamp_seconds{pipeline=jobs,sink=kafka,"
                                  "source=redis_list}");
    EXPECT_GT(success, started - 5) << samples;
    EXPECT_LT(success, static_cast<double>(std::time(nullptr)) + 1) << samples;
    EXPECT_EQ(sample(samples,
                     "kbridge_records_read_total{pipeline=jobs,sink=kafka,"
                     "source=redis_list}"),
              100)
        << samples;
    EXPECT_GE(sample(samples,
                     "kbridge_batch_latency_seconds_count{pipeline=jobs,sink=kafka,"
                     "source=redis_list}"),
              1)
        << samples;

    // HEAD: GET's status and headers, no body.
    EXPECT_EQ(http("HEAD", port, "/metrics"), "200\n");
    EXPECT_EQ(http("HEAD", port, "/health"), "200\n");
    EXPECT_EQ(http("HEAD", port, "/nothing"), "404\n");
    const std::string headers = shell(
        "/usr/bin/python3 -c 'import sys, http.client\n"
        "c = http.client.HTTPConnection(\"127.0.0.1\", int(sys.argv[1]), timeout=5)\n"
        "c.request(\"HEAD\", \"/metrics\"); r = c.getresponse()\n"
        "print(int(r.getheader(\"Content-Length\")) > 1000)' " +
        std::to_string(port));
    EXPECT_EQ(headers, "True\n");
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// The kernel's table of listening TCP sockets: "ADDRESS:PORT" in hex for `port`.
std::string listening_on(int port) {
    return shell(
        "/usr/bin/python3 -c 'import sys\n"
        "for line in open(\"/proc/net/tcp\").readlines()[1:]:\n"
        "  f = line.split()\n"
        "  if f[3] == \"0A\" and int(f[1].split(\":\")[1], 16) == int(sys.argv[1]): print(f[1])' " +
        std::to_string(port));
}

TEST(ServiceView, MetricsPortListensOnLoopbackOnlyAndAnAddressCanSayOtherwise) {
    TempDir dir;
    RedisServer redis(dir);
    EmbeddedKafka kafka(1);
    const std::map<std::string, std::string> env{{"KAFKA_BROKERS", kafka.bootstraps()},
                                                 {"REDIS_URL", redis.url()}};
    const std::string path = jobs_pipeline(dir);
    const int port = free_port();
    {
        Process run({KBRIDGE_BINARY, "run", path, "--metrics-port", std::to_string(port)},
                    dir.path().string(), env);
        ASSERT_TRUE(eventually([&] { return !listening_on(port).empty(); })) << run.err();
        EXPECT_EQ(listening_on(port).substr(0, 8), "0100007F");  // 127.0.0.1
        run.signal(SIGTERM);
        EXPECT_EQ(run.wait(), 0) << run.err();
    }
    Process run(
        {KBRIDGE_BINARY, "run", path, "--metrics-address", "0.0.0.0:" + std::to_string(port)},
        dir.path().string(), env);
    ASSERT_TRUE(eventually([&] { return !listening_on(port).empty(); })) << run.err();
    EXPECT_EQ(listening_on(port).substr(0, 8), "00000000");
    EXPECT_EQ(http("GET", port, "/health"), "200\njobs connected\n");
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(ServiceView, JsonLogLinesCarryPipelineSourceSinkAndEventFields) {
    TempDir dir;
    RedisServer redis(dir);
    redis.stop();
    EmbeddedKafka kafka(1);
    const std::string path = jobs_pipeline(dir, "    dead_letter: {type: kafka, topic: dlq}\n");
    Process run({KBRIDGE_BINARY, "run", path, "--log-format", "json"}, dir.path().string(),
                {{"KAFKA_BROKERS", kafka.bootstraps()}, {"REDIS_URL", redis.url()}});
    ASSERT_TRUE(wait_for_stderr(run, "retrying in")) << run.err();
    redis.start();
    redis.push("jobs", {"{not json", make_events(0, 1)[0]});
    ASSERT_TRUE(eventually([&] { return message_count(kafka.bootstraps(), "dlq") == 1; }))
        << run.err();
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << run.err();
    const std::string log = dir.file("log.jsonl");
    write_file(log, run.err());
    // Every line is one JSON object; the events print their fields.
    const std::string events = shell(
        "/usr/bin/python3 -c 'import sys, json\n"
        "for line in open(sys.argv[1]):\n"
        "  o = json.loads(line)\n"
        "  if o.get(\"event\") == \"endpoint_unreachable\":\n"
        "    print(o[\"event\"], o[\"pipeline\"], o[\"source\"], o[\"sink\"], o[\"error_class\"],"
        " o[\"endpoint\"], o[\"retry_in_seconds\"] > 0, o[\"reconnects\"] >= 1, o[\"level\"])\n"
        "  elif o.get(\"event\") == \"dead_letter\":\n"
        "    print(o[\"event\"], o[\"pipeline\"], o[\"error_class\"], o[\"reason\"])\n"
        "  elif o.get(\"summary\"):\n"
        "    print(\"summary\", o[\"pipeline\"], o[\"source\"], o[\"sink\"], o[\"read\"],"
        " o[\"delivered\"], o[\"dead_lettered\"])' " +
        log);
    EXPECT_NE(events.find("endpoint_unreachable jobs redis_list kafka unreachable "
                          "redis_list:jobs True True warning\n"),
              std::string::npos)
        << events << run.err();
    EXPECT_NE(events.find("dead_letter jobs refused invalid_json\n"), std::string::npos) << events;
    EXPECT_NE(events.find("summary jobs redis_list kafka 2 1 1\n"), std::string::npos) << events;
}

}  // namespace
}  // namespace kbridge::test
