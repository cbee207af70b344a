// Source `stdin` from a pipe: lines of any length are read in one pass and in bounded memory; a
// line too long for the sink goes to the dead letter without being held whole.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan's shadow memory and slower code: a smaller line
#else
constexpr bool kSanitized = false;
#endif

class StdinPipe : public ::testing::Test {
  protected:
    TempDir dir;
    EmbeddedKafka kafka{1};

    std::string write_events(const std::string& name, int from, int to) {
        std::string text;
        for (const auto& e : make_events(from, to)) text += e + "\n";
        write_file(dir.file(name), text);
        return dir.file(name);
    }
    std::string config(const std::string& source_extra, bool dead_letter) {
        const std::string path = dir.file("stdin.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n"
                   "  - name: in\n    source: {type: stdin" +
                       source_extra + "}\n    sink: {type: kafka, topic: lines}\n" +
                       (dead_letter ? "    dead_letter: {type: kafka, topic: dlq}\n" : ""));
        return path;
    }
    // kbridge reading `producer`'s output from a pipe, under /usr/bin/time for its peak RSS.
    std::unique_ptr<Process> run_piped(const std::string& producer, const std::string& path) {
        const std::string command = "{ " + producer + "; } | /usr/bin/time -f %M -o '" +
                                    dir.file("rss") + "' '" KBRIDGE_BINARY "' run '" + path +
                                    "' --once --state-dir '" + dir.file("state") + "'";
        return std::make_unique<Process>(
            std::vector<std::string>{"/bin/sh", "-c", command}, dir.path().string(),
            std::map<std::string, std::string>{{"KAFKA_BROKERS", kafka.bootstraps()}});
    }
    std::set<long long> ids(const std::string& topic) {
        std::set<long long> out;
        for (const auto& m : kcat_consume(kafka.bootstraps(), topic)) out.insert(event_id(m.value));
        return out;
    }
};

TEST_F(StdinPipe, AGigabyteLineIsStreamedPastToTheDeadLetterInBoundedMemory) {
    kafka.create_topic("lines", 1);
    kafka.create_topic("dlq", 1);
    const uint64_t size = kSanitized ? (300ull << 20) : (1ull << 30);
    const std::string before = write_events("before.jsonl", 0, 100);
    const std::string after = write_events("after.jsonl", 100, 200);
    // Default max_line_bytes: the kafka sink's message.max.bytes (1,000,000).
    auto run = run_piped("cat '" + before + "'; head -c " + std::to_string(size) +
                             " /dev/zero | tr '\\0' a; printf '\\r\\n'; cat '" + after + "'",
                         config("", true));
    const int code = run->wait(std::chrono::seconds(60));
    ASSERT_EQ(code, 0) << (code == -1 ? "still running after 60 s; " : "") << run->err();

    const std::set<long long> delivered = ids("lines");
    EXPECT_EQ(delivered.size(), 200u);
    EXPECT_EQ(message_count(kafka.bootstraps(), "lines"), 200);
    const auto dead = kcat_consume(kafka.bootstraps(), "dlq");
    ASSERT_EQ(dead.size(), 1u) << run->err();
    EXPECT_EQ(dead[0].value, std::string(64 << 10, 'a'));
    EXPECT_NE(dead[0].headers.find("kbridge.error.reason=too_large"), std::string::npos)
        << dead[0].headers;
    EXPECT_NE(dead[0].headers.find("kbridge.original.size=" + std::to_string(size)),
              std::string::npos)
        << dead[0].headers;
    EXPECT_NE(dead[0].headers.find("kbridge.line.number=101"), std::string::npos)
        << dead[0].headers;

    const long peak_kb = std::stol(read_file(dir.file("rss")));
    if (!kSanitized) {
        EXPECT_LT(peak_kb, 100 * 1024) << "peak RSS " << peak_kb << " kB";
    }
}

TEST_F(StdinPipe, WithoutADeadLetterALongLineStopsTheRunNamingItsLineNumber) {
    kafka.create_topic("lines", 1);
    const std::string before = write_events("before.jsonl", 0, 3);
    auto run = run_piped("cat '" + before + "'; printf '\\n'; head -c 5000 /dev/zero | tr '\\0' b",
                         config(", max_line_bytes: 1000", false));
    EXPECT_EQ(run->wait(std::chrono::seconds(60)), 1) << run->err();
    EXPECT_NE(run->err().find("too_large: line 5 is 5000 bytes, over max_line_bytes 1000"),
              std::string::npos)
        << run->err();
}

TEST_F(StdinPipe, LinesUpToMaxLineBytesPassAndLongerOnesAreRefusedWhereverTheyEnd) {
    kafka.create_topic("lines", 1);
    kafka.create_topic("dlq", 1);
    // max_line_bytes far below a read chunk: a long line ending with \r\n whose newline comes
    // in a later read (so it is skipped across reads), a line under the limit, and a long last
    // line without a newline.
    auto run = run_piped(
        "printf '{\"id\":1}\\n'; head -c 300 /dev/zero | tr '\\0' c; printf '\\r'; sleep 0.3;"
        "printf '\\n{\"id\":2}\\n';"
        "printf '{\"id\":3,\"pad\":\"%0200d\"}\\n' 0; head -c 70000 /dev/zero | tr '\\0' d",
        config(", max_line_bytes: 230", true));
    ASSERT_EQ(run->wait(std::chrono::seconds(60)), 0) << run->err();
    EXPECT_EQ(ids("lines"), (std::set<long long>{1, 2, 3}));
    const auto dead = kcat_consume(kafka.bootstraps(), "dlq");
    ASSERT_EQ(dead.size(), 2u);
    EXPECT_EQ(dead[0].value, std::string(300, 'c'));
    EXPECT_NE(dead[0].headers.find("kbridge.original.size=300"), std::string::npos);
    EXPECT_NE(dead[0].headers.find("kbridge.line.number=2"), std::string::npos);
    EXPECT_EQ(dead[1].value, std::string(64 << 10, 'd'));
    EXPECT_NE(dead[1].headers.find("kbridge.original.size=70000"), std::string::npos);
    EXPECT_NE(dead[1].headers.find("kbridge.line.number=5"), std::string::npos);
}

}  // namespace
}  // namespace kbridge::test
