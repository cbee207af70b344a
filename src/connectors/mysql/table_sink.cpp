#include "connectors/mysql/table_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <deque>

#include "connectors/mysql/connection.h"
#include "connectors/sql/batch.h"
#include "connectors/sql/sink.h"
#include "core/wait.h"

namespace kbridge {
namespace {

const OptionTable kOptions = sql_sink_options(
    {
        {"type", OptionType::String, "", "mysql_table"},
        {"url", OptionType::String, "",
         "mysql://user:password@host:3306/database[?socket=/path] (default: mysql.url)"},
    },
    false,
    {
        {"connect_timeout", OptionType::Duration, "",
         "bound on connecting (default: mysql.connect_timeout, 10s)"},
        {"query_timeout", OptionType::Duration, "",
         "bound on a wait for a statement's answer (default: mysql.query_timeout, 5m)"},
    });

// Rows per INSERT statement: few round trips, well under the 65,535 parameters of a statement.
constexpr size_t kRowsPerInsert = 1000;
// Fewer rows go by INSERT: LOAD DATA's savepoint round trips would cost more than they save, and
// a refused record isolated down to one row gets the server's error, not a warning.
constexpr size_t kLoadDataMinRows = 64;
// Errors that say LOAD DATA LOCAL is disabled on the server or the client.
bool local_infile_disabled(const std::string& code) {
    const std::string number = code.substr(0, code.find('/'));
    return number == "1148" || number == "3948" || number == "4166" || number == "2068";
}

// A field of LOAD DATA's default text format: tab-separated, \N for NULL, backslash escapes.
void append_load_field(std::string& out, std::optional<std::string_view> value) {
    if (!value) {
        out += "\\N";
        return;
    }
    size_t plain = 0;
    for (size_t i = 0; i < value->size(); ++i) {
        const char c = (*value)[i];
        const char* escaped = c == '\\'   ? "\\\\"
                              : c == '\t' ? "\\t"
                              : c == '\n' ? "\\n"
                              : c == '\r' ? "\\r"
                              : c == '\0' ? "\\0"
                                          : nullptr;
        if (!escaped) continue;
        out.append(value->data() + plain, i - plain);
        out += escaped;
        plain = i + 1;
    }
    out.append(value->data() + plain, value->size() - plain);
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
}

std::string repeat(const std::string& item, size_t times, const std::string& separator) {
    std::string out;
    for (size_t i = 0; i < times; ++i) out += (i ? separator : "") + item;
    return out;
}

// MySQL reads ISO 8601 times ("2024-01-02T03:04:05.123456") but not their zone: a time that
// ends in Z or +HH:MM is given as the UTC time it names (the session's time_zone is UTC).
// Anything else is left for the server to judge.
std::optional<std::string> utc_time(std::string_view text) {
    if (text.size() < 20 || text[10] != 'T') return std::nullopt;
    if (text.back() == 'Z') return std::string(text.substr(0, text.size() - 1));
    const size_t sign = text.size() - 6;
    if ((text[sign] != '+' && text[sign] != '-') || text[sign + 3] != ':') return std::nullopt;
    std::tm tm{};
    int offset_h = 0, offset_m = 0;
    const std::string head(text.substr(0, 19)), zone(text.substr(sign + 1));
    if (std::sscanf(head.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6 ||
        std::sscanf(zone.c_str(), "%2d:%2d", &offset_h, &offset_m) != 2)
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const int sign_factor = text[sign] == '+' ? 1 : -1;
    const std::time_t utc = timegm(&tm) - sign_factor * (offset_h * 3600 + offset_m * 60);
    std::tm out{};
    gmtime_r(&utc, &out);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &out);
    return std::string(buffer) + std::string(text.substr(19, sign - 19));  // the fraction
}

class MysqlDialect : public SqlDialect {
  public:
    MysqlDialect(const std::string& url, std::chrono::milliseconds connect_timeout,
                 std::chrono::milliseconds query_timeout, const SqlSettings& settings)
        : settings_(settings),
          conn_(url, connect_timeout, query_timeout),
          query_timeout_(query_timeout) {}

