#include "connectors/postgres/connection.h"

#include <arpa/inet.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "connectors/postgres/conninfo.h"
#include "core/secrets.h"
#include "core/wait.h"

namespace kbridge {

namespace {

// Server NOTICEs ("relation ... already exists, skipping") are for debugging, not for stderr.
void log_notice(void*, const char* message) {
    std::string text = message ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    spdlog::debug("postgres: {}", text);
}

}  // namespace

std::string redact_postgres_url(const std::string& url) {
    return mask_connection_string(url);
}

void PostgresConnection::connect() {
    redacted_ = redact_postgres_url(url_);
    finish_connection();
    const auto deadline = std::chrono::steady_clock::now() + connect_timeout_;
    PostgresParams params;
    try {
        params = postgres_params(url_);
    } catch (const std::invalid_argument& e) {
        throw PostgresError("postgres " + redacted_ + ": cannot connect: " + e.what());
    }
    // Keepalives find a peer that vanished (host down, network cut) while no query is waiting;
    // the URL's own settings win.
    const std::string idle = std::to_string(std::max<long long>(
        1, std::chrono::duration_cast<std::chrono::seconds>(connect_timeout_).count()));
    const std::pair<const char*, const char*> keepalives[] = {{"keepalives", "1"},
                                                              {"keepalives_idle", idle.c_str()},
                                                              {"keepalives_interval", "5"},
                                                              {"keepalives_count", "3"}};
    std::vector<const char*> keys, values;
    for (const auto& keepalive : keepalives) {
        const auto given = [&](const auto& p) { return p.first == keepalive.first; };
        if (std::any_of(params.begin(), params.end(), given)) continue;
        keys.push_back(keepalive.first);
        values.push_back(keepalive.second);
    }
    for (const auto& [key, value] : params) {
        keys.push_back(key.c_str());
        values.push_back(value.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    // Asynchronous: libpq's own connect_timeout applies only to its blocking connect, and a
    // stop request must be able to end the wait. The URL was parsed by kbridge: libpq is given
    // keywords, never the URL to expand.
    conn_.reset(PQconnectStartParams(keys.data(), values.data(), 0));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) fail("cannot connect");
    for (;;) {
        const PostgresPollingStatusType status = PQconnectPoll(conn_.get());
        if (status == PGRES_POLLING_OK) break;
        if (status == PGRES_POLLING_FAILED) fail("cannot connect");
        // The socket may change between attempts (several hosts, SSL then plain).
        await(status == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, "connecting");
    }
    PQsetNoticeProcessor(conn_.get(), log_notice, nullptr);
    if (PQsetClientEncoding(conn_.get(), "UTF8") != 0) fail("cannot use UTF8");
}

void PostgresConnection::await(short events, std::chrono::steady_clock::time_point deadline,
                               const char* doing) {
    const bool connecting = std::string(doing) == "connecting";
    switch (wait_socket(PQsocket(conn_.get()), events, deadline)) {
        case SocketWait::Ready:
            return;
        case SocketWait::TimedOut:
            abandon("no answer within " +
                    duration_text(connecting ? connect_timeout_ : query_timeout_) +
                    (connecting ? " (connect_timeout)" : " (query_timeout)") + " while " + doing);
        case SocketWait::Stopped:
            abandon(std::string("gave up ") + doing + ": the run is stopping");
    }
    abandon("unexpected wait outcome");
}

void PostgresConnection::finish_connection() {
    // Non-blocking, so that the goodbye PQfinish sends cannot wait on a server that stopped
    // reading.
    if (conn_) PQsetnonblocking(conn_.get(), 1);
    conn_.reset();
}

void PostgresConnection::abandon(const std::string& why) {
    finish_connection();
    throw PostgresError("postgres " + redacted_ + ": " + why, "", true);
}

void PostgresConnection::flush_bounded() {
    auto deadline = std::chrono::steady_clock::now() + query_timeout_;
    for (;;) {
        const int left = PQflush(conn_.get());
        if (left < 0) fail("cannot send");
        if (left == 0) return;
        // Take in what the server says meanwhile (an error ends its reading).
        await(POLLOUT | POLLIN, deadline, "sending");
        if (!PQconsumeInput(conn_.get())) fail("cannot send");
        deadline = std::chrono::steady_clock::now() + query_timeout_;
    }
}

PgResult PostgresConnection::await_result() {
    PGconn* c = conn_.get();
    if (PQisnonblocking(c)) flush_bounded();
    PgResult kept;
    for (;;) {
        auto deadline = std::chrono::steady_clock::now() + query_timeout_;
        while (PQisBusy(c)) {
            await(POLLIN, deadline, "waiting for a query's result");
            if (!PQconsumeInput(c)) break;  // the error shows in the next result
            deadline = std::chrono::steady_clock::now() + query_timeout_;
        }
        PgResult result(PQgetResult(c));
        if (!result) break;
        const auto status = PQresultStatus(result.get());
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
            return result;
        const bool error = status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE;
        if (!kept || error || PQresultStatus(kept.get()) != PGRES_FATAL_ERROR)
            kept = std::move(result);
        if (PQstatus(c) == CONNECTION_BAD) break;
    }
    return kept;
}

void PostgresConnection::fail(const std::string& what, const PGresult* result) {
    std::string message = result ? PQresultErrorMessage(result)
                                 : (conn_ ? PQerrorMessage(conn_.get()) : "not connected");
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const bool lost = !conn_ || PQstatus(conn_.get()) != CONNECTION_OK;
    throw PostgresError("postgres " + redacted_ + ": " + what + ": " + scrub_secrets(message),
                        state ? state : "", lost);
}

PgResult PostgresConnection::exec(const std::string& sql) {
    if (!conn_) fail("query failed");
    if (!PQsendQuery(conn_.get(), sql.c_str())) fail("query failed");
    PgResult result = await_result();
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("query failed", result.get());
    return result;
}

PgResult PostgresConnection::exec_params(const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    if (!conn_) fail("query failed");
    if (!PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), nullptr, nullptr, 0))
        fail("query failed");
    PgResult result = await_result();
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("query failed", result.get());
    return result;
}

