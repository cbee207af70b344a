#include "connectors/postgres_cdc/replication.h"

#include <poll.h>

#include "connectors/postgres/conninfo.h"

namespace kbridge {

std::string conninfo_with(const std::string& url,
                          const std::vector<std::pair<std::string, std::string>>& extra) {
    PostgresParams params = postgres_params(url);
    for (const auto& [key, value] : extra) {
        bool replaced = false;
        for (auto& p : params)
            if (p.first == key) {
                p.second = value;
                replaced = true;
            }
        if (!replaced) params.emplace_back(key, value);
    }
    std::string out;
    for (const auto& [key, value] : params) {
        out += (out.empty() ? "" : " ") + key + "='";
        for (const char c : value) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        out += '\'';
    }
    return out;
}

ReplicationStream::ReplicationStream(const std::string& url,
                                     std::chrono::milliseconds connect_timeout,
                                     std::chrono::milliseconds query_timeout)
    // DateStyle ISO: the text of dates and timestamps that text_json turns into JSON.
    : conn_(conninfo_with(url, {{"replication", "database"},
                                {"options", "-c datestyle=ISO,YMD -c intervalstyle=postgres"}}),
            connect_timeout, query_timeout) {}

void ReplicationStream::connect() {
    streaming_ = false;
    buffer_.reset();
    conn_.connect();
}

void ReplicationStream::close() {
    streaming_ = false;
    buffer_.reset();
    if (!conn_.is_connected()) return;
    // Ends the COPY politely when it can; PQfinish (non-blocking) follows in any case.
    PQputCopyEnd(conn_.get(), nullptr);
    PQflush(conn_.get());
}

ReplicationStream::Slot ReplicationStream::create_slot(const std::string& slot,
                                                       bool export_snapshot) {
    const PgResult r = conn_.exec("CREATE_REPLICATION_SLOT " + conn_.quote_identifier(slot) +
                                  " LOGICAL pgoutput " +
                                  (export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"));
    Slot created;
    created.consistent_point = pgoutput::parse_lsn(PQgetvalue(r.get(), 0, 1));
    if (!PQgetisnull(r.get(), 0, 2)) created.snapshot = PQgetvalue(r.get(), 0, 2);
    return created;
}

void ReplicationStream::start(const std::string& slot, pgoutput::Lsn from,
                              const std::string& publication) {
    PGconn* c = conn_.get();
    const std::string sql = "START_REPLICATION SLOT " + conn_.quote_identifier(slot) + " LOGICAL " +
                            pgoutput::lsn_text(from) + " (proto_version '1', publication_names " +
                            conn_.quote_literal(conn_.quote_identifier(publication)) +
                            ", messages 'true')";
    if (!PQsendQuery(c, sql.c_str())) conn_.raise("START_REPLICATION failed");
    const auto deadline = SteadyClock::now() + conn_.query_timeout();
    while (PQisBusy(c)) {
        switch (wait_socket(PQsocket(c), POLLIN, deadline)) {
            case SocketWait::Ready:
                break;
            case SocketWait::TimedOut:
                conn_.abandon("no answer to START_REPLICATION within " +
                              duration_text(conn_.query_timeout()) + " (query_timeout)");
            case SocketWait::Stopped:
                conn_.abandon("gave up starting replication: the run is stopping");
        }
        if (!PQconsumeInput(c)) conn_.raise("START_REPLICATION failed");
    }
    PgResult result(PQgetResult(c));
    if (PQresultStatus(result.get()) != PGRES_COPY_BOTH)
        conn_.raise("START_REPLICATION failed", result.get());
    // Status updates are queued without blocking and sent with the waits of next().
    PQsetnonblocking(c, 1);
    streaming_ = true;
}

void ReplicationStream::flush() {
    if (PQflush(conn_.get()) < 0) conn_.raise("cannot send to the replication stream");
}

std::optional<std::string_view> ReplicationStream::next(SteadyClock::time_point deadline) {
    PGconn* c = conn_.get();
    buffer_.reset();
    for (;;) {
        char* raw = nullptr;
        const int size = PQgetCopyData(c, &raw, 1);
        if (size > 0) {
            buffer_.reset(raw);
            return std::string_view(raw, static_cast<size_t>(size));
        }
        if (size == -1) {
            streaming_ = false;
            PgResult result(PQgetResult(c));
            conn_.raise("the replication stream ended", result.get());
        }
        if (size < -1) conn_.raise("the replication stream broke");
        flush();
        const short events = POLLIN | (PQflush(c) == 1 ? POLLOUT : 0);
        switch (wait_socket(PQsocket(c), events, deadline)) {
            case SocketWait::Ready:
                break;
            case SocketWait::TimedOut:
                return std::nullopt;
            case SocketWait::Stopped:
                return std::nullopt;  // the caller sees the stop request and ends the run
        }
        if (!PQconsumeInput(c)) conn_.raise("the replication stream broke");
    }
}

void ReplicationStream::send_status(pgoutput::Lsn received, pgoutput::Lsn flushed,
                                    bool reply_requested) {
    if (!streaming_) return;
    const std::string update = pgoutput::standby_status_update(
        received, flushed, flushed, pgoutput::postgres_now(), reply_requested);
    if (PQputCopyData(conn_.get(), update.data(), static_cast<int>(update.size())) != 1)
        conn_.raise("cannot send a status update");
    flush();
}

}  // namespace kbridge
