#pragma once
// RAII over libpq: a connection, results, identifier/literal quoting, and a reader of binary COPY
// output that streams one row at a time.
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/sql/error.h"

namespace kbridge {

// A SqlError with the server's SQLSTATE (e.g. 23505) as its code.
class PostgresError : public SqlError {
  public:
    using SqlError::SqlError;
    const std::string& sqlstate() const { return code(); }
};

struct PgResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// The URL or conninfo with any password masked, for logs and errors.
std::string redact_postgres_url(const std::string& url);

class PostgresConnection {
  public:
    // `connect_timeout` bounds connecting (authentication included); `query_timeout` bounds each
    // wait for a query's answer, renewed whenever bytes arrive. A wait that runs out drops the
    // connection (connection_lost), as does a stop request a few seconds old.
    explicit PostgresConnection(
        std::string url, std::chrono::milliseconds connect_timeout = std::chrono::seconds(10),
        std::chrono::milliseconds query_timeout = std::chrono::minutes(5))
        : url_(std::move(url)), connect_timeout_(connect_timeout), query_timeout_(query_timeout) {}
    void connect();
    // Runs SQL that returns rows or nothing; throws PostgresError naming the server's message.
    PgResult exec(const std::string& sql);
    PgResult exec_params(const std::string& sql,
                         const std::vector<std::optional<std::string>>& params);
    std::string quote_identifier(const std::string& name);  // "Mixed Case" -> "\"Mixed Case\""
    std::string quote_literal(const std::string& value);
    // "schema.table" or "table" -> each part quoted.
    std::string quote_table(const std::string& table);

    // COPY ... FROM STDIN: start, send data (any chunking), finish (checks the outcome).
    void copy_in(const std::string& copy_sql);
    void put_copy_data(std::string_view data);
    void end_copy_in();
    bool is_connected() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }

    // Starts COPY (...) TO STDOUT (FORMAT binary).
    void copy_out(const std::string& copy_sql);
    // The next row of the COPY: its fields (none for NULL) valid until the next call. False at
    // the end of the COPY, whose outcome is then checked.
    bool next_copy_row(std::vector<std::optional<std::string_view>>& fields);
    const std::string& redacted_url() const { return redacted_; }
    // Throws the PostgresError for `result` (or the connection's error), as the calls above do.
    [[noreturn]] void raise(const std::string& what, const PGresult* result = nullptr) {
        fail(what, result);
    }
    PGconn* get() { return conn_.get(); }
    std::chrono::milliseconds query_timeout() const { return query_timeout_; }
    // Drops the connection after a wait on it ran out (`why`), and throws the PostgresError
    // (connection lost) saying so.
    [[noreturn]] void abandon(const std::string& why);

  private:
    struct ConnDeleter {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    [[noreturn]] void fail(const std::string& what, const PGresult* result = nullptr);
    // Waits for `events` on the socket until `deadline`; abandons the connection past it.
    void await(short events, std::chrono::steady_clock::time_point deadline, const char* doing);
    // Sends what libpq has queued, waiting for room at most query_timeout at a time.
    void flush_bounded();
    // After a query was sent: its result, as PQexec gives it (the first error, else the last
    // result; a COPY's start at once), waiting at most query_timeout for each byte.
    PgResult await_result();
    void finish_connection();

    std::string url_;
    std::chrono::milliseconds connect_timeout_, query_timeout_;
    std::string redacted_;
    std::unique_ptr<PGconn, ConnDeleter> conn_;
    std::unique_ptr<char, void (*)(void*)> copy_buffer_{nullptr, PQfreemem};
    bool copy_header_seen_ = false;
};

}  // namespace kbridge
