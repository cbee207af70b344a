// Numbers arrive as they were written: no round trip through a double anywhere between a source
// and a sink. Checked in PostgreSQL (by SQL comparison), in Kafka (read back with kcat) and on
// stdout.
#include <gtest/gtest.h>

#include <map>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

// Each number: valid JSON, and past what a double holds exactly (or written so that a double
// would print it differently).
const std::vector<std::string> kNumbers = {"12345678901234567890.12",
                                           "99999999999999999.99",
                                           "3.14159265358979323846",
                                           "1.0000000000000000000001",
                                           "1e2",
                                           "-0",
                                           "100000000000000000000.0",
                                           "18446744073709551616",
                                           "-9223372036854775809",
                                           "1e400",
                                           "-1.5E-400",
                                           "123456789012345678901234567890",
                                           "0.000000000000000000000000000001"};

class ExactNumbers : public ::testing::Test {
  protected:
    TempDir dir;
    EmbeddedKafka kafka{1};

    std::map<std::string, std::string> env(const std::string& pg_url = "") const {
        std::map<std::string, std::string> e{{"KAFKA_BROKERS", kafka.bootstraps()}};
        if (!pg_url.empty()) e["PG_URL"] = pg_url;
        return e;
    }
    RunResult run(const std::string& yaml, const std::map<std::string, std::string>& env,
                  std::vector<std::string> extra = {}) {
        const std::string path = dir.file("p.yaml");
        write_file(path, yaml);
        std::vector<std::string> args{"run", path, "--once", "--state-dir", dir.file("state")};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_kbridge(args, dir.path().string(), env);
    }
    // Runs `yaml` with `lines` on stdin.
    RunResult run_stdin(const std::string& yaml, const std::string& lines) {
        const std::string path = dir.file("stdin.yaml"), in = dir.file("in.jsonl");
        write_file(path, yaml);
        write_file(in, lines);
        Process p({KBRIDGE_BINARY, "run", path, "--once", "--state-dir", dir.file("state")},
                  dir.path().string(), env(), in);
        const int code = p.wait();
        return {code, p.out(), p.err()};
    }
};

TEST_F(ExactNumbers, UpsertedIntoNumericTextAndJsonbColumnsAsWritten) {
    PostgresServer pg{dir};
    kafka.create_topic("nums", 1);
    pg.exec("CREATE TABLE nums (id int PRIMARY KEY, amount numeric, t text, j jsonb, js json)");
    std::vector<std::string> lines;
    for (size_t i = 0; i < kNumbers.size(); ++i) {
        const std::string& n = kNumbers[i];
        lines.push_back(std::to_string(i) + "\t{\"id\":" + std::to_string(i) + ",\"amount\":" + n +
                        ",\"t\":" + n + ",\"j\":{\"n\":" + n + "},\"js\":[" + n + "]}");
    }
    kcat_produce(kafka.bootstraps(), "nums", lines, dir.path().string());
    const RunResult r =
        run("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n  - name: k2p\n"
            "    source: {type: kafka, topics: [nums], join_group: false}\n"
            "    sink: {type: postgres_table, table: nums, mode: upsert, url: '${PG_URL}'}\n",
            env(pg.url()));
    ASSERT_EQ(r.code, 0) << r.err;
    for (size_t i = 0; i < kNumbers.size(); ++i) {
        const std::string& n = kNumbers[i];
        SCOPED_TRACE(n);
        const std::string row = " FROM nums WHERE id = " + std::to_string(i);
        EXPECT_EQ(pg.scalar("SELECT (amount = '" + n + "'::numeric)::text" + row), "true");
        EXPECT_EQ(pg.scalar("SELECT t" + row), n);
        EXPECT_EQ(pg.scalar("SELECT (j = '{\"n\": " + n + "}'::jsonb)::text" + row), "true");
        EXPECT_EQ(pg.scalar("SELECT js::text" + row), "[" + n + "]");
    }
}

