// mysql_table against a real MariaDB: JSON, DECIMAL, DATETIME(6)/TIMESTAMP(6) from ISO strings
// (with and without a zone) and utf8mb4 text arrive as written.
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

}  // namespace
}  // namespace kbridge::test
