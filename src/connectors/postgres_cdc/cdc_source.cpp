#include "connectors/postgres_cdc/cdc_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "connectors/postgres/conninfo.h"
#include "core/shutdown.h"

namespace kbridge {
namespace {

using pgoutput::Lsn;
using namespace std::chrono_literals;

const OptionTable kOptions = {
    {"type", OptionType::String, "", "postgres_cdc"},
    {"url", OptionType::String, "",
     "libpq URI or key=value conninfo (default: postgres.url); the role needs REPLICATION"},
    {"tables",
     OptionType::StringList,
     "",
     "schema.table (or table, in public) to capture; the publication is created FOR them if "
     "missing",
     {},
     true},
    {"publication", OptionType::String, "", "publication name (default: kbridge_<pipeline>)"},
    {"slot", OptionType::String, "",
     "replication slot name, created at the first start (default: kbridge_<pipeline>)"},
    {"snapshot",
     OptionType::Choice,
     "initial",
     "initial: the existing rows first (op r), then the changes | never: changes only",
     {"initial", "never"}},
    {"envelope",
     OptionType::Choice,
     "row",
     "row: the value is the row as postgres_table exports it, a delete a tombstone | debezium: "
     "Debezium's before/after/source/op payload",
     {"row", "debezium"}},
    {"heartbeat_interval", OptionType::Duration, "",
     "write a logical message this often (pg_logical_emit_message), so the slot moves on a "
     "quiet database (default: none)"},
    {"status_interval", OptionType::Duration, "10s",
     "time between standby status updates (confirmed positions) to PostgreSQL"},
    {"batch_size", OptionType::Integer, "5000", "changes per batch at most"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting (default: postgres.connect_timeout, 10s)"},
    {"query_timeout", OptionType::Duration, "",
     "bound on a silent wait for a query's answer (default: postgres.query_timeout, 5m)"},
};

// The stored checkpoint's names.
constexpr const char* kCommitLsn = "commit_lsn";
constexpr const char* kIndex = "index";
constexpr const char* kFlush = "flush";
constexpr const char* kSnapshot = "snapshot";  // started | done

constexpr const char* kMessagePrefix = "kbridge";

bool simple_name(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    for (const char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

std::string default_name(const std::string& pipeline) {
    std::string name = "kbridge_";
    for (const char c : pipeline)
        name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a')
                : ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c
                                                                     : '_';
    return name.substr(0, 63);
}

int64_t commit_ms(int64_t postgres_micros) {
    return postgres_micros / 1000 + 946684800000LL;
}

}  // namespace

const OptionTable& postgres_cdc_options() {
    return kOptions;
}

std::unique_ptr<Source> make_postgres_cdc_source(const Options& options,
                                                 const ConnectorContext& ctx) {
    PostgresCdcSource::Settings s;
    s.url = options.has("url") ? options.str("url") : ctx.config.postgres.str("url");
    if (s.url.empty())
        throw options.error("url", "no PostgreSQL URL: set url here or postgres.url");
    s.connect_timeout = connect_timeout_option(options, ctx.config.postgres);
    s.query_timeout = query_timeout_option(options, ctx.config.postgres);
    check_postgres_url(s.url, options, ctx.config.postgres);
    for (const auto& table : options.string_list("tables")) {
        const auto dot = table.find('.');
        if (table.empty() || dot == 0 || (dot != std::string::npos && dot + 1 == table.size()))
            throw options.error("tables", "'" + table + "' is not schema.table");
        s.tables.push_back(dot == std::string::npos ? "public." + table : table);
    }
    if (s.tables.empty()) throw options.error("tables", "name at least one table");
    for (const auto* name : {"publication", "slot"}) {
        const std::string value =
            options.has(name) ? options.str(name) : default_name(ctx.pipeline);
        if (!simple_name(value))
            throw options.error(name,
                                "'" + value + "' must be 1 to 63 lower-case letters, digits or _");
        (std::string(name) == "slot" ? s.slot : s.publication) = value;
    }
    s.snapshot = options.str("snapshot") == "initial";
    s.envelope = options.str("envelope") == "debezium" ? Envelope::Debezium : Envelope::Row;
    if (options.has("heartbeat_interval"))
        s.heartbeat_interval = options.duration("heartbeat_interval");
    s.status_interval = options.duration("status_interval");
    if (s.status_interval <= 0ms) throw options.error("status_interval", "must be positive");
    const int64_t batch = options.integer("batch_size");
    if (batch < 1 || batch > 100000)
        throw options.error("batch_size", "must be between 1 and 100000");
    s.batch_size = static_cast<size_t>(batch);
    s.once = ctx.once;
    s.state_dir = ctx.state_dir;
    s.pipeline = ctx.pipeline;
    return std::make_unique<PostgresCdcSource>(std::move(s));
}

PostgresCdcSource::PostgresCdcSource(Settings settings)
    : settings_(std::move(settings)),
      sql_(settings_.url, settings_.connect_timeout, settings_.query_timeout),
      stream_(settings_.url, settings_.connect_timeout, settings_.query_timeout),
      store_(settings_.state_dir, settings_.pipeline) {}

// --- connecting ---------------------------------------------------------------------------------

[[noreturn]] static void refuse(PostgresConnection& conn, const std::string& why) {
    throw PostgresError("postgres " + conn.redacted_url() + ": " + why);
}

void PostgresCdcSource::check_server() {
    sql_.connect();
    sql_.exec("SET datestyle = 'ISO, YMD'");
    const PgResult r = sql_.exec(
        "SELECT current_setting('wal_level'), current_database(), r.rolreplication OR "
        "r.rolsuper FROM pg_roles r WHERE r.rolname = current_user");
    const std::string wal_level = PQgetvalue(r.get(), 0, 0);
    database_ = PQgetvalue(r.get(), 0, 1);
    if (wal_level != "logical")
        refuse(sql_, "wal_level is '" + wal_level +
                         "': change data capture needs wal_level = logical (ALTER SYSTEM SET "
                         "wal_level = logical, then restart PostgreSQL)");
    if (std::string(PQgetvalue(r.get(), 0, 2)) != "t")
        refuse(sql_,
               "the role lacks the REPLICATION attribute (ALTER ROLE ... REPLICATION) that "
               "logical replication needs");
}

void PostgresCdcSource::check_tables() {
    for (const auto& table : settings_.tables) {
        const PgResult r = sql_.exec_params(
            "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
            "AND (i.indisprimary OR i.indisreplident)), EXISTS (SELECT 1 FROM pg_attribute a "
            "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstorage "
            "IN ('x', 'e')) FROM pg_class c WHERE c.oid = to_regclass($1)",
            {sql_.quote_table(table)});
        if (PQntuples(r.get()) == 0) refuse(sql_, "table '" + table + "' does not exist");
        const char identity = PQgetvalue(r.get(), 0, 0)[0];
        const bool keyed = std::string(PQgetvalue(r.get(), 0, 1)) == "t";
        if (identity == 'n' || (identity != 'f' && !keyed))
            refuse(sql_, "table '" + table +
                             "' has no primary key and no REPLICA IDENTITY: its updates and "
                             "deletes would carry no key (add a primary key, or ALTER TABLE " +
                             table + " REPLICA IDENTITY FULL)");
        if (identity != 'f' && std::string(PQgetvalue(r.get(), 0, 2)) == "t")
            spdlog::warn(
                "postgres_cdc {}: table {} has TOASTable columns and no REPLICA IDENTITY FULL: "
                "an update that leaves a large value unchanged omits that column and names it "
                "in the kbridge.unchanged header",
                settings_.slot, table);
    }
}

void PostgresCdcSource::ensure_publication() {
    const PgResult found = sql_.exec_params(
        "SELECT p.puballtables, ARRAY(SELECT quote_ident(t.schemaname) || '.' || "
        "quote_ident(t.tablename) FROM pg_publication_tables t WHERE t.pubname = p.pubname)::text "
        "FROM pg_publication p WHERE p.pubname = $1",
        {settings_.publication});
    std::string list;
    for (const auto& t : settings_.tables) list += (list.empty() ? "" : ", ") + sql_.quote_table(t);
    if (PQntuples(found.get()) == 0) {
        try {
            sql_.exec("CREATE PUBLICATION " + sql_.quote_identifier(settings_.publication) +
                      " FOR TABLE " + list);
        } catch (const PostgresError& e) {
            refuse(sql_,
                   "cannot create publication '" + settings_.publication +
                       "' (the role "
                       "must own the tables, or create it as their owner: CREATE PUBLICATION " +
                       settings_.publication + " FOR TABLE " + list + "): " + e.what());
        }
        spdlog::info("postgres_cdc {}: created publication {} for {}", settings_.slot,
                     settings_.publication, list);
        return;
    }
    if (std::string(PQgetvalue(found.get(), 0, 0)) == "t") return;
    const std::string published = PQgetvalue(found.get(), 0, 1);
    for (const auto& t : settings_.tables) {
        const std::string quoted = sql_.quote_table(t);
        // The array's text quotes elements with special characters; compare both forms.
        if (published.find(quoted) == std::string::npos &&
            published.find("\"" + quoted + "\"") == std::string::npos &&
            published.find(t) == std::string::npos)
            refuse(sql_, "publication '" + settings_.publication + "' does not include " + t +
                             " (ALTER PUBLICATION " + settings_.publication + " ADD TABLE " +
                             quoted + ")");
    }
}

std::optional<std::string> PostgresCdcSource::slot_plugin() {
    const PgResult r = sql_.exec_params(
        "SELECT coalesce(plugin, ''), coalesce(database, ''), slot_type FROM pg_replication_slots "
        "WHERE slot_name = $1",
        {settings_.slot});
    if (PQntuples(r.get()) == 0) return std::nullopt;
    const std::string plugin = PQgetvalue(r.get(), 0, 0);
    if (std::string(PQgetvalue(r.get(), 0, 2)) != "logical" || plugin != "pgoutput")
        refuse(sql_, "replication slot '" + settings_.slot + "' belongs to another plugin ('" +
                         plugin + "'); name another slot, or drop it");
    if (PQgetvalue(r.get(), 0, 1) != database_)
        refuse(sql_, "replication slot '" + settings_.slot + "' belongs to database '" +
                         PQgetvalue(r.get(), 0, 1) + "', not '" + database_ + "'");
    return plugin;
}

static PostgresCdcSource::Checkpoint parse_checkpoint(const Position& stored) {
    PostgresCdcSource::Checkpoint c;
    if (stored.count(kCommitLsn)) c.commit_lsn = pgoutput::parse_lsn(stored.at(kCommitLsn));
    if (stored.count(kIndex)) c.index = static_cast<uint32_t>(std::stoul(stored.at(kIndex)));
    if (stored.count(kFlush)) c.flush = pgoutput::parse_lsn(stored.at(kFlush));
    return c;
}

void PostgresCdcSource::load_checkpoint() {
    // With exactly_once the sink's committed position counts; the file only before the first
    // commit (a pipeline that ran without exactly_once before).
    std::optional<Position> committed;
    if (committer_) committed = committer_->restart_position();
    loaded_ = committed ? *committed : store_.load().value_or(Position{});
    try {
        acked_ = parse_checkpoint(loaded_);
    } catch (const std::exception& e) {
        throw std::runtime_error(
            "the stored checkpoint " +
            (committed ? std::string("committed in Kafka") : "in " + store_.path()) +
            " is unreadable (" + e.what() + "); `kbridge state reset` starts over");
    }
}

static Position checkpoint_position(const PostgresCdcSource::Checkpoint& c,
                                    const std::string& snapshot) {
    Position p{{kCommitLsn, pgoutput::lsn_text(c.commit_lsn)},
               {kIndex, std::to_string(c.index)},
               {kFlush, pgoutput::lsn_text(c.flush)}};
    if (!snapshot.empty()) p[kSnapshot] = snapshot;
    return p;
}

void PostgresCdcSource::check() {
    check_server();
    check_tables();
    slot_plugin();
}

void PostgresCdcSource::save_checkpoint(const Checkpoint& checkpoint, const std::string& snapshot) {
    if (!committer_) store_.save(checkpoint_position(checkpoint, snapshot));
}

PostgresCdcSource::Checkpoint PostgresCdcSource::durable() const {
    if (!committer_) return acked_;
    const auto committed = committer_->committed();
    return committed ? parse_checkpoint(*committed) : parse_checkpoint(loaded_);
}

void PostgresCdcSource::mark_resume(Batch& batch, bool snapshot_done) {
    if (!committer_) return;
    if (snapshotting_ || snapshot_done) {
        batch.resume = ResumePoint{checkpoint_position(acked_, snapshot_done ? "done" : "started"),
                                   snapshot_done};
        return;
    }
    batch.resume =
        ResumePoint{checkpoint_position(read_, settings_.snapshot ? "done" : ""), !in_transaction_};
}

void PostgresCdcSource::connect() {
    if (dirty_) {  // again after an outage: what was acknowledged since the last save counts
        save_checkpoint(acked_, settings_.snapshot ? "done" : "");
        dirty_ = false;
    }
    check_server();
    check_tables();
    ensure_publication();
    load_checkpoint();
    const auto snapshot_state = loaded_.count(kSnapshot) ? loaded_.at(kSnapshot) : "";
    // Connected first: after an outage, this ends the old stream, which would hold the slot.
    stream_.connect();
    bool slot_exists = slot_plugin().has_value();
    if (slot_exists && settings_.snapshot && snapshot_state != "done") {
        // A snapshot that did not finish cannot be resumed: its exported snapshot died with the
        // connection. A new slot exports a new one and the snapshot starts over.
        spdlog::warn(
            "postgres_cdc {}: the initial snapshot did not complete; dropping the slot "
            "and starting it over",
            settings_.slot);
        sql_.exec_params("SELECT pg_drop_replication_slot($1)", {settings_.slot});
        slot_exists = false;
    }
    tables_.clear();
    in_transaction_ = false;
    unacked_batches_ = 0;
    once_reached_ = false;
    last_status_ = last_save_ = last_heartbeat_ = SteadyClock::now();
    if (!slot_exists) {
        const auto slot = stream_.create_slot(settings_.slot, settings_.snapshot);
        spdlog::info("postgres_cdc {}: created replication slot at {}", settings_.slot,
                     pgoutput::lsn_text(slot.consistent_point));
        acked_ = {};
        acked_.flush = slot.consistent_point;
        save_checkpoint(acked_, settings_.snapshot ? "started" : "");
        if (settings_.snapshot) {
            start_snapshot(slot.snapshot, slot.consistent_point);
            return;
        }
    }
    start_streaming();
}

JsonType PostgresCdcSource::json_type(Oid type) {
    if (auto builtin = builtin_json_type(type)) return *builtin;
    const auto known = types_.find(type);
    if (known != types_.end()) return known->second;
    // Domains take their base type's form; arrays their element's.
    const PgResult r = sql_.exec_params(
        "WITH RECURSIVE d(oid, base) AS (SELECT $1::oid, $1::oid UNION ALL SELECT d.oid, "
        "t.typbasetype FROM d JOIN pg_type t ON t.oid = d.base WHERE t.typtype = 'd') "
        "SELECT t.oid, t.typcategory, t.typelem, e.typbasetype, t.typdelim FROM d JOIN "
        "pg_type t ON t.oid = d.base LEFT JOIN pg_type e ON e.oid = t.typelem WHERE t.typtype "
        "<> 'd'",
        {std::to_string(type)});
    JsonType result;
    if (PQntuples(r.get()) == 1) {
        const Oid base = static_cast<Oid>(std::stoul(PQgetvalue(r.get(), 0, 0)));
        const bool array = PQgetvalue(r.get(), 0, 1)[0] == 'A';
        if (array) {
            Oid element = static_cast<Oid>(std::stoul(PQgetvalue(r.get(), 0, 2)));
            const std::string element_base = PQgetvalue(r.get(), 0, 3);
            if (!element_base.empty() && element_base != "0")
                element = static_cast<Oid>(std::stoul(element_base));
            result = {JsonKind::Array, json_kind_of_base(element), PQgetvalue(r.get(), 0, 4)[0]};
        } else if (auto builtin = builtin_json_type(base)) {
            result = *builtin;
        }
    }
    types_[type] = result;
    return result;
}

CdcTable& PostgresCdcSource::table_from_catalog(uint32_t oid, const std::string& qualified) {
    const PgResult r = sql_.exec_params(
        "SELECT n.nspname, c.relname, c.relreplident, a.attname, a.atttypid, coalesce(a.attnum "
        "= ANY(i.indkey), false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary WHERE c.oid = "
        "to_regclass($1) ORDER BY a.attnum",
        {qualified});
    CdcTable& table = tables_[oid];
    table = CdcTable{};
    for (int i = 0; i < PQntuples(r.get()); ++i) {
        table.schema = PQgetvalue(r.get(), i, 0);
        table.name = PQgetvalue(r.get(), i, 1);
        table.replica_identity = PQgetvalue(r.get(), i, 2)[0];
        table.columns.push_back({PQgetvalue(r.get(), i, 3),
                                 json_type(static_cast<Oid>(std::stoul(PQgetvalue(r.get(), i, 4)))),
                                 ""});
        if (std::string(PQgetvalue(r.get(), i, 5)) == "t") table.key.push_back(i);
    }
    table.prepare();
    return table;
}

void PostgresCdcSource::start_snapshot(const std::string& snapshot_name, Lsn consistent_point) {
    snapshot_conn_ = std::make_unique<PostgresConnection>(settings_.url, settings_.connect_timeout,
                                                          settings_.query_timeout);
    snapshot_conn_->connect();
    snapshot_conn_->exec("SET datestyle = 'ISO, YMD'");
    snapshot_conn_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    snapshot_conn_->exec("SET TRANSACTION SNAPSHOT " +
                         snapshot_conn_->quote_literal(snapshot_name));
    snapshot_lsn_ = consistent_point;
    snapshot_table_ = 0;
    snapshotting_ = true;
    spdlog::info("postgres_cdc {}: exporting the existing rows of {} table(s) (snapshot {})",
                 settings_.slot, settings_.tables.size(), snapshot_name);
}

void PostgresCdcSource::start_streaming() {
    resume_ = acked_;
    read_ = acked_;
    stream_.start(settings_.slot, 0, settings_.publication);
    last_change_ = SteadyClock::now();
    if (!settings_.once) return;
    // Everything committed before this point is delivered before the run ends. The marker
    // message after it comes through the stream once decoding has passed it: the end even on a
    // quiet server (keepalives tell the server's WAL end, not how far decoding got).
    const PgResult now = sql_.exec("SELECT pg_current_wal_insert_lsn()::text");
    once_target_ = pgoutput::parse_lsn(PQgetvalue(now.get(), 0, 0));
    std::random_device random;
    once_marker_ = "once " + std::to_string(random()) + std::to_string(random());
    try {
        sql_.exec_params("SELECT pg_logical_emit_message(false, $1, $2)",
                         {std::string(kMessagePrefix), once_marker_});
    } catch (const PostgresError& e) {
        if (e.connection_lost()) throw;
        refuse(sql_, std::string("--once ends at a marker written with pg_logical_emit_message, "
                                 "which the role may not call: ") +
                         e.what());
    }
    spdlog::info("postgres_cdc {}: --once: delivering what was committed before {}", settings_.slot,
                 pgoutput::lsn_text(once_target_));
}

// --- reading ------------------------------------------------------------------------------------

struct PostgresCdcSource::Pending {
    struct Place {
        size_t key_at = 0, key_size = SIZE_MAX;      // SIZE_MAX: no key
        size_t value_at = 0, value_size = SIZE_MAX;  // SIZE_MAX: a tombstone
        std::vector<Header> headers;
    };
    std::vector<char>* storage = nullptr;
    std::vector<Place> places;
    std::vector<Checkpoint> after;  // the checkpoint once each record is delivered
    bool snapshot_done = false;
    size_t size() const { return places.size(); }
};

void PostgresCdcSource::emit(Pending& out, const CdcTable& table, const ChangeSource& source,
                             const pgoutput::Tuple* row, const pgoutput::Tuple* old_row,
                             char old_kind) {
    std::vector<char>& storage = *out.storage;
    const pgoutput::Tuple* old_full = old_kind == 'O' ? old_row : nullptr;
    Pending::Place place;
    std::string unchanged;
    std::optional<std::string> key =
        row ? record_key(table, *row, old_row) : record_key(table, *old_row, nullptr);
    const std::string lsn = pgoutput::lsn_text(source.commit_lsn);
    place.headers = {{"kbridge.op", std::string(1, source.op)},
                     {"kbridge.lsn", lsn},
                     {"kbridge.txid", source.xid ? std::to_string(source.xid) : ""},
                     {"kbridge.schema", table.schema},
                     {"kbridge.table", table.name}};
    auto put_key = [&](Pending::Place& p) {
        if (!key) return;
        p.key_at = storage.size();
        p.key_size = key->size();
        storage.insert(storage.end(), key->begin(), key->end());
    };
    put_key(place);
    if (settings_.envelope == Envelope::Row) {
        if (row) {
            place.value_at = storage.size();
            append_row_json(table, *row, old_full, storage, unchanged);
            place.value_size = storage.size() - place.value_at;
        }
    } else {
        std::vector<char> before, after;
        std::string ignored;
        if (old_row && old_kind == 'O') append_row_json(table, *old_row, nullptr, before, ignored);
        if (!row && old_row && old_kind == 'K')
            append_row_json(table, *old_row, nullptr, before, ignored);
        if (row) append_row_json(table, *row, old_full, after, unchanged);
        place.value_at = storage.size();
        append_debezium(table, source, std::string_view(before.data(), before.size()),
                        std::string_view(after.data(), after.size()), database_, settings_.pipeline,
                        storage);
        place.value_size = storage.size() - place.value_at;
    }
    if (!unchanged.empty()) place.headers.push_back({"kbridge.unchanged", unchanged});
    const bool tombstone_follows = settings_.envelope == Envelope::Debezium && !row && key;
    Pending::Place tombstone;
    if (tombstone_follows) {
        tombstone.headers = place.headers;
        tombstone.key_at = place.key_at;
        tombstone.key_size = place.key_size;
    }
    out.places.push_back(std::move(place));
    out.after.push_back(read_);
    if (tombstone_follows) {
        out.places.push_back(std::move(tombstone));
        out.after.push_back(read_);
    }
}

ReadStatus PostgresCdcSource::read_snapshot(Batch& batch) {
    Pending out;
    out.storage = &batch.storage;
    ChangeSource source;
    source.op = 'r';
    source.snapshot = true;
    source.commit_lsn = snapshot_lsn_;
    source.commit_ms = commit_ms(pgoutput::postgres_now());
    pgoutput::Tuple row;
    while (out.size() < settings_.batch_size && snapshotting_) {
        const std::string& name = settings_.tables[snapshot_table_];
        // The table's own entry: relation ids are not known before the stream, so the
        // snapshot's tables live under ids no relation uses (0, 1, ... from the top).
        const uint32_t id = UINT32_MAX - static_cast<uint32_t>(snapshot_table_);
        auto known = tables_.find(id);
        if (known == tables_.end()) {
            const CdcTable& table = table_from_catalog(id, snapshot_conn_->quote_table(name));
            std::string columns;
            for (const auto& c : table.columns)
                columns += (columns.empty() ? "" : ", ") +
                           snapshot_conn_->quote_identifier(c.name) + "::text";
            snapshot_conn_->copy_out("COPY (SELECT " + (columns.empty() ? "" : columns) + " FROM " +
                                     snapshot_conn_->quote_table(name) +
                                     ") TO STDOUT (FORMAT binary)");
            known = tables_.find(id);
        }
        const CdcTable& table = known->second;
        if (!snapshot_conn_->next_copy_row(copy_fields_)) {
            tables_.erase(known);
            if (++snapshot_table_ == settings_.tables.size()) {
                snapshot_conn_->exec("COMMIT");
                snapshot_conn_.reset();
                snapshotting_ = false;
                out.snapshot_done = true;
                spdlog::info("postgres_cdc {}: snapshot read; streaming changes from {}",
                             settings_.slot, pgoutput::lsn_text(snapshot_lsn_));
                start_streaming();
            }
            continue;
        }
        row.clear();
        for (const auto& field : copy_fields_)
            row.push_back(field ? pgoutput::Value{pgoutput::ValueKind::Text, *field}
                                : pgoutput::Value{});
        emit(out, table, source, &row, nullptr, 0);
    }
    ++unacked_batches_;
    finish(out, batch);
    return ReadStatus::Records;
}

bool PostgresCdcSource::skip_change() {
    // Delivered before a restart: an earlier transaction, or the start of this one.
    const Lsn lsn = transaction_.final_lsn;
    return lsn < resume_.commit_lsn || (lsn == resume_.commit_lsn && change_index_ < resume_.index);
}

void PostgresCdcSource::on_relation(const pgoutput::Relation& relation) {
    // Relation messages come before a table's first change and after each ALTER TABLE.
    CdcTable table;
    table.schema = relation.schema.empty() ? "pg_catalog" : std::string(relation.schema);
    table.name = relation.name;
    table.replica_identity = relation.replica_identity;
    std::vector<size_t> identity;
    for (size_t i = 0; i < relation.columns.size(); ++i) {
        const auto& c = relation.columns[i];
        table.columns.push_back({std::string(c.name), json_type(c.type), ""});
        if (c.key) identity.push_back(i);
    }
    // The record key is the primary key; pgoutput flags every column under REPLICA IDENTITY
    // FULL, so the catalog says which they are.
    const PgResult pk = sql_.exec_params(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
        "a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY "
        "array_position(i.indkey, a.attnum)",
        {std::to_string(relation.id)});
    for (int r = 0; r < PQntuples(pk.get()); ++r)
        for (size_t i = 0; i < table.columns.size(); ++i)
            if (table.columns[i].name == PQgetvalue(pk.get(), r, 0)) table.key.push_back(i);
    if (table.key.empty()) table.key = identity;
    table.wanted = std::find(settings_.tables.begin(), settings_.tables.end(), table.qualified()) !=
                   settings_.tables.end();
    table.prepare();
    tables_[relation.id] = std::move(table);
}

bool PostgresCdcSource::handle(std::string_view bytes, Pending& out) {
    const pgoutput::StreamMessage message = pgoutput::decode_stream(bytes);
    if (const auto* keepalive = std::get_if<pgoutput::Keepalive>(&message)) {
        // A keepalive's position is the server's WAL end, not how far decoding got: it says
        // nothing of what was sent, so it is never confirmed nor taken as --once's end.
        server_end_ = std::max(server_end_, keepalive->wal_end);
        if (keepalive->reply_requested) send_status(false);
        return true;
    }
    const auto& data = std::get<pgoutput::XLogData>(message);
    server_end_ = std::max(server_end_, data.wal_end);
    const pgoutput::Message decoded = pgoutput::decode(data.payload);
    auto table_of = [&](uint32_t id) -> const CdcTable& {
        const auto found = tables_.find(id);
        if (found == tables_.end())
            throw pgoutput::DecodeError("a change of relation " + std::to_string(id) +
                                        " before its Relation message");
        return found->second;
    };
    ChangeSource source;
    source.commit_lsn = transaction_.final_lsn;
    source.change_lsn = data.start;
    source.xid = transaction_.xid;
    source.commit_ms = commit_ms(transaction_.commit_time);
    auto deliver = [&](char op, const CdcTable& table, const pgoutput::Tuple* row,
                       const pgoutput::Tuple* old_row, char old_kind) {
        if (!in_transaction_) throw pgoutput::DecodeError("a change outside a transaction");
        if (!skip_change() && table.wanted) {
            source.op = op;
            emit(out, table, source, row, old_row, old_kind);
        }
        ++change_index_;
        read_.commit_lsn = transaction_.final_lsn;
        read_.index = change_index_;
        if (!out.after.empty() && out.after.back().commit_lsn == read_.commit_lsn)
            out.after.back() = read_;
        last_change_ = SteadyClock::now();
    };
    if (const auto* begin = std::get_if<pgoutput::Begin>(&decoded)) {
        if (settings_.once && begin->final_lsn >= once_target_) {
            spdlog::info("postgres_cdc {}: --once: a transaction committed at {}: done",
                         settings_.slot, pgoutput::lsn_text(begin->final_lsn));
            return false;
        }
        in_transaction_ = true;
        transaction_ = *begin;
        change_index_ = 0;
    } else if (const auto* commit = std::get_if<pgoutput::Commit>(&decoded)) {
        in_transaction_ = false;
        read_.commit_lsn = commit->commit_lsn;
        read_.index = change_index_;
        read_.flush = std::max(read_.flush, commit->end_lsn);
        received_ = std::max(received_, commit->end_lsn);
    } else if (const auto* relation = std::get_if<pgoutput::Relation>(&decoded)) {
        on_relation(*relation);
    } else if (const auto* insert = std::get_if<pgoutput::Insert>(&decoded)) {
        deliver('c', table_of(insert->relation), &insert->row, nullptr, 0);
    } else if (const auto* update = std::get_if<pgoutput::Update>(&decoded)) {
        deliver('u', table_of(update->relation), &update->row,
                update->old_kind ? &update->old_row : nullptr, update->old_kind);
    } else if (const auto* del = std::get_if<pgoutput::Delete>(&decoded)) {
        deliver('d', table_of(del->relation), nullptr, &del->old_row, del->old_kind);
    } else if (const auto* truncate = std::get_if<pgoutput::Truncate>(&decoded)) {
        // One event per table; a truncate counts as one change of its transaction.
        if (!in_transaction_) throw pgoutput::DecodeError("a Truncate outside a transaction");
        const bool skip = skip_change();
        for (const uint32_t id : truncate->relations) {
            if (skip) break;
            const CdcTable& table = table_of(id);
            if (!table.wanted) continue;
            source.op = 't';
            Pending::Place place;
            place.headers = {{"kbridge.op", "t"},
                             {"kbridge.lsn", pgoutput::lsn_text(source.commit_lsn)},
                             {"kbridge.txid", std::to_string(source.xid)},
                             {"kbridge.schema", table.schema},
                             {"kbridge.table", table.name}};
            place.value_at = out.storage->size();
            if (settings_.envelope == Envelope::Row) {
                out.storage->push_back('{');
                out.storage->push_back('}');
            } else {
                append_debezium(table, source, "", "", database_, settings_.pipeline, *out.storage);
            }
            place.value_size = out.storage->size() - place.value_at;
            out.places.push_back(std::move(place));
            out.after.push_back(read_);
        }
        ++change_index_;
        read_.commit_lsn = transaction_.final_lsn;
        read_.index = change_index_;
        if (!out.after.empty() && out.after.back().commit_lsn == read_.commit_lsn)
            out.after.back() = read_;
    } else if (const auto* logical = std::get_if<pgoutput::LogicalMessage>(&decoded)) {
        if (logical->prefix == kMessagePrefix && !logical->transactional && !in_transaction_) {
            received_ = std::max(received_, logical->lsn);
            if (settings_.once && logical->content == once_marker_) {
                spdlog::info("postgres_cdc {}: --once: the end marker came: done", settings_.slot);
                return false;
            }
        }
    }
    // Type and Origin messages change nothing here: types are looked up in the catalog.
    return true;
}

ReadStatus PostgresCdcSource::read_stream(Batch& batch, std::chrono::milliseconds wait) {
    Pending out;
    out.storage = &batch.storage;
    if (once_reached_) return ReadStatus::End;
    const auto deadline = SteadyClock::now() + wait;
    while (out.size() < settings_.batch_size) {
        const auto now = SteadyClock::now();
        const bool status_due = now - last_status_ >= settings_.status_interval;
        if (status_due) send_status(false);
        if (settings_.heartbeat_interval > 0ms &&
            now - last_heartbeat_ >= settings_.heartbeat_interval)
            heartbeat();
        // Records ready go out now; the rest of an open transaction comes within moments.
        const auto until = out.size()        ? now
                           : in_transaction_ ? now + settings_.query_timeout
                                             : deadline;
        auto message = stream_.next(until);
        if (!message) {
            if (stop_requested().load() || out.size()) break;
            if (in_transaction_)
                stream_.connection().abandon("no data within " +
                                             duration_text(settings_.query_timeout) +
                                             " (query_timeout) inside a transaction");
            break;
        }
        bool more;
        try {
            more = handle(*message, out);
        } catch (const pgoutput::DecodeError& e) {
            // Not retried: the same bytes would come again.
            throw std::runtime_error("postgres_cdc " + settings_.slot +
                                     ": cannot decode the replication stream after " +
                                     pgoutput::lsn_text(read_.commit_lsn) + ": " + e.what());
        }
        if (!more) {
            once_reached_ = true;
            break;
        }
    }
    if (out.size() == 0) mark_resume(batch, false);  // a transaction may have ended
    if (out.size() == 0 && !once_reached_) {
        if (acked_.flush < read_.flush && unacked_batches_ == 0) acknowledge(read_);
        return ReadStatus::Idle;
    }
    if (out.size() == 0) return ReadStatus::End;
    ++unacked_batches_;
    finish(out, batch);
    return ReadStatus::Records;
}

void PostgresCdcSource::finish(Pending& out, Batch& batch) {
    batch.records.resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
        auto& place = out.places[i];
        Record& record = batch.records[i];
        if (place.key_size != SIZE_MAX)
            record.key.emplace(batch.storage.data() + place.key_at, place.key_size);
        if (place.value_size != SIZE_MAX)
            record.value.emplace(batch.storage.data() + place.value_at, place.value_size);
        record.headers = std::move(place.headers);
    }
    mark_resume(batch, out.snapshot_done);
    const Checkpoint end = snapshotting_ || out.snapshot_done ? acked_ : read_;
    batch.ack = [this, end, after = std::move(out.after), snapshot_done = out.snapshot_done,
                 snapshot = snapshotting_ || out.snapshot_done](size_t count) {
        if (unacked_batches_) --unacked_batches_;
        if (snapshot) {
            if (snapshot_done && count == after.size()) save_checkpoint(acked_, "done");
            return;
        }
        acknowledge(count == after.size() ? end : after[count - 1]);
    };
}

void PostgresCdcSource::acknowledge(const Checkpoint& reached) {
    acked_ = reached;
    dirty_ = true;
    const auto now = SteadyClock::now();
    // A crash between saves only sends the changes since again.
    if (now - last_save_ >= 1s) {
        save_checkpoint(acked_, settings_.snapshot ? "done" : "");
        dirty_ = false;
        last_save_ = now;
        send_status(false);
    }
}

void PostgresCdcSource::send_status(bool reply_requested) {
    if (!stream_.connected() || snapshotting_) return;
    const Checkpoint done = durable();
    Lsn flushed = done.flush;
    // Nothing read waits for an acknowledgement and no transaction is open: the slot may move
    // up to what the server has decoded, so WAL of other tables and databases is released.
    const bool settled = unacked_batches_ == 0 && !in_transaction_ && !once_reached_ &&
                         done.commit_lsn == read_.commit_lsn && done.index == read_.index;
    if (settled) flushed = std::max(flushed, received_);
    stream_.send_status(std::max(received_, flushed), flushed, reply_requested);
    confirmed_ = flushed;
    last_status_ = SteadyClock::now();
}

void PostgresCdcSource::heartbeat() {
    last_heartbeat_ = SteadyClock::now();
    if (SteadyClock::now() - last_change_ < settings_.heartbeat_interval) return;
    sql_.exec_params("SELECT pg_logical_emit_message(false, $1, 'heartbeat')",
                     {std::string(kMessagePrefix)});
}

ReadStatus PostgresCdcSource::read(Batch& batch, std::chrono::milliseconds wait) {
    if (snapshotting_) return read_snapshot(batch);
    return read_stream(batch, wait);
}

std::optional<uint64_t> PostgresCdcSource::lag() {
    return std::nullopt;  // changes waiting in WAL cannot be counted without decoding them
}

std::vector<std::pair<std::string, double>> PostgresCdcSource::gauges() {
    if (snapshotting_ || server_end_ == 0) return {};
    const Lsn confirmed = std::max(durable().flush, confirmed_);
    return {{"kbridge_cdc_slot_lag_bytes",
             static_cast<double>(server_end_ > confirmed ? server_end_ - confirmed : 0)},
            {"kbridge_cdc_seconds_since_last_change",
             std::chrono::duration<double>(SteadyClock::now() - last_change_).count()}};
}

void PostgresCdcSource::close() {
    if (snapshotting_) {
        snapshot_conn_.reset();
        snapshotting_ = false;
        return;
    }
    if (dirty_) save_checkpoint(acked_, settings_.snapshot ? "done" : "");
    dirty_ = false;
    try {
        if (stream_.connected()) send_status(false);
    } catch (const PostgresError& e) {
        spdlog::warn(
            "postgres_cdc {}: the last status update failed ({}); the slot resumes "
            "from its previous position and the checkpoint skips what was delivered",
            settings_.slot, e.what());
    }
    stream_.close();
}

// --- kbridge state ------------------------------------------------------------------------------

std::unique_ptr<PostgresCdcSource> postgres_cdc_of(const Config& config,
                                                   const std::string& pipeline,
                                                   const std::string& state_dir) {
    for (const auto& p : config.pipelines) {
        if (p.name != pipeline || p.source.type != "postgres_cdc") continue;
        const ConnectorContext ctx{config, pipeline, false, state_dir, "", false, p.source.type};
        std::unique_ptr<Source> source = make_source(p.source, ctx);
        return std::unique_ptr<PostgresCdcSource>(
            static_cast<PostgresCdcSource*>(source.release()));
    }
    return nullptr;
}

std::string PostgresCdcSource::slot_report() {
    sql_.connect();
    const PgResult r = sql_.exec_params(
        "SELECT coalesce(confirmed_flush_lsn::text, ''), coalesce(restart_lsn::text, ''), active, "
        "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text, ''), "
        "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text, '') "
        "FROM pg_replication_slots WHERE slot_name = $1",
        {settings_.slot});
    std::string report = "  slot " + settings_.slot + ": ";
    if (PQntuples(r.get()) == 0) {
        report += "none (created at the next run)\n";
    } else {
        auto field = [&](int i) { return std::string(PQgetvalue(r.get(), 0, i)); };
        report += "confirmed flush " + field(0) + ", restart " + field(1) +
                  (field(2) == "t" ? ", in use" : ", idle") + ", lag " + field(3) +
                  " bytes, WAL retained " + field(4) + " bytes\n";
    }
    const PgResult pub = sql_.exec_params("SELECT 1 FROM pg_publication WHERE pubname = $1",
                                          {settings_.publication});
    report += "  publication " + settings_.publication +
              (PQntuples(pub.get()) ? ": exists\n" : ": none (created at the next run)\n");
    return report;
}

void PostgresCdcSource::drop_slot_and_publication() {
    sql_.connect();
    const PgResult active = sql_.exec_params(
        "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active",
        {settings_.slot});
    if (PQntuples(active.get()))
        refuse(sql_, "slot '" + settings_.slot + "' is in use by process " +
                         PQgetvalue(active.get(), 0, 0) + "; stop the pipeline first");
    sql_.exec_params(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
        {settings_.slot});
    sql_.exec("DROP PUBLICATION IF EXISTS " + sql_.quote_identifier(settings_.publication));
}

}  // namespace kbridge
