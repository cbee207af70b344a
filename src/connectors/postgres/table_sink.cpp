#include "connectors/postgres/table_sink.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include "connectors/postgres/conninfo.h"
#include "connectors/postgres/copy_text.h"
#include "connectors/postgres/lanes.h"
#include "core/runner.h"
#include "core/shutdown.h"
#include "core/wait.h"

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "postgres_table"},
    {"url", OptionType::String, "", "libpq URI or key=value conninfo (default: postgres.url)"},
    {"table", OptionType::String, "", "target table, table or schema.table", {}, true},
    {"mode",
     OptionType::Choice,
     "insert",
     "how records are written",
     {"insert", "upsert", "update"}},
    {"key_columns", OptionType::StringList, "",
     "columns that identify a row (default: the primary key)"},
    {"columns", OptionType::StringMap, "",
     "column -> template (default: fields named like columns)"},
    {"delete_on_tombstone", OptionType::Boolean, "false",
     "a record without value deletes its key's row"},
    {"batch_size", OptionType::Integer, "10000", "records per transaction at most"},
    {"exactly_once", OptionType::Boolean, "false",
     "keep the Kafka offsets in the table's database, in the same transaction"},
    {"offsets_table", OptionType::String, "kbridge_offsets",
     "where exactly_once keeps the offsets"},
    {"connections", OptionType::Integer, "2",
     "connections writing at once, each its share of the Kafka partitions"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting (default: postgres.connect_timeout, 10s)"},
    {"query_timeout", OptionType::Duration, "",
     "bound on a wait for a transaction's answer (default: postgres.query_timeout, 5m)"},
};

constexpr int kMaxAttempts = 10;
constexpr size_t kCopyChunk = 1 << 20;

// A JSON array as a PostgreSQL array literal: {1,2,NULL}, {"a b","c\"d"}, {{1,2},{3,4}}.
void append_array_literal(std::string& out, json::Value array) {
    out += '{';
    bool first = true;
    std::string text;
    for (const json::Member element : array.children()) {
        if (!first) out += ',';
        first = false;
        const json::Value e = element.value;
        switch (e.kind()) {
            case json::Kind::Null:
                out += "NULL";
                break;
            case json::Kind::Array:
                append_array_literal(out, e);
                break;
            case json::Kind::Bool:
            case json::Kind::Number:
                out += e.raw();
                break;
            default:
                text.clear();
                e.append_text(text);
                out += '"';
                for (const char c : text) {
                    if (c == '"' || c == '\\') out += '\\';
                    out += c;
                }
                out += '"';
        }
    }
    out += '}';
}

bool retriable(const PostgresError& e) {
    const std::string& s = e.sqlstate();
    return e.connection_lost() || s == "40001" || s == "40P01" || s == "55P03" || s == "57P01" ||
           s == "57P02" || s == "57P03" || s.rfind("53", 0) == 0 || s.rfind("08", 0) == 0;
}

// The record itself is at fault: a value that does not coerce, a constraint it violates.
bool record_error(const PostgresError& e) {
    const std::string& s = e.sqlstate();
    return !e.connection_lost() && (s.rfind("22", 0) == 0 || s.rfind("23", 0) == 0);
}

// The server's message with its DETAIL and CONTEXT lines, as one line for headers and logs.
std::string one_line(const std::string& message) {
    std::string out;
    for (const char c : message) {
        if (c == '\n') {
            out += "; ";
        } else if (!(c == ' ' && !out.empty() && out.back() == ' ')) {
            out += c;
        }
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
}

}  // namespace

const OptionTable& postgres_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_postgres_sink(const Options& options, const ConnectorContext& ctx) {
    PostgresTableSink::Settings s;
    s.url = options.has("url") ? options.str("url") : ctx.config.postgres.str("url");
    if (s.url.empty())
        throw options.error("url", "no PostgreSQL URL: set url here or postgres.url");
    s.connect_timeout = connect_timeout_option(options, ctx.config.postgres);
    s.query_timeout = query_timeout_option(options, ctx.config.postgres);
    check_postgres_url(s.url, options, ctx.config.postgres);
    s.table = options.str("table");
    const std::string mode = options.str("mode");
    s.mode = mode == "upsert"   ? PostgresTableSink::Mode::Upsert
             : mode == "update" ? PostgresTableSink::Mode::Update
                                : PostgresTableSink::Mode::Insert;
    s.key_columns = options.string_list("key_columns");
    for (const auto& [column, text] : options.string_map("columns")) {
        try {
            s.column_templates.emplace_back(column, Template(text));
        } catch (const std::invalid_argument& e) {
            throw options.error("columns", column + ": " + e.what());
        }
    }
    s.delete_on_tombstone = options.boolean("delete_on_tombstone");
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1) throw options.error("batch_size", "must be at least 1");
    s.batch_size = static_cast<size_t>(batch_size);
    s.exactly_once = options.boolean("exactly_once");
    s.offsets_table = options.str("offsets_table");
    const int64_t connections = options.integer("connections");
    if (connections < 1 || connections > 64)
        throw options.error("connections", "must be between 1 and 64");
    // They split a Kafka source's partitions; other sources' records have none.
    if (connections > 1 && ctx.source_type == "kafka")
        return std::make_unique<PostgresLanes>(s, static_cast<size_t>(connections));
    return std::make_unique<PostgresTableSink>(std::move(s));
}

PostgresTableSink::PostgresTableSink(Settings settings)
    : settings_(std::move(settings)),
      conn_(settings_.url, settings_.connect_timeout, settings_.query_timeout) {}

