#include "support/postgres.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "support/data_dir_cache.h"

namespace kbridge::test {
namespace {

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string newest_postgres_bin() {
    std::string best;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql"))
        if (std::filesystem::exists(entry.path() / "bin/postgres") && entry.path().string() > best)
            best = entry.path().string();
    if (best.empty())
        throw std::runtime_error(
            "no PostgreSQL server in /usr/lib/postgresql (apt-get install postgresql)");
    return best + "/bin";
}

}  // namespace

PostgresSession::PostgresSession(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect to " + url + ": " + PQerrorMessage(conn_.get()));
}

void PostgresSession::exec(const std::string& sql) {
    query(sql);
}

PgRows PostgresSession::query(const std::string& sql) {
    Result result(PQexec(conn_.get(), sql.c_str()));
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error("SQL failed: " + std::string(PQresultErrorMessage(result.get())) +
                                 "in: " + sql);
    PgRows rows;
    for (int r = 0; r < PQntuples(result.get()); ++r) {
        auto& row = rows.emplace_back();
        for (int c = 0; c < PQnfields(result.get()); ++c) {
            if (PQgetisnull(result.get(), r, c))
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(
                    std::string(PQgetvalue(result.get(), r, c), PQgetlength(result.get(), r, c)));
        }
    }
    return rows;
}

std::string PostgresSession::scalar(const std::string& sql) {
    const PgRows rows = query(sql);
    if (rows.size() != 1 || rows[0].size() != 1)
        throw std::runtime_error("expected one value from: " + sql);
    return rows[0][0].value_or("");
}

std::vector<std::string> PostgresServer::as_postgres(std::vector<std::string> argv) const {
    if (geteuid() != 0) return argv;
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    return argv;
}

PostgresServer::PostgresServer(const TempDir& dir)
    : bin_(newest_postgres_bin()),
      data_(dir.file("pgdata")),
      dir_(dir.path().string()),
      port_(free_port()) {
    const std::string version = std::filesystem::path(bin_).parent_path().filename().string();
    copy_initialized_data_dir("postgres" + version, data_, dir_, [&](const std::string& dir) {
        return as_postgres({bin_ + "/initdb", "-D", dir, "-U", "postgres", "-A", "trust",
                            "--no-sync", "-E", "UTF8", "--no-locale"});
    });
    // Fast and throwaway: nothing here needs to survive a machine crash.
    server_ = std::make_unique<Process>(as_postgres({bin_ + "/postgres",
                                                     "-D",
                                                     data_,
                                                     "-p",
                                                     std::to_string(port_),
                                                     "-k",
                                                     dir_,
                                                     "-c",
                                                     "listen_addresses=127.0.0.1",
                                                     "-c",
                                                     "fsync=off",
                                                     "-c",
                                                     "synchronous_commit=off",
                                                     "-c",
                                                     "full_page_writes=off",
                                                     "-c",
                                                     "wal_level=logical",
                                                     "-c",
                                                     "max_wal_senders=4",
                                                     "-c",
                                                     "max_replication_slots=4"}),
                                        dir_);
    for (int attempt = 0;; ++attempt) {
        if (PQping(url().c_str()) == PQPING_OK) break;
        if (attempt > 600 || !server_->running())
            throw std::runtime_error("PostgreSQL did not start: " + server_->err());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    session_ = std::make_unique<PostgresSession>(url());
}

PostgresServer::~PostgresServer() {
    session_.reset();
    // A fast shutdown; the Process destructor kills whatever is left.
    Process stop(as_postgres({bin_ + "/pg_ctl", "-D", data_, "-m", "immediate", "-w", "stop"}),
                 dir_);
    stop.wait(std::chrono::seconds(30));
    server_->wait(std::chrono::seconds(10));
}

std::string PostgresServer::url(const std::string& db) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

}  // namespace kbridge::test
