#include "connectors/sqlite/connection.h"

#include <mutex>

namespace kbridge {

void SqliteConnection::connect() {
    // Before SQLite initializes (at the first open): no memory statistics, whose global mutex
    // each of SQLite's mallocs and frees would take. Nothing here reads them.
    static std::once_flag no_memory_statistics;
    std::call_once(no_memory_statistics, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    statements_.clear();
    db_.reset();
    sqlite3* db = nullptr;
    // NOMUTEX: one thread at a time uses the connection (the sink's, or its writer's once handed
    // over), so SQLite's per-call locking would only cost.
    const int rc =
        sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) {
        const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        db_.reset();
        throw SqlError("sqlite " + path_ + ": cannot open: " + message, std::to_string(rc));
    }
    sqlite3_extended_result_codes(db_.get(), 1);
    sqlite3_busy_timeout(db_.get(), static_cast<int>(busy_timeout_.count()));
    exec("PRAGMA journal_mode=WAL");
    exec(fsync_commits_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // 16 MiB of page cache (SQLite's default is 2 MiB, allocated as used): a batch's rows touch
    // pages all over the table, and with a cache smaller than those pages SQLite spills them to
    // the WAL before the COMMIT writes them again, and reads them back.
    exec("PRAGMA cache_size=-16384");
}

void SqliteConnection::fail(const std::string& what, int code) {
    const std::string message = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(code);
    throw SqlError("sqlite " + path_ + ": " + what + ": " + message, std::to_string(code & 0xff));
}

void SqliteConnection::exec(const std::string& sql) {
    if (!db_) throw SqlError("sqlite " + path_ + ": not open");
    sqlite3_stmt* s = statement(sql);
    while (step(s)) {
    }
}

sqlite3_stmt* SqliteConnection::statement(const std::string& sql) {
    if (!db_) throw SqlError("sqlite " + path_ + ": not open");
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        sqlite3_stmt* raw = nullptr;
        const int rc =
            sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
        SqliteStatement s(raw);
        if (rc != SQLITE_OK) fail("cannot prepare", rc);
        it = statements_.emplace(sql, std::move(s)).first;
    }
    sqlite3_reset(it->second.get());
    sqlite3_clear_bindings(it->second.get());
    return it->second.get();
}

void SqliteConnection::bind(sqlite3_stmt* s, int index, std::optional<std::string_view> value) {
    const int rc = value ? sqlite3_bind_text(s, index, value->data(),
                                             static_cast<int>(value->size()), SQLITE_STATIC)
                         : sqlite3_bind_null(s, index);
    if (rc != SQLITE_OK) fail("cannot bind", rc);
}

bool SqliteConnection::step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // The statement's error, then ready for the next use.
    const std::string message = sqlite3_errmsg(db_.get());
    sqlite3_reset(s);
    throw SqlError("sqlite " + path_ + ": " + message, std::to_string(rc & 0xff));
}

std::string SqliteConnection::quote_identifier(const std::string& name) const {
    std::string out = "\"";
    for (const char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string SqliteConnection::quote_table(const std::string& table) const {
    const auto dot = table.find('.');
    if (dot == std::string::npos) return quote_identifier(table);
    return quote_identifier(table.substr(0, dot)) + "." + quote_identifier(table.substr(dot + 1));
}

}  // namespace kbridge
