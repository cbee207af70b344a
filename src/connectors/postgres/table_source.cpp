#include "connectors/postgres/table_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "connectors/postgres/conninfo.h"
#include "core/wait.h"

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "postgres_table"},
    {"url", OptionType::String, "", "libpq URI or key=value conninfo (default: postgres.url)"},
    {"table", OptionType::String, "", "schema.table to export (or query)"},
    {"query", OptionType::String, "", "a SELECT to export instead of a table (bulk mode)"},
    {"mode",
     OptionType::Choice,
     "bulk",
     "bulk | incrementing | timestamp | timestamp+incrementing",
     {"bulk", "incrementing", "timestamp", "timestamp+incrementing"}},
    {"incrementing_column", OptionType::String, "",
     "a strictly increasing column, e.g. a serial id"},
    {"timestamp_column", OptionType::String, "", "a column set to the time of each insert/update"},
    {"columns", OptionType::StringList, "", "columns to export (default: all)"},
    {"where", OptionType::String, "", "an SQL condition rows must meet"},
    {"key_columns", OptionType::StringList, "", "the record key (default: the primary key)"},
    {"fetch_size", OptionType::Integer, "5000", "rows per batch"},
    {"poll_interval", OptionType::Duration, "5s", "follow mode: time between reads"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting (default: postgres.connect_timeout, 10s)"},
    {"query_timeout", OptionType::Duration, "",
     "bound on a silent wait for a query's answer (default: postgres.query_timeout, 5m)"},
    {"stall_warning", OptionType::Duration, "60s",
     "incremental, follow mode: warn (each minute) when the transaction horizon has not moved "
     "for this long while newer rows wait"},
    {"stall_unhealthy", OptionType::Duration, "15m",
     "incremental, follow mode: /health answers 503 once the horizon is held this long"},
};

// The stored position's names.
constexpr const char* kIncrementing = "incrementing";
constexpr const char* kTimestamp = "timestamp";
constexpr const char* kHorizon = "horizon";  // xid8: every transaction before it was exported

PostgresTableSource::Mode parse_mode(const std::string& text) {
    if (text == "incrementing") return PostgresTableSource::Mode::Incrementing;
    if (text == "timestamp") return PostgresTableSource::Mode::Timestamp;
    if (text == "timestamp+incrementing") return PostgresTableSource::Mode::TimestampIncrementing;
    return PostgresTableSource::Mode::Bulk;
}

}  // namespace

const OptionTable& postgres_table_options() {
    return kOptions;
}

std::unique_ptr<Source> make_postgres_table_source(const Options& options,
                                                   const ConnectorContext& ctx) {
    PostgresTableSource::Settings s;
    s.url = options.has("url") ? options.str("url") : ctx.config.postgres.str("url");
    if (s.url.empty())
        throw options.error("url", "no PostgreSQL URL: set url here or postgres.url");
    s.connect_timeout = connect_timeout_option(options, ctx.config.postgres);
    s.query_timeout = query_timeout_option(options, ctx.config.postgres);
    check_postgres_url(s.url, options, ctx.config.postgres);
    s.table = options.str("table");
    s.query = options.str("query");
    if (s.table.empty() == s.query.empty())
        throw options.error("table", "give either table or query");
    s.mode = parse_mode(options.str("mode"));
    s.incrementing_column = options.str("incrementing_column");
    s.timestamp_column = options.str("timestamp_column");
    using Mode = PostgresTableSource::Mode;
    if ((s.mode == Mode::Incrementing || s.mode == Mode::TimestampIncrementing) &&
        s.incrementing_column.empty())
        throw options.error("mode", "mode " + options.str("mode") + " needs incrementing_column");
    if ((s.mode == Mode::Timestamp || s.mode == Mode::TimestampIncrementing) &&
        s.timestamp_column.empty())
        throw options.error("mode", "mode " + options.str("mode") + " needs timestamp_column");
    if (s.mode != Mode::Bulk && !s.query.empty())
        throw options.error("query",
                            "incremental modes read a table: rows committed late are found by "
                            "their transaction ids, which a query does not have");
    s.columns = options.string_list("columns");
    s.where = options.str("where");
    s.key_columns = options.string_list("key_columns");
    if (!s.columns.empty()) {
        auto require = [&](const std::string& column, const char* option) {
            if (!column.empty() &&
                std::find(s.columns.begin(), s.columns.end(), column) == s.columns.end())
                throw options.error("columns", "lacks '" + column + "', the " + option);
        };
        require(s.incrementing_column, "incrementing_column");
        require(s.timestamp_column, "timestamp_column");
        for (const auto& k : s.key_columns) require(k, "key column");
    }
    const int64_t fetch_size = options.integer("fetch_size");
    if (fetch_size < 1 || fetch_size > 100000)
        throw options.error("fetch_size", "must be between 1 and 100000");
    s.fetch_size = static_cast<size_t>(fetch_size);
    s.poll_interval = options.duration("poll_interval");
    s.stall_warning = options.duration("stall_warning");
    s.stall_unhealthy = options.duration("stall_unhealthy");
    s.once = ctx.once;
    s.state_dir = ctx.state_dir;
    s.pipeline = ctx.pipeline;
    return std::make_unique<PostgresTableSource>(std::move(s));
}