bool PostgresTableSink::needs_fields() const {
    if (settings_.column_templates.empty()) return true;
    for (const auto& c : settings_.column_templates)
        if (c.second.needs_fields()) return true;
    return false;
}

void PostgresTableSink::connect() {
    conn_.connect();
    introspect();
    if (settings_.exactly_once) {
        try {
            conn_.exec(
                "CREATE TABLE IF NOT EXISTS " + conn_.quote_table(settings_.offsets_table) +
                " (consumer_group text NOT NULL, topic text NOT NULL, partition int NOT NULL,"
                " next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (consumer_group, topic, partition))");
        } catch (const PostgresError& e) {
            // Two runs creating it at once: one wins, the other finds it made (the loser hits
            // the unique index of pg_class or of pg_type, the table's row type).
            if (e.sqlstate() != "23505" && e.sqlstate() != "42P07" && e.sqlstate() != "42710")
                throw;
        }
    }
    prepare_session();
}

void PostgresTableSink::introspect() {
    table_ = conn_.quote_table(settings_.table);
    columns_.clear();  // connect() runs again after an outage
    keys_.clear();
    PgResult cols = conn_.exec_params(
        "SELECT a.attname, t.typcategory = 'A', a.attnotnull AND a.attidentity = '',"
        " a.atthasdef, a.atttypid::int FROM pg_attribute a JOIN pg_type t ON t.oid = "
        "a.atttypid"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND "
        "a.attgenerated = ''"
        " ORDER BY a.attnum",
        {table_});
    for (int i = 0; i < PQntuples(cols.get()); ++i) {
        Column c;
        c.name = PQgetvalue(cols.get(), i, 0);
        c.quoted = conn_.quote_identifier(c.name);
        c.is_array = PQgetvalue(cols.get(), i, 1)[0] == 't';
        c.refuses_null = PQgetvalue(cols.get(), i, 2)[0] == 't';
        c.has_default = PQgetvalue(cols.get(), i, 3)[0] == 't';
        const std::string type = PQgetvalue(cols.get(), i, 4);  // the built-in types' oids
        c.integer_type = type == "21"   ? "smallint"
                         : type == "23" ? "integer"
                         : type == "20" ? "bigint"
                                        : nullptr;
        columns_.push_back(std::move(c));
    }
    // A BEFORE ROW trigger (of the table or of any partition) may fill in a NULL, a rule may
    // send the row elsewhere, and an update meets NOT NULL only for rows it finds: then the
    // database alone can tell.
    PgResult hooks = conn_.exec_params(
        "SELECT c.relhasrules OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid IN"
        " (SELECT c.oid UNION ALL SELECT relid FROM pg_partition_tree(c.oid)) AND NOT "
        "g.tgisinternal"
        " AND g.tgtype & 3 = 3 AND g.tgtype & 20 <> 0) FROM pg_class c WHERE c.oid = $1::regclass",
        {table_});
    check_nulls_ = settings_.mode != Mode::Update && PQgetvalue(hooks.get(), 0, 0)[0] == 'f';
    auto index_of = [&](const std::string& name) -> size_t {
        for (size_t i = 0; i < columns_.size(); ++i)
            if (columns_[i].name == name) return i;
        throw PostgresError("postgres table " + settings_.table + " has no column '" + name + "'");
    };
    for (const auto& [column, tmpl] : settings_.column_templates) index_of(column);
    std::vector<std::string> keys = settings_.key_columns;
    if (keys.empty()) {
        PgResult pk = conn_.exec_params(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
            "a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY "
            "array_position(i.indkey::int2[], a.attnum)",
            {table_});
        for (int i = 0; i < PQntuples(pk.get()); ++i) keys.emplace_back(PQgetvalue(pk.get(), i, 0));
    }
    for (const auto& k : keys) keys_.push_back(index_of(k));
    std::vector<std::string> rights{settings_.mode == Mode::Update ? "UPDATE" : "INSERT"};
    if (settings_.mode == Mode::Upsert) rights.push_back("UPDATE");
    if (settings_.delete_on_tombstone) rights.push_back("DELETE");
    for (const auto& right : rights) {
        PgResult granted =
            conn_.exec_params("SELECT has_table_privilege($1::regclass, $2)", {table_, right});
        if (PQgetvalue(granted.get(), 0, 0)[0] != 't')
            throw PostgresError("postgres " + conn_.redacted_url() + ": the role may not " + right +
                                " into table " + settings_.table);
    }
    const bool needs_keys = settings_.mode != Mode::Insert || settings_.delete_on_tombstone;
    if (needs_keys && keys_.empty())
        throw PostgresError(
            "postgres table " + settings_.table + " has no primary key: name key_columns for " +
            (settings_.mode != Mode::Insert
                 ? "mode " + std::string(settings_.mode == Mode::Upsert ? "upsert" : "update")
                 : std::string("delete_on_tombstone")));
}

// Per session: the stage table upserts, updates and deletes go through. It empties itself at
// every commit, so a batch's transaction starts without a TRUNCATE (a round trip and a new file).
void PostgresTableSink::prepare_session() {
    if (settings_.mode == Mode::Insert) return;
    std::vector<std::string> cols;
    for (const auto& c : columns_) cols.push_back(c.quoted);
    conn_.exec(
        "CREATE TEMP TABLE IF NOT EXISTS kbridge_stage ON COMMIT DELETE ROWS AS SELECT 0::bigint "
        "AS kbridge_ord, false AS kbridge_tomb, " +
        join(cols, ", ") + " FROM " + table_ + " WITH NO DATA");
}

