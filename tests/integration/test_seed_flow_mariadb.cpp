// The seeds' own flow ending in another database: the 20 conn_fdw rows of the seed article go
// PostgreSQL -> Kafka -> MariaDB and arrive identical.
#include <gtest/gtest.h>

#include "connectors/kafka/embedded.h"
#include "support/mariadb.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

TEST(SeedFlow, ConnFdwRowsGoPostgresToKafkaToMariadbIdentical) {
    TempDir dir;
    PostgresServer pg(dir);
    MariadbServer maria(dir);
    EmbeddedKafka kafka{1};
    kafka.create_topic("conn_fdw", 3);
    pg.exec(R"SQL(
        CREATE TABLE public.conn_fdw (id int4 NULL, "name" varchar(50) NULL, age int4 NULL, city varchar(50) NULL, salary int4 NULL);
        INSERT INTO public.conn_fdw (id, name, age, city, salary) VALUES
          (1, 'John', 30, 'New York', 50000), (2, 'Alice', 25, 'Los Angeles', 60000), (3, 'Bob', 35, 'Chicago', 70000),
          (4, 'Eva', 28, 'San Francisco', 55000), (5, 'Mike', 32, 'Seattle', 65000), (6, 'Sophia', 29, 'Boston', 75000),
          (7, 'David', 27, 'Denver', 52000), (8, 'Emily', 31, 'Austin', 68000), (9, 'Daniel', 26, 'Phoenix', 58000),
          (10, 'Olivia', 33, 'Houston', 72000), (11, 'Liam', 24, 'Portland', 49000), (12, 'Ava', 34, 'Atlanta', 71000),
          (13, 'Logan', 30, 'Miami', 62000), (14, 'Mia', 28, 'Dallas', 54000), (15, 'Jackson', 29, 'Minneapolis', 67000),
          (16, 'Sophie', 31, 'Detroit', 59000), (17, 'William', 27, 'Philadelphia', 70000), (18, 'Emma', 32, 'San Diego', 66000),
          (19, 'James', 26, 'Raleigh', 63000), (20, 'Avery', 35, 'Tampa', 71000);
    )SQL");
    maria.exec(
        "CREATE TABLE conn_fdw (id INT PRIMARY KEY, name VARCHAR(50), age INT, city VARCHAR(50), "
        "salary INT) ENGINE=InnoDB");
    const std::string head = "version: 1\nkafka: {brokers: '" + kafka.bootstraps() +
                             "'}\npostgres: {url: '" + pg.url() + "'}\nmysql: {url: '" +
                             maria.url() + "'}\npipelines:\n";
    const std::string out = dir.file("out.yaml"), in = dir.file("in.yaml");
    write_file(out, head +
                        "  - name: pg-to-kafka\n    source: {type: postgres_table, table: "
                        "public.conn_fdw, key_columns: [id]}\n"
                        "    sink: {type: kafka, topic: conn_fdw, key: '{id}'}\n");
    write_file(in, head +
                       "  - name: kafka-to-mariadb\n    source: {type: kafka, topics: [conn_fdw]}\n"
                       "    sink: {type: mysql_table, table: conn_fdw, mode: upsert, "
                       "exactly_once: true}\n");
    for (const auto& path : {out, in}) {
        const RunResult r = run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")},
                                        dir.path().string());
        ASSERT_EQ(r.code, 0) << r.err;
    }
    const std::string source = pg.scalar(
        "SELECT string_agg(concat_ws(',', id, name, age, city, salary), ';' ORDER BY id) FROM "
        "conn_fdw");
    const std::string target = maria.scalar(
        "SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, age, city, salary) ORDER BY id SEPARATOR "
        "';') FROM conn_fdw");
    EXPECT_EQ(maria.scalar("SELECT count(*) FROM conn_fdw"), "20");
    EXPECT_EQ(target, source);
    EXPECT_NE(source.find("20,Avery,35,Tampa,71000"), std::string::npos) << source;
}

}  // namespace
}  // namespace kbridge::test