PostgresTableSource::PostgresTableSource(Settings settings)
    : settings_(std::move(settings)),
      conn_(settings_.url, settings_.connect_timeout, settings_.query_timeout),
      store_(settings_.state_dir, settings_.pipeline) {}

std::string PostgresTableSource::describe() const {
    return "postgres_table:" + (settings_.table.empty() ? std::string("query") : settings_.table);
}

void PostgresTableSource::connect() {
    exporting_ = false;  // after an outage the export starts again from the acknowledged position
    conn_.connect();
    conn_.exec("SET datestyle = 'ISO, YMD'");  // positions are read back as literals
    if (!settings_.table.empty()) {
        // Named here, before any COPY: the server's own message would not say which option.
        const PgResult found = conn_.exec_params("SELECT to_regclass($1) IS NOT NULL",
                                                 {conn_.quote_table(settings_.table)});
        if (std::string(PQgetvalue(found.get(), 0, 0)) != "t")
            throw PostgresError("postgres " + conn_.redacted_url() + ": table '" + settings_.table +
                                "' does not exist");
        std::vector<std::string> wanted = settings_.columns;
        for (const auto* c : {&settings_.incrementing_column, &settings_.timestamp_column})
            if (!c->empty()) wanted.push_back(*c);
        for (const auto& c : settings_.key_columns) wanted.push_back(c);
        for (const auto& column : wanted) {
            const PgResult exists = conn_.exec_params(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND "
                "attnum > 0 AND NOT attisdropped",
                {conn_.quote_table(settings_.table), column});
            if (PQntuples(exists.get()) == 0)
                throw PostgresError("postgres " + conn_.redacted_url() + ": table '" +
                                    settings_.table + "' has no column '" + column + "'");
        }
    }
    key_columns_ = settings_.key_columns;
    if (key_columns_.empty() && !settings_.table.empty()) {
        const PgResult pk = conn_.exec_params(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
            "a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY "
            "array_position(i.indkey, a.attnum)",
            {conn_.quote_table(settings_.table)});
        for (int i = 0; i < PQntuples(pk.get()); ++i)
            key_columns_.push_back(PQgetvalue(pk.get(), i, 0));
    }
    if (incremental()) {
        if (auto stored = store_.load()) position_ = *stored;
        if (!position_.empty()) {
            std::string shown;
            for (const auto& [name, value] : position_)
                shown += (shown.empty() ? "" : ", ") + name + "=" + value;
            spdlog::info("postgres_table {}: resuming after {}", settings_.table, shown);
        }
    }
    describe_columns();
    last_save_ = std::chrono::steady_clock::now();
}

