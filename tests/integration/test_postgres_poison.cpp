// Kafka -> PostgreSQL with batches the table refuses wholly or in part: every good record lands
// once, every refused one reaches the dead letter with the reason. Counted by id with the test's
// own libpq session and kcat, never from kbridge's logs.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "connectors/kafka/embedded.h"
#include "support/kafka_check.h"
#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

class PoisonBatches : public ::testing::Test {
  public:  // for the helpers shared by insert and upsert
    TempDir dir;
    PostgresServer pg{dir};
    EmbeddedKafka kafka{1};

    void SetUp() override {
        kafka.create_topic("ev", 1);  // one partition: batches hold the records in their order
        pg.exec(
            "CREATE TABLE events (id bigint PRIMARY KEY, user_id int CHECK (user_id >= 0),"
            " action text NOT NULL, item text, ts bigint)");
    }
    RunResult run(const std::string& sink, bool dead_letter = true) {
        const std::string path = dir.file("poison.yaml");
        write_file(path,
                   "version: 1\nkafka: {brokers: '" + kafka.bootstraps() + "'}\npostgres: {url: '" +
                       pg.url() +
                       "'}\npipelines:\n  - name: poison\n    source: {type: kafka, topics: [ev],"
                       " properties: {session.timeout.ms: '6000'}}\n"
                       "    sink: {type: postgres_table, table: events, batch_size: 500" +
                       sink + "}\n" +
                       (dead_letter ? "    dead_letter: {type: kafka, topic: ev_dlq}\n" : ""));
        return run_kbridge({"run", path, "--once", "--state-dir", dir.file("state")},
                           dir.path().string(), {});
    }
    void produce(const std::vector<std::string>& lines) {
        kcat_produce(kafka.bootstraps(), "ev", lines, dir.path().string());
    }
    std::set<long long> ids_in_table(const std::string& where = "true") {
        std::set<long long> ids;
        for (const auto& row : pg.query("SELECT id FROM events WHERE " + where))
            ids.insert(std::stoll(*row[0]));
        return ids;
    }
    long long count(const std::string& sql) { return std::stoll(pg.scalar(sql)); }
};

// Events `from` to `to` whose action is null (odd ones) or missing (even ones).
std::vector<std::string> without_action(int from, int to) {
    std::vector<std::string> lines;
    for (int id = from; id < to; ++id)
        lines.push_back("{\"id\":" + std::to_string(id) + ",\"user_id\":1" +
                        (id % 2 ? ",\"action\":null" : "") + ",\"item\":\"i\",\"ts\":1}");
    return lines;
}

std::set<long long> range(int from, int to) {
    std::set<long long> ids;
    for (int id = from; id < to; ++id) ids.insert(id);
    return ids;
}

// The dead letter's records by id; each must name the reason and the message's `needle`.
std::multiset<long long> dead_ids(const std::vector<Consumed>& dead) {
    std::multiset<long long> ids;
    for (const auto& m : dead) ids.insert(event_id(m.value));
    return ids;
}

void expect_all_name(const std::vector<Consumed>& dead, const std::string& needle) {
    for (const auto& m : dead) {
        EXPECT_NE(m.headers.find("kbridge.error.reason=database"), std::string::npos) << m.headers;
        EXPECT_NE(m.headers.find(needle), std::string::npos) << m.headers;
    }
}

void all_refused_batches(PoisonBatches& t, const std::string& sink) {
    // 2,000 refused (4 batches of 500 with nothing good), then 1,000 good ones.
    std::vector<std::string> lines = without_action(0, 2000);
    for (const auto& e : make_events(2000, 3000)) lines.push_back(e);
    t.produce(lines);
    const RunResult r = t.run(sink);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(t.count("SELECT count(*) FROM events WHERE id >= 2000"), 1000);
    EXPECT_EQ(t.ids_in_table("id >= 2000"), range(2000, 3000));
    EXPECT_EQ(t.count("SELECT count(*) FROM events WHERE id < 2000 AND action <> 'old'"), 0);
    const auto dead = kcat_consume(t.kafka.bootstraps(), "ev_dlq");
    const auto ids = dead_ids(dead);
    EXPECT_EQ(dead.size(), 2000u);
    EXPECT_EQ(std::set<long long>(ids.begin(), ids.end()), range(0, 2000));
    expect_all_name(dead, "null value in column \"action\" of relation \"events\"");
}

TEST_F(PoisonBatches, InsertBatchesAllRefusedGoWhollyToTheDeadLetterAndTheRestCommitOnce) {
    all_refused_batches(*this, "");
}

TEST_F(PoisonBatches, UpsertBatchesAllRefusedLeaveTheRowsThereUntouched) {
    pg.exec("INSERT INTO events SELECT g, 0, 'old', 'old', 0 FROM generate_series(0, 2998, 2) g");
    all_refused_batches(*this, ", mode: upsert");
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE id < 2000"), 1000);
}

TEST_F(PoisonBatches, ExactlyOnceAllRefusedBatchesCommitTheGoodOnesOnceOverTwoRuns) {
    all_refused_batches(*this, ", exactly_once: true");
    const RunResult again = run(", exactly_once: true");
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(count("SELECT count(*) FROM events"), 1000);
    EXPECT_EQ(kcat_consume(kafka.bootstraps(), "ev_dlq").size(), 2000u);
}

