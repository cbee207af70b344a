// Endpoints that accept a connection and never answer, or stop answering mid-run: every wait on
// them is bounded by connect_timeout, and a signal ends a run within 5 s whatever it waits on.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "support/process.h"
#include "support/servers.h"
#include "support/silent_server.h"

namespace kbridge::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Every wait of these tests is bounded: a hang fails as a timeout, not as a hung suite.
constexpr auto kNoHang = 30s;

struct Endpoint {
    std::string name;
    std::string url;     // what the error must name
    std::string config;  // the pipeline file, with {TIMEOUT} for the source's connect_timeout
};

std::string replace(std::string text, const std::string& from, const std::string& to) {
    for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
    return text;
}

Endpoint redis_endpoint(int port) {
    const std::string url = "redis://127.0.0.1:" + std::to_string(port) + "/0";
    return {"redis", "127.0.0.1:" + std::to_string(port),
            "version: 1\nredis: {url: '" + url +
                "'}\npipelines:\n  - name: hostile\n    source: {type: redis_list, key: jobs"
                "{TIMEOUT}}\n    sink: {type: stdout}\n"};
}

Endpoint postgres_endpoint(int port) {
    const std::string url = "postgresql://kbridge@127.0.0.1:" + std::to_string(port) + "/db";
    return {"postgres", "127.0.0.1:" + std::to_string(port),
            "version: 1\npostgres: {url: '" + url +
                "'}\npipelines:\n  - name: hostile\n    source: {type: postgres_table, table: t"
                "{TIMEOUT}}\n    sink: {type: stdout}\n"};
}

