#include "support/mariadb.h"

#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "support/data_dir_cache.h"

namespace kbridge::test {

std::vector<std::string> MariadbServer::as_mysql(std::vector<std::string> argv) const {
    if (geteuid() != 0) return argv;
    argv.insert(argv.begin(), {"runuser", "-u", "mysql", "--"});
    return argv;
}

MariadbServer::MariadbServer(const TempDir& dir)
    : data_(dir.file("mariadb")), dir_(dir.path().string()), port_(free_port()) {
    copy_initialized_data_dir("mariadb", data_, dir_, [&](const std::string& dir) {
        return as_mysql({"mariadb-install-db", "--no-defaults", "--datadir=" + dir,
                         "--auth-root-authentication-method=normal", "--skip-test-db"});
    });
    // Fast and throwaway: nothing here needs to survive a machine crash.
    server_ = std::make_unique<Process>(
        as_mysql({"mariadbd", "--no-defaults", "--datadir=" + data_,
                  "--socket=" + dir_ + "/mariadb.sock", "--port=" + std::to_string(port_),
                  "--bind-address=127.0.0.1", "--skip-log-bin",
                  "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
                  "--innodb-log-file-size=64M", "--skip-name-resolve",
                  "--pid-file=" + dir_ + "/mariadb.pid"}),
        dir_);
    for (int attempt = 0;; ++attempt) {
        session_.reset(mysql_init(nullptr));
        if (mysql_real_connect(session_.get(), "127.0.0.1", "root", nullptr, nullptr, port_,
                               nullptr, 0))
            break;
        if (attempt > 600 || !server_->running())
            throw std::runtime_error("MariaDB did not start: " + server_->err());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    mysql_set_character_set(session_.get(), "utf8mb4");
    exec("CREATE DATABASE test CHARACTER SET utf8mb4");
    exec("USE test");
}

MariadbServer::~MariadbServer() {
    try {
        exec("SHUTDOWN");
    } catch (const std::exception&) {
    }
    session_.reset();
    if (server_->wait(std::chrono::seconds(20)) == -1) {
        // runuser waits for mariadbd: end the server itself, then the Process ends runuser.
        const std::string pid = read_file(dir_ + "/mariadb.pid");
        if (!pid.empty()) kill(std::stoi(pid), SIGKILL);
        server_->wait(std::chrono::seconds(10));
    }
}

std::string MariadbServer::url(const std::string& db) const {
    return "mysql://root@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

void MariadbServer::exec(const std::string& sql) {
    if (mysql_real_query(session_.get(), sql.data(), sql.size()) != 0)
        throw std::runtime_error("SQL failed: " + std::string(mysql_error(session_.get())) +
                                 " in: " + sql);
    if (MYSQL_RES* r = mysql_store_result(session_.get())) mysql_free_result(r);
}

std::string MariadbServer::scalar(const std::string& sql) {
    if (mysql_real_query(session_.get(), sql.data(), sql.size()) != 0)
        throw std::runtime_error("SQL failed: " + std::string(mysql_error(session_.get())) +
                                 " in: " + sql);
    std::unique_ptr<MYSQL_RES, void (*)(MYSQL_RES*)> r(mysql_store_result(session_.get()),
                                                       mysql_free_result);
    MYSQL_ROW row = r ? mysql_fetch_row(r.get()) : nullptr;
    if (!row || mysql_num_fields(r.get()) != 1 || mysql_num_rows(r.get()) != 1)
        throw std::runtime_error("expected one value from: " + sql);
    return row[0] ? row[0] : "";
}

void MariadbServer::kill_clients() {
    std::vector<std::string> ids;
    const std::string sql =
        "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND command NOT "
        "IN "
        "('Daemon', 'Binlog Dump') AND user <> 'system user'";
    if (mysql_real_query(session_.get(), sql.data(), sql.size()) != 0)
        throw std::runtime_error(mysql_error(session_.get()));
    std::unique_ptr<MYSQL_RES, void (*)(MYSQL_RES*)> r(mysql_store_result(session_.get()),
                                                       mysql_free_result);
    while (MYSQL_ROW row = mysql_fetch_row(r.get())) ids.emplace_back(row[0]);
    for (const auto& id : ids) {
        const std::string kill = "KILL " + id;
        mysql_real_query(session_.get(), kill.data(), kill.size());  // it may have ended already
    }
}

}  // namespace kbridge::test