void PostgresTableSource::check_position(const Position& position) {
    std::vector<std::string> names;
    std::string mode;
    switch (settings_.mode) {
        case Mode::Incrementing:
            names = {kIncrementing};
            mode = "incrementing";
            break;
        case Mode::Timestamp:
            names = {kTimestamp};
            mode = "timestamp";
            break;
        case Mode::TimestampIncrementing:
            names = {kTimestamp, kIncrementing};
            mode = "timestamp+incrementing";
            break;
        case Mode::Bulk:
            throw std::invalid_argument(describe() +
                                        " is in bulk mode, which keeps no position (the modes "
                                        "incrementing, timestamp and timestamp+incrementing do)");
    }
    names.push_back(kHorizon);
    for (const auto& [name, value] : position) {
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            std::string known;
            for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
            throw std::invalid_argument("'" + name + "' is no part of a " + mode +
                                        " position (names: " + known + ")");
        }
        if (name == kHorizon && (value.empty() || value.size() > 19 ||
                                 value.find_first_not_of("0123456789") != std::string::npos))
            throw std::invalid_argument(std::string(kHorizon) + "=" + value +
                                        ": must be a transaction id (xid8, a whole number)");
    }
    conn_.connect();
    conn_.exec("SET datestyle = 'ISO, YMD'");  // as the export reads positions back
    for (const char* name : {kIncrementing, kTimestamp}) {
        const auto it = position.find(name);
        if (it == position.end()) continue;
        const std::string& column = std::string(name) == kIncrementing
                                        ? settings_.incrementing_column
                                        : settings_.timestamp_column;
        try {
            conn_.exec("SELECT 1 FROM (" + inner_select("") + ") src WHERE src." +
                       conn_.quote_identifier(column) + " > " + conn_.quote_literal(it->second) +
                       " LIMIT 0");
        } catch (const std::exception& e) {
            throw std::invalid_argument(std::string(name) + "=" + it->second +
                                        ": not a value of column '" + column + "': " + e.what());
        }
    }
}

void PostgresTableSource::describe_columns() {
    const PgResult shape = conn_.exec("SELECT * FROM (" + inner_select("") + ") t LIMIT 0");
    std::vector<RowJson::Column> columns;
    column_types_.clear();
    column_names_.clear();
    for (int i = 0; i < PQnfields(shape.get()); ++i) {
        const std::string name = PQfname(shape.get(), i);
        for (const auto& c : columns)
            if (c.name == name)
                return;  // duplicate names: only row_to_json knows what to make of them
        column_types_.push_back(PQftype(shape.get(), i));
        column_names_.push_back(name);
        columns.push_back({name, RowJson::kind_of(PQftype(shape.get(), i))});
    }
    row_json_.emplace(std::move(columns));
}

std::string PostgresTableSource::inner_select(const std::string& where) {
    std::string select_list = "*";
    if (!settings_.columns.empty()) {
        select_list.clear();
        for (const auto& c : settings_.columns)
            select_list += (select_list.empty() ? "" : ", ") + conn_.quote_identifier(c);
    }
    const std::string from = settings_.table.empty() ? "(" + settings_.query + ") src"
                                                     : conn_.quote_table(settings_.table) + " src";
    return "SELECT " + select_list + " FROM " + from + where;
}

std::optional<uint64_t> PostgresTableSource::backlog() {
    if (settings_.table.empty() || incremental()) return std::nullopt;
    const PgResult estimate =
        conn_.exec_params("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)",
                          {conn_.quote_table(settings_.table)});
    const long long rows =
        PQntuples(estimate.get()) ? std::atoll(PQgetvalue(estimate.get(), 0, 0)) : -1;
    if (rows < 0) return std::nullopt;  // never analyzed
    return static_cast<uint64_t>(rows);
}

std::string PostgresTableSource::position_condition() {
    auto column = [&](const std::string& name) { return "src." + conn_.quote_identifier(name); };
    auto value = [&](const char* name) -> std::optional<std::string> {
        auto it = position_.find(name);
        if (it == position_.end()) return std::nullopt;
        return conn_.quote_literal(it->second);
    };
    switch (settings_.mode) {
        case Mode::Incrementing:
            if (auto v = value(kIncrementing))
                return column(settings_.incrementing_column) + " > " + *v;
            break;
        case Mode::Timestamp:
            if (auto v = value(kTimestamp)) return column(settings_.timestamp_column) + " > " + *v;
            break;
        case Mode::TimestampIncrementing: {
            auto ts = value(kTimestamp), inc = value(kIncrementing);
            if (ts && inc)
                return "(" + column(settings_.timestamp_column) + ", " +
                       column(settings_.incrementing_column) + ") > (" + *ts + ", " + *inc + ")";
            break;
        }
        case Mode::Bulk:
            break;
    }
    return "TRUE";
}

// Ages compare transaction ids across wraparound, and a frozen row is infinitely old.
static std::string xid_literal(const std::string& xid8) {
    return "'" + std::to_string(std::stoull(xid8) % 4294967296ULL) + "'::xid";
}