// Writes the endpoint's pipeline file; `timeout` empty: the default connect_timeout.
std::string pipeline_file(const TempDir& dir, const Endpoint& e, const std::string& timeout) {
    const std::string path = dir.file("p.yaml");
    write_file(path, replace(e.config, "{TIMEOUT}",
                             timeout.empty() ? "" : ", connect_timeout: " + timeout));
    return path;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
    for (const auto until = Clock::now() + limit; Clock::now() < until;) {
        if (done()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return done();
}

class SilentEndpoint : public ::testing::TestWithParam<std::string> {
  protected:
    Endpoint endpoint() const {
        return GetParam() == "redis" ? redis_endpoint(silent_.port())
                                     : postgres_endpoint(silent_.port());
    }
    TempDir dir_;
    SilentServer silent_;
};

TEST_P(SilentEndpoint, OnceFailsWithinConnectTimeoutNamingTheEndpoint) {
    const Endpoint e = endpoint();
    const auto start = Clock::now();
    Process run({KBRIDGE_BINARY, "run", pipeline_file(dir_, e, "2s"), "--once"},
                dir_.path().string());
    const int code = run.wait(kNoHang);
    const double took = seconds_since(start);
    ASSERT_NE(code, -1) << "still running after " << took << " s: " << run.err();
    EXPECT_EQ(code, 1) << run.err();
    EXPECT_GE(took, 1.5) << run.err();  // it did wait for the endpoint, about connect_timeout
    EXPECT_LT(took, 8.0) << run.err();
    EXPECT_NE(run.err().find(e.url), std::string::npos) << run.err();
    EXPECT_NE(run.err().find("2s"), std::string::npos) << "names the timeout: " << run.err();
}

TEST_P(SilentEndpoint, CheckPrintsAFailLine) {
    const Endpoint e = endpoint();
    const auto start = Clock::now();
    Process check({KBRIDGE_BINARY, "check", pipeline_file(dir_, e, "2s")}, dir_.path().string());
    const int code = check.wait(kNoHang);
    ASSERT_NE(code, -1) << "still running after " << seconds_since(start) << " s";
    EXPECT_EQ(code, 1) << check.out() << check.err();
    EXPECT_LT(seconds_since(start), 8.0);
    const std::string out = check.out();
    EXPECT_NE(out.find("FAIL  hostile: source"), std::string::npos) << out;
    EXPECT_NE(out.find(e.url), std::string::npos) << out;
}

// Follow mode keeps trying, says why, reports itself not connected, and stops on SIGTERM.
TEST_P(SilentEndpoint, FollowModeRetriesAsUnreachableAndStopsOnSigterm) {
    const Endpoint e = endpoint();
    const std::string metrics = dir_.file("kbridge.prom");
    Process run({KBRIDGE_BINARY, "run", pipeline_file(dir_, e, "1s"), "--metrics-file", metrics},
                dir_.path().string());
    ASSERT_TRUE(eventually([&] { return run.err().find("retrying") != std::string::npos; }))
        << run.err();
    EXPECT_NE(run.err().find("is unreachable"), std::string::npos) << run.err();
    EXPECT_NE(run.err().find(e.url), std::string::npos) << run.err();
    EXPECT_TRUE(run.running());
    const auto stopped_at = Clock::now();
    run.signal(SIGTERM);
    const int code = run.wait(kNoHang);
    EXPECT_LT(seconds_since(stopped_at), 5.0) << run.err();
    EXPECT_EQ(code, 0) << run.err();
    const std::string text = read_file(metrics);
    const auto at = text.find("kbridge_connected{pipeline=\"hostile\",");
    ASSERT_NE(at, std::string::npos) << text;
    EXPECT_EQ(text.substr(text.find('\n', at) - 3, 4), "} 0\n") << text;
}

// With the default connect_timeout (10 s) a signal still ends the run within 5 s, and a second
// one at once.
TEST_P(SilentEndpoint, SigtermDuringAHungConnectStopsWithinFiveSeconds) {
    const Endpoint e = endpoint();
    for (const bool once : {true, false}) {
        std::vector<std::string> args{KBRIDGE_BINARY, "run", pipeline_file(dir_, e, "")};
        if (once) args.push_back("--once");
        Process run(args, dir_.path().string());
        std::this_thread::sleep_for(1500ms);  // well inside the connect
        ASSERT_TRUE(run.running()) << run.err();
        const auto stopped_at = Clock::now();
        run.signal(SIGTERM);
        const int code = run.wait(kNoHang);
        const double took = seconds_since(stopped_at);
        ASSERT_NE(code, -1) << (once ? "--once" : "follow") << ": SIGTERM ignored";
        EXPECT_LT(took, 5.0) << (once ? "--once: " : "follow: ") << run.err();
        EXPECT_LT(code, 128) << "exits, not killed: " << run.err();
        EXPECT_NE(run.err().find("hostile: read 0"), std::string::npos)
            << "an orderly stop prints its summary: " << run.err();
    }
    Process run({KBRIDGE_BINARY, "run", pipeline_file(dir_, e, "")}, dir_.path().string());
    std::this_thread::sleep_for(1500ms);
    const auto stopped_at = Clock::now();
    run.signal(SIGTERM);
    std::this_thread::sleep_for(50ms);
    run.signal(SIGTERM);
    ASSERT_NE(run.wait(kNoHang), -1);
    EXPECT_LT(seconds_since(stopped_at), 1.0) << "a second signal exits at once";
}

INSTANTIATE_TEST_SUITE_P(Endpoints, SilentEndpoint, ::testing::Values("redis", "postgres"),
                         [](const auto& info) { return info.param; });

std::vector<std::string> events(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back("{\"id\":" + std::to_string(i) + "}");
    return out;
}

size_t distinct_lines(const std::string& text) {
    std::set<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.insert(line);
    return lines.size();
}

// A real Redis that answers the handshake, then stops answering (SIGSTOP) mid-run: the idle
// BLMOVE times out, the run reports Redis unreachable and retries, and once Redis answers again
// every record is delivered.
TEST(StalledEndpoint, RedisStoppedMidRunIsUnreachableThenEverythingIsDelivered) {
    TempDir dir;
    RedisServer redis(dir);
    const std::string path = dir.file("p.yaml");
    write_file(path,
               replace(redis_endpoint(redis.port()).config, "{TIMEOUT}", ", connect_timeout: 1s"));
    Process run({KBRIDGE_BINARY, "run", path}, dir.path().string());
    redis.push("jobs", events(0, 100));
    ASSERT_TRUE(eventually([&] { return distinct_lines(run.out()) == 100; })) << run.err();

    kill(redis.pid(), SIGSTOP);
    const bool noticed =
        eventually([&] { return run.err().find("is unreachable") != std::string::npos; }, 15s);
    kill(redis.pid(), SIGCONT);
    ASSERT_TRUE(noticed) << run.err();

    redis.push("jobs", events(100, 200));
    EXPECT_TRUE(eventually([&] { return distinct_lines(run.out()) == 200; })) << run.err();
    EXPECT_EQ(redis.llen("jobs"), 0);
    const auto stopped_at = Clock::now();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(kNoHang), 0) << run.err();
    EXPECT_LT(seconds_since(stopped_at), 5.0);
}

}  // namespace
}  // namespace kbridge::test