void PostgresTableSink::ensure_connected() {
    if (conn_.is_connected()) return;
    spdlog::warn("postgres_table sink {}: reconnecting to {}", settings_.table,
                 conn_.redacted_url());
    conn_.connect();
    prepare_session();
}

PostgresTableSink::Bytes PostgresTableSink::keep(std::optional<std::string_view> bytes) {
    if (!bytes) return {};
    Bytes b{in_.originals.size(), static_cast<int64_t>(bytes->size())};
    in_.originals.append(*bytes);
    return b;
}

std::optional<std::string_view> PostgresTableSink::view(Bytes bytes) const {
    if (bytes.length < 0) return std::nullopt;
    return std::string_view(originals_).substr(bytes.begin, static_cast<size_t>(bytes.length));
}

PostgresTableSink::Cell& PostgresTableSink::encoded_cell(size_t column) {
    return in_.cells[in_.pending.size() * columns_.size() + column];
}

void PostgresTableSink::put_cell(size_t column, std::optional<std::string_view> text) {
    Cell& cell = encoded_cell(column);
    if (!text) {
        cell.length = kNull;
        return;
    }
    cell.begin = static_cast<uint32_t>(in_.text.size());
    append_escaped(in_.text, *text);
    cell.length = static_cast<int32_t>(in_.text.size() - cell.begin);
}

void PostgresTableSink::put_json(size_t column, json::Value value) {
    switch (value.kind()) {
        case json::Kind::Null:
            put_cell(column, std::nullopt);
            return;
        case json::Kind::String:
            put_cell(column, value.string(scratch_));
            return;
        case json::Kind::Bool:
        case json::Kind::Number: {  // as written, and digits need no escaping
            Cell& cell = encoded_cell(column);
            cell.begin = static_cast<uint32_t>(in_.text.size());
            in_.text += value.raw();
            cell.length = static_cast<int32_t>(in_.text.size() - cell.begin);
            return;
        }
        case json::Kind::Array:
            if (columns_[column].is_array) {
                scratch_.clear();
                append_array_literal(scratch_, value);
                put_cell(column, scratch_);
                return;
            }
            [[fallthrough]];
        default:
            scratch_.clear();
            value.append_json(scratch_);
            put_cell(column, scratch_);  // json, jsonb, or text
    }
}

bool PostgresTableSink::encode_value(const json::Value* fields, const Record& record,
                                     Rejection& why) {
    if (!settings_.column_templates.empty()) {
        for (const auto& [column, tmpl] : settings_.column_templates) {
            scratch_.clear();
            if (!tmpl.render(record, fields, scratch_, error_)) {
                why = {"template", "column " + column + ": " + error_};
                return false;
            }
            size_t index = 0;
            while (columns_[index].name != column) ++index;
            const std::string text = scratch_;
            put_cell(index, text);
        }
        // Where rows are found by key, key columns the mapping leaves out come from the value's
        // field of that name, else (in encode_key) from the record key.
        const size_t base = in_.pending.size() * columns_.size();
        for (size_t k : settings_.mode == Mode::Insert ? std::vector<size_t>() : keys_) {
            json::Value value;
            if (in_.cells[base + k].length == kAbsent && fields &&
                fields->find(columns_[k].name, value) && !value.is_null())
                put_json(k, value);
        }
        return true;
    }
    if (!fields || !fields->is_object()) {
        why = {"not_object",
               "the value is not a JSON object, so no field names a column of " + settings_.table};
        return false;
    }
    bool any = false;
    size_t next = 0;  // fields mostly come in the order of the columns: try the next one first
    std::string name_scratch;
    for (const json::Member field : fields->children()) {
        const std::string_view name = field.key.string(name_scratch);
        size_t i = next;
        if (i >= columns_.size() || columns_[i].name != name) {
            i = 0;
            while (i < columns_.size() && columns_[i].name != name) ++i;
            if (i == columns_.size()) continue;
        }
        put_json(i, field.value);
        any = true;
        next = i + 1;
    }
    if (!any) why = {"no_columns", "no field of the record names a column of " + settings_.table};
    return any;
}

// Key columns the value did not give (or gave as null) come from the record's key: a JSON
// object naming them, or the single key column's value; else the record is refused.
bool PostgresTableSink::encode_key(const Record& record, Rejection& why) {
    const size_t base = in_.pending.size() * columns_.size();
    std::vector<size_t> missing;
    for (size_t k : keys_)
        if (in_.cells[base + k].length == kAbsent || in_.cells[base + k].length == kNull)
            missing.push_back(k);
    if (missing.empty()) return true;
    if (!record.key) {
        why = {"missing_key",
               "no value for key column " + columns_[missing[0]].name + " (and no record key)"};
        return false;
    }
    json::Value object;
    if (!record.key->empty() && record.key->front() == '{' &&
        key_decoder_.decode(*record.key, object, error_)) {
        for (size_t k : missing) {
            json::Value value;
            if (!object.find(columns_[k].name, value)) {
                why = {"missing_key", "the record key names no " + columns_[k].name};
                return false;
            }
            put_json(k, value);
        }
        return true;
    }
    if (keys_.size() != 1) {
        why = {"missing_key", "the key of " + settings_.table +
                                  " has several columns: the record key must be a JSON object"};
        return false;
    }
    put_cell(keys_[0], *record.key);
    return true;
}