std::string PostgresTableSource::export_condition(const std::string& snapshot_xmin) {
    std::vector<std::string> conditions;
    if (!settings_.where.empty()) conditions.push_back("(" + settings_.where + ")");
    if (incremental()) {
        // Only rows of transactions older than every one still running: no row can commit
        // later with a position before theirs unseen, because...
        conditions.push_back("age(src.xmin) > age(" + xid_literal(snapshot_xmin) + ")");
        // ...rows after the position, and any row of a transaction since the last export's
        // horizon (committed late, wherever its position), are exported.
        std::string after = position_condition();
        auto horizon = position_.find(kHorizon);
        if (horizon != position_.end() && after != "TRUE")
            after = "(" + after + " OR age(src.xmin) <= age(" + xid_literal(horizon->second) + "))";
        conditions.push_back(after);
    }
    std::string where;
    for (const auto& c : conditions) where += (where.empty() ? " WHERE " : " AND ") + c;
    return where;
}

std::string PostgresTableSource::copy_statement(const std::string& where) {
    auto t = [&](const std::string& name) { return "t." + conn_.quote_identifier(name); };
    std::string key = "NULL::text";
    if (key_columns_.size() == 1) {
        key = t(key_columns_[0]) + "::text";
    } else if (key_columns_.size() > 1) {
        key = "json_build_object(";
        for (size_t i = 0; i < key_columns_.size(); ++i)
            key +=
                (i ? ", " : "") + conn_.quote_literal(key_columns_[i]) + ", " + t(key_columns_[i]);
        key += ")::text";
    }
    std::string order;
    std::string positions = ", NULL::text, NULL::text";
    switch (settings_.mode) {
        case Mode::Incrementing:
            order = " ORDER BY " + t(settings_.incrementing_column);
            positions = ", " + t(settings_.incrementing_column) + "::text, NULL::text";
            break;
        case Mode::Timestamp:
            order = " ORDER BY " + t(settings_.timestamp_column);
            positions = ", NULL::text, " + t(settings_.timestamp_column) + "::text";
            break;
        case Mode::TimestampIncrementing:
            order = " ORDER BY " + t(settings_.timestamp_column) + ", " +
                    t(settings_.incrementing_column);
            positions = ", " + t(settings_.incrementing_column) + "::text, " +
                        t(settings_.timestamp_column) + "::text";
            break;
        case Mode::Bulk:
            break;
    }
    // t.*: a column named t would take the place of a bare t.
    std::string values = ", row_to_json(t.*)::text";
    if (row_json_) {
        values.clear();
        for (size_t i = 0; i < column_names_.size(); ++i) {
            const std::string column = t(column_names_[i]);
            values +=
                ", " + (RowJson::sent_as_text(column_types_[i]) ? column + "::text"
                                                                : "to_json(" + column + ")::text");
        }
    }
    return "COPY (SELECT " + key + positions + values + " FROM (" + inner_select(where) + ") t" +
           order + ") TO STDOUT (FORMAT binary)";
}

void PostgresTableSource::start_export() {
    // One snapshot for the whole export: a bulk export is consistent, and an incremental one
    // knows which transactions were still running when it looked.
    conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const PgResult snapshot = conn_.exec(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmin(s) < pg_snapshot_xmax(s) "
        "FROM pg_current_snapshot() s");
    export_horizon_ = PQgetvalue(snapshot.get(), 0, 0);
    // xmin < xmax: a transaction is running, and the oldest of them is the horizon.
    if (incremental() && !settings_.once)
        watch_horizon(std::string(PQgetvalue(snapshot.get(), 0, 1)) == "t");
    const std::string where = export_condition(export_horizon_);
    export_rows_ = std::nullopt;
    if (!incremental()) {
        export_rows_ = backlog();
    } else if (exported_once_) {
        // A poll after the first export reads only what is new, so counting it first is cheap.
        const PgResult count = conn_.exec("SELECT count(*) FROM (" + inner_select(where) + ") t");
        export_rows_ = std::strtoull(PQgetvalue(count.get(), 0, 0), nullptr, 10);
    }
    export_rows_read_ = 0;
    conn_.copy_out(copy_statement(where));
    read_position_ = position_;
    exporting_ = true;
}

