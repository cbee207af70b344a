// kbridge consume / produce beside kcat on the same topics of the embedded cluster: every -o
// form, -p, -c, -e and -f against kcat's own output; no group and no commit without -G; `| head
// -1` ends with exit 0; produce of CSV and raw lines with keys and headers, invalid lines named.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

const std::string kFormat = "%t %p %o %k %s %h %T %S %K\\n";

std::vector<std::string> sorted_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    std::sort(out.begin(), out.end());
    return out;
}

class Shell : public ::testing::Test {
  protected:
    TempDir dir;
    EmbeddedKafka kafka{1};
    std::string b() const { return kafka.bootstraps(); }

    // `command` through /bin/sh (for pipes); its stdout; the exit code of the pipeline's first
    // command in `code`.
    std::string sh(const std::string& command, int* code = nullptr) {
        Process p({"/bin/sh", "-c", command + "; echo \"rc=$?\" >&2"}, dir.path().string());
        EXPECT_NE(p.wait(std::chrono::seconds(60)), -1) << command;
        if (code) {
            const std::string err = p.err();
            const auto at = err.rfind("rc=");
            *code = at == std::string::npos ? -1 : std::atoi(err.c_str() + at + 3);
        }
        last_err = p.err();
        return p.out();
    }
    std::string kbridge(const std::string& args) { return sh("'" KBRIDGE_BINARY "' " + args); }
    std::string last_err;

    void seed(const std::string& topic, int partitions, int count) {
        kafka.create_topic(topic, partitions);
        std::string lines;
        for (const auto& e : make_events(0, count))
            lines += "k" + std::to_string(event_id(e)) + "\t" + e + "\n";
        write_file(dir.file("seed.txt"), lines);
        shell("kcat -P -b '" + b() + "' -t " + topic + " -K '\t' -H src=seed -H n=1 -l '" +
              dir.file("seed.txt") + "' 2>&1");
    }
};

TEST_F(Shell, ConsumeMatchesKcatForEveryOffsetFormPartitionAndFormat) {
    seed("ev", 3, 30);
    const std::vector<std::pair<std::string, std::string>> forms = {
        {"", ""},  // kcat's default for -C is the beginning
        {"-o beginning", "-o beginning"},
        {"-o end", "-o end"},
        {"-o -4", "-o -4"},
        {"-o 3", "-o 3"},
        // librdkafka 2.0.2's mock cluster answers a time lookup with -1 (none): kbridge and kcat
        // then both read nothing. A real broker gives the first offset at or after the time.
        {"-o @1", "-o s@1"},
        {"-o @4102444800000", "-o s@4102444800000"},  // 2100: nothing that late
        {"-o -4 -p 1", "-o -4 -p 1"},
        {"-p 2 -c 3", "-p 2 -c 3"},
    };
    for (const auto& [ours, theirs] : forms) {
        const std::string mine =
            kbridge("consume ev -b '" + b() + "' -e " + ours + " -f '" + kFormat + "'");
        const std::string kcat =
            sh("kcat -C -b '" + b() + "' -t ev -e -q " + theirs + " -f '" + kFormat + "'");
        EXPECT_EQ(sorted_lines(mine), sorted_lines(kcat)) << "consume " << ours << "\n" << last_err;
    }
    // -c over several partitions: as many as asked, each one kcat also prints.
    const auto all = sorted_lines(sh("kcat -C -b '" + b() + "' -t ev -e -q -f '" + kFormat + "'"));
    ASSERT_EQ(all.size(), 30u);
    const auto some =
        sorted_lines(kbridge("consume ev -b '" + b() + "' -c 7 -f '" + kFormat + "'"));
    ASSERT_EQ(some.size(), 7u);
    for (const auto& line : some) EXPECT_TRUE(std::binary_search(all.begin(), all.end(), line));
    // The default output is each value on a line, as kcat's.
    EXPECT_EQ(sorted_lines(kbridge("consume ev -b '" + b() + "' -e")),
              sorted_lines(sh("kcat -C -b '" + b() + "' -t ev -e -q")));
}

TEST_F(Shell, WithoutAGroupNothingIsCommittedAndHeadEndsItWithExitZero) {
    seed("ev", 2, 20);
    for (int run = 0; run < 2; ++run) {
        int code = -1;
        const std::string first =
            sh("'" KBRIDGE_BINARY "' consume ev -b '" + b() + "' | head -1; exit ${PIPESTATUS:-0}",
               &code);
        EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 1) << first;
        EXPECT_EQ(last_err.find("rror"), std::string::npos) << last_err;
        // Every run reads from the beginning again: nothing was committed.
        EXPECT_EQ(sorted_lines(kbridge("consume ev -b '" + b() + "' -e")).size(), 20u);
    }
    // Follow mode (no -e) under head: it notices the closed pipe and exits 0.
    Process follow(
        {"/bin/sh", "-c", "'" KBRIDGE_BINARY "' consume ev -b '" + b() + "' | head -1 >/dev/null"},
        dir.path().string());
    EXPECT_EQ(follow.wait(std::chrono::seconds(20)), 0) << follow.err();
}