// What the table is sure to refuse, found from its definition instead of a round trip each: a
// NULL in a NOT NULL column, and text without a digit for an integer column (every integer
// PostgreSQL reads has one). Anything less certain is left to the database.
std::string PostgresTableSink::precheck() const {
    const Cell* cells = &in_.cells[in_.pending.size() * columns_.size()];
    for (size_t c = 0; c < columns_.size(); ++c) {
        const Column& column = columns_[c];
        const Cell& cell = cells[c];
        if (check_nulls_ && column.refuses_null &&
            (cell.length == kNull || (cell.length == kAbsent && !column.has_default)))
            return "null value in column \"" + column.name + "\" of relation \"" + settings_.table +
                   "\" violates not-null constraint (" +
                   (cell.length == kNull ? "the record's value is null" : "the record has none") +
                   "; found by kbridge before sending)";
        if (column.integer_type && cell.length > 0) {
            const std::string_view text(in_.text.data() + cell.begin,
                                        static_cast<size_t>(cell.length));
            if (std::none_of(text.begin(), text.end(),
                             [](char ch) { return ch >= '0' && ch <= '9'; }))
                return "invalid input syntax for type " + std::string(column.integer_type) +
                       ": \"" + std::string(text.substr(0, 200)) + "\" (column \"" + column.name +
                       "\"; found by kbridge before sending)";
        }
    }
    return {};
}

bool PostgresTableSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                             Rejection& why) {
    const bool tombstone = !record.value;
    if (tombstone && !settings_.delete_on_tombstone) {
        listener_->delivered(batch);  // nothing to write: tombstones only matter to deleting tables
        return true;
    }
    const size_t text_mark = in_.text.size();
    in_.cells.resize((in_.pending.size() + 1) * columns_.size());
    const bool ok = (tombstone || encode_value(fields, record, why)) &&
                    (keys_.empty() || (settings_.mode == Mode::Insert && !tombstone) ||
                     encode_key(record, why));
    // What the table's definition settles is refused here, like a record that cannot be encoded:
    // the rest of the batch takes the fast path, and the refused one goes to the dead letter
    // (which an exactly_once commit waits for) with the database's wording.
    std::string refusal;
    if (ok && !tombstone) refusal = precheck();
    if (!ok || !refusal.empty()) {
        in_.cells.resize(in_.pending.size() * columns_.size());
        in_.text.resize(text_mark);
        if (!refusal.empty()) why = {"database", std::move(refusal)};
        return false;
    }
    uint32_t topic = 0;
    while (topic < topics_.size() && topics_[topic] != record.topic) ++topic;
    if (topic == topics_.size()) topics_.push_back(record.topic);
    in_.pending.push_back({batch, tombstone, topic, record.partition, record.offset,
                           keep(record.key), keep(record.value)});
    if (in_.pending.size() >= settings_.batch_size) {
        if (queue_full_batches_) {
            full_.push_back(std::move(in_));
            if (spare_.empty()) {
                in_ = Buffer{};
            } else {
                in_ = std::move(spare_.back());
                spare_.pop_back();
            }
            if (!awaiting_) start_next();
        } else {
            finish_inflight();
            start_next();
        }
    }
    return true;
}

// A batch's COPY and COMMIT run while the next batch is read and encoded: poll() moves the one in
// flight on without waiting (unless asked to) and starts the next once it is done.
void PostgresTableSink::poll(std::chrono::milliseconds wait) {
    progress(wait);
    if (!awaiting_ && (!full_.empty() || !in_.pending.empty())) {
        start_next();
        progress(std::chrono::milliseconds(0));
    }
}

void PostgresTableSink::finish_inflight() {
    while (awaiting_) progress(std::chrono::milliseconds(1000));
}

short PostgresTableSink::wanted_events() const {
    if (sending_) return POLLOUT | POLLIN;
    return awaiting_ ? POLLIN : 0;
}

// The oldest encoded batch becomes the one written (its buffers swapped, not copied).
void PostgresTableSink::start_next() {
    Buffer& next = full_.empty() ? in_ : full_.front();
    std::swap(pending_, next.pending);
    std::swap(cells_, next.cells);
    std::swap(cell_text_, next.text);
    std::swap(originals_, next.originals);
    next.clear();
    if (!full_.empty()) {
        // Kept for the next batch: its vectors have grown to a batch's size already, and growing
        // fresh ones each batch costs page faults and copies.
        if (spare_.size() < kSpareBuffers) spare_.push_back(std::move(full_.front()));
        full_.pop_front();
    }
    if (!pending_.empty()) start_async();
}

// The fast path: the whole transaction in one query string, sent without waiting for the server,
// which goes from the COPY on to COMMIT by itself (with exactly_once, once the stored offsets are
// in, themselves read without waiting). Anything unusual (a tombstone in insert mode, any error)
// takes the careful path, flush(), which retries, reconnects and isolates refused records.
void PostgresTableSink::start_async() {
    // The commit stores offsets past records refused before they reached this sink (invalid
    // JSON, a failed template): with exactly_once the dead letter must hold them first.
    if (settings_.exactly_once && !listener_->settle_dead_letters()) {
        fail_unreported(std::vector<bool>(pending_.size()),
                        "not written: the dead letter failed to take a record refused before it");
        return;
    }
    std::vector<size_t> all(pending_.size());
    std::iota(all.begin(), all.end(), 0);
    const bool insert_deletes =
        settings_.mode == Mode::Insert &&
        std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) { return p.tombstone; });
    if (insert_deletes) {
        flush();
        return;
    }
    try {
        ensure_connected();
        if (settings_.exactly_once) {
            const std::string fence = "BEGIN; " + fence_query(all);
            if (!PQsendQuery(conn_.get(), fence.c_str())) conn_.raise("BEGIN failed");
            awaiting_ = fencing_ = true;
            awaiting_since_ = std::chrono::steady_clock::now();
            return;
        }
        send_transaction(all, "BEGIN; ");
    } catch (const PostgresError& e) {
        // Before the end of the COPY is sent nothing can have been committed.
        recover(e, false);
    }
}

