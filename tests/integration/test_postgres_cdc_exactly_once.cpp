// postgres_cdc -> Kafka with exactly_once: each PostgreSQL transaction goes out in a Kafka
// transaction committed with the source's position in a compacted offsets topic, where a
// restart resumes. librdkafka's mock cluster runs the transaction protocol but keeps aborted
// records readable (read_committed filters nothing there), so these tests count what each run
// sent: nothing committed is sent again, and an aborted transaction is sent again whole.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "postgres_cdc_fixture.h"

namespace kbridge::test {
namespace {

const std::string kExactlyOnce = "      exactly_once: true\n";

// Writes `transactions` transactions of 1, 2, 3, ... rows; returns the rows written.
int write_transactions(PostgresServer& pg, int transactions) {
    int rows = 0;
    for (int t = 1; t <= transactions; ++t) {
        pg.exec("INSERT INTO events (note) SELECT 'x' FROM generate_series(1, " +
                std::to_string(t) + ")");
        rows += t;
    }
    return rows;
}

TEST_F(PostgresCdc, ExactlyOnceResumesAtThePositionCommittedInKafkaAfterKill9) {
    // The slot is confirmed once an hour here, so after each kill PostgreSQL streams again what
    // was committed; only the position in the offsets topic tells where to resume.
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    const std::string path = config(
        "      tables: [events]\n      snapshot: never\n      status_interval: 1h\n", kExactlyOnce);
    ASSERT_EQ(run(path).code, 0) << "creating the slot";
    int written = 0;
    for (int kill = 0; kill < 3; ++kill) {
        written += write_transactions(pg, 10);  // while no kbridge runs
        Process follow(args(path, false), dir.path().string(), env());
        written += write_transactions(pg, 10);
        wait_for_messages(follow, written);
        // Every transaction arrived: let the last commit finish (commit_interval is 100 ms),
        // so the kill finds no transaction open.
        std::this_thread::sleep_for(1s);
        follow.signal(SIGKILL);
        ASSERT_EQ(follow.wait(20s), 128 + SIGKILL);
    }
    written += write_transactions(pg, 5);
    const RunResult rest = run(path);
    ASSERT_EQ(rest.code, 0) << rest.err;
    expect_each_once(ids(consume()), written);
    // The position lives in Kafka, keyed by the transactional id, not in the state dir.
    EXPECT_FALSE(std::filesystem::exists(dir.file("state/p.position")));
    const auto positions = consume("kbridge_offsets");
    ASSERT_FALSE(positions.empty());
    EXPECT_EQ(positions.back().key.value_or(""), "kbridge-p");
    EXPECT_NE(positions.back().value.value_or("").find("\"commit_lsn\":\""), std::string::npos)
        << positions.back().value.value_or("(tombstone)");
}

TEST_F(PostgresCdc, ExactlyOnceAbortsAStopInsideATransactionAndTheRestartSendsItWhole) {
    int64_t aborted = 0;
    ASSERT_NO_FATAL_FAILURE(stop_inside_a_transaction_then_finish(kExactlyOnce, aborted));
    // Not a part of the transaction was committed: the restart sent all of it (read_committed
    // consumers of a real broker see only that).
    const auto changes = consume();
    EXPECT_EQ(static_cast<int64_t>(changes.size()), aborted + 40000);
    const auto seen = ids(changes);
    EXPECT_EQ(seen.size(), 40000u);
    for (const auto& [id, times] : seen) ASSERT_LE(times, 2) << "id " << id;
}

TEST_F(PostgresCdc, ExactlyOnceConfirmsTheSlotOnlyUpToWhatKafkaCommitted) {
    // Kafka acknowledges every record at once, but nothing commits for an hour while the
    // source reports its position every 100 ms: a kill then leaves it all to send again.
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    const std::string path =
        config("      tables: [events]\n      snapshot: never\n      status_interval: 100ms\n",
               kExactlyOnce + "      commit_interval: 1h\n");
    ASSERT_EQ(run(path).code, 0);
    const int written = write_transactions(pg, 20);
    {
        Process follow(args(path, false), dir.path().string(), env());
        wait_for_messages(follow, written);
        std::this_thread::sleep_for(1s);  // ten status updates
        follow.signal(SIGKILL);
        ASSERT_EQ(follow.wait(20s), 128 + SIGKILL);
    }
    const RunResult rest = run(path);
    ASSERT_EQ(rest.code, 0) << rest.err;
    const auto seen = ids(consume());
    ASSERT_EQ(seen.size(), static_cast<size_t>(written));
    for (const auto& [id, times] : seen) ASSERT_EQ(times, 2) << "id " << id << " sent again?";
}

TEST_F(PostgresCdc, ExactlyOnceSnapshotAndChangesArriveOnceAndARerunSendsNothingAgain) {
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    pg.exec("INSERT INTO events (note) SELECT 'old' FROM generate_series(1, 3000)");
    const std::string path = config("      tables: [events]\n", kExactlyOnce);
    ASSERT_EQ(run(path).code, 0);
    pg.exec("INSERT INTO events (note) SELECT 'new' FROM generate_series(1, 1000)");
    ASSERT_EQ(run(path).code, 0);
    ASSERT_EQ(run(path).code, 0);
    const auto changes = consume();
    expect_each_once(ids(changes), 4000);
    EXPECT_EQ(ids(changes, "r").size(), 3000u);
    const RunResult shown = run_kbridge(
        {"state", "show", path, "p", "--state-dir", dir.file("state")}, dir.path().string(), env());
    EXPECT_EQ(shown.code, 0) << shown.err;
    EXPECT_NE(shown.out.find("committed in Kafka by kafka:changes"), std::string::npos)
        << shown.out;
    EXPECT_NE(shown.out.find("snapshot = done"), std::string::npos) << shown.out;
    // A reset forgets the position kept in Kafka too: the next run reads the table again.
    const std::vector<std::string> state{"state", "reset",       path,
                                         "p",     "--state-dir", dir.file("state")};
    ASSERT_EQ(run_kbridge(state, dir.path().string(), env()).code, 0);
    ASSERT_EQ(run(path).code, 0);
    EXPECT_EQ(ids(consume(), "r").size(), 4000u);
    for (const auto& [id, times] : ids(consume(), "r"))
        ASSERT_EQ(times, id <= 3000 ? 2 : 1) << "id " << id;
}

TEST_F(PostgresCdc, ExactlyOnceSplitsATransactionOutlastingHalfTheTimeoutAtExactPositions) {
    // transaction.timeout.ms 1 s: a transaction streaming longer than 0.5 s is committed in parts,
    // each with the index of its last change; a stop then resumes right after that change. One
    // change per batch makes 100,000 of them stream for longer.
    pg.exec("CREATE TABLE events (id serial PRIMARY KEY, note text)");
    const std::string path =
        config("      tables: [events]\n      snapshot: never\n      batch_size: 1\n",
               kExactlyOnce + "      properties: {transaction.timeout.ms: '1000'}\n");
    ASSERT_EQ(run(path).code, 0);
    const int64_t positions_before = message_count(kafka.bootstraps(), "kbridge_offsets");
    pg.exec("INSERT INTO events (note) SELECT 'x' FROM generate_series(1, 100000)");
    {
        Process follow(args(path, false), dir.path().string(), env());
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (message_count(kafka.bootstraps(), "kbridge_offsets") == positions_before) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << follow.err();
            std::this_thread::sleep_for(20ms);
        }
        follow.signal(SIGTERM);
        ASSERT_EQ(follow.wait(20s), 0) << follow.err();
        EXPECT_NE(follow.err().find("committed in parts"), std::string::npos) << follow.err();
    }
    const std::string committed = consume("kbridge_offsets").back().value.value_or("");
    const auto at = committed.find("\"index\":\"");
    ASSERT_NE(at, std::string::npos) << committed;
    const int64_t index = std::stoll(committed.substr(at + 9));
    const int64_t first_run = message_count(kafka.bootstraps(), "changes");
    const RunResult rest = run(path);
    ASSERT_EQ(rest.code, 0) << rest.err;
    // The first run's records after `index` were aborted (visible on the mock cluster): the
    // rest sends exactly the changes after `index`.
    const auto changes = consume();
    EXPECT_EQ(static_cast<int64_t>(changes.size()), first_run + 100000 - index) << committed;
    const auto seen = ids(changes);
    EXPECT_EQ(seen.size(), 100000u);
    for (long long id = 1; id <= index; ++id)
        ASSERT_EQ(seen.at(id), 1) << "id " << id << " was committed before the stop";
}

TEST_F(PostgresCdc, ExactlyOnceIsRefusedWhereItCannotHold) {
    const std::string other = dir.file("other.yaml");
    write_file(other,
               "version: 1\npipelines:\n  - name: q\n    source: {type: stdin}\n    sink: {type: "
               "kafka, brokers: 'localhost:1', topic: t, exactly_once: true}\n");
    RunResult r = run_kbridge({"run", other, "--dry-run"}, dir.path().string(), env());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("exactly_once into kafka needs a postgres_cdc source"), std::string::npos)
        << r.err;
    const std::string path =
        config("      tables: [events]\n", kExactlyOnce + "      partition: 1\n");
    r = run_kbridge({"run", path, "--dry-run"}, dir.path().string(), env());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("exactly_once keeps the partitioner's choice"), std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace kbridge::test