    void connect() override { conn_.connect(); }
    bool connected() const override { return conn_.is_connected(); }
    std::string name() const override { return "mysql"; }
    std::string endpoint() const override { return conn_.redacted_url(); }
    TableShape introspect() override;
    SqlFailure classify(const SqlError& e) const override;

    bool offsets_table_exists() override;
    void create_offsets_table() override;
    std::vector<PartitionOffset> initial_offsets(const std::string& group,
                                                 const std::vector<PartitionOffset>& partitions,
                                                 bool create_rows) override;
    StoredOffsets read_offsets(const std::string& group) override;
    StoredOffsets lock_offsets(const std::string& group,
                               const TopicPartitions& partitions) override;
    void write_offsets(const std::string& group, const std::vector<PartitionOffset>& next) override;

    void begin() override { conn_.exec("START TRANSACTION"); }
    void commit() override { conn_.exec("COMMIT"); }
    void rollback() override {
        try {
            conn_.exec("ROLLBACK");
        } catch (const SqlError&) {
        }
    }
    void savepoint() override { conn_.exec("SAVEPOINT kbridge_try"); }
    void rollback_to_savepoint() override {
        conn_.exec("ROLLBACK TO SAVEPOINT kbridge_try");
        conn_.exec("RELEASE SAVEPOINT kbridge_try");
    }
    void release_savepoint() override { conn_.exec("RELEASE SAVEPOINT kbridge_try"); }
    void insert(const SqlBatch& batch, const std::vector<size_t>& records) override;
    void remove(const SqlBatch& batch, size_t record) override;
    void merge(const SqlBatch& batch, const std::vector<size_t>& records) override;
    [[noreturn]] void abandon(const std::string& why) override { conn_.drop(why); }
    std::chrono::milliseconds query_timeout() const override { return query_timeout_; }

  private:
    std::string offsets_table() const {
        return MysqlConnection::quote_table(settings_.offsets_table);
    }
    // The table's schema and name: "db.table", or the connection's database.
    std::pair<std::optional<std::string>, std::string> table_name(const std::string& t) const {
        const auto dot = t.find('.');
        if (dot == std::string::npos) return {std::nullopt, t};
        return {t.substr(0, dot), t.substr(dot + 1)};
    }
    // LOAD DATA LOCAL INFILE of `records` from memory, under a savepoint. False, with nothing
    // written, when the server turned a row into a warning (LOCAL implies IGNORE: skipped
    // duplicates, coerced values): INSERT must then decide, as strictly as always.
    bool load(const SqlBatch& batch, const std::vector<size_t>& records);
    // INSERT of `records` (chunks of kRowsPerInsert), with `tail` after the VALUES.
    void insert_rows(const SqlBatch& batch, const std::vector<size_t>& records,
                     const std::string& tail);
    // The cell as a parameter (a time with a zone as UTC, kept in converted_).
    std::optional<std::string_view> param(const SqlBatch& batch, size_t record, size_t column);