// `todo`: the batch's records not yet applied; the transaction is open already unless `begin`
// opens it.
void PostgresTableSink::send_transaction(const std::vector<size_t>& todo,
                                         const std::string& begin) {
    std::string tail;
    if (settings_.mode != Mode::Insert && !todo.empty())
        for (const auto& sql : staged_statements(todo)) tail += sql + ";\n";
    if (settings_.exactly_once) tail += offsets_statement() + ";\n";
    const std::string commit = tail + "COMMIT";
    awaiting_ = true;
    awaiting_since_ = std::chrono::steady_clock::now();
    if (todo.empty()) {
        if (!PQsendQuery(conn_.get(), commit.c_str())) conn_.raise("COMMIT failed");
        return;
    }
    // Queued, not sent: the server parses this batch while the next one is read and
    // encoded, instead of the two taking turns.
    if (PQsetnonblocking(conn_.get(), 1) != 0) conn_.raise("COPY failed");
    sending_ = true;
    copy_rows(todo, settings_.mode != Mode::Insert, begin, commit);
    if (PQputCopyEnd(conn_.get(), nullptr) != 1) conn_.raise("COPY failed");
}

// Sends what the socket takes of the queued COPY, waiting up to `wait` for room; true once
// everything is sent and the connection is blocking again.
bool PostgresTableSink::send_queued(std::chrono::milliseconds wait) {
    PGconn* c = conn_.get();
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
    sending_ = false;
    PQsetnonblocking(c, 0);
    return true;
}

// Back to blocking, for everything but the fast path's COPY; what is still queued is sent first,
// as a blocking COPY would have sent it (an error there shows in what runs next).
void PostgresTableSink::stop_sending() {
    if (!sending_) return;
    try {
        while (!send_queued(std::chrono::milliseconds(1000))) give_up_if_stalled();
    } catch (const PostgresError&) {
        sending_ = false;
        if (conn_.get()) PQsetnonblocking(conn_.get(), 0);
    }
}

