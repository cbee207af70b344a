#pragma once
// A throwaway PostgreSQL for integration tests: initdb in a temp dir, run as the unprivileged
// `postgres` user when the tests run as root (PostgreSQL refuses root).
#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace kbridge::test {

using PgRows = std::vector<std::vector<std::optional<std::string>>>;

// One connection of its own: a test can hold a transaction open in one session while another
// commits.
class PostgresSession {
  public:
    explicit PostgresSession(const std::string& url);
    void exec(const std::string& sql);  // throws std::runtime_error with the server's message
    PgRows query(const std::string& sql);
    std::string scalar(const std::string& sql);

  private:
    struct Deleter {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    std::unique_ptr<PGconn, Deleter> conn_;
};

class PostgresServer {
  public:
    explicit PostgresServer(const TempDir& dir);
    ~PostgresServer();
    int port() const { return port_; }
    std::string url(const std::string& db = "postgres") const;
    void exec(const std::string& sql) { session_->exec(sql); }
    PgRows query(const std::string& sql) { return session_->query(sql); }
    std::string scalar(const std::string& sql) { return session_->scalar(sql); }

  private:
    std::vector<std::string> as_postgres(std::vector<std::string> argv) const;

    std::string bin_, data_, dir_;
    int port_;
    std::unique_ptr<Process> server_;
    std::unique_ptr<PostgresSession> session_;
};

}  // namespace kbridge::test