// Called at the start of each export, in its snapshot. A horizon that does not move while rows
// committed after it wait means a transaction that began before them is still open, in any
// database of the server: nothing after it is exported until it ends.
void PostgresTableSource::watch_horizon(bool held) {
    const auto now = std::chrono::steady_clock::now();
    // Not held (no transaction running): an idle server's horizon stands still too.
    if (export_horizon_ != held_horizon_ || !held) {
        if (rows_wait_ && now - held_since_ >= settings_.stall_warning)
            spdlog::info(
                "postgres_table {}: the transaction horizon moved after {} s; the export "
                "goes on",
                settings_.table,
                std::chrono::duration_cast<std::chrono::seconds>(now - held_since_).count());
        held_horizon_ = export_horizon_;
        held_since_ = now;
        rows_wait_ = false;
        return;
    }
    if (!rows_wait_) {
        // Only rows of transactions from the horizon on are held back; frozen rows are old.
        std::string where = " WHERE ";
        if (!settings_.where.empty()) where += "(" + settings_.where + ") AND ";
        where += "age(src.xmin) <= age(" + xid_literal(export_horizon_) + ")";
        const PgResult waiting = conn_.exec("SELECT EXISTS (" + inner_select(where) + ")");
        rows_wait_ = std::string(PQgetvalue(waiting.get(), 0, 0)) == "t";
        if (!rows_wait_) return;
        next_stall_warning_ = held_since_ + settings_.stall_warning;
    }
    if (now < next_stall_warning_) return;
    next_stall_warning_ = now + std::chrono::minutes(1);
    spdlog::warn(
        "postgres_table {}: rows committed since transaction {} wait: it has held the export's "
        "horizon for {} s. The horizon is server-wide: {}",
        settings_.table, export_horizon_,
        std::chrono::duration_cast<std::chrono::seconds>(now - held_since_).count(),
        horizon_holder());
}

// Who holds the horizon: the session whose transaction id it is, or a prepared transaction.
std::string PostgresTableSource::horizon_holder() {
    const std::string xid = std::to_string(std::stoull(export_horizon_) % 4294967296ULL);
    const PgResult session = conn_.exec_params(
        "SELECT pid, coalesce(datname, ''), coalesce(usename, ''), coalesce(state, ''), "
        "coalesce(xact_start::text, ''), coalesce(left(query, 100), '') FROM pg_stat_activity "
        "WHERE backend_xid = $1::xid LIMIT 1",
        {xid});
    if (PQntuples(session.get()) == 1) {
        auto field = [&](int i) { return std::string(PQgetvalue(session.get(), 0, i)); };
        return "held by pid " + field(0) + " (database " + field(1) + ", user " + field(2) +
               ", state " + field(3) + ", transaction started " + field(4) + ", query '" +
               field(5) + "'); end it with SELECT pg_terminate_backend(" + field(0) + ")";
    }
    const PgResult prepared = conn_.exec_params(
        "SELECT gid, database, owner, prepared::text FROM pg_prepared_xacts "
        "WHERE transaction = $1::xid",
        {xid});
    if (PQntuples(prepared.get()) == 1) {
        auto field = [&](int i) { return std::string(PQgetvalue(prepared.get(), 0, i)); };
        return "held by the prepared transaction '" + field(0) + "' (database " + field(1) +
               ", owner " + field(2) + ", prepared " + field(3) +
               "); end it with COMMIT PREPARED or ROLLBACK PREPARED";
    }
    return "no session shows it in pg_stat_activity (it may have ended just now)";
}

std::optional<double> PostgresTableSource::blocked_seconds() {
    if (!incremental() || settings_.once || held_horizon_.empty()) return std::nullopt;
    if (!rows_wait_) return 0.0;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - held_since_).count();
}

bool PostgresTableSource::healthy() {
    const auto blocked = blocked_seconds();
    return !blocked || *blocked < std::chrono::duration<double>(settings_.stall_unhealthy).count();
}

std::optional<uint64_t> PostgresTableSource::lag() {
    if (!exporting_) return exported_once_ ? std::optional<uint64_t>(0) : std::nullopt;
    if (!export_rows_) return std::nullopt;
    return *export_rows_ > export_rows_read_ ? *export_rows_ - export_rows_read_ : 0;
}