TEST_F(Shell, AGroupCommitsOnlyWhatWasPrinted) {
    // The mock cluster rebalances a group only after the member that left times out.
    const std::string g = " -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000";
    seed("ev", 2, 40);
    const auto first = sorted_lines(kbridge("consume ev -b '" + b() + "' -G g -c 5" + g));
    EXPECT_EQ(first.size(), 5u) << last_err;
    const auto rest = sorted_lines(kbridge("consume ev -b '" + b() + "' -G g -e" + g));
    EXPECT_EQ(rest.size(), 35u) << last_err;
    std::set<long long> ids;
    for (const auto& l : first) ids.insert(event_id(l));
    for (const auto& l : rest) ids.insert(event_id(l));
    EXPECT_EQ(ids.size(), 40u);

    // Under `| head -1` on a topic larger than a pipe holds: what was not written stays.
    seed("big", 1, 20000);
    int code = -1;
    sh("'" KBRIDGE_BINARY "' consume big -b '" + b() + "' -G h -e" + g + " | head -1 >/dev/null",
       &code);
    const auto left = sorted_lines(kbridge("consume big -b '" + b() + "' -G h -e" + g));
    // At most what fit in the pipe was committed (the batch cut short commits nothing).
    EXPECT_GT(left.size(), 15000u);
    EXPECT_LE(left.size(), 20000u);
}

TEST_F(Shell, ProduceCsvAndRawLinesWithKeysAndHeaders) {
    kafka.create_topic("csv", 1);
    kafka.create_topic("raw", 1);
    kafka.create_topic("dlq", 1);
    write_file(dir.file("in.csv"), "alice,30\nbob,41\n\"carol, jr\",7\nbroken\n");
    int code = -1;
    sh("'" KBRIDGE_BINARY "' produce csv -b '" + b() +
           "' --format csv --columns name,age -k '{name}' -H 'age={age}' -H 'via=kbridge' -l '" +
           dir.file("in.csv") + "'",
       &code);
    EXPECT_EQ(code, 1) << last_err;  // line 4 never reached Kafka
    EXPECT_NE(last_err.find("kbridge: line 4: invalid_csv: "), std::string::npos) << last_err;
    EXPECT_NE(last_err.find("read 4, delivered 3, 1 invalid"), std::string::npos) << last_err;
    EXPECT_EQ(sh("kcat -C -b '" + b() + "' -t csv -e -q -f '%k|%s|%h\\n'"),
              "alice|alice,30|age=30,via=kbridge\nbob|bob,41|age=41,via=kbridge\n"
              "carol, jr|\"carol, jr\",7|age=7,via=kbridge\n");

    sh("printf 'one\\ntwo words\\n\\nthree\\n' | '" KBRIDGE_BINARY "' produce raw -b '" + b() +
           "' -k 'line-{_offset}' -H 'h=x' -p 0",
       &code);
    EXPECT_EQ(code, 0) << last_err;
    EXPECT_EQ(sh("kcat -C -b '" + b() + "' -t raw -e -q -f '%p %k|%s|%h\\n'"),
              "0 line-1|one|h=x\n0 line-2|two words|h=x\n0 line-4|three|h=x\n");

    // With a dead-letter topic every line was acknowledged by Kafka: exit 0.
    sh("printf '{\"id\":1}\\nnot json\\n' | '" KBRIDGE_BINARY "' produce raw -b '" + b() +
           "' --format json -k '{id}' --dead-letter dlq",
       &code);
    EXPECT_EQ(code, 0) << last_err;
    const auto dead = kcat_consume(b(), "dlq");
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].value, "not json");

    // --dry-run sends nothing.
    const std::string dry =
        sh("printf 'a\\nb\\n' | '" KBRIDGE_BINARY "' produce raw -b '" + b() + "' --dry-run");
    EXPECT_EQ(dry,
              "produce\ttopic=raw key=(none) value=a\nproduce\ttopic=raw key=(none) value=b\n");
    EXPECT_EQ(message_count(b(), "raw"), 4);
}

}  // namespace
}  // namespace kbridge::test