bool PostgresTableSink::result_ready(std::chrono::milliseconds wait) {
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

void PostgresTableSink::progress(std::chrono::milliseconds wait) {
    if (sending_) {
        try {
            if (!send_queued(wait)) {
                give_up_if_stalled();
                return;
            }
        } catch (const PostgresError& e) {
            recover(e, false);
            return;
        }
    }
    while (awaiting_) {
        if (!result_ready(wait)) {
            try {
                give_up_if_stalled();
            } catch (const PostgresError& e) {
                recover(e, !fencing_);  // the COMMIT was sent: in doubt
            }
            return;
        }
        PgResult result(PQgetResult(conn_.get()));
        if (!result && fencing_) {  // the stored offsets are in: the rest of the transaction
            fencing_ = false;
            awaiting_ = false;
            std::vector<size_t> all(pending_.size());
            std::iota(all.begin(), all.end(), 0);
            try {
                send_transaction(unapplied(all, fenced_.get()), "");
            } catch (const PostgresError& e) {
                recover(e, false);
                return;
            }
            fenced_.reset();
            wait = std::chrono::milliseconds(0);
            continue;
        }
        if (!result) {  // every result of the transaction's statements is in
            awaiting_ = false;
            for (const auto& p : pending_) listener_->delivered(p.batch);
            clear();
            return;
        }
        const auto status = PQresultStatus(result.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            // Let the connection settle (the rest of the results) before recovering on it.
            while (PgResult rest{PQgetResult(conn_.get())}) {
            }
            try {
                conn_.raise(fencing_ ? "BEGIN failed" : "COMMIT failed", result.get());
            } catch (const PostgresError& e) {
                recover(e, !fencing_);  // in doubt only if the connection was lost
            }
            return;
        }
        if (fencing_ && status == PGRES_TUPLES_OK) fenced_ = std::move(result);
        wait = std::chrono::milliseconds(0);
    }
}

// The fast path's transaction has waited past query_timeout, or past the grace a stopping run
// allows: the connection is dropped (a PostgresError, connection lost).
void PostgresTableSink::give_up_if_stalled() {
    const auto now = std::chrono::steady_clock::now();
    if (stop_requested().load() && !stop_seen_) stop_seen_ = now;
    if (now - awaiting_since_ > conn_.query_timeout())
        conn_.abandon("no answer within " + duration_text(conn_.query_timeout()) +
                      " (query_timeout) while writing a batch");
    if (stop_seen_ && now - *stop_seen_ > kStopGrace)
        conn_.abandon("gave up waiting for a batch's transaction: the run is stopping");
}

// The fast path failed: roll back and write the batch the careful way. A COMMIT whose outcome
// the lost connection hides is resolved as flush() resolves it.
void PostgresTableSink::recover(const PostgresError& e, bool commit_sent) {
    awaiting_ = fencing_ = false;
    fenced_.reset();
    stop_sending();
    if (commit_sent && e.connection_lost()) {
        std::vector<size_t> all(pending_.size());
        std::iota(all.begin(), all.end(), 0);
        if (settings_.exactly_once) {
            try {
                ensure_connected();
                if (committed_before(all)) {
                    for (const auto& p : pending_) listener_->delivered(p.batch);
                    clear();
                    return;
                }
            } catch (const PostgresError&) {
            }
        } else if (settings_.mode == Mode::Insert) {
            for (const auto& p : pending_)
                listener_->failed(p.batch, "COMMIT in doubt (" + std::string(e.what()) +
                                               "); not retried, as it could insert the rows twice");
            clear();
            return;
        }
    }
    if (!e.connection_lost()) {
        try {
            conn_.exec("ROLLBACK");
        } catch (const PostgresError&) {
        }
    }
    if (!record_error(e) && !retriable(e)) {
        for (const auto& p : pending_) listener_->failed(p.batch, e.what());
        clear();
        return;
    }
    flush();
}

void PostgresTableSink::clear() {
    pending_.clear();
    cells_.clear();
    cell_text_.clear();
    originals_.clear();
}

void PostgresTableSink::flush() {
    if (pending_.empty()) return;
    std::vector<size_t> all(pending_.size());
    std::iota(all.begin(), all.end(), 0);
    std::vector<Rejected> rejected;
    std::vector<bool> reported(pending_.size(), false);  // refused, and told so already
    std::chrono::milliseconds backoff(100);
    for (int attempt = 1;; ++attempt) {
        rejected.clear();
        bool commit_sent = false;
        try {
            ensure_connected();
            conn_.exec("BEGIN");
            std::vector<size_t> todo = settings_.exactly_once ? fence(all) : all;
            isolate(todo, rejected);
            if (!rejected.empty() && !dead_letter_available_) {
                // The run stops at the refused record: none of its batch is written, so a rerun
                // after the fix writes each record once.
                conn_.exec("ROLLBACK");
                report_refused(rejected, reported);
                fail_unreported(reported,
                                "not written: its batch holds a record the table refused");
                return;
            }
            if (settings_.exactly_once && !rejected.empty()) {
                // The stored offsets pass the refused records with this commit: they go to the
                // dead letter first, or a crash just after the commit would leave them nowhere.
                report_refused(rejected, reported);
                if (!listener_->settle_dead_letters()) {
                    conn_.exec("ROLLBACK");
                    fail_unreported(reported,
                                    "not written: the dead letter failed to take a record of its "
                                    "batch the table refused");
                    return;
                }
            }
            if (settings_.exactly_once) conn_.exec(offsets_statement());
            commit_sent = true;
            conn_.exec("COMMIT");
            break;
        } catch (const PostgresError& e) {
            std::string error = e.what();
            bool may_retry = retriable(e);
            if (commit_sent && e.connection_lost()) {
                // In doubt: the COMMIT may have happened. Only the stored offsets can tell; an
                // upsert or update may safely happen twice, an insert may not.
                if (settings_.exactly_once) {
                    try {
                        ensure_connected();
                        if (committed_before(all)) break;
                    } catch (const PostgresError&) {
                    }
                } else if (settings_.mode == Mode::Insert) {
                    may_retry = false;
                    error = "COMMIT in doubt (" + error +
                            "); not retried, as it could insert the rows twice";
                }
            }
            if (!e.connection_lost()) {
                try {
                    conn_.exec("ROLLBACK");
                } catch (const PostgresError&) {
                }
            }
            if (may_retry && attempt < kMaxAttempts && !stop_requested().load()) {
                spdlog::warn("postgres_table sink {}: {} (attempt {} of {}, retrying in {} ms)",
                             settings_.table, error, attempt, kMaxAttempts, backoff.count());
                sleep_unless_stopped(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                retried_ += pending_.size();
                continue;
            }
            fail_unreported(reported, error);
            return;
        }
    }
    report_refused(rejected, reported);
    for (size_t i = 0; i < pending_.size(); ++i)
        if (!reported[i]) listener_->delivered(pending_[i].batch);
    clear();
}

// The batch's records not reported refused have failed: the run stops.
void PostgresTableSink::fail_unreported(const std::vector<bool>& reported,
                                        const std::string& error) {
    for (size_t i = 0; i < pending_.size(); ++i)
        if (!reported[i]) listener_->failed(pending_[i].batch, error);
    clear();
}

// Each refused record is reported once, however many attempts found it.
void PostgresTableSink::report_refused(const std::vector<Rejected>& rejected,
                                       std::vector<bool>& reported) {
    for (const auto& r : rejected) {
        if (reported[r.index]) continue;
        reported[r.index] = true;
        const Pending& p = pending_[r.index];
        Record original;
        original.key = view(p.key);
        original.value = view(p.value);
        original.topic = topics_[p.topic];
        original.partition = p.partition;
        original.offset = p.offset;
        listener_->rejected(p.batch, std::move(original), Rejection{"database", r.message});
    }
}

// Applies `records`, or if the database refuses them for what they hold, halves them until the
// refused records stand alone; the others still apply, in their order.
void PostgresTableSink::isolate(const std::vector<size_t>& records,
                                std::vector<Rejected>& rejected) {
    if (records.empty()) return;
    conn_.exec("SAVEPOINT kbridge_try");
    try {
        apply(records);
        conn_.exec("RELEASE SAVEPOINT kbridge_try");
        return;
    } catch (const PostgresError& e) {
        if (!record_error(e)) throw;
        conn_.exec("ROLLBACK TO SAVEPOINT kbridge_try");
        conn_.exec("RELEASE SAVEPOINT kbridge_try");
        if (records.size() == 1) {
            rejected.push_back({records[0], one_line(e.what())});
            return;
        }
    }
    const auto middle = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
    isolate(std::vector<size_t>(records.begin(), middle), rejected);
    isolate(std::vector<size_t>(middle, records.end()), rejected);
}

void PostgresTableSink::apply(const std::vector<size_t>& records) {
    if (settings_.mode != Mode::Insert) {
        apply_staged(records);
        return;
    }
    // Inserts and deletes in their order: runs of inserts by COPY, each delete by itself.
    std::vector<size_t> run;
    for (size_t r : records) {
        if (!pending_[r].tombstone) {
            run.push_back(r);
            continue;
        }
        apply_insert(run);
        run.clear();
        delete_one(r);
    }
    apply_insert(run);
}

std::vector<size_t> PostgresTableSink::used_columns(const std::vector<size_t>& records) const {
    std::vector<bool> used(columns_.size(), false);
    for (size_t k : keys_) used[k] = settings_.mode != Mode::Insert;
    for (size_t r : records) {
        if (pending_[r].tombstone) continue;
        const Cell* cells = &cells_[r * columns_.size()];
        for (size_t c = 0; c < columns_.size(); ++c)
            if (cells[c].length != kAbsent) used[c] = true;
    }
    std::vector<size_t> out;
    for (size_t c = 0; c < columns_.size(); ++c)
        if (used[c]) out.push_back(c);
    return out;
}

void PostgresTableSink::append_copy_line(size_t record, const std::vector<size_t>& columns,
                                         std::string& out, const char* prefix) {
    out += prefix;
    const Cell* cells = &cells_[record * columns_.size()];
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i) out += '\t';
        const Cell& cell = cells[columns[i]];
        if (cell.length < 0) {
            out += "\\N";
        } else {
            out.append(cell_text_, cell.begin, static_cast<size_t>(cell.length));
        }
    }
    out += '\n';
}