// One record in a hundred refused, of every kind: found before sending (null, missing, no digit
// for an integer) and found by the database (a CHECK), whose own message is kept.
void one_percent_refused(PoisonBatches& t, const std::string& sink) {
    std::vector<std::string> lines = make_events(0, 3000);
    std::set<long long> refused;
    for (int id = 50, kind = 0; id < 3000; id += 100, ++kind) {
        refused.insert(id);
        const std::string i = std::to_string(id);
        const std::string bad[] = {
            "{\"id\":" + i + ",\"user_id\":1,\"action\":null}",
            "{\"id\":" + i + ",\"user_id\":1,\"item\":\"no action\"}",
            "{\"id\":" + i + ",\"user_id\":\"many\",\"action\":\"x\"}",
            "{\"id\":" + i + ",\"user_id\":-1,\"action\":\"x\"}",
        };
        lines[static_cast<size_t>(id)] = bad[kind % 4];
    }
    t.produce(lines);
    const RunResult r = t.run(sink);
    ASSERT_EQ(r.code, 0) << r.err;
    std::set<long long> good = range(0, 3000);
    for (long long id : refused) good.erase(id);
    EXPECT_EQ(t.count("SELECT count(*) FROM events WHERE action <> 'old'"), 2970);
    EXPECT_EQ(t.ids_in_table("action <> 'old'"), good);
    const auto dead = kcat_consume(t.kafka.bootstraps(), "ev_dlq");
    const auto ids = dead_ids(dead);
    EXPECT_EQ(dead.size(), 30u);
    EXPECT_EQ(std::set<long long>(ids.begin(), ids.end()), refused);
    std::string all;
    for (const auto& m : dead) all += m.headers + "\n";
    EXPECT_NE(all.find("the record's value is null"), std::string::npos) << all;
    EXPECT_NE(all.find("the record has none"), std::string::npos) << all;
    EXPECT_NE(all.find("invalid input syntax for type integer: \"many\" (column \"user_id\""),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("violates check constraint \"events_user_id_check\""), std::string::npos)
        << all;
    expect_all_name(dead, "kbridge.error.message=");
}

TEST_F(PoisonBatches, InsertOnePercentRefusedOfEveryKind) {
    one_percent_refused(*this, "");
}

TEST_F(PoisonBatches, UpsertOnePercentRefusedOfEveryKind) {
    pg.exec("INSERT INTO events SELECT g, 0, 'old', 'old', 0 FROM generate_series(0, 2998, 2) g");
    one_percent_refused(*this, ", mode: upsert");
    // The refused ones that were there are as they were.
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE action = 'old'"), 30);
}

// Without a dead letter the run stops at a record refused before sending: the records before it
// are written once, and reruns stop at it again without writing them twice.
TEST_F(PoisonBatches, WithoutADeadLetterARecordRefusedBeforeSendingStopsTheRunAtIt) {
    std::vector<std::string> lines = make_events(0, 100);
    lines.push_back(R"({"id":100,"user_id":1,"action":null})");
    const auto after = make_events(101, 110);
    lines.insert(lines.end(), after.begin(), after.end());
    produce(lines);
    for (int run_number = 0; run_number < 2; ++run_number) {
        const RunResult r = run("", false);
        EXPECT_EQ(r.code, 1);
        EXPECT_NE(r.err.find("violates not-null constraint"), std::string::npos) << r.err;
        EXPECT_EQ(count("SELECT count(*) FROM events"), 100);
        EXPECT_EQ(count("SELECT count(DISTINCT id) FROM events WHERE id < 100"), 100);
    }
}

// What the table's definition cannot settle is left to the database, which accepts these: a
// trigger filling in a NULL, a default for a missing value, digits amid spaces for an integer.
TEST_F(PoisonBatches, WhatATriggerOrDefaultMayFixIsLeftToTheDatabase) {
    pg.exec("ALTER TABLE events ADD COLUMN note text NOT NULL DEFAULT 'none'");
    pg.exec(
        "CREATE FUNCTION fill_action() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN NEW.action := coalesce(NEW.action, 'filled'); RETURN NEW; END$$");
    pg.exec(
        "CREATE TRIGGER fill BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fill_action()");
    produce({R"({"id":1,"user_id":" 7 ","action":null})", R"({"id":2,"user_id":1})",
             R"({"id":3,"user_id":1,"action":"a","note":null})"});
    const RunResult r = run("");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE action = 'filled' AND note = 'none'"), 2)
        << r.err;
    EXPECT_EQ(count("SELECT user_id FROM events WHERE id = 1"), 7);
    // The NULL given for `note` no trigger fills: the database refuses it with its own message.
    const auto dead = kcat_consume(kafka.bootstraps(), "ev_dlq");
    ASSERT_EQ(dead.size(), 1u) << r.err;
    EXPECT_EQ(event_id(dead[0].value), 3);
    EXPECT_NE(dead[0].headers.find("null value in column \"note\""), std::string::npos);
    EXPECT_EQ(dead[0].headers.find("before sending"), std::string::npos) << dead[0].headers;
}

}  // namespace
}  // namespace kbridge::test
