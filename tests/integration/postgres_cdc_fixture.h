#pragma once
// The fixture of the postgres_cdc tests: a real PostgreSQL (wal_level=logical) and the embedded
// Kafka cluster; what arrived is read back with a client of its own (python3-confluent-kafka)
// and checked by counting ids.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <map>
#include <thread>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {

using namespace std::chrono_literals;

struct Change {
    std::optional<std::string> key, value;
    std::map<std::string, std::string> headers;
};

class PostgresCdc : public ::testing::Test {
  protected:
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{1};
    int consumers_ = 0;  // each read-back is a group of its own, from the beginning

    std::map<std::string, std::string> env() const {
        return {{"KAFKA_BROKERS", kafka.bootstraps()}, {"PG_URL", pg.url()}};
    }
    // A pipeline `p` capturing `source` (YAML lines under source:) into topic "changes";
    // `sink` adds lines under sink:.
    std::string config(const std::string& source, const std::string& sink = "") {
        const std::string path = dir.file("p.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: "
                   "'${PG_URL}'}\npipelines:\n  - name: p\n    source:\n      type: "
                   "postgres_cdc\n" +
                       source + "    sink:\n      type: kafka\n      topic: changes\n" + sink);
        return path;
    }
    std::vector<std::string> args(const std::string& path, bool once = true) {
        std::vector<std::string> a{KBRIDGE_BINARY, "run", path, "--state-dir", dir.file("state")};
        if (once) a.push_back("--once");
        return a;
    }
    RunResult run(const std::string& path) {
        auto a = args(path);
        a.erase(a.begin());
        return run_kbridge(a, dir.path().string(), env());
    }
    // Every message of the topic, in partition order, with keys, values and headers kept as
    // bytes.
    std::vector<Change> consume(const std::string& topic = "changes") {
        const std::string dump = shell(
            "/usr/bin/python3 -c \""
            "import confluent_kafka as ck, json, sys\n"
            "c = ck.Consumer({'bootstrap.servers': sys.argv[1], 'group.id': sys.argv[3], "
            "'enable.auto.commit': False, "
            "'auto.offset.reset': 'earliest', 'enable.partition.eof': True})\n"
            "c.subscribe([sys.argv[2]])\n"
            "md = c.list_topics(sys.argv[2], timeout=10).topics[sys.argv[2]].partitions\n"
            "eof = set(); out = []\n"
            "while len(eof) < len(md):\n"
            "    m = c.poll(10)\n"
            "    if m is None: break\n"
            "    if m.error():\n"
            "        if m.error().code() == ck.KafkaError._PARTITION_EOF: eof.add(m.partition())\n"
            "        continue\n"
            "    d = lambda b: None if b is None else b.decode()\n"
            "    out.append({'k': d(m.key()), 'v': d(m.value()), 'h': {n: d(v) for n, v in "
            "(m.headers() or [])}})\n"
            "print(json.dumps(out))\n"
            "\" '" +
            kafka.bootstraps() + "' " + topic + " group" + std::to_string(++consumers_));
        simdjson::dom::parser parser;
        simdjson::dom::array all;
        EXPECT_EQ(parser.parse(dump).get(all), simdjson::SUCCESS) << dump;
        std::vector<Change> changes;
        for (auto item : all) {
            Change c;
            auto text = [](simdjson::dom::element e) -> std::optional<std::string> {
                if (e.is_null()) return std::nullopt;
                return std::string(e.get_string().value());
            };
            c.key = text(item["k"]);
            c.value = text(item["v"]);
            for (auto [name, value] : item["h"].get_object())
                c.headers[std::string(name)] = text(value).value_or("");
            changes.push_back(std::move(c));
        }
        return changes;
    }
    // Waits until the topic holds `count` messages; fails after 30 s, showing what `p` logged.
    void wait_for_messages(Process& p, int64_t count) {
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (message_count(kafka.bootstraps(), "changes") < count) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << p.err();
            ASSERT_TRUE(p.running()) << p.err();
            std::this_thread::sleep_for(20ms);
        }
    }
    // 40,000 rows inserted in one transaction; a follow run (batches of 20, `sink` lines under
    // sink:) stopped with SIGTERM after 500 of its changes arrived, whose count is `first`;
    // then a --once run to the end.
    void stop_inside_a_transaction_then_finish(const std::string& sink, int64_t& first) {
        pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
        const std::string path =
            config("      tables: [events]\n      snapshot: never\n      batch_size: 20\n", sink);
        ASSERT_EQ(run(path).code, 0);
        pg.exec("INSERT INTO events (note) SELECT 'x' FROM generate_series(1, 40000)");
        {
            Process follow(args(path, false), dir.path().string(), env());
            wait_for_messages(follow, 500);
            follow.signal(SIGTERM);
            ASSERT_EQ(follow.wait(20s), 0) << follow.err();
        }
        first = message_count(kafka.bootstraps(), "changes");
        ASSERT_LT(first, 40000) << "the stop came after the transaction: nothing tested";
        const RunResult rest = run(path);
        ASSERT_EQ(rest.code, 0) << rest.err;
    }
    // id (the record key) -> times it arrived with op `op`.
    std::map<long long, int> ids(const std::vector<Change>& changes,
                                 const std::string& ops = "cr") {
        std::map<long long, int> seen;
        for (const auto& c : changes)
            if (c.key && ops.find(c.headers.at("kbridge.op")) != std::string::npos)
                ++seen[std::stoll(*c.key)];
        return seen;
    }
};

class Writer {
  public:
    Writer(const std::string& url, int per_transaction)
        : thread_([this, url, per_transaction] {
              PostgresSession session(url);
              while (!stop_.load()) {
                  session.exec("INSERT INTO events (note) SELECT 'w' FROM generate_series(1, " +
                               std::to_string(per_transaction) + ")");
                  committed_ += per_transaction;
                  std::this_thread::sleep_for(2ms);
              }
          }) {}
    ~Writer() { stop(); }
    int stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return committed_.load();
    }
    int committed() const { return committed_.load(); }

  private:
    std::atomic<bool> stop_{false};
    std::atomic<int> committed_{0};
    std::thread thread_;
};

inline void expect_each_once(const std::map<long long, int>& seen, long long count) {
    EXPECT_EQ(seen.size(), static_cast<size_t>(count));
    for (long long id = 1; id <= count; ++id) {
        auto it = seen.find(id);
        if (it == seen.end())
            ADD_FAILURE() << "id " << id << " was skipped";
        else if (it->second != 1)
            ADD_FAILURE() << "id " << id << " arrived " << it->second << " times";
    }
}

}  // namespace kbridge::test
