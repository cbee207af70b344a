#include "connectors/postgres/sink_dialect.h"

#include <poll.h>

#include "connectors/postgres/copy_text.h"
#include "core/runner.h"
#include "core/shutdown.h"
#include "core/wait.h"

namespace kbridge {
namespace {

constexpr size_t kCopyChunk = 1 << 20;

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
}

}  // namespace

PostgresDialect::PostgresDialect(const PostgresTarget& target, const SqlSettings& settings)
    : settings_(settings), conn_(target.url, target.connect_timeout, target.query_timeout) {}

void PostgresDialect::connect() {
    conn_.connect();
}

SqlFailure PostgresDialect::classify(const SqlError& e) const {
    const std::string& s = e.code();
    if (e.connection_lost() || s == "40001" || s == "40P01" || s == "55P03" || s == "57P01" ||
        s == "57P02" || s == "57P03" || s.rfind("53", 0) == 0 || s.rfind("08", 0) == 0)
        return SqlFailure::Transient;
    // The record itself is at fault: a value that does not coerce, a constraint it violates.
    if (s.rfind("22", 0) == 0 || s.rfind("23", 0) == 0) return SqlFailure::Refused;
    return SqlFailure::Fatal;
}

TableShape PostgresDialect::introspect() {
    table_ = conn_.quote_table(settings_.table);
    TableShape shape;
    PgResult cols = conn_.exec_params(
        "SELECT a.attname, t.typcategory = 'A', a.attnotnull AND a.attidentity = '',"
        " a.atthasdef, a.atttypid::int FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND"
        " a.attgenerated = '' ORDER BY a.attnum",
        {table_});
    for (int i = 0; i < PQntuples(cols.get()); ++i) {
        SqlColumn c;
        c.name = PQgetvalue(cols.get(), i, 0);
        c.quoted = conn_.quote_identifier(c.name);
        c.is_array = PQgetvalue(cols.get(), i, 1)[0] == 't';
        c.refuses_null = PQgetvalue(cols.get(), i, 2)[0] == 't';
        c.has_default = PQgetvalue(cols.get(), i, 3)[0] == 't';
        const std::string type = PQgetvalue(cols.get(), i, 4);  // the built-in types' oids
        c.integer_type = type == "21"   ? "smallint"
                         : type == "23" ? "integer"
                         : type == "20" ? "bigint"
                                        : "";
        shape.columns.push_back(std::move(c));
    }
    // A BEFORE ROW trigger (of the table or of any partition) may fill in a NULL, a rule may
    // send the row elsewhere, and an update meets NOT NULL only for rows it finds: then the
    // database alone can tell.
    PgResult hooks = conn_.exec_params(
        "SELECT c.relhasrules OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid IN"
        " (SELECT c.oid UNION ALL SELECT relid FROM pg_partition_tree(c.oid)) AND NOT"
        " g.tgisinternal AND g.tgtype & 3 = 3 AND g.tgtype & 20 <> 0) FROM pg_class c"
        " WHERE c.oid = $1::regclass",
        {table_});
    shape.check_nulls =
        settings_.mode != SqlMode::Update && PQgetvalue(hooks.get(), 0, 0)[0] == 'f';
    PgResult pk = conn_.exec_params(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND"
        " a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        {table_});
    for (int i = 0; i < PQntuples(pk.get()); ++i)
        for (size_t c = 0; c < shape.columns.size(); ++c)
            if (shape.columns[c].name == PQgetvalue(pk.get(), i, 0)) shape.keys.push_back(c);
    std::vector<std::string> rights{settings_.mode == SqlMode::Update ? "UPDATE" : "INSERT"};
    if (settings_.mode == SqlMode::Upsert) rights.push_back("UPDATE");
    if (settings_.delete_on_tombstone) rights.push_back("DELETE");
    for (const auto& right : rights) {
        PgResult granted =
            conn_.exec_params("SELECT has_table_privilege($1::regclass, $2)", {table_, right});
        if (PQgetvalue(granted.get(), 0, 0)[0] != 't')
            throw PostgresError("postgres " + conn_.redacted_url() + ": the role may not " + right +
                                " into table " + settings_.table);
    }
    return shape;
}

// Per session: the stage table upserts, updates and deletes go through. It empties itself at
// every commit, so a batch's transaction starts without a TRUNCATE (a round trip and a new file).
void PostgresDialect::prepare_session() {
    if (settings_.mode == SqlMode::Insert) return;
    std::vector<std::string> cols;
    for (const auto& c : shape_.columns) cols.push_back(c.quoted);
    conn_.exec(
        "CREATE TEMP TABLE IF NOT EXISTS kbridge_stage ON COMMIT DELETE ROWS AS SELECT 0::bigint "
        "AS kbridge_ord, false AS kbridge_tomb, " +
        join(cols, ", ") + " FROM " + table_ + " WITH NO DATA");
}

bool PostgresDialect::offsets_table_exists() {
    PgResult r = conn_.exec_params("SELECT to_regclass($1) IS NOT NULL",
                                   {conn_.quote_table(settings_.offsets_table)});
    return PQgetvalue(r.get(), 0, 0)[0] == 't';
}

void PostgresDialect::create_offsets_table() {
    try {
        conn_.exec("CREATE TABLE IF NOT EXISTS " + conn_.quote_table(settings_.offsets_table) +
                   " (consumer_group text NOT NULL, topic text NOT NULL, partition int NOT NULL,"
                   " next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
                   " PRIMARY KEY (consumer_group, topic, partition))");
    } catch (const PostgresError& e) {
        // Two runs creating it at once: one wins, the other finds it made (the loser hits the
        // unique index of pg_class or of pg_type, the table's row type).
        if (e.sqlstate() != "23505" && e.sqlstate() != "42P07" && e.sqlstate() != "42710") throw;
    }
}

std::vector<PartitionOffset> PostgresDialect::initial_offsets(
    const std::string& group, const std::vector<PartitionOffset>& partitions, bool create_rows) {
    const std::string table = conn_.quote_table(settings_.offsets_table);
    std::vector<PartitionOffset> out;
    for (const auto& p : partitions) {
        // A row per partition from the start, so that the fence always has one to lock.
        if (create_rows)
            conn_.exec_params(
                "INSERT INTO " + table +
                    " (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, -1)"
                    " ON CONFLICT DO NOTHING",
                {group, p.topic, std::to_string(p.partition)});
        PgResult r =
            conn_.exec_params("SELECT next_offset FROM " + table +
                                  " WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
                              {group, p.topic, std::to_string(p.partition)});
        out.push_back({p.topic, p.partition,
                       PQntuples(r.get()) ? std::stoll(PQgetvalue(r.get(), 0, 0)) : -1});
    }
    return out;
}

// Rows of (topic, partition, next_offset) by partition.
StoredOffsets PostgresDialect::stored_next(const PGresult* stored) {
    StoredOffsets next;
    for (int i = 0; stored && i < PQntuples(stored); ++i)
        next[{PQgetvalue(stored, i, 0), std::stoi(PQgetvalue(stored, i, 1))}] =
            std::stoll(PQgetvalue(stored, i, 2));
    return next;
}

StoredOffsets PostgresDialect::read_offsets(const std::string& group) {
    PgResult stored = conn_.exec_params("SELECT topic, partition, next_offset FROM " +
                                            conn_.quote_table(settings_.offsets_table) +
                                            " WHERE consumer_group = $1",
                                        {group});
    return stored_next(stored.get());
}

// Only the batch's partitions are locked, in one order: the other connections of a sink write
// other partitions.
std::string PostgresDialect::fence_query(const std::string& group,
                                         const TopicPartitions& partitions) {
    std::string rows;
    for (const auto& [topic, partition] : partitions)
        rows += (rows.empty() ? "(" : ", (") + conn_.quote_literal(topic) + ", " +
                std::to_string(partition) + ")";
    return "SELECT topic, partition, next_offset FROM " +
           conn_.quote_table(settings_.offsets_table) +
           " WHERE consumer_group = " + conn_.quote_literal(group) +
           " AND (topic, partition) IN (" + rows + ") ORDER BY topic, partition FOR UPDATE";
}

StoredOffsets PostgresDialect::lock_offsets(const std::string& group,
                                            const TopicPartitions& partitions) {
    if (partitions.empty()) return {};
    PgResult stored = conn_.exec(fence_query(group, partitions));
    return stored_next(stored.get());
}

std::string PostgresDialect::offsets_statement(const std::string& group,
                                               const std::vector<PartitionOffset>& next) {
    std::string values;
    for (const auto& p : next)
        values += (values.empty() ? "(" : ", (") + conn_.quote_literal(group) + ", " +
                  conn_.quote_literal(p.topic) + ", " + std::to_string(p.partition) + ", " +
                  std::to_string(p.next_offset) + ")";
    return "INSERT INTO " + conn_.quote_table(settings_.offsets_table) +
           " AS o (consumer_group, topic, partition, next_offset) VALUES " + values +
           " ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET"
           " next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()";
}

void PostgresDialect::write_offsets(const std::string& group,
                                    const std::vector<PartitionOffset>& next) {
    if (!next.empty()) conn_.exec(offsets_statement(group, next));
}

void PostgresDialect::rollback() {
    try {
        conn_.exec("ROLLBACK");
    } catch (const PostgresError&) {
    }
}

void PostgresDialect::rollback_to_savepoint() {
    conn_.exec("ROLLBACK TO SAVEPOINT kbridge_try");
    conn_.exec("RELEASE SAVEPOINT kbridge_try");
}

// COPY FROM STDIN started, its rows sent: into the table, or (staged) into the stage table with
// each record's place in the batch and whether it is a tombstone. `before` and `after` share the
// COPY's query string.
void PostgresDialect::copy_rows(const SqlBatch& batch, const std::vector<size_t>& records,
                                bool staged, const std::string& before, const std::string& after) {
    const std::vector<size_t> columns = batch.used_columns(records, settings_.mode, shape_.keys);
    std::vector<std::string> names;
    for (size_t c : columns) names.push_back(shape_.columns[c].quoted);
    const std::string into = staged ? "kbridge_stage (kbridge_ord, kbridge_tomb, " : table_ + " (";
    conn_.copy_in(before + "COPY " + into + join(names, ", ") + ") FROM STDIN" +
                  (after.empty() ? "" : "; " + after));
    copy_buffer_.clear();
    for (size_t r : records) {
        if (staged) {
            copy_buffer_ += std::to_string(r);
            copy_buffer_ += batch.tombstone(r) ? "\tt\t" : "\tf\t";
        }
        for (size_t i = 0; i < columns.size(); ++i) {
            if (i) copy_buffer_ += '\t';
            const auto value = batch.value(r, columns[i]);
            if (value) {
                append_escaped(copy_buffer_, *value);
            } else {
                copy_buffer_ += "\\N";
            }
        }
        copy_buffer_ += '\n';
        if (copy_buffer_.size() >= kCopyChunk) {
            conn_.put_copy_data(copy_buffer_);
            copy_buffer_.clear();
        }
    }
    if (!copy_buffer_.empty()) conn_.put_copy_data(copy_buffer_);
}

void PostgresDialect::insert(const SqlBatch& batch, const std::vector<size_t>& records) {
    copy_rows(batch, records, false);
    conn_.end_copy_in();
}

void PostgresDialect::remove(const SqlBatch& batch, size_t record) {
    std::vector<std::string> conditions;
    std::vector<std::optional<std::string>> params;
    for (size_t k : shape_.keys) {
        conditions.push_back(shape_.columns[k].quoted + " = $" + std::to_string(params.size() + 1));
        const auto value = batch.value(record, k);
        params.emplace_back(value ? std::optional<std::string>(*value) : std::nullopt);
    }
    conn_.exec_params("DELETE FROM " + table_ + " WHERE " + join(conditions, " AND "), params);
}

void PostgresDialect::merge(const SqlBatch& batch, const std::vector<size_t>& records) {
    conn_.exec("TRUNCATE kbridge_stage");
    copy_rows(batch, records, true);
    conn_.end_copy_in();
    for (const auto& sql : staged_statements(batch, records)) conn_.exec(sql);
}

// What makes the stage table's rows the table's: the last record of each key decides (the core
// sends one per key; DISTINCT ON still picks one where keys equal by type differ in text), a
// tombstone deletes, anything else is written.
std::vector<std::string> PostgresDialect::staged_statements(const SqlBatch& batch,
                                                            const std::vector<size_t>& records) {
    const auto& cols = shape_.columns;
    std::vector<size_t> columns = batch.used_columns(records, settings_.mode, shape_.keys);
    std::vector<std::string> names, keys, assignments, matches;
    for (size_t c : columns) names.push_back(cols[c].quoted);
    for (size_t k : shape_.keys) {
        keys.push_back(cols[k].quoted);
        matches.push_back("t." + cols[k].quoted + " = s." + cols[k].quoted);
    }
    for (size_t c : columns)
        if (std::find(shape_.keys.begin(), shape_.keys.end(), c) == shape_.keys.end())
            assignments.push_back(cols[c].quoted + " = " +
                                  (settings_.mode == SqlMode::Upsert ? "EXCLUDED." : "s.") +
                                  cols[c].quoted);
    bool any_tombstone = false;
    for (size_t r : records) any_tombstone |= batch.tombstone(r);
    std::vector<std::string> statements;
    const std::string last = "(SELECT DISTINCT ON (" + join(keys, ", ") +
                             ") * FROM kbridge_stage ORDER BY " + join(keys, ", ") +
                             ", kbridge_ord DESC) s";
    if (any_tombstone)
        statements.push_back("DELETE FROM " + table_ + " t USING " + last +
                             " WHERE s.kbridge_tomb AND " + join(matches, " AND "));
    if (settings_.mode == SqlMode::Upsert) {
        statements.push_back(
            "INSERT INTO " + table_ + " (" + join(names, ", ") + ") SELECT " + join(names, ", ") +
            " FROM " + last + " WHERE NOT s.kbridge_tomb ON CONFLICT (" + join(keys, ", ") +
            ") DO " + (assignments.empty() ? "NOTHING" : "UPDATE SET " + join(assignments, ", ")));
    } else if (!assignments.empty()) {
        statements.push_back("UPDATE " + table_ + " t SET " + join(assignments, ", ") + " FROM " +
                             last + " WHERE NOT s.kbridge_tomb AND " + join(matches, " AND "));
    }
    return statements;
}

// ---- the fast path: sent without waiting ----

void PostgresDialect::send_fence(const std::string& group, const TopicPartitions& partitions) {
    const std::string fence = "BEGIN; " + fence_query(group, partitions);
    if (!PQsendQuery(conn_.get(), fence.c_str())) conn_.raise("BEGIN failed");
}

bool PostgresDialect::result_ready(std::chrono::milliseconds wait) {
    PGconn* c = conn_.get();
    if (!PQconsumeInput(c)) return true;  // the error shows in the next result
    while (PQisBusy(c)) {
        if (wait.count() <= 0) return false;
        pollfd fd{PQsocket(c), POLLIN, 0};
        if (::poll(&fd, 1, static_cast<int>(wait.count())) <= 0) return false;
        wait = std::chrono::milliseconds(0);
        if (!PQconsumeInput(c)) return true;
    }
    return true;
}

bool PostgresDialect::next_result(std::chrono::milliseconds& wait, PgResult& result,
                                  const char* what) {
    if (!result_ready(wait)) return false;
    wait = std::chrono::milliseconds(0);
    result.reset(PQgetResult(conn_.get()));
    if (!result) return true;
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return true;
    // Let the connection settle (the rest of the results) before recovering on it.
    while (PgResult rest{PQgetResult(conn_.get())}) {
    }
    conn_.raise(what, result.get());
}

bool PostgresDialect::fence_ready(std::chrono::milliseconds wait, StoredOffsets& stored) {
    for (;;) {
        PgResult result;
        if (!next_result(wait, result, "BEGIN failed")) return false;
        if (!result) {  // all in
            stored = stored_next(fenced_.get());
            fenced_.reset();
            return true;
        }
        if (PQresultStatus(result.get()) == PGRES_TUPLES_OK) fenced_ = std::move(result);
    }
}

void PostgresDialect::queue_transaction(const SqlBatch& batch, const std::vector<size_t>& todo,
                                        bool begin, const std::string& group,
                                        const std::vector<PartitionOffset>& offsets) {
    std::string tail;
    if (settings_.mode != SqlMode::Insert && !todo.empty())
        for (const auto& sql : staged_statements(batch, todo)) tail += sql + ";\n";
    if (!offsets.empty()) tail += offsets_statement(group, offsets) + ";\n";
    const std::string commit = tail + "COMMIT";
    const std::string opening = begin ? "BEGIN; " : "";
    if (todo.empty()) {
        if (!PQsendQuery(conn_.get(), (opening + commit).c_str())) conn_.raise("COMMIT failed");
        return;
    }
    // Queued, not sent: the server parses this batch while the next one is read and encoded,
    // instead of the two taking turns.
    if (PQsetnonblocking(conn_.get(), 1) != 0) conn_.raise("COPY failed");
    copy_rows(batch, todo, settings_.mode != SqlMode::Insert, opening, commit);
    if (PQputCopyEnd(conn_.get(), nullptr) != 1) conn_.raise("COPY failed");
}

// The queue is what a non-blocking connection holds; once it is all sent the connection is
// blocking again.
bool PostgresDialect::send_queued(std::chrono::milliseconds wait) {
    PGconn* c = conn_.get();
    if (!PQisnonblocking(c)) return true;
    for (;;) {
        const int left = PQflush(c);
        if (left < 0) conn_.raise("COPY failed");
        if (left == 0) break;
        if (wait.count() <= 0) return false;
        // The server may answer early (an error ends its reading): take that in too.
        pollfd fd{PQsocket(c), POLLOUT | POLLIN, 0};
        if (::poll(&fd, 1, static_cast<int>(wait.count())) <= 0) return false;
        if ((fd.revents & POLLIN) && !PQconsumeInput(c)) conn_.raise("COPY failed");
        wait = std::chrono::milliseconds(0);
    }
    PQsetnonblocking(c, 0);
    return true;
}

bool PostgresDialect::commit_ready(std::chrono::milliseconds wait) {
    for (;;) {
        PgResult result;
        if (!next_result(wait, result, "COMMIT failed")) return false;
        if (!result) return true;
    }
}

// Back to blocking, for the careful path; what is still queued is sent first, as a blocking COPY
// would have sent it (an error there shows in what runs next).
void PostgresDialect::stop_async() {
    fenced_.reset();
    if (!conn_.get() || !PQisnonblocking(conn_.get())) return;
    const auto started = std::chrono::steady_clock::now();
    try {
        while (!send_queued(std::chrono::milliseconds(1000))) {
            const auto waited = std::chrono::steady_clock::now() - started;
            if (waited > conn_.query_timeout() || (stop_requested().load() && waited > kStopGrace))
                conn_.abandon("gave up sending a batch");
        }
    } catch (const PostgresError&) {
        if (conn_.get()) PQsetnonblocking(conn_.get(), 0);
    }
}

int PostgresDialect::socket() const {
    return conn_.get() ? PQsocket(conn_.get()) : -1;
}

}  // namespace kbridge