std::string PostgresConnection::quote_identifier(const std::string& name) {
    std::unique_ptr<char, void (*)(void*)> quoted(
        PQescapeIdentifier(conn_.get(), name.data(), name.size()), PQfreemem);
    if (!quoted) fail("cannot quote identifier");
    return quoted.get();
}

std::string PostgresConnection::quote_literal(const std::string& value) {
    std::unique_ptr<char, void (*)(void*)> quoted(
        PQescapeLiteral(conn_.get(), value.data(), value.size()), PQfreemem);
    if (!quoted) fail("cannot quote literal");
    return quoted.get();
}

std::string PostgresConnection::quote_table(const std::string& table) {
    const auto dot = table.find('.');
    if (dot == std::string::npos) return quote_identifier(table);
    return quote_identifier(table.substr(0, dot)) + "." + quote_identifier(table.substr(dot + 1));
}

void PostgresConnection::copy_in(const std::string& copy_sql) {
    if (!conn_) fail("query failed");
    if (!PQsendQuery(conn_.get(), copy_sql.c_str())) fail("COPY failed");
    PgResult result = await_result();
    if (PQresultStatus(result.get()) != PGRES_COPY_IN) fail("COPY failed", result.get());
}

// A blocking connection would wait for the socket without bound: queue without blocking, then
// send with bounded waits.
void PostgresConnection::put_copy_data(std::string_view data) {
    PGconn* c = conn_.get();
    const bool blocking = !PQisnonblocking(c);
    if (blocking) PQsetnonblocking(c, 1);
    if (PQputCopyData(c, data.data(), static_cast<int>(data.size())) != 1) fail("COPY failed");
    if (blocking) {
        flush_bounded();
        PQsetnonblocking(c, 0);
    }
}

void PostgresConnection::end_copy_in() {
    PGconn* c = conn_.get();
    const bool blocking = !PQisnonblocking(c);
    if (blocking) PQsetnonblocking(c, 1);
    if (PQputCopyEnd(c, nullptr) != 1) fail("COPY failed");
    flush_bounded();
    if (blocking) PQsetnonblocking(c, 0);
    PgResult result = await_result();
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) fail("COPY failed", result.get());
}

void PostgresConnection::copy_out(const std::string& copy_sql) {
    if (!conn_) fail("query failed");
    if (!PQsendQuery(conn_.get(), copy_sql.c_str())) fail("COPY failed");
    PgResult result = await_result();
    if (PQresultStatus(result.get()) != PGRES_COPY_OUT) fail("COPY failed", result.get());
    copy_header_seen_ = false;
}

namespace {

uint16_t read_u16(const char*& p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    p += 2;
    return ntohs(v);
}
uint32_t read_u32(const char*& p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return ntohl(v);
}

// PGCOPY\n\377\r\n\0, flags, header extension length.
constexpr char kCopySignature[] = "PGCOPY\n\377\r\n";
constexpr size_t kCopyHeaderSize = 11 + 4 + 4;

}  // namespace

bool PostgresConnection::next_copy_row(std::vector<std::optional<std::string_view>>& fields) {
    fields.clear();
    char* raw = nullptr;
    int size;
    auto deadline = std::chrono::steady_clock::now() + query_timeout_;
    // Asynchronously: a blocking PQgetCopyData would wait for a silent server without bound.
    while ((size = PQgetCopyData(conn_.get(), &raw, 1)) == 0) {
        await(POLLIN, deadline, "reading the COPY");
        if (!PQconsumeInput(conn_.get())) fail("COPY failed");
        deadline = std::chrono::steady_clock::now() + query_timeout_;
    }
    copy_buffer_.reset(raw);
    if (size == -1) {
        PgResult result = await_result();
        if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) fail("COPY failed", result.get());
        return false;
    }
    if (size < 0) fail("COPY failed");
    const char* p = raw;
    const char* end = raw + size;
    if (!copy_header_seen_) {
        if (size < static_cast<int>(kCopyHeaderSize) || std::memcmp(p, kCopySignature, 11) != 0)
            throw PostgresError("postgres " + redacted_ + ": unexpected COPY header");
        p += 11 + 4;
        p += read_u32(p);  // header extension, unused
        copy_header_seen_ = true;
        if (p == end) return next_copy_row(fields);
    }
    const int16_t count = static_cast<int16_t>(read_u16(p));
    if (count == -1) return next_copy_row(fields);  // the trailer; the end follows
    for (int16_t i = 0; i < count; ++i) {
        if (end - p < 4) throw PostgresError("postgres " + redacted_ + ": truncated COPY row");
        const int32_t length = static_cast<int32_t>(read_u32(p));
        if (length < 0) {
            fields.emplace_back(std::nullopt);
            continue;
        }
        if (end - p < length) throw PostgresError("postgres " + redacted_ + ": truncated COPY row");
        fields.emplace_back(std::string_view(p, length));
        p += length;
    }
    return true;
}

}  // namespace kbridge
