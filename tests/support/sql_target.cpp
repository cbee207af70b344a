#include "support/sql_target.h"

#include <sqlite3.h>

#include <stdexcept>
#include <thread>

#include "support/mariadb.h"
#include "support/postgres.h"

namespace kbridge::test {
namespace {

class PostgresTarget : public SqlTarget {
  public:
    explicit PostgresTarget(const TempDir& dir) : server_(dir) {}
    void exec(const std::string& sql) override { server_.exec(sql); }
    std::string scalar(const std::string& sql) override { return server_.scalar(sql); }
    std::string globals() const override { return "postgres: {url: '" + server_.url() + "'}\n"; }
    std::string sink_lines() const override { return ""; }
    std::string type() const override { return "postgres_table"; }
    std::string check_violation() const override { return "violates check constraint"; }
    std::string duplicate_key() const override {
        return "duplicate key value violates unique constraint";
    }
    void interrupt() override {
        server_.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND backend_type = 'client backend'");
    }
    bool has_table(const std::string& name) override {
        return scalar("SELECT to_regclass('" + name + "') IS NOT NULL") == "t";
    }

  private:
    PostgresServer server_;
};

class MariadbTarget : public SqlTarget {
  public:
    explicit MariadbTarget(const TempDir& dir) : server_(dir) {}
    void exec(const std::string& sql) override { server_.exec(sql); }
    std::string scalar(const std::string& sql) override { return server_.scalar(sql); }
    std::string globals() const override { return "mysql: {url: '" + server_.url() + "'}\n"; }
    std::string sink_lines() const override { return ""; }
    std::string type() const override { return "mysql_table"; }
    std::string check_violation() const override { return "CONSTRAINT"; }
    std::string duplicate_key() const override { return "Duplicate entry"; }
    void interrupt() override { server_.kill_clients(); }
    bool has_table(const std::string& name) override {
        return scalar(
                   "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                   "DATABASE() AND table_name = '" +
                   name + "'") == "1";
    }

  private:
    MariadbServer server_;
};

class SqliteTarget : public SqlTarget {
  public:
    SqliteTarget(const TempDir& dir, bool fsync_commits)
        : path_(dir.file("target.db")), fsync_commits_(fsync_commits) {
        if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK)
            throw std::runtime_error("cannot create " + path_);
        sqlite3_busy_timeout(db_, 10000);
        exec("PRAGMA journal_mode=WAL");
    }
    ~SqliteTarget() override {
        if (locker_.joinable()) locker_.join();
        sqlite3_close(db_);
    }
    void exec(const std::string& sql) override {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string message = error ? error : "?";
            sqlite3_free(error);
            throw std::runtime_error("SQL failed: " + message + " in: " + sql);
        }
    }
    std::string scalar(const std::string& sql) override {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error("SQL failed: " + std::string(sqlite3_errmsg(db_)) +
                                     " in: " + sql);
        std::string out;
        const int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW) throw std::runtime_error("expected one value from: " + sql);
        return out;
    }
    std::string globals() const override { return ""; }
    std::string sink_lines() const override {
        return "      path: '" + path_ + "'\n      busy_timeout: 200ms\n" +
               (fsync_commits_ ? "" : "      synchronous: normal\n");
    }
    std::string type() const override { return "sqlite_table"; }
    std::string check_violation() const override { return "CHECK constraint failed"; }
    std::string duplicate_key() const override { return "UNIQUE constraint failed"; }
    // Another writer holds the file's write lock for 1.5 s: the sink's writes wait, time out
    // (busy_timeout) and are retried.
    void interrupt() override {
        if (locker_.joinable()) locker_.join();
        locker_ = std::thread([path = path_] {
            sqlite3* db = nullptr;
            sqlite3_open(path.c_str(), &db);
            sqlite3_busy_timeout(db, 10000);
            sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
            sqlite3_close(db);
        });
    }
    bool has_table(const std::string& name) override {
        return scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" +
                      name + "'") == "1";
    }

  private:
    std::string path_;
    bool fsync_commits_;
    sqlite3* db_ = nullptr;
    std::thread locker_;
};

}  // namespace

std::unique_ptr<SqlTarget> make_sql_target(const std::string& kind, const TempDir& dir) {
    if (kind == "postgres") return std::make_unique<PostgresTarget>(dir);
    if (kind == "sqlite") return std::make_unique<SqliteTarget>(dir, true);
    if (kind == "sqlite_normal") return std::make_unique<SqliteTarget>(dir, false);
    if (kind == "mariadb") return std::make_unique<MariadbTarget>(dir);
    throw std::invalid_argument("no SQL target " + kind);
}

}  // namespace kbridge::test
