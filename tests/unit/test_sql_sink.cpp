// The SQL sink core against a fake dialect: an in-memory table with transactions and
// savepoints, and faults on demand (transient errors, refused values, a connection lost at
// COMMIT before or after it took effect). No server.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "connectors/sql/sink.h"
#include "core/registry.h"

namespace kbridge {
namespace {

// What a database would hold: rows by key, and the stored offsets.
struct State {
    std::map<std::string, std::string> rows;  // id -> v
    std::vector<std::string> inserted;        // every inserted id, duplicates included
    StoredOffsets offsets;
    bool offsets_table = false;
};

class FakeDialect : public SqlDialect {
  public:
    State committed;
    // Faults: the next `transient` begin()s fail as a lost connection would; a value holding
    // `refused` is refused; the next COMMIT loses the connection, after taking effect or before.
    int transient = 0;
    std::string refused = "bad";
    enum class Lost { No, AfterCommit, BeforeCommit } lose_commit = Lost::No;
    int commits = 0, begins = 0, savepoints = 0;

    void connect() override { connected_ = true; }
    bool connected() const override { return connected_; }
    std::string name() const override { return "fake"; }
    std::string endpoint() const override { return "fake://"; }
    TableShape introspect() override {
        TableShape shape;
        for (const char* name : {"id", "v"}) {
            SqlColumn c;
            c.name = c.quoted = name;
            shape.columns.push_back(c);
        }
        shape.keys = {0};
        return shape;
    }
    SqlFailure classify(const SqlError& e) const override {
        if (e.connection_lost()) return SqlFailure::Transient;
        return e.code() == "refused" ? SqlFailure::Refused : SqlFailure::Fatal;
    }
    bool offsets_table_exists() override { return committed.offsets_table; }
    void create_offsets_table() override { committed.offsets_table = true; }
    std::vector<PartitionOffset> initial_offsets(const std::string&,
                                                 const std::vector<PartitionOffset>& partitions,
                                                 bool) override {
        std::vector<PartitionOffset> out;
        for (auto p : partitions) {
            auto it = committed.offsets.find({p.topic, p.partition});
            p.next_offset = it == committed.offsets.end() ? -1 : it->second;
            out.push_back(p);
        }
        return out;
    }
    StoredOffsets read_offsets(const std::string&) override { return committed.offsets; }
    StoredOffsets lock_offsets(const std::string&, const TopicPartitions&) override {
        return work_.offsets;
    }
    void write_offsets(const std::string&, const std::vector<PartitionOffset>& next) override {
        for (const auto& p : next) {
            int64_t& stored = work_.offsets[{p.topic, p.partition}];
            stored = std::max(stored, p.next_offset);
        }
    }
    void begin() override {
        ++begins;
        if (transient > 0) {
            --transient;
            connected_ = false;
            throw SqlError("connection lost", "", true);
        }
        work_ = committed;
    }
    void commit() override {
        ++commits;
        const Lost lost = lose_commit;
        lose_commit = Lost::No;
        if (lost == Lost::AfterCommit) committed = work_;
        if (lost != Lost::No) {
            connected_ = false;
            throw SqlError("connection lost during COMMIT", "", true);
        }
        committed = work_;
    }
    void rollback() override {}
    void savepoint() override {
        ++savepoints;
        saved_ = work_;
    }
    void rollback_to_savepoint() override { work_ = saved_; }
    void release_savepoint() override {}
    void insert(const SqlBatch& batch, const std::vector<size_t>& records) override {
        for (size_t r : records) {
            check(batch, r);
            const std::string id(*batch.value(r, 0));
            work_.rows[id] = std::string(batch.value(r, 1).value_or(""));
            work_.inserted.push_back(id);
        }
    }
    void remove(const SqlBatch& batch, size_t record) override {
        work_.rows.erase(std::string(*batch.value(record, 0)));
    }
    void merge(const SqlBatch& batch, const std::vector<size_t>& records) override {
        std::set<std::string> keys;
        for (size_t r : records) {
            const std::string id(*batch.value(r, 0));
            EXPECT_TRUE(keys.insert(id).second) << "two records of key " << id;
            if (batch.tombstone(r)) {
                work_.rows.erase(id);
                continue;
            }
            check(batch, r);
            work_.rows[id] = std::string(batch.value(r, 1).value_or(""));
        }
    }

