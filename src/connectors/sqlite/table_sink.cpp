#include "connectors/sqlite/table_sink.h"

#include <algorithm>

#include "connectors/sql/batch.h"
#include "connectors/sql/sink.h"
#include "connectors/sqlite/connection.h"
#include "connectors/sqlite/job_thread.h"

namespace kbridge {
namespace {

OptionTable sqlite_options() {
    OptionTable table = sql_sink_options(
        {
            {"type", OptionType::String, "", "sqlite_table"},
            {"path", OptionType::String, "", "the database file (it must exist)", {}, true},
        },
        false,
        {
            {"busy_timeout", OptionType::Duration, "5s",
             "how long a write waits for another process's lock on the file before it is retried"},
            {"synchronous",
             OptionType::Choice,
             "full",
             "full: each COMMIT is on disk before its records are acknowledged; normal: faster, "
             "and still safe from a killed process, but a power loss may undo the last commits",
             {"full", "normal"}},
        });
    // Each COMMIT writes every page its rows touched to the WAL (for keys in Kafka's partition
    // order: most leaves of the table) and fsyncs it, so fewer, larger transactions write far
    // less. 25,000 is half of what the runner keeps in flight, so that one batch is encoded
    // while the other commits; a transaction starts as soon as the last one ended, so batches
    // grow this large only while records arrive faster than they commit.
    for (auto& option : table)
        if (option.name == "batch_size") option.default_value = "25000";
    return table;
}

const OptionTable kOptions = sqlite_options();

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
}

// Asynchronous through a thread of its own: the fast path's transaction (BEGIN IMMEDIATE, the
// rows, the offsets, COMMIT) runs on `writer_` while the core reads and encodes the next batch,
// which therefore holds what arrived while the last one ran (up to batch_size). The careful
// path's blocking steps run on the caller's thread once that transaction has ended.
class SqliteDialect : public SqlDialect {
  public:
    SqliteDialect(const std::string& path, std::chrono::milliseconds busy_timeout,
                  bool fsync_commits, const SqlSettings& settings)
        : settings_(settings), db_(path, busy_timeout, fsync_commits) {}
    // A transaction still running (the run failed mid-batch) is cut short: its records were not
    // acknowledged, and the file keeps its last COMMIT either way.
    ~SqliteDialect() override { db_.interrupt(); }

    void connect() override { db_.connect(); }
    bool connected() const override { return db_.is_open(); }
    std::string name() const override { return "sqlite"; }
    std::string endpoint() const override { return db_.path(); }
    TableShape introspect() override;
    SqlFailure classify(const SqlError& e) const override;

    bool offsets_table_exists() override;
    void create_offsets_table() override;
    std::vector<PartitionOffset> initial_offsets(const std::string& group,
                                                 const std::vector<PartitionOffset>& partitions,
                                                 bool create_rows) override;
    StoredOffsets read_offsets(const std::string& group) override;
    // BEGIN IMMEDIATE holds the file's write lock: the read is fenced by it.
    StoredOffsets lock_offsets(const std::string& group, const TopicPartitions&) override {
        return read_offsets(group);
    }
    void write_offsets(const std::string& group, const std::vector<PartitionOffset>& next) override;

    // IMMEDIATE: the write lock is taken at BEGIN, so two writers never deadlock upgrading.
    void begin() override { db_.exec("BEGIN IMMEDIATE"); }
    void commit() override { db_.exec("COMMIT"); }
    void rollback() override;
    void savepoint() override { db_.exec("SAVEPOINT kbridge_try"); }
    void rollback_to_savepoint() override {
        db_.exec("ROLLBACK TO kbridge_try");
        db_.exec("RELEASE kbridge_try");
    }
    void release_savepoint() override { db_.exec("RELEASE kbridge_try"); }
    void insert(const SqlBatch& batch, const std::vector<size_t>& records) override;
    void remove(const SqlBatch& batch, size_t record) override;
    void merge(const SqlBatch& batch, const std::vector<size_t>& records) override;

    bool asynchronous() const override { return true; }
    void send_fence(const std::string& group, const TopicPartitions& partitions) override;
    bool fence_ready(std::chrono::milliseconds wait, StoredOffsets& stored) override;
    void queue_transaction(const SqlBatch& batch, const std::vector<size_t>& todo, bool begin,
                           const std::string& group,
                           const std::vector<PartitionOffset>& offsets) override;
    bool send_queued(std::chrono::milliseconds) override { return true; }
    bool commit_ready(std::chrono::milliseconds wait) override { return writer_.finished(wait); }
    void stop_async() override { writer_.forget(); }
    [[noreturn]] void abandon(const std::string& why) override;