TEST_F(ExactNumbers, KeysHeadersTopicsAndCsvCarryTheDigitsAsWritten) {
    kafka.create_topic("out", 1);
    std::string lines;
    for (const auto& n : kNumbers) lines += "{\"n\":" + n + ",\"s\":\"x\"}\n";
    auto r = run_stdin(
        "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n  - name: in\n"
        "    source: {type: stdin}\n"
        "    sink: {type: kafka, topic: out, key: '{n}', headers: {n: 'n={n}'}}\n",
        lines);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto got = kcat_consume(kafka.bootstraps(), "out");
    ASSERT_EQ(got.size(), kNumbers.size());
    for (size_t i = 0; i < kNumbers.size(); ++i) {
        EXPECT_EQ(got[i].key, kNumbers[i]);
        EXPECT_EQ(got[i].headers, "n=n=" + kNumbers[i]);
        EXPECT_EQ(got[i].value, "{\"n\":" + kNumbers[i] + ",\"s\":\"x\"}");
    }

    // A topic named from a number, and the same numbers written as CSV.
    r = run_stdin(
        "version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npipelines:\n  - name: in\n"
        "    source: {type: stdin}\n    sink: {type: kafka, topic: 'n.{n}'}\n",
        "{\"n\":1e2}\n");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(kcat_consume(kafka.bootstraps(), "n.1e2").size(), 1u);
    r = run_stdin(
        "version: 1\npipelines:\n  - name: csv\n    source: {type: stdin}\n"
        "    sink: {type: stdout, format: csv, columns: [n, s]}\n",
        lines);
    ASSERT_EQ(r.code, 0) << r.err;
    std::string expected;
    for (const auto& n : kNumbers) expected += n + ",x\n";
    EXPECT_EQ(r.out, expected);
}

// What the PostgreSQL source exports, the PostgreSQL sink writes back identically: every value
// of every row, compared by SQL in both directions.
TEST_F(ExactNumbers, PostgresToKafkaToPostgresRoundTripIsExact) {
    PostgresServer pg{dir};
    kafka.create_topic("rows", 1);
    const std::string columns =
        "(id int PRIMARY KEY, n numeric(60,30), nn numeric, f8 float8, f4 real, i8 bigint, "
        "i2 smallint, m money, b bool, t text, j jsonb)";
    pg.exec("CREATE TABLE src " + columns + "; CREATE TABLE dst " + columns);
    pg.exec(R"SQL(INSERT INTO src VALUES
        (1, 123456789012345678901234567890.123456789012345678901234567890,
         123456789012345678901234567890123456789, 1.7976931348623157e308, 3.4028235e38,
         9223372036854775807, 32767, 92233720368547758.07, true, 'x', '{"n": 1e2}'),
        (2, -0.000000000000000000000000000001, 'NaN', 5e-324, 1e-45, -9223372036854775808,
         -32768, -92233720368547758.08, false, '', '{"n": 12345678901234567890.12}'),
        (3, 0, -1e-300, '-0', '-0', 0, 0, 0, NULL, NULL, '[1.0, -0]'),
        (4, NULL, 1e300, 'NaN', 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL),
        (5, NULL, NULL, 'Infinity', '-Infinity', NULL, NULL, NULL, NULL, NULL, '{}'),
        (6, NULL, NULL, '-Infinity', 'NaN', NULL, NULL, NULL, NULL, NULL, NULL),
        (7, NULL, NULL, 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL))SQL");
    RunResult r =
        run("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: '${PG_URL}'}\n"
            "pipelines:\n  - name: out\n    source: {type: postgres_table, table: src}\n"
            "    sink: {type: kafka, topic: rows}\n",
            env(pg.url()));
    ASSERT_EQ(r.code, 0) << r.err;
    r =
        run("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: '${PG_URL}'}\n"
            "pipelines:\n  - name: back\n    source: {type: kafka, topics: [rows], join_group: "
            "false}\n    sink: {type: postgres_table, table: dst}\n",
            env(pg.url()));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM dst"), "7");
    // Text forms, so that -0 and 0, or NaN and NaN, compare as written.
    const std::string as_text =
        "SELECT id, n::text, nn::text, f8::text, f4::text, i8::text, i2::text, m::text, b::text, "
        "t, j::text FROM ";
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM (" + as_text + "src EXCEPT " + as_text + "dst) x"),
              "0");
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM (" + as_text + "dst EXCEPT " + as_text + "src) x"),
              "0");
}

// --dry-run decodes the PostgreSQL source's own export of a numeric past 64 bits.
TEST_F(ExactNumbers, DryRunShowsAnExportedNumericPastSixtyFourBits) {
    PostgresServer pg{dir};
    pg.exec(
        "CREATE TABLE big (id int PRIMARY KEY, n numeric); INSERT INTO big VALUES "
        "(1, 123456789012345678901234567890)");
    const RunResult r =
        run("version: 1\nkafka: {brokers: '${KAFKA_BROKERS}'}\npostgres: {url: '${PG_URL}'}\n"
            "pipelines:\n  - name: out\n    source: {type: postgres_table, table: big}\n"
            "    sink: {type: kafka, topic: 'big.{n}', key: '{n}'}\n",
            env(pg.url()), {"--dry-run"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find("DEAD LETTER"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("topic=big.123456789012345678901234567890 "
                         "key=123456789012345678901234567890"),
              std::string::npos)
        << r.out;
}

}  // namespace
}  // namespace kbridge::test