  private:
    void check(const SqlBatch& batch, size_t r) {
        const auto v = batch.value(r, 1);
        if (v && v->find(refused) != std::string_view::npos)
            throw SqlError("value " + std::string(*v) + " refused", "refused");
    }
    bool connected_ = false;
    State work_, saved_;
};

struct Listener : DeliveryListener {
    int delivered_count = 0, rejected_count = 0;
    std::vector<std::string> rejected_messages, failures;
    void delivered(BatchState*) override { ++delivered_count; }
    void rejected(BatchState*, Record, const Rejection& why) override {
        ++rejected_count;
        rejected_messages.push_back(why.detail);
    }
    void failed(BatchState*, const std::string& error) override { failures.push_back(error); }
    void rejected_earlier(Record, const Rejection&) override {}
};

class SqlSinkCore : public ::testing::Test {
  protected:
    FakeDialect* fake = nullptr;
    std::unique_ptr<SqlSink> sink;
    Listener listener;
    JsonDecoder decoder;
    std::vector<std::string> keep;  // the records' bytes

    void make(SqlMode mode = SqlMode::Insert, bool exactly_once = false, bool dry_run = false,
              size_t batch_size = 1000) {
        SqlSettings s;
        s.type = "fake_table";
        s.table = "t";
        s.mode = mode;
        s.delete_on_tombstone = true;
        s.exactly_once = exactly_once;
        s.dry_run = dry_run;
        s.batch_size = batch_size;
        auto dialect = std::make_unique<FakeDialect>();
        fake = dialect.get();
        sink = std::make_unique<SqlSink>(s, std::move(dialect));
        sink->set_listener(&listener);
        sink->set_dead_letter_available(true);
        if (exactly_once) sink->offset_store()->bind_group("g");
        sink->connect();
    }
    // Sends {"id":id,"v":v} (or a tombstone for `id` when v is "-") at `offset` of partition 0.
    void send(const std::string& id, const std::string& v, int64_t offset) {
        Record r;
        r.topic = "ev";
        r.partition = 0;
        r.offset = offset;
        keep.push_back(id);
        r.key = keep.back();
        json::Value fields;
        std::string error;
        if (v != "-") {
            keep.push_back("{\"id\":" + id + ",\"v\":\"" + v + "\"}");
            r.value = keep.back();
            ASSERT_TRUE(decoder.decode(*r.value, fields, error)) << error;
        }
        Rejection why;
        ASSERT_TRUE(sink->send(r, v == "-" ? nullptr : &fields, nullptr, why)) << why.detail;
    }
    void send_range(int from, int to, const std::string& v = "x") {
        keep.reserve(keep.size() + 2 * static_cast<size_t>(to - from));
        for (int i = from; i < to; ++i) send(std::to_string(i), v, i);
    }
    void finish() {
        for (int i = 0; i < 10; ++i) sink->poll(std::chrono::milliseconds(0));
    }
};

TEST_F(SqlSinkCore, InsertsEveryRecordOnceInOneTransaction) {
    make();
    keep.reserve(64);
    send_range(0, 10);
    finish();
    EXPECT_EQ(listener.delivered_count, 10);
    EXPECT_EQ(fake->committed.rows.size(), 10u);
    EXPECT_EQ(fake->commits, 1);
    EXPECT_EQ(fake->savepoints, 0);  // the fast path: no savepoints
}

TEST_F(SqlSinkCore, TransientErrorsAreRetriedAfterReconnecting) {
    make();
    keep.reserve(64);
    fake->transient = 3;
    send_range(0, 10);
    finish();
    EXPECT_TRUE(listener.failures.empty());
    EXPECT_EQ(listener.delivered_count, 10);
    EXPECT_EQ(fake->committed.inserted.size(), 10u);
    EXPECT_GT(sink->retried(), 0u);
}

TEST_F(SqlSinkCore, RefusedRecordsAreIsolatedByBisectionAndTheRestCommits) {
    make();
    keep.reserve(256);
    for (int i = 0; i < 64; ++i) send(std::to_string(i), i == 9 || i == 40 ? "bad" : "ok", i);
    finish();
    EXPECT_EQ(listener.rejected_count, 2);
    EXPECT_EQ(listener.delivered_count, 62);
    EXPECT_EQ(fake->committed.rows.size(), 62u);
    EXPECT_EQ(fake->committed.rows.count("9") + fake->committed.rows.count("40"), 0u);
    ASSERT_EQ(listener.rejected_messages.size(), 2u);
    EXPECT_EQ(listener.rejected_messages[0], "value bad refused");
    // Halving: far fewer tries than one per record.
    EXPECT_LT(fake->savepoints, 30);
}

TEST_F(SqlSinkCore, AnInsertWhoseCommitIsInDoubtStopsTheRunRatherThanInsertTwice) {
    make();
    keep.reserve(64);
    fake->lose_commit = FakeDialect::Lost::AfterCommit;
    send_range(0, 10);
    finish();
    ASSERT_EQ(listener.failures.size(), 10u);
    EXPECT_NE(listener.failures[0].find("COMMIT in doubt"), std::string::npos);
    EXPECT_EQ(fake->committed.inserted.size(), 10u);  // once, not retried
}

TEST_F(SqlSinkCore, AnUpsertWhoseCommitIsInDoubtIsRetried) {
    make(SqlMode::Upsert);
    keep.reserve(64);
    fake->lose_commit = FakeDialect::Lost::BeforeCommit;
    send_range(0, 10);
    finish();
    EXPECT_TRUE(listener.failures.empty());
    EXPECT_EQ(listener.delivered_count, 10);
    EXPECT_EQ(fake->committed.rows.size(), 10u);
}

TEST_F(SqlSinkCore, ExactlyOnceResolvesAnInDoubtCommitFromTheStoredOffsets) {
    for (auto lost : {FakeDialect::Lost::AfterCommit, FakeDialect::Lost::BeforeCommit}) {
        SCOPED_TRACE(static_cast<int>(lost));
        listener = Listener{};
        make(SqlMode::Insert, true);
        keep.reserve(64);
        fake->lose_commit = lost;
        send_range(0, 10);
        finish();
        EXPECT_TRUE(listener.failures.empty());
        EXPECT_EQ(listener.delivered_count, 10);
        EXPECT_EQ(fake->committed.inserted.size(), 10u);  // applied once either way
        EXPECT_EQ((fake->committed.offsets[{"ev", 0}]), 10);
    }
}

TEST_F(SqlSinkCore, ExactlyOnceSkipsRecordsBelowTheStoredOffsets) {
    make(SqlMode::Insert, true);
    keep.reserve(64);
    fake->committed.offsets[{"ev", 0}] = 6;  // another writer applied 0..5
    send_range(0, 10);
    finish();
    EXPECT_EQ(listener.delivered_count, 10);
    EXPECT_EQ(fake->committed.inserted, (std::vector<std::string>{"6", "7", "8", "9"}));
    EXPECT_EQ((fake->committed.offsets[{"ev", 0}]), 10);
}

TEST_F(SqlSinkCore, ExactlyOnceCommitsTheOffsetsPastARefusedRecord) {
    make(SqlMode::Insert, true);
    keep.reserve(64);
    for (int i = 0; i < 10; ++i) send(std::to_string(i), i == 4 ? "bad" : "ok", i);
    finish();
    EXPECT_EQ(listener.rejected_count, 1);
    EXPECT_EQ(fake->committed.rows.size(), 9u);
    EXPECT_EQ((fake->committed.offsets[{"ev", 0}]), 10);
}

TEST_F(SqlSinkCore, UpsertsKeepTheLastRecordOfEachKeyATombstoneIncluded) {
    make(SqlMode::Upsert);
    keep.reserve(64);
    fake->committed.rows["3"] = "there";
    send("1", "a", 0);
    send("2", "b", 1);
    send("1", "c", 2);
    send("2", "-", 3);
    send("3", "-", 4);
    send("3", "back", 5);
    finish();
    EXPECT_EQ(listener.delivered_count, 6);
    EXPECT_EQ(fake->committed.rows,
              (std::map<std::string, std::string>{{"1", "c"}, {"3", "back"}}));
}

TEST_F(SqlSinkCore, InsertModeDeletesOnTombstonesInOrder) {
    make(SqlMode::Insert);
    keep.reserve(64);
    send("1", "a", 0);
    send("1", "-", 1);
    send("2", "b", 2);
    finish();
    EXPECT_EQ(fake->committed.rows, (std::map<std::string, std::string>{{"2", "b"}}));
}

TEST_F(SqlSinkCore, FullBatchesAreWrittenAsTheyFill) {
    make(SqlMode::Insert, false, false, 4);
    keep.reserve(64);
    send_range(0, 10);
    EXPECT_EQ(fake->commits, 2);  // two full batches written by send()
    finish();
    EXPECT_EQ(fake->commits, 3);
    EXPECT_EQ(listener.delivered_count, 10);
}

TEST_F(SqlSinkCore, DryRunCreatesNoOffsetsTableAndNoOffsets) {
    make(SqlMode::Insert, true, true);
    EXPECT_FALSE(fake->committed.offsets_table);
    const auto stored = sink->offset_store()->stored_offsets({{"ev", 0, -1}, {"ev", 1, -1}});
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[0].next_offset, -1);
    EXPECT_FALSE(fake->committed.offsets_table);
    // A run creates it.
    make(SqlMode::Insert, true, false);
    EXPECT_TRUE(fake->committed.offsets_table);
}

}  // namespace
}  // namespace kbridge