  private:
    std::string offsets_table() const { return db_.quote_table(settings_.offsets_table); }
    // Binds the columns' cells of `record` from parameter `first` on; returns the next index.
    int bind_cells(sqlite3_stmt* s, int first, const SqlBatch& batch, size_t record,
                   const std::vector<size_t>& columns);

    SqlSettings settings_;
    SqliteConnection db_;
    std::string table_;                  // quoted
    StoredOffsets fenced_;               // what the fence read, in its transaction
    JobThread writer_{"sqlite-writer"};  // last: ends, with its job, before what the job uses
};

SqlFailure SqliteDialect::classify(const SqlError& e) const {
    const int code = e.code().empty() ? 0 : std::stoi(e.code());
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return SqlFailure::Transient;
    // The record itself is at fault: a constraint, a type a STRICT table refuses, a size.
    if (code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH || code == SQLITE_TOOBIG ||
        code == SQLITE_RANGE)
        return SqlFailure::Refused;
    return SqlFailure::Fatal;
}

TableShape SqliteDialect::introspect() {
    table_ = db_.quote_table(settings_.table);
    const auto dot = settings_.table.find('.');
    const std::string schema = dot == std::string::npos ? "main" : settings_.table.substr(0, dot);
    const std::string table =
        dot == std::string::npos ? settings_.table : settings_.table.substr(dot + 1);
    sqlite3_stmt* s = db_.statement(
        "SELECT name, \"notnull\", dflt_value IS NOT NULL, pk, lower(type) FROM "
        "pragma_table_info(?1, ?2) ORDER BY cid");
    db_.bind(s, 1, table);
    db_.bind(s, 2, schema);
    TableShape shape;
    std::vector<std::pair<int, size_t>> pk;  // place in the key, column
    while (db_.step(s)) {
        SqlColumn c;
        c.name = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        c.quoted = db_.quote_identifier(c.name);
        c.has_default = sqlite3_column_int(s, 2) != 0;
        const int key = sqlite3_column_int(s, 3);
        const std::string type = reinterpret_cast<const char*>(sqlite3_column_text(s, 4));
        // An INTEGER PRIMARY KEY is the rowid: NULL there means "the next one".
        const bool rowid = key > 0 && type == "integer";
        c.refuses_null = sqlite3_column_int(s, 1) != 0 && !rowid;
        if (key > 0) pk.emplace_back(key, shape.columns.size());
        shape.columns.push_back(std::move(c));
    }
    if (shape.columns.empty())
        throw SqlError("sqlite " + db_.path() + ": no table " + settings_.table);
    std::sort(pk.begin(), pk.end());
    for (const auto& [place, column] : pk) shape.keys.push_back(column);
    // SQLite's triggers cannot change a row's values, so a NULL a NOT NULL column refuses is
    // refused whatever triggers there are; an update meets NOT NULL only for rows it finds.
    shape.check_nulls = settings_.mode != SqlMode::Update;
    return shape;
}

void SqliteDialect::rollback() {
    try {
        db_.exec("ROLLBACK");
    } catch (const SqlError&) {
    }
}

bool SqliteDialect::offsets_table_exists() {
    const auto dot = settings_.offsets_table.find('.');
    const std::string schema = dot == std::string::npos
                                   ? "main"
                                   : db_.quote_identifier(settings_.offsets_table.substr(0, dot));
    const std::string name = dot == std::string::npos ? settings_.offsets_table
                                                      : settings_.offsets_table.substr(dot + 1);
    sqlite3_stmt* s = db_.statement("SELECT 1 FROM " + schema +
                                    ".sqlite_master WHERE type = 'table' AND name = ?1");
    db_.bind(s, 1, name);
    const bool found = db_.step(s);
    sqlite3_reset(s);
    return found;
}

void SqliteDialect::create_offsets_table() {
    db_.exec("CREATE TABLE IF NOT EXISTS " + offsets_table() +
             " (consumer_group TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,"
             " next_offset INTEGER NOT NULL, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,"
             " PRIMARY KEY (consumer_group, topic, partition))");
}

std::vector<PartitionOffset> SqliteDialect::initial_offsets(
    const std::string& group, const std::vector<PartitionOffset>& partitions, bool create_rows) {
    // A rebalance asks while a batch's transaction may be running: its outcome is kept for
    // commit_ready, and what it committed is read here.
    writer_.wait_ended();
    const StoredOffsets stored = read_offsets(group);
    std::vector<PartitionOffset> out;
    std::vector<PartitionOffset> missing;
    for (const auto& p : partitions) {
        auto it = stored.find({p.topic, p.partition});
        out.push_back({p.topic, p.partition, it == stored.end() ? -1 : it->second});
        if (it == stored.end()) missing.push_back({p.topic, p.partition, -1});
    }
    // Inside a fenced batch's transaction (a rebalance came between the fence and the rows) none
    // are made: SQLite locks the whole file, so no row is needed to lock, and that batch's commit
    // writes its partitions' rows.
    if (create_rows && !missing.empty() && db_.autocommit()) {
        db_.exec("BEGIN IMMEDIATE");
        try {
            write_offsets(group, missing);
            db_.exec("COMMIT");
        } catch (const SqlError&) {
            rollback();
            throw;
        }
    }
    return out;
}

StoredOffsets SqliteDialect::read_offsets(const std::string& group) {
    sqlite3_stmt* s = db_.statement("SELECT topic, partition, next_offset FROM " + offsets_table() +
                                    " WHERE consumer_group = ?1");
    db_.bind(s, 1, group);
    StoredOffsets stored;
    while (db_.step(s))
        stored[{reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                sqlite3_column_int(s, 1)}] = sqlite3_column_int64(s, 2);
    return stored;
}

void SqliteDialect::write_offsets(const std::string& group,
                                  const std::vector<PartitionOffset>& next) {
    sqlite3_stmt* s = db_.statement(
        "INSERT INTO " + offsets_table() +
        " (consumer_group, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET"
        " next_offset = max(next_offset, excluded.next_offset), updated_at = CURRENT_TIMESTAMP");
    for (const auto& p : next) {
        sqlite3_reset(s);
        db_.bind(s, 1, group);
        db_.bind(s, 2, p.topic);
        sqlite3_bind_int(s, 3, p.partition);
        sqlite3_bind_int64(s, 4, p.next_offset);
        db_.step(s);
    }
}

void SqliteDialect::send_fence(const std::string& group, const TopicPartitions&) {
    writer_.start([this, group] {
        begin();
        try {
            fenced_ = read_offsets(group);
        } catch (const SqlError&) {
            rollback();
            throw;
        }
    });
}

bool SqliteDialect::fence_ready(std::chrono::milliseconds wait, StoredOffsets& stored) {
    if (!writer_.finished(wait)) return false;
    stored = std::move(fenced_);
    return true;
}

// The job ends with the transaction closed: committed, or rolled back on an error (so that the
// connection is ready for the careful path, and a rebalance's read of the offsets).
void SqliteDialect::queue_transaction(const SqlBatch& batch, const std::vector<size_t>& todo,
                                      bool begin, const std::string& group,
                                      const std::vector<PartitionOffset>& offsets) {
    writer_.start([this, &batch, todo, begin, group, offsets] {
        if (begin) this->begin();
        try {
            if (!todo.empty()) {
                if (settings_.mode == SqlMode::Insert) {
                    insert(batch, todo);
                } else {
                    merge(batch, todo);
                }
            }
            if (!offsets.empty()) write_offsets(group, offsets);
            commit();
        } catch (const SqlError&) {
            rollback();
            throw;
        }
    });
}

// The transaction has run past query_timeout, or the run is stopping: it is interrupted. Ended
// by an error, it was rolled back; having committed just before, it can only be reported as
// in doubt (the stored offsets resolve that with exactly_once).
void SqliteDialect::abandon(const std::string& why) {
    db_.interrupt();
    try {
        while (!writer_.finished(std::chrono::hours(1))) {
        }
    } catch (const SqlError& e) {
        throw SqlError(why + ": " + e.what(), e.code());
    }
    if (!db_.autocommit()) {  // the fence's transaction, with nothing written yet
        rollback();
        throw SqlError(why, std::to_string(SQLITE_INTERRUPT));
    }
    throw SqlError(why, "", true);
}

int SqliteDialect::bind_cells(sqlite3_stmt* s, int first, const SqlBatch& batch, size_t record,
                              const std::vector<size_t>& columns) {
    for (size_t c : columns) db_.bind(s, first++, batch.value(record, c));
    return first;
}

// One prepared INSERT for the columns the records give, stepped once per record.
void SqliteDialect::insert(const SqlBatch& batch, const std::vector<size_t>& records) {
    const std::vector<size_t> columns = batch.used_columns(records, settings_.mode, shape_.keys);
    std::vector<std::string> names, places;
    for (size_t c : columns) {
        names.push_back(shape_.columns[c].quoted);
        places.push_back("?");
    }
    sqlite3_stmt* s = db_.statement("INSERT INTO " + table_ + " (" + join(names, ", ") +
                                    ") VALUES (" + join(places, ", ") + ")");
    for (size_t r : records) {
        sqlite3_reset(s);
        bind_cells(s, 1, batch, r, columns);
        db_.step(s);
    }
}

void SqliteDialect::remove(const SqlBatch& batch, size_t record) {
    std::vector<std::string> conditions;
    for (size_t k : shape_.keys) conditions.push_back(shape_.columns[k].quoted + " IS ?");
    sqlite3_stmt* s =
        db_.statement("DELETE FROM " + table_ + " WHERE " + join(conditions, " AND "));
    bind_cells(s, 1, batch, record, shape_.keys);
    db_.step(s);
}

// The core gives one record per key: each is an upsert, an update or (a tombstone) a delete.
void SqliteDialect::merge(const SqlBatch& batch, const std::vector<size_t>& records) {
    std::vector<size_t> writes;
    for (size_t r : records) {
        if (batch.tombstone(r)) {
            remove(batch, r);
        } else {
            writes.push_back(r);
        }
    }
    if (writes.empty()) return;
    const std::vector<size_t> columns = batch.used_columns(writes, settings_.mode, shape_.keys);
    std::vector<size_t> values;  // the columns that are not key columns
    for (size_t c : columns)
        if (std::find(shape_.keys.begin(), shape_.keys.end(), c) == shape_.keys.end())
            values.push_back(c);
    std::vector<std::string> names, places, keys, assignments, conditions;
    for (size_t c : columns) {
        names.push_back(shape_.columns[c].quoted);
        places.push_back("?");
    }
    for (size_t k : shape_.keys) {
        keys.push_back(shape_.columns[k].quoted);
        conditions.push_back(shape_.columns[k].quoted + " IS ?");
    }
    std::vector<size_t> order = columns;  // the parameters' columns, in order
    std::string sql;
    if (settings_.mode == SqlMode::Upsert) {
        for (size_t c : values)
            assignments.push_back(shape_.columns[c].quoted + " = excluded." +
                                  shape_.columns[c].quoted);
        sql = "INSERT INTO " + table_ + " (" + join(names, ", ") + ") VALUES (" +
              join(places, ", ") + ") ON CONFLICT (" + join(keys, ", ") + ") DO " +
              (assignments.empty() ? "NOTHING" : "UPDATE SET " + join(assignments, ", "));
    } else {
        if (values.empty()) return;  // nothing to set
        for (size_t c : values) assignments.push_back(shape_.columns[c].quoted + " = ?");
        sql = "UPDATE " + table_ + " SET " + join(assignments, ", ") + " WHERE " +
              join(conditions, " AND ");
        order = values;
        order.insert(order.end(), shape_.keys.begin(), shape_.keys.end());
    }
    sqlite3_stmt* s = db_.statement(sql);
    for (size_t r : writes) {
        sqlite3_reset(s);
        bind_cells(s, 1, batch, r, order);
        db_.step(s);
    }
}

}  // namespace

const OptionTable& sqlite_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_sqlite_sink(const Options& options, const ConnectorContext& ctx) {
    const std::string path = options.str("path");
    if (path.empty()) throw options.error("path", "must name the database file");
    const auto busy_timeout = options.duration("busy_timeout");
    const bool fsync_commits = options.str("synchronous") == "full";
    const SqlSettings settings = sql_sink_settings(options, ctx, "sqlite_table", false);
    return make_sql_sink(settings, [=] {
        return std::make_unique<SqliteDialect>(path, busy_timeout, fsync_commits, settings);
    });
}

}  // namespace kbridge
