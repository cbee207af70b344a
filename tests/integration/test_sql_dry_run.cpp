// --dry-run and `kbridge check` write nothing to the target database: no offsets table, no
// offsets rows, no rows; `check` says what a run would create. Server NOTICEs stay off stderr.
#include <gtest/gtest.h>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

class SqlDryRun : public ::testing::Test {
  protected:
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{1};

    std::string config() {
        const std::string path = dir.file("dry.yaml");
        write_file(path, "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
                             "'}\npostgres: {url: '" + pg.url() +
                             "'}\npipelines:\n  - name: dry\n    source: {type: kafka, topics: "
                             "[ev], properties: {session.timeout.ms: '6000'}}\n"
                             "    sink: {type: postgres_table, table: events, exactly_once: "
                             "true, mode: upsert}\n");
        return path;
    }
    RunResult kbridge(std::vector<std::string> args) {
        if (args[0] == "run") args.insert(args.end(), {"--state-dir", dir.file("state")});
        return run_kbridge(args, dir.path().string(), {});
    }
    // Every relation of the database's own schemas, and the events table's rows.
    std::string relations() {
        return pg.scalar(
            "SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '') FROM pg_class c JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
            "'information_schema', 'pg_toast') AND c.relkind = 'r'");
    }
};

TEST_F(SqlDryRun, DryRunAndCheckLeaveAnEmptyDatabaseEmpty) {
    kafka.create_topic("ev", 1);
    pg.exec("CREATE TABLE events (id bigint PRIMARY KEY, user_id int, action text)");
    kcat_produce(kafka.bootstraps(), "ev", make_events(0, 20), dir.path().string());
    const std::string path = config();

    RunResult r = kbridge({"check", path});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("would create table kbridge_offsets"), std::string::npos) << r.out;
    EXPECT_EQ(relations(), "events");

    r = kbridge({"run", path, "--dry-run"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(relations(), "events");
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM events"), "0");

    // A run creates the offsets table; NOTICEs about it are not printed.
    r = kbridge({"run", path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(relations(), "events,kbridge_offsets");
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM events"), "20");
    r = kbridge({"run", path, "--once"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err.find("NOTICE"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("already exists"), std::string::npos) << r.err;

    // With the table there, check creates nothing and says nothing would be.
    const std::string offsets = pg.scalar("SELECT count(*) FROM kbridge_offsets");
    r = kbridge({"check", path});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(r.out.find("would create"), std::string::npos) << r.out;
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM kbridge_offsets"), offsets);
}

}  // namespace
}  // namespace kbridge::test