ReadStatus PostgresTableSource::read(Batch& batch, std::chrono::milliseconds wait) {
    if (!exporting_) {
        if (exported_once_ && settings_.once) return ReadStatus::End;
        const auto now = std::chrono::steady_clock::now();
        if (exported_once_ && now < next_export_) {
            std::this_thread::sleep_for(
                std::min<std::chrono::nanoseconds>(wait, next_export_ - now));
            return ReadStatus::Idle;
        }
        start_export();
    }
    std::vector<char> keys;
    std::vector<std::pair<size_t, size_t>> values, key_places;
    // Each row's position (incrementing, timestamp) as text in one string, for acknowledging
    // only the rows before one a run stopped at.
    auto row_positions = std::make_shared<RowPositions>();
    while (values.size() < settings_.fetch_size) {
        if (!conn_.next_copy_row(fields_)) {
            conn_.exec("COMMIT");
            exporting_ = false;
            exported_once_ = true;
            next_export_ = std::chrono::steady_clock::now() + settings_.poll_interval;
            break;
        }
        const size_t start = batch.storage.size();
        if (row_json_)
            row_json_->append(fields_, 3, batch.storage);
        else
            batch.storage.insert(batch.storage.end(), fields_[3]->begin(), fields_[3]->end());
        values.push_back({start, batch.storage.size() - start});
        ++export_rows_read_;
        if (fields_[0]) {
            key_places.push_back({keys.size(), fields_[0]->size()});
            keys.insert(keys.end(), fields_[0]->begin(), fields_[0]->end());
        } else {
            key_places.push_back({SIZE_MAX, 0});
        }
        if (fields_[1]) read_position_[kIncrementing] = std::string(*fields_[1]);
        if (fields_[2]) read_position_[kTimestamp] = std::string(*fields_[2]);
        if (incremental()) row_positions->add(fields_[1], fields_[2]);
    }
    const size_t keys_at = batch.storage.size();
    batch.storage.insert(batch.storage.end(), keys.begin(), keys.end());
    batch.records.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        batch.records[i].value.emplace(batch.storage.data() + values[i].first, values[i].second);
        if (key_places[i].first != SIZE_MAX)
            batch.records[i].key.emplace(batch.storage.data() + keys_at + key_places[i].first,
                                         key_places[i].second);
    }
    if (incremental()) {
        Position reached = read_position_;
        const bool export_done = !exporting_;
        // Once every row of the export is acknowledged, every transaction before its snapshot's
        // horizon has been exported.
        if (export_done) reached[kHorizon] = export_horizon_;
        batch.ack = [this, reached, export_done, row_positions,
                     size = values.size()](size_t count) {
            if (count == size) {
                position_ = reached;
                position_dirty_ = true;
                save_acked(export_done);
                return;
            }
            // The export goes in position order: the next one starts after the last row
            // delivered (and still rereads every transaction since the horizon).
            const auto [incrementing, timestamp] = row_positions->after(count - 1);
            if (incrementing) position_[kIncrementing] = *incrementing;
            if (timestamp) position_[kTimestamp] = *timestamp;
            position_dirty_ = true;
            save_acked(true);
        };
    }
    return ReadStatus::Records;  // possibly empty: the end of an export, acknowledged in order
}

void PostgresTableSource::RowPositions::add(const std::optional<std::string_view>& incrementing,
                                            const std::optional<std::string_view>& timestamp) {
    auto place = [this](const std::optional<std::string_view>& value, Place last) {
        if (!value) return last;
        const Place at{static_cast<uint32_t>(text.size()), static_cast<uint32_t>(value->size())};
        text.append(*value);
        return at;
    };
    const Place no_value{0, kNone};
    rows.push_back({place(incrementing, rows.empty() ? no_value : rows.back().first),
                    place(timestamp, rows.empty() ? no_value : rows.back().second)});
}

std::pair<std::optional<std::string>, std::optional<std::string>>
PostgresTableSource::RowPositions::after(size_t row) const {
    auto value = [this](Place p) {
        return p.size == kNone ? std::nullopt
                               : std::optional<std::string>(text.substr(p.begin, p.size));
    };
    return {value(rows[row].first), value(rows[row].second)};
}

void PostgresTableSource::save_acked(bool force) {
    // A crash between saves only sends the rows since again; fsync-ing every batch would not
    // make anything safer, only slower.
    const auto now = std::chrono::steady_clock::now();
    if (!position_dirty_ || (!force && now - last_save_ < std::chrono::seconds(1))) return;
    store_.save(position_);
    position_dirty_ = false;
    last_save_ = now;
}

void PostgresTableSource::close() {
    if (incremental()) save_acked(true);
}

}  // namespace kbridge