    SqlSettings settings_;
    MysqlConnection conn_;
    std::chrono::milliseconds query_timeout_;
    std::string table_;                  // quoted
    std::vector<bool> temporal_;         // by column: DATETIME or TIMESTAMP
    std::deque<std::string> converted_;  // the converted parameters of one statement
    bool load_data_ = true;              // false once the server refused LOAD DATA LOCAL
    std::string load_rows_;              // LOAD DATA's file, kept for the next batch
};

std::optional<std::string_view> MysqlDialect::param(const SqlBatch& batch, size_t record,
                                                    size_t column) {
    const auto value = batch.value(record, column);
    if (!value || !temporal_[column]) return value;
    auto utc = utc_time(*value);
    if (!utc) return value;
    converted_.push_back(std::move(*utc));
    return std::string_view(converted_.back());
}

SqlFailure MysqlDialect::classify(const SqlError& e) const {
    if (e.connection_lost()) return SqlFailure::Transient;
    const auto slash = e.code().find('/');
    const std::string number = e.code().substr(0, slash);
    const std::string state = slash == std::string::npos ? "" : e.code().substr(slash + 1);
    // Deadlock, lock wait timeout, too many connections, server shutting down.
    if (number == "1213" || number == "1205" || number == "1040" || number == "1053")
        return SqlFailure::Transient;
    // The record itself is at fault: a value that does not fit its column (class 22), a
    // constraint it violates (class 23), or a value strict mode refuses.
    if (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0 || number == "1366" ||
        number == "1292" || number == "1265" || number == "1364" || number == "4025" ||
        number == "3819" || number == "3140")
        return SqlFailure::Refused;
    return SqlFailure::Fatal;
}

TableShape MysqlDialect::introspect() {
    table_ = MysqlConnection::quote_table(settings_.table);
    const auto [schema, name] = table_name(settings_.table);
    const std::optional<std::string_view> schema_param =
        schema ? std::optional<std::string_view>(*schema) : std::nullopt;
    const MysqlRows cols = conn_.query(
        "SELECT column_name, is_nullable = 'NO', column_default IS NOT NULL OR extra LIKE "
        "'%auto_increment%', data_type IN ('datetime', 'timestamp') FROM "
        "information_schema.columns WHERE "
        "table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND extra NOT LIKE "
        "'%GENERATED%' AND extra NOT IN ('VIRTUAL', 'PERSISTENT', 'STORED') ORDER BY "
        "ordinal_position",
        {schema_param, name});
    if (cols.empty())
        throw SqlError("mysql " + conn_.redacted_url() + ": no table " + settings_.table);
    TableShape shape;
    temporal_.clear();
    for (const auto& row : cols) {
        temporal_.push_back(row[3] == std::optional<std::string>("1"));
        SqlColumn c;
        c.name = row[0].value_or("");
        c.quoted = MysqlConnection::quote_identifier(c.name);
        c.refuses_null = row[1] == std::optional<std::string>("1");
        c.has_default = row[2] == std::optional<std::string>("1");
        shape.columns.push_back(std::move(c));
    }
    const MysqlRows pk = conn_.query(
        "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = "
        "COALESCE(?, DATABASE()) AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY "
        "ordinal_position",
        {schema_param, name});
    for (const auto& row : pk)
        for (size_t c = 0; c < shape.columns.size(); ++c)
            if (shape.columns[c].name == row[0]) shape.keys.push_back(c);
    // A BEFORE trigger may set a NULL column; an update meets NOT NULL only for rows it finds.
    const MysqlRows triggers = conn_.query(
        "SELECT count(*) FROM information_schema.triggers WHERE event_object_schema = "
        "COALESCE(?, DATABASE()) AND event_object_table = ? AND action_timing = 'BEFORE'",
        {schema_param, name});
    shape.check_nulls =
        settings_.mode != SqlMode::Update && triggers[0][0] == std::optional<std::string>("0");
    return shape;
}

bool MysqlDialect::offsets_table_exists() {
    const auto [schema, name] = table_name(settings_.offsets_table);
    const MysqlRows rows = conn_.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = COALESCE(?, "
        "DATABASE()) AND table_name = ?",
        {schema ? std::optional<std::string_view>(*schema) : std::nullopt, name});
    return rows[0][0] != std::optional<std::string>("0");
}

void MysqlDialect::create_offsets_table() {
    conn_.exec("CREATE TABLE IF NOT EXISTS " + offsets_table() +
               " (consumer_group VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL,"
               " `partition` INT NOT NULL, next_offset BIGINT NOT NULL,"
               " updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
               " PRIMARY KEY (consumer_group, topic, `partition`)) ENGINE=InnoDB"
               " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
}

std::vector<PartitionOffset> MysqlDialect::initial_offsets(
    const std::string& group, const std::vector<PartitionOffset>& partitions, bool create_rows) {
    std::vector<PartitionOffset> out;
    for (const auto& p : partitions) {
        const std::string partition = std::to_string(p.partition);
        // A row per partition from the start, so that lock_offsets always has one to lock.
        if (create_rows)
            conn_.execute(
                "INSERT IGNORE INTO " + offsets_table() +
                    " (consumer_group, topic, `partition`, next_offset) VALUES (?, ?, ?, -1)",
                {group, p.topic, partition});
        const MysqlRows rows =
            conn_.query("SELECT next_offset FROM " + offsets_table() +
                            " WHERE consumer_group = ? AND topic = ? AND `partition` = ?",
                        {group, p.topic, partition});
        out.push_back({p.topic, p.partition, rows.empty() ? -1 : std::stoll(*rows[0][0])});
    }
    return out;
}

StoredOffsets MysqlDialect::read_offsets(const std::string& group) {
    StoredOffsets stored;
    for (const auto& row : conn_.query("SELECT topic, `partition`, next_offset FROM " +
                                           offsets_table() + " WHERE consumer_group = ?",
                                       {group}))
        stored[{*row[0], std::stoi(*row[1])}] = std::stoll(*row[2]);
    return stored;
}

// Only the batch's partitions, in one order: other writers of other partitions go on.
StoredOffsets MysqlDialect::lock_offsets(const std::string& group,
                                         const TopicPartitions& partitions) {
    if (partitions.empty()) return {};
    std::vector<std::string> numbers;
    MysqlParams params{group};
    for (const auto& [topic, partition] : partitions) numbers.push_back(std::to_string(partition));
    size_t i = 0;
    for (const auto& [topic, partition] : partitions) {
        params.emplace_back(topic);
        params.emplace_back(numbers[i++]);
    }
    StoredOffsets stored;
    for (const auto& row :
         conn_.query("SELECT topic, `partition`, next_offset FROM " + offsets_table() +
                         " WHERE consumer_group = ? AND (topic, `partition`) IN (" +
                         repeat("(?, ?)", partitions.size(), ", ") +
                         ") ORDER BY topic, `partition` FOR UPDATE",
                     params))
        stored[{*row[0], std::stoi(*row[1])}] = std::stoll(*row[2]);
    return stored;
}

void MysqlDialect::write_offsets(const std::string& group,
                                 const std::vector<PartitionOffset>& next) {
    for (const auto& p : next) {
        const std::string partition = std::to_string(p.partition);
        const std::string offset = std::to_string(p.next_offset);
        conn_.execute("INSERT INTO " + offsets_table() +
                          " (consumer_group, topic, `partition`, next_offset) VALUES (?, ?, ?, ?)"
                          " ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset,"
                          " VALUES(next_offset))",
                      {group, p.topic, partition, offset});
    }
}

void MysqlDialect::insert_rows(const SqlBatch& batch, const std::vector<size_t>& records,
                               const std::string& tail) {
    const std::vector<size_t> columns = batch.used_columns(records, settings_.mode, shape_.keys);
    std::vector<std::string> names;
    for (size_t c : columns) names.push_back(shape_.columns[c].quoted);
    const std::string row = "(" + repeat("?", columns.size(), ", ") + ")";
    MysqlParams params;
    for (size_t from = 0; from < records.size(); from += kRowsPerInsert) {
        const size_t to = std::min(records.size(), from + kRowsPerInsert);
        params.clear();
        converted_.clear();
        for (size_t i = from; i < to; ++i)
            for (size_t c : columns) params.push_back(param(batch, records[i], c));
        conn_.execute("INSERT INTO " + table_ + " (" + join(names, ", ") + ") VALUES " +
                          repeat(row, to - from, ", ") + tail,
                      params);
    }
}

bool MysqlDialect::load(const SqlBatch& batch, const std::vector<size_t>& records) {
    const std::vector<size_t> columns = batch.used_columns(records, settings_.mode, shape_.keys);
    std::vector<std::string> names;
    for (size_t c : columns) names.push_back(shape_.columns[c].quoted);
    load_rows_.clear();
    for (size_t r : records) {
        converted_.clear();
        for (size_t i = 0; i < columns.size(); ++i) {
            if (i) load_rows_ += '\t';
            append_load_field(load_rows_, param(batch, r, columns[i]));
        }
        load_rows_ += '\n';
    }
    conn_.exec("SAVEPOINT kbridge_load");
    unsigned warnings = 0;
    uint64_t rows = 0;
    try {
        rows = conn_.load_data(
            "LOAD DATA LOCAL INFILE 'kbridge' INTO TABLE " + table_ +
                " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES "
                "TERMINATED BY '\\n' (" +
                join(names, ", ") + ")",
            load_rows_, warnings);
    } catch (const SqlError& e) {
        if (!local_infile_disabled(e.code())) throw;
        spdlog::info("mysql_table sink {}: LOAD DATA LOCAL is disabled ({}); inserting instead",
                     settings_.table, e.what());
        load_data_ = false;
        conn_.exec("ROLLBACK TO SAVEPOINT kbridge_load");
        return false;
    }
    if (rows == records.size() && warnings == 0) {
        conn_.exec("RELEASE SAVEPOINT kbridge_load");
        return true;
    }
    conn_.exec("ROLLBACK TO SAVEPOINT kbridge_load");
    return false;
}

// LOAD DATA where it can, as it saves the server parsing and binding every row's parameters.
void MysqlDialect::insert(const SqlBatch& batch, const std::vector<size_t>& records) {
    if (load_data_ && records.size() >= kLoadDataMinRows && load(batch, records)) return;
    insert_rows(batch, records, "");
}

void MysqlDialect::remove(const SqlBatch& batch, size_t record) {
    std::vector<std::string> conditions;
    MysqlParams params;
    for (size_t k : shape_.keys) {
        conditions.push_back(shape_.columns[k].quoted + " <=> ?");
        params.push_back(batch.value(record, k));
    }
    conn_.execute("DELETE FROM " + table_ + " WHERE " + join(conditions, " AND "), params);
}

// The core gives one record per key: tombstones delete, the others upsert or update.
void MysqlDialect::merge(const SqlBatch& batch, const std::vector<size_t>& records) {
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
    if (settings_.mode == SqlMode::Upsert) {
        std::vector<std::string> assignments;
        for (size_t c : values)
            assignments.push_back(shape_.columns[c].quoted + " = VALUES(" +
                                  shape_.columns[c].quoted + ")");
        // With only key columns, an existing row stays as it is.
        const size_t k = shape_.keys.front();
        if (assignments.empty())
            assignments.push_back(shape_.columns[k].quoted + " = " + shape_.columns[k].quoted);
        insert_rows(batch, writes, " ON DUPLICATE KEY UPDATE " + join(assignments, ", "));
        return;
    }
    if (values.empty()) return;
    std::vector<std::string> assignments, conditions;
    for (size_t c : values) assignments.push_back(shape_.columns[c].quoted + " = ?");
    for (size_t k : shape_.keys) conditions.push_back(shape_.columns[k].quoted + " <=> ?");
    const std::string sql = "UPDATE " + table_ + " SET " + join(assignments, ", ") + " WHERE " +
                            join(conditions, " AND ");
    MysqlParams params;
    for (size_t r : writes) {
        params.clear();
        converted_.clear();
        for (size_t c : values) params.push_back(param(batch, r, c));
        for (size_t k : shape_.keys) params.push_back(batch.value(r, k));
        conn_.execute(sql, params);
    }
}

}  // namespace

const OptionTable& mysql_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_mysql_sink(const Options& options, const ConnectorContext& ctx) {
    const std::string url = options.has("url") ? options.str("url") : ctx.config.mysql.str("url");
    if (url.empty()) throw options.error("url", "no MySQL URL: set url here or mysql.url");
    try {
        parse_mysql_url(url);
    } catch (const std::invalid_argument& e) {
        throw options.error(options.has("url") ? "url" : "type", e.what());
    }
    const auto connect_timeout = connect_timeout_option(options, ctx.config.mysql);
    const auto query_timeout = query_timeout_option(options, ctx.config.mysql);
    const SqlSettings settings = sql_sink_settings(options, ctx, "mysql_table", false);
    return make_sql_sink(settings, [=] {
        return std::make_unique<MysqlDialect>(url, connect_timeout, query_timeout, settings);
    });
}

}  // namespace kbridge
