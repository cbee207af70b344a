// Where an upsert's key comes from: the columns mapping, then the value's field of the key
// column's name, then the record key; else the record is refused as missing_key.
#include <gtest/gtest.h>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

class PostgresKeys : public ::testing::Test {
  protected:
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{1};

    RunResult run(const std::string& topic, const std::string& sink_extra) {
        const std::string path = dir.file(topic + ".yaml");
        write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
                             "'}\npipelines:\n  - name: " + topic +
                             "\n    source: {type: kafka, "
                             "topics: [" +
                             topic +
                             "], join_group: false}\n    sink: {type: "
                             "postgres_table, table: users, mode: upsert, url: '" +
                             pg.url() + "'" + sink_extra +
                             "}\n    dead_letter: {type: kafka, topic: dlq}\n");
        return run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")},
                           dir.path().string());
    }
    std::string rows() {
        return pg.scalar("SELECT string_agg(id || '=' || name, ' ' ORDER BY id) FROM users");
    }
};

TEST_F(PostgresKeys, TheValueComesBeforeTheRecordKeyWithOrWithoutAMapping) {
    pg.exec("CREATE TABLE users (id int PRIMARY KEY, name text)");
    kafka.create_topic("mapped", 1);
    kafka.create_topic("plain", 1);
    // KEY<TAB>VALUE: the value's id wins over the record key; without one, the key decides.
    kcat_produce(kafka.bootstraps(), "mapped",
                 {"1\t{\"id\":100,\"name\":\"a\"}", "2\t{\"name\":\"b\"}",
                  "3\t{\"id\":null,\"name\":\"c\"}", "{\"name\":\"no key anywhere\"}"},
                 dir.path().string());
    RunResult r = run("mapped", ", columns: {name: '{name}!'}");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(rows(), "2=b! 3=c! 100=a!");
    kcat_produce(kafka.bootstraps(), "plain",
                 {"4\t{\"id\":400,\"name\":\"d\"}", "5\t{\"id\":null,\"name\":\"e\"}",
                  "{\"id\":6}\t{\"name\":\"f\"}", "{\"name\":\"no key anywhere\"}"},
                 dir.path().string());
    r = run("plain", "");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(rows(), "2=b! 3=c! 5=e 6=f 100=a! 400=d");
    const auto dead = kcat_consume(kafka.bootstraps(), "dlq");
    ASSERT_EQ(dead.size(), 2u);
    for (const auto& d : dead)
        EXPECT_NE(d.headers.find("kbridge.error.reason=missing_key"), std::string::npos)
            << d.headers;
}

}  // namespace
}  // namespace kbridge::test
