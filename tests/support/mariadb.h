#pragma once
// A throwaway MariaDB for integration tests: mariadb-install-db in a temp dir, mariadbd on a
// free loopback port (and a unix socket there), run as the `mysql` user when the tests run as
// root. root@127.0.0.1 has no password.
#include <mysql.h>

#include <memory>
#include <string>

#include "support/process.h"

namespace kbridge::test {

class MariadbServer {
  public:
    explicit MariadbServer(const TempDir& dir);
    ~MariadbServer();
    int port() const { return port_; }
    std::string url(const std::string& db = "test") const;  // mysql://root@127.0.0.1:PORT/db
    void exec(const std::string& sql);  // throws std::runtime_error with the server's message
    std::string scalar(const std::string& sql);
    // Kills every other client connection, as a network cut would end them.
    void kill_clients();

  private:
    struct Deleter {
        void operator()(MYSQL* c) const { mysql_close(c); }
    };
    std::vector<std::string> as_mysql(std::vector<std::string> argv) const;

    std::string data_, dir_;
    int port_;
    std::unique_ptr<Process> server_;
    std::unique_ptr<MYSQL, Deleter> session_;
};

}  // namespace kbridge::test