void PostgresTableSink::apply_insert(const std::vector<size_t>& records) {
    if (records.empty()) return;
    copy_rows(records, false);
    conn_.end_copy_in();
}

// COPY FROM STDIN started, its rows sent: into the table, or (staged) into the stage table with
// each record's place in the batch and whether it is a tombstone. `before` and `after` share the
// COPY's query string.
void PostgresTableSink::copy_rows(const std::vector<size_t>& records, bool staged,
                                  const std::string& before, const std::string& after) {
    const std::vector<size_t> columns = used_columns(records);
    std::vector<std::string> names;
    for (size_t c : columns) names.push_back(columns_[c].quoted);
    const std::string into = staged ? "kbridge_stage (kbridge_ord, kbridge_tomb, " : table_ + " (";
    conn_.copy_in(before + "COPY " + into + join(names, ", ") + ") FROM STDIN" +
                  (after.empty() ? "" : "; " + after));
    copy_buffer_.clear();
    std::string prefix;
    for (size_t r : records) {
        if (staged) prefix = std::to_string(r) + (pending_[r].tombstone ? "\tt\t" : "\tf\t");
        append_copy_line(r, columns, copy_buffer_, prefix.c_str());
        if (copy_buffer_.size() >= kCopyChunk) {
            conn_.put_copy_data(copy_buffer_);
            copy_buffer_.clear();
        }
    }
    if (!copy_buffer_.empty()) conn_.put_copy_data(copy_buffer_);
}

void PostgresTableSink::delete_one(size_t record) {
    std::vector<std::string> conditions;
    std::vector<std::optional<std::string>> params;
    const Cell* cells = &cells_[record * columns_.size()];
    for (size_t k : keys_) {
        conditions.push_back(columns_[k].quoted + " = $" + std::to_string(params.size() + 1));
        // Cells hold COPY text; parameters want the plain value.
        const Cell& cell = cells[k];
        if (cell.length < 0) {
            params.emplace_back(std::nullopt);
            continue;
        }
        std::string plain;
        const std::string_view text(cell_text_.data() + cell.begin,
                                    static_cast<size_t>(cell.length));
        for (size_t i = 0; i < text.size(); ++i) {
            if (text[i] != '\\' || i + 1 == text.size()) {
                plain += text[i];
                continue;
            }
            const char next = text[++i];
            plain += next == 'n' ? '\n' : next == 'r' ? '\r' : next == 't' ? '\t' : next;
        }
        params.emplace_back(std::move(plain));
    }
    conn_.exec_params("DELETE FROM " + table_ + " WHERE " + join(conditions, " AND "), params);
}

void PostgresTableSink::apply_staged(const std::vector<size_t>& records) {
    conn_.exec("TRUNCATE kbridge_stage");
    copy_rows(records, true);
    conn_.end_copy_in();
    for (const auto& sql : staged_statements(records)) conn_.exec(sql);
}

