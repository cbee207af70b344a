// The command line as a user meets it: exit codes, the embedded cluster, templates that route and
// label records, raw bytes, JSON logs.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "connectors/redis/list_source.h"
#include "support/kafka_check.h"
#include "support/process.h"
#include "support/servers.h"

namespace kbridge::test {
namespace {

std::string read_file_or_empty(const std::string& path) {
    return std::filesystem::exists(path) ? read_file(path) : std::string();
}

class Cli : public ::testing::Test {
  protected:
    TempDir dir;

    std::string write(const std::string& name, const std::string& text) {
        const std::string path = dir.file(name);
        write_file(path, text);
        return path;
    }
    RunResult kbridge(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env = {}) {
        return run_kbridge(args, dir.path().string(), env);
    }
};

TEST_F(Cli, VersionNamesItsLibraries) {
    const RunResult r = kbridge({"version"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.rfind("kbridge " KBRIDGE_VERSION " (librdkafka 2.", 0), 0u) << r.out;
}

TEST_F(Cli, UsageErrorsExitTwo) {
    EXPECT_EQ(kbridge({}).code, 2);
    EXPECT_EQ(kbridge({"run"}).code, 2);
    EXPECT_EQ(kbridge({"frobnicate"}).code, 2);
    EXPECT_EQ(kbridge({"run", "x.yaml", "--log-level", "loud"}).code, 2);
    EXPECT_EQ(kbridge({"--help"}).code, 0);
}

TEST_F(Cli, ValidateChecksWithoutConnecting) {
    const std::string good = write("good.yaml",
                                   "version: 1\nredis: {url: 'redis://127.0.0.1:1/0'}\npipelines:\n"
                                   "  - name: a\n    source: {type: redis_list, key: k}\n    sink: "
                                   "{type: kafka, topic: t, brokers: '127.0.0.1:1'}\n");
    const RunResult ok = kbridge({"validate", good});
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("ok (1 pipeline)"), std::string::npos) << ok.out;
    const RunResult bad =
        kbridge({"validate", good, "--set", "pipelines.a.sink.properties.no.such.property=1"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("pipelines[0].sink.properties: kafka property 'no.such.property'"),
              std::string::npos)
        << bad.err;
}

TEST_F(Cli, ValidateRefusesDirectoriesAndAliasBombsWithExitTwo) {
    const RunResult directory = kbridge({"validate", dir.path().string()});
    EXPECT_EQ(directory.code, 2) << directory.err;
    EXPECT_NE(
        directory.err.find(dir.path().string() + ": cannot read the pipeline file: Is a directory"),
        std::string::npos)
        << directory.err;
    std::string bomb = "a0: &a0 [lol]\n";
    for (int level = 1; level <= 9; ++level) {
        bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
        for (int k = 0; k < 9; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(level - 1);
        bomb += "]\n";
    }
    Process p({KBRIDGE_BINARY, "validate", write("bomb.yaml", bomb)}, dir.path().string());
    ASSERT_EQ(p.wait(std::chrono::seconds(15)), 2) << "the nested aliases were expanded";
    EXPECT_NE(p.err().find("aliases expand to more than 10000 nodes"), std::string::npos)
        << p.err();
}

TEST_F(Cli, ValidateChecksTheLockUrl) {
    const RunResult r = kbridge({"validate", write("p.yaml",
                                                   "version: 1\nlock: {redis: 'redis://h:port/0'}\n"
                                                   "pipelines:\n  - name: a\n    source: {type: "
                                                   "stdin}\n    sink: {type: stdout}\n")});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("p.yaml:2:15: lock.redis: the port is not a number"), std::string::npos)
        << r.err;
}

TEST_F(Cli, UnknownPipelineNameExitsTwoListingTheNames) {
    const std::string path = write("p.yaml",
                                   "version: 1\npipelines:\n  - name: only\n    source: {type: "
                                   "redis_list, key: k}\n    sink: {type: kafka, topic: t}\n");
    const RunResult r = kbridge({"run", path, "--pipeline", "nope"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("no pipeline named 'nope' (pipelines: only)"), std::string::npos) << r.err;
}

TEST_F(Cli, DevKafkaServesKcatAndStopsOnSigterm) {
    const std::string boot = dir.file("bootstrap");
    Process dev({KBRIDGE_BINARY, "dev-kafka", "--brokers", "2", "--topic", "made:3",
                 "--bootstrap-file", boot},
                dir.path().string());
    for (int i = 0; i < 200 && read_file(boot).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::string servers = read_file(boot);
    ASSERT_FALSE(servers.empty()) << dev.err();
    servers.pop_back();
    const std::string metadata = shell("kcat -b '" + servers + "' -L -t made 2>&1");
    EXPECT_NE(metadata.find("2 brokers"), std::string::npos) << metadata;
    EXPECT_NE(metadata.find("topic \"made\" with 3 partitions"), std::string::npos) << metadata;
    dev.signal(SIGTERM);
    EXPECT_EQ(dev.wait(std::chrono::seconds(10)), 0);
}

class CliWithServers : public Cli {
  protected:
    RedisServer redis{dir};
    EmbeddedKafka kafka{1};
    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"REDIS_URL", redis.url()}};
    }
};

TEST_F(CliWithServers, EmbeddedBrokersRunAClusterInsideTheRun) {
    redis.push("demo_events", make_events(0, 20));
    const RunResult r =
        kbridge({"run", KBRIDGE_SOURCE_DIR "/configs/embedded-demo.yaml", "--once"}, env());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("embedded Kafka cluster listening on 127.0.0.1:"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("demo: read 20, delivered 20, dead-lettered 0"), std::string::npos)
        << r.err;
    EXPECT_EQ(redis.llen("demo_events"), 0);
}

TEST_F(CliWithServers, TopicKeyAndHeaderTemplatesRouteAndLabelRecords) {
    const std::string path =
        write("p.yaml",
              "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
              "'${REDIS_URL}'}\npipelines:\n"
              "  - name: routed\n    source: {type: redis_list, key: ev}\n"
              "    sink:\n      type: kafka\n      topic: 'ev.{action}'\n      key: 'u{user_id}'\n"
              "      headers: {item: '{item}', origin: 'kbridge'}\n");
    const auto events = make_events(0, 40);
    redis.push("ev", events);
    const RunResult r = kbridge({"run", path, "--once"}, env());
    ASSERT_EQ(r.code, 0) << r.err;
    size_t total = 0;
    for (const std::string action : {"view", "click", "cart", "buy"}) {
        for (const auto& m : kcat_consume(kafka.bootstraps(), "ev." + action)) {
            ++total;
            EXPECT_NE(m.value.find("\"action\":\"" + action + "\""), std::string::npos) << m.value;
            EXPECT_EQ(m.key.rfind("u", 0), 0u);
            EXPECT_NE(m.headers.find("origin=kbridge"), std::string::npos) << m.headers;
            EXPECT_NE(m.headers.find("item=item-"), std::string::npos) << m.headers;
        }
    }
    EXPECT_EQ(total, events.size());
}

TEST_F(CliWithServers, RawFormatPassesAnyBytesThrough) {
    const std::string path =
        write("p.yaml",
              "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
              "'${REDIS_URL}'}\npipelines:\n"
              "  - name: raw\n    source: {type: redis_list, key: lines, format: raw}\n    sink: "
              "{type: kafka, topic: lines, format: raw}\n");
    redis.push("lines", {"not json at all", "alice|bob|hello", "{\"half\":"});
    const RunResult r = kbridge({"run", path, "--once"}, env());
    ASSERT_EQ(r.code, 0) << r.err;
    std::multiset<std::string> values;
    for (const auto& m : kcat_consume(kafka.bootstraps(), "lines")) values.insert(m.value);
    EXPECT_EQ(values,
              (std::multiset<std::string>{"not json at all", "alice|bob|hello", "{\"half\":"}));
}

TEST_F(CliWithServers, JsonLogsAreOneObjectPerLine) {
    const std::string path = write("p.yaml",
                                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
                                   "'${REDIS_URL}'}\npipelines:\n"
                                   "  - name: j\n    source: {type: redis_list, key: k}\n    sink: "
                                   "{type: kafka, topic: t, key: '{user_id}'}\n");
    redis.push("k", {"{\"quote\":\"\\\"\"}"});
    const RunResult r = kbridge({"run", path, "--once", "--log-format", "json"}, env());
    EXPECT_EQ(r.code, 1);
    std::istringstream lines(r.err);
    std::string line;
    int checked = 0;
    while (std::getline(lines, line)) {
        const std::string parsed =
            shell("printf '%s' '" + std::regex_replace(line, std::regex("'"), "'\\''") +
                  "' | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
                  "print(d.get(\"level\", \"summary\"))'");
        EXPECT_FALSE(parsed.empty()) << line;
        ++checked;
    }
    EXPECT_GE(checked, 2) << r.err;
    EXPECT_NE(r.err.find("\"exit_code\":1"), std::string::npos) << r.err;
}

TEST_F(CliWithServers, AKeyThatIsNoListFailsNamingRedisError) {
    const std::string path = write(
        "p.yaml",
        "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
        "'${REDIS_URL}'}\npipelines:\n"
        "  - name: w\n    source: {type: redis_list, key: s}\n    sink: {type: kafka, topic: t}\n");
    redis.client().command({"SET", "s", "a string"});
    const RunResult r = kbridge({"run", path, "--once"}, env());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("WRONGTYPE"), std::string::npos) << r.err;
    EXPECT_EQ(redis.client().command({"GET", "s"})->str, std::string("a string"));
}

TEST_F(CliWithServers, ASecondRunOfAPipelineExitsSeventyFiveNamingTheHolder) {
    const std::string path = write("p.yaml",
                                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
                                   "'${REDIS_URL}'}\npipelines:\n"
                                   "  - name: cronjob\n    source: {type: redis_list, key: jobs}\n "
                                   "   sink: {type: kafka, topic: jobs}\n");
    const std::string state = dir.file("state");
    auto environment = env();
    std::vector<std::string> argv{KBRIDGE_BINARY, "run", path, "--state-dir", state};
    Process follower(argv, dir.path().string(), environment);
    const std::string lock_file = state + "/cronjob.lock";
    for (int i = 0; i < 200 && read_file_or_empty(lock_file).find("pid ") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_NE(read_file_or_empty(lock_file).find("pid " + std::to_string(follower.pid())),
              std::string::npos)
        << follower.err();

    redis.push("jobs", make_events(0, 5));
    const auto started = std::chrono::steady_clock::now();
    const RunResult second = kbridge({"run", path, "--once", "--state-dir", state}, environment);
    EXPECT_EQ(second.code, 75) << second.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_NE(second.err.find("cronjob is already running (pid " + std::to_string(follower.pid()) +
                              " on "),
              std::string::npos)
        << second.err;
    EXPECT_NE(second.err.find(" since 20"), std::string::npos) << second.err;

    // The lock dies with its holder, even a killed one: the next run goes ahead.
    follower.signal(SIGKILL);
    follower.wait();
    const RunResult third = kbridge({"run", path, "--once", "--state-dir", state}, environment);
    EXPECT_EQ(third.code, 0) << third.err;
    EXPECT_EQ(redis.llen("jobs"), 0);
}

TEST_F(CliWithServers, DryRunPrintsTheFirstRecordsAsTheyWouldBeWrittenAndTakesNothing) {
    const std::string path =
        write("p.yaml",
              "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: "
              "'${REDIS_URL}'}\npipelines:\n"
              "  - name: dry\n    source: {type: redis_list, key: ev}\n"
              "    sink: {type: kafka, topic: 'ev.{action}', key: 'u{user_id}'}\n");
    auto events = make_events(0, 30);
    events.insert(events.begin() + 2, R"({"no_action":true})");
    redis.push("ev", events);
    const RunResult r =
        kbridge({"run", path, "--dry-run", "--state-dir", dir.file("state")}, env());
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream lines(r.out);
    std::vector<std::string> printed;
    for (std::string line; std::getline(lines, line);) printed.push_back(line);
    ASSERT_EQ(printed.size(), 10u) << r.out;
    EXPECT_EQ(printed[0], "dry\ttopic=ev.view key=u0 value=" + events[0]);
    EXPECT_EQ(printed[2], "dry\tDEAD LETTER template: topic: missing field 'action'") << r.out;
    EXPECT_EQ(redis.llen("ev"), 31);
    EXPECT_EQ(
        shell("redis-cli -p " + std::to_string(redis.port()) + " --scan | sort | tr '\\n' ' '"),
        "ev ");
    EXPECT_EQ(kcat_consume(kafka.bootstraps(), "ev.view").size(), 0u);
}

TEST_F(CliWithServers, ARedisLockKeepsOneRunPerPipelineAcrossHosts) {
    const std::string path =
        write("p.yaml",
              "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\nredis: {url: '${REDIS_URL}'}\n"
              "lock: {redis: '${REDIS_URL}', ttl: 1500ms}\npipelines:\n"
              "  - name: nightly\n    source: {type: redis_list, key: jobs}\n    sink: {type: "
              "kafka, topic: jobs}\n");
    // Two hosts, as far as the flock is concerned: each run has a state dir of its own.
    Process first({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("host-a")},
                  dir.path().string(), env());
    auto held = [&] {
        return redis.client().command({"EXISTS", "kbridge:lock:nightly"})->integer == 1;
    };
    for (int i = 0; i < 200 && !held(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(held()) << first.err();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(2000));  // past the ttl: it is being renewed
    RunResult second = kbridge({"run", path, "--once", "--state-dir", dir.file("host-b")}, env());
    EXPECT_EQ(second.code, 75) << second.err;
    EXPECT_NE(
        second.err.find("nightly is already running (pid " + std::to_string(first.pid()) + " on "),
        std::string::npos)
        << second.err;
    EXPECT_NE(second.err.find("lock kbridge:lock:nightly in redis://"), std::string::npos)
        << second.err;
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait(), 0) << first.err();
    EXPECT_FALSE(held());  // released at the end of the run

    // A holder killed outright lets go when the ttl runs out.
    Process killed({KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("host-a")},
                   dir.path().string(), env());
    for (int i = 0; i < 200 && !held(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    killed.signal(SIGKILL);
    killed.wait();
    EXPECT_EQ(kbridge({"run", path, "--once", "--state-dir", dir.file("host-b")}, env()).code, 75);
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    redis.push("jobs", make_events(0, 3));
    second = kbridge({"run", path, "--once", "--state-dir", dir.file("host-b")}, env());
    EXPECT_EQ(second.code, 0) << second.err;
    EXPECT_EQ(redis.llen("jobs"), 0);
}

}  // namespace
}  // namespace kbridge::test
