#pragma once
// RAII over libsqlite3: one database file opened read-write in WAL mode, prepared statements
// kept by their SQL, and errors as SqlError with the result code.
#include <sqlite3.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/sql/error.h"

namespace kbridge {

struct SqliteStatementDeleter {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using SqliteStatement = std::unique_ptr<sqlite3_stmt, SqliteStatementDeleter>;

class SqliteConnection {
  public:
    SqliteConnection(std::string path, std::chrono::milliseconds busy_timeout, bool fsync_commits)
        : path_(std::move(path)), busy_timeout_(busy_timeout), fsync_commits_(fsync_commits) {}
    // Opens the file (which must exist) in WAL mode: a process killed mid-transaction leaves the
    // file as of the last COMMIT. With `fsync_commits` (synchronous=FULL) a COMMIT that returned
    // is on disk; without (NORMAL) a power loss may undo the last ones.
    void connect();
    bool is_open() const { return db_ != nullptr; }
    const std::string& path() const { return path_; }
    // Statements without results.
    void exec(const std::string& sql);
    // The statement for `sql`, prepared once, reset and with its bindings cleared.
    sqlite3_stmt* statement(const std::string& sql);
    // Binds `value` (text kept by the caller until step) or NULL at 1-based `index`.
    void bind(sqlite3_stmt* s, int index, std::optional<std::string_view> value);
    // Steps a statement to its end (no rows wanted) or to its next row (true).
    bool step(sqlite3_stmt* s);
    // No transaction is open.
    bool autocommit() const { return db_ && sqlite3_get_autocommit(db_.get()) != 0; }
    // Makes the statement running on another thread fail with SQLITE_INTERRUPT (if any runs).
    void interrupt() {
        if (db_) sqlite3_interrupt(db_.get());
    }
    std::string quote_identifier(const std::string& name) const;
    // "schema.table" or "table" -> each part quoted.
    std::string quote_table(const std::string& table) const;
    [[noreturn]] void fail(const std::string& what, int code);

  private:
    struct DbDeleter {
        void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
    };
    std::string path_;
    std::chrono::milliseconds busy_timeout_;
    bool fsync_commits_;
    std::map<std::string, SqliteStatement> statements_;  // sqlite3_close_v2 waits for them
    std::unique_ptr<sqlite3, DbDeleter> db_;
};

}  // namespace kbridge