// What makes the stage table's rows the table's: the last record of each key decides, a
// tombstone deletes, anything else is written.
std::vector<std::string> PostgresTableSink::staged_statements(const std::vector<size_t>& records) {
    std::vector<size_t> columns = used_columns(records);
    std::vector<std::string> names, keys, assignments, matches;
    for (size_t c : columns) names.push_back(columns_[c].quoted);
    for (size_t k : keys_) {
        keys.push_back(columns_[k].quoted);
        matches.push_back("t." + columns_[k].quoted + " = s." + columns_[k].quoted);
    }
    for (size_t c : columns)
        if (std::find(keys_.begin(), keys_.end(), c) == keys_.end())
            assignments.push_back(columns_[c].quoted + " = " +
                                  (settings_.mode == Mode::Upsert ? "EXCLUDED." : "s.") +
                                  columns_[c].quoted);

    bool any_tombstone = false;
    for (size_t r : records) any_tombstone |= pending_[r].tombstone;
    std::vector<std::string> statements;
    const std::string last = "(SELECT DISTINCT ON (" + join(keys, ", ") +
                             ") * FROM kbridge_stage ORDER BY " + join(keys, ", ") +
                             ", kbridge_ord DESC) s";
    if (any_tombstone)
        statements.push_back("DELETE FROM " + table_ + " t USING " + last +
                             " WHERE s.kbridge_tomb AND " + join(matches, " AND "));
    if (settings_.mode == Mode::Upsert) {
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

// exactly_once: the query reading the stored offsets of the records' partitions, locking them
// until COMMIT, so that a second consumer of the same partitions waits and then skips what this
// one applied. Only the batch's partitions are locked, in one order: the other connections of a
// sink write other partitions.
std::string PostgresTableSink::fence_query(const std::vector<size_t>& records) {
    std::set<std::pair<uint32_t, int32_t>> partitions;
    for (size_t r : records) partitions.insert({pending_[r].topic, pending_[r].partition});
    std::string rows;
    for (const auto& [topic, partition] : partitions)
        rows += (rows.empty() ? "(" : ", (") + conn_.quote_literal(topics_[topic]) + ", " +
                std::to_string(partition) + ")";
    return "SELECT topic, partition, next_offset FROM " +
           conn_.quote_table(settings_.offsets_table) +
           " WHERE consumer_group = " + conn_.quote_literal(group_) +
           " AND (topic, partition) IN (" + rows + ") ORDER BY topic, partition FOR UPDATE";
}

// Rows of (topic, partition, next_offset) by partition.
std::map<std::pair<std::string, int32_t>, int64_t> PostgresTableSink::stored_next(
    const PGresult* stored) {
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (int i = 0; stored && i < PQntuples(stored); ++i)
        next[{PQgetvalue(stored, i, 0), std::stoi(PQgetvalue(stored, i, 1))}] =
            std::stoll(PQgetvalue(stored, i, 2));
    return next;
}

// The records at or past the stored offsets the fence query read.
std::vector<size_t> PostgresTableSink::unapplied(const std::vector<size_t>& records,
                                                 const PGresult* stored) {
    const auto next = stored_next(stored);
    std::vector<size_t> todo;
    for (size_t r : records) {
        const Pending& p = pending_[r];
        auto it = next.find({topics_[p.topic], p.partition});
        if (it == next.end() || p.offset >= it->second) todo.push_back(r);
    }
    if (todo.size() != records.size())
        spdlog::info("postgres_table sink {}: skipped {} records already applied (offsets in {})",
                     settings_.table, records.size() - todo.size(), settings_.offsets_table);
    return todo;
}

std::vector<size_t> PostgresTableSink::fence(const std::vector<size_t>& records) {
    PgResult stored = conn_.exec(fence_query(records));
    return unapplied(records, stored.get());
}

// The batch's next offsets, written in its transaction (never moving a partition back).
std::string PostgresTableSink::offsets_statement() {
    std::map<std::pair<uint32_t, int32_t>, int64_t> next;
    for (const Pending& p : pending_) {
        int64_t& n = next[{p.topic, p.partition}];
        n = std::max(n, p.offset + 1);
    }
    std::string values;
    for (const auto& [tp, offset] : next)
        values += (values.empty() ? "(" : ", (") + conn_.quote_literal(group_) + ", " +
                  conn_.quote_literal(topics_[tp.first]) + ", " + std::to_string(tp.second) + ", " +
                  std::to_string(offset) + ")";
    return "INSERT INTO " + conn_.quote_table(settings_.offsets_table) +
           " AS o (consumer_group, topic, partition, next_offset) VALUES " + values +
           " ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET"
           " next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()";
}

bool PostgresTableSink::committed_before(const std::vector<size_t>& records) {
    PgResult stored = conn_.exec_params("SELECT topic, partition, next_offset FROM " +
                                            conn_.quote_table(settings_.offsets_table) +
                                            " WHERE consumer_group = $1",
                                        {group_});
    const auto next = stored_next(stored.get());
    for (size_t r : records) {
        auto it = next.find({topics_[pending_[r].topic], pending_[r].partition});
        if (it == next.end() || it->second <= pending_[r].offset) return false;
    }
    return true;
}

std::vector<PartitionOffset> PostgresTableSink::stored_offsets(
    const std::vector<PartitionOffset>& partitions) {
    ensure_connected();
    const std::string table = conn_.quote_table(settings_.offsets_table);
    std::vector<PartitionOffset> out;
    for (const auto& p : partitions) {
        // A row per partition from the start, so that fence() always has one to lock.
        conn_.exec_params(
            "INSERT INTO " + table +
                " (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, -1)"
                " ON CONFLICT DO NOTHING",
            {group_, p.topic, std::to_string(p.partition)});
        PgResult r =
            conn_.exec_params("SELECT next_offset FROM " + table +
                                  " WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
                              {group_, p.topic, std::to_string(p.partition)});
        out.push_back({p.topic, p.partition,
                       PQntuples(r.get()) ? std::stoll(PQgetvalue(r.get(), 0, 0)) : -1});
    }
    return out;
}

}  // namespace kbridge
