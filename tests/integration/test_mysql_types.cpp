// mysql_table against a real MariaDB: JSON, DECIMAL, DATETIME(6)/TIMESTAMP(6) from ISO strings
// (with and without a zone) and utf8mb4 text arrive as written, by INSERT and by LOAD DATA.
#include <gtest/gtest.h>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/mariadb.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

TEST(MysqlTypes, JsonDecimalTimesAndEmojiRoundTrip) {
    TempDir dir;
    MariadbServer db(dir);
    EmbeddedKafka kafka{1};
    kafka.create_topic("ev", 1);
    db.exec(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, amount "
        "DECIMAL(40,20), doc JSON, at DATETIME(6), ts TIMESTAMP(6) NULL) ENGINE=InnoDB");
    kcat_produce(kafka.bootstraps(), "ev",
                 {R"({"id":1,"name":"b😀🎉","amount":12345678901234567890.12345678901234567890,)"
                  R"("doc":{"a":[1,2.50,"x"],"b":null},"at":"2024-01-02T03:04:05.123456Z",)"
                  R"("ts":"2024-01-02T03:04:05.5+02:00"})",
                  R"({"id":2,"name":"plain","amount":"-0.5","at":"2024-02-29T23:59:59"})"},
                 dir.path().string());
    const std::string path = dir.file("types.yaml");
    write_file(path,
               "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\nmysql: {url: '" +
                   db.url() +
                   "'}\npipelines:\n  - name: types\n    source: {type: kafka, topics: [ev]}\n"
                   "    sink: {type: mysql_table, table: t, mode: upsert}\n");
    const RunResult r =
        run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")}, dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(db.scalar("SELECT name FROM t WHERE id = 1"), "b😀🎉");
    EXPECT_EQ(db.scalar("SELECT amount FROM t WHERE id = 1"),
              "12345678901234567890.12345678901234567890");
    EXPECT_EQ(db.scalar("SELECT JSON_EXTRACT(doc, '$.a[1]') FROM t WHERE id = 1"), "2.50");
    EXPECT_EQ(db.scalar("SELECT JSON_TYPE(JSON_EXTRACT(doc, '$.b')) FROM t WHERE id = 1"), "NULL");
    EXPECT_EQ(db.scalar("SELECT at FROM t WHERE id = 1"), "2024-01-02 03:04:05.123456");
    EXPECT_EQ(db.scalar("SELECT CONVERT_TZ(ts, @@session.time_zone, '+00:00') FROM t WHERE id = 1"),
              "2024-01-02 01:04:05.500000");
    EXPECT_EQ(db.scalar("SELECT amount FROM t WHERE id = 2"), "-0.50000000000000000000");
    EXPECT_EQ(db.scalar("SELECT at FROM t WHERE id = 2"), "2024-02-29 23:59:59.000000");
}

// Batches of 64 rows or more go by LOAD DATA LOCAL INFILE: its text format must carry every byte,
// and what it would only warn about (LOCAL implies IGNORE) must be refused as INSERT refuses it.
// (The two refused records sit in the first half, so the second half is loaded whole.)
TEST(MysqlTypes, BulkLoadedRowsArriveAsWrittenAndRefusalsStayRefusals) {
    TempDir dir;
    MariadbServer db(dir);
    EmbeddedKafka kafka{1};
    kafka.create_topic("ev", 1);
    db.exec(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT, qty INT NOT NULL, amount "
        "DECIMAL(40,20), at DATETIME(6)) ENGINE=InnoDB");
    db.exec("INSERT INTO t VALUES (150, 'there first', 0, NULL, NULL)");
    const std::vector<std::string> notes = {R"("tab\there")",
                                            R"("line\nbreak")",
                                            R"("back\\slash")",
                                            R"("\\N")",
                                            R"("cr\rx")",
                                            R"("nul\u0000x")",
                                            R"("")",
                                            "null",
                                            R"("😀 ünï")"};
    std::vector<std::string> lines;
    for (int id = 1; id <= 1000; ++id) {
        const std::string qty = id == 77 ? R"("abc")" : std::to_string(id);
        lines.push_back("{\"id\":" + std::to_string(id) + ",\"note\":" + notes[id % notes.size()] +
                        ",\"qty\":" + qty +
                        ",\"amount\":12345678901234567890.12345678901234567890,"
                        "\"at\":\"2024-01-02T03:04:05.5+02:00\"}");
    }
    kcat_produce(kafka.bootstraps(), "ev", lines, dir.path().string());
    const std::string path = dir.file("load.yaml");
    write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\nmysql: {url: '" +
                         db.url() +
                         "'}\npipelines:\n  - name: load\n    source: {type: kafka, topics: [ev]}\n"
                         "    sink: {type: mysql_table, table: t, mode: insert}\n"
                         "    dead_letter: {type: kafka, topic: ev_dlq}\n");
    const RunResult r =
        run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")}, dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("dead-lettered 2"), std::string::npos) << r.err;
    EXPECT_NE(db.scalar("SELECT VARIABLE_VALUE FROM information_schema.global_status WHERE "
                        "VARIABLE_NAME = 'COM_LOAD'"),
              "0");
    EXPECT_EQ(db.scalar("SELECT count(*) FROM t"), "999");
    EXPECT_EQ(db.scalar("SELECT note FROM t WHERE id = 150"), "there first");
    EXPECT_EQ(db.scalar("SELECT count(*) FROM t WHERE id = 77"), "0");
    const std::vector<std::string> hex = {"7461620968657265",
                                          "6C696E650A627265616B",
                                          "6261636B5C736C617368",
                                          "5C4E",
                                          "63720D78",
                                          "6E756C0078",
                                          "",
                                          "NULL",
                                          "F09F988020C3BC6EC3AF"};
    for (int id : {1, 2, 3, 4, 5, 6, 7, 8, 9, 199, 901, 902, 903, 904, 905, 906, 907, 908, 909})
        EXPECT_EQ(
            db.scalar("SELECT COALESCE(HEX(note), 'NULL') FROM t WHERE id = " + std::to_string(id)),
            hex[id % hex.size()])
            << id;
    EXPECT_EQ(db.scalar("SELECT count(*) FROM t WHERE id <> 150 AND (qty <> id OR amount <> "
                        "'12345678901234567890.12345678901234567890' OR at <> "
                        "'2024-01-02 01:04:05.5')"),
              "0");
}

}  // namespace
}  // namespace kbridge::test
