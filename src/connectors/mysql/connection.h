#pragma once
// RAII over libmariadb (MariaDB and MySQL): a connection from a mysql:// URL, statements with
// parameters (prepared once, kept by their SQL), rows as text, and errors as SqlError whose code
// is "errno/SQLSTATE".
#include <mysql.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/sql/error.h"

namespace kbridge {

struct MysqlUrl {
    std::string user, password, host = "localhost", database, socket;
    unsigned port = 3306;
};
// mysql://[user[:password]@]host[:port]/database[?socket=/path]; throws std::invalid_argument
// (the message never quotes the password).
MysqlUrl parse_mysql_url(const std::string& url);

using MysqlParams = std::vector<std::optional<std::string_view>>;
using MysqlRows = std::vector<std::vector<std::optional<std::string>>>;

class MysqlConnection {
  public:
    MysqlConnection(std::string url, std::chrono::milliseconds connect_timeout,
                    std::chrono::milliseconds query_timeout);
    // utf8mb4, strict SQL mode, UTC; every wait bounded by the timeouts.
    void connect();
    bool is_connected() const { return conn_ != nullptr; }
    const std::string& redacted_url() const { return redacted_; }
    void exec(const std::string& sql);  // no parameters, no rows
    // A prepared statement with `params` bound as text (NULL for nullopt).
    void execute(const std::string& sql, const MysqlParams& params);
    MysqlRows query(const std::string& sql, const MysqlParams& params);
    // `LOAD DATA LOCAL INFILE ...` whose file is `data`: the connection serves only the data
    // given here, never a file the server names. Returns the rows it affected and sets
    // `warnings` (with LOCAL the server turns refusals into warnings).
    uint64_t load_data(const std::string& sql, std::string_view data, unsigned& warnings);
    static std::string quote_identifier(const std::string& name);
    static std::string quote_table(const std::string& table);
    [[noreturn]] void drop(const std::string& why);

  private:
    struct ConnDeleter {
        void operator()(MYSQL* c) const { mysql_close(c); }
    };
    struct StmtDeleter {
        void operator()(MYSQL_STMT* s) const { mysql_stmt_close(s); }
    };
    MYSQL_STMT* prepared(const std::string& sql, const MysqlParams& params);
    static int infile_init(void** state, const char* file, void* self);
    static int infile_read(void* state, char* buffer, unsigned int size);
    static void infile_end(void*) {}
    static int infile_error(void* state, char* message, unsigned int size);
    [[noreturn]] void fail(unsigned number, const char* sqlstate, const char* message);

    std::string url_, redacted_;
    std::chrono::milliseconds connect_timeout_, query_timeout_;
    std::map<std::string, std::unique_ptr<MYSQL_STMT, StmtDeleter>> statements_;
    std::unique_ptr<MYSQL, ConnDeleter> conn_;
    std::vector<MYSQL_BIND> binds_;
    std::vector<unsigned long> lengths_;
    std::vector<my_bool> nulls_;
    std::optional<std::string_view> infile_;  // what load_data() serves, while it runs
};

}  // namespace kbridge
